"""The hash chain: verification, tamper detection, concurrent appends, privacy erasure."""

from __future__ import annotations

import threading
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.archive.conftest import ANA, archive_one


def _raw(sql: str, **params: Any) -> None:
    from trato.core.db import get_engine

    with get_engine().begin() as conn:
        conn.execute(text(sql), params)


def _chain_of(session, n: int, **kwargs: Any) -> list[Any]:  # type: ignore[no-untyped-def]
    entries = [archive_one(session, invoice=f"F-{i}", **kwargs) for i in range(n)]
    session.commit()
    return entries


def _verify() -> Any:
    from trato.archive import service
    from trato.core.db import new_session

    with new_session(readonly=True) as s:
        return service.verify(s)


def test_an_untouched_chain_verifies(session):
    entries = _chain_of(session, 5)
    assert [e.prev_hash for e in entries[1:]] == [e.entry_hash for e in entries[:-1]]
    report = _verify()
    assert report.ok and report.checked == 5 and report.head_sequence == 5


def test_an_empty_archive_verifies(database_url):
    report = _verify()
    assert report.ok and report.checked == 0


@pytest.mark.parametrize(("sql", "code"), [
    ("UPDATE archived_messages SET channel = 'sms' WHERE sequence = 3", "entry_changed"),
    ("UPDATE archived_messages SET sent_at = created_at WHERE sequence = 3", "entry_changed"),
    ("UPDATE archived_messages SET recipient = 'mallory@example.com' WHERE sequence = 3", "recipient_changed"),
    ("UPDATE archived_messages SET decision = '{\"allowed\": false}' WHERE sequence = 3", "decision_changed"),
    ("UPDATE archived_messages SET content = NULL WHERE sequence = 3", "content_missing"),
    ("UPDATE archived_messages SET erased_at = created_at, content = NULL WHERE sequence = 3",
     "erased_without_request"),
])
def test_a_changed_field_is_named(session, sql, code):
    entries = _chain_of(session, 5)
    _raw(sql)
    report = _verify()
    assert not report.ok
    assert (report.problem.code, report.problem.sequence, report.problem.entry_id) == (code, 3, entries[2].id)
    assert report.checked == 2


@pytest.mark.parametrize("storage", ["parts", "context"])
def test_entries_compressed_with_zlib_before_zstd_still_read_and_verify(session, storage, request):
    """Archives written before zstd keep their zlib streams: they are served and verify as they were."""
    from trato.archive import compression, service

    if storage == "context":
        request.getfixturevalue("reproducer")
    entries = _chain_of(session, 3)
    assert bytes(entries[1].content)[:4] == compression.ZSTD_MAGIC
    served = service.content_of(session, entries[1].id)
    original = compression.decompress(entries[1].content)
    session.commit()
    _raw("UPDATE archived_messages SET content = :c WHERE sequence = 2", c=zlib.compress(original, 9))
    assert _verify().ok
    session.expire_all()
    assert service.content_of(session, entries[1].id) == served


def test_content_that_is_no_compressed_stream_is_named(session):
    from trato.archive import service
    from trato.archive.errors import ContentMismatch

    entries = _chain_of(session, 3)
    _raw("UPDATE archived_messages SET content = :c WHERE sequence = 2", c=b"\x28\xb5\x2f\xfd not a frame")
    report = _verify()
    assert (report.problem.code, report.problem.entry_id) == ("content_changed", entries[1].id)
    session.expire_all()
    with pytest.raises(ContentMismatch):
        service.content_of(session, entries[1].id)


@pytest.mark.parametrize("codec", ["zstd", "zlib"])
@pytest.mark.parametrize("storage", ["parts", "context"])
def test_edited_content_is_named_and_never_served(session, storage, codec, request):
    from trato.archive import chain, service
    from trato.archive.errors import ContentMismatch

    if storage == "context":
        request.getfixturevalue("reproducer")
    entries = _chain_of(session, 4)
    assert entries[1].storage == storage
    forged = (chain.encode_parts({"html": "<p>we never said that</p>"}) if storage == "parts"
              else b'{"invoice":"F-999","name":"Ana"}')
    from trato.archive import compression

    _raw("UPDATE archived_messages SET content = :c WHERE sequence = 2",
         c=compression.compress(forged) if codec == "zstd" else zlib.compress(forged))
    report = _verify()
    assert (report.problem.code, report.problem.entry_id) == ("content_changed", entries[1].id)
    session.expire_all()
    with pytest.raises(ContentMismatch):
        service.content_of(session, entries[1].id)


