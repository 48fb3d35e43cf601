"""What provider failover, circuits and rate limits add to each delivery attempt, beside baselines
measured in the same run:

- ``registry.chain``: the channel's providers in failover order, with the read of the providers'
  change stamp in the caller's transaction — against a bare ``SELECT 1`` in a read-only session;
- the circuit check and update of one send (``allow`` + ``succeeded``) and one rate-limit token
  (``take``), in-process and in Redis (Lua scripts) — against a Redis ``PING``;
- the shared token bucket's accuracy: T threads taking tokens from one Redis bucket at R/s; the
  elapsed time against the theoretical (N - burst) / R.

    .venv/bin/python bench/providers.py [--calls 3000] [--threads 4] [--rate 200] [--tokens 600]

Redis at TRATO_BENCH_REDIS_URL (default redis://127.0.0.1:6379/0); its part is skipped without it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def per_call(fn: Callable[[], object], calls: int) -> float:
    """Median of five runs of ``calls`` calls, in microseconds per call."""
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--tokens", type=int, default=600)
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="trato-bench-providers-")
    os.environ["TRATO_DATABASE_URL"] = f"sqlite:///{folder}/trato.db"
    os.environ["TRATO_SECRET_KEY"] = "bench-secret-" + "x" * 40
    os.environ.pop("TRATO_REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    try:
        return run(args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    from sqlalchemy import text

    from trato.core import migrate
    from trato.core.db import new_session, unit_of_work
    from trato.delivery import providers
    from trato.delivery.channels import registry
    from trato.delivery.resilience import LocalHealth, RedisHealth

    migrate.upgrade()
    with unit_of_work() as session:
        providers.add_provider(session, actor="bench", name="sms-a", url="sandbox://", channels=["sms"], priority=1)
        providers.add_provider(session, actor="bench", name="sms-b", url="sandbox://", channels=["sms"], priority=2,
                               max_per_second=50)

    def bare() -> None:
        with new_session(readonly=True) as s:
            s.execute(text("SELECT 1"))

    def chain() -> None:
        with new_session(readonly=True) as s:
            registry.chain("sms", session=s)

    assert [c.name for c in registry.chain("sms")] == ["sms-a", "sms-b"]
    base = per_call(bare, args.calls)
    looked_up = per_call(chain, args.calls)
    print(f"registry.chain in a read-only session: {looked_up:8.1f} µs/call   "
          f"(bare SELECT 1: {base:.1f} µs, ratio {looked_up / base:.2f})")

    local = LocalHealth(failures=5, cooldown=30)
    local_check = per_call(lambda: (local.allow("sms-a"), local.succeeded("sms-a")), args.calls)
    local_take = per_call(lambda: local.take("sms-b", 1e9), args.calls)
    print(f"in-process circuit allow+succeeded:    {local_check:8.2f} µs/call")
    print(f"in-process token take:                 {local_take:8.2f} µs/call")

    url = os.environ.get("TRATO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        shared = RedisHealth(url, prefix=prefix, failures=5, cooldown=30)
        shared.client.ping()
    except Exception as exc:  # noqa: BLE001 (a benchmark without Redis still reports the rest)
        print(f"Redis not reachable at {url} ({type(exc).__name__}): its figures are skipped")
        return 0
    try:
        ping = per_call(shared.client.ping, args.calls)
        check = per_call(lambda: (shared.allow("sms-a"), shared.succeeded("sms-a")), args.calls)
        take = per_call(lambda: shared.take("sms-b", 1e9), args.calls)
        print(f"Redis circuit allow+succeeded:         {check:8.1f} µs/call   (PING: {ping:.1f} µs, ratio "
              f"{check / ping:.2f})")
        print(f"Redis token take (Lua):                {take:8.1f} µs/call   (ratio to PING {take / ping:.2f})")

        taken = [0]
        lock = threading.Lock()

        def taker() -> None:
            while True:
                with lock:
                    if taken[0] >= args.tokens:
                        return
                wait = shared.take("accuracy", args.rate)
                if wait:
                    time.sleep(wait)
                    continue
                with lock:
                    taken[0] += 1

        burst = max(1.0, args.rate)
        expected = (args.tokens - burst) / args.rate
        threads = [threading.Thread(target=taker) for _ in range(args.threads)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        print(f"{taken[0]} tokens at {args.rate:g}/s by {args.threads} threads: {elapsed:.3f} s "
              f"(theory {expected:.3f} s, ratio {elapsed / expected:.3f}; achieved "
              f"{(taken[0] - burst) / elapsed:.1f}/s after the burst)")
    finally:
        shared.reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())
