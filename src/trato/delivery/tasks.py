"""Delivery's queued work. Each task carries only a message id; the row says what is left to do."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from huey import crontab

from trato.core.db import new_session, unit_of_work
from trato.core.queue import huey
from trato.core.settings import get_settings
from trato.delivery import idempotency, service

log = structlog.get_logger("trato.delivery")


@huey.task()
def deliver(message_id: str) -> str:
    """One delivery attempt (see :func:`trato.delivery.service.deliver`)."""
    return service.deliver(message_id)


@huey.task()
def release_deferred(message_id: str) -> str:
    """A deferred message decided again at its time; sent at once when the policy now allows it."""
    return service.release_deferred(message_id)


@huey.periodic_task(crontab(minute="*"))
def sweep_stuck_messages() -> int:
    """Every minute: enqueue again the messages whose task was lost (see ``service.stuck_messages``)."""
    with new_session(readonly=True) as session:
        stuck = service.stuck_messages(session)
    for message_id, task in stuck:
        enqueue(task, message_id)
    return len(stuck)


@huey.periodic_task(crontab(minute="41"))
def remove_expired_idempotency_keys() -> int:
    """Every hour: forget Idempotency-Keys older than ``TRATO_IDEMPOTENCY_KEY_TTL_HOURS`` (24 h)."""
    removed, batch = 0, 5000
    while True:
        with unit_of_work() as session:
            done = idempotency.remove_expired(session, older_than=timedelta(
                hours=get_settings().idempotency_key_ttl_hours), batch=batch)
        removed += done
        if done < batch:
            break
    if removed:
        log.info("expired idempotency keys removed", removed=removed)
    return removed


TASKS = {"deliver": deliver, "release_deferred": release_deferred}


def enqueue(task: str, message_id: str, eta: datetime | None = None) -> None:
    """Put a task on the queue, at ``eta`` when given (called after the unit of work commits)."""
    try:
        if eta is None:
            TASKS[task](message_id)
        else:
            TASKS[task].schedule(args=(message_id,), eta=eta)
    except Exception:
        # The row is committed and says what is left to do; a failed enqueue must not fail the
        # request that committed it.
        log.exception("could not enqueue a delivery task", task=task, message_id=message_id)


@huey.periodic_task(crontab(minute="*"))
def drop_letter_batches() -> int:
    """Every minute: close the print houses' batches that are full or past their cut-off and drop
    the closed ones (a failed drop stays closed and is tried again here)."""
    from trato.delivery.channels import registry
    from trato.delivery.channels.letter import PrintHouse

    adapter = registry.adapter_for("letter")
    if not isinstance(adapter, PrintHouse):
        return 0
    report = adapter.run()
    for batch_id, error in report.failed.items():
        log.warning("a letter batch could not be dropped", batch_id=batch_id, error=error)
    return len(report.dropped)


@huey.periodic_task(crontab(minute="*"))
def poll_bounce_mailbox() -> int:
    """Every minute when ``TRATO_MAIL_POLL_URL`` is set: apply the bounce mailbox's mail (``mailpoll``)."""
    from trato.delivery import mailpoll

    settings = mailpoll.configured()
    if settings is None:
        return 0
    report = mailpoll.poll(settings)
    if report.error:
        log.warning("bounce mailbox poll incomplete", error=report.error, fetched=report.fetched)
    return report.fetched
