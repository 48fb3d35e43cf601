"""Where ingest time goes, without HTTP: the write path called in-process on the bench workload.

    .venv/bin/python bench/ingest_profile.py [--db sqlite|postgresql] [--events N] [--batch-size B]
        [--group G] [--top T] [--timer wall|cpu]

On a fresh database: the same /v1/batch bodies as bench/ingest.py, decoded (orjson), parsed
(``service.parse_calls``) and written as the ingest inbox's folder writes them: ``G`` batches of
``B`` calls a transaction, one pass of ``service.ingest``. Prints microseconds
per event for each step, the SQL statements each transaction sends, the cost of single calls (e-mail and
phone checks, JSON), the plain executemany of the same rows (SQLAlchemy Core and the bare
driver), then the same run again on a second fresh database under cProfile: the top functions
by cumulative and by own time, as shares of the profiled time. The profile is written to
bench/out/ingest-<db>.prof for snakeviz or ``python -m pstats``.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import re
import secrets
import shutil
import sys
import tempfile
import time
import timeit
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson

import ingest as bench
import workload

OUT = Path(__file__).resolve().parent / "out"
_TABLE = re.compile(r"\b(?:INSERT INTO|UPDATE|DELETE FROM|FROM)\s+(?!unnest\b)(\w+)", re.I)


def _label(statement: str) -> str:
    found = _TABLE.search(statement)
    verb = statement.split(None, 1)[0].upper() if statement.strip() else "?"
    return f"{verb} {found.group(1)}" if found else verb


class Statements:
    """Counts what reaches the driver — driver calls, rows and time, per statement kind and
    table — whether it goes through SQLAlchemy or straight to the driver's cursor."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.calls: collections.Counter[str] = collections.Counter()
        self.rows: collections.Counter[str] = collections.Counter()
        self.seconds: collections.Counter[str] = collections.Counter()
        self.shapes: dict[str, set[str]] = collections.defaultdict(set)
        self.on = False
        self._started: tuple[str, int, float] | None = None
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        self._wrap_driver_cursors()

    def record(self, statement: str, rows: int, seconds: float) -> None:
        if self.on:
            label = _label(statement)
            self.calls[label] += 1
            self.rows[label] += rows
            self.seconds[label] += seconds
            self.shapes[label].add(statement[:400])

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        rows = len(params) if executemany else statement.count("), (") + 1
        self._started = (statement, rows, time.perf_counter())

    def _after(self, *_: Any) -> None:
        if self._started is not None:
            statement, rows, began = self._started
            self.record(statement, rows, time.perf_counter() - began)
            self._started = None

    def _wrap_driver_cursors(self) -> None:
        """The write path may take the driver's cursor itself (``writes._cursor``): count there too."""
        from trato.customers import writes

        original = getattr(writes, "_cursor", None)
        if original is None:
            return
        stats = self

        class Counting:
            def __init__(self, cursor: Any) -> None:
                self._cursor = cursor

            def execute(self, sql: str, params: Any = None) -> Any:
                began = time.perf_counter()
                try:
                    return self._cursor.execute(sql, params) if params is not None else self._cursor.execute(sql)
                finally:
                    stats.record(sql, sql.count("), (") + 1, time.perf_counter() - began)

            def executemany(self, sql: str, params: Any) -> Any:
                params = list(params)
                began = time.perf_counter()
                try:
                    return self._cursor.executemany(sql, params)
                finally:
                    stats.record(sql, len(params), time.perf_counter() - began)

            def __getattr__(self, name: str) -> Any:
                return getattr(self._cursor, name)

        writes._cursor = lambda connection: Counting(original(connection))  # type: ignore[attr-defined]


def use_database(url: str, secret: str) -> Any:
    """Point trato at ``url``, migrate it and return the engine."""
    from trato.core import db, migrate
    from trato.core.settings import Settings, get_settings

    os.environ["TRATO_DATABASE_URL"], os.environ["TRATO_SECRET_KEY"] = url, secret
    get_settings.cache_clear()
    db.reset_engine()
    engine = db.build_engine(Settings(database_url=url, secret_key=secret))
    db.configure_engine(engine)
    migrate.upgrade()
    return engine


