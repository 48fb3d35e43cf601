"""The hot write path of the customer memory: events, rollups and computed traits.

Millions of events pass through here, so these statements are written once per dialect and
run as plain DBAPI ``executemany`` with values already in the driver's form: SQLAlchemy's
per-row type processing costs more than the database work itself at this volume. The SQL
is the same on both databases but for parameter style and PostgreSQL's explicit casts.

:func:`insert_many` does the same for any table from its SQLAlchemy definition: a campaign's
messages, their events, archive statuses and contact bookings (a dozen rows a message) go
through it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import JSON, Table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from trato.core.clock import as_utc
from trato.core.db import UTCDateTime

_PARAM = re.compile(r":(\w+)(?:\{(\w+)\})?")


@lru_cache(maxsize=32)
def driver_sql(dialect: str, sql: str) -> str:
    """``:name`` (optionally ``:name{pgtype}``) parameters in the driver's own style."""
    if dialect == "sqlite":
        return _PARAM.sub(lambda m: f":{m.group(1)}", sql)
    return _PARAM.sub(
        lambda m: f"CAST(%({m.group(1)})s AS {m.group(2)})" if m.group(2) else f"%({m.group(1)})s", sql
    )


def _cursor(connection: Connection) -> Any:
    """The driver's own cursor, inside the connection's current transaction.

    SQLAlchemy's per-statement bookkeeping (result proxies, events) costs more than SQLite's
    work on these statements; the hot path needs none of it.
    """
    return connection.connection.dbapi_connection.cursor()


def execute_many(connection: Connection, sql: str, params: list[dict[str, Any]]) -> int:
    """``executemany`` of driver SQL (already in the driver's style); rows affected."""
    if not params:
        return 0
    cursor = _cursor(connection)
    try:
        cursor.executemany(sql, params)
        return cursor.rowcount
    except connection.dialect.loaded_dbapi.Error as exc:
        raise _wrapped(connection, sql, exc) from exc
    finally:
        cursor.close()


