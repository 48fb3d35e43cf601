"""Bulk import: customers from CSV or JSON Lines, events from JSON Lines of Segment calls.

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

import csv
import functools
import hashlib
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import structlog
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from trato.core import audit
from trato.core.clock import iso, parse_timestamp, utcnow
from trato.core.csvsafe import write_csv
from trato.core.db import chunks, unit_of_work
from trato.core.errors import BadRequest, NotFound, TratoError
from trato.core.settings import get_settings
from trato.customers import service as customers
from trato.ingest import segment, service
from trato.ingest.errors import EventTooLarge, InvalidEvent, InvalidJSON
from trato.ingest.models import Source

log = structlog.get_logger("trato.ingest.import")

CHUNK_ROWS = 1000
MAX_LINE_BYTES = 128 * 1024
KEPT_ROW_CHARS = 2000  # of a rejected row's text
RETRIES = 3
ACTOR = "import"
CUSTOMER_SUFFIXES = (".csv", ".jsonl", ".ndjson")
EVENT_SUFFIXES = (".jsonl", ".ndjson")
IDENTITY_COLUMNS = {
    "user_id": "user_id", "userid": "user_id", "email": "email", "phone": "phone",
    "anonymous_id": "anonymous_id", "anonymousid": "anonymous_id",
    "device_token": "device_token", "devicetoken": "device_token",
}
ACCEPTED_IDENTITY_COLUMNS = "user_id, email, phone, anonymous_id, device_token, social:<network> or identity:<kind>"
MAX_KIND = 64
_BOM = b"\xef\xbb\xbf"


class UnsupportedFileType(BadRequest):
    code = "unsupported_file_type"


class NoIdentityColumn(BadRequest):
    code = "no_identity_column"


class InvalidFile(BadRequest):
    code = "invalid_file"


class InvalidRow(BadRequest):
    code = "invalid_row"


@dataclass
class RejectedRow:
    """A row that was not imported: where it is, why (stable code, message) and its text."""

    line: int
    code: str
    message: str
    row: str


@dataclass
class ImportOutcome:
    """What an import did: rows read, stored (they changed something), unchanged, rejected."""

    read: int = 0
    stored: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)


@dataclass
class _CustomerRow:
    line: int
    identities: list[tuple[str, str]]
    traits: dict[str, Any]
    at: datetime
    raw: bytes | str


@dataclass
class _EventRow:
    line: int
    call: Any
    raw: bytes
    event: segment.ParsedEvent | None = None


Row = TypeVar("Row", _CustomerRow, _EventRow)


# -- the public face ----------------------------------------------------------------------------


def import_customers(path: Path, *, progress: Console | None = None) -> ImportOutcome:
    """Import customers (identities and traits) from a .csv or .jsonl file; see the module doc."""
    suffix = _file_type(path, CUSTOMER_SUFFIXES, "customers")
    settings = get_settings()
    options = {
        "at": _file_time(path), "region": settings.default_region, "exclusive": settings.exclusive_identity_kinds,
    }
    write = functools.partial(_store_customers, label=path.name, exclusive=settings.exclusive_identity_kinds)
    outcome = ImportOutcome()
    with _Reading(path, progress, "customers") as reading:
        rows = _csv_rows(reading, **options) if suffix == ".csv" else _jsonl_customer_rows(reading, **options)
        for chunk in _batched(rows, CHUNK_ROWS):
            good = _sort_out(chunk, outcome)
            if good:
                _write(good, write, outcome)
            reading.show(outcome.read)
    outcome.rejected.sort(key=lambda r: r.line)
    return outcome


def import_events(path: Path, *, source_name: str, progress: Console | None = None) -> ImportOutcome:
    """Import Segment calls from a .jsonl file as events of the source ``source_name``."""
    _file_type(path, EVENT_SUFFIXES, "events")
    source = _source(source_name)
    outcome = ImportOutcome()
    with _Reading(path, progress, "events") as reading:
        for chunk in _batched(_event_rows(reading, source.name, _file_time(path)), CHUNK_ROWS):
            rows = _sort_out(chunk, outcome)
            received_at = utcnow()
            good, bad = service.parse_calls([row.call for row in rows], call_type=None, received_at=received_at)
            for rejection in bad:
                row = rows[rejection["index"]]
                outcome.rejected.append(_rejected(row.line, rejection["code"], rejection["message"], row.raw))
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
    session: Session, rows: list[_CustomerRow], *, label: str, exclusive: list[str]
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
        Customer = customers.Customer
        for part in chunks(sorted(customer_ids), 500):
            for cid, traits, times in self.session.execute(
                select(Customer.id, Customer.traits, Customer.trait_times).where(Customer.id.in_(part))
            ):
                self.state[cid] = (dict(traits or {}), dict(times or {}))

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
    session: Session, rows: list[_EventRow], *, source: Source, received_at: datetime, label: str
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


def _write_failed(row: _CustomerRow | _EventRow, exc: Exception) -> RejectedRow:
    if isinstance(exc, TratoError):
        return _rejected(row.line, exc.code, exc.message, row.raw)
    log.error("import row could not be written", line=row.line, exc_info=exc)
    return _rejected(
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


# -- reading ------------------------------------------------------------------------------------


def _file_time(path: Path) -> datetime:
    """When the file's content was true: its modification time (never later than now).

    Traits are set as of this time, so importing the same file again re-asserts nothing, and an
    old file does not overwrite what customers did since it was written.
    """
    return min(datetime.fromtimestamp(path.stat().st_mtime, UTC), utcnow())


def _row_time(file_time: datetime, line: int) -> datetime:
    """A row without its own time is as of the file's, plus a microsecond a line: of two rows
    giving one person's trait, the later one wins, and still does when the file is imported again."""
    return file_time + timedelta(microseconds=line)