def clocks() -> tuple[float, float]:
    """(wall, CPU of this process) seconds: CPU time is what other programs cannot inflate."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = clocks()
    return wall - start[0], cpu - start[1]


def decode_and_parse(bodies: list[bytes]) -> tuple[list[Any], tuple[float, float], tuple[float, float]]:
    from trato.core.clock import utcnow
    from trato.ingest import service

    began = clocks()
    decoded = [orjson.loads(body) for body in bodies]
    decoding = since(began)
    parsed = []
    began = clocks()
    for body in decoded:
        good, rejected = service.parse_calls(
            body["batch"], call_type=None, received_at=utcnow(), sent_at=body.get("sentAt")
        )
        if rejected:
            raise SystemExit(f"the workload has rejected calls: {rejected[:3]}")
        parsed.append(good)
    return parsed, decoding, since(began)


_commits: list[float] = [0.0, 0.0]  # wall, CPU seconds between before_commit and after_commit
_commit_started: list[tuple[float, float]] = []


def _time_commits() -> None:
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    @event.listens_for(Session, "before_commit")
    def _before(session: Any) -> None:
        _commit_started.append(clocks())

    @event.listens_for(Session, "after_commit")
    def _after(session: Any) -> None:
        if _commit_started:
            wall, cpu = since(_commit_started.pop())
            _commits[0] += wall
            _commits[1] += cpu


def write(parsed: list[Any], group: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Write ``group`` batches a transaction as the inbox's folder does (one pass of
    ``service.ingest`` for them all); (ingest, commit) as (wall, CPU) seconds."""
    from sqlalchemy import select

    from trato.core.clock import utcnow
    from trato.core.db import new_session
    from trato.ingest import service
    from trato.ingest.models import Source

    with new_session() as session:
        source = session.scalar(select(Source))
        session.expunge(source)
    if not _commit_started and _commits == [0.0, 0.0]:
        _time_commits()
    _commits[:] = [0.0, 0.0]
    began = clocks()
    for start in range(0, len(parsed), group):
        # What the folder does with `group` inbox rows of one source: one pass of the write path.
        session = new_session()
        try:
            service.ingest(session, source=source, events=[e for events in parsed[start:start + group] for e in events],
                           received_at=utcnow())
            session.commit()
        finally:
            session.close()
    wall, cpu = since(began)
    return (wall - _commits[0], cpu - _commits[1]), (_commits[0], _commits[1])


def single_costs(bodies: list[bytes]) -> list[tuple[str, float]]:
    """Microseconds of single steps that parse() runs for every call."""
    from trato.core.clock import utcnow
    from trato.customers import service as customers
    from trato.customers.traits import typed_columns
    from trato.ingest import segment

    calls = [call for body in bodies[:20] for call in orjson.loads(body)["batch"]]
    identify = next(c for c in calls if c["type"] == "identify")
    track = next(c for c in calls if c["type"] == "track")
    now = utcnow()

    def per_call(fn: Any, number: int = 2000) -> float:
        return timeit.timeit(fn, number=number) / number * 1e6

    return [
        ("segment.parse(identify with e-mail + phone)", per_call(lambda: segment.parse(identify, call_type=None, received_at=now))),
        ("segment.parse(track)", per_call(lambda: segment.parse(track, call_type=None, received_at=now))),
        ("orjson.dumps(call) for the 32 KB check", per_call(lambda: orjson.dumps(track))),
        ("customers.check_traits(identify traits)", per_call(lambda: customers.check_traits(identify["traits"]))),
        ("typed_columns(identify traits)", per_call(lambda: typed_columns(identify["traits"]))),
        ("normalize_identity('email', ...)", per_call(lambda: customers.normalize_identity("email", identify["traits"]["email"]))),
        ("normalize_identity('phone', ...)", per_call(lambda: customers.normalize_identity("phone", identify["traits"]["phone"], region="ES"))),
    ]


