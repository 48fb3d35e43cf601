"""The communications API with two people: an author and a reviewer, each with their own token."""

from __future__ import annotations

import csv
import io

import pytest

from tests.content.factory import CONTENT

BODY = {
    "key": "invoice-ready", "name": "Factura disponible", "purpose": "transactional", "department": "Billing",
    "kind": "reactive", "trigger": "Invoice Issued", "default_language": "es", "channels": ["sms", "email"],
    "languages": ["es", "en"], "sample_data": {"invoice": "F-1", "amount": 10}, "content": CONTENT,
}


@pytest.fixture
def tokens(database_url):  # type: ignore[no-untyped-def]
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        _, author = service.create_token(s, name="Autora", role="editor", actor="test")
        _, reviewer = service.create_token(s, name="Revisor", role="editor", actor="test")
        _, viewer = service.create_token(s, name="Lector", role="viewer", actor="test")
    return {name: {"Authorization": f"Bearer {secret}"}
            for name, secret in (("author", author), ("reviewer", reviewer), ("viewer", viewer))}


def test_create_review_approve_with_two_people(client, tokens):
    created = client.post("/api/v1/communications", json=BODY, headers=tokens["author"])
    assert created.status_code == 201, created.text
    com = created.json()
    assert com["department"] == "billing" and com["latest_version"] == 1 and com["approved_version"] is None
    assert sorted(com["channels_covered"]) == ["email", "sms"]
    version_id = com["latest_version_id"]
    base = f"/api/v1/communications/{com['id']}/versions/{version_id}"

    assert client.post(f"{base}/submit", headers=tokens["viewer"]).status_code == 403
    submitted = client.post(f"{base}/submit", json={"comment": "Lista"}, headers=tokens["author"])
    assert submitted.status_code == 200 and submitted.json()["status"] == "in_review"

    own = client.post(f"{base}/approve", json={"acknowledge": []}, headers=tokens["author"])
    assert own.status_code == 403 and own.json()["error"]["code"] == "self_approval"

    warnings = sorted({f["code"] for f in submitted.json()["findings"] if f["severity"] == "warning"})
    approved = client.post(f"{base}/approve", json={"acknowledge": warnings, "comment": "Correcto"},
                           headers=tokens["reviewer"])
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["decided_by"] == "token:Revisor"
    assert [c["action"] for c in approved.json()["comments"]] == ["submitted", "approved"]
    again = client.get(f"/api/v1/communications/{com['key']}", headers=tokens["viewer"]).json()
    assert again["approved_version"] == 1 and again["status"] == "active"


def test_update_is_a_new_version_and_diff_per_field(client, tokens):
    com = client.post("/api/v1/communications", json=BODY, headers=tokens["author"]).json()
    content = {**CONTENT, "sms": {**CONTENT["sms"], "en": {"text": "Hello {{ customer.first_name }}!"}}}
    patched = client.patch(f"/api/v1/communications/{com['id']}", json={"content": content, "name": "Invoice"},
                           headers=tokens["author"])
    assert patched.status_code == 200 and patched.json()["latest_version"] == 2
    versions = client.get(f"/api/v1/communications/{com['id']}/versions", headers=tokens["viewer"]).json()["items"]
    assert [v["number"] for v in versions] == [2, 1]
    diff = client.get(f"/api/v1/communications/{com['id']}/diff",
                      params={"from": versions[1]["id"], "to": versions[0]["id"]}, headers=tokens["viewer"]).json()
    assert [f["field"] for f in diff["fields"]] == ["sms.en.text"]


def test_bad_input_gets_stable_codes_never_a_500(client, tokens):
    h = tokens["author"]
    assert client.post("/api/v1/communications", json={**BODY, "purpose": "spam"}, headers=h).status_code == 422
    bad = client.post("/api/v1/communications", headers=h,
                      json={**BODY, "key": "draft", "content": {"sms": {"es": {"text": "ok\n{% if %}"}}}})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "template_syntax"
    assert bad.json()["error"]["details"]["line"] == 2
    client.post("/api/v1/communications", json={**BODY, "key": "dup"}, headers=h)
    dup = client.post("/api/v1/communications", json={**BODY, "key": "dup"}, headers=h)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "key_taken"
    assert client.get("/api/v1/communications/nope", headers=h).json()["error"]["code"] == "communication_not_found"
    assert client.get("/api/v1/communications", params={"channel": "fax"}, headers=h).status_code == 422
    broken = client.post("/api/v1/communications",
                         json={**BODY, "key": "broken", "content": {"sms": {"es": {"text": "{{ custmer.x }}"}}}},
                         headers=h).json()
    failed = client.post(f"/api/v1/communications/{broken['id']}/versions/{broken['latest_version_id']}/submit",
                         headers=h)
    assert failed.status_code == 409 and failed.json()["error"]["code"] == "preflight_failed"
    assert any(f["code"] == "unknown_variable" for f in failed.json()["error"]["details"])


