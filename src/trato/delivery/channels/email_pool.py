"""SMTP connections kept open by one e-mail adapter and reused across messages and worker threads.

aiosmtplib is asynchronous and worker threads are not: the pool owns one event loop on a thread of
its own, and every worker hands its message over with ``run_coroutine_threadsafe``. At most
``size`` connections exist at once (the provider's ``limits.max_connections``); a message waits for
a free one. A connection that has sat idle longer than ``idle_timeout`` is closed (servers drop
idle clients after a minute or so anyway), and one that carried ``messages_per_connection``
messages is closed and replaced, as MTAs do.

Before a connection is reused it gets RSET: that both clears any envelope left by a refused
message and proves the server is still there. A connection the server dropped while it was idle
fails there, before anything of the next message was handed over, so a new one is opened and the
message goes on — that is not an ambiguous send.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiosmtplib
import structlog

log = structlog.get_logger("trato.delivery.smtp")
T = TypeVar("T")
# What a broken or vanished connection raises (SMTPServerDisconnected is a ConnectionError).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (aiosmtplib.SMTPException, OSError, TimeoutError)


@dataclass(eq=False)
class Connection:
    """One open SMTP session; ``messages`` it has carried, ``idle_since`` on the pool's clock."""

    client: aiosmtplib.SMTP
    idle_since: float = 0.0
    messages: int = 0
    reused: bool = False  # taken from the idle list (it may have been dropped by the server meanwhile)


class SlotTimeout(Exception):
    """Every connection stayed busy for longer than the wait allowed."""


class PoolClosed(RuntimeError):
    """The pool was closed (e.g. its settings were replaced) before the work was handed to it."""


@dataclass
class PoolStats:
    opened: int = 0
    reused: int = 0
    dropped: int = 0  # found dead when about to be reused
    closed: int = 0


@dataclass(eq=False)
class SmtpPool:
    """A bounded pool of SMTP connections on the pool's own event loop (see the module's docstring).

    ``connect`` opens and authenticates a new client (it runs on the pool's loop)."""

    connect: Callable[[], Awaitable[aiosmtplib.SMTP]]
    size: int
    idle_timeout: float
    messages_per_connection: int
    slot_wait: float
    name: str = "smtp"
    clock: Callable[[], float] = time.monotonic
    stats: PoolStats = field(default_factory=PoolStats)
    _idle: list[Connection] = field(default_factory=list)
    _slots: asyncio.Semaphore | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _reaper: asyncio.TimerHandle | None = None
    _closed: bool = False

    # -- the loop's thread ----------------------------------------------------------------------

    def run(self, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``work()`` on the pool's loop and wait for its result (from any thread but the loop's).

        Raises :class:`PoolClosed` when the pool was closed before, and ``CancelledError`` when it
        was closed so abruptly that the work had to be cancelled half-way."""
        with self._lock:  # submitted under the lock: close() cannot slip in between
            loop = self._running_loop()
            future = asyncio.run_coroutine_threadsafe(work(), loop)
        return future.result()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The pool's loop, started on first use (called with ``_lock`` held)."""
        if self._closed:
            raise PoolClosed("this SMTP connection pool is closed")
        if self._loop is None:
            loop = asyncio.new_event_loop()
            started = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(started.set)
                loop.run_forever()
                loop.close()

            self._thread = threading.Thread(target=serve, name=f"{self.name}-connections", daemon=True)
            self._thread.start()
            started.wait()
            self._loop = loop
            self._slots = asyncio.Semaphore(self.size)
            # A process that ends says QUIT to its servers rather than dropping the connections.
            atexit.register(_close_at_exit, weakref.ref(self))
        return self._loop

    def close(self) -> None:
        """Let the messages being handed over finish (within ``slot_wait``), QUIT every connection
        and stop the loop; what is still running after that is cancelled."""
        with self._lock:
            loop, thread, self._closed = self._loop, self._thread, True
            self._loop = self._thread = None  # a second close() has nothing left to do
        if loop is None or thread is None:
            return
        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._drain(), loop).result(timeout=self.slot_wait + 15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    async def _drain(self) -> None:
        assert self._slots is not None
        try:
            for _ in range(self.size):  # every slot back: nothing is being handed over any more
                await asyncio.wait_for(self._slots.acquire(), timeout=self.slot_wait)
        except TimeoutError:
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
        await self._quit_idle(everyone=True)
        if self._reaper is not None:
            self._reaper.cancel()

    # -- on the loop ----------------------------------------------------------------------------

    @asynccontextmanager
    async def slot(self) -> Any:
        """One of the ``size`` places a message may use a connection in; waits ``slot_wait`` at most."""
        assert self._slots is not None
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.slot_wait)
        except TimeoutError:
            raise SlotTimeout(f"all {self.size} SMTP connections stayed busy for {self.slot_wait:g} s") from None
        try:
            yield
        finally:
            self._slots.release()

    async def checkout(self) -> Connection:
        """An idle connection that answered RSET, else a new one (raises what connecting raises)."""
        await self._quit_idle()
        while self._idle:
            connection = self._idle.pop()  # the most recently used: the likeliest to be alive
            if not connection.client.is_connected:
                self.stats.dropped += 1
                continue
            try:
                await connection.client.rset()
            except CONNECTION_ERRORS as exc:
                # Gone while idle (the server's own idle timeout, a restart): nothing of the next
                # message was handed over, so a new connection can carry it.
                self.stats.dropped += 1
                log.info("idle SMTP connection was dropped; opening a new one", provider=self.name,
                         error=type(exc).__name__)
                connection.client.close()
                continue
            connection.reused = True
            self.stats.reused += 1
            return connection
        client = await self.connect()
        self.stats.opened += 1
        return Connection(client)

    async def checkin(self, connection: Connection) -> None:
        """Back to the idle list (closing, too: the drain QUITs them all), unless broken or used up."""
        if not connection.client.is_connected or connection.messages >= self.messages_per_connection:
            await self._quit(connection)
            return
        connection.idle_since = self.clock()
        self._idle.append(connection)
        self._schedule_reaper()

    def discard(self, connection: Connection) -> None:
        """Close a connection that can no longer be trusted (lost, timed out, 421)."""
        connection.client.close()
        self.stats.closed += 1

    async def _quit(self, connection: Connection) -> None:
        self.stats.closed += 1
        try:
            if connection.client.is_connected:
                await connection.client.quit(timeout=2)
        except CONNECTION_ERRORS:
            connection.client.close()

    async def _quit_idle(self, *, everyone: bool = False) -> None:
        now = self.clock()
        expired = [c for c in self._idle if everyone or now - c.idle_since >= self.idle_timeout]
        if not expired:
            return
        self._idle = [c for c in self._idle if c not in expired]
        await asyncio.gather(*(self._quit(c) for c in expired))

    def _schedule_reaper(self) -> None:
        if self._reaper is not None or self._loop is None:
            return

        def reap() -> None:
            self._reaper = None
            task = asyncio.ensure_future(self._quit_idle())
            task.add_done_callback(lambda _: self._schedule_reaper() if self._idle else None)

        self._reaper = self._loop.call_later(max(self.idle_timeout / 2, 0.05), reap)

    def idle_count(self) -> int:
        """How many connections wait open (for tests and the bench)."""
        return len(self._idle)

    @property
    def closed(self) -> bool:
        return self._closed


def _close_at_exit(pool: weakref.ref[SmtpPool]) -> None:
    alive = pool()
    if alive is not None:
        alive.close()
