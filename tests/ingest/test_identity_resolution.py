"""Identity resolution seen through the API: anonymous history, alias, merges, refusals, unmerge."""

from __future__ import annotations

from typing import Any

from tests.ingest.tracking import Memory, Tracking, identities, is_error


def message_ids(memory: Memory, customer_id: str) -> set[str]:
    return {e["message_id"] for e in memory.timeline(customer_id)}


def test_anonymous_page_views_then_identify_make_one_customer(tracking: Tracking, memory: Memory) -> None:
    for i in range(3):
        tracking.send("page", {"anonymousId": "anon-1", "name": f"Step {i}", "messageId": f"page-{i}"})
    anonymous = memory.lookup(anonymous_id="anon-1")["customer"]["id"]
    tracking.send("identify", {"userId": "user-1", "anonymousId": "anon-1", "messageId": "identify",
                               "traits": {"email": "ana@example.com", "firstName": "Ana"}})
    tracking.send("track", {"userId": "user-1", "event": "Logged In", "messageId": "login"})

    view = memory.lookup(user_id="user-1")
    customer_id = view["customer"]["id"]
    assert customer_id == anonymous  # the anonymous profile became the known one: no merge needed
    assert memory.lookup(email="ana@example.com")["customer"]["id"] == customer_id
    assert message_ids(memory, customer_id) == {"page-0", "page-1", "page-2", "identify", "login"}
    assert view["customer"]["computed"]["event_count"] == 5
    assert view["customer"]["first_name"] == "Ana"
    assert view["merges"] == []


def test_alias_merges_the_anonymous_profile_into_the_user(tracking: Tracking, memory: Memory) -> None:
    tracking.send("page", {"anonymousId": "anon-2", "name": "Landing", "messageId": "landing"})
    tracking.send("track", {"userId": "user-2", "event": "Signed Up", "messageId": "signup"})
    anonymous = memory.lookup(anonymous_id="anon-2")["customer"]["id"]
    known = memory.lookup(user_id="user-2")["customer"]["id"]
    assert anonymous != known

    tracking.send("alias", {"previousId": "anon-2", "userId": "user-2", "messageId": "alias"})
    view = memory.lookup(anonymous_id="anon-2")
    assert view["customer"]["id"] == known  # the known person survives
    assert memory.lookup(user_id="user-2")["customer"]["id"] == known
    assert message_ids(memory, known) == {"landing", "signup", "alias"}
    assert view["customer"]["computed"]["event_count"] == 3

    (merge,) = [m for m in memory.merges(known) if m["status"] == "merged"]
    assert (merge["survivor_id"], merge["merged_id"]) == (known, anonymous)
    assert merge["reason"] == "alias"
    assert merge["trigger_identity"] == "anonymous_id:anon-2"
    assert merge["message_id"] == "alias"
    # The merged id still answers, with the survivor.
    assert memory.customer(anonymous)["customer"]["id"] == known


def merge_by_email(tracking: Tracking, memory: Memory) -> tuple[str, str]:
    """An anonymous visitor leaves an e-mail; later a known user identifies with it. (anonymous, known)"""
    tracking.send("identify", {"anonymousId": "anon-3", "messageId": "newsletter",
                               "traits": {"email": "Ana@Example.com", "plan": "newsletter"}})
    tracking.send("track", {"anonymousId": "anon-3", "event": "Newsletter Opened", "messageId": "opened"})
    tracking.send("track", {"userId": "user-3", "event": "Order Completed", "messageId": "order",
                            "properties": {"revenue": 12.5}})
    anonymous = memory.lookup(anonymous_id="anon-3")["customer"]["id"]
    known = memory.lookup(user_id="user-3")["customer"]["id"]
    assert anonymous != known
    tracking.send("identify", {"userId": "user-3", "messageId": "login", "traits": {"email": "ana@example.com"}})
    return anonymous, known


def test_an_identify_with_the_email_of_an_anonymous_profile_merges_it(tracking: Tracking, memory: Memory) -> None:
    anonymous, known = merge_by_email(tracking, memory)

    view = memory.lookup(email="ana@example.com")
    assert view["customer"]["id"] == known
    assert memory.lookup(anonymous_id="anon-3")["customer"]["id"] == known
    assert set(identities(view)) == {
        ("user_id", "user-3"), ("anonymous_id", "anon-3"), ("email", "ana@example.com"),
    }
    assert message_ids(memory, known) == {"newsletter", "opened", "order", "login"}
    computed = view["customer"]["computed"]
    assert (computed["event_count"], computed["purchase_count"], computed["lifetime_value"]) == (4, 1, {"EUR": 12.5})
    assert view["customer"]["traits"]["plan"] == "newsletter"  # traits of the merged profile come along

    (merge,) = memory.merges(known)
    assert merge["status"] == "merged"
    assert (merge["survivor_id"], merge["merged_id"]) == (known, anonymous)
    assert merge["reason"] == "identify"
    assert merge["trigger_identity"] == "email:ana@example.com"
    assert merge["message_id"] == "login"
    assert "email ana@example.com" in merge["explanation"]
    assert set(merge["moved"]["identities"]) == {"anonymous_id:anon-3", "email:ana@example.com"}
    assert merge["moved"]["events"] == 2
    assert memory.merges(anonymous) == [merge]  # the merged profile shows it too
    assert memory.customer(anonymous)["customer"]["id"] == known

    # Later events from the old anonymous id land on the survivor.
    tracking.send("track", {"anonymousId": "anon-3", "event": "Newsletter Opened", "messageId": "opened-again"})
    assert memory.lookup(user_id="user-3")["customer"]["computed"]["event_count"] == 5


