"""Group commit into the ingest inbox: many requests per transaction.

Requests parse and validate on the event loop, then hand their accepted calls to the writer and
wait. The writer appends everything waiting to the inbox in one transaction, commits once, then
wakes each request, so an HTTP 200 always means "stored durably"; the folder
(:mod:`trato.ingest.folder`) moves the inbox into the customer memory afterwards.

- SQLite: on the event loop itself, once a turn of it for every request of that turn (a commit
  costs tens of microseconds, less than handing requests to a thread and back).
- PostgreSQL: on the event loop too, through psycopg's asynchronous connection: while one group
  commit waits for the server, the next group gathers.
- Otherwise, and for any group whose commit failed, in a thread, each request retried alone so
  one cannot fail another.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
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
        self._postgres: dict[asyncio.AbstractEventLoop, _AsyncAppender] = {}

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
        dialect = inbox.engine().dialect.name
        if dialect == "sqlite":
            pending = self._inline.setdefault(loop, [])
            pending.append(job)
            if len(pending) == 1:
                loop.call_soon(self._flush_inline, loop)
        elif dialect == "postgresql":
            appender = self._postgres.get(loop)
            if appender is None:
                appender = self._postgres[loop] = _AsyncAppender(self)
            appender.add(job)
        else:
            self.handoff(job)
        await future

    def handoff(self, job: _Job) -> None:
        """To the writer thread."""
        self.start()
        self._queue.put(job)

    async def aclose(self) -> None:
        """Close this event loop's PostgreSQL connection (at shutdown)."""
        appender = self._postgres.pop(asyncio.get_running_loop(), None)
        if appender is not None:
            await appender.close()

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


@dataclass
class _AsyncAppender:
    """PostgreSQL group commit on one event loop, through psycopg's asynchronous connection."""

    writer: IngestWriter
    pending: list[_Job] = field(default_factory=list)
    connection: Any = None
    task: asyncio.Task[None] | None = None

    def add(self, job: _Job) -> None:
        self.pending.append(job)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        import psycopg

        while self.pending:
            group, self.pending = self.pending, []
            try:
                if self.connection is None or self.connection.closed:
                    url = inbox.engine().url.set(drivername="postgresql")
                    self.connection = await psycopg.AsyncConnection.connect(
                        url.render_as_string(hide_password=False), autocommit=True
                    )
                # One statement is one transaction: a single round trip for the whole group.
                rows = ", ".join(["(%s, %s, %s, %s, %s)"] * len(group))
                values = [v for job in group for v in (job.entry.source_id, job.entry.received_at,
                                                       job.entry.call_type, job.entry.body, job.entry.events)]
                await self.connection.execute(
                    f"INSERT INTO ingest_inbox (source_id, received_at, call_type, body, events) VALUES {rows}",
                    values,
                )
            except Exception:
                log.warning("appending to the inbox failed; retrying through the writer thread", exc_info=True)
                await self.close()
                for job in group:
                    self.writer.handoff(job)
                continue
            for job in group:
                _set(job.future, None, None)
            if self.writer.after_commit is not None:
                self.writer.after_commit()

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:  # already broken
                pass
