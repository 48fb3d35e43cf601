"""Short links of campaigns' text messages: every link of an SMS becomes ``/s/{code}``, which
counts the click and redirects only where the link was made to; unknown or changed codes get the
same 404 page; a chunk done again makes the same codes, stored in one INSERT; any text with any
links comes back unchanged once each short link is followed."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from tests.campaigns.conftest import BASE, MADRID, counted, create, launch, recipient_ids
from tests.delivery.conftest import approve_communication

SHORT = re.compile(r"http://127\.0\.0\.1:8000/s/([0-9A-Za-z]{10})")


# -- short links in SMS ---------------------------------------------------------------------------


SMS_TEXT = ("Hola {{ customer.first_name }}: rebajas en https://shop.example.com/rebajas?x=1 "
            "(y en https://shop.example.com/b/). Tus preferencias: {{ links.preferences }}")


@pytest.fixture
def sms_world(campaign_world: dict[str, Any]) -> dict[str, Any]:
    """Six customers of Valencia with a phone and marketing consent by SMS, and an SMS with links."""
    from trato.audiences import service as audiences
    from trato.core.db import unit_of_work
    from trato.customers import service as customers
    from trato.policy import service as policy

    people = []
    with unit_of_work() as s:
        for i in range(6):
            c = customers.create_customer(s, traits={"first_name": f"Vecino{i}", "city": "Valencia",
                                                     "locale": "es-ES"},
                                          identities=[("phone", f"+3461100000{i}")], actor="test")
            policy.set_consent(s, customer_id=c.id, channel="sms", purpose="marketing", state="granted",
                               source="form", actor="test")
            people.append(c.id)
        communication = approve_communication(
            s, key="sms-sale", purpose="marketing", channels=["sms"], sample_data={}, languages=["es"],
            content={"sms": {"es": {"text": SMS_TEXT + " STOP al 600"}}})
        segment = audiences.create_segment(s, name="Valencia", actor="test",
                                           definition={**MADRID, "value": "Valencia"})
    return {**campaign_world, "people": people, "communication": communication.key, "segment_id": segment.id}


def test_sms_links_become_short_links_that_redirect_count_and_refuse_anything_else(
        client: Any, api: Any, sms_world: dict[str, Any]) -> None:
    campaign_id = create(sms_world, channels=["sms"])
    launch(campaign_id)
    texts = {r.message.customer_id: str(r.message.parts["text"]) for r in sms_world["sandbox"].sent}
    assert len(texts) == 6
    first = sms_world["people"][0]
    text = texts[first]
    codes = SHORT.findall(text)
    assert len(codes) == 3 and "shop.example.com" not in text and "/p/" not in text
    assert text.startswith("Hola Vecino0: rebajas en http://127.0.0.1:8000/s/")
    assert "(y en http://127.0.0.1:8000/s/" in text and "). Tus preferencias: " in text
    assert len({c for t in texts.values() for c in SHORT.findall(t)}) == 18  # every message its own codes

    answer = client.get(f"/s/{codes[0]}", follow_redirects=False)
    assert answer.status_code == 302
    target = answer.headers["location"]
    assert target.startswith("https://shop.example.com/rebajas?x=1&")
    assert dict(parse_qsl(urlsplit(target).query)) == {
        "x": "1", "utm_source": "trato", "utm_medium": "sms", "utm_campaign": "rebajas-de-primavera",
        "utm_content": "A"}
    assert client.get(f"/s/{codes[1]}", follow_redirects=False).headers["location"].startswith(
        "https://shop.example.com/b/?")
    assert client.get(f"/s/{codes[0]}", follow_redirects=False).status_code == 302  # a second click
    # The preference link goes to the customer's page, carrying the message; it is not a click.
    mine = client.get(f"/s/{codes[2]}", follow_redirects=False).headers["location"]
    assert mine.startswith(BASE + "/p/") and "utm_" not in mine
    assert client.get(mine.removeprefix(BASE)).status_code == 200

    refused = []
    for code in (codes[0][:-1] + ("A" if codes[0][-1] != "A" else "B"), "0000000000", codes[0][:8],
                 codes[0] + "x", "abc-def_gh", "ZZZZZZZZZZ"):
        answer = client.get(f"/s/{code}", follow_redirects=False)
        assert answer.status_code == 404 and "location" not in answer.headers
        refused.append(answer.text)
    assert len(set(refused)) == 1  # the same page whatever the code looks like
    assert "Link not valid" in refused[0] or "Enlace no válido" in refused[0]
    spanish = client.get("/s/0000000000", headers={"Accept-Language": "es-ES"})
    english = client.get("/s/0000000000", headers={"Accept-Language": "en"})
    assert spanish.status_code == english.status_code == 404 and spanish.text != english.text

    results = api.get(f"/api/v1/campaigns/{campaign_id}/results").json()
    [row] = results["by_variant_channel"]
    assert (row["variant"], row["channel"], row["sent"], row["opened"], row["clicked"]) == ("A", "sms", 6, 1, 1)
    assert counted(campaign_id, "clicked") == {first: "A"}


def test_a_chunk_done_again_after_a_crash_makes_the_same_codes_stored_in_one_insert(
        sms_world: dict[str, Any], engine: Any, monkeypatch: pytest.MonkeyPatch, no_crash: None) -> None:
    from trato.campaigns import message_links, pipeline, service
    from trato.campaigns.models import ShortLink
    from trato.core.db import new_session

    campaign_id = create(sms_world, channels=["sms"])
    made: list[set[str]] = []
    store = pipeline.store_short_links

    def recorded(session: Any, rows: list[dict[str, Any]]) -> int:
        made.append({row["code"] for row in rows})
        return store(session, rows)

    monkeypatch.setattr(pipeline, "store_short_links", recorded)

    def crash(step: str) -> None:
        if step == "before_commit":
            raise RuntimeError("the worker stopped")

    pipeline.crash_point = crash
    launch(campaign_id)  # the queued run dies before its chunk commits (the queue logs the error)
    pipeline.crash_point = None
    assert not sms_world["sandbox"].sent
    with new_session(readonly=True) as s:
        assert s.scalars(select(ShortLink)).all() == []  # the crashed chunk left nothing
    inserts: list[tuple[str, bool]] = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO CAMPAIGN_SHORT_LINKS"):
            inserts.append((statement, executemany))

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert service.run(campaign_id) == "done"
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # Every run of the chunk (one crashed run per runner slot, then the one that commits) made the same codes.
    assert len(made) >= 2 and all(m == made[0] for m in made) and len(made[0]) == 18
    assert len(inserts) == 1  # the chunk's 18 links in one statement
    sent = {c for r in sms_world["sandbox"].sent for c in SHORT.findall(str(r.message.parts["text"]))}
    with new_session(readonly=True) as s:
        stored = {link.code: link for link in s.scalars(select(ShortLink))}
    assert set(stored) == sent == made[0]
    assert {(link.campaign_id, link.channel, link.variant) for link in stored.values()} == {(campaign_id, "sms", "A")}
    # Storing the chunk's links again (a chunk whose commit was lost after the insert) changes nothing.
    from trato.core.db import unit_of_work

    again = message_links.MessageLinks(campaign_id=campaign_id, utm={})
    rows = recipient_ids(campaign_id)
    for cid in sms_world["people"]:
        again.shorten(SMS_TEXT.replace("{{ customer.first_name }}", "x"), customer_id=cid,
                      message_id=pipeline.message_id(campaign_id, rows[cid]), variant="A", channel="sms")
    with unit_of_work() as s:
        again.store(s)
    with new_session(readonly=True) as s:
        assert len(s.scalars(select(ShortLink)).all()) == 18


@pytest.mark.parametrize(("text", "links"), [
    ("Mira https://a.es/x.", ["https://a.es/x"]),
    ("(https://a.es/x) y [http://b.es/?q=1]", ["https://a.es/x", "http://b.es/?q=1"]),
    ("https://es.wikipedia.org/wiki/Foo_(bar), ¿sí?", ["https://es.wikipedia.org/wiki/Foo_(bar)"]),
    ("«https://a.es/x» “https://a.es/y”", ["https://a.es/x", "https://a.es/y"]),
    ("https://a.es/x?y=1&z=2, y más: HTTPS://A.ES/Z!", ["https://a.es/x?y=1&z=2", "HTTPS://A.ES/Z"]),
    ('<a href="https://a.es/q">', ["https://a.es/q"]),
    ("nada: http:// ni ftp://a.es ni www.a.es", []),
])
def test_links_are_found_in_running_text_without_the_punctuation_around_them(text: str, links: list[str]) -> None:
    from trato.campaigns.message_links import find_links

    assert [link for _, _, link in find_links(text)] == links
    assert all(text[start:end] == link for start, end, link in find_links(text))


def test_whatsapp_free_text_is_shortened_in_the_text_and_the_request_body(database_url: str) -> None:
    import orjson

    from trato.campaigns.message_links import MessageLinks

    links = MessageLinks(campaign_id="cmp_x", utm={"utm_medium": "email", "utm_source": "trato"})
    body = {"messaging_product": "whatsapp", "to": "34600000000", "type": "text",
            "text": {"preview_url": False, "body": "Oferta: https://shop.example.com/o"}}
    parts = {"text": body["text"]["body"], "payload": orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()}
    out = links.apply(parts, customer_id="cus_x", message_id="msg_x", variant="B", channel="whatsapp", links={})
    [code] = SHORT.findall(out["text"])
    assert orjson.loads(out["payload"])["text"]["body"] == out["text"] == f"Oferta: {BASE}/s/{code}"
    [row] = links.rows.values()
    assert (row["channel"], row["variant"], row["kind"]) == ("whatsapp", "B", "c")
    assert dict(parse_qsl(urlsplit(row["target"]).query)) == {
        "utm_medium": "whatsapp", "utm_source": "trato", "utm_content": "B"}
    # A WhatsApp template is Meta's to render: left alone.
    template = {"template": "{}", "params": "{}", "text": "https://shop.example.com/o"}
    assert links.apply(template, customer_id="cus_x", message_id="msg_x", variant="B", channel="whatsapp",
                       links={}) == template


_SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_HOST = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,6}){1,2}(:[0-9]{2,5})?", fullmatch=True)
_PATH = st.text(alphabet=_SAFE + "-._~/%!$'()*+,;=:@ñá€", max_size=30)
_QUERY = st.lists(st.tuples(st.text(alphabet=_SAFE + "_-", min_size=1, max_size=8),
                            st.text(alphabet=_SAFE + "-._~%+/ñ", max_size=12)), max_size=4)


@st.composite
def urls(draw: Any) -> str:
    url = f"{draw(st.sampled_from(['http', 'https', 'HTTPS']))}://{draw(_HOST)}/{draw(_PATH)}"
    query = draw(_QUERY)
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query)
    if draw(st.booleans()):
        url += "#" + draw(st.text(alphabet=_SAFE + "-/", max_size=8))
    return url + draw(st.sampled_from(list(_SAFE) + ["/"]))  # a link ends where its text ends


_WORDS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30).filter(lambda t: "://" not in t)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.tuples(_WORDS, urls()), max_size=5), last=_WORDS)
def test_any_text_with_any_links_comes_back_once_each_short_link_is_followed(
        database_url: str, pieces: list[tuple[str, str]], last: str) -> None:
    from trato.campaigns.message_links import MessageLinks, code_for

    text = "".join(f"{words} {url} " for words, url in pieces) + last
    links = MessageLinks(campaign_id="cmp_p", utm={"utm_source": "trato", "utm_medium": "sms"})
    short = links.shorten(text, customer_id="cus_p", message_id="msg_p", variant="A", channel="sms")
    originals = {code_for("msg_p", url): url for _, url in pieces}
    assert set(SHORT.findall(short)) == set(originals) == set(links.rows)
    # Every link, and nothing else, was replaced: following each gives the text back.
    assert SHORT.sub(lambda m: originals[m.group(1)], short) == text
    for code, url in originals.items():
        target, original = urlsplit(links.rows[code]["target"]), urlsplit(url)
        assert (target.scheme, target.netloc, target.path, target.fragment) == \
            (original.scheme, original.netloc, original.path, original.fragment)
        query = [(k, v) for k, v in parse_qsl(target.query, keep_blank_values=True) if not k.startswith("utm_")]
        assert query == [(k, v) for k, v in parse_qsl(original.query, keep_blank_values=True)
                         if not k.startswith("utm_")]
        assert ("utm_content", "A") in parse_qsl(target.query)
    # The same message and links make the same codes (a chunk done again).
    again = MessageLinks(campaign_id="cmp_p", utm={"utm_source": "trato", "utm_medium": "sms"})
    assert again.shorten(text, customer_id="cus_p", message_id="msg_p", variant="A", channel="sms") == short
    # Another message's codes are its own.
    other = again.shorten(text, customer_id="cus_q", message_id="msg_q", variant="A", channel="sms")
    assert not set(SHORT.findall(other)) & set(originals)


def test_a_stop_reply_to_a_campaign_sms_is_that_campaigns_unsubscribe(sms_world: dict[str, Any]) -> None:
    """STOP answers the last message that reached the customer on that channel (30 days back)."""
    from datetime import timedelta

    from tests.campaigns.conftest import counted
    from trato.core.clock import utcnow
    from trato.core.db import new_session, unit_of_work
    from trato.delivery import feedback
    from trato.policy import service as policy

    campaign_id = create(sms_world, channels=["sms"])
    launch(campaign_id)
    first, second, third = sms_world["people"][:3]
    with unit_of_work() as s:
        outcome = feedback.receive_inbound(s, channel="sms", provider="sandbox", sender="+34611000000", text="Stop",
                                           provider_message_id="in-1")
        assert outcome.keyword == "stop" and outcome.customer_id == first
        # Not a keyword: nothing counted. A STOP long after the campaign answers nothing of it.
        feedback.receive_inbound(s, channel="sms", provider="sandbox", sender="+34611000001", text="gracias",
                                 provider_message_id="in-2")
        feedback.receive_inbound(s, channel="sms", provider="sandbox", sender="+34611000002", text="BAJA",
                                 provider_message_id="in-3", at=utcnow() + timedelta(days=31))
    assert set(counted(campaign_id, "unsubscribed")) == {first}
    with new_session(readonly=True) as s:
        for who in (first, third):
            states = {(c.channel, c.purpose, c.topic): c.state for c in policy.consents_of(s, customer_id=who)}
            assert states[("sms", "marketing", "")] == "denied"
    assert second not in counted(campaign_id, "unsubscribed")


@pytest.mark.parametrize("agent", [
    "WhatsApp/2.23.20.0 A", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "TelegramBot (like TwitterBot)",
])
def test_link_previews_are_sent_on_but_not_counted_as_clicks(client: Any, sms_world: dict[str, Any],
                                                              agent: str) -> None:
    """A chat app fetching the link to show its preview is not the customer clicking it."""
    from tests.campaigns.conftest import counted

    campaign_id = create(sms_world, channels=["sms"])
    launch(campaign_id)
    first = sms_world["people"][0]
    text = next(str(r.message.parts["text"]) for r in sms_world["sandbox"].sent if r.message.customer_id == first)
    code = SHORT.findall(text)[0]
    preview = client.get(f"/s/{code}", follow_redirects=False, headers={"User-Agent": agent})
    assert preview.status_code == 302 and preview.headers["location"].startswith("https://shop.example.com/")
    assert counted(campaign_id, "clicked") == {}
    browser = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile Safari"
    client.get(f"/s/{code}", follow_redirects=False, headers={"User-Agent": browser})
    assert counted(campaign_id, "clicked") == {first: "A"}