def test_unmerge_restores_both_profiles(tracking: Tracking, memory: Memory) -> None:
    anonymous, known = merge_by_email(tracking, memory)
    (merge,) = memory.merges(known)

    response = memory.api.post(f"/api/v1/customers/{anonymous}/unmerge")
    assert response.status_code == 200, response.text
    undone = response.json()
    assert undone["id"] == merge["id"]
    assert undone["status"] == "undone" and undone["undone_at"] and undone["undone_by"]

    restored = memory.customer(anonymous)
    assert restored["customer"]["id"] == anonymous and restored["customer"]["merged_into"] is None
    assert set(identities(restored)) == {("anonymous_id", "anon-3"), ("email", "ana@example.com")}
    assert message_ids(memory, anonymous) == {"newsletter", "opened"}
    assert restored["customer"]["computed"]["event_count"] == 2
    assert restored["customer"]["traits"]["plan"] == "newsletter"

    survivor = memory.customer(known)
    assert set(identities(survivor)) == {("user_id", "user-3")}
    assert message_ids(memory, known) == {"order", "login"}
    computed = survivor["customer"]["computed"]
    assert (computed["event_count"], computed["lifetime_value"]) == (2, {"EUR": 12.5})
    assert "plan" not in survivor["customer"]["traits"]
    assert survivor["event_counts"] == {"Order Completed": 1, "identify": 1}

    assert memory.lookup(email="ana@example.com")["customer"]["id"] == anonymous
    assert memory.lookup(user_id="user-3")["customer"]["id"] == known
    assert [m["status"] for m in memory.merges(known)] == ["undone"]

    is_error(memory.api.post(f"/api/v1/customers/{anonymous}/unmerge"), 404, "merge_not_found")
    response = memory.api.post(f"/api/v1/customers/{known}/unmerge", json={"merge_id": merge["id"]})
    is_error(response, 409, "merge_not_undoable")


def test_two_user_ids_sharing_an_email_are_not_merged(tracking: Tracking, memory: Memory) -> None:
    tracking.send("identify", {"userId": "user-a", "messageId": "a", "traits": {"email": "family@example.com"}})
    tracking.send("identify", {"userId": "user-b", "messageId": "b", "traits": {"email": "family@example.com"}})
    tracking.send("identify", {"userId": "user-b", "messageId": "b-again", "traits": {"email": "family@example.com"}})

    first = memory.lookup(user_id="user-a")
    second = memory.lookup(user_id="user-b")
    assert first["customer"]["id"] != second["customer"]["id"]
    assert memory.lookup(email="family@example.com")["customer"]["id"] == first["customer"]["id"]
    assert set(identities(first)) == {("user_id", "user-a"), ("email", "family@example.com")}
    assert set(identities(second)) == {("user_id", "user-b")}
    assert message_ids(memory, second["customer"]["id"]) == {"b", "b-again"}

    refusals = memory.merges(second["customer"]["id"])
    assert len(refusals) == 1  # logged once per pair and identity
    (refusal,) = refusals
    assert refusal["status"] == "refused"
    assert (refusal["survivor_id"], refusal["merged_id"]) == (second["customer"]["id"], first["customer"]["id"])
    assert refusal["reason"] == "exclusive_conflict"
    assert refusal["trigger_identity"] == "email:family@example.com"
    assert "user_id" in refusal["explanation"]
    assert memory.merges(first["customer"]["id"]) == refusals
    assert first["customer"]["merged_into"] is None and second["customer"]["merged_into"] is None


def test_a_batch_resolves_in_order(tracking: Tracking, memory: Memory) -> None:
    """Within one request, later calls see the identities earlier calls linked."""
    calls: list[dict[str, Any]] = [
        {"type": "page", "anonymousId": "anon-4", "messageId": "p1"},
        {"type": "track", "userId": "user-4", "event": "Signed Up", "messageId": "t1"},
        {"type": "identify", "userId": "user-4", "anonymousId": "anon-4", "messageId": "i1",
         "traits": {"phone": "+34 699 000 111"}},
        {"type": "track", "anonymousId": "anon-4", "event": "Clicked", "messageId": "t2"},
    ]
    tracking.send("batch", {"batch": calls})
    view = memory.lookup(phone="699000111")
    assert memory.lookup(anonymous_id="anon-4")["customer"]["id"] == view["customer"]["id"]
    assert message_ids(memory, view["customer"]["id"]) == {"p1", "t1", "i1", "t2"}
    assert view["customer"]["computed"]["event_count"] == 4
    assert [m["status"] for m in view["merges"]] == ["merged"]
