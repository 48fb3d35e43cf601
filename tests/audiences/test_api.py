"""The segments API: CRUD with audit rows, preview of unsaved trees, counts, members page by page,
snapshots, static lists from CSV, validation errors that name the bad node, and roles."""

from __future__ import annotations

MADRID = {"type": "trait", "trait": "city", "op": "eq", "value": "Madrid"}
VIEWED_X = {"type": "event", "name": "Product Viewed", "count": 3, "within_days": 7,
            "where": [{"property": "product", "op": "eq", "value": "X"}]}


def test_create_count_members_and_audit(api, people):
    created = api.post("/api/v1/segments", json={"name": "Clientes de Madrid", "definition": MADRID})
    assert created.status_code == 201, created.text
    segment = created.json()
    assert segment["kind"] == "dynamic" and segment["definition"]["value"] == "Madrid"
    sid = segment["id"]
    assert api.get(f"/api/v1/segments/{sid}/count").json() == {"segment_id": sid, "count": 2}
    page = api.get(f"/api/v1/segments/{sid}/members", params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_after"] == page["items"][0]
    rest = api.get(f"/api/v1/segments/{sid}/members", params={"limit": 1, "after": page["next_after"]}).json()
    assert sorted(page["items"] + rest["items"]) == sorted([people["Ana"], people["Eva"]])
    assert [s["name"] for s in api.get("/api/v1/segments").json()["items"]] == ["Clientes de Madrid"]

    changed = api.patch(f"/api/v1/segments/{sid}", json={
        "definition": {"type": "and", "conditions": [MADRID, VIEWED_X]}})
    assert changed.status_code == 200, changed.text
    assert api.get(f"/api/v1/segments/{sid}/count").json()["count"] == 1

    from sqlalchemy import select

    from trato.core.audit import AuditEntry
    from trato.core.db import new_session

    with new_session() as s:
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.object_id == sid).order_by(AuditEntry.id)))
    assert actions == ["segment.create", "segment.update"]
    assert api.delete(f"/api/v1/segments/{sid}").status_code == 204
    assert api.get(f"/api/v1/segments/{sid}").json()["error"]["code"] == "segment_not_found"


def test_preview_counts_and_samples_an_unsaved_tree(api, people):
    found = api.post("/api/v1/segments/preview", json={"definition": {"type": "and", "conditions": [
        MADRID, VIEWED_X]}, "sample": 5}).json()
    assert found["count"] == 1
    assert found["sample"] == [{"id": people["Ana"], "name": "Ana", "email": "ana@example.com"}]
    none = api.post("/api/v1/segments/preview", json={"definition": {"type": "not", "condition": {
        "type": "identity", "kind": "email"}}}).json()
    assert [m["id"] for m in none["sample"]] == [people["Eva"]]


def test_validation_errors_name_the_bad_node(api, database_url):
    bad = api.post("/api/v1/segments/preview", json={"definition": {"type": "and", "conditions": [
        MADRID, {"type": "trait", "trait": "city", "op": "eq", "value": "x"},
        {"type": "event", "name": "Viewed", "within_days": 0}]}})
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["code"] == "invalid_segment"
    assert error["details"]["path"] == "definition.conditions[2].within_days"
    assert error["message"].startswith("definition.conditions[2].within_days:")

    deep: dict = MADRID
    for _ in range(12):
        deep = {"type": "not", "condition": deep}
    too_deep = api.post("/api/v1/segments", json={"name": "deep", "definition": deep})
    assert too_deep.status_code == 422 and too_deep.json()["error"]["code"] == "segment_too_deep"
    wide = {"type": "or", "conditions": [MADRID] * 150}
    assert api.post("/api/v1/segments/preview", json={"definition": wide}).json()["error"]["code"] == \
        "segment_too_large"
    huge = api.post("/api/v1/segments/preview", json={"definition": {"type": "or", "conditions": [
        MADRID, {"type": "trait", "trait": "age", "op": "gt", "value": 10**30}]}})
    assert huge.status_code == 422 and huge.json()["error"]["details"]["path"] == "definition.conditions[1]"
    unknown = api.post("/api/v1/segments/preview", json={"definition": {"type": "segment", "segment_id": "seg_nope"}})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_segment"
    assert unknown.json()["error"]["details"]["path"] == "definition.segment_id"


