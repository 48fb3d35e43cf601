"""Demo load time: ``load_demo`` into a fresh SQLite database, phase by phase.

Each run loads the demo twice into fresh databases: once as the loader stood before the demo
had postal addresses and an archive (addresses left out of the people, the archive step
skipped: the baseline), once in full. It prints seconds per phase, the full load's total and
its ratio to the baseline's, and the archive entries written.

    .venv/bin/python bench/demo.py                    # 2,000 customers
    .venv/bin/python bench/demo.py --customers 10000  # what make run loads
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

Timings = dict[str, float]


def _timed(timings: Timings, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
    return wrapper


@contextmanager
def _database() -> Iterator[None]:
    from trato.core import db, migrate
    from trato.core.settings import get_settings

    with tempfile.TemporaryDirectory(prefix="trato-bench-demo-") as tmp:
        os.environ["TRATO_DATABASE_URL"] = f"sqlite:///{tmp}/demo.db"
        get_settings.cache_clear()
        db.reset_engine()
        migrate.upgrade()
        try:
            yield
        finally:
            db.reset_engine()


def run(customers: int, *, full: bool) -> tuple[Timings, int]:
    from sqlalchemy import func, select

    from trato.demo import people, service

    timings: Timings = {}
    patched: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, value: Any) -> None:
        patched.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    for name in ("_write", "load_communications"):
        patch(service, name, _timed(timings, name.strip("_"), getattr(service, name)))
    patch(service.consents, "load_consents", _timed(timings, "consents", service.consents.load_consents))
    if hasattr(service, "load_archive"):
        patch(service, "load_archive", _timed(timings, "archive", service.load_archive) if full
              else (lambda **_: 0))
    if not full and hasattr(people, "postal_address"):
        patch(people, "postal_address", lambda *a, **k: None)
    entries = 0
    try:
        with _database():
            started = time.perf_counter()
            service.load_demo(customers=customers, seed=7, progress=None)
            timings["total"] = time.perf_counter() - started
            try:
                from trato.archive.models import ArchivedMessage
                from trato.core.db import new_session

                with new_session(readonly=True) as session:
                    entries = session.scalar(select(func.count()).select_from(ArchivedMessage)) or 0
            except ImportError:
                entries = 0
    finally:
        for owner, name, value in reversed(patched):
            setattr(owner, name, value)
    return timings, entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    args = parser.parse_args()
    base, _ = run(args.customers, full=False)
    full, entries = run(args.customers, full=True)
    print(f"demo load, {args.customers:,} customers, SQLite")
    for name in sorted(set(base) | set(full), key=lambda n: (n == "total", n)):
        print(f"  {name:20} baseline {base.get(name, 0):7.2f} s   full {full.get(name, 0):7.2f} s")
    print(f"  archive entries: {entries:,}")
    print(f"  full / baseline: {full['total'] / base['total']:.2f}")


if __name__ == "__main__":
    main()