def test_a_deleted_entry_is_named(session):
    entries = _chain_of(session, 5)
    _raw("DELETE FROM archived_messages WHERE sequence = 2")
    report = _verify()
    assert (report.problem.code, report.problem.sequence, report.problem.entry_id) == (
        "missing_entries", 3, entries[2].id)
    assert "2" in report.problem.message


def test_deleting_the_newest_entries_shows_at_the_head(session):
    _chain_of(session, 5)
    _raw("DELETE FROM archived_messages WHERE sequence >= 4")
    report = _verify()
    assert (report.problem.code, report.problem.sequence) == ("head_mismatch", 3)


def test_reordered_entries_are_named(session):
    entries = _chain_of(session, 4)
    _raw("UPDATE archived_messages SET sequence = 100 WHERE sequence = 2")
    _raw("UPDATE archived_messages SET sequence = 2 WHERE sequence = 3")
    _raw("UPDATE archived_messages SET sequence = 3 WHERE sequence = 100")
    report = _verify()
    assert (report.problem.sequence, report.problem.entry_id) == (2, entries[2].id)
    assert report.problem.code in ("broken_link", "entry_changed")


def test_a_deleted_and_rebuilt_entry_breaks_the_next_link(session):
    """Someone who re-hashes a forged entry still cannot re-link the entries after it."""
    from trato.archive import chain
    from trato.archive.models import ArchivedMessage

    entries = _chain_of(session, 3)
    row = {c.name: getattr(entries[1], c.name) for c in ArchivedMessage.__table__.columns}
    row["channel"] = "sms"
    _raw("UPDATE archived_messages SET channel = 'sms', entry_hash = :h WHERE sequence = 2", h=chain.entry_hash(row))
    report = _verify()
    assert (report.problem.code, report.problem.entry_id) == ("broken_link", entries[2].id)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(1, 6), data=st.data())
def test_any_tampered_entry_is_the_one_named(database_url, size, data):
    from tests.database import empty_database
    from trato.core.db import unit_of_work

    empty_database()
    with unit_of_work() as s:
        entries = [archive_one(s, invoice=f"F-{i}", message_id=f"m{i}") for i in range(size)]
        ids = [e.id for e in entries]
    target = data.draw(st.integers(1, size))
    column, value = data.draw(st.sampled_from([
        ("language", "'xx'"), ("message_id", "'forged'"), ("is_test", "NOT is_test"),
        ("customer_id", "'cus_OTHER'"), ("version_id", "'ver_9'"), ("content_sha256", "entry_hash"),
    ]))
    _raw(f"UPDATE archived_messages SET {column} = {value} WHERE sequence = :n", n=target)
    report = _verify()
    assert report.problem is not None and report.problem.entry_id == ids[target - 1]


def test_concurrent_writers_never_fork_the_chain(database_url):
    """Writers in parallel transactions: every append waits for the head, sequences stay gap-free."""
    from trato.archive import service
    from trato.core.db import new_session, unit_of_work

    writers, each = 6, 5
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write(n: int) -> None:
        try:
            start.wait()
            for i in range(each):
                with unit_of_work() as s:
                    archive_one(s, customer_id=f"cus_{n}", invoice=f"{n}-{i}", message_id=f"w{n}-{i}")
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    report = _verify()
    assert report.ok and report.checked == writers * each
    with new_session(readonly=True) as s:
        sequences = sorted(e.sequence for e in service.search(s, limit=100))
    assert sequences == list(range(1, writers * each + 1))


def test_the_same_message_from_two_workers_at_once_is_archived_once(database_url):
    """A redelivered task racing the first one: both get the same entry, the chain holds one."""
    from trato.core.db import unit_of_work

    start = threading.Barrier(2)
    ids: list[str] = []
    failures: list[BaseException] = []

    def write() -> None:
        try:
            start.wait()
            with unit_of_work() as s:
                ids.append(archive_one(s, message_id="msg_twice").id)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert len(ids) == 2 and ids[0] == ids[1]
    report = _verify()
    assert report.ok and report.checked == 1


