"""Bulk import: customers from CSV or JSON Lines, events from JSON Lines of Segment calls.

This module runs an import: it takes the rows that :mod:`trato.ingest.import_files` reads from
the file, writes them in chunked transactions (retried when another writer interferes), stores
customers through the resolver and events through the tracking API's path, and counts what each
row did. What a file may hold, and what importing it does:

Customers (``trato import customers FILE``)
    ``.csv``: a header row, then one customer a row. UTF-8 (a byte-order mark is fine); the
    delimiter is ``,``, ``;`` or tab, whichever the header row uses most. Column names say
    what a column holds:

    * identity columns: ``user_id``, ``email``, ``phone``, ``anonymous_id``, ``device_token``
      (``userId``, ``anonymousId``, ``deviceToken`` read the same); ``social:<network>``, such
      as ``social:instagram``; and ``identity:<kind>`` for any other kind, such as
      ``identity:crm_id`` (the kind is what follows ``identity:``). Names are case-insensitive.
    * every other column is a trait named as its header. The well-known ones fill the typed
      fields: ``first_name``, ``last_name``, ``birthday`` (1985-04-12), ``timezone``
      (Europe/Madrid), ``country`` (ES), ``locale`` (es-ES); others, such as ``plan``, are
      kept as text. Use JSON Lines for numbers, booleans or nested values.

    Cells are trimmed, empty cells are ignored (an import never erases a trait) and blank rows
    skipped. A file needs an identity column and each row an identity. ``email`` and ``phone``
    are both an identity and a trait, as on the tracking API; a national phone number is read
    in the row's ``country``, else in the company's default region.

    ``.jsonl``: one JSON object a line, either
    ``{"identities": {"user_id": "42", "email": "ana@example.com"}, "traits": {...}}`` (kinds
    named as the CSV's identity columns, ``identity:`` optional; an identity may be a list of
    values; an optional ``"timestamp"`` says when the traits were true; ``null`` traits are
    ignored), or a Segment identify call such as ``{"userId": "42", "traits": {...}}``, read
    exactly as the tracking API reads it.

    Rows resolve to people by the tracking API's rules (:mod:`trato.customers.resolution`): a
    row whose e-mail belongs to a customer updates that customer; two different user ids never
    merge. Traits are set newest-wins as of the file's modification time (a microsecond later
    each line, so that a later row wins over an earlier one) or the row's own ``timestamp``: an
    old file does not overwrite what customers did since. A row is *unchanged* when it writes
    nothing: its identities already belong to its profile and its traits already hold its
    values as of that time, so importing a file again changes nothing.

Events (``trato import events FILE --source NAME``)
    ``.jsonl``, one Segment call (identify, track, page, screen, group, alias) a line, written
    through the tracking API's own path under the source NAME (created when missing, its write
    key not shown). A call without ``messageId`` gets one made from the source name and the
    call's content, so a re-run stores nothing twice (and two identical lines count once). The
    ``timestamp`` is taken as written: a file's ``sentAt`` says nothing about when trato
    received the call, so no clock-skew correction applies; without one, ``receivedAt`` or else
    the file's modification time stands in.

The file is read as a stream and written CHUNK_ROWS rows a transaction. A bad row is reported
with its line number (a CSV's header is line 1), a stable error code and a message, and never
costs the good rows.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from trato.core import audit
from trato.core.clock import iso, utcnow
from trato.core.csvsafe import write_csv
from trato.core.db import unit_of_work
from trato.core.errors import BadRequest, TratoError
from trato.core.settings import get_settings
from trato.customers import service as customers
from trato.ingest import service
from trato.ingest.import_files import (
    CUSTOMER_SUFFIXES, EVENT_SUFFIXES, CustomerRow, EventRow, Reading, RejectedRow, csv_customer_rows, event_rows,
    file_time, file_type, jsonl_customer_rows, rejection,
)
from trato.ingest.models import Source

__all__ = ["ImportOutcome", "RejectedRow", "import_customers", "import_events", "write_report"]

log = structlog.get_logger("trato.ingest.import")

CHUNK_ROWS = 1000
RETRIES = 3
ACTOR = "import"


@dataclass
class ImportOutcome:
    """What an import did: rows read, stored (they changed something), unchanged, rejected."""

    read: int = 0
    stored: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)


Row = TypeVar("Row", CustomerRow, EventRow)


# -- the public face ----------------------------------------------------------------------------


def import_customers(path: Path, *, progress: Console | None = None) -> ImportOutcome:
    """Import customers (identities and traits) from a .csv or .jsonl file; see the module doc."""
    suffix = file_type(path, CUSTOMER_SUFFIXES, "customers")
    settings = get_settings()
    options = {
        "at": file_time(path), "region": settings.default_region, "exclusive": settings.exclusive_identity_kinds,
    }
    write = functools.partial(_store_customers, label=path.name, exclusive=settings.exclusive_identity_kinds)
    outcome = ImportOutcome()
    with Reading(path, progress, "customers") as reading:
        rows = csv_customer_rows(reading, **options) if suffix == ".csv" else jsonl_customer_rows(reading, **options)
        for chunk in _batched(rows, CHUNK_ROWS):
            good = _sort_out(chunk, outcome)
            if good:
                _write(good, write, outcome)
            reading.show(outcome.read)
    outcome.rejected.sort(key=lambda r: r.line)
    return outcome


def import_events(path: Path, *, source_name: str, progress: Console | None = None) -> ImportOutcome:
    """Import Segment calls from a .jsonl file as events of the source ``source_name``."""
    file_type(path, EVENT_SUFFIXES, "events")
    source = _source(source_name)
    outcome = ImportOutcome()
    with Reading(path, progress, "events") as reading:
        for chunk in _batched(event_rows(reading, source.name, file_time(path)), CHUNK_ROWS):
            rows = _sort_out(chunk, outcome)
            received_at = utcnow()
            good, bad = service.parse_calls([row.call for row in rows], call_type=None, received_at=received_at)
            for refused in bad:
                row = rows[refused["index"]]
                outcome.rejected.append(rejection(row.line, refused["code"], refused["message"], row.raw))
            parsed = []
            for index, event in good:
                rows[index].event = event
                parsed.append(rows[index])
            if parsed:
                write = functools.partial(_store_events, source=source, received_at=received_at, label=path.name)
                _write(parsed, write, outcome)
            reading.show(outcome.read)
    outcome.rejected.sort(key=lambda r: r.line)
    return outcome


def write_report(rejected: list[RejectedRow], path: Path) -> None:
    """The rejected rows as CSV (line, code, message, row), safe to open in a spreadsheet."""
    write_csv(path, ("line", "code", "message", "row"), ((r.line, r.code, r.message, r.row) for r in rejected))


# -- writing ------------------------------------------------------------------------------------


def _store_customers(
    session: Session, rows: list[CustomerRow], *, label: str, exclusive: list[str]
) -> tuple[int, int]:
    """Resolve and write a chunk of customer rows; returns (stored, unchanged)."""
    resolver = customers.Resolver(session, exclusive_kinds=exclusive, actor=ACTOR)
    resolver.prefetch([key for row in rows for key in row.identities])
    profiles = _Profiles(session)
    profiles.load({owned[0] for row in rows for key in row.identities if (owned := resolver.owner.get(key))})
    stored = 0
    for row in rows:
        before = [resolver.owner.get(key) for key in row.identities]
        merges_before = len(resolver.merges)
        result = resolver.resolve(customers.Observation(
            row.identities, at=row.at, linked_via="import", traits=row.traits, source_id="import",
            message_id=f"{label}:{row.line}"[-128:],
        ))
        merged = len(resolver.merges) > merges_before
        if result.created:
            profiles.new(result.customer_id)
        elif merged:
            profiles.reload(result.customer_id)
        linked = any(
            owned is None and resolver.owner.get(key) for key, owned in zip(row.identities, before, strict=True)
        )
        traits_changed = profiles.apply(result.customer_id, row.traits, iso(row.at))
        if result.created or linked or merged or traits_changed:
            stored += 1
    resolver.flush()
    if stored:
        audit.record(session, actor=ACTOR, action="customers.import", object_type="file", object_id=label[:64],
                     lines=[rows[0].line, rows[-1].line], stored=stored)
    return stored, len(rows) - stored


class _Profiles:
    """The traits the chunk's profiles hold as its rows apply, to tell a row that changes one."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.state: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}

    def load(self, customer_ids: Iterable[str]) -> None:
        self.state.update(customers.profile_traits(self.session, customer_ids=customer_ids))

    def new(self, customer_id: str) -> None:
        self.state[customer_id] = ({}, {})

    def reload(self, customer_id: str) -> None:
        # A merge wrote both profiles' traits, combined, to the survivor.
        self.state.pop(customer_id, None)
        self.load([customer_id])

    def apply(self, customer_id: str, traits: dict[str, Any], when: str) -> bool:
        """Fold a row's traits in as the resolver does (newest wins, a value re-asserted later takes
        the later time); True if that changes a value or its time."""
        if customer_id not in self.state:
            self.load([customer_id])
        values, times = self.state.setdefault(customer_id, ({}, {}))
        changed = False
        for name, value in traits.items():
            stored = times.get(name, "")
            if when >= stored and (values.get(name), stored) != (value, when):
                values[name], times[name] = value, when
                changed = True
        return changed


