"""The archive's public face: record every message sent, prove it later, erase on request.

``record`` appends a hash-chained entry (appends are serialised on the chain head row);
``verify`` walks the chain; ``content_of`` gives back the exact parts, re-checked against their
SHA-256. Entries store the rendered parts compressed, or only the render context when the
content domain's reproducer (see :func:`register_reproducer`) gives the same bytes back.
Letters always keep their PDF.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, make_transient_to_detached

from trato.archive import chain, compression
from trato.archive.chain import VerifyReport
from trato.archive.errors import (
    ContentErased, ContentMismatch, EntryNotFound, InvalidArchiveInput, MessageAlreadyArchived, ReproducerMissing,
)
from trato.archive.models import STORAGE_CONTEXT, STORAGE_PARTS, ArchiveChainHead, ArchivedMessage, ArchiveStatus
from trato.core import audit
from trato.core.channels import CHANNELS
from trato.core.clock import as_utc, utcnow
from trato.core.db import insert_for
from trato.core.ids import new_id
from trato.customers import service as customers_service
from trato.customers import writes

__all__ = [
    "STATUSES", "VerifyReport", "content_of", "erase_customer", "get_entry", "last_sent_and_volume",
    "has_reproducer", "messages_of", "record", "record_many", "record_status", "record_statuses",
    "register_reproducer", "search", "statuses_of", "verify",
]

log = structlog.get_logger("trato.archive")

Reproducer = Callable[..., Mapping[str, str | bytes]]
# Delivery states an archived message can be given after it was archived.
STATUSES = (
    "decided", "queued", "sending", "accepted", "possibly_sent", "sent", "delivered", "read", "opened",
    "clicked", "failed", "bounced", "complained", "unsubscribed",
)
MAX_PART_NAME = 64
_reproducer: Reproducer | None = None


def register_reproducer(fn: Reproducer | None) -> Reproducer | None:
    """Use ``fn(session, *, version_id, channel, language, context) -> parts`` to re-create content.

    The content domain registers ``content.service.reproduce`` at start-up; ``None`` unregisters.
    Returns the reproducer it replaces.
    """
    global _reproducer
    previous, _reproducer = _reproducer, fn
    return previous


def has_reproducer() -> bool:
    """Whether a reproducer is registered (start-up registers the content domain's once)."""
    return _reproducer is not None


def _check_parts(parts: Mapping[str, str | bytes]) -> None:
    if not isinstance(parts, Mapping) or not parts:
        raise InvalidArchiveInput("a message has at least one part", details={"field": "parts"})
    for name, value in parts.items():
        if not isinstance(name, str) or not 0 < len(name) <= MAX_PART_NAME:
            raise InvalidArchiveInput(f"part names are 1 to {MAX_PART_NAME} characters", details={"part": str(name)})
        if not isinstance(value, str | bytes):
            raise InvalidArchiveInput(f"part {name!r} must be text or bytes", details={"part": name})


def _check(channel: str, language: str, recipient: str, customer_id: str, ids: Iterable[str]) -> None:
    if channel not in CHANNELS:
        raise InvalidArchiveInput(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}",
                                  details={"field": "channel"})
    if not language or len(language) > 16:
        raise InvalidArchiveInput("language is a tag such as 'es' or 'en-GB'", details={"field": "language"})
    if not recipient or len(recipient) > 320:
        raise InvalidArchiveInput("the recipient address is 1 to 320 characters", details={"field": "recipient"})
    if not customer_id or any(not value or len(value) > 64 for value in ids):
        raise InvalidArchiveInput("customer, communication and version ids are 1 to 64 characters")


def _stored_form(
    session: Session, *, channel: str, version_id: str, language: str, render_context: dict[str, Any] | None,
    encoded: bytes, content_sha256: str,
) -> tuple[str, bytes, str | None]:
    """What to keep: the render context when it reproduces the same bytes, else the parts."""
    if channel != "letter" and render_context is not None and _reproducer is not None:
        try:
            context_bytes = chain.canonical_json(render_context)
            # Reproduce from the context as it will be read back, not from the caller's objects.
            again = _reproducer(session, version_id=version_id, channel=channel, language=language,
                                context=orjson.loads(context_bytes))
            if chain.sha256(chain.encode_parts(again)) == content_sha256:
                return STORAGE_CONTEXT, compression.compress(context_bytes), chain.sha256(context_bytes)
            log.warning("reproduction differs; the parts are stored", version_id=version_id, channel=channel)
        except Exception:  # the archive must never lose a message because a reproduction failed
            log.warning("reproduction failed; the parts are stored", version_id=version_id, channel=channel,
                        exc_info=True)
    return STORAGE_PARTS, compression.compress(encoded), None


