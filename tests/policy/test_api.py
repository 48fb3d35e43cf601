"""The policy API: dry-run decisions, management of purposes / topics / quiet hours / caps,
consents with history, timeline and audit, suppressions, keywords, and clear errors."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from trato.core.db import new_session

P = "/api/v1/policy"


@pytest.fixture
def ana(api, defaults) -> str:  # type: ignore[no-untyped-def]
    created = api.post("/api/v1/customers", json={
        "traits": {"first_name": "Ana", "timezone": "Europe/Madrid"},
        "identities": [{"kind": "email", "value": "ana@example.com"}, {"kind": "phone", "value": "+34612345678"}]})
    assert created.status_code == 201, created.text
    return created.json()["customer"]["id"]


def error_code(response: Any) -> str:
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]["code"]


def test_a_dry_run_explains_itself_and_logs_nothing(api, ana):
    body = {"customer_id": ana, "communication": "spring", "purpose": "marketing", "channels": ["email", "sms"],
            "at": "2026-06-10T10:00:00Z"}
    response = api.post(f"{P}/decide", json=body)
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["outcome"] == "refuse" and decision["zone"] == "Europe/Madrid"
    assert [(r["channel"], r["code"]) for r in decision["reasons"]] == [("email", "no_consent"), ("sms", "no_consent")]
    assert decision["reasons"][0]["text"] == {"en": "email: no consent for marketing",
                                              "es": "email: sin consentimiento para marketing"}
    assert api.get(f"{P}/customers/{ana}/decisions").json() == []

    granted = api.put(f"{P}/customers/{ana}/consents", json={
        "channel": "sms", "purpose": "marketing", "state": "granted", "source": "form",
        "proof": {"wording": "v3", "ip": "203.0.113.9"}})
    assert granted.status_code == 200, granted.text
    decision = api.post(f"{P}/decide", json={**body, "at": "2026-06-10T20:30:00Z"}).json()
    assert decision["outcome"] == "defer" and decision["channel"] == "sms"
    assert decision["until"] == "2026-06-11T06:00:00Z"
    assert decision["reasons"][1]["text"]["es"] == "sms: horario de descanso hasta 2026-06-11 08:00 Europe/Madrid"


def test_consent_changes_have_history_timeline_and_audit(api, ana):
    for state in ("granted", "granted", "denied"):
        response = api.put(f"{P}/customers/{ana}/consents", json={
            "channel": "email", "purpose": "marketing", "topic": "offers", "state": state, "source": "agent"})
        assert response.status_code == 200, response.text
    assert api.get(f"{P}/customers/{ana}/consents").json()[0] | {"updated_at": None} == {
        "channel": "email", "purpose": "marketing", "topic": "offers", "state": "denied", "source": "agent",
        "updated_at": None}
    history = api.get(f"{P}/customers/{ana}/consents/history").json()
    assert [(h["previous"], h["state"]) for h in history] == [("granted", "denied"), ("unknown", "granted")]
    timeline = api.get(f"/api/v1/customers/{ana}/timeline", params={"kind": "consent"}).json()["items"]
    assert [e["name"] for e in timeline] == ["Consent denied", "Consent granted"]
    assert timeline[0]["properties"]["topic"] == "offers"
    view = api.get(f"/api/v1/customers/{ana}").json()
    assert [(c["purpose"], c["topic"], c["state"]) for c in view["consents"]] == [("marketing", "offers", "denied")]
    from trato.core.audit import AuditEntry

    with new_session(readonly=True) as s:
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.object_id == ana)))
    assert actions.count("policy.consent") == 2


@pytest.mark.parametrize(("body", "code"), [
    ({"channel": "email", "purpose": "gossip", "state": "granted"}, "unknown_purpose"),
    ({"channel": "email", "purpose": "marketing", "topic": "nope", "state": "granted"}, "unknown_topic"),
    ({"channel": "pigeon", "purpose": "marketing", "state": "granted"}, "unknown_channel"),
    ({"channel": "email", "purpose": "marketing", "state": "maybe"}, "invalid_consent_state"),
    ({"channel": "email", "purpose": "marketing", "state": "granted", "source": "rumour"}, "invalid_consent_source"),
])
def test_bad_consents_get_clear_codes(api, ana, body, code):
    response = api.put(f"{P}/customers/{ana}/consents", json=body)
    assert response.status_code == 422 and error_code(response) == code


def test_unknown_names_in_a_decision_are_422(api, ana):
    base = {"customer_id": ana, "communication": "c", "purpose": "marketing", "channels": ["email"]}
    for change, code in (({"purpose": "gossip"}, "unknown_purpose"), ({"channels": ["fax"]}, "unknown_channel"),
                         ({"topic": "x"}, "unknown_topic")):
        response = api.post(f"{P}/decide", json={**base, **change})
        assert response.status_code == 422 and error_code(response) == code
    response = api.post(f"{P}/decide", json={**base, "customer_id": "cus_nobody"})
    assert response.status_code == 404 and error_code(response) == "customer_not_found"


def test_purposes_and_topics(api, defaults):
    keys = [p["key"] for p in api.get(f"{P}/purposes").json()]
    assert keys == ["advice", "marketing", "payment", "research", "service", "transactional"]
    created = api.post(f"{P}/purposes", json={"key": "loyalty", "name_en": "Loyalty", "name_es": "Fidelización",
                                              "legal_basis": "consent"})
    assert created.status_code == 201 and created.json()["requires_consent"] is True
    assert error_code(api.post(f"{P}/purposes", json={"key": "loyalty", "name_en": "x", "name_es": "x",
                                                      "legal_basis": "consent"})) == "purpose_exists"
    assert error_code(api.post(f"{P}/purposes", json={"key": "other", "name_en": "x", "name_es": "x",
                                                      "legal_basis": "whim"})) == "invalid_policy"
    patched = api.patch(f"{P}/purposes/loyalty", json={"legal_basis": "legitimate_interest"})
    assert patched.json()["requires_consent"] is False
    topic = api.post(f"{P}/purposes/loyalty/topics", json={"key": "points", "name_en": "Points", "name_es": "Puntos"})
    assert topic.status_code == 201
    assert [t["key"] for t in api.patch(f"{P}/purposes/loyalty", json={}).json()["topics"]] == ["points"]
    assert api.delete(f"{P}/purposes/loyalty/topics/points").status_code == 204
    assert api.delete(f"{P}/purposes/loyalty").status_code == 204
    assert error_code(api.delete(f"{P}/purposes/loyalty")) == "unknown_purpose"


def test_a_purpose_with_consents_cannot_be_removed(api, ana):
    api.put(f"{P}/customers/{ana}/consents", json={"channel": "email", "purpose": "research", "state": "granted"})
    response = api.delete(f"{P}/purposes/research")
    assert response.status_code == 409 and error_code(response) == "purpose_in_use"


def test_quiet_hours_and_caps(api, ana):
    rule = api.put(f"{P}/quiet-hours", json={"purpose": "marketing", "channel": "sms", "start": "10:00",
                                             "end": "20:00"})
    assert rule.status_code == 200 and rule.json() == {"purpose": "marketing", "channel": "sms", "start": "10:00",
                                                        "end": "20:00", "exempt": False}
    assert ("marketing", "sms") in {(r["purpose"], r["channel"]) for r in api.get(f"{P}/quiet-hours").json()}
    assert error_code(api.put(f"{P}/quiet-hours", json={"purpose": "marketing", "channel": "fax"})) == "unknown_channel"
    assert error_code(api.put(f"{P}/quiet-hours", json={"purpose": "marketing", "start": "25:00"})) == "validation_error"
    api.put(f"{P}/customers/{ana}/consents", json={"channel": "sms", "purpose": "marketing", "state": "granted"})
    decision = api.post(f"{P}/decide", json={"customer_id": ana, "communication": "c", "purpose": "marketing",
                                             "channels": ["sms"], "at": "2026-06-10T07:00:00Z"}).json()
    assert decision["until"] == "2026-06-10T08:00:00Z"  # 10:00 in Madrid
    assert api.delete(f"{P}/quiet-hours/marketing/sms").status_code == 204
    assert error_code(api.delete(f"{P}/quiet-hours/marketing/sms")) == "quiet_hours_not_found"

    cap = api.post(f"{P}/caps", json={"max_count": 1, "window_seconds": 86400, "channel": "sms"})
    assert cap.status_code == 201, cap.text
    assert len(api.get(f"{P}/caps").json()) == 2  # with the default marketing cap
    assert error_code(api.post(f"{P}/caps", json={"max_count": 1, "window_seconds": 86400,
                                                  "purpose": "gossip"})) == "unknown_purpose"
    assert api.delete(f"{P}/caps/{cap.json()['id']}").status_code == 204
    assert error_code(api.delete(f"{P}/caps/{cap.json()['id']}")) == "cap_not_found"


def test_suppressions(api, ana):
    created = api.post(f"{P}/suppressions", json={"kind": "email", "value": " ANA@example.com ",
                                                  "reason": "hard_bounce"})
    assert created.status_code == 201 and created.json()["value"] == "ana@example.com"
    found = api.get(f"{P}/suppressions", params={"kind": "email", "value": "ana@EXAMPLE.com"}).json()
    assert [s["id"] for s in found] == [created.json()["id"]]
    api.put(f"{P}/customers/{ana}/consents", json={"channel": "email", "purpose": "marketing", "state": "granted"})
    decision = api.post(f"{P}/decide", json={"customer_id": ana, "communication": "c", "purpose": "marketing",
                                             "channels": ["email"], "at": "2026-06-10T10:00:00Z"}).json()
    assert decision["reasons"][0]["code"] == "suppressed"
    assert decision["reasons"][0]["text"]["en"] == "email: suppressed (hard bounce)"
    assert api.delete(f"{P}/suppressions/{created.json()['id']}").status_code == 204
    assert error_code(api.delete(f"{P}/suppressions/{created.json()['id']}")) == "suppression_not_found"
    assert error_code(api.post(f"{P}/suppressions", json={"kind": "email", "value": "not-an-address",
                                                          "reason": "manual"})) == "invalid_email"
    assert error_code(api.post(f"{P}/suppressions", json={"kind": "fax", "value": "1",
                                                          "reason": "manual"})) == "invalid_suppression"


def test_viewers_cannot_change_consents(client, ana, database_url):
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        _, secret = service.create_token(s, name="viewer", role="viewer", actor="test")
    client.headers["Authorization"] = f"Bearer {secret}"
    assert client.get(f"{P}/customers/{ana}/consents").status_code == 200
    response = client.put(f"{P}/customers/{ana}/consents", json={"channel": "email", "purpose": "marketing",
                                                                 "state": "granted"})
    assert response.status_code == 403


def test_the_customer_page_shows_consents(api, ana, admin_token):
    from tests.console.conftest import sign_in_with_token

    api.put(f"{P}/customers/{ana}/consents", json={"channel": "whatsapp", "purpose": "marketing",
                                                   "topic": "newsletter", "state": "granted"})
    from trato.core.db import unit_of_work
    from trato.policy import service

    with unit_of_work() as s:
        service.decide(s, customer_id=ana, communication="spring-sale", purpose="marketing",
                       channels=["email", "whatsapp"], topic="newsletter")
    api.headers.pop("Authorization")
    sign_in_with_token(api, admin_token)
    html = api.get(f"/customers/{ana}?lang=en").text
    assert 'id="consents"' in html and "marketing / newsletter" in html and "Granted" in html
    assert "spring-sale" in html and "email: no consent" in html
    spanish = api.get(f"/customers/{ana}?lang=es").text
    assert "Concedido" in spanish and "email: sin consentimiento" in spanish and "Decisiones de contacto" in spanish


def test_a_proof_must_be_plain_small_json(api, ana):
    for proof in ({"n": 2**64}, {"text": "x" * 5000}):
        response = api.put(f"{P}/customers/{ana}/consents", json={"channel": "email", "purpose": "marketing",
                                                                   "state": "granted", "proof": proof})
        assert response.status_code == 422 and error_code(response) == "validation_error"


def test_the_console_policy_page(api, defaults, admin_token):
    from tests.console.conftest import sign_in_with_token

    api.post(f"{P}/suppressions", json={"kind": "email", "value": "bounced@example.com", "reason": "hard_bounce"})
    api.headers.pop("Authorization")
    sign_in_with_token(api, admin_token)
    spanish = api.get("/policy?lang=es").text
    assert "<h1>Política de contacto</h1>" in spanish and 'href="/policy"' in spanish
    assert "Interés legítimo" in spanish and "08:00–21:00" in spanish and "7 días" in spanish
    assert "bounced@example.com" in spanish and "rebote permanente" in spanish
    english = api.get("/policy?lang=en").text
    assert "No, only a refusal stops it" in english and "7 days" in english
