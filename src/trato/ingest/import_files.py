"""Import files into rows: each line of a customers or events file as a row or a rejection.

The file type and time, the streaming reader, the CSV's column conventions, customer rows from
CSV and JSON Lines, event rows with their deterministic message ids, and the row types. What a
file may hold is told in :mod:`trato.ingest.importer`; writing the rows is done there too.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from trato.core.clock import iso, parse_timestamp, utcnow
from trato.core.errors import NotFound, TratoError
from trato.core.settings import get_settings
from trato.customers import service as customers
from trato.ingest import segment
from trato.ingest.errors import (
    EventTooLarge, InvalidEvent, InvalidFile, InvalidJSON, InvalidRow, NoIdentityColumn, UnsupportedFileType,
)

MAX_LINE_BYTES = 128 * 1024
KEPT_ROW_CHARS = 2000  # of a rejected row's text
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


@dataclass
class RejectedRow:
    """A row that was not imported: where it is, why (stable code, message) and its text."""

    line: int
    code: str
    message: str
    row: str


@dataclass
class CustomerRow:
    """A customer row: its normalised identities and checked traits, true as of ``at``."""

    line: int
    identities: list[tuple[str, str]]
    traits: dict[str, Any]
    at: datetime
    raw: bytes | str


@dataclass
class EventRow:
    """An event row: the call as read, and once parsed by the tracking API's rules, the event."""

    line: int
    call: Any
    raw: bytes
    event: segment.ParsedEvent | None = None


# -- reading ------------------------------------------------------------------------------------


def file_time(path: Path) -> datetime:
    """When the file's content was true: its modification time (never later than now).

    Traits are set as of this time, so importing the same file again re-asserts nothing, and an
    old file does not overwrite what customers did since it was written.
    """
    return min(datetime.fromtimestamp(path.stat().st_mtime, UTC), utcnow())


def _row_time(file_at: datetime, line: int) -> datetime:
    """A row without its own time is as of the file's, plus a microsecond a line: of two rows
    giving one person's trait, the later one wins, and still does when the file is imported again."""
    return file_at + timedelta(microseconds=line)


def file_type(path: Path, suffixes: tuple[str, ...], what: str) -> str:
    """The file's suffix, lower-cased, when it is one of ``suffixes`` and the file exists."""
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


class Reading:
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

    def __enter__(self) -> Reading:
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


# -- rejections ---------------------------------------------------------------------------------


def rejection(line: int, code: str | TratoError, message: str | None = None, raw: bytes | str = "") -> RejectedRow:
    """A rejected row from a code and message, or from the TratoError that gives both."""
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
        # A value that any kind other than email and phone accepts: only the kind is checked. Those
        # two are named above, unless spelt with a space ("identity: email"), which this refuses.
        kind = customers.normalize_identity(kind, "-")[0]
    except TratoError as exc:
        raise InvalidFile(f"column {column!r}: {exc.message}", code="invalid_column") from None
    if len(kind) > MAX_KIND:
        raise InvalidFile(f"column {column!r}: an identity kind has at most {MAX_KIND} characters",
                          code="invalid_column")
    return kind


def csv_customer_rows(
    reading: Reading, *, at: datetime, region: str, exclusive: list[str]
) -> Iterator[CustomerRow | RejectedRow]:
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
            yield rejection(line, exc, raw=text)


def jsonl_customer_rows(
    reading: Reading, *, at: datetime, region: str, exclusive: list[str]
) -> Iterator[CustomerRow | RejectedRow]:
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
                yield CustomerRow(line, event.identities, event.traits, event.occurred_at, raw)
                continue
            yield _customer_from_object(line, raw, obj, at=_row_time(at, line), region=region, exclusive=exclusive)
        except TratoError as exc:
            yield rejection(line, exc, raw=raw)


def _customer_from_object(
    line: int, raw: bytes, obj: dict[str, Any], *, at: datetime, region: str, exclusive: list[str]
) -> CustomerRow:
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
) -> CustomerRow:
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
    return CustomerRow(line, keys, traits, at, raw)


# -- events -------------------------------------------------------------------------------------


def event_rows(reading: Reading, source_name: str, at: datetime) -> Iterator[EventRow | RejectedRow]:
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
            yield rejection(line, InvalidJSON.code, f"the line is not valid JSON ({exc})", raw)
            continue
        if isinstance(call, dict):
            if not call.get("messageId"):
                call["messageId"] = _message_id(source_name, call)
            call.pop("sentAt", None)
            if not (call.get("timestamp") or call.get("originalTimestamp")):
                call["timestamp"] = call.get("receivedAt") or iso(_row_time(at, line))
        yield EventRow(line, call, raw)


def _message_id(source_name: str, call: dict[str, Any]) -> str:
    """A stable messageId for a call that has none: the same call from the same source, the same id."""
    canonical = orjson.dumps(call, option=orjson.OPT_SORT_KEYS)
    return "imp-" + hashlib.sha256(source_name.encode() + b"\n" + canonical).hexdigest()[:40]
