"""Ingest benchmark: the Segment tracking API of a real ``trato serve``, against raw inserts.

    .venv/bin/python bench/ingest.py [--db sqlite|postgresql|both] [--events N] [--clients C] [--quick]

For each database: a fresh database, migrated, with one source; ``trato serve --no-worker`` in
its own process on a free loopback port; a load generator in another process sends
``/v1/batch`` calls (100 a batch) and then single ``/v1/track`` calls over C keep-alive
connections. The baseline, measured in the same run on the same database, is a plain
``INSERT INTO <empty copy of events>`` executemany of the very rows the server stored, through
the bare driver and through SQLAlchemy Core, in transactions of 100 rows and as one
executemany. Afterwards the stored events are counted. The framework floor — the same uvicorn
and FastAPI answering the same requests without doing anything with them — shows what HTTP
alone costs. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import multiprocessing
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import load

HOST = "127.0.0.1"
PG_ADMIN_URL = os.environ.get("TRATO_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_BATCH = 20_000  # events/s through /v1/batch
TARGET_SINGLE = 3_000  # requests/s through /v1/track
TARGET_P99_MS = 50.0
BENCH_DIR = Path(__file__).resolve().parent


# -- processes, ports and the machine ---------------------------------------------------------


def code_version() -> str:
    """The commit measured, and a digest of src/ when the working tree differs from it."""
    repo = BENCH_DIR.parent
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        changed = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "src"],
                                 capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not changed:
        return head
    digest = hashlib.sha256()
    for path in sorted((repo / "src").rglob("*.py")):
        digest.update(path.relative_to(repo).as_posix().encode() + b"\0" + path.read_bytes())
    return f"{head} + {len(changed)} changed files under src/ (sha256 of src/**/*.py {digest.hexdigest()[:12]})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its children that still run
    (``trato serve --workers N`` serves from N child processes)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if proc.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def database_cpu(name: str | None) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving database ``name``."""
    if not name:
        return 0.0
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes()
            if title.startswith(b"postgres: ") and f" {name} ".encode() in title:
                total += process_cpu(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values[:8]) - idle) / tick, sum(values[:8]) / tick


