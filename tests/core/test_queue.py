"""The job queue: the in-process worker of `trato serve` runs queued tasks."""

from __future__ import annotations


def test_embedded_worker_runs_a_task(database_url, tmp_path, monkeypatch):
    from huey import SqliteHuey

    from trato.core import queue, tasks

    local = SqliteHuey("trato-test", filename=str(tmp_path / "queue.db"))
    monkeypatch.setattr(queue, "huey", local)
    ping = local.task()(tasks.ping.func)
    consumer = queue.EmbeddedConsumer(local, workers=1, worker_type="thread", periodic=False)
    consumer.start()
    try:
        result = ping()
        assert result.get(blocking=True, timeout=20) == "pong"
    finally:
        consumer.stop(graceful=True)


def test_queue_follows_the_settings(tmp_path):
    from huey import RedisHuey, SqliteHuey

    from trato.core.queue import build_huey
    from trato.core.settings import load_settings

    embedded = build_huey(load_settings(database_url=f"sqlite:///{tmp_path}/x.db"))
    assert isinstance(embedded, SqliteHuey)
    assert embedded.storage.filename == str(tmp_path / "trato-queue.db")
    scaled = build_huey(load_settings(database_url=f"sqlite:///{tmp_path}/x.db", redis_url="redis://127.0.0.1:6379/3"))
    assert isinstance(scaled, RedisHuey)


def test_every_periodic_job_of_delivery_is_scheduled() -> None:
    """The minute sweep, key cleanup, letter drops and the bounce mailbox poll run on their own."""
    import trato.delivery.tasks  # noqa: F401  (registers the tasks)
    from trato.core.queue import huey

    names = {task.name for task in huey._registry.periodic_tasks}
    assert {"sweep_stuck_messages", "remove_expired_idempotency_keys", "drop_letter_batches",
            "poll_bounce_mailbox"} <= names
