"""Segment counts at scale: attribute and behavioural conditions over a generated memory.

    .venv/bin/python bench/segments.py [--db sqlite|postgresql] [--customers 1000000] [--events 10000000]
                                       [--path /tmp/trato-segments.db] [--reuse] [--runs 3]

Generates a fresh database (migrated by trato) with ``--customers`` profiles (traits: city,
plan, age; country, birthday, customer-since) and ``--events`` tracked events over 180 days with
their daily rollups, written straight through the driver (SQLite executemany with the journal
off while loading; PostgreSQL COPY), indexes built after the rows. Then it times
``audiences.service.count`` for attribute segments (target < 1 s) and behavioural ones (target
< 3 s), each the best of ``--runs``, with the ratio to ``SELECT count(*) FROM customers``
measured in the same run. ``--reuse`` keeps an already generated SQLite file of the same size.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

PG_ADMIN_URL = os.environ.get("TRATO_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = "trato_bench_segments"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CITIES = ["Madrid"] * 6 + ["Barcelona"] * 5 + ["Sevilla", "Valencia", "Bilbao", "Málaga", "Zaragoza",
                                               "Ciudad de México", "Monterrey", "London", "New York"]
COUNTRY = {"Ciudad de México": "MX", "Monterrey": "MX", "London": "GB", "New York": "US"}
FIRST = ["Ana", "Luis", "Marta", "Javier", "Lucía", "Pablo", "Elena", "Irene", "Raúl", "Carmen", "Sara", "John"]
LAST = ["García", "López", "Martín", "Sánchez", "Pérez", "Gómez", "Ruiz", "Díaz", "Smith", "Moreno"]
# name, share of events, properties
EVENTS = [("Product Viewed", 50), ("Signed In", 20), ("Product Added", 15), ("Order Completed", 8),
          ("Support Call", 7)]
NAMES = [n for n, w in EVENTS for _ in range(w)]
DAYS = 180
INDEXES_AFTER = {  # built once the rows are in: appending to them row by row would cost most of the load
    "ix_events_name_time": "CREATE INDEX ix_events_name_time ON events (name, occurred_at)",
    "ix_events_customer_time": "CREATE INDEX ix_events_customer_time ON events (customer_id, occurred_at)",
    "ix_events_origin_customer_id": "CREATE INDEX ix_events_origin_customer_id ON events (origin_customer_id)",
    "ix_event_rollups_name_day": "CREATE INDEX ix_event_rollups_name_day ON event_rollups (name, day, customer_id, count)",
    "ix_identities_kind_customer": "CREATE INDEX ix_identities_kind_customer ON identities (kind, customer_id)",
    "ix_identities_customer_id": "CREATE INDEX ix_identities_customer_id ON identities (customer_id)",
    "ix_identities_origin_customer_id": "CREATE INDEX ix_identities_origin_customer_id ON identities (origin_customer_id)",
}

SEGMENTS: list[tuple[str, str, dict[str, Any]]] = [
    ("attribute", "city = Madrid (JSON trait)", {"type": "trait", "trait": "city", "op": "eq", "value": "Madrid"}),
    ("attribute", "country = ES and age 25-40 and plan in (gold, silver)", {"type": "and", "conditions": [
        {"type": "trait", "trait": "country", "op": "eq", "value": "ES"},
        {"type": "trait", "trait": "age", "op": "between", "values": [25, 40]},
        {"type": "trait", "trait": "plan", "op": "in", "values": ["gold", "silver"]}]}),
    ("attribute", "birthday in the next 7 days", {"type": "date", "field": "birthday",
                                                  "op": "anniversary_in_next_days", "days": 7}),
    ("attribute", "customer for more than a year, not in Madrid", {"type": "and", "conditions": [
        {"type": "date", "field": "customer_since", "op": "more_than_days_ago", "days": 365},
        {"type": "not", "condition": {"type": "trait", "trait": "city", "op": "eq", "value": "Madrid"}}]}),
    ("behavioural", "Product Viewed >= 3 times in 30 days (rollups)", {
        "type": "event", "name": "Product Viewed", "count_op": "gte", "count": 3, "within_days": 30}),
    ("behavioural", "ordered in 7 days, in Madrid", {"type": "and", "conditions": [
        {"type": "event", "name": "Order Completed", "within_days": 7},
        {"type": "trait", "trait": "city", "op": "eq", "value": "Madrid"}]}),
    ("behavioural", "added in 7 days, no order in 90 days", {"type": "and", "conditions": [
        {"type": "event", "name": "Product Added", "within_days": 7},
        {"type": "event", "name": "Order Completed", "performed": False, "within_days": 90}]}),
    ("behavioural", "viewed product P7 >= 2 times in 7 days (raw events)", {
        "type": "event", "name": "Product Viewed", "count": 2, "within_days": 7,
        "where": [{"property": "product_id", "op": "eq", "value": "P7"}]}),
    ("behavioural", "added, no order within 24 h after, in 3 days (sequence)", {
        "type": "sequence", "first": "Product Added", "then_not": "Order Completed", "within_hours": 24,
        "since_days": 3}),
]


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


def customer_row(i: int, rng: random.Random) -> tuple[Any, ...]:
    city = rng.choice(CITIES)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    traits = {"city": city, "plan": rng.choice(["gold", "silver", "bronze", "free", "free"]), "age": rng.randint(18, 80),
              "first_name": first, "last_name": last}
    birthday = date(rng.randint(1950, 2006), rng.randint(1, 12), rng.randint(1, 28))
    since = (NOW - timedelta(days=rng.randint(1, 3000))).date()
    return (f"cus_{i:09d}", orjson.dumps(traits).decode(), "{}", first, last, f"c{i}@example.com",
            COUNTRY.get(city, "ES"), birthday.isoformat(), since.isoformat(), iso(NOW), iso(NOW))


def events_of(cid: str, n: int, rng: random.Random, first_id: int) -> tuple[list[tuple[Any, ...]], dict[tuple[str, str], int]]:
    rows, rollups = [], {}
    times = sorted(NOW - timedelta(seconds=rng.randint(0, DAYS * 86400)) for _ in range(n))
    for k, at in enumerate(times):
        name = rng.choice(NAMES)
        props: dict[str, Any] = {}
        if name in ("Product Viewed", "Product Added"):
            props = {"product_id": f"P{rng.randint(1, 20)}", "price": rng.randint(5, 300)}
        elif name == "Order Completed":
            props = {"order_id": f"O{first_id + k}", "revenue": rng.randint(10, 900)}
        rows.append((cid, cid, "bench", f"m{first_id + k:010d}", "track", name, "web", iso(at), iso(at),
                     orjson.dumps(props).decode(), "{}"))
        key = (name, at.date().isoformat())
        rollups[key] = rollups.get(key, 0) + 1
    return rows, rollups


def generate(conn: Any, *, customers: int, events: int, dialect: str, seed: int = 1) -> None:
    """Rows straight through the driver, in chunks of 10,000 customers with their events."""
    rng = random.Random(seed)
    per = events / customers
    cur = conn.cursor()
    mark = "?" if dialect == "sqlite" else "%s"
    message = 0
    started = time.perf_counter()
    chunk = 10_000
    for start in range(0, customers, chunk):
        crow, erow, rrow, irow = [], [], [], []
        for i in range(start, min(start + chunk, customers)):
            row = customer_row(i, rng)
            n = max(0, int(rng.expovariate(1 / per) + 0.5)) if per else 0
            ev, roll = events_of(row[0], n, rng, message)
            message += n
            crow.append(row + (n,))
            erow.extend(ev)
            rrow.extend((row[0], name, day, count) for (name, day), count in roll.items())
            irow.append((row[0], row[0], "email", row[5], "import", iso(NOW)))
        if dialect == "sqlite":
            cur.executemany(f"INSERT INTO customers (id, traits, trait_times, first_name, last_name, email, country, "
                            f"birthday, customer_since, created_at, updated_at, event_count, purchase_count) "
                            f"VALUES ({','.join([mark] * 13)})", [r + (0,) for r in crow])
            cur.executemany("INSERT INTO events (customer_id, origin_customer_id, source_id, message_id, kind, name, "
                            "channel, occurred_at, received_at, properties, context) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                            erow)
            cur.executemany("INSERT INTO event_rollups (customer_id, name, day, count) VALUES (?,?,?,?)", rrow)
            cur.executemany("INSERT INTO identities (customer_id, origin_customer_id, kind, value, linked_via, "
                            "created_at) VALUES (?,?,?,?,?,?)", irow)
        else:
            _copy(cur, "customers", "id, traits, trait_times, first_name, last_name, email, country, birthday, "
                  "customer_since, created_at, updated_at, event_count, purchase_count", [r + (0,) for r in crow])
            _copy(cur, "events", "customer_id, origin_customer_id, source_id, message_id, kind, name, channel, "
                  "occurred_at, received_at, properties, context", erow)
            _copy(cur, "event_rollups", "customer_id, name, day, count", rrow)
            _copy(cur, "identities", "customer_id, origin_customer_id, kind, value, linked_via, created_at", irow)
        done = min(start + chunk, customers)
        if done % 100_000 == 0 or done == customers:
            rate = message / (time.perf_counter() - started)
            print(f"  {done:,} customers, {message:,} events ({rate:,.0f} events/s)", flush=True)
    conn.commit()


def _copy(cur: Any, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def prepare_sqlite(path: Path, *, customers: int, events: int, reuse: bool) -> str:
    url = f"sqlite:///{path}"
    stamp = path.with_suffix(".size")
    if reuse and path.exists() and stamp.exists() and stamp.read_text() == f"{customers} {events}":
        print(f"reusing {path}")
        use(url)
        return url
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    migrate(url)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    for name in INDEXES_AFTER:
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    conn.execute("BEGIN")
    started = time.perf_counter()
    generate(conn, customers=customers, events=events, dialect="sqlite")
    print(f"rows written in {time.perf_counter() - started:.0f} s; building indexes", flush=True)
    for name, ddl in INDEXES_AFTER.items():
        conn.execute(ddl)
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    print(f"generated in {time.perf_counter() - started:.0f} s ({path.stat().st_size / 1e9:.1f} GB)", flush=True)
    stamp.write_text(f"{customers} {events}")
    return url


def prepare_postgresql(*, customers: int, events: int) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PG_DB}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{PG_DB}".replace("postgresql://", "postgresql+psycopg://", 1)
    migrate(url)
    started = time.perf_counter()
    with psycopg.connect(f"{base}/{PG_DB}") as conn:
        for name in INDEXES_AFTER:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        conn.execute("ALTER TABLE events DROP CONSTRAINT IF EXISTS uq_events_source_id_message_id")
        generate(conn, customers=customers, events=events, dialect="postgresql")
        print(f"rows written in {time.perf_counter() - started:.0f} s; building indexes", flush=True)
        for ddl in INDEXES_AFTER.values():
            conn.execute(ddl)
        conn.execute("ALTER TABLE events ADD CONSTRAINT uq_events_source_id_message_id UNIQUE (source_id, message_id)")
        conn.commit()
    with psycopg.connect(f"{base}/{PG_DB}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)
    return url


def use(url: str) -> None:
    """Point trato at this database."""
    os.environ["TRATO_DATABASE_URL"] = url
    os.environ.setdefault("TRATO_SECRET_KEY", "bench-secret-key-" + "x" * 32)
    from trato.core import db
    from trato.core.settings import get_settings

    get_settings.cache_clear()
    db.reset_engine()


def migrate(url: str) -> None:
    from trato.core import db
    from trato.core import migrate as migrations

    use(url)
    migrations.upgrade()
    db.reset_engine()


def best(fn: Any, runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def measure(runs: int) -> int:
    from sqlalchemy import text

    from trato.audiences import service
    from trato.core.db import new_session

    failures = 0
    with new_session(readonly=True) as s:
        counted, total = best(lambda: s.execute(text("SELECT count(*) FROM customers")).scalar(), runs)
        note = "; SQLite counts b-tree cells without reading rows" if s.get_bind().dialect.name == "sqlite" else ""
        print(f"\nSELECT count(*) FROM customers: {counted * 1000:.1f} ms ({total:,} customers{note})")
        # The baseline: one pass over every profile row, comparing a typed column.
        baseline, _ = best(lambda: s.execute(text("SELECT count(*) FROM customers WHERE country = 'ES'")).scalar(),
                           runs)
        print(f"baseline SELECT count(*) FROM customers WHERE country = 'ES' (a full scan): {baseline * 1000:.0f} ms")
        print(f"{'kind':12} {'segment':58} {'members':>10} {'time':>9} {'× baseline':>11}  target")
        for kind, label, definition in SEGMENTS:
            seconds, members = best(lambda d=definition: service.count(s, definition=d, now=NOW), runs)
            target = 1.0 if kind == "attribute" else 3.0
            ok = seconds < target
            failures += not ok
            print(f"{kind:12} {label:58} {members:>10,} {seconds * 1000:>7.0f}ms {seconds / baseline:>10.1f}×  "
                  f"< {target:.0f} s {'ok' if ok else 'MISSED'}", flush=True)
        # One customer's segments (the 360° view): each tree narrowed to the customer.
        from trato.audiences import compiler
        from trato.audiences import conditions as c

        def one_customer() -> int:
            found = 0
            for _, _, definition in SEGMENTS:
                ctx = service.context(s, now=NOW, customer_id="cus_000004242")
                where = compiler.live_filter(c.parse(definition), ctx)
                found += s.execute(service.select(service.CUSTOMERS.c.id).where(*where)).first() is not None
            return found
        seconds, found = best(one_customer, runs)
        print(f"\nmembership of one customer in all {len(SEGMENTS)} segments: {seconds * 1000:.1f} ms "
              f"(in {found}); {seconds / baseline:.3f}× baseline")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--path", type=Path, default=Path("/tmp/trato-bench-segments.db"))
    parser.add_argument("--reuse", action="store_true", help="keep an already generated SQLite file of this size")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"segments bench: {args.db}, {args.customers:,} customers, {args.events:,} events, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.db == "sqlite":
        prepare_sqlite(args.path, customers=args.customers, events=args.events, reuse=args.reuse)
    else:
        prepare_postgresql(customers=args.customers, events=args.events)
    failures = measure(args.runs)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