# Built once: record() runs for every message sent, and building statements costs more than running them.
_HEAD = ArchiveChainHead.__table__
_ENTRIES = ArchivedMessage.__table__
_READ_HEAD = select(_HEAD.c.sequence, _HEAD.c.entry_hash).where(_HEAD.c.id == chain.HEAD_ID).with_for_update()
_MOVE_HEAD = update(_HEAD).where(_HEAD.c.id == chain.HEAD_ID)
_LAST_ENTRY = select(_ENTRIES.c.sequence, _ENTRIES.c.entry_hash).order_by(_ENTRIES.c.sequence.desc()).limit(1)
_BY_MESSAGE_ID = select(_ENTRIES.c.id, _ENTRIES.c.content_sha256, _ENTRIES.c.customer_id).where(
    _ENTRIES.c.message_id == bindparam("message_id"))
_INSERT = _ENTRIES.insert()


def _lock_head(session: Session, conn: Connection) -> tuple[int, str]:
    """The chain head (sequence, hash), locked until the caller's transaction ends."""
    found = conn.execute(_READ_HEAD).one_or_none()
    if found is None:
        # First entry ever (or a head row lost): start from the newest entry there is, if any.
        last = conn.execute(_LAST_ENTRY).one_or_none()
        sequence, entry_hash = (last.sequence, last.entry_hash) if last else (0, chain.GENESIS)
        conn.execute(insert_for(session)(_HEAD).values(id=chain.HEAD_ID, sequence=sequence, entry_hash=entry_hash)
                     .on_conflict_do_nothing(index_elements=["id"]))
        found = conn.execute(_READ_HEAD).one()
    return found.sequence, found.entry_hash


def record(
    session: Session,
    *,
    customer_id: str,
    communication_id: str,
    version_id: str,
    channel: str,
    language: str,
    recipient: str,
    parts: Mapping[str, str | bytes],
    render_context: dict[str, Any] | None = None,
    decision: dict[str, Any] | None = None,
    message_id: str | None = None,
    is_test: bool = False,
    sent_at: datetime | None = None,
) -> ArchivedMessage:
    """Archive one message sent: append a hash-chained entry to the caller's unit of work.

    Idempotent on ``message_id``: the same message archived again returns the first entry; the
    same id with other content or another customer is a :class:`MessageAlreadyArchived`.
    Appends are serialised on the chain head, held until the caller commits: commit soon.
    """
    _check(channel, language, recipient, customer_id, (communication_id, version_id))
    _check_parts(parts)
    encoded = chain.encode_parts(parts)
    content_sha256 = chain.sha256(encoded)
    storage, stored, context_sha256 = _stored_form(
        session, channel=channel, version_id=version_id, language=language, render_context=render_context,
        encoded=encoded, content_sha256=content_sha256,
    )
    decision_text = chain.canonical_json(decision).decode() if decision is not None else None
    salt = os.urandom(16).hex()
    values: dict[str, Any] = {
        "id": new_id("arc"), "customer_id": customer_id, "communication_id": communication_id,
        "version_id": version_id, "channel": channel, "language": language, "recipient": recipient,
        "recipient_salt": salt, "recipient_sha256": chain.recipient_hash(salt, recipient),
        "message_id": message_id, "is_test": bool(is_test), "storage": storage, "content": stored,
        "content_sha256": content_sha256, "context_sha256": context_sha256, "decision": decision_text,
        "decision_sha256": chain.sha256(decision_text.encode()) if decision_text is not None else None,
        "sent_at": as_utc(sent_at) if sent_at is not None else None, "status": "archived", "status_at": None,
        "erased_at": None,
    }
    # Everything above ran before the lock, so the serialised part is short. Core statements on
    # the session's connection: the ORM's per-statement overhead is not needed here.
    conn = session.connection()
    sequence, prev_hash = _lock_head(session, conn)
    if message_id is not None:
        # Checked under the lock: a message archived by a concurrent writer is seen here.
        existing = conn.execute(_BY_MESSAGE_ID, {"message_id": message_id}).one_or_none()
        if existing is not None:
            if existing.content_sha256 != content_sha256 or existing.customer_id != customer_id:
                raise MessageAlreadyArchived(
                    f"message {message_id} is archived already with other content or for another customer",
                    details={"entry_id": existing.id},
                )
            return get_entry(session, existing.id)
    values.update(sequence=sequence + 1, prev_hash=prev_hash, created_at=utcnow())
    values["entry_hash"] = chain.entry_hash(values)
    conn.execute(_INSERT, values)
    conn.execute(_MOVE_HEAD, {"sequence": values["sequence"], "entry_hash": values["entry_hash"]})
    # Inserted above without the unit of work's overhead; the caller still gets the mapped entry.
    entry = ArchivedMessage(**values)
    make_transient_to_detached(entry)
    session.add(entry)
    return entry


