"""The customer's side: the preference center, one-click unsubscribe (RFC 8058) with a real HTTP
client, e-mail double opt-in, and links that are tampered with, expired or made for another use."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from trato.core.db import new_session, unit_of_work
from trato.policy import links, service

NOON = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)


def path_of(url: str) -> str:
    return url.removeprefix("http://127.0.0.1:8000")


def consents(customer_id: str) -> dict[tuple[str, str, str | None], str]:
    with new_session(readonly=True) as s:
        return {(c.channel, c.purpose, c.topic or None): c.state for c in service.consents_of(s, customer_id=customer_id)}


def history(customer_id: str):  # type: ignore[no-untyped-def]
    with new_session(readonly=True) as s:
        return service.consent_history(s, customer_id=customer_id)


@pytest.fixture
def ana(defaults, make_customer) -> str:
    cid = make_customer(first_name="Ana", locale="es-ES")
    with unit_of_work() as s:
        service.set_consent(s, customer_id=cid, channel="email", purpose="marketing", state="granted", source="form",
                            actor="test")
    return cid


def test_a_get_on_the_unsubscribe_link_changes_nothing(client, ana):
    url = service.unsubscribe_url(ana, "marketing", None, "email")
    page = client.get(path_of(url))
    assert page.status_code == 200 and "¿Dejar de recibir Publicidad por Correo electrónico?" in page.text
    assert page.headers["referrer-policy"] == "no-referrer" and "default-src 'self'" in page.headers[
        "content-security-policy"]
    assert consents(ana)[("email", "marketing", None)] == "granted"


def test_one_click_unsubscribe_with_a_real_http_client(live_server, ana):
    url = service.unsubscribe_url(ana, "marketing", "offers", "email")
    # What a mail client does with List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058).
    response = httpx.post(live_server + path_of(url), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and 'id="unsubscribed"' in response.text
    assert consents(ana)[("email", "marketing", "offers")] == "denied"
    change = history(ana)[0]
    assert (change.source, change.state, change.proof["link"]) == ("unsubscribe", "denied", "one-click")
    assert change.proof["user_agent"].startswith("python-httpx")
    with unit_of_work() as s:
        decision = service.decide(s, customer_id=ana, communication="c", purpose="marketing", channels=["email"],
                                  topic="offers", at=NOON)
    assert decision.outcome == "refuse"
    again = httpx.post(live_server + path_of(url), data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200 and len(history(ana)) == 2  # a repeat records nothing new


def _tampered(token: str) -> str:
    i = len(token) // 2
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]


def test_tampered_and_foreign_links_are_refused(client, ana, make_customer):
    other = make_customer(email="luis@example.com", phone="+34699111222")
    token = links.make_token("unsubscribe", {"c": ana, "p": "marketing", "t": "", "ch": "email"})
    for bad in (_tampered(token), token + "x", "nonsense",
                # a preference-center link is not an unsubscribe link, even for the same customer
                links.make_token("preferences", {"c": ana})):
        response = client.post(f"/u/{bad}")
        assert response.status_code == 403 and "no es válido" in response.text, bad
    # A payload naming another customer, signed with another key, does not pass either.
    from itsdangerous import URLSafeTimedSerializer

    forged = URLSafeTimedSerializer("another-secret-key-" + "y" * 32, salt="trato.policy.unsubscribe").dumps(
        {"c": other, "p": "marketing", "t": "", "ch": "email"})
    assert client.post(f"/u/{forged}").status_code == 403
    assert client.get(f"/p/{_tampered(links.make_token('preferences', {'c': ana}))}").status_code == 403
    assert consents(ana)[("email", "marketing", None)] == "granted" and consents(other) == {}


def test_expired_links_are_refused(client, ana, monkeypatch):
    token = links.make_token("preferences", {"c": ana})
    monkeypatch.setitem(links.MAX_AGE, "preferences", -1)
    response = client.get(f"/p/{token}?lang=en")
    assert response.status_code == 403 and "This link has expired" in response.text


def test_the_preference_center_speaks_the_customers_language_and_saves(client, ana):
    path = path_of(service.preference_url(ana))
    page = client.get(path)
    assert page.status_code == 200 and '<html lang="es">' in page.text and "Hola, Ana." in page.text
    # marketing/newsletter by e-mail is on (the whole purpose was granted); research is off.
    assert re.search(r'name="consent.marketing.newsletter.email" value="1" checked', page.text)
    assert not re.search(r'name="consent.research.surveys.email" value="1" checked', page.text)
    assert "Tus preferencias de comunicación" in page.text and "Your communication" in client.get(path + "?lang=en").text

    form = {"consent.marketing.newsletter.email": "1", "consent.research.surveys.sms": "1",
            "consent.advice._.email": "1", "preferred_channel": "sms", "frequency": "weekly"}
    saved = client.post(path, data=form, follow_redirects=False)
    assert saved.status_code == 303
    state = consents(ana)
    assert state[("email", "marketing", "offers")] == "denied"  # unticked
    assert state[("sms", "research", "surveys")] == "granted"
    assert state[("sms", "advice", None)] == "denied"  # an objection to a legitimate-interest purpose
    assert ("email", "marketing", "newsletter") not in state  # unchanged: nothing written
    with new_session(readonly=True) as s:
        preference = service.get_preference(s, customer_id=ana)
    assert (preference.preferred_channel, preference.frequency) == ("sms", "weekly")
    assert all(c.source == "preference_center" and c.proof["wording"] == "preference-center-v1"
               for c in history(ana)[:-1])
    after = client.get(saved.headers["location"]).text
    assert 'id="saved"' in after and 'value="sms" selected' in after and 'value="weekly" checked' in after


def test_ticking_a_topic_again_lifts_the_refusal_of_its_purpose(client, ana):
    url = service.unsubscribe_url(ana, "marketing", None, "email")
    client.post(path_of(url))
    path = path_of(service.preference_url(ana))
    client.post(path, data={"consent.marketing.newsletter.email": "1"})
    state = consents(ana)
    assert state[("email", "marketing", None)] == "granted"
    assert state[("email", "marketing", "newsletter")] == "granted"
    assert state[("email", "marketing", "offers")] == "denied"


def test_email_double_opt_in(client, defaults, make_customer):
    cid = make_customer(locale="en-GB")
    with unit_of_work() as s:
        url = service.request_email_opt_in(s, customer_id=cid, purpose="marketing", topic="newsletter", actor="web",
                                           proof={"ip": "203.0.113.1", "wording": "signup-v2"})
    assert consents(cid)[("email", "marketing", "newsletter")] == "pending"
    with unit_of_work() as s:
        pending = service.decide(s, customer_id=cid, communication="c", purpose="marketing", channels=["email"],
                                 topic="newsletter", at=NOON)
    assert pending.reasons[0].code == "consent_pending"
    page = client.get(path_of(url))
    assert "Do you want to receive Newsletter by e-mail?" in page.text
    assert consents(cid)[("email", "marketing", "newsletter")] == "pending"  # a GET confirms nothing
    done = client.post(path_of(url))
    assert done.status_code == 200 and 'id="confirmed"' in done.text
    assert consents(cid)[("email", "marketing", "newsletter")] == "granted"
    assert history(cid)[0].source == "double_opt_in"
    # Withdrawn afterwards, the old link does not bring it back.
    with unit_of_work() as s:
        service.set_consent(s, customer_id=cid, channel="email", purpose="marketing", topic="newsletter",
                            state="denied", source="api", actor="test")
    assert client.post(path_of(url)).status_code == 403
    assert consents(cid)[("email", "marketing", "newsletter")] == "denied"
