"""Printed letters: every letter's PDF joins its print house's open batch; a batch closes when it
is full or at the daily cut-off, and a closed batch is dropped to the print house (a folder or
an SFTP server, see ``letter_drop``) as one directory with the PDFs and a manifest written last.

The database says where each batch stands — ``open`` → ``closed`` → ``dropped`` — so a drop that
fails leaves the batch closed and the next run tries again, and dropping a dropped batch does
nothing. A letter is known to delivery (and to the print house's return file) as
``{batch id}/{item number}``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import orjson
from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from trato.core.clock import iso, utcnow
from trato.core.db import Base, BigIntPK, JSONType, UTCDateTime, new_session, unit_of_work
from trato.core.errors import InvalidInput, NotFound
from trato.core.ids import new_id

BATCH_STATES = ("open", "closed", "dropped")
RETURN_STATUSES = {"delivered": "delivered", "returned": "bounced", "undeliverable": "bounced", "failed": "failed"}
MANIFEST_FIELDS = ("item", "file", "message_id", "customer_id", "name", "address", "pages", "bytes", "sha256",
                   "sides", "postage")


class LetterBatch(Base):
    """One drop to a print house: the letters it holds and where it stands."""

    __tablename__ = "delivery_letter_batches"
    __table_args__ = (Index("ix_delivery_letter_batches_state", "state", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider: Mapped[str] = mapped_column(String(40))
    # The provider's name while the batch is open, null after: at most one open batch per provider.
    open_slot: Mapped[str | None] = mapped_column(String(40), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dropped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    drop_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(1000))


class LetterItem(Base):
    """One letter in a batch: its PDF until the batch is dropped, and what the manifest says of it."""

    __tablename__ = "delivery_letter_items"
    __table_args__ = (UniqueConstraint("batch_id", "number"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("delivery_letter_batches.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    address: Mapped[list[str]] = mapped_column(JSONType, default=list)
    pages: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    sides: Mapped[str] = mapped_column(String(8))  # simplex | duplex
    postage: Mapped[str] = mapped_column(String(40))
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)  # dropped: the archive keeps it
    status: Mapped[str | None] = mapped_column(String(16))  # from the print house's return file
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def provider_id(self) -> str:
        return f"{self.batch_id}/{self.number}"

    @property
    def file_name(self) -> str:
        return f"{self.number:06d}.pdf"


class BatchNotFound(NotFound):
    code = "letter_batch_not_found"


class InvalidReturnFile(InvalidInput):
    code = "invalid_return_file"


@dataclass(frozen=True)
class Letter:
    """What the adapter hands over for one letter."""

    message_id: str
    customer_id: str
    pdf: bytes
    pages: int
    address: Sequence[str]
    sides: str
    postage: str


# -- adding letters ---------------------------------------------------------------------------------


def add_letter(*, provider: str, letter: Letter, batch_size: int) -> str:
    """Put one letter in ``provider``'s open batch (opening one when there is none; closing it
    when full). Returns ``batch/item``; the same message added again returns its first id."""
    for _ in range(3):  # two workers opening the provider's first batch at once: one wins, retry
        try:
            with unit_of_work() as session:
                return _add(session, provider=provider, letter=letter, batch_size=batch_size)
        except IntegrityError:
            continue
    with unit_of_work() as session:
        return _add(session, provider=provider, letter=letter, batch_size=batch_size)


def _add(session: Session, *, provider: str, letter: Letter, batch_size: int) -> str:
    existing = session.scalars(select(LetterItem).where(LetterItem.message_id == letter.message_id)).first()
    if existing is not None:
        return existing.provider_id
    batch = session.scalars(select(LetterBatch).where(LetterBatch.open_slot == provider)
                            .with_for_update()).first()
    if batch is None:
        batch = LetterBatch(id=new_id("lb"), provider=provider, open_slot=provider, state="open", item_count=0,
                            page_count=0, created_at=utcnow(), drop_attempts=0)
        session.add(batch)
        session.flush()
    batch.item_count += 1
    batch.page_count += letter.pages
    item = LetterItem(batch_id=batch.id, number=batch.item_count, message_id=letter.message_id,
                      customer_id=letter.customer_id, address=list(letter.address), pages=letter.pages,
                      size=len(letter.pdf), sha256=hashlib.sha256(letter.pdf).hexdigest(), sides=letter.sides,
                      postage=letter.postage, pdf=letter.pdf, created_at=utcnow())
    session.add(item)
    if batch.item_count >= batch_size:
        _close(batch)
    session.flush()
    return item.provider_id


def _close(batch: LetterBatch) -> None:
    batch.state, batch.open_slot, batch.closed_at = "closed", None, utcnow()


# -- closing and dropping -----------------------------------------------------------------------------


def last_cutoff(now: datetime, cutoff: time) -> datetime:
    """The most recent daily cut-off (UTC) at or before ``now``."""
    today = now.replace(hour=cutoff.hour, minute=cutoff.minute, second=0, microsecond=0)
    return today if today <= now else today - timedelta(days=1)


def close_due(session: Session, *, provider: str, cutoff: time | None, now: datetime | None = None,
              force: bool = False) -> list[str]:
    """Close ``provider``'s open batch when it was opened before the last cut-off (or ``force``)."""
    now = now or utcnow()
    closed = []
    for batch in session.scalars(select(LetterBatch).where(LetterBatch.open_slot == provider).with_for_update()):
        if force or (cutoff is not None and batch.created_at <= last_cutoff(now, cutoff)):
            _close(batch)
            closed.append(batch.id)
    return closed