def _file_type(path: Path, suffixes: tuple[str, ...], what: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise UnsupportedFileType(
            f"{path.name}: {what} are imported from {' or '.join(suffixes)} files, "
            f"not {suffix or 'files without an extension'}",
            details={"accepted": list(suffixes)},
        )
    if not path.is_file():
        raise NotFound(f"{path} is not a file", code="file_not_found")
    return suffix


class _Reading:
    """A file read line by line as bytes, with a progress bar of the bytes read against its size."""

    def __init__(self, path: Path, console: Console | None, what: str) -> None:
        self.handle = path.open("rb")
        self.size = os.fstat(self.handle.fileno()).st_size
        self.position = 0
        self.line = 0
        self.bar: Progress | None = None
        if console is not None:
            self.bar = Progress(
                TextColumn(f"importing {what}"), BarColumn(), TaskProgressColumn(),
                TextColumn("{task.fields[rows]:,} rows"), TimeRemainingColumn(), console=console,
            )
            self.task = self.bar.add_task(what, total=max(self.size, 1), rows=0)

    def __enter__(self) -> _Reading:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()
        if self.bar is not None:
            self.bar.stop()

    def show(self, rows: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=self.position, rows=rows)

    def lines(self) -> Iterator[tuple[int, bytes | None]]:
        """(line number, bytes with their line end); None for a line over MAX_LINE_BYTES."""
        readline = self.handle.readline
        while raw := readline(MAX_LINE_BYTES + 1):
            self.line += 1
            self.position += len(raw)
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while (rest := readline(1 << 20)) and not rest.endswith(b"\n"):
                    self.position += len(rest)
                self.position += len(rest)
                yield self.line, None
                continue
            if self.line == 1:
                raw = raw.removeprefix(_BOM)
            yield self.line, raw


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


def _rejected(line: int, code: str | TratoError, message: str | None = None, raw: bytes | str = "") -> RejectedRow:
    if isinstance(code, TratoError):
        code, message = code.code, code.message
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    return RejectedRow(line, code, message or code, text.rstrip("\r\n")[:KEPT_ROW_CHARS])


def _too_large(line: int) -> RejectedRow:
    return RejectedRow(line, "row_too_large", f"the line is over {MAX_LINE_BYTES // 1024} KB; it was skipped", "")


# -- customers: rows to identities and traits ---------------------------------------------------


@dataclass
class _Column:
    name: str
    kind: str | None  # the identity kind, or None for a trait


def _columns(header: list[str]) -> list[_Column | None]:
    """What each CSV column holds; unnamed columns are ignored."""
    columns: list[_Column | None] = []
    seen: dict[tuple[str, str], str] = {}
    for raw in header:
        name = raw.strip()
        if not name:
            columns.append(None)
            continue
        lowered = name.lower()
        kind: str | None = IDENTITY_COLUMNS.get(lowered)
        if kind is None and lowered.startswith(("social:", "identity:")):
            kind = _identity_kind(name, lowered.removeprefix("identity:"))
        key = ("identity", kind) if kind else ("trait", name)
        if key in seen:
            raise InvalidFile(
                f"columns {seen[key]!r} and {name!r} both give the {key[0]} {key[1]}; keep one of them",
                code="duplicate_column", details={"columns": [seen[key], name]},
            )
        seen[key] = name
        columns.append(_Column(name, kind))
    if not any(c and c.kind for c in columns):
        names = [c.name for c in columns if c]
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise NoIdentityColumn(
            f"the file has no identity column (its columns: {shown or 'none'}); name the column that "
            f"identifies each customer {ACCEPTED_IDENTITY_COLUMNS}",
            details={"columns": names, "accepted": ACCEPTED_IDENTITY_COLUMNS},
        )
    return columns


def _identity_kind(column: str, kind: str) -> str:
    if kind in IDENTITY_COLUMNS:
        return IDENTITY_COLUMNS[kind]
    try:
        # A value that any kind other than email and phone accepts: only the kind is checked.
        kind = customers.normalize_identity(kind, "-")[0]
    except TratoError as exc:
        raise InvalidFile(f"column {column!r}: {exc.message}", code="invalid_column") from None
    if len(kind) > MAX_KIND:
        raise InvalidFile(f"column {column!r}: an identity kind has at most {MAX_KIND} characters",
                          code="invalid_column")
    return kind


def _csv_rows(
    reading: _Reading, *, at: datetime, region: str, exclusive: list[str]
) -> Iterator[_CustomerRow | RejectedRow]:
    flawed: dict[int, str] = {}
    record: list[str] = []  # the text of the record being read, for the report

    def text_lines() -> Iterator[str]:
        for number, raw in reading.lines():
            if raw is None:
                flawed[number], raw = "too_large", b"\n"
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                flawed[number], text = "encoding", raw.decode(errors="replace")
            record.append(text)
            yield text

    lines = text_lines()
    first = next((text for text in lines if text.strip()), None)
    if first is None:
        raise InvalidFile("the file is empty; its first line names the columns", code="empty_file")
    reader = csv.reader(itertools.chain([first], lines), delimiter=max((",", ";", "\t"), key=first.count))
    header = next(reader)
    end = reading.line
    if "encoding" in flawed.values():
        raise InvalidFile("the header row is not UTF-8 text; save the file as 'CSV UTF-8' and import it again",
                          code="invalid_encoding")
    columns = _columns(header)
    record.clear()
    while True:
        failure: csv.Error | None = None
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            cells, failure = [], exc
        line, end = end + 1, reading.line
        text = "".join(record)
        record.clear()
        flaws = {flawed.pop(n) for n in range(line, end + 1) if n in flawed}
        if failure is None and not any(cell.strip() for cell in cells):
            continue  # a blank row
        try:
            if "too_large" in flaws:
                yield _too_large(line)
                continue
            if failure is not None:
                raise InvalidRow(f"the row cannot be read as CSV ({failure}); check its quotes")
            if "encoding" in flaws:
                raise InvalidRow("the row is not UTF-8 text; save the file as 'CSV UTF-8' and import it again",
                                 code="invalid_encoding")
            if len(cells) > len(columns):
                raise InvalidRow(
                    f"the row has {len(cells)} cells and the header {len(columns)} columns; "
                    "put cells that contain the delimiter in double quotes"
                )
            identities: list[tuple[str, Any]] = []
            traits: dict[str, Any] = {}
            for column, cell in zip(columns, cells, strict=False):
                value = cell.strip()
                if column is None or not value:
                    continue
                if column.kind:
                    identities.append((column.kind, value))
                else:
                    traits[column.name] = value
            yield _customer_row(
                line, text, identities, traits, at=_row_time(at, line), region=region, exclusive=exclusive
            )
        except TratoError as exc:
            yield _rejected(line, exc, raw=text)


def _jsonl_customer_rows(
    reading: _Reading, *, at: datetime, region: str, exclusive: list[str]
) -> Iterator[_CustomerRow | RejectedRow]:
    max_event_bytes = get_settings().ingest_max_event_bytes
    for line, raw in reading.lines():
        if raw is None:
            yield _too_large(line)
            continue
        if not raw.strip():
            continue
        try:
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidJSON(f"the line is not valid JSON ({exc})") from None
            if not isinstance(obj, dict):
                raise InvalidRow('each line must be a JSON object such as {"identities": {...}, "traits": {...}}')
            if "identities" not in obj and obj.keys() & {"userId", "anonymousId", "type"}:
                kind = obj.get("type") or "identify"
                if kind != "identify":
                    raise InvalidEvent(
                        f"customers are imported from identify calls, not {kind!r} calls; "
                        "import other calls with 'trato import events'", details={"field": "type"},
                    )
                event = segment.parse(
                    {k: v for k, v in obj.items() if k != "sentAt"}, call_type="identify",
                    received_at=_row_time(at, line),
                    max_bytes=max_event_bytes, region=region,
                )
                yield _CustomerRow(line, event.identities, event.traits, event.occurred_at, raw)
                continue
            yield _customer_from_object(line, raw, obj, at=_row_time(at, line), region=region, exclusive=exclusive)
        except TratoError as exc:
            yield _rejected(line, exc, raw=raw)


def _customer_from_object(
    line: int, raw: bytes, obj: dict[str, Any], *, at: datetime, region: str, exclusive: list[str]
) -> _CustomerRow:
    unknown = sorted(set(obj) - {"identities", "traits", "timestamp"})
    if unknown:
        raise InvalidRow(
            f"unknown field {', '.join(map(repr, unknown))}: a line has 'identities', 'traits' and "
            "optionally 'timestamp' (or is a Segment identify call with 'userId')"
        )
    given = obj.get("identities") or {}
    traits = obj.get("traits") or {}
    if not isinstance(given, dict):
        raise InvalidRow('\'identities\' must be an object such as {"email": "ana@example.com"}')
    if not isinstance(traits, dict):
        raise InvalidRow('\'traits\' must be an object such as {"first_name": "Ana"}')
    identities: list[tuple[str, Any]] = []
    for kind, value in given.items():
        kind = kind.strip().lower().removeprefix("identity:")  # the CSV header's spelling reads the same
        kind = IDENTITY_COLUMNS.get(kind, kind)
        for item in value if isinstance(value, list) else [value]:
            if item not in (None, ""):
                identities.append((kind, item))
    if obj.get("timestamp") is not None:
        when = parse_timestamp(obj["timestamp"])
        if when is None:
            raise InvalidRow(f"'timestamp' {obj['timestamp']!r} is not an ISO-8601 date such as 2026-05-01T10:00:00Z")
        at = when
    traits = {name: value for name, value in traits.items() if value is not None}
    return _customer_row(line, raw, identities, traits, at=at, region=region, exclusive=exclusive)


def _customer_row(
    line: int, raw: bytes | str, identities: list[tuple[str, Any]], traits: dict[str, Any], *,
    at: datetime, region: str, exclusive: list[str],
) -> _CustomerRow:
    """Normalised identities and checked traits of one row, or the TratoError that says what is wrong."""
    country = traits.get("country")
    if isinstance(country, str) and len(country.strip()) == 2:
        region = country.strip().upper()
    pairs = identities + [(kind, traits[kind]) for kind in ("email", "phone") if traits.get(kind) not in (None, "")]
    keys: list[tuple[str, str]] = []
    for kind, value in pairs:
        key = customers.normalize_identity(kind, value, region=region)
        if "\x00" in key[1]:
            raise InvalidRow(f"identity {key[0]} must not contain NUL (\\u0000) characters", code="invalid_identity")
        if key not in keys:
            keys.append(key)
    if not keys:
        raise InvalidRow(
            f"the row has no identity; give at least one of {ACCEPTED_IDENTITY_COLUMNS}", code="missing_identity"
        )
    for kind in exclusive:
        values = [value for k, value in keys if k == kind]
        if len(values) > 1:
            raise InvalidRow(
                f"a person has one {kind}, and this row gives {len(values)} ({', '.join(values)}); "
                "put each person on a row of their own", code="conflicting_identities",
            )
    traits = dict(traits)
    for kind in ("email", "phone"):
        if kind not in traits and (value := next((v for k, v in keys if k == kind), None)):
            traits[kind] = value
    if b"\\u0000" in orjson.dumps(traits):
        raise InvalidRow("traits must not contain NUL (\\u0000) characters", code="invalid_trait")
    customers.check_traits(traits)
    return _CustomerRow(line, keys, traits, at, raw)


# -- events -------------------------------------------------------------------------------------


def _event_rows(reading: _Reading, source_name: str, file_time: datetime) -> Iterator[_EventRow | RejectedRow]:
    for line, raw in reading.lines():
        if raw is None:
            yield RejectedRow(line, EventTooLarge.code, f"the line is over {MAX_LINE_BYTES // 1024} KB; "
                              f"an event may be at most {get_settings().ingest_max_event_bytes // 1024} KB", "")
            continue
        if not raw.strip():
            continue
        try:
            call = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield _rejected(line, InvalidJSON.code, f"the line is not valid JSON ({exc})", raw)
            continue
        if isinstance(call, dict):
            if not call.get("messageId"):
                call["messageId"] = _message_id(source_name, call)
            call.pop("sentAt", None)
            if not (call.get("timestamp") or call.get("originalTimestamp")):
                call["timestamp"] = call.get("receivedAt") or iso(_row_time(file_time, line))
        yield _EventRow(line, call, raw)


def _message_id(source_name: str, call: dict[str, Any]) -> str:
    """A stable messageId for a call that has none: the same call from the same source, the same id."""
    canonical = orjson.dumps(call, option=orjson.OPT_SORT_KEYS)
    return "imp-" + hashlib.sha256(source_name.encode() + b"\n" + canonical).hexdigest()[:40]
