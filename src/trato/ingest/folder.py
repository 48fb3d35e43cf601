"""The folder: drains the ingest inbox into the customer memory (see :mod:`trato.ingest.inbox`).

``trato serve`` runs it as a process of its own at a lower CPU priority (``trato fold``): folding
costs several times more CPU than accepting, and in the server's process it would take the
interpreter lock from the tracking API, whose answers must stay fast while a burst is being
folded. The app runs it as a thread instead when nothing else folds (tests, an app served by
another ASGI server), woken by each commit of its tracking API. Either way it otherwise looks
every ``IDLE_SECONDS`` for calls other processes accepted.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import structlog

from trato.ingest import inbox

log = structlog.get_logger("trato.ingest.folder")
IDLE_SECONDS = 0.05
ERROR_PAUSE_SECONDS = 1.0


class Folder:
    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self.folded = 0  # events this process folded, for the status
        self.started_at = time.monotonic()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop,), name="trato-ingest-folder",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop after the fold in progress (which commits or rolls back whole)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
            self._wake.set()
        if thread is not None:
            thread.join(timeout=60)

    def wake(self) -> None:
        self._wake.set()

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                folded = inbox.fold_once()
            except Exception:
                log.exception("folding the ingest inbox failed; trying again shortly")
                stop.wait(ERROR_PAUSE_SECONDS)
                continue
            self.folded += folded
            if not folded:
                self._wake.wait(IDLE_SECONDS)
                self._wake.clear()


folder = Folder()


def run_forever(*, parent: int | None = None) -> None:
    """Fold until SIGINT or SIGTERM (or, with ``parent``, until that process is gone)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    folded, since = 0, time.monotonic()
    while not stop.is_set() and (parent is None or os.getppid() == parent):
        try:
            done = inbox.fold_once()
        except Exception:
            log.exception("folding the ingest inbox failed; trying again shortly")
            stop.wait(ERROR_PAUSE_SECONDS)
            continue
        folded += done
        if not done:
            stop.wait(IDLE_SECONDS)
    log.info("folder stopped", events=folded, seconds=round(time.monotonic() - since, 1))
