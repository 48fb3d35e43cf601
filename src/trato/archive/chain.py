"""What the archive hashes, and the walk that checks it (``trato archive verify``).

Each entry's hash is SHA-256 over the canonical JSON (orjson, sorted keys) of its immutable
fields, the hashes of its content, recipient and decision, and the previous entry's hash.
Content is hashed on its own (``content_sha256``) so that erasure can drop the content and
keep the chain verifiable.

Parts are serialised canonically as ``trato-parts/1\\n`` followed, for each part in name
order, by ``<len>:<name utf-8><s|b><len>:<value>`` (``s`` text as UTF-8, ``b`` bytes): easy to
reproduce anywhere, byte-exact for PDFs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from trato.archive import compression
from trato.archive.models import STORAGE_CONTEXT, STORAGE_PARTS, ArchiveChainHead, ArchivedMessage
from trato.core.audit import AuditEntry
from trato.core.clock import iso

GENESIS = "0" * 64
HEAD_ID = 1
PARTS_MAGIC = b"trato-parts/1\n"
ERASE_ACTION = "archive.erase_customer"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """Compact JSON with sorted keys: the same value always gives the same bytes."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def encode_parts(parts: Mapping[str, str | bytes]) -> bytes:
    """The canonical serialisation of a message's parts (see the module's docstring)."""
    out = [PARTS_MAGIC]
    for name in sorted(parts):
        value = parts[name]
        if isinstance(value, str):
            kind, data = b"s", value.encode()
        elif isinstance(value, bytes | bytearray | memoryview):
            kind, data = b"b", bytes(value)
        else:
            raise TypeError(f"part {name!r} is {type(value).__name__}, not str or bytes")
        raw_name = name.encode()
        out += [b"%d:" % len(raw_name), raw_name, kind, b"%d:" % len(data), data]
    return b"".join(out)


def _length(data: bytes, at: int) -> tuple[int, int]:
    colon = data.index(b":", at, at + 21)
    return int(data[at:colon]), colon + 1


def decode_parts(data: bytes) -> dict[str, str | bytes]:
    """The parts back from :func:`encode_parts`; ValueError when the bytes are not such a serialisation."""
    if not data.startswith(PARTS_MAGIC):
        raise ValueError("not a trato parts serialisation")
    parts: dict[str, str | bytes] = {}
    at = len(PARTS_MAGIC)
    while at < len(data):
        size, at = _length(data, at)
        name = data[at : at + size].decode()
        at += size
        kind = data[at : at + 1]
        size, at = _length(data, at + 1)
        value = data[at : at + size]
        if len(value) != size or kind not in (b"s", b"b"):
            raise ValueError("truncated or malformed part")
        at += size
        parts[name] = value.decode() if kind == b"s" else value
    return parts


def recipient_hash(salt: str, recipient: str) -> str:
    return sha256(f"{salt}\n{recipient}".encode())


def entry_hash(row: Mapping[str, Any]) -> str:
    """SHA-256 of an entry's immutable fields and the previous entry's hash."""
    fields = {
        "v": 1,
        "id": row["id"],
        "sequence": row["sequence"],
        "customer_id": row["customer_id"],
        "communication_id": row["communication_id"],
        "version_id": row["version_id"],
        "channel": row["channel"],
        "language": row["language"],
        "recipient_sha256": row["recipient_sha256"],
        "message_id": row["message_id"],
        "is_test": bool(row["is_test"]),
        "storage": row["storage"],
        "content_sha256": row["content_sha256"],
        "context_sha256": row["context_sha256"],
        "decision_sha256": row["decision_sha256"],
        "created_at": iso(row["created_at"]),
        "sent_at": iso(row["sent_at"]) if row["sent_at"] is not None else None,
        "prev_hash": row["prev_hash"],
    }
    return sha256(canonical_json(fields))


# -- verification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """The first broken link: which entry, what is wrong (a stable code) and how it shows."""

    code: str
    message: str
    sequence: int | None = None
    entry_id: str | None = None


@dataclass
class VerifyReport:
    checked: int = 0
    erased: int = 0
    head_sequence: int = 0
    problem: Problem | None = None
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None