def test_a_second_writer_waits_for_the_first_to_commit(database_url):
    from trato.core.db import new_session

    first, second = new_session(), new_session()
    done = threading.Event()
    try:
        archive_one(first, invoice="first")  # holds the chain head until it commits

        def write_second() -> None:
            archive_one(second, invoice="second")
            second.commit()
            done.set()

        thread = threading.Thread(target=write_second)
        thread.start()
        assert not done.wait(0.3), "the second append did not wait for the chain head"
        first.commit()
        thread.join(10)
        assert done.is_set()
    finally:
        first.close()
        second.close()
    report = _verify()
    assert report.ok and report.checked == 2


def _archive_text() -> str:
    """Every value in every archive table, decompressed where compressed, as one text."""
    from trato.archive import compression
    from trato.core.db import get_engine

    found = []
    with get_engine().connect() as conn:
        for table in ("archived_messages", "archive_statuses", "archive_chain_head"):
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        value = compression.decompress(value).decode("utf-8", "replace")
                    found.append(str(value))
    return "\n".join(found)


def test_erasure_leaves_a_verifiable_chain_and_no_contact_data(session, reproducer):
    from datetime import UTC, datetime

    from trato.archive import service
    from trato.archive.errors import ContentErased
    from trato.core.audit import AuditEntry

    email = archive_one(session, message_id="e1", decision={"allowed": True, "to": ANA["email"]})
    sms = archive_one(session, channel="sms", recipient=ANA["phone"], message_id="s1")
    letter = archive_one(session, channel="letter", recipient="Calle Mayor 1, Madrid", parts={"pdf": b"%PDF Ana"})
    bruno = archive_one(session, customer_id="cus_BRUNO", recipient="bruno@example.com", name="Bruno",
                         invoice="B-7")
    service.record_status(session, message_id="e1", status="bounced", at=datetime(2026, 11, 2, tzinfo=UTC),
                          details={"diagnostic": f"550 {ANA['email']}: no such user"})
    session.commit()
    assert ANA["email"] in _archive_text() and ANA["phone"] in _archive_text()

    assert service.erase_customer(session, customer_id=ANA["customer_id"], actor="user:dpo") == 3
    session.commit()
    everything = _archive_text()
    for secret in (ANA["email"], ANA["phone"], "Calle Mayor", "Hola Ana", "%PDF Ana", "F-1"):
        assert secret not in everything
    assert "bruno@example.com" in everything
    report = _verify()
    assert report.ok and report.checked == 4 and report.erased == 3
    for entry in (email, sms, letter):
        with pytest.raises(ContentErased):
            service.content_of(session, entry.id)
    assert service.content_of(session, bruno.id)["subject"] == "Hola Bruno (ver_1)"
    assert session.query(AuditEntry).filter_by(action="archive.erase_customer").one().details == {
        "entries": 3, "requested_for": ANA["customer_id"]}
    # A state reported after the erasure keeps no details either.
    service.record_status(session, message_id="s1", status="delivered", at=datetime(2026, 11, 3, tzinfo=UTC),
                          details={"to": ANA["phone"]})
    session.commit()
    assert ANA["phone"] not in _archive_text()
    assert service.erase_customer(session, customer_id=ANA["customer_id"], actor="user:dpo") == 0


def test_erasure_reaches_the_profiles_merged_into_the_customer(session):
    from trato.archive import service
    from trato.customers import service as customers

    survivor = customers.create_customer(session, traits={"first_name": "Ana"},
                                         identities=[("email", ANA["email"])], actor="test")
    merged = customers.create_customer(session, traits={"first_name": "Ana"},
                                       identities=[("phone", ANA["phone"])], actor="test")
    older = archive_one(session, customer_id=merged.id, channel="sms", recipient=ANA["phone"])
    customers.merge(session, survivor_id=survivor.id, merged_id=merged.id, actor="test")
    newer = archive_one(session, customer_id=survivor.id)
    session.commit()
    assert [e.id for e in service.messages_of(session, customer_id=survivor.id)] == [newer.id, older.id]

    assert service.erase_customer(session, customer_id=survivor.id, actor="user:dpo") == 2
    session.commit()
    assert ANA["phone"] not in _archive_text() and ANA["email"] not in _archive_text()
    assert {service.get_entry(session, e.id).erased_at is not None for e in (older, newer)} == {True}
    report = _verify()
    assert report.ok and report.erased == 2
