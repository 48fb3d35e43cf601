"""The e-mail instrumenter: which links it rewrites, where the pixel goes, what a link carries."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from trato.campaigns import tracking
from trato.campaigns.errors import BadTrackingLink


def _instrument(body: str) -> str:
    return tracking.Instrumenter(campaign_id="cmp_1", utm={"utm_source": "trato", "utm_campaign": "spring"}).email_html(
        body, customer_id="cus_1", variant="b", channel="email",
        unsubscribe_url="https://t.example/u/tok", preferences_url="https://t.example/p/tok")


def _tokens(body: str) -> list[dict]:
    return [tracking.read_token(t) for t in re.findall(r"/t/[co]/([^\"]+)\"", body)]


def test_links_are_tracked_with_utm_and_the_pixel_goes_before_the_end_of_the_body() -> None:
    body = _instrument('<HTML><BODY><A HREF="https://shop.example/p/1?x=1&amp;y=2">a</A>'
                       '<img src="https://cdn.example/i.png"><a href="https://t.example/p/tok">prefs</a>'
                       '<a href="https://t.example/u/tok">baja</a><a href="mailto:x@example.com">m</a></BODY></HTML>')
    assert 'src="https://cdn.example/i.png"' in body  # images are not links
    assert 'href="https://t.example/p/tok"' in body  # the preference center is not counted
    assert 'href="mailto:x@example.com"' in body
    click, unsubscribe, opened = _tokens(body)
    assert click["k"] == "c" and click["c"] == "cus_1" and click["v"] == "b"
    query = parse_qs(urlsplit(click["u"]).query)
    assert query == {"x": ["1"], "y": ["2"], "utm_source": ["trato"], "utm_campaign": ["spring"], "utm_content": ["b"],
                     "utm_medium": ["email"]}  # no medium given: the message's channel
    assert unsubscribe == {"m": "cmp_1", "c": "cus_1", "v": "b", "ch": "email", "k": "u", "u": "https://t.example/u/tok"}
    assert opened["k"] == "o"
    assert body.index("/t/o/") < body.index("</BODY>")


def test_the_same_link_is_signed_for_each_recipient() -> None:
    instrumenter = tracking.Instrumenter(campaign_id="cmp_1", utm={})
    a, b = (instrumenter.email_html('<a href="https://shop.example/">x</a>', customer_id=c, variant="a", channel="email",
                                    unsubscribe_url=None, preferences_url=None) for c in ("cus_1", "cus_2"))
    assert [t["c"] for t in _tokens(a)] == ["cus_1", "cus_1"] and [t["c"] for t in _tokens(b)] == ["cus_2", "cus_2"]
    assert a.endswith('style="display:block;border:0;width:1px;height:1px">')  # no </body>: pixel at the end


def test_a_changed_link_is_refused() -> None:
    token = re.findall(r"/t/c/([^\"]+)\"", unescape(_instrument('<a href="https://shop.example/">x</a>')))[0]
    for changed in (token[:-1] + ("A" if token[-1] != "A" else "B"), token[1:], token + "x", ""):
        with pytest.raises(BadTrackingLink):
            tracking.read_token(changed)


def test_each_channel_names_itself_as_the_utm_medium_unless_the_marketer_chose_one() -> None:
    from trato.campaigns.tracking import Instrumenter

    html = '<html><body><a href="https://shop.example.com/a">a</a></body></html>'
    default = {"utm_source": "trato", "utm_medium": "sms", "utm_campaign": "rebajas"}  # the first channel: SMS
    for utm, medium in ((default, "email"), ({**default, "utm_medium": "newsletter"}, "newsletter")):
        out = Instrumenter(campaign_id="cmp_x", utm=utm).email_html(
            html, customer_id="cus_x", variant="A", channel="email", unsubscribe_url=None, preferences_url=None)
        token = out.split("/t/c/", 1)[1].split('"', 1)[0]
        from trato.campaigns.tracking import read_token

        assert f"utm_medium={medium}" in read_token(token)["u"]


def test_only_link_preview_programs_are_taken_for_previews() -> None:
    for agent in ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
                  "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
                  "", None):
        assert not tracking.is_link_preview(agent)
    for agent in ("Twitterbot/1.0", "LinkedInBot/1.0 (compatible; Mozilla/5.0)", "Discordbot/2.0",
                  "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"):
        assert tracking.is_link_preview(agent)
