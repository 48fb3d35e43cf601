"""Database engine, sessions, column types and the dialect-neutral pieces both databases share.

SQLite (WAL) is the embedded default, PostgreSQL the scale-out one; every query in trato runs
on both. Services never commit: the caller owns the unit of work (one per request or task)
and side effects registered with :func:`on_commit` run only once it has committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from trato.core.clock import as_utc
from trato.core.settings import Settings, get_settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite keeps them as naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)

    def bind_processor(self, dialect: Any) -> Any:
        inner = super().bind_processor(dialect)
        if dialect.name != "sqlite" or inner is None:
            return inner
        # Bulk writes bind the same moment many times over (a chunk's 500 messages, their events and
        # timeline entries all carry one ``now``): the text of the last value is kept, by identity, so
        # it is formatted once. One tuple, replaced whole, so threads sharing it never see half of one.
        last: list[tuple[Any, Any]] = [(None, None)]

        def process(value: Any) -> Any:
            seen = last[0]
            if seen[0] is value and value is not None:
                return seen[1]
            text = inner(value)
            last[0] = (value, text)
            return text

        return process


# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")
# 64-bit keys on PostgreSQL; SQLite needs INTEGER PRIMARY KEY to alias the rowid.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def build_engine(settings: Settings | None = None, **kwargs: Any) -> Engine:
    settings = settings or get_settings()
    url = settings.database_url
    options: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    # The most recently used connection is taken again (LIFO): with SQLite each connection has a page
    # cache of its own (64 MB), and rotating through eight of them made a long campaign's process grow
    # by their sum while each cache stayed cold.
    options["pool_use_lifo"] = True
    if settings.is_sqlite:
        options["connect_args"] = {"check_same_thread": False, "timeout": 30}
        options["pool_size"] = 8
        options["max_overflow"] = 8
    else:
        options["pool_size"] = 10
        options["max_overflow"] = 10
        options["pool_pre_ping"] = True
    options.update(kwargs)
    engine = create_engine(url, **options)
    if settings.is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself (see _sqlite_begin) so writers take the lock up front.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-65536")
    # Checkpoint (and fsync) every ~40 MB of WAL rather than every 4 MB: ingest writes a lot.
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    # Case-sensitive LIKE can use ordinary indexes; searched columns are stored lower-cased.
    cursor.execute("PRAGMA case_sensitive_like=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock at BEGIN: concurrent writers queue on busy_timeout instead of
    # failing with "database is locked" when a read transaction later tries to write.
    readonly = connection.get_execution_options().get("trato_readonly", False)
    connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


_lock = threading.Lock()
_engine: Engine | None = None
_sessionmaker: sessionmaker[Session] | None = None
_readonly_sessionmaker: sessionmaker[Session] | None = None


def _bind(engine: Engine) -> None:
    global _engine, _sessionmaker, _readonly_sessionmaker
    _engine = engine
    _sessionmaker = sessionmaker(bind=engine, expire_on_commit=False)
    _readonly_sessionmaker = sessionmaker(
        bind=engine.execution_options(trato_readonly=True), expire_on_commit=False
    )


def get_engine() -> Engine:
    with _lock:
        if _engine is None:
            _bind(build_engine())
        assert _engine is not None
        return _engine


def configure_engine(engine: Engine) -> None:
    """Use this engine for every session from now on (start-up and tests)."""
    with _lock:
        _bind(engine)


def reset_engine() -> None:
    global _engine, _sessionmaker, _readonly_sessionmaker
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = _sessionmaker = _readonly_sessionmaker = None


def new_session(*, readonly: bool = False) -> Session:
    """A new session; ``readonly`` ones do not take SQLite's write lock when they begin."""
    get_engine()
    maker = _readonly_sessionmaker if readonly else _sessionmaker
    assert maker is not None
    return maker()


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def on_commit(session: Session, callback: Callable[[], Any]) -> None:
    """Run ``callback`` after ``session`` commits (never if it rolls back)."""
    session.info.setdefault("on_commit", []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_on_commit(session: Session) -> None:
    callbacks = session.info.pop("on_commit", [])
    for callback in callbacks:
        callback()


@event.listens_for(Session, "after_rollback")
def _drop_on_commit(session: Session) -> None:
    session.info.pop("on_commit", None)


def insert_for(session: Session) -> Callable[..., Any]:
    """The dialect's INSERT construct, which has ``on_conflict_do_nothing/do_update``."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def next_ids(session: Session, table: Any, count: int) -> list[int]:
    """``count`` fresh values of ``table``'s integer ``id`` for rows the caller inserts in its unit of
    work: a plain executemany then replaces ``INSERT … RETURNING``, which costs twice as much a row.
    PostgreSQL draws them from the column's sequence (safe beside other writers); SQLite continues
    after the highest id, which the caller's write transaction (``BEGIN IMMEDIATE``) keeps ours."""
    if count <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return sorted(session.execute(text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                                           "FROM generate_series(1, :n)"), {"table": table.name, "n": count}).scalars())
    top = session.execute(text(f'SELECT COALESCE(MAX(id), 0) FROM "{table.name}"')).scalar() or 0
    return list(range(top + 1, top + 1 + count))


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