def verify(session: Session, *, reproduce: bool = False) -> VerifyReport:
    """Check the whole chain in sequence order and report the first broken link (see chain.verify).

    ``reproduce`` also re-renders every entry kept as its render context with the registered
    reproducer and compares it with the archived hash (ReproducerMissing when there is none).
    """
    if reproduce and _reproducer is None:
        raise ReproducerMissing("no reproducer is registered: the content domain registers one at start-up")
    return chain.verify(session, reproducer=_reproducer if reproduce else None)


def get_entry(session: Session, entry_id: str) -> ArchivedMessage:
    """One archived message (without loading its content); EntryNotFound when there is none."""
    # NUL cannot be stored in a text column (PostgreSQL refuses even to compare it): no entry has it.
    entry = session.get(ArchivedMessage, entry_id) if "\x00" not in entry_id else None
    if entry is None:
        raise EntryNotFound(f"no archived message has the id {entry_id!r}")
    return entry


def content_of(session: Session, entry_id: str) -> dict[str, str | bytes]:
    """The exact parts the customer received, re-checked against the archived SHA-256.

    Raises ContentErased after a privacy erasure, ContentMismatch when the stored content (or
    its reproduction) does not have the archived hash, ReproducerMissing when the entry keeps
    only its render context and no reproducer is registered.
    """
    entry = get_entry(session, entry_id)
    if entry.erased_at is not None:
        raise ContentErased("this message's content was erased at the customer's request",
                            details={"erased_at": entry.erased_at.isoformat()})
    try:
        stored = compression.decompress(entry.content or b"")
    except compression.CorruptContent:
        stored = b""
    if entry.storage == STORAGE_PARTS:
        encoded = stored
    else:
        if entry.context_sha256 is None or chain.sha256(stored) != entry.context_sha256:
            raise ContentMismatch("the stored render context does not match its hash",
                                  details={"entry_id": entry.id})
        if _reproducer is None:
            raise ReproducerMissing("this message is kept as its render context and nothing can reproduce it now")
        encoded = chain.encode_parts(_reproducer(session, version_id=entry.version_id, channel=entry.channel,
                                                 language=entry.language, context=orjson.loads(stored)))
    if chain.sha256(encoded) != entry.content_sha256:
        raise ContentMismatch("the content does not match the archived SHA-256: it is not what was sent",
                              details={"entry_id": entry.id, "content_sha256": entry.content_sha256})
    return chain.decode_parts(encoded)


def _profiles_of(session: Session, customer_id: str) -> list[str]:
    """A customer's id and those of every profile merged into it (messages may name either)."""
    found, pending = [customer_id], [customer_id]
    while pending:
        current = pending.pop()
        for merge in customers_service.merge_log(session, customer_id=current):
            if merge.status == "merged" and merge.survivor_id == current and merge.merged_id not in found:
                found.append(merge.merged_id)
                pending.append(merge.merged_id)
    return found


