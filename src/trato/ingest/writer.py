"""Group commit into the ingest inbox: one writer thread, many requests per transaction.

Requests parse and validate on the event loop, then hand their accepted calls to the writer and
wait. The writer takes everything queued, appends it to the inbox in one transaction and commits
once, then wakes each request. On SQLite the writer runs on the event loop itself, once a turn
for all requests of that turn; on PostgreSQL, whose commit waits for the server, in a thread. An HTTP 200 therefore always means "stored durably"; the folder
(:mod:`trato.ingest.folder`) moves the inbox into the customer memory afterwards. SQLite allows
one writer at a time anyway; on PostgreSQL the same design saves a commit per request. If a
shared transaction fails, each request in it is retried alone, so one cannot fail another.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError, OperationalError

from trato.ingest import inbox

log = structlog.get_logger("trato.ingest")
MAX_GROUP_EVENTS = 5000
LINGER_BELOW_EVENTS = 50
LINGER_SECONDS = 0.001
RETRIES = 3


@dataclass
class _Job:
    entry: inbox.Accepted
    loop: asyncio.AbstractEventLoop | None
    future: Any  # asyncio.Future


class IngestWriter:
    def __init__(self) -> None:
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Called after each commit (the folder wakes up instead of waiting for its next look).
        self.after_commit: Callable[[], None] | None = None
        self._inline: dict[asyncio.AbstractEventLoop, list[_Job]] = {}

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="trato-ingest-writer", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=10)

    async def submit(self, entry: inbox.Accepted) -> None:
        """Append one accepted request to the inbox; returns once it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        job = _Job(entry, loop, future)
        if inbox.engine().dialect.name == "sqlite":
            # SQLite's commit (WAL, the inbox file's own lock) takes tens of microseconds: cheaper
            # on the event loop, for every request that arrived in the same turn of it, than the
            # hand-offs to and from a thread.
            pending = self._inline.setdefault(loop, [])
            pending.append(job)
            if len(pending) == 1:
                loop.call_soon(self._flush_inline, loop)
        else:
            self.start()
            self._queue.put(job)
        await future

    def _flush_inline(self, loop: asyncio.AbstractEventLoop) -> None:
        group = self._inline.pop(loop, [])
        if group:
            self._write(group)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            group, size = [job], job.entry.events
            lingered = False
            while size < MAX_GROUP_EVENTS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    # A small group waits a moment for requests already on their way: a commit
                    # shared by more of them costs far less than a millisecond of latency.
                    if lingered or size >= LINGER_BELOW_EVENTS:
                        break
                    lingered = True
                    try:
                        more = self._queue.get(timeout=LINGER_SECONDS)
                    except queue.Empty:
                        break
                if more is None:
                    self._queue.put(None)
                    break
                group.append(more)
                size += more.entry.events
            self._write(group)

    def _write(self, group: list[_Job]) -> None:
        try:
            self._transaction(group)
        except Exception:
            for job in group:
                self._retry_alone(job)
            return
        for job in group:
            _resolve(job, None)
        if self.after_commit is not None:
            self.after_commit()

    def _retry_alone(self, job: _Job) -> None:
        for attempt in range(RETRIES):
            try:
                self._transaction([job])
                _resolve(job, None)
                return
            except (IntegrityError, OperationalError) as exc:
                if attempt == RETRIES - 1:
                    log.exception("accepting a tracking request failed", source_id=job.entry.source_id)
                    _fail(job, exc)
            except Exception as exc:
                log.exception("accepting a tracking request failed", source_id=job.entry.source_id)
                _fail(job, exc)
                return

    @staticmethod
    def _transaction(group: list[_Job]) -> None:
        """One transaction appending the whole group to the inbox, in arrival order."""
        with inbox.engine().begin() as connection:
            inbox.append(connection, [job.entry for job in group])


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _resolve(job: _Job, result: None) -> None:
    if job.loop is None:
        return
    if _in_loop(job.loop):
        _set(job.future, result, None)
    else:
        job.loop.call_soon_threadsafe(_set, job.future, result, None)


def _fail(job: _Job, exc: BaseException) -> None:
    if job.loop is None:
        return
    if _in_loop(job.loop):
        _set(job.future, None, exc)
    else:
        job.loop.call_soon_threadsafe(_set, job.future, None, exc)


def _set(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


writer = IngestWriter()