def print_profile(profile: cProfile.Profile, top: int, path: Path, timer: str) -> None:
    stats = pstats.Stats(profile)
    stats.dump_stats(path)
    total = stats.total_tt  # type: ignore[attr-defined]
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]

    def name(key: Any) -> str:
        filename, line, function = key
        short = re.sub(r".*/(site-packages|src)/", "", filename)
        return f"{short}:{line}({function})" if line else function

    for title, column in (("cumulative", 3), ("own time", 2)):
        print(f"\n  top {top} by {title} ({total:.2f} s {timer} time profiled):")
        print(f"  {'calls':>9} {'own %':>6} {'cum %':>6}  function")
        for key, entry in sorted(raw.items(), key=lambda kv: kv[1][column], reverse=True)[:top]:
            print(f"  {entry[1]:>9,} {entry[2] / total:>6.1%} {entry[3] / total:>6.1%}  {name(key)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=100, help="calls per batch (1: like /v1/track)")
    parser.add_argument("--group", type=int, default=4, help="batches per transaction")
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                        help="cProfile clock: wall shows waits on the database, cpu ignores other programs")
    args = parser.parse_args()
    if not (0 < args.events <= 1_000_000 and 0 < args.group <= 50 and 0 < args.batch_size <= 1000):
        parser.error("--events must be 1..1,000,000, --group 1..50 and --batch-size 1..1000")

    people = workload.population(args.people, args.seed)
    bodies = list(workload.batch_bodies(
        workload.Calls(people, seed=args.seed, stream="batch"), args.events, args.batch_size
    ))
    secret = secrets.token_urlsafe(48)
    OUT.mkdir(exist_ok=True)
    print(f"trato {bench.code_version()}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{args.events:,} events in {len(bodies):,} batches of {args.batch_size}, "
          f"{args.group} batches a transaction, {args.db}")
    with ExitStack() as stack:
        workdirs = [Path(tempfile.mkdtemp(prefix="trato-profile-")) for _ in range(2)]
        for workdir in workdirs:
            stack.callback(shutil.rmtree, workdir, True)
        urls = []
        for n, workdir in enumerate(workdirs):
            urls.append(stack.enter_context(bench.fresh_database(args.db, workdir, suffix=f"p{n}")))

        # 1. timed, no profiler
        engine = use_database(urls[0], secret)
        from trato.core.db import unit_of_work
        from trato.ingest import service

        with unit_of_work() as session:
            service.create_source(session, name="bench-web", actor="bench")
        statements = Statements(engine)
        parsed, decoding, parsing = decode_and_parse(bodies)
        statements.on = True
        in_ingest, in_commit = write(parsed, args.group)
        statements.on = False
        n = args.events
        steps = [("orjson.loads of bodies", decoding), ("service.parse_calls", parsing),
                 ("fold transaction", in_ingest), ("commit", in_commit)]
        total = tuple(sum(step[1][i] for step in steps) for i in range(2))
        print("\n  step                      wall us/event   CPU us/event   CPU share   events/s on one core")
        for label, (wall, cpu) in [*steps, ("all", total)]:
            print(f"  {label:<24} {wall / n * 1e6:>14.1f} {cpu / n * 1e6:>14.1f} {cpu / total[1]:>11.0%} "
                  f"{n / cpu if cpu else float('inf'):>22,.0f}")
        transactions = -(-len(parsed) // args.group)
        print(f"\n  SQL per transaction of {args.group * args.batch_size} events, {transactions} transactions "
              "(driver calls, rows, wall ms in the driver):")
        for label, calls in statements.calls.most_common():
            print(f"  {calls / transactions:>8.1f} calls {statements.rows[label] / transactions:>8.1f} rows "
                  f"{statements.seconds[label] / transactions * 1000:>8.2f} ms  "
                  f"{label} ({len(statements.shapes[label])} different statements)")

        print("\n  single steps (us per call):")
        for label, micros in single_costs(bodies):
            print(f"  {micros:>8.1f}  {label}")

        counts = bench.counts(engine)
        rows = bench.stored_rows(engine, counts["max event id"])
        rates = bench.baseline(engine, rows)
        print(f"\n  plain INSERT of the same {len(rows):,} rows into an empty copy of events (rows/s):")
        for key, label in bench.BASELINES.items():
            print(f"  {rates[key]:>10,.0f}  {label}")
        print(f"  {n / (in_ingest[0] + in_commit[0]):>10,.0f}  the fold transactions, {args.group * args.batch_size} "
              "events each (events/s, wall)")

        # 2. the same again under cProfile, on the second fresh database
        use_database(urls[1], secret)
        with unit_of_work() as session:
            service.create_source(session, name="bench-web", actor="bench")
        profile = cProfile.Profile(time.process_time if args.timer == "cpu" else time.perf_counter)
        profile.enable()
        parsed, _, _ = decode_and_parse(bodies)
        write(parsed, args.group)
        profile.disable()
        from trato.core import db

        db.reset_engine()
        engine.dispose()
        path = OUT / f"ingest-{args.db}.prof"
        print_profile(profile, args.top, path, args.timer)
        print(f"\n  profile written to {path}")


if __name__ == "__main__":
    sys.exit(main())