def _store_events(
    session: Session, rows: list[EventRow], *, source: Source, received_at: datetime, label: str
) -> tuple[int, int]:
    """Write a chunk of parsed calls by the tracking API's path; returns (stored, unchanged)."""
    events = [(index, row.event) for index, row in enumerate(rows) if row.event is not None]
    result = service.ingest(session, source=source, events=events, received_at=received_at)
    if result.stored:
        audit.record(session, actor=ACTOR, action="events.import", object_type="source", object_id=source.id,
                     file=label, lines=[rows[0].line, rows[-1].line], stored=result.stored)
    return result.stored, len(rows) - result.stored


def _write(rows: list[Row], write: Callable[[Session, list[Row]], tuple[int, int]], outcome: ImportOutcome) -> None:
    """Write a chunk in one transaction; should that fail, each row alone: a bad row costs only itself."""
    try:
        stored, unchanged = _transaction(write, rows)
    except OperationalError:
        raise  # the database is unavailable: stop here; the chunks before this one are committed
    except Exception as exc:
        if len(rows) == 1:
            outcome.rejected.append(_write_failed(rows[0], exc))
            return
        log.warning("import chunk failed; writing its rows one at a time", first_line=rows[0].line)
        for row in rows:
            try:
                stored, unchanged = _transaction(write, [row])
            except OperationalError:
                raise
            except Exception as exc:
                outcome.rejected.append(_write_failed(row, exc))
                continue
            outcome.stored += stored
            outcome.unchanged += unchanged
        return
    outcome.stored += stored
    outcome.unchanged += unchanged


