"""Group commit for the tracking API: one writer thread, many requests per transaction.

Requests parse and validate on the event loop, then hand their events to the writer and wait.
The writer takes everything queued, writes it in one transaction and commits once, then wakes
each request with its own result. An HTTP 200 therefore always means "committed". SQLite allows
one writer at a time anyway; on PostgreSQL the same design saves a commit per request. If a
shared transaction fails, each request in it is retried alone, so one bad batch cannot fail
another.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError, OperationalError

from trato.core.db import new_session
from trato.ingest import segment, service
from trato.ingest.models import Source

log = structlog.get_logger("trato.ingest")
MAX_GROUP_EVENTS = 5000
LINGER_BELOW_EVENTS = 50
LINGER_SECONDS = 0.001
RETRIES = 3


@dataclass
class _Job:
    source: Source
    events: list[tuple[int, segment.ParsedEvent]]
    received_at: datetime
    loop: asyncio.AbstractEventLoop | None
    future: Any  # asyncio.Future or concurrent.futures.Future


class IngestWriter:
    def __init__(self) -> None:
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

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

    async def submit(
        self, source: Source, events: list[tuple[int, segment.ParsedEvent]], received_at: datetime
    ) -> service.IngestResult:
        self.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[service.IngestResult] = loop.create_future()
        self._queue.put(_Job(source, events, received_at, loop, future))
        return await future

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            group, size = [job], len(job.events)
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
                size += len(more.events)
            self._write(group)

    def _write(self, group: list[_Job]) -> None:
        try:
            results = self._transaction(group)
        except Exception:
            if len(group) == 1:
                self._retry_alone(group[0])
                return
            for job in group:
                self._retry_alone(job)
            return
        for job, result in zip(group, results, strict=True):
            _resolve(job, result)

    def _retry_alone(self, job: _Job) -> None:
        for attempt in range(RETRIES):
            try:
                _resolve(job, self._transaction([job])[0])
                return
            except (IntegrityError, OperationalError) as exc:
                # Another process linked the same identity at the same moment: look again.
                if attempt == RETRIES - 1:
                    log.exception("ingest batch failed", source=job.source.name)
                    _fail(job, exc)
            except Exception as exc:
                log.exception("ingest batch failed", source=job.source.name)
                _fail(job, exc)
                return

    @staticmethod
    def _transaction(group: list[_Job]) -> list[service.IngestResult]:
        """One transaction, and one pass of the write path per source, for the whole group."""
        by_source: dict[str, list[_Job]] = {}
        for job in group:
            by_source.setdefault(job.source.id, []).append(job)
        session = new_session()
        try:
            for jobs in by_source.values():
                service.ingest(
                    session, source=jobs[0].source, events=[e for job in jobs for e in job.events],
                    received_at=jobs[0].received_at,
                )
            session.commit()
            return [service.IngestResult(accepted=len(job.events)) for job in group]
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def _resolve(job: _Job, result: service.IngestResult) -> None:
    if job.loop is not None:
        job.loop.call_soon_threadsafe(_set, job.future, result, None)


def _fail(job: _Job, exc: BaseException) -> None:
    if job.loop is not None:
        job.loop.call_soon_threadsafe(_set, job.future, None, exc)


def _set(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


writer = IngestWriter()
