"""The ingest inbox: accept fast, fold later (Segment's and RudderStack's split).

The tracking API validates a request, appends its accepted calls here (one row a request, in a
group commit) and answers 200: the calls are durable from then on. A folder takes the oldest
rows, runs them through the customer memory's write path (:func:`service.ingest`: identity
resolution, exactly-once events, computed traits) in large transactions and deletes them in
the same transaction. A crash between accept and fold loses nothing: the rows stay until a
fold commits, and a fold that is repeated changes nothing (events are unique per messageId,
and the write path skips calls already stored before it touches identities or traits).

Several folders may run (``trato fold`` processes, or one thread per app). On PostgreSQL the inbox
is a table of the main database: a folder claims whole sources with a transaction-scoped
advisory lock (a source's calls are folded by one folder at a time, in arrival order) and
deletes the rows in the transaction that stores their events. On SQLite, which lets one writer
in at a time, the inbox is a database file of its own beside the main one, so that accepting a
call never waits for a fold's write lock; one folder at a time holds a lease on the rows it
folds, stores their events, then deletes them (a crash in between folds them again: no change).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from datetime import datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from trato.core.clock import as_utc, utcnow
from trato.core.db import build_engine, get_engine, new_session
from trato.core.errors import TratoError
from trato.core.settings import get_settings
from trato.customers import writes
from trato.ingest import service
from trato.ingest.models import Source, inbox_metadata, inbox_table

log = structlog.get_logger("trato.ingest.inbox")
RETRIES = 3
# First key of PostgreSQL's two-key advisory locks: "trato ingest folder", the second is the source.
LOCK_SPACE = 7_320_301
LEASE_SECONDS = 120.0  # a folder that died holding a lease: its rows are folded again after this
_INBOX = inbox_table

_engine_lock = threading.Lock()
_inbox_engine: tuple[Engine, Engine] | None = None  # (main engine, inbox engine)


def engine() -> Engine:
    """The inbox's database: the main one on PostgreSQL; on SQLite ``<name>.inbox.db`` beside it."""
    global _inbox_engine
    main = get_engine()
    if main.dialect.name != "sqlite":
        return main
    with _engine_lock:
        if _inbox_engine is None or _inbox_engine[0] is not main:
            if _inbox_engine is not None:
                _inbox_engine[1].dispose()
            database = Path(main.url.database or "trato.db")
            url = f"sqlite:///{database.with_name(database.stem + '.inbox.db')}"
            inbox = build_engine(get_settings().model_copy(update={"database_url": url}), pool_size=4)
            inbox_metadata.create_all(inbox)
            _inbox_engine = (main, inbox)
        return _inbox_engine[1]


@dataclass(frozen=True)
class Accepted:
    """One accepted request, as it goes into the inbox."""

    source_id: str
    received_at: datetime
    call_type: str | None
    body: str
    events: int


APPEND_SQL = """
INSERT INTO ingest_inbox (source_id, received_at, call_type, body, events)
VALUES (:source_id, :received_at, :call_type, :body, :events)
"""


def append_params(dialect: str, entry: Accepted) -> dict[str, Any]:
    return {"source_id": entry.source_id, "received_at": writes.timestamp(dialect, entry.received_at),
            "call_type": entry.call_type, "body": entry.body, "events": entry.events}


def append(connection: Connection, entries: list[Accepted]) -> None:
    """Add accepted requests to the inbox, in order (the caller commits)."""
    dialect = connection.dialect.name
    writes.execute_many(connection, writes.driver_sql(dialect, APPEND_SQL), [append_params(dialect, e) for e in entries])


# -- folding -----------------------------------------------------------------------------------


def _oldest_pending(connection: Connection) -> int | None:
    return connection.execute(
        select(_INBOX.c.id).where(_INBOX.c.error.is_(None)).order_by(_INBOX.c.id).limit(1)
    ).scalar()


def has_pending(upto: int | None = None) -> bool:
    """Whether calls wait to be folded (only those with inbox ids up to ``upto``, if given)."""
    with engine().connect() as connection:
        oldest = _oldest_pending(connection)
    return oldest is not None and (upto is None or oldest <= upto)