def _transaction(write: Callable[[Session, list[Row]], tuple[int, int]], rows: list[Row]) -> tuple[int, int]:
    for attempt in range(RETRIES):
        try:
            with unit_of_work() as session:
                return write(session, rows)
        except (IntegrityError, OperationalError):
            # Another writer linked one of these identities meanwhile: a new attempt sees it.
            if attempt == RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _write_failed(row: CustomerRow | EventRow, exc: Exception) -> RejectedRow:
    if isinstance(exc, TratoError):
        return rejection(row.line, exc.code, exc.message, row.raw)
    log.error("import row could not be written", line=row.line, exc_info=exc)
    return rejection(
        row.line, "write_failed", f"the row could not be written ({type(exc).__name__}); the error has been logged",
        row.raw,
    )


def _source(name: str) -> Source:
    """The source imported events belong to; created, its write key discarded, when missing."""
    name = name.strip()
    for attempt in range(2):
        try:
            with unit_of_work() as session:
                source = session.scalar(select(Source).where(Source.name == name))
                if source is None:
                    source, _write_key = service.create_source(session, name=name, actor=ACTOR)
        except IntegrityError:
            if attempt:
                raise
            continue  # created by someone else meanwhile
        if source.disabled_at is not None:
            raise BadRequest(f"the source {name!r} is disabled; enable it or import under another --source",
                             code="source_disabled")
        return source
    raise AssertionError("unreachable")


# -- chunks -------------------------------------------------------------------------------------


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _sort_out(chunk: list[Any], outcome: ImportOutcome) -> list[Any]:
    """Count the chunk's rows, keep its rejections, return the rows still to write."""
    outcome.read += len(chunk)
    good = []
    for item in chunk:
        if isinstance(item, RejectedRow):
            outcome.rejected.append(item)
        else:
            good.append(item)
    return good