def server_env(url: str, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRATO_")}
    env.update({
        "TRATO_DATABASE_URL": url, "TRATO_SECRET_KEY": secret, "TRATO_LOG_LEVEL": "WARNING",
        "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "300",
    })
    return env


def trato(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run a ``trato`` command to completion; its output, or SystemExit with its error."""
    done = subprocess.run(
        [sys.executable, "-m", "trato", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise SystemExit(f"trato {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


class Server:
    """A server process on a free port, stopped (SIGINT, then SIGKILL) when the block ends."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.port = free_port()
        self.command = [part.replace("{port}", str(self.port)) for part in command]
        self.env, self.cwd, self.log = env, cwd, log
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            self.command, env=self.env, cwd=self.cwd, stdout=self._log_file, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited ({self.process.returncode}):\n{self.tail()}")
            if _healthy(self.port):
                return self
            time.sleep(0.1)
        self.__exit__(None, None, None)
        raise SystemExit(f"the server did not answer /healthz within 60 s:\n{self.tail()}")

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log_file.close()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _healthy(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


# -- databases --------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(kind: str, workdir: Path, suffix: str = "") -> Iterator[str]:
    """A new empty database (SQLite file or PostgreSQL database), removed afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'trato{suffix}.db'}"
        return
    import psycopg

    name = f"trato_bench_{os.getpid()}{suffix}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def autovacuum_on() -> bool:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        return conn.execute("SHOW autovacuum").fetchone()[0] == "on"


@contextlib.contextmanager
def analyzing(url: str, every: float) -> Iterator[None]:
    """ANALYZE the ingest tables every ``every`` seconds meanwhile, as autovacuum would."""
    if every <= 0:
        yield
        return
    import threading

    import psycopg

    stop = threading.Event()

    def run() -> None:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as conn:
            while not stop.wait(every):
                conn.execute("ANALYZE events, identities, customers, event_rollups")

    thread = threading.Thread(target=run, name="bench-analyze", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(60)


def statistics_notes(analyze_every: float) -> list[str]:
    """What the run should say about PostgreSQL's table statistics."""
    if not autovacuum_on():
        source = f"--pg-analyze ({analyze_every:g} s)" if analyze_every else "nothing (see --pg-analyze)"
        return [f"autovacuum is off on this PostgreSQL: its tables get statistics from {source}"]
    if analyze_every:
        return [f"ANALYZE every {analyze_every:g} s besides autovacuum (--pg-analyze)"]
    return []


def engine_for(url: str, secret: str):  # type: ignore[no-untyped-def]
    """The server's own engine set-up (pragmas, JSON serialiser) for this database."""
    from trato.core.db import build_engine
    from trato.core.settings import Settings

    return build_engine(Settings(database_url=url, secret_key=secret), pool_size=2, max_overflow=0)


def counts(engine: Any) -> dict[str, int]:
    from sqlalchemy import text

    queries = {
        "events": "SELECT count(*) FROM events",
        "customers": "SELECT count(*) FROM customers WHERE merged_into_id IS NULL",
        "merged customers": "SELECT count(*) FROM customers WHERE merged_into_id IS NOT NULL",
        "identities": "SELECT count(*) FROM identities",
        "rollups": "SELECT count(*) FROM event_rollups",
        "max event id": "SELECT coalesce(max(id), 0) FROM events",
    }
    with engine.connect() as conn:
        return {label: int(conn.execute(text(sql)).scalar_one()) for label, sql in queries.items()}


# -- the baseline: plain executemany of the same rows ------------------------------------------


def events_copy(metadata: Any, name: str) -> Any:
    """A table shaped like ``events`` (same columns, types, keys and indexes), empty."""
    from sqlalchemy import Column, ForeignKey, Index, Table, UniqueConstraint

    from trato.customers.models import Customer, Event

    Customer.__table__.to_metadata(metadata)  # so that the foreign key resolves
    source = Event.__table__
    columns = []
    for column in source.columns:
        keys = [ForeignKey(fk.target_fullname) for fk in column.foreign_keys]
        columns.append(Column(column.name, column.type, *keys, primary_key=column.primary_key,
                              nullable=column.nullable, autoincrement=column.autoincrement))
    table = Table(name, metadata, *columns)
    for n, constraint in enumerate(c for c in source.constraints if isinstance(c, UniqueConstraint)):
        table.append_constraint(UniqueConstraint(*[c.name for c in constraint.columns], name=f"uq_{name}_{n}"))
    for n, index in enumerate(source.indexes):
        Index(f"ix_{name}_{n}", *[table.c[c.name] for c in index.columns], unique=index.unique)
    return table


BASELINES = {
    "driver 100": "bare driver executemany, a transaction per 100 rows",
    "driver all": "bare driver, one executemany",
    "core 100": "SQLAlchemy Core executemany, a transaction per 100 rows",
    "core all": "SQLAlchemy Core, one executemany",
}


def stored_rows(engine: Any, upto_id: int) -> list[dict[str, Any]]:
    """The stored events up to ``upto_id`` as the Python values the write path starts from."""
    from sqlalchemy import select

    from trato.customers.models import Event

    table = Event.__table__
    columns = [c for c in table.columns if c.name != "id"]
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(*columns).where(table.c.id <= upto_id).order_by(table.c.id))]


def driver_insert(engine: Any, table: Any, rows: list[dict[str, Any]], per_commit: int) -> float:
    """Seconds to insert ``rows`` with the driver's executemany, converting values on the way
    (JSON to text, datetimes to SQLite's text) as any writer must."""
    import orjson

    sqlite = engine.dialect.name == "sqlite"
    names = list(rows[0])
    json_columns = {"properties", "context"}
    marker = "?" if sqlite else "%s"
    values = ", ".join(f"{marker}::jsonb" if not sqlite and n in json_columns else marker for n in names)
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({values})"

    def convert(name: str, value: Any) -> Any:
        if name in json_columns:
            return orjson.dumps(value).decode()
        if sqlite and isinstance(value, datetime):
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return value

    raw = engine.raw_connection()
    try:
        began = time.perf_counter()
        for start in range(0, len(rows), per_commit):
            part = [tuple(convert(n, row[n]) for n in names) for row in rows[start:start + per_commit]]
            cursor = raw.cursor()
            if sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            cursor.executemany(sql, part)
            cursor.close()
            raw.commit()
        return time.perf_counter() - began
    finally:
        raw.close()


def core_insert(engine: Any, table: Any, rows: list[dict[str, Any]], per_commit: int) -> float:
    """Seconds to insert ``rows`` with SQLAlchemy Core's executemany (the model's column types)."""
    from sqlalchemy import insert

    began = time.perf_counter()
    for start in range(0, len(rows), per_commit):
        with engine.begin() as conn:
            conn.execute(insert(table), rows[start:start + per_commit])
    return time.perf_counter() - began


def baseline(engine: Any, rows: list[dict[str, Any]]) -> dict[str, float]:
    """Rows/s of a plain INSERT executemany of ``rows`` into a fresh, empty copy of ``events``."""
    from sqlalchemy import MetaData

    copy = events_copy(MetaData(), "bench_events_copy")
    rates: dict[str, float] = {}
    for label, insert_rows, per_commit in (("driver 100", driver_insert, 100), ("driver all", driver_insert, 0),
                                            ("core 100", core_insert, 100), ("core all", core_insert, 0)):
        copy.drop(engine, checkfirst=True)
        copy.create(engine)
        rates[label] = len(rows) / insert_rows(engine, copy, rows, per_commit or len(rows))
    copy.drop(engine)
    rates["rows"] = len(rows)
    return rates


# -- one load phase -----------------------------------------------------------------------------


@dataclass
class Phase:
    result: load.LoadResult
    server_cpu: float = 0.0
    database_cpu: float = 0.0  # PostgreSQL backends of the bench database
    machine_busy: float = 0.0  # CPU seconds of the whole machine during the phase
    machine_total: float = 0.0
    load_average: float = 0.0  # `uptime`'s 1-minute load when the load ended
    fold_wall: float = 0.0  # seconds from the first request until the inbox was empty again
    backlog_at_end: int = 0  # events accepted and not yet folded when the last response came
    drain_wall: float = 0.0  # seconds from the last response until the inbox was empty
    drain_server_cpu: float = 0.0
    drain_database_cpu: float = 0.0

    @property
    def fold_per_second(self) -> float:
        """Events folded into the customer memory a second, from the first request to an empty inbox."""
        return self.result.events / self.fold_wall if self.fold_wall else 0.0

    @property
    def others_cpu(self) -> float:
        """CPU seconds the rest of the machine used meanwhile (other programs)."""
        return max(0.0, self.machine_busy - self.server_cpu - self.database_cpu - self.result.client_cpu)

    @property
    def per_second(self) -> float:
        return self.result.events / self.result.wall if self.result.wall else 0.0

    @property
    def requests_per_second(self) -> float:
        return self.result.requests / self.result.wall if self.result.wall else 0.0

    def ms(self, share: float) -> float:
        return load.percentile(self.result.latencies, share) * 1000


def inbox_engine_for(url: str, secret: str, main: Any) -> Any:
    """The ingest inbox's database: on SQLite a file of its own beside the main one."""
    if not url.startswith("sqlite"):
        return main
    from trato.ingest.models import inbox_metadata

    database = Path(url.removeprefix("sqlite:///"))
    engine = engine_for(f"sqlite:///{database.with_name(database.stem + '.inbox.db')}", secret)
    inbox_metadata.create_all(engine)
    return engine


def inbox_backlog(engine: Any) -> int:
    """Events accepted by the tracking API and not yet folded into the customer memory."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(conn.execute(text("SELECT coalesce(sum(events), 0) FROM ingest_inbox WHERE error IS NULL")).scalar_one())


def wait_for_fold(engine: Any, phase: Phase, started: float, server_pid: int, database: str | None,
                  timeout: float, folder: dict[str, Any] | None) -> None:
    """Poll the inbox until it is empty; record the fold's end-to-end time and the drain after the
    load. ``folder``: the command of a folder process to start now (the server does not fold)."""
    ended = time.perf_counter()
    process = subprocess.Popen(**folder, stdout=subprocess.DEVNULL) if folder else None
    pid = process.pid if process else server_pid
    cpu, db_cpu = process_cpu(pid), database_cpu(database)
    try:
        phase.backlog_at_end = inbox_backlog(engine)
        backlog = phase.backlog_at_end
        while backlog:
            if time.perf_counter() - ended > timeout:
                raise SystemExit(f"the inbox still holds {backlog:,} events {timeout:.0f} s after the load ended")
            time.sleep(0.05)
            backlog = inbox_backlog(engine)
        done = time.perf_counter()
        phase.fold_wall, phase.drain_wall = done - started, done - ended
        phase.drain_server_cpu = process_cpu(pid) - cpu
        phase.drain_database_cpu = database_cpu(database) - db_cpu
    finally:
        if process is not None:
            process.send_signal(signal.SIGINT)
            process.wait(60)


def run_phase(spec: load.LoadSpec, server_pid: int, database: str | None = None, engine: Any = None,
              folder: dict[str, Any] | None = None) -> Phase:
    """Run the load generator in its own process; measure the server's CPU while it sends; then,
    with ``engine``, wait until the server has folded everything it accepted."""
    context = multiprocessing.get_context("spawn")
    results, ready, go = context.Queue(), context.Event(), context.Event()
    child = context.Process(target=load.child, args=(spec, results, ready, go), daemon=True)
    child.start()
    try:
        deadline = time.monotonic() + 600  # building the bodies
        while not ready.wait(0.5):
            if not child.is_alive() or time.monotonic() > deadline:
                break
        cpu, db_cpu, (busy, total) = process_cpu(server_pid), database_cpu(database), machine_busy()
        started = time.perf_counter()
        go.set()
        deadline = time.monotonic() + spec.timeout + 60
        while True:
            try:
                result: load.LoadResult = results.get(timeout=1)
                break
            except queue.Empty:
                if not child.is_alive() and results.empty():
                    result = load.LoadResult(error=f"the load generator exited ({child.exitcode}) without a result")
                    break
                if time.monotonic() > deadline:
                    result = load.LoadResult(error=f"no result from the load generator within {spec.timeout + 60:.0f} s")
                    break
        busy_after, total_after = machine_busy()
        phase = Phase(result, process_cpu(server_pid) - cpu, database_cpu(database) - db_cpu,
                      busy_after - busy, total_after - total, os.getloadavg()[0])
        if engine is not None and not result.error:
            wait_for_fold(engine, phase, started, server_pid, database, spec.timeout, folder)
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
            child.join(5)
    if result.error:
        raise SystemExit(f"{spec.phase} phase: {result.error}")
    return phase


def report_failures(label: str, phase: Phase) -> None:
    failed = sum(phase.result.failures.values())
    if failed:
        print(f"  {label}: {failed:,} requests failed:")
        for text, n in phase.result.failures.most_common(10):
            print(f"    {n:>7,} x {text}")


# -- one database -------------------------------------------------------------------------------


@dataclass
class Outcome:
    db: str
    batch: Phase
    single: Phase
    baseline: dict[str, float]
    counts: dict[str, int]
    expected_events: int
    notes: list[str] = field(default_factory=list)


def bench_database(kind: str, args: argparse.Namespace) -> Outcome:
    workdir = Path(tempfile.mkdtemp(prefix=f"trato-bench-{kind}-"))
    secret = secrets.token_urlsafe(48)
    try:
        with fresh_database(kind, workdir) as url:
            env = server_env(url, secret)
            trato(["db", "upgrade"], env, workdir)
            found = re.search(r"write key:\s*(\S+)", trato(["sources", "create", "bench-web"], env, workdir))
            if not found:
                raise SystemExit("trato sources create printed no write key")
            key = found.group(1)
            if args.profile_server:
                out = Path(args.profile_server).resolve() / kind
                out.mkdir(parents=True, exist_ok=True)
                command = [sys.executable, str(BENCH_DIR / "ingest.py"), "--serve-profiled", str(out),
                           "--port", "{port}"]
            else:
                command = [sys.executable, "-m", "trato", "serve", "--no-worker", "--port", "{port}",
                           "--workers", str(args.workers)]
            folder = None
            if args.fold_after:
                command.append("--no-folder")
                folder = {"args": [sys.executable, "-m", "trato", "fold"], "env": env, "cwd": workdir}
            engine = engine_for(url, secret)
            inbox_engine = inbox_engine_for(url, secret, engine)
            database = url.rsplit("/", 1)[1] if kind == "postgresql" else None
            common = dict(host=HOST, write_key=key, clients=args.clients, seed=args.seed, people=args.people,
                          client=args.client, timeout=args.timeout)
            notes = statistics_notes(args.pg_analyze) if kind == "postgresql" else []
            analyze_every = args.pg_analyze if kind == "postgresql" else 0
            with Server(command, env, workdir, workdir / "server.log") as server, analyzing(url, analyze_every):
                assert server.process is not None
                print(f"[{kind}] server on port {server.port}; batch phase: {args.events:,} events", flush=True)
                batch = run_phase(load.LoadSpec(phase="batch", port=server.port, path="/v1/batch",
                                                events=args.events, **common), server.process.pid, database, inbox_engine, folder)
                after_batch = counts(engine)
                print(f"[{kind}] single phase: {args.singles:,} /v1/track requests", flush=True)
                single = run_phase(load.LoadSpec(phase="single", port=server.port, path="/v1/track",
                                                 events=args.singles, **common), server.process.pid, database, inbox_engine, folder)
            final = counts(engine)
            print(f"[{kind}] baseline: executemany of the {after_batch['events']:,} stored rows", flush=True)
            rates = baseline(engine, stored_rows(engine, after_batch["max event id"]))
            engine.dispose()
            return Outcome(kind, batch, single, rates, final, batch.result.events + single.result.events, notes)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- the framework floor ------------------------------------------------------------------------


def bench_floor(args: argparse.Namespace) -> dict[str, tuple[Phase, Phase]]:
    """Batch and single phases against the floor server: FastAPI, and with --floor-variants also
    FastAPI with a sync dependency and bare ASGI."""
    workdir = Path(tempfile.mkdtemp(prefix="trato-bench-floor-"))
    prefixes = {"FastAPI": ""}
    if args.floor_variants:
        prefixes.update({"FastAPI + sync dependency": "/dep", "bare ASGI": "/raw"})
    floors: dict[str, tuple[Phase, Phase]] = {}
    try:
        command = [sys.executable, str(BENCH_DIR / "ingest.py"), "--serve-floor", "--port", "{port}"]
        env = server_env("sqlite:///unused.db", "x" * 40)
        with Server(command, env, workdir, workdir / "server.log") as server:
            assert server.process is not None
            common = dict(host=HOST, port=server.port, write_key="unused", clients=args.clients, seed=args.seed,
                          people=args.people, client=args.client, timeout=args.timeout)
            for label, prefix in prefixes.items():
                print(f"[floor] {label}, nothing stored, port {server.port}", flush=True)
                batch = run_phase(load.LoadSpec(phase="batch", path=prefix + "/v1/batch", events=args.events,
                                                **common), server.process.pid)
                single = run_phase(load.LoadSpec(phase="single", path=prefix + "/v1/track", events=args.singles,
                                                 **common), server.process.pid)
                floors[label] = (batch, single)
        return floors
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- profiling the real server --------------------------------------------------------------------


def serve_profiled(out: Path, port: int, no_folder: bool = False) -> None:
    """``trato serve --no-worker`` with cProfile (per-thread CPU time) on the event loop and the writer."""
    import cProfile

    from trato import cli
    from trato.ingest import writer as writer_module

    run = writer_module.IngestWriter._run

    def profiled_run(self: Any) -> None:
        profile = cProfile.Profile(time.thread_time)
        profile.enable()
        try:
            run(self)
        finally:
            profile.disable()
            profile.dump_stats(out / "writer.prof")

    writer_module.IngestWriter._run = profiled_run  # type: ignore[method-assign]
    sys.argv = ["trato", "serve", "--no-worker", "--port", str(port), *(["--no-folder"] if no_folder else [])]
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    try:
        cli.main()
    except SystemExit:
        pass
    finally:
        profile.disable()
        profile.dump_stats(out / "loop.prof")


# -- the summary ----------------------------------------------------------------------------------


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_outcome(o: Outcome) -> None:
    b, s = o.batch, o.single
    print(f"\n== {o.db} ==")
    print(f"  batch   {b.result.events:,} events in {b.result.requests:,} requests of 100, {b.result.wall:.1f} s: "
          f"{_n(b.per_second)} events/s; p50 {b.ms(0.5):.1f} ms, p99 {b.ms(0.99):.1f} ms a batch; "
          f"{sum(b.result.failures.values())} failed")
    print(f"  single  {s.result.requests:,} /v1/track requests, {s.result.wall:.1f} s: {_n(s.requests_per_second)} req/s; "
          f"p50 {s.ms(0.5):.1f} ms, p99 {s.ms(0.99):.1f} ms, max {max(s.result.latencies, default=0) * 1000:.0f} ms; "
          f"{sum(s.result.failures.values())} failed")
    for label, phase in (("batch", b), ("single", s)):
        drained = phase.backlog_at_end / phase.drain_wall if phase.drain_wall and phase.backlog_at_end else 0.0
        database = (f", PostgreSQL {phase.drain_database_cpu / phase.drain_wall:.0%}"
                    if o.db == "postgresql" and phase.drain_wall else "")
        print(f"  fold    {label}: {phase.result.events:,} events in the customer memory {phase.fold_wall:.1f} s after "
              f"the first request: {_n(phase.fold_per_second)} events/s end to end; {phase.backlog_at_end:,} waited "
              f"when the load ended, folded in {phase.drain_wall:.1f} s ({_n(drained)} events/s; server "
              f"{phase.drain_server_cpu / max(phase.drain_wall, 1e-9):.0%} of one core{database})")
    print(f"  load average (uptime, 1 min) at the end of each phase: batch {b.load_average:.2f}, "
          f"single {s.load_average:.2f}")
    print(f"  baseline: plain INSERT of the same {o.baseline['rows']:,.0f} rows into an empty copy of events")
    for key, label in BASELINES.items():
        print(f"    {_n(o.baseline[key]):>9} rows/s  {label}  (batch API = {b.per_second / o.baseline[key]:.2f} of it)")
    for label, phase, unit, n in (("batch", b, "event", b.result.events), ("single", s, "request", s.result.requests)):
        wall = phase.result.wall
        database = f", PostgreSQL {phase.database_cpu / wall:.0%}" if o.db == "postgresql" else ""
        print(f"  CPU during {label}: server {phase.server_cpu / n * 1e6:,.0f} us a {unit} "
              f"({phase.server_cpu / wall:.0%} of one core){database}, load generator "
              f"{phase.result.client_cpu / wall:.0%}, other programs {phase.others_cpu / wall:.0%}; machine "
              f"{phase.machine_busy / phase.machine_total:.0%} busy ({os.cpu_count()} cores)")
    c = o.counts
    ok = c["events"] == o.expected_events
    print(f"  stored  events {c['events']:,} (sent {o.expected_events:,} unique: {'OK' if ok else 'MISMATCH'}); "
          f"customers {c['customers']:,} (+{c['merged customers']:,} merged); identities {c['identities']:,}; "
          f"rollups {c['rollups']:,}")
    for note in o.notes:
        print(f"  note: {note}")
    report_failures("batch", b)
    report_failures("single", s)


def print_summary(outcomes: list[Outcome], floors: dict[str, tuple[Phase, Phase]], args: argparse.Namespace) -> None:
    print(f"\n== summary ({args.events:,} batched events, {args.singles:,} single requests, "
          f"{args.clients} connections, {args.people:,} people, {os.cpu_count()} cores) ==")
    for o in outcomes:
        b, s = o.batch, o.single
        raw, big = o.baseline["driver 100"], o.baseline["driver all"]
        print(f"{o.db:<10} batch accepted: {_n(b.per_second)} events/s (ratio {b.per_second / raw:.2f} of raw "
              f"executemany {_n(raw)} rows/s in commits of 100; {b.per_second / big:.2f} of one executemany "
              f"{_n(big)} rows/s)  single: {_n(s.requests_per_second)} req/s p50 {s.ms(0.5):.1f} ms p99 "
              f"{s.ms(0.99):.1f} ms  folded: {_n(b.fold_per_second)} events/s end to end (ratio "
              f"{b.fold_per_second / raw:.2f} of raw executemany in commits of 100)  load average "
              f"{b.load_average:.2f} / {s.load_average:.2f}")
    for label, (fb, fs) in floors.items():
        report_failures(f"floor, {label}, batch", fb)
        report_failures(f"floor, {label}, single", fs)
        print(f"{'floor':<10} batch: {_n(fb.per_second)} events/s ({_n(fb.requests_per_second)} req/s)  "
              f"single: {_n(fs.requests_per_second)} req/s p50 {fs.ms(0.5):.1f} ms p99 {fs.ms(0.99):.1f} ms  "
              f"({label}: same uvicorn, body decoded, nothing stored; single: server "
              f"{fs.server_cpu / fs.result.requests * 1e6:,.0f} us CPU a request, load generator "
              f"{fs.result.client_cpu / fs.result.requests * 1e6:,.0f} us)")
    if "FastAPI" in floors:
        fb, fs = floors["FastAPI"]
        for o in outcomes:
            print(f"{'':<10} {o.db}: the FastAPI floor is {fb.result.wall / o.batch.result.wall:.0%} of the batch "
                  f"wall time, {fs.result.wall / o.single.result.wall:.0%} of the single-event wall time")
    print(f"targets    batch >= {TARGET_BATCH:,} events/s; single >= {TARGET_SINGLE:,} req/s with p99 < "
          f"{TARGET_P99_MS:.0f} ms (SQLite on this 2-core machine)")
    for o in outcomes:
        s = o.single
        failures = sum(o.batch.result.failures.values()) + sum(s.result.failures.values())
        print(f"{o.db:<10} batch {_met(o.batch.per_second >= TARGET_BATCH)}; single rate "
              f"{_met(s.requests_per_second >= TARGET_SINGLE)}; single p99 {_met(s.ms(0.99) < TARGET_P99_MS)}; "
              f"all 200: {'yes' if not failures else f'NO ({failures:,} failed)'}; "
              f"events stored = sent: {'yes' if o.counts['events'] == o.expected_events else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both", "none"), default="both",
                        help="none: only the framework floor")
    parser.add_argument("--events", type=int, help="events sent through /v1/batch (default 200,000; quick 20,000)")
    parser.add_argument("--singles", type=int, help="/v1/track requests (default 20,000; quick 5,000)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent keep-alive connections")
    parser.add_argument("--workers", type=int, default=1, help="server processes (trato serve --workers)")
    parser.add_argument("--fold-after", action="store_true",
                        help="serve with --no-folder and fold with `trato fold` after each load phase: the "
                             "accepting and the folding rates each alone")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a first look")
    parser.add_argument("--people", type=int, default=20_000, help="population the calls are about")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw", help="HTTP client of the load generator")
    parser.add_argument("--timeout", type=float, default=900.0, help="hard limit of each load phase, in seconds")
    parser.add_argument("--no-floor", action="store_true", help="skip the framework floor")
    parser.add_argument("--floor-variants", action="store_true",
                        help="also measure the floor with a sync dependency and as bare ASGI")
    parser.add_argument("--pg-analyze", type=float, default=0.0, metavar="SECONDS",
                        help="PostgreSQL: ANALYZE the ingest tables this often during the run, as autovacuum would")
    parser.add_argument("--profile-server", metavar="DIR", help="run the server under cProfile; profiles go to DIR/<db>/")
    parser.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-profiled", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-folder", action="store_true", help=argparse.SUPPRESS)  # for --serve-profiled
    args = parser.parse_args()
    if args.serve_floor:
        import floor

        floor.serve(HOST, args.port)
        return
    if args.serve_profiled:
        serve_profiled(Path(args.serve_profiled), args.port, args.no_folder)
        return
    args.events = args.events or (20_000 if args.quick else 200_000)
    args.singles = args.singles or (5_000 if args.quick else 20_000)
    if not (0 < args.events <= 5_000_000 and 0 < args.singles <= 1_000_000 and 0 < args.clients <= 256):
        parser.error("--events, --singles and --clients must be positive (and at most 5M, 1M and 256)")
    kinds = {"both": ["sqlite", "postgresql"], "none": []}.get(args.db, [args.db])
    if not kinds and args.no_floor:
        parser.error("--db none measures only the floor: drop --no-floor")
    print(f"trato {code_version()}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"{args.workers} server process(es)", flush=True)
    floors = {} if args.no_floor else bench_floor(args)
    outcomes = []
    for kind in kinds:
        outcome = bench_database(kind, args)
        print_outcome(outcome)
        outcomes.append(outcome)
    print_summary(outcomes, floors, args)
    failed = any(
        o.counts["events"] != o.expected_events or o.batch.result.failures or o.single.result.failures
        for o in outcomes
    ) or any(fb.result.failures or fs.result.failures for fb, fs in floors.values())
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
