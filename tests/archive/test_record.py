"""Recording messages: both storage modes, exact content back, idempotency, statuses, read models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.archive.conftest import ANA, PDF, archive_one


def test_without_a_reproducer_the_parts_are_stored_compressed_and_come_back_exactly(session):
    from trato.archive import service

    entry = archive_one(session)
    session.commit()
    assert entry.storage == "parts" and entry.sequence == 1 and entry.prev_hash == "0" * 64
    assert service.content_of(session, entry.id) == {
        "subject": "Hola Ana (ver_1)",
        "html": '<html lang="es"><body><p style="color:#c00">Hola Ana</p><p>Invoice F-1</p></body></html>',
        "text": "Hola Ana\nInvoice F-1",
    }


def test_with_a_reproducer_only_the_context_is_stored(session, reproducer):
    from trato.archive import compression, service

    entry = archive_one(session, invoice="F-2")
    session.commit()
    assert entry.storage == "context" and entry.context_sha256 is not None
    assert compression.decompress(entry.content) == b'{"invoice":"F-2","name":"Ana"}'
    assert service.content_of(session, entry.id)["text"] == "Hola Ana\nInvoice F-2"


def test_letters_keep_their_pdf_even_with_a_reproducer(session, reproducer):
    from trato.archive import service

    entry = archive_one(session, channel="letter", recipient="Calle Mayor 1, 28013 Madrid",
                        parts={"pdf": PDF, "address": "Ana García\nCalle Mayor 1\n28013 Madrid"})
    session.commit()
    assert entry.storage == "parts"
    assert service.content_of(session, entry.id)["pdf"] == PDF


def test_a_reproduction_that_differs_stores_the_parts(session, reproducer):
    from trato.archive import service

    sent = {"subject": "Hola Ana (ver_1)", "html": "<p>edited by hand after rendering</p>", "text": "x"}
    entry = archive_one(session, parts=sent)
    session.commit()
    assert entry.storage == "parts"
    assert service.content_of(session, entry.id) == sent


def test_a_context_entry_needs_the_reproducer_to_be_read(session, reproducer):
    from trato.archive import service
    from trato.archive.errors import ReproducerMissing

    entry = archive_one(session)
    session.commit()
    service.register_reproducer(None)
    with pytest.raises(ReproducerMissing):
        service.content_of(session, entry.id)


def test_a_reproducer_that_changed_its_output_is_caught(session, reproducer):
    from trato.archive import service
    from trato.archive.errors import ContentMismatch

    entry = archive_one(session)
    session.commit()
    service.register_reproducer(lambda s, **kw: {**reproducer(s, **kw), "text": "a new template"})
    with pytest.raises(ContentMismatch):
        service.content_of(session, entry.id)


def test_the_same_message_id_is_archived_once(session):
    from trato.archive import service
    from trato.archive.errors import MessageAlreadyArchived

    first = archive_one(session, message_id="msg_1")
    again = archive_one(session, message_id="msg_1")
    assert again.id == first.id
    with pytest.raises(MessageAlreadyArchived):
        archive_one(session, message_id="msg_1", invoice="F-other")
    session.commit()
    assert len(service.search(session)) == 1


@pytest.mark.parametrize(("changes", "field"), [
    ({"channel": "fax"}, "channel"), ({"parts": {}}, "parts"), ({"parts": {"html": 3}}, None),
    ({"recipient": ""}, "recipient"), ({"language": ""}, "language"), ({"version_id": ""}, None),
])
def test_bad_input_is_refused_with_a_code(session, changes, field):
    from trato.archive.errors import InvalidArchiveInput

    with pytest.raises(InvalidArchiveInput) as caught:
        archive_one(session, **changes)
    assert caught.value.code == "invalid_archive_input"
    if field is not None:
        assert caught.value.details["field"] == field


def test_statuses_are_appended_outside_the_chain(session):
    from trato.archive import service
    from trato.archive.errors import EntryNotFound, InvalidArchiveInput

    entry = archive_one(session, message_id="msg_9")
    t0 = datetime(2026, 11, 2, 9, 30, 1, tzinfo=UTC)
    service.record_status(session, message_id="msg_9", status="accepted", at=t0, provider_id="SM123")
    service.record_status(session, entry_id=entry.id, status="delivered", at=t0 + timedelta(seconds=3))
    # A late callback for an earlier state neither duplicates nor rewinds the current status.
    service.record_status(session, message_id="msg_9", status="accepted", at=t0, provider_id="SM123")
    service.record_status(session, message_id="msg_9", status="queued", at=t0 - timedelta(seconds=1))
    session.commit()
    assert [s.status for s in service.statuses_of(session, entry.id)] == ["queued", "accepted", "delivered"]
    assert service.get_entry(session, entry.id).status == "delivered"
    assert service.verify(session).ok
    with pytest.raises(EntryNotFound):
        service.record_status(session, message_id="nope", status="delivered", at=t0)
    with pytest.raises(InvalidArchiveInput):
        service.record_status(session, message_id="msg_9", status="teleported", at=t0)
    with pytest.raises(InvalidArchiveInput):
        service.record_status(session, message_id="msg_9", entry_id=entry.id, status="read", at=t0)


def test_search_messages_of_and_inventory_figures(session):
    from trato.archive import service

    base = datetime(2026, 11, 1, tzinfo=UTC)
    for day in range(5):
        archive_one(session, sent_at=base + timedelta(days=day), communication_id="com_A",
                    channel="sms" if day % 2 else "email", recipient=ANA["phone"] if day % 2 else ANA["email"])
    archive_one(session, customer_id="cus_BRUNO", recipient="bruno@example.com", communication_id="com_B",
                sent_at=base)
    archive_one(session, customer_id="cus_BRUNO", recipient="bruno@example.com", communication_id="com_B",
                is_test=True, sent_at=base + timedelta(days=9))
    session.commit()

    newest = service.search(session, limit=3)
    assert [e.sequence for e in newest] == [7, 6, 5]
    assert [e.sequence for e in service.search(session, limit=3, before=5)] == [4, 3, 2]
    assert [e.sequence for e in service.search(session, customer_id=ANA["customer_id"], channel="sms")] == [4, 2]
    assert [e.sequence for e in service.messages_of(session, customer_id="cus_BRUNO", limit=1)] == [7]
    created = newest[0].created_at
    assert len(service.search(session, since=created - timedelta(minutes=1))) == 7
    assert service.search(session, until=created - timedelta(minutes=1)) == []

    figures = service.last_sent_and_volume(session, communication_ids=["com_A", "com_B", "com_NEVER"])
    assert figures == {"com_A": (base + timedelta(days=4), 5), "com_B": (base, 1)}


text_or_bytes = st.one_of(st.text(max_size=200), st.binary(max_size=200))


@given(st.dictionaries(st.text(min_size=1, max_size=20), text_or_bytes, min_size=1, max_size=6))
def test_the_canonical_parts_serialisation_round_trips(parts):
    from trato.archive import chain

    encoded = chain.encode_parts(parts)
    assert chain.decode_parts(encoded) == parts
    assert chain.encode_parts(dict(reversed(list(parts.items())))) == encoded  # order does not matter


@given(st.dictionaries(st.text(min_size=1, max_size=5), text_or_bytes, min_size=1, max_size=3),
       st.dictionaries(st.text(min_size=1, max_size=5), text_or_bytes, min_size=1, max_size=3))
def test_different_parts_never_serialise_alike(one, other):
    from trato.archive import chain

    # Text and bytes of the same value are different parts: an e-mail body is not a PDF.
    assert (chain.encode_parts(one) == chain.encode_parts(other)) == (
        {k: (type(v), v) for k, v in one.items()} == {k: (type(v), v) for k, v in other.items()})


def test_statuses_keep_no_index_of_their_own_on_the_entry_and_migrations_go_both_ways(database_url):
    """Migration 0018 drops archive_statuses' index on entry_id (its unique constraint on
    (entry_id, status, at) serves lookups by entry); going back to 0017 makes it again."""
    from sqlalchemy import inspect

    from trato.core import migrate
    from trato.core.db import get_engine

    def indexes() -> set[str]:
        return {ix["name"] for ix in inspect(get_engine()).get_indexes("archive_statuses")}

    assert "ix_archive_statuses_entry_id" not in indexes()
    migrate.downgrade("0017")
    try:
        assert "ix_archive_statuses_entry_id" in indexes()
    finally:
        migrate.upgrade()
    assert "ix_archive_statuses_entry_id" not in indexes()


def test_a_bulk_append_with_a_message_archived_already_is_refused_whole_and_names_it(session):
    """record_many leans on the unique message id: a batch holding a message archived already is
    refused with the taken ids, and nothing of it stays (the chain head does not move)."""
    from datetime import UTC, datetime

    from tests.archive.conftest import ANA
    from trato.archive import service
    from trato.archive.errors import MessageAlreadyArchived

    def item(message_id: str) -> dict[str, object]:
        return {"customer_id": ANA["customer_id"], "communication_id": "com_PROMO", "version_id": "ver_1",
                "channel": "email", "language": "es", "recipient": ANA["email"],
                "parts": {"subject": "Hola", "html": f"<p>{message_id}</p>"}, "message_id": message_id,
                "decision": {"outcome": "send"}, "sent_at": datetime(2026, 11, 2, 9, 30, tzinfo=UTC)}

    first = service.record_many(session, [item("msg_a"), item("msg_b")])
    session.commit()
    with pytest.raises(MessageAlreadyArchived) as caught:
        service.record_many(session, [item("msg_c"), item("msg_b"), item("msg_d")])
    session.rollback()
    assert caught.value.details == {"message_ids": ["msg_b"]}
    assert len(service.search(session)) == 2
    again = service.record_many(session, [item("msg_c"), item("msg_d")])
    session.commit()
    assert len(first) == len(again) == 2 and service.verify(session).ok
    # A caller that creates its messages in the same unit of work skips the look-up; the unique
    # message id still refuses a duplicate.
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        service.append_prepared(session, service.prepare_many([item("msg_a")]), new_messages=True)
    session.rollback()
    assert len(service.search(session)) == 4 and service.verify(session).ok
