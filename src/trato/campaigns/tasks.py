"""Campaigns' queued work: a task carries only the campaign id; its rows say what is left."""

from __future__ import annotations

from datetime import datetime

import structlog
from huey import crontab

from trato.campaigns import results, service
from trato.core.db import new_session, unit_of_work
from trato.core.queue import huey
from trato.core.settings import get_settings

log = structlog.get_logger("trato.campaigns")


@huey.task()
def run_campaign(campaign_id: str) -> str:
    """Chunks of a campaign until it is done, paused, cancelled or must wait (see ``service.run``)."""
    return service.run(campaign_id)


@huey.periodic_task(crontab(minute="*/5"))
def sweep_campaigns() -> int:
    """Every five minutes: running campaigns go on (a lost task, a stopped worker) and the
    conversions of recent ones are attributed."""
    running = queue_running()
    with new_session(readonly=True) as session:
        recent = results.recent_ids(session)
    for campaign_id in recent:
        with unit_of_work() as session:
            results.attribute_conversions(session, campaign_id=campaign_id)
    return running


def queue_running() -> int:
    """Queue runs of every running campaign (and every scheduled one that is due), as many as may go
    at once: the runs of a worker that stopped were lost with it (the queue does not give them
    back). Runs beyond a campaign's free runner slots end at once. Returns how many campaigns."""
    with new_session(readonly=True) as session:
        running = service.running_ids(session)
    for campaign_id in running:
        start(campaign_id)
    return len(running)


def resume_running() -> int:
    """At a worker's start (``trato serve``'s embedded worker; ``trato worker`` does the same, telling
    the console): running campaigns go on now, not at the next sweep. A database that cannot be
    reached yet is logged; the sweep queues them within five minutes."""
    try:
        return queue_running()
    except Exception as exc:
        log.warning("running campaigns not queued at start", error=f"{type(exc).__name__}: {exc}")
        return 0


def start(campaign_id: str, eta: datetime | None = None) -> None:
    """Queue as many runs of the campaign as may go at once (``TRATO_CAMPAIGN_PARALLELISM``)."""
    for _ in range(get_settings().campaign_runs):
        enqueue(campaign_id, eta)


def enqueue(campaign_id: str, eta: datetime | None = None) -> None:
    """Queue a run of the campaign (at ``eta`` when given); called after the unit of work commits."""
    try:
        if eta is None:
            run_campaign(campaign_id)
        else:
            run_campaign.schedule(args=(campaign_id,), eta=eta)
    except Exception:
        # The campaign row is committed and says what is left; the sweep queues it again.
        log.exception("could not enqueue a campaign run", campaign_id=campaign_id)