def erase_customer(session: Session, *, customer_id: str, actor: str) -> int:
    """Replace a customer's personal content by a tombstone; returns how many entries were erased.

    Covers the profiles merged into the customer too. Recipient, its salt, stored content and
    policy decision go (and the details of delivery states); their hashes stay, so the chain
    still verifies. Each profile's erasure is in the audit trail, which ``verify`` requires of
    every erased entry.
    """
    now = utcnow()
    total = 0
    for profile_id in _profiles_of(session, customer_id):
        erased = session.execute(
            update(ArchivedMessage)
            .where(ArchivedMessage.customer_id == profile_id, ArchivedMessage.erased_at.is_(None))
            .values(recipient=None, recipient_salt=None, content=None, decision=None, erased_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        entries = select(ArchivedMessage.id).where(ArchivedMessage.customer_id == profile_id).scalar_subquery()
        session.execute(update(ArchiveStatus).where(ArchiveStatus.entry_id.in_(entries)).values(details=None)
                        .execution_options(synchronize_session=False))
        audit.record(session, actor=actor, action=chain.ERASE_ACTION, object_type="customer", object_id=profile_id,
                     entries=erased, requested_for=customer_id)
        total += erased
    session.expire_all()
    return total


def record_status(
    session: Session,
    *,
    status: str,
    at: datetime,
    message_id: str | None = None,
    entry_id: str | None = None,
    provider_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> ArchivedMessage:
    """Add a delivery state to an archived message (by delivery message id or entry id).

    States live outside the chain. A repeated report (same state, same time) changes nothing;
    the entry's current status is the state with the latest time.
    """
    if (message_id is None) == (entry_id is None):
        raise InvalidArchiveInput("give exactly one of message_id and entry_id")
    if status not in STATUSES:
        raise InvalidArchiveInput(f"unknown status {status!r}; one of {', '.join(STATUSES)}",
                                  details={"field": "status"})
    if entry_id is not None:
        entry = get_entry(session, entry_id)
    else:
        entry = session.scalar(select(ArchivedMessage).where(ArchivedMessage.message_id == message_id))
        if entry is None:
            raise EntryNotFound(f"no archived message has the delivery message id {message_id!r}")
    at = as_utc(at)
    session.execute(insert_for(session)(ArchiveStatus).values(
        entry_id=entry.id, status=status, at=at, provider_id=provider_id,
        details=None if entry.erased_at is not None else details, recorded_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["entry_id", "status", "at"]))
    if entry.status_at is None or at >= entry.status_at:
        entry.status, entry.status_at = status, at
    session.flush()
    return entry


def statuses_of(session: Session, entry_id: str) -> list[ArchiveStatus]:
    """An entry's delivery states, oldest first."""
    return list(session.scalars(
        select(ArchiveStatus).where(ArchiveStatus.entry_id == entry_id).order_by(ArchiveStatus.at, ArchiveStatus.id)
    ))


def search(
    session: Session,
    *,
    customer_id: str | None = None,
    communication_id: str | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[ArchivedMessage]:
    """Archived messages, newest first; ``before`` is the sequence of the last one of the previous page.

    A customer's messages include those sent to profiles that were later merged into it.
    """
    if any("\x00" in value for value in (customer_id or "", communication_id or "", channel or "")):
        return []  # nothing stored holds NUL, and PostgreSQL refuses to compare it
    query = select(ArchivedMessage).order_by(ArchivedMessage.sequence.desc()).limit(limit)
    if customer_id:
        query = query.where(ArchivedMessage.customer_id.in_(_profiles_of(session, customer_id)))
    if communication_id:
        query = query.where(ArchivedMessage.communication_id == communication_id)
    if channel:
        query = query.where(ArchivedMessage.channel == channel)
    if since is not None:
        query = query.where(ArchivedMessage.created_at >= as_utc(since))
    if until is not None:
        query = query.where(ArchivedMessage.created_at < as_utc(until))
    if before is not None:
        query = query.where(ArchivedMessage.sequence < before)
    return list(session.scalars(query))


def messages_of(session: Session, *, customer_id: str, limit: int = 20) -> list[ArchivedMessage]:
    """A customer's archived messages, newest first (for the 360° view)."""
    return search(session, customer_id=customer_id, limit=limit)


def archived_message_ids(session: Session, *, message_ids: Iterable[str]) -> set[str]:
    """Which of ``message_ids`` are archived already: a sender that replays its history skips them."""
    wanted = sorted(set(message_ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        found.update(session.scalars(select(ArchivedMessage.message_id).where(ArchivedMessage.message_id.in_(chunk))))
    return found


def last_sent_and_volume(
    session: Session, *, communication_ids: Iterable[str]
) -> dict[str, tuple[datetime, int]]:
    """For each communication that was sent (test sends aside): when last, and how many messages."""
    ids = list(dict.fromkeys(communication_ids))
    if not ids:
        return {}
    sent = func.coalesce(ArchivedMessage.sent_at, ArchivedMessage.created_at)
    rows = session.execute(
        select(ArchivedMessage.communication_id, func.max(sent), func.count())
        .where(ArchivedMessage.communication_id.in_(ids), ArchivedMessage.is_test.is_(False))
        .group_by(ArchivedMessage.communication_id)
    )
    return {communication_id: (as_utc(last), count) for communication_id, last, count in rows}


def record_many(session: Session, items: Sequence[Mapping[str, Any]]) -> list[str]:
    """Archive many messages in one append: the hash chain is computed here, in order, and the
    entries go in with one multi-row INSERT under one hold of the chain head (same chain format as
    :func:`record`, so ``trato archive verify`` checks them alike). Returns the entry ids in order.

    Each item has :func:`record`'s fields (customer_id, communication_id, version_id, channel,
    language, recipient, parts, decision, message_id, is_test, sent_at), and may carry the parts
    already serialised (``encoded``, :func:`chain.encode_parts` of ``parts``). The parts are stored
    compressed (no reproduction per message: a bulk send renders once and keeps what it sent).
    Message ids already archived are refused with :class:`MessageAlreadyArchived` — a bulk caller
    archives each message once, in the same unit of work that creates it.
    """
    return append_prepared(session, prepare_many(items))


def prepare_many(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The first half of :func:`record_many`, with no database: each item checked, its parts
    encoded, compressed and hashed. It is the costly half, so a bulk sender can do it outside
    its write transaction (or in another process) and keep the append short."""
    rows: list[dict[str, Any]] = []
    for item in items:
        _check(item["channel"], item["language"], item["recipient"], item["customer_id"],
               (item["communication_id"], item["version_id"]))
        _check_parts(item["parts"])
        encoded = item.get("encoded") or chain.encode_parts(item["parts"])
        decision = item.get("decision")
        decision_text = chain.canonical_json(decision).decode() if decision is not None else None
        salt = os.urandom(16).hex()
        sent_at = item.get("sent_at")
        rows.append({
            "id": new_id("arc"), "customer_id": item["customer_id"], "communication_id": item["communication_id"],
            "version_id": item["version_id"], "channel": item["channel"], "language": item["language"],
            "recipient": item["recipient"], "recipient_salt": salt,
            "recipient_sha256": chain.recipient_hash(salt, item["recipient"]), "message_id": item.get("message_id"),
            "is_test": bool(item.get("is_test", False)), "storage": STORAGE_PARTS,
            "content": compression.compress(encoded), "content_sha256": chain.sha256(encoded), "context_sha256": None,
            "decision": decision_text,
            "decision_sha256": chain.sha256(decision_text.encode()) if decision_text is not None else None,
            "sent_at": as_utc(sent_at) if sent_at is not None else None, "status": "archived", "status_at": None,
            "erased_at": None,
        })
    return rows


def append_prepared(session: Session, rows: list[dict[str, Any]], *, new_messages: bool = False) -> list[str]:
    """The second half of :func:`record_many`: the rows of :func:`prepare_many` chained, in order,
    under one hold of the chain head, and inserted. Returns the entry ids in order.
    ``new_messages``: the caller creates these messages in this same unit of work (a campaign
    chunk), so none can be archived already and the look-up that would name them is skipped; the
    unique message id still refuses a duplicate."""
    if not rows:
        return []
    conn = session.connection()
    sequence, prev_hash = _lock_head(session, conn)
    message_ids = [] if new_messages else [r["message_id"] for r in rows if r["message_id"] is not None]
    for part in _chunked(message_ids, 500):
        taken = conn.execute(select(_ENTRIES.c.message_id).where(_ENTRIES.c.message_id.in_(part))).scalars().all()
        if taken:
            raise MessageAlreadyArchived(f"{len(taken)} of these messages are archived already",
                                         details={"message_ids": sorted(taken)[:10]})
    now = utcnow()
    for row in rows:
        sequence += 1
        row.update(sequence=sequence, prev_hash=prev_hash, created_at=now)
        row["entry_hash"] = prev_hash = chain.entry_hash(row)
    writes.insert_many(conn, _ENTRIES, rows)
    conn.execute(_MOVE_HEAD, {"sequence": sequence, "entry_hash": prev_hash})
    return [r["id"] for r in rows]


def _record_known_statuses(session: Session, items: Sequence[Mapping[str, Any]]) -> None:
    """:func:`record_statuses` when the caller knows each entry id and has no details to keep
    (a bulk send's "accepted"): nothing to look up first; the entry's status moves only forward."""
    conn = session.connection()
    dialect = conn.dialect.name
    recorded = writes.moment(dialect, utcnow())
    rows = [{"entry_id": i["entry_id"], "status": i["status"], "at": writes.moment(dialect, i["at"]),
             "provider_id": i.get("provider_id"), "recorded_at": recorded} for i in items]
    writes.execute_many(conn, writes.driver_sql(dialect, _ADD_STATUS), rows)
    writes.execute_many(conn, writes.driver_sql(dialect, _MOVE_STATUS), rows)


# A status seen twice (the same entry, status and moment) is kept once; the entry's own status
# moves only forward in time.
_ADD_STATUS = ("INSERT INTO archive_statuses (entry_id, status, at, provider_id, details, recorded_at) "
               "VALUES (:entry_id, :status, :at, :provider_id, 'null', :recorded_at) "
               "ON CONFLICT (entry_id, status, at) DO NOTHING")
_MOVE_STATUS = ("UPDATE archived_messages SET status = :status, status_at = :at "
                "WHERE id = :entry_id AND (status_at IS NULL OR status_at <= :at)")


def _chunked(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    return (items[start : start + size] for start in range(0, len(items), size))


def record_statuses(session: Session, items: Sequence[Mapping[str, Any]]) -> None:
    """Many delivery states at once (bulk sends): each item has message_id, status, at and
    optionally provider_id, details and entry_id (the archive entry, when the caller knows it);
    like :func:`record_status`, a repeat changes nothing."""
    if not items:
        return
    for item in items:
        if item["status"] not in STATUSES:
            raise InvalidArchiveInput(f"unknown status {item['status']!r}", details={"field": "status"})
    if all(i.get("entry_id") and i.get("details") is None for i in items):
        _record_known_statuses(session, items)
        return
    by_message: dict[str, tuple[str, Any, Any]] = {}
    for part in _chunked([i["message_id"] for i in items], 500):
        for entry_id, message_id, status_at, erased_at in session.execute(
                select(_ENTRIES.c.id, _ENTRIES.c.message_id, _ENTRIES.c.status_at, _ENTRIES.c.erased_at)
                .where(_ENTRIES.c.message_id.in_(part))):
            by_message[message_id] = (entry_id, status_at, erased_at)
    now = utcnow()
    rows, moves = [], []
    for item in items:
        found = by_message.get(item["message_id"])
        if found is None:
            continue
        entry_id, status_at, erased_at = found
        at = as_utc(item["at"])
        rows.append({"entry_id": entry_id, "status": item["status"], "at": at, "provider_id": item.get("provider_id"),
                     "details": None if erased_at is not None else item.get("details"), "recorded_at": now})
        if status_at is None or at >= as_utc(status_at):
            moves.append({"b_id": entry_id, "b_status": item["status"], "b_at": at})
    if rows:  # one prepared statement for all rows (executemany), not a multi-row VALUES compiled per call
        session.connection().execute(insert_for(session)(ArchiveStatus.__table__).on_conflict_do_nothing(
            index_elements=["entry_id", "status", "at"]), rows)
    if moves:
        session.connection().execute(
            update(_ENTRIES).where(_ENTRIES.c.id == bindparam("b_id")).values(
                status=bindparam("b_status"), status_at=bindparam("b_at")), moves)
