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
