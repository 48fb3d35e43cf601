"""The job queue (Huey): a SQLite file beside the database in the embedded default, Redis when
``TRATO_REDIS_URL`` is set. The database row is the truth; a task only carries work, so every
task must be safe to run twice.

``trato serve`` runs workers as threads in its own process (unless ``--no-worker``);
``trato worker`` runs them in a process of their own, for scale-out.
"""

from __future__ import annotations

from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer
from sqlalchemy.engine import make_url

from trato.core.settings import Settings, get_settings


def build_huey(settings: Settings) -> Huey:
    if settings.redis_url:
        return RedisHuey(settings.queue_name, url=settings.redis_url)
    database = make_url(settings.database_url).database if settings.is_sqlite else None
    folder = Path(database).resolve().parent if database and database != ":memory:" else Path.cwd()
    return SqliteHuey(settings.queue_name, filename=str(folder / "trato-queue.db"))


huey = build_huey(get_settings())


class EmbeddedConsumer(Consumer):
    """Workers inside the web server: the server, not the queue, owns the process's signals."""

    def _set_signal_handlers(self) -> None:
        return None


def start_embedded_worker(workers: int = 2) -> EmbeddedConsumer:
    import trato.core.tasks  # noqa: F401  (registers the tasks)
    import trato.delivery.tasks  # noqa: F401
    import trato.campaigns.tasks  # noqa: F401

    # An idle SQLite queue is polled at least every 0.25 s (Huey backs off to 10 s by default):
    # a transactional message must reach its provider well within a second.
    consumer = EmbeddedConsumer(huey, workers=workers, worker_type="thread", periodic=True, initial_delay=0.02,
                                backoff=1.5, max_delay=0.25)
    consumer.start()
    # Campaigns that were running when the server stopped go on now (their runs were lost with it).
    trato.campaigns.tasks.resume_running()
    return consumer


def run_worker(workers: int = 4) -> None:
    """A worker process (``trato worker``): runs until SIGINT/SIGTERM."""
    import trato.core.tasks  # noqa: F401
    import trato.delivery.tasks  # noqa: F401
    import trato.campaigns.tasks  # noqa: F401

    huey.create_consumer(workers=workers, worker_type="thread", periodic=True).run()
