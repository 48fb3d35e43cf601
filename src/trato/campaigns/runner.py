"""Runs of a campaign: how its chunks are claimed and run, by one worker or by several at once.

Each chunk is one unit of work: the campaign row is read without a lock (a pause or a cancel is
seen before the next chunk), the chunk's recipients are claimed (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL: runs on other workers take other recipients), processed by
:func:`pipeline.prepare_chunk` and :func:`pipeline.write_chunk` (which adds to the campaign's
counter in the database) and committed; its messages, written already claimed (``sending``), go to the
adapters right after the commit. The campaign row is locked only for
short decisions: a scheduled campaign starting, a throttled campaign's pace (``paced_until``,
shared by all its runs, so the messages per minute hold across workers) and "done" (decided once,
by whichever run finds nothing left to do).

On PostgreSQL a run first takes one of the campaign's runner slots (``TRATO_CAMPAIGN_PARALLELISM``),
a session advisory lock that the server releases when a worker dies; a run queued again by the
sweep or by a worker starting ends at once when every slot is taken. On SQLite (one writer) a
campaign has one run per process; chunks of runs in other processes take turns on the write lock.

While a chunk is written and delivered, the next one may be prepared in a pool process
(:mod:`trato.campaigns.ahead`, the embedded default's second core); it is claimed when written.
"""

from __future__ import annotations

import gc
import hashlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import text

from trato.campaigns import ahead, pipeline
from trato.campaigns.models import Campaign
from trato.core import audit
from trato.core.clock import utcnow
from trato.core.db import get_engine, new_session, on_commit, unit_of_work
from trato.core.settings import get_settings

log = structlog.get_logger("trato.campaigns")
# First key of PostgreSQL's two-key advisory locks: "trato campaign runs" (the ingest folder uses 7_320_301).
LOCK_SPACE = 7_320_302
LEFT_BEHIND_PAGE = 1000
_local_runs: set[str] = set()
_local_lock = threading.Lock()


def run(campaign_id: str, *, max_chunks: int | None = None, stale: timedelta | None = None) -> str:
    """Chunks of the campaign until it is done, paused, cancelled or has to wait; "busy" when the
    campaign already has as many runs as may go at once."""
    settings = get_settings()
    if stale is None:
        stale = timedelta(seconds=settings.campaign_stale_seconds)
    with runner_slot(campaign_id, settings.campaign_runs) as slot:
        if slot is None:
            return "busy"
        with fewer_collections():
            return _run(campaign_id, max_chunks, stale)


_collections_lock = threading.Lock()
_collecting_runs = 0
_thresholds: tuple[int, int, int] | None = None
RUN_THRESHOLDS = (50_000, 20, 10)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """While any run goes on in this process, the cyclic collector waits for 50,000 new objects
    instead of 700: a chunk makes tens of thousands of short-lived dicts and strings that reference
    counting frees, and each young collection walked them for nothing (about a tenth of a run's
    time). The process's own thresholds come back when the last run ends."""
    global _collecting_runs, _thresholds
    with _collections_lock:
        if _collecting_runs == 0:
            _thresholds = gc.get_threshold()
            gc.set_threshold(*RUN_THRESHOLDS)
        _collecting_runs += 1
    try:
        yield
    finally:
        with _collections_lock:
            _collecting_runs -= 1
            if _collecting_runs == 0 and _thresholds is not None:
                gc.set_threshold(*_thresholds)


@contextmanager
def runner_slot(campaign_id: str, slots: int) -> Iterator[int | None]:
    """One of the campaign's ``slots`` runner slots for as long as the block lasts, or None."""
    engine = get_engine()
    if engine.dialect.name != "postgresql":
        with _local_lock:
            taken = campaign_id in _local_runs
            _local_runs.add(campaign_id)
        try:
            yield None if taken else 0
        finally:
            if not taken:
                with _local_lock:
                    _local_runs.discard(campaign_id)
        return
    # A connection of its own, outside any transaction, held while the run goes on.
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    held: int | None = None
    try:
        for slot in range(slots):
            if conn.execute(text("SELECT pg_try_advisory_lock(:space, :key)"),
                            {"space": LOCK_SPACE, "key": _slot_key(campaign_id, slot)}).scalar():
                held = slot
                break
        yield held
    finally:
        try:
            if held is not None:
                conn.execute(text("SELECT pg_advisory_unlock(:space, :key)"),
                             {"space": LOCK_SPACE, "key": _slot_key(campaign_id, held)})
        except Exception:
            conn.invalidate()  # closing the session releases the lock
        conn.close()