_CLAIM_SOURCES_PG = f"""
SELECT source_id FROM (
  SELECT DISTINCT source_id FROM (
    SELECT source_id FROM ingest_inbox WHERE error IS NULL ORDER BY id LIMIT 1000
  ) AS oldest
) AS candidates
WHERE pg_try_advisory_xact_lock({LOCK_SPACE}, hashtext(source_id))
"""


def _claim(connection: Connection, budget: int, only_id: int | None) -> list[tuple[Any, ...]]:
    """The rows this transaction folds: the oldest, up to ``budget`` events (at least one row).

    PostgreSQL: whole sources, locked until commit. SQLite: none while another folder's lease
    runs, else the rows, leased.
    """
    dialect = connection.dialect.name
    query = select(_INBOX.c.id, _INBOX.c.events, _INBOX.c.source_id).where(_INBOX.c.error.is_(None))
    if only_id is not None:
        query = query.where(_INBOX.c.id == only_id)
    elif dialect == "postgresql":
        # One folder per source keeps its arrival order.
        sources = [row[0] for row in connection.exec_driver_sql(_CLAIM_SOURCES_PG)]
        if not sources:
            return []
        query = query.where(_INBOX.c.source_id.in_(sources))
    if dialect == "sqlite" and connection.execute(
        select(_INBOX.c.id).where(_INBOX.c.leased_until >= time.time()).limit(1)
    ).first():
        return []
    candidates = connection.execute(query.order_by(_INBOX.c.id).limit(budget)).all()
    if only_id is not None and dialect == "postgresql" and candidates:
        locked = connection.exec_driver_sql(
            f"SELECT pg_try_advisory_xact_lock({LOCK_SPACE}, hashtext(%(s)s))", {"s": candidates[0][2]}
        ).scalar()
        if not locked:
            return []
    chosen, total = [], 0
    for row_id, events, _source in candidates:
        if chosen and total + events > budget:
            break
        chosen.append(row_id)
        total += events
    if not chosen:
        return []
    if dialect == "sqlite":
        connection.execute(update(_INBOX).where(_INBOX.c.id.in_(chosen)).values(leased_until=time.time() + LEASE_SECONDS))
    columns = "id, source_id, received_at, call_type, body"
    rows = writes.select_in(connection, f"SELECT {columns} FROM ingest_inbox WHERE id IN :values", chosen)
    return sorted(rows, key=lambda row: row[0])


def _received(value: Any) -> datetime:
    return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def _fold(budget: int, only_id: int | None = None) -> int:
    """Claim, fold and delete the oldest rows; the number of events folded."""
    if get_engine().dialect.name == "sqlite":
        return _fold_beside(budget, only_id)
    session = new_session()
    try:
        connection = session.connection()
        rows = _claim(connection, budget, only_id)
        if not rows:
            session.rollback()
            return 0
        folded = _fold_rows(session, rows)
        connection.execute(delete(_INBOX).where(_INBOX.c.id.in_([row[0] for row in rows])))
        session.commit()
        return folded
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _fold_beside(budget: int, only_id: int | None) -> int:
    """SQLite: lease the rows in the inbox file, store their events in the main one, delete them."""
    inbox = engine()
    with inbox.begin() as connection:
        rows = _claim(connection, budget, only_id)
    if not rows:
        return 0
    ids = [row[0] for row in rows]
    try:
        with new_session() as session:
            folded = _fold_rows(session, rows)
            session.commit()
    except BaseException:
        with inbox.begin() as connection:
            connection.execute(update(_INBOX).where(_INBOX.c.id.in_(ids)).values(leased_until=None))
        raise
    with inbox.begin() as connection:
        connection.execute(delete(_INBOX).where(_INBOX.c.id.in_(ids)))
    return folded


def _fold_rows(session: Session, rows: list[tuple[Any, ...]]) -> int:
    """Parse the rows again and run them through the write path, one pass per source, in order."""
    by_source: dict[str, list[tuple[int, Any]]] = {}
    first_received: dict[str, datetime] = {}
    for row_id, source_id, received_at, call_type, body in rows:
        received = _received(received_at)
        first_received.setdefault(source_id, received)
        _calls, good, rejected = service.parse_request(orjson.loads(body), call_type=call_type, received_at=received)
        if rejected:  # checked on the way in; only a change of settings since then gets here
            log.warning("inbox calls no longer valid, left out", inbox_id=row_id, rejected=rejected)
        by_source.setdefault(source_id, []).extend(good)
    folded = 0
    for source_id, events in by_source.items():
        source = session.get(Source, source_id)
        assert source is not None  # the inbox's foreign key
        service.ingest(session, source=source, events=events, received_at=first_received[source_id])
        folded += len(events)
    return folded