def test_inventory_filters_and_formula_safe_csv(client, tokens):
    h = tokens["author"]
    client.post("/api/v1/communications", json={**BODY, "name": "=HYPERLINK(\"http://evil\")"}, headers=h)
    client.post("/api/v1/communications", json={**BODY, "key": "offer", "name": "Oferta", "purpose": "marketing",
                                                "department": "marketing", "channels": ["sms"],
                                                "content": {"sms": CONTENT["sms"]}}, headers=h)
    listed = client.get("/api/v1/communications", params={"purpose": "marketing"}, headers=h).json()["items"]
    assert [c["key"] for c in listed] == ["offer"]
    by_channel = client.get("/api/v1/communications", params={"channel": "email"}, headers=h).json()["items"]
    assert [c["key"] for c in by_channel] == ["invoice-ready"]
    assert client.get("/api/v1/communications", params={"department": "billing"}, headers=h).json()["items"][0][
        "key"] == "invoice-ready"
    exported = client.get("/api/v1/communications/export.csv", headers=h)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["key", "name", "purpose"]
    names = {row[1] for row in rows[1:]}
    assert "'=HYPERLINK(\"http://evil\")" in names and "Oferta" in names


def test_preview_renders_every_channel_for_a_customer_or_a_sample(client, tokens):
    h = tokens["author"]
    com = client.post("/api/v1/communications", json=BODY, headers=h).json()
    customer = client.post("/api/v1/customers", headers=h, json={
        "traits": {"first_name": "Mary", "locale": "en-GB"}, "identities": [{"kind": "email", "value": "m@example.com"}],
    }).json()["customer"]
    out = client.post(f"/api/v1/communications/{com['id']}/preview", headers=tokens["viewer"],
                      json={"customer_id": customer["id"], "data": {"invoice": "F-7", "amount": 12.5}})
    assert out.status_code == 200, out.text
    channels = out.json()["channels"]
    assert channels["sms"]["language"] == "en" and channels["sms"]["parts"]["text"] == "Hi Mary: invoice F-7 is ready."
    assert channels["sms"]["analysis"]["encoding"] == "GSM-7" and channels["sms"]["analysis"]["segments"] == 1
    assert channels["email"]["parts"]["subject"] == "Your invoice F-7"
    assert "€12.50" in channels["email"]["parts"]["html"]
    sample = client.post(f"/api/v1/communications/{com['id']}/preview", headers=h, json={"sample": {"first_name": "Zoë"}})
    assert sample.json()["channels"]["sms"]["parts"]["text"].startswith("Hola Zoë")
    missing = client.post(f"/api/v1/communications/{com['id']}/preview", headers=h, json={"customer_id": "cus_nope"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "customer_not_found"


def test_content_blocks_are_shared_and_show_who_uses_them(client, tokens):
    h = tokens["author"]
    block = client.post("/api/v1/content-blocks", headers=h, json={
        "key": "firma", "kind": "signature", "name": "Firma", "body": {"es": "— El equipo de {{ company.name }}",
                                                                       "en": "— The {{ company.name }} team"}})
    assert block.status_code == 201, block.text
    content = {"sms": {"es": {"text": "Hola {{ customer.first_name }} {% include 'blocks/firma' %}"},
                       "en": {"text": "Hi {{ customer.first_name }} {% include 'blocks/firma' %}"}}}
    com = client.post("/api/v1/communications", headers=h,
                      json={**BODY, "channels": ["sms"], "content": content}).json()
    used = client.get("/api/v1/content-blocks/firma", headers=h).json()["used_by"]
    assert [(u["key"], u["current"]) for u in used] == [("invoice-ready", "yes")]
    # The block changes: the communication keeps the text it was saved (and approved) with.
    client.patch("/api/v1/content-blocks/firma", headers=h, json={"body": {"es": "— Atentamente", "en": "— Regards"}})
    assert client.get("/api/v1/content-blocks/firma", headers=h).json()["used_by"][0]["current"] == "no"
    out = client.post(f"/api/v1/communications/{com['id']}/preview", headers=h, json={}).json()
    assert out["channels"]["sms"]["parts"]["text"] == "Hola Lucía — El equipo de Trato Demo, S.A."
    unknown = client.post("/api/v1/communications", headers=h, json={
        **BODY, "key": "x", "content": {"sms": {"es": {"text": "{% include 'blocks/none' %}"}}}})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_block"
