"""The demo's calls, a transaction's worth at a time, in the order they must be written.

Generating a large demo takes about a quarter of the loading time, so for large loads a second
process generates the next batches while this one writes; the calls cross over as plain
Segment JSON, which is cheap to pass (parsed events would cost as much to pass as to parse).
Both ways give exactly the same batches.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trato.demo.calendar import Calendar
from trato.demo.catalogue import Catalogue
from trato.demo.history import REST, STORY, STORY_ORDER, Call, Record
from trato.demo.people import Population
from trato.demo.year import build

# Below this many customers a second process costs more than it saves.
PARALLEL_FROM = 1500


@dataclass(slots=True)
class Batch:
    customers: int
    # (source, calls) in the order they are written: the story source by source, then the rest.
    groups: list[tuple[str, list[dict[str, Any]]]]
    records: list[Record]


def batches(*, customers: int, seed: int, anchor: datetime, size: int) -> Iterator[Batch]:
    """Whole customers per batch, at least ``size`` calls each (the last one may be smaller)."""
    population = Population(seed=seed, anchor=anchor)
    calendar, catalogue = Calendar(anchor), Catalogue()
    calls: list[Call] = []
    records: list[Record] = []
    people = 0
    for index in range(customers):
        year = build(population.person(index), calendar, catalogue, seed)
        calls.extend(year.calls)
        records.extend(year.records)
        people += 1
        if len(calls) >= size or index == customers - 1:
            yield _batch(people, calls, records)
            calls, records, people = [], [], 0


def _batch(people: int, calls: list[Call], records: list[Record]) -> Batch:
    grouped: dict[tuple[int, str], list[Call]] = defaultdict(list)
    for call in calls:
        grouped[(call.phase, call.source)].append(call)
    groups = []
    for phase in (STORY, REST):
        for source in STORY_ORDER:
            if part := grouped.get((phase, source)):
                part.sort(key=lambda call: call.at)
                groups.append((source, [call.body for call in part]))
    records.sort(key=lambda record: record.at)
    return Batch(people, groups, records)


@contextmanager
def generated(*, customers: int, seed: int, anchor: datetime, size: int) -> Iterator[Iterator[Batch]]:
    """The batches, made by a second process when the load is large enough to gain from one."""
    if customers < PARALLEL_FROM or (os.cpu_count() or 1) < 2 or not sys.executable:
        yield batches(customers=customers, seed=seed, anchor=anchor, size=size)
        return
    # A fresh interpreter rather than multiprocessing: nothing of the caller's (its main module,
    # database connections, threads) is copied or re-run. The pipe's buffer bounds how far ahead it gets.
    command = [sys.executable, "-m", "trato.demo.batches", str(customers), str(seed), anchor.isoformat(), str(size)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        yield _receive(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


def _receive(process: subprocess.Popen[bytes]) -> Iterator[Batch]:
    assert process.stdout is not None
    while True:
        try:
            item = pickle.load(process.stdout)
        except EOFError:
            raise RuntimeError(f"the demo generator stopped (exit status {process.wait()})") from None
        if item is None:
            return
        yield item


def _produce(customers: int, seed: int, anchor: datetime, size: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the loader's to handle; it ends this process
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # the pipe carries batches only: anything printed goes to the terminal
    for batch in batches(customers=customers, seed=seed, anchor=anchor, size=size):
        pickle.dump(batch, out, protocol=pickle.HIGHEST_PROTOCOL)
    pickle.dump(None, out)
    out.flush()


if __name__ == "__main__":
    # Through the package's own module, so that batches pickle under its name and not __main__'s.
    from trato.demo import batches as module

    module._produce(int(sys.argv[1]), int(sys.argv[2]), datetime.fromisoformat(sys.argv[3]), int(sys.argv[4]))