def _content_problem(row: Mapping[str, Any], erased_customers: set[str]) -> tuple[str, str] | None:
    if row["erased_at"] is not None:
        if row["customer_id"] not in erased_customers:
            return "erased_without_request", "content was removed, but no erasure of this customer was recorded"
        return None
    if row["recipient"] is None or row["recipient_salt"] is None or (
        recipient_hash(row["recipient_salt"], row["recipient"]) != row["recipient_sha256"]
    ):
        return "recipient_changed", "the recipient does not match its hash"
    if row["decision_sha256"] is not None and (
        row["decision"] is None or sha256(row["decision"].encode()) != row["decision_sha256"]
    ):
        return "decision_changed", "the policy decision does not match its hash"
    if row["content"] is None:
        return "content_missing", "the stored content is gone"
    try:
        stored = compression.decompress(row["content"])
    except compression.CorruptContent:
        return "content_changed", "the stored content cannot be decompressed"
    expected = row["content_sha256"] if row["storage"] == STORAGE_PARTS else row["context_sha256"]
    if row["storage"] not in (STORAGE_PARTS, STORAGE_CONTEXT) or sha256(stored) != expected:
        return "content_changed", "the stored content does not match its hash"
    return None


def _reproduction_problem(session: Session, row: Mapping[str, Any], reproducer: Any) -> tuple[str, str] | None:
    if row["erased_at"] is not None or row["storage"] != STORAGE_CONTEXT:
        return None
    try:
        parts = reproducer(session, version_id=row["version_id"], channel=row["channel"], language=row["language"],
                           context=orjson.loads(compression.decompress(row["content"])))
        same = sha256(encode_parts(parts)) == row["content_sha256"]
    except Exception as exc:  # any failure to reproduce is what this check is looking for
        return "reproduction_failed", f"the content cannot be reproduced from its context: {type(exc).__name__}"
    return None if same else ("reproduction_differs", "reproducing the content gives other bytes than were sent")


def verify(session: Session, *, batch: int = 2000, reproducer: Any = None) -> VerifyReport:
    """Walk the chain in sequence order (streamed: memory does not grow) up to the first broken link.

    Checks, for every entry: no sequence number is missing, the link to the previous entry,
    the entry's own hash, and that its stored recipient, decision and content still match their
    hashes (erased entries must belong to a customer whose erasure is in the audit trail).
    Finally, the chain head must name the last entry, so that deleting the newest ones shows.
    With a ``reproducer``, entries kept as their render context are also reproduced and the
    result compared with the archived SHA-256 (slower: every such message is rendered again).
    """
    report = VerifyReport()
    erased_customers = set(session.scalars(
        select(AuditEntry.object_id).where(AuditEntry.action == ERASE_ACTION).distinct()
    ))
    table = ArchivedMessage.__table__
    rows = session.execute(
        select(table).order_by(table.c.sequence).execution_options(yield_per=batch)
    ).mappings()
    previous_hash, previous_sequence = GENESIS, 0
    for row in rows:
        sequence = row["sequence"]
        if sequence != previous_sequence + 1:
            missing = f"{previous_sequence + 1}" if sequence == previous_sequence + 2 else (
                f"{previous_sequence + 1}–{sequence - 1}")
            report.problem = Problem("missing_entries", f"entries {missing} are missing before this one",
                                     sequence, row["id"])
            break
        if row["prev_hash"] != previous_hash:
            report.problem = Problem("broken_link", "the link to the previous entry is broken", sequence, row["id"])
            break
        if entry_hash(row) != row["entry_hash"]:
            report.problem = Problem("entry_changed", "a field of this entry was changed", sequence, row["id"])
            break
        found = _content_problem(row, erased_customers)
        if found is None and reproducer is not None:
            found = _reproduction_problem(session, row, reproducer)
        if found is not None:
            report.problem = Problem(found[0], found[1], sequence, row["id"])
            break
        report.checked += 1
        report.erased += row["erased_at"] is not None
        previous_hash, previous_sequence = row["entry_hash"], sequence
    rows.close()
    head = session.get(ArchiveChainHead, HEAD_ID)
    report.head_sequence = head.sequence if head is not None else 0
    if report.problem is None and head is None and previous_sequence:
        report.problem = Problem("head_missing", "the chain head is missing", previous_sequence)
    elif report.problem is None and head is not None and (
        head.sequence != previous_sequence or head.entry_hash != previous_hash
    ):
        report.problem = Problem(
            "head_mismatch",
            f"the chain head names entry {head.sequence}, the last entry found is {previous_sequence}: "
            "newer entries were deleted or the head was changed",
            previous_sequence or None,
        )
    return report