def _slot_key(campaign_id: str, slot: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{campaign_id}:{slot}".encode()).digest()[:4], "big", signed=True)


def _run(campaign_id: str, max_chunks: int | None, stale: timedelta) -> str:
    deliver_left_behind(campaign_id, stale)
    done = 0
    # The next chunks, in order, each being prepared in a pool process (see ahead): as many ahead
    # as the pool has processes, so none of them idles while this run writes and delivers.
    coming: deque[Future[Any]] = deque()
    handed = 0  # the highest recipient id handed to the pool
    began, waited = time.perf_counter(), 0.0
    try:
        while True:
            started = utcnow()
            gate = _gate(campaign_id, started)
            if gate != "running":
                return gate
            ready = None
            if coming:
                waiting_since = time.perf_counter()
                ready = coming.popleft().result()
                waited += time.perf_counter() - waiting_since
            with unit_of_work() as session:
                campaign = session.get(Campaign, campaign_id)
                if campaign is None:
                    return "missing"
                if campaign.state != "running":
                    return campaign.state
                prepared: pipeline.Prepared | None = None
                if ready is not None and ready[0]:
                    # Prepared ahead: claimed now; what another run took meanwhile is left out.
                    rows, prepared = ready
                    prepared = prepared.only(pipeline.still_pending(session, campaign.id, [r.id for r in rows]))
                else:
                    rows = [pipeline.Pending(*r) for r in pipeline.next_rows(session, campaign, started)]
                if rows:
                    plan = pipeline.Plan.of(campaign)
                    if not campaign.throttle_per_minute:
                        handed = _hand_ahead(session, plan, coming, after=max(handed, max(r.id for r in rows)),
                                             size=campaign.chunk_size, now=started,
                                             most=None if max_chunks is None else max_chunks - done - 1)
                    if prepared is None:
                        prepared = pipeline.prepare_chunk(session, plan, rows, started)
                    message_ids = pipeline.write_chunk(session, campaign, prepared, started, claim=True)
            if not rows:
                outcome = _finish(campaign_id, stale)
                if outcome == "more":
                    continue
                return outcome
            assert prepared is not None
            pipeline.deliver(message_ids, prepared.decoded_parts(), claimed=prepared.messages)
            done += 1
            if max_chunks is not None and done >= max_chunks:
                return "running"
    finally:
        for future in coming:
            future.cancel()
        # How the run went: with a preparation pool, a long wait means preparing is the slower half.
        log.info("campaign run", campaign_id=campaign_id, chunks=done,
                 seconds=round(time.perf_counter() - began, 2), waited_for_preparation=round(waited, 2))


def _hand_ahead(session: Any, plan: pipeline.Plan, coming: deque[Future[Any]], *, after: int, size: int,
                now: datetime, most: int | None) -> int:
    """Fill the pool with the chunks that come next: the pending recipients after ``after``, a
    chunk to each free process (at most ``most`` chunks in all). Returns the highest recipient id
    handed over. Recipients are read here, in order, so chunks prepared side by side never overlap."""
    depth = ahead.processes()
    while len(coming) < depth and (most is None or len(coming) < most):
        rows = pipeline.pending_after(session, plan.id, after_id=after, limit=size, now=now)
        if not rows:
            break
        future = ahead.submit(plan, rows=rows, now=now)
        if future is None:
            break
        coming.append(future)
        after = rows[-1].id
    return after


def _gate(campaign_id: str, now: datetime) -> str:
    """May a chunk start now? A scheduled campaign that is due starts; a throttled one keeps its pace
    (this run reserves the next chunk's time, or is queued again for when the pace allows)."""
    with unit_of_work() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            return "missing"
        due = campaign.state == "scheduled" and campaign.send_at is not None and campaign.send_at <= now
        if not due and not (campaign.state == "running" and campaign.throttle_per_minute):
            return campaign.state
        session.refresh(campaign, with_for_update=True)
        if campaign.state == "scheduled" and campaign.send_at and campaign.send_at <= now:
            campaign.state, campaign.started_at, campaign.updated_at = "running", now, now
        if campaign.state != "running":
            return campaign.state
        throttle = campaign.throttle_per_minute
        if throttle:
            if campaign.paced_until is not None and campaign.paced_until > now:
                eta = campaign.paced_until
                on_commit(session, lambda: _queue(campaign_id, eta))
                return "throttled"
            size = min(campaign.chunk_size, throttle)
            campaign.paced_until = now + timedelta(seconds=60 * size / throttle)
        return "running"


def _finish(campaign_id: str, stale: timedelta) -> str:
    """No chunk to claim: deliver what stopped workers left, then decide — more to claim after all,
    other runs still at work, waiting for a due time, retries in flight, or done (exactly once)."""
    in_flight = deliver_left_behind(campaign_id, stale)
    with unit_of_work() as session:
        campaign = session.get(Campaign, campaign_id, with_for_update=True, populate_existing=True)
        if campaign is None:
            return "missing"
        if campaign.state != "running":
            return campaign.state
        now = utcnow()
        free, due = pipeline.due_waiting(session, campaign.id, now)
        if free:
            return "more"
        if due:  # other runs hold the rest: the last of them to finish decides; should they have
            # died with their worker, the rows are free again by the time this look comes
            eta = now + stale + timedelta(seconds=1)
            on_commit(session, lambda: _queue(campaign_id, eta))
            return "running"
        waiting = pipeline.next_due(session, campaign.id)
        if waiting is not None:
            from trato.campaigns import tasks

            on_commit(session, lambda: tasks.start(campaign_id, waiting))
            return "waiting"
        if pipeline.left_behind(session, campaign.id, limit=1):
            if in_flight:  # being sent by another run, or by a worker that stopped: look again once stale
                eta = now + stale + timedelta(seconds=1)
                on_commit(session, lambda: _queue(campaign_id, eta))
            return "running"  # retries in flight: the delivery tasks finish them, the sweep sees them
        campaign.state, campaign.finished_at, campaign.updated_at = "done", now, now
        audit.record(session, actor="system", action="campaign.done", object_type="campaign",
                     object_id=campaign.id, processed=campaign.processed)
        return "done"


def deliver_left_behind(campaign_id: str, stale: timedelta) -> int:
    """Hand over messages of recipients still ``queued`` (a stopped worker's chunk, retries that are
    due); those ``sending`` for ``stale`` become possibly sent. Returns how many are still being sent."""
    after, sending = 0, 0
    while True:
        with new_session(readonly=True) as session:
            found = pipeline.queued_page(session, campaign_id, after=after, limit=LEFT_BEHIND_PAGE)
        if found:
            states = pipeline.deliver([mid for _, mid in found], stale=stale)
            sending += sum(1 for state in states.values() if state == "sending")
        if len(found) < LEFT_BEHIND_PAGE:
            return sending
        after = found[-1][0]


def _queue(campaign_id: str, eta: datetime) -> None:
    from trato.campaigns import tasks

    tasks.enqueue(campaign_id, eta)