def fetch_all(connection: Connection, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    cursor = _cursor(connection)
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    except connection.dialect.loaded_dbapi.Error as exc:
        raise _wrapped(connection, sql, exc) from exc
    finally:
        cursor.close()


def insert_many(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, every column a Python default would fill among
    them) into ``table`` as a plain driver ``executemany``: datetimes and JSON put in the driver's
    form here, as SQLAlchemy's type processing would, at a fraction of its cost a row."""
    if not rows:
        return
    dialect = connection.dialect.name
    sql, convert = _insert_plan(table, tuple(rows[0]), dialect)
    execute_many(connection, sql, [{k: c(row[k]) if c else row[k] for k, c in convert} for row in rows])


@lru_cache(maxsize=64)
def _insert_plan(table: Table, keys: tuple[str, ...], dialect: str
                 ) -> tuple[str, tuple[tuple[str, Callable[[Any], Any] | None], ...]]:
    unfilled = [c.name for c in table.columns if c.name not in keys and c.default is not None
                and not (c.primary_key and c.autoincrement)]
    if unfilled:  # a programming error: these would be left NULL instead of their defaults
        raise ValueError(f"insert_many into {table.name} needs values for {', '.join(unfilled)}")
    convert: list[tuple[str, Callable[[Any], Any] | None]] = []
    marks = []
    for key in keys:
        column_type = table.columns[key].type
        if isinstance(column_type, UTCDateTime):
            convert.append((key, lambda v, _d=dialect: moment(_d, v)))
            marks.append(f":{key}")
        elif isinstance(column_type, JSON) or isinstance(getattr(column_type, "impl", None), JSON):
            convert.append((key, json_text))  # None too: SQLAlchemy's JSON writes it as JSON null
            marks.append(f":{key}{{jsonb}}")
        else:
            convert.append((key, None))
            marks.append(f":{key}")
    sql = f"INSERT INTO {table.name} ({', '.join(keys)}) VALUES ({', '.join(marks)})"
    return driver_sql(dialect, sql), tuple(convert)


def _wrapped(connection: Connection, sql: str, exc: Exception) -> Exception:
    """The driver's error as SQLAlchemy's (IntegrityError, DataError, ...), as callers expect."""
    dbapi = connection.dialect.loaded_dbapi
    return DBAPIError.instance(sql, None, exc, dbapi.Error, hide_parameters=True, dialect=connection.dialect)


def select_in(
    connection: Connection, sql: str, column_values: list[Any], params: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """Run ``sql`` whose ``IN :values`` is expanded to one placeholder per value (chunks of 500)."""
    dialect = connection.dialect.name
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(column_values), 500):
        part = column_values[start : start + 500]
        names = {f"v{i}": value for i, value in enumerate(part)}
        text = sql.replace(":values", "(" + ", ".join(f":{n}" for n in names) + ")")
        found.extend(fetch_all(connection, driver_sql(dialect, text), {**(params or {}), **names}))
    return found


def select_by_key(
    connection: Connection, *, table: str, columns: str, first: tuple[str, Any], second: str, values: list[Any]
) -> list[tuple[Any, ...]]:
    """Rows of ``table`` whose two-column unique key is (first value, any of ``values``).

    On PostgreSQL each value is probed through the unique index (a LATERAL ... LIMIT 1 per
    value). Written as ``a = x AND b IN (...)`` the planner, before statistics catch up with a
    freshly filled table, reads every row of ``x`` instead: 15x slower at 20,000 rows.
    """
    column, value = first
    if connection.dialect.name == "sqlite":
        return select_in(
            connection, f"SELECT {columns} FROM {table} WHERE {column} = :first AND {second} IN :values",
            values, {"first": value},
        )
    outer = ", ".join(f"x.{c.strip()}" for c in columns.split(","))
    sql = (
        f"SELECT {outer} FROM unnest(%(values)s::varchar[]) AS probe(value) CROSS JOIN LATERAL "
        f"(SELECT {columns} FROM {table} WHERE {column} = %(first)s AND {second} = probe.value LIMIT 1) AS x"
    )
    return fetch_all(connection, sql, {"values": list(values), "first": value})


def json_value(value: Any) -> Any:
    """A JSON column as read by the driver: SQLite gives text, psycopg gives Python objects."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def profile_traits(connection: Connection, customer_ids: list[str]) -> dict[str, tuple[dict[str, Any], dict[str, str]]]:
    """Fresh copies of the traits and trait times of many profiles (ids without one left out)."""
    rows = select_in(connection, "SELECT id, traits, trait_times FROM customers WHERE id IN :values", customer_ids)
    return {cid: (dict(json_value(t) or {}), dict(json_value(tt) or {})) for cid, t, tt in rows}


def timestamp(dialect: str, value: datetime | None) -> Any:
    """A UTC datetime as the driver stores it (SQLite: the text SQLAlchemy writes)."""
    if value is None or dialect != "sqlite":
        return value
    if value.tzinfo is UTC:  # nearly always: one call instead of three (this runs for every row)
        return value.isoformat(sep=" ", timespec="microseconds")[:-6]
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def moment(dialect: str, value: datetime | None) -> Any:
    """:func:`timestamp` of any datetime (naive ones are UTC, as ``UTCDateTime`` takes them).

    Bulk writes bind a few moments many times over (a chunk's messages carry when they were made
    and when they were claimed; their events, one or the other): the last few are kept with their
    text, by identity, so each is formatted once. One tuple, replaced whole, so threads sharing it
    never see half of one."""
    global _recent_moments
    if value is None:
        return None
    recent = _recent_moments
    for seen, seen_dialect, text in recent:
        if seen is value and seen_dialect == dialect:
            return text
    text = timestamp(dialect, as_utc(value))
    _recent_moments = ((value, dialect, text), *recent[:RECENT_MOMENTS - 1])
    return text


RECENT_MOMENTS = 4
_recent_moments: tuple[tuple[Any, str, Any], ...] = ()


def day(dialect: str, value: date) -> Any:
    return value.isoformat() if dialect == "sqlite" else value


def json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


_INSERT_EVENTS = """
INSERT INTO events (customer_id, origin_customer_id, source_id, message_id, kind, name, channel,
                    department, occurred_at, received_at, properties, context, revenue_cents, currency)
VALUES (:customer_id, :origin_customer_id, :source_id, :message_id, :kind, :name, :channel,
        :department, :occurred_at, :received_at, :properties{jsonb}, :context{jsonb}, :revenue_cents,
        :currency)
ON CONFLICT (source_id, message_id) DO NOTHING
"""

_ADD_ROLLUPS = """
INSERT INTO event_rollups (customer_id, name, day, count) VALUES (:customer_id, :name, :day, :count)
ON CONFLICT (customer_id, name, day) DO UPDATE SET count = event_rollups.count + excluded.count
"""

# Every right-hand side reads the row as it was before the UPDATE, on both databases.
_FOLD_TOTALS = """
UPDATE customers SET
  event_count = event_count + :n,
  first_seen_at = CASE WHEN first_seen_at IS NULL OR first_seen_at > :first{timestamptz}
                       THEN :first{timestamptz} ELSE first_seen_at END,
  last_seen_at = CASE WHEN last_seen_at IS NULL OR last_seen_at < :last{timestamptz}
                      THEN :last{timestamptz} ELSE last_seen_at END,
  last_channel = CASE WHEN :last_channel{varchar} IS NULL THEN last_channel
                      WHEN last_seen_at IS NULL OR last_seen_at <= :channel_at{timestamptz}
                      THEN :last_channel{varchar} ELSE last_channel END,
  purchase_count = purchase_count + :purchases,
  last_purchase_at = CASE WHEN :last_purchase{timestamptz} IS NULL THEN last_purchase_at
                          WHEN last_purchase_at IS NULL OR last_purchase_at < :last_purchase{timestamptz}
                          THEN :last_purchase{timestamptz} ELSE last_purchase_at END
WHERE id = :customer_id
"""


_PROFILE_COLUMNS = ("first_name", "last_name", "email", "phone", "locale", "timezone", "country",
                    "birthday", "customer_since", "search_name")

_INSERT_CUSTOMERS = f"""
INSERT INTO customers (id, traits, trait_times, {", ".join(_PROFILE_COLUMNS)}, event_count, purchase_count,
                       created_at, updated_at)
VALUES (:id, :traits{{jsonb}}, :trait_times{{jsonb}}, {", ".join(f":{c}" for c in _PROFILE_COLUMNS)}, 0, 0,
        :created_at, :updated_at)
"""

_UPDATE_PROFILES = f"""
UPDATE customers SET traits = :traits{{jsonb}}, trait_times = :trait_times{{jsonb}},
  {", ".join(f"{c} = :{c}" for c in _PROFILE_COLUMNS)}, updated_at = :updated_at
WHERE id = :id
"""

_INSERT_IDENTITIES = """
INSERT INTO identities (customer_id, origin_customer_id, kind, value, linked_via, source_id, message_id, created_at)
VALUES (:customer_id, :origin_customer_id, :kind, :value, :linked_via, :source_id, :message_id, :created_at)
"""


def _profile_params(dialect: str, row: dict[str, Any]) -> dict[str, Any]:
    params = {c: row.get(c) for c in _PROFILE_COLUMNS}
    for column in ("birthday", "customer_since"):
        if params[column] is not None:
            params[column] = day(dialect, params[column])
    params.update(
        id=row["id"], traits=json_text(row["traits"]), trait_times=json_text(row["trait_times"]),
        updated_at=timestamp(dialect, row["updated_at"]),
    )
    return params


def insert_customers(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """New profiles: id, traits, trait_times, the typed columns, created_at, updated_at."""
    dialect = connection.dialect.name
    params = [{**_profile_params(dialect, r), "created_at": timestamp(dialect, r["created_at"])} for r in rows]
    execute_many(connection, driver_sql(dialect, _INSERT_CUSTOMERS), params)


def update_profiles(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Traits, trait times and typed columns of existing profiles."""
    dialect = connection.dialect.name
    execute_many(connection, driver_sql(dialect, _UPDATE_PROFILES), [_profile_params(dialect, r) for r in rows])


def insert_identities(connection: Connection, rows: list[dict[str, Any]]) -> None:
    dialect = connection.dialect.name
    execute_many(
        connection,
        driver_sql(dialect, _INSERT_IDENTITIES),
        [{**r, "created_at": timestamp(dialect, r["created_at"])} for r in rows],
    )


def insert_events(connection: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert timeline rows, skipping (source, messageId) pairs already stored; returns how many went in."""
    dialect = connection.dialect.name
    params = [
        {
            **row,
            "occurred_at": timestamp(dialect, row["occurred_at"]),
            "received_at": timestamp(dialect, row["received_at"]),
            "properties": json_text(row["properties"]),
            "context": json_text(row["context"]),
        }
        for row in rows
    ]
    return execute_many(connection, driver_sql(dialect, _INSERT_EVENTS), params)


def add_rollups(connection: Connection, counts: dict[tuple[str, str, date], int]) -> None:
    """Add counts to (customer, name, day) rollups."""
    if not counts:
        return
    dialect = connection.dialect.name
    execute_many(
        connection,
        driver_sql(dialect, _ADD_ROLLUPS),
        [{"customer_id": c, "name": n, "day": day(dialect, d), "count": k} for (c, n, d), k in counts.items()],
    )


_ADD_REVENUE = """
INSERT INTO customer_revenue (customer_id, currency, cents) VALUES (:customer_id, :currency, :cents)
ON CONFLICT (customer_id, currency) DO UPDATE SET cents = customer_revenue.cents + excluded.cents
"""

_MOVE_REVENUE = """
INSERT INTO customer_revenue (customer_id, currency, cents)
SELECT :to_id, currency, cents FROM customer_revenue WHERE customer_id = :from_id
ON CONFLICT (customer_id, currency) DO UPDATE SET cents = customer_revenue.cents + excluded.cents
"""


def add_revenue(connection: Connection, amounts: dict[tuple[str, str], int]) -> None:
    """Add revenue (minor units) to (customer, currency) lifetime values."""
    dialect = connection.dialect.name
    execute_many(
        connection, driver_sql(dialect, _ADD_REVENUE),
        [{"customer_id": c, "currency": cur, "cents": cents} for (c, cur), cents in amounts.items()],
    )


_MOVE_ROLLUPS = """
INSERT INTO event_rollups (customer_id, name, day, count)
SELECT :to_id, name, day, count FROM event_rollups WHERE customer_id = :from_id
ON CONFLICT (customer_id, name, day) DO UPDATE SET count = event_rollups.count + excluded.count
"""


def move_rollups(connection: Connection, *, from_id: str, to_id: str) -> None:
    """Add one profile's rollups and revenue to another's and clear the first's."""
    dialect = connection.dialect.name
    params = {"from_id": from_id, "to_id": to_id}
    connection.exec_driver_sql(driver_sql(dialect, _MOVE_ROLLUPS), params)
    connection.exec_driver_sql(driver_sql(dialect, "DELETE FROM event_rollups WHERE customer_id = :from_id"), params)
    connection.exec_driver_sql(driver_sql(dialect, _MOVE_REVENUE), params)
    connection.exec_driver_sql(driver_sql(dialect, "DELETE FROM customer_revenue WHERE customer_id = :from_id"), params)


def fold_totals(connection: Connection, totals: list[dict[str, Any]]) -> None:
    """Fold per-customer totals (n, first, last, last_channel, channel_at, purchases,
    last_purchase) into the computed traits."""
    if not totals:
        return
    dialect = connection.dialect.name
    execute_many(
        connection,
        driver_sql(dialect, _FOLD_TOTALS),
        [
            {
                "customer_id": t["customer_id"], "n": t["n"], "purchases": t["purchases"],
                "last_channel": t["last_channel"],
                **{k: timestamp(dialect, t[k]) for k in ("first", "last", "channel_at", "last_purchase")},
            }
            for t in totals
        ],
    )