def batches_to_drop(session: Session, *, provider: str) -> list[str]:
    """Closed batches not yet dropped, oldest first."""
    return list(session.scalars(select(LetterBatch.id).where(LetterBatch.provider == provider,
                                                             LetterBatch.state == "closed")
                                .order_by(LetterBatch.closed_at, LetterBatch.id)))


@dataclass(frozen=True)
class BatchFiles:
    """A closed batch as the print house receives it: its PDFs (read one at a time, so a batch
    of any size never sits in memory whole), then the manifests."""

    batch_id: str
    pdfs: Callable[[], Iterator[tuple[str, bytes]]]
    manifest_csv: bytes
    manifest_json: bytes


def files_of(session: Session, batch_id: str) -> BatchFiles:
    """The files of a batch to drop; each PDF is re-checked against the hash taken when it was added."""
    batch = get_batch(session, batch_id)
    items = items_of(session, batch_id)
    rows = [{"item": i.provider_id, "file": i.file_name, "message_id": i.message_id, "customer_id": i.customer_id,
             "name": i.address[0] if i.address else "", "address": list(i.address[1:]), "pages": i.pages,
             "bytes": i.size, "sha256": i.sha256, "sides": i.sides, "postage": i.postage} for i in items]
    manifest = {"batch": batch.id, "provider": batch.provider, "closed_at": iso(batch.closed_at) if batch.closed_at
                else None, "letters": len(rows), "pages": sum(i.pages for i in items), "items": rows}
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=MANIFEST_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "address": " | ".join(row["address"])})
    wanted = [(i.id, i.provider_id, i.file_name, i.sha256) for i in items]

    def pdfs() -> Iterator[tuple[str, bytes]]:
        with new_session(readonly=True) as reading:
            for item_id, provider_id, file_name, sha256 in wanted:
                data = reading.scalar(select(LetterItem.pdf).where(LetterItem.id == item_id)) or b""
                if hashlib.sha256(data).hexdigest() != sha256:
                    raise InvalidInput(f"letter {provider_id} does not match its SHA-256; it will not be printed",
                                       code="letter_mismatch")
                yield file_name, data

    return BatchFiles(batch.id, pdfs, text.getvalue().encode("utf-8"),
                      orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def mark_dropped(session: Session, *, batch_id: str, location: str) -> None:
    """The batch is at the print house: dropped, and its PDFs freed (the archive keeps each letter)."""
    batch = session.get(LetterBatch, batch_id, with_for_update=True)
    if batch is None or batch.state != "closed":
        return
    batch.state, batch.dropped_at, batch.location, batch.last_error = "dropped", utcnow(), location, None
    batch.drop_attempts += 1
    for item in session.scalars(select(LetterItem).where(LetterItem.batch_id == batch_id)):
        item.pdf = None


def mark_drop_failed(session: Session, *, batch_id: str, error: str) -> None:
    """The drop failed: the batch stays closed (tried again on the next run) with the error shown."""
    batch = session.get(LetterBatch, batch_id, with_for_update=True)
    if batch is None or batch.state != "closed":
        return
    batch.drop_attempts += 1
    batch.last_error = error[:2000]


# -- reading -----------------------------------------------------------------------------------------------


def get_batch(session: Session, batch_id: str) -> LetterBatch:
    """One batch by id."""
    batch = session.get(LetterBatch, batch_id)
    if batch is None:
        raise BatchNotFound(f"no letter batch has the id {batch_id!r}", details={"batch_id": batch_id})
    return batch


def list_batches(session: Session, *, state: str | None = None, limit: int = 100) -> list[LetterBatch]:
    """Batches newest first."""
    query = select(LetterBatch).order_by(LetterBatch.created_at.desc(), LetterBatch.id.desc()).limit(limit)
    if state is not None:
        if state not in BATCH_STATES:
            raise InvalidInput(f"state must be one of {', '.join(BATCH_STATES)}", code="invalid_state")
        query = query.where(LetterBatch.state == state)
    return list(session.scalars(query))


def items_of(session: Session, batch_id: str) -> list[LetterItem]:
    """A batch's letters in order."""
    return list(session.scalars(select(LetterItem).where(LetterItem.batch_id == batch_id)
                                .order_by(LetterItem.number)))


def counts(session: Session) -> dict[str, int]:
    """How many batches are in each state."""
    found = dict.fromkeys(BATCH_STATES, 0)
    for (state,) in session.execute(select(LetterBatch.state)):
        found[state] = found.get(state, 0) + 1
    return found


# -- what the print house reports back ------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportReport:
    applied: int
    unchanged: int
    unknown: list[str]


def import_status(session: Session, *, rows: Iterable[dict[str, Any]]) -> ImportReport:
    """Apply a print house's return file (rows with ``item``, ``status`` — delivered, returned,
    undeliverable or failed — and optional ``date`` and ``reason``) through delivery's feedback.

    A letter returned as undeliverable is a hard bounce: its address is not good."""
    from trato.core.clock import parse_timestamp
    from trato.delivery import feedback

    applied, unchanged, unknown = 0, 0, []
    for line, row in enumerate(rows, start=2):
        item_id = str(row.get("item") or "").strip()
        status = str(row.get("status") or "").strip().lower()
        if status not in RETURN_STATUSES:
            raise InvalidReturnFile(f"line {line}: status must be one of {', '.join(RETURN_STATUSES)}",
                                    details={"line": line, "status": status})
        at = parse_timestamp(str(row["date"]).strip()) if row.get("date") else None
        if row.get("date") and at is None:
            raise InvalidReturnFile(f"line {line}: date {row.get('date')!r} is not an ISO 8601 date",
                                    details={"line": line})
        batch_id, _, number = item_id.partition("/")
        item = session.scalars(select(LetterItem).where(LetterItem.batch_id == batch_id,
                                                        LetterItem.number == (int(number) if number.isdigit()
                                                                              else -1))).first()
        message = feedback.find_by_provider_id(session, item_id) if item is not None else None
        if item is None or message is None:
            unknown.append(item_id)
            continue
        outcome = feedback.apply_status(
            session, provider=message.provider or "printhouse", provider_message_id=item_id,
            status=RETURN_STATUSES[status], at=at, error=str(row.get("reason") or "") or None,
            permanent=status in ("returned", "undeliverable"), details={"return_status": status},
        )
        item.status, item.status_at = status, at or utcnow()
        applied, unchanged = (applied + 1, unchanged) if outcome.changed else (applied, unchanged + 1)
    return ImportReport(applied, unchanged, unknown)
