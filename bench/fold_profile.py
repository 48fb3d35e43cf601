"""The ingest folder alone, in-process: how fast the inbox drains into the customer memory.

    .venv/bin/python bench/fold_profile.py [--db sqlite|postgresql] [--events 20000] [--fold-events 2000]
        [--campaign] [--profile] [--top 25]

On a fresh database: the /v1/batch bodies of bench/ingest.py (100 calls each) are appended to the
inbox as the tracking API appends them, then ``inbox.drain()`` folds them, ``--fold-events``
events a transaction. Prints events/s (wall, and on one core of CPU) with the 1-minute load
average, and the same rows inserted by one plain executemany as the baseline. ``--profile``
runs the drain under cProfile instead and prints the top functions by own time. ``--campaign``
first adds a finished campaign whose conversion window is open, with "Order Completed" (5% of the
calls) as its conversion event: each fold then looks those buyers up among its recipients.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest as bench  # noqa: E402
import workload  # noqa: E402
from ingest_profile import use_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--fold-events", type=int, default=2_000, help="events a fold transaction")
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--campaign", action="store_true", help="a campaign converting on Order Completed")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="trato-fold-"))
    secret = secrets.token_urlsafe(48)
    try:
        with bench.fresh_database(args.db, workdir) as url:
            os.environ["TRATO_INGEST_FOLD_EVENTS"] = str(args.fold_events)
            engine = use_database(url, secret)
            run(args, engine, url, secret)
            engine.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, engine: object, url: str, secret: str) -> None:
    import trato.campaigns.attribution  # noqa: F401  (imported before the clock starts, as in a running server)
    from trato.core.clock import utcnow
    from trato.core.db import unit_of_work
    from trato.ingest import inbox, service

    with unit_of_work() as session:
        source, _key = service.create_source(session, name="bench-web", actor="bench")
        if args.campaign:
            from trato.campaigns.models import Campaign

            now = utcnow()
            session.add(Campaign(id="cmp_bench", name="bench", segment_id="seg_bench", purpose="marketing",
                                 channels=["email"], variants=[], state="done", conversion_event="Order Completed",
                                 conversion_days=7, started_at=now, finished_at=now, created_by="bench"))
    calls = workload.Calls(workload.population(args.people, 1), seed=1, stream="batch")
    bodies = list(workload.batch_bodies(calls, args.events, 100))
    with inbox.engine().begin() as connection:
        inbox.append(connection, [
            inbox.Accepted(source.id, utcnow(), None, body.decode(), body.count(b'"messageId"')) for body in bodies
        ])
    print(f"{args.events:,} events in {len(bodies)} inbox rows, {args.db}, {args.fold_events:,} events a fold"
          f"{', a campaign converting on Order Completed' if args.campaign else ''}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if args.profile:
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        inbox.drain()
        profile.disable()
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.top)
        return
    wall, cpu = time.perf_counter(), time.process_time()
    folded = inbox.drain()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"folded {folded:,} events in {wall:.1f} s: {folded / wall:,.0f} events/s; "
          f"{cpu / folded * 1e6:,.0f} us of this process's CPU an event ({folded / cpu:,.0f} events/s on one core); "
          f"load average {os.getloadavg()[0]:.2f}")
    rows = bench.stored_rows(engine, 1 << 62)
    rates = bench.baseline(engine, rows)
    for key, label in bench.BASELINES.items():
        print(f"  {rates[key]:>9,.0f} rows/s  {label}  (fold = {folded / wall / rates[key]:.2f} of it)")


if __name__ == "__main__":
    main()