def test_cycles_between_segments_are_refused(api, make_segment, database_url):
    a = make_segment("A", MADRID)
    b = make_segment("B", {"type": "segment", "segment_id": a})
    c = make_segment("C", {"type": "and", "conditions": [MADRID, {"type": "segment", "segment_id": b}]})
    loop = api.patch(f"/api/v1/segments/{a}", json={"definition": {"type": "or", "conditions": [
        MADRID, {"type": "segment", "segment_id": c}]}})
    assert loop.status_code == 422, loop.text
    error = loop.json()["error"]
    assert error["code"] == "segment_cycle" and error["details"]["cycle"] == [a, c, b, a]
    assert error["details"]["path"] == "definition.conditions[1].segment_id"
    itself = api.patch(f"/api/v1/segments/{a}", json={"definition": {"type": "segment", "segment_id": a}})
    assert itself.json()["error"]["code"] == "segment_cycle"
    in_use = api.delete(f"/api/v1/segments/{a}")
    assert in_use.status_code == 409 and in_use.json()["error"]["code"] == "segment_in_use"


def test_static_list_from_csv_and_snapshots(api, people):
    created = api.post("/api/v1/segments", json={"name": "VIP list", "kind": "static"}).json()
    sid = created["id"]
    csv_text = f"email\nANA@example.com\nnobody@example.com\n+34 600 000 003\n\n"
    uploaded = api.put(f"/api/v1/segments/{sid}/list", content=csv_text.encode(),
                       headers={"Content-Type": "text/csv"})
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json() == {"rows": 3, "matched": 2, "unmatched_count": 1, "unmatched": ["nobody@example.com"]}
    assert api.get(f"/api/v1/segments/{sid}/count").json()["count"] == 2
    by_id = api.put(f"/api/v1/segments/{sid}/list", params={"replace": "false"},
                    content=f"{people['Luis']}\n".encode(), headers={"Content-Type": "text/csv"})
    assert by_id.json()["matched"] == 1
    assert api.get(f"/api/v1/segments/{sid}/count").json()["count"] == 3

    snap = api.post(f"/api/v1/segments/{sid}/snapshots")
    assert snap.status_code == 201 and snap.json()["member_count"] == 3
    # The list changes; the snapshot does not.
    api.put(f"/api/v1/segments/{sid}/list", content=b"ana@example.com\n", headers={"Content-Type": "text/csv"})
    assert api.get(f"/api/v1/segments/{sid}/count").json()["count"] == 1
    snap_id = snap.json()["id"]
    first = api.get(f"/api/v1/segments/{sid}/snapshots/{snap_id}/members", params={"limit": 2}).json()
    second = api.get(f"/api/v1/segments/{sid}/snapshots/{snap_id}/members",
                     params={"limit": 2, "after": first["next_after"]}).json()
    assert sorted(first["items"] + second["items"]) == sorted(people.values()) and second["next_after"] is None
    assert [s["id"] for s in api.get(f"/api/v1/segments/{sid}/snapshots").json()] == [snap_id]

    binary = api.put(f"/api/v1/segments/{sid}/list", content=b"\xff\xfe\x00", headers={"Content-Type": "text/csv"})
    assert binary.status_code == 422 and binary.json()["error"]["code"] == "invalid_list"
    dynamic = api.post("/api/v1/segments", json={"name": "dyn", "definition": MADRID}).json()["id"]
    refused = api.put(f"/api/v1/segments/{dynamic}/list", content=b"x\n", headers={"Content-Type": "text/csv"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_a_static_list"


def test_roles_viewers_read_editors_write(client, people, database_url):
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        _, viewer = service.create_token(s, name="viewer", role="viewer", actor="test")
    client.headers["Authorization"] = f"Bearer {viewer}"
    assert client.post("/api/v1/segments/preview", json={"definition": MADRID}).json()["count"] == 2
    refused = client.post("/api/v1/segments", json={"name": "x", "definition": MADRID})
    assert refused.status_code == 403
    client.headers.clear()
    assert client.get("/api/v1/segments").status_code == 401


def test_segments_of_one_customer(people, make_segment, session):
    from trato.audiences import service

    madrid = make_segment("Madrid", MADRID)
    viewers = make_segment("Viewed X", VIEWED_X)
    make_segment("Sevilla", {"type": "trait", "trait": "city", "op": "eq", "value": "Sevilla"})
    assert [s.id for s in service.segments_of(session, customer_id=people["Ana"])] == [madrid, viewers]
    assert [s.id for s in service.segments_of(session, customer_id=people["Eva"])] == [madrid]


def test_stream_members_in_chunks(people, make_segment, session):
    from trato.audiences import service

    everyone = make_segment("Everyone", {"type": "not", "condition": {"type": "identity", "kind": "nothing"}})
    chunks = list(service.stream_members(session, segment_id=everyone, chunk_size=2))
    assert [len(c) for c in chunks] == [2, 1]
    assert sorted(sum(chunks, [])) == sorted(people.values())