def fold_once(*, max_events: int | None = None) -> int:
    """Fold the oldest waiting calls (up to ``max_events``) into the customer memory.

    Returns the number of events folded; 0 when nothing waits or other folders hold it all.
    Should a group fail, its requests are folded one at a time; one that still fails alone is
    kept with its error (see :func:`status`) and skipped from then on.
    """
    budget = max_events or get_settings().ingest_fold_events
    if not has_pending():
        return 0
    try:
        return _fold(budget)
    except OperationalError:
        raise  # the database is unavailable (or locked for longer than the busy timeout)
    except Exception:
        log.warning("inbox fold failed; folding its requests one at a time", exc_info=True)
    with engine().connect() as connection:
        ids = list(connection.scalars(
            select(_INBOX.c.id).where(_INBOX.c.error.is_(None)).order_by(_INBOX.c.id).limit(budget)
        ))
    return sum(_fold_alone(row_id) for row_id in ids)


def _fold_alone(row_id: int) -> int:
    for attempt in range(RETRIES):
        try:
            return _fold(1, only_id=row_id)
        except (IntegrityError, OperationalError) as exc:
            # Another writer linked the same identity at the same moment: look again.
            if attempt == RETRIES - 1:
                _set_error(row_id, exc)
        except Exception as exc:
            _set_error(row_id, exc)
            return 0
    return 0


def _set_error(row_id: int, exc: BaseException) -> None:
    log.error("an inbox request could not be folded; kept aside", inbox_id=row_id, exc_info=exc)
    text = f"{exc.code}: {exc.message}" if isinstance(exc, TratoError) else type(exc).__name__
    with engine().begin() as connection:
        connection.execute(update(_INBOX).where(_INBOX.c.id == row_id).values(error=text[:500], leased_until=None))


def drain(*, timeout: float = 120.0) -> int:
    """Fold everything accepted until now, in this thread; returns the events it folded.

    Waits for rows another folder is folding. For tests, and for reads that must see what was
    just sent; the tracking API itself never waits for the fold.
    """
    with engine().connect() as connection:
        upto = connection.scalar(select(func.max(_INBOX.c.id)))
    if upto is None:
        return 0
    deadline = time.monotonic() + timeout
    folded = 0
    while True:
        done = fold_once()
        folded += done
        if done:
            continue
        if not has_pending(upto):
            return folded
        if time.monotonic() > deadline:
            raise TimeoutError(f"the ingest inbox did not empty within {timeout:g} s")
        time.sleep(0.002)


# -- status ------------------------------------------------------------------------------------


@dataclass
class InboxStatus:
    requests: int
    events: int
    oldest_received_at: datetime | None
    oldest_age_seconds: float
    failed_requests: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "backlog_requests": self.requests, "backlog_events": self.events,
            "oldest_received_at": self.oldest_received_at.isoformat() if self.oldest_received_at else None,
            "oldest_age_seconds": round(self.oldest_age_seconds, 3), "failed_requests": self.failed_requests,
        }


def status() -> InboxStatus:
    """The fold's lag: calls accepted and not yet in the customer memory, and the oldest one's age."""
    with engine().connect() as connection:
        requests, events, oldest = connection.execute(
            select(func.count(), func.coalesce(func.sum(_INBOX.c.events), 0), func.min(_INBOX.c.received_at))
            .where(_INBOX.c.error.is_(None))
        ).one()
        failed = connection.scalar(select(func.count()).where(_INBOX.c.error.is_not(None)))
    oldest = as_utc(oldest) if oldest is not None else None
    age = max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0
    return InboxStatus(int(requests), int(events), oldest, age, int(failed or 0))


def forget_everything() -> None:
    """Empty the inbox (tests, between cases)."""
    with engine().begin() as connection:
        connection.execute(delete(_INBOX))
