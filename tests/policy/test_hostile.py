"""A hostile caller: malformed, huge, unknown and wrongly typed input to every policy endpoint and
to the customer's public pages gets a clear 4xx, never a 500."""

from __future__ import annotations

import pytest

from trato.core.db import new_session, unit_of_work
from trato.policy import links, service

BAD_BODIES = [None, [], "x", 1, {"purpose": ["marketing"]}, {"purpose": "x" * 100_000},
              {"customer_id": {"$ne": 1}, "purpose": "marketing", "channels": "email", "communication": 3},
              {"customer_id": "cus_nope", "purpose": "marketing", "channels": ["email"], "communication": "c"},
              {"customer_id": "cus_nope", "purpose": "nope", "channels": ["pigeon"], "communication": "c",
               "at": "yesterday"}]

WRITES = [("POST", "/api/v1/policy/decide"), ("POST", "/api/v1/policy/purposes"),
          ("PATCH", "/api/v1/policy/purposes/marketing"), ("POST", "/api/v1/policy/purposes/marketing/topics"),
          ("PUT", "/api/v1/policy/quiet-hours"), ("POST", "/api/v1/policy/caps"),
          ("PUT", "/api/v1/policy/customers/{cid}/consents"), ("PUT", "/api/v1/policy/customers/{cid}/preferences"),
          ("POST", "/api/v1/policy/suppressions"), ("POST", "/api/v1/policy/keywords")]


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_bad_bodies_get_a_4xx_with_an_error_code(api, defaults, make_customer, method, path):
    cid = make_customer()
    for body in BAD_BODIES:
        response = api.request(method, path.format(cid=cid), json=body)
        assert 400 <= response.status_code < 500, (body, response.status_code, response.text[:300])
        assert response.json()["error"]["code"]
    response = api.request(method, path.format(cid=cid), content=b"{not json", headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500


READS = ["/api/v1/policy/customers/{x}/consents", "/api/v1/policy/customers/{x}/consents/history",
         "/api/v1/policy/customers/{x}/decisions", "/api/v1/policy/suppressions?kind={x}&value={x}"]


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize("value", ["cus_nope", "%00", "x" * 5000, "'; DROP TABLE customers; --", "..%2F..%2F"])
def test_bad_ids_on_reads_get_a_4xx_or_an_empty_answer(api, defaults, path, value):
    response = api.get(path.format(x=value))
    assert response.status_code < 500, response.text[:300]
    if response.status_code >= 400:
        assert response.json()["error"]["code"]


@pytest.mark.parametrize("prefix", ["/p/", "/u/", "/c/"])
def test_public_pages_refuse_bad_tokens_in_the_customers_language(client, defaults, make_customer, prefix):
    cid = make_customer()
    kind = {"/p/": "preferences", "/u/": "unsubscribe", "/c/": "confirm"}[prefix]
    good = links.make_token(kind, {"c": cid, "p": "marketing", "ch": "email"})
    other_kind = links.make_token("preferences" if kind != "preferences" else "confirm",
                                  {"c": cid, "p": "marketing", "ch": "email"})
    for token in ["x", "x" * 20_000, good[:-2] + ("AA" if not good.endswith("AA") else "BB"), other_kind,
                  links.make_token(kind, {"c": 42, "p": "marketing", "ch": "email"}),
                  links.make_token(kind, {"c": "cus_nope", "p": "marketing", "ch": "email"}),
                  links.make_token(kind, ["not", "a", "dict"]), "%F0%9F"]:
        for method in ("GET", "POST"):
            response = client.request(method, prefix + token, data={"consent.marketing._.email": "1"})
            assert 400 <= response.status_code < 500, (method, token[:40], response.status_code)
            assert "<html" in response.text.lower()


def test_a_link_for_a_purpose_removed_since_is_refused_on_the_page(client, defaults, make_customer):
    cid = make_customer()
    with unit_of_work() as s:
        service.create_purpose(s, key="loyalty", name_en="Loyalty", name_es="Fidelización", legal_basis="consent",
                               actor="test")
    unsubscribe = links.make_token("unsubscribe", {"c": cid, "p": "loyalty", "ch": "email"})
    confirm = links.make_token("confirm", {"c": cid, "p": "loyalty"})
    with unit_of_work() as s:
        service.delete_purpose(s, key="loyalty", actor="test")
    for path in ("/u/" + unsubscribe, "/c/" + confirm):
        for method in ("GET", "POST"):
            response = client.request(method, path)
            assert response.status_code == 403 and "<html" in response.text.lower(), (path, method)
    with new_session(readonly=True) as s:
        assert service.consents_of(s, customer_id=cid) == []


def test_the_preference_form_cannot_be_sent_from_another_site(client, defaults, make_customer):
    cid = make_customer()
    token = links.make_token("preferences", {"c": cid})
    form = {"consent.marketing.newsletter.email": "1", "frequency": "weekly"}
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site", "origin": "null"},
                    {"sec-fetch-site": "same-site"}):
        response = client.post(f"/p/{token}", data=form, headers=headers, follow_redirects=False)
        assert response.status_code == 403 and "<html" in response.text.lower()
    with new_session(readonly=True) as s:
        assert service.consents_of(s, customer_id=cid) == []
        assert service.get_preference(s, customer_id=cid) is None
    response = client.post(f"/p/{token}", data=form, headers={"origin": "http://testserver"}, follow_redirects=False)
    assert response.status_code == 303
    with new_session(readonly=True) as s:
        states = {(c.channel, c.purpose, c.topic): c.state for c in service.consents_of(s, customer_id=cid)}
        assert states[("email", "marketing", "newsletter")] == "granted"
        assert service.get_preference(s, customer_id=cid).frequency == "weekly"


def test_opening_an_unsubscribe_link_changes_nothing(client, defaults, make_customer):
    cid = make_customer()
    with unit_of_work() as s:
        service.set_consent(s, customer_id=cid, channel="email", purpose="marketing", state="granted", source="form",
                            actor="test")
    url = service.unsubscribe_url(cid, "marketing", None, "email").removeprefix("http://127.0.0.1:8000")
    for _ in range(3):
        assert client.get(url).status_code == 200
        assert client.head(url).status_code in (200, 405)
    with new_session(readonly=True) as s:
        assert [c.state for c in service.consents_of(s, customer_id=cid)] == ["granted"]
        assert len(service.consent_history(s, customer_id=cid)) == 1


def test_the_history_on_the_preference_center_names_purposes_in_the_customers_language(
        client, defaults, make_customer):
    cid = make_customer(locale="es-ES")
    with unit_of_work() as s:
        service.set_consent(s, customer_id=cid, channel="email", purpose="marketing", topic="newsletter",
                            state="granted", source="form", actor="test")
    page = client.get(f"/p/{links.make_token('preferences', {'c': cid})}").text
    history = page[page.index('aria-labelledby="history-title"'):]
    assert "Publicidad / Boletín" in history and "marketing / newsletter" not in history
    page = client.get(f"/p/{links.make_token('preferences', {'c': cid})}?lang=en").text
    assert "Marketing / Newsletter" in page[page.index('aria-labelledby="history-title"'):]
