"""Campaigns' queued work: a task carries only the campaign id; its rows say what is left."""

from __future__ import annotations

from datetime import datetime

import structlog
from huey import crontab

from trato.campaigns import results, service
from trato.core.db import new_session, unit_of_work
from trato.core.queue import huey

log = structlog.get_logger("trato.campaigns")


@huey.task()
def run_campaign(campaign_id: str) -> str:
    """Chunks of a campaign until it is done, paused, cancelled or must wait (see ``service.run``)."""
    return service.run(campaign_id)


@huey.periodic_task(crontab(minute="*/5"))
def sweep_campaigns() -> int:
    """Every five minutes: running campaigns go on (a lost task, a stopped worker) and the
    conversions of recent ones are attributed."""
    with new_session(readonly=True) as session:
        running = service.running_ids(session)
        recent = results.recent_ids(session)
    for campaign_id in running:
        enqueue(campaign_id)
    for campaign_id in recent:
        with unit_of_work() as session:
            results.attribute_conversions(session, campaign_id=campaign_id)
    return len(running)


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
