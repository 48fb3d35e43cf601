"""Scale-out on Redis: messages sent through the API are queued in Redis (RedisHuey) and delivered
by real ``trato worker`` processes; two of them share one provider's rate limit (a token bucket
in Redis) and its circuit; the Lua scripts hold the breaker's and the bucket's rules."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests import worker_processes
from tests.delivery.smtp_peer import serving

REDIS_URL = os.environ.get("TRATO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Sink:
    """An SMTP server that notes when each message arrived (the workers run in other processes)."""

    arrivals: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.arrivals.append((time.monotonic(), envelope.rcpt_tos[0]))
        return "250 2.0.0 queued"


@pytest.fixture
def queue_name() -> Iterator[str]:
    import redis

    name = f"trato-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{name}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def redis_queue(queue_name: str) -> Iterator[Any]:
    """This process enqueues into Redis under ``queue_name``, as ``trato serve --no-worker`` would."""
    from huey.storage import RedisStorage

    from trato.core.queue import huey

    previous, immediate = huey.storage, huey.immediate
    huey.immediate = False
    huey.storage = RedisStorage(name=queue_name, url=REDIS_URL)
    yield huey
    huey.storage, huey.immediate = previous, immediate


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    with serving(handler) as port:
        yield handler, port


@pytest.fixture
def two_workers(database_url: str, queue_name: str, tmp_path: Any) -> Iterator[list[Any]]:
    """Two `trato worker` processes on Redis, started first: they import while the test sets up."""
    started: list[subprocess.Popen[bytes]] = []

    def start(count: int) -> list[subprocess.Popen[bytes]]:
        env = {**os.environ, "TRATO_DATABASE_URL": database_url, "TRATO_REDIS_URL": REDIS_URL,
               "TRATO_QUEUE_NAME": queue_name, "TRATO_LOG_LEVEL": "WARNING"}
        for _ in range(count):
            started.append(worker_processes.start(env, tmp_path, threads=4, number=len(started)))
        return started

    yield start(2)
    worker_processes.stop(started)  # the work is done: no need to wait for idle threads


def _wait_accepted(message_ids: list[str], processes: list[Any], timeout: float = 90.0) -> dict[str, str]:
    from sqlalchemy import select

    from trato.core.db import new_session
    from trato.delivery.models import Message

    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        with new_session(readonly=True) as session:
            states = dict(session.execute(select(Message.id, Message.state).where(Message.id.in_(message_ids))).all())
        if all(states.get(m) == "accepted" for m in message_ids):
            return states
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"a worker exited: {_logs(processes)}")
        time.sleep(0.1)
    raise AssertionError(f"not all accepted in time: {sorted(set(states.values()))}\n{_logs(processes)}")


def _logs(processes: list[Any]) -> str:
    from pathlib import Path

    return "\n".join(Path(p.log.name).read_text(errors="replace")[-3000:] for p in processes)


def test_two_workers_on_redis_deliver_and_share_one_rate_limit(
        two_workers: list[Any], api: Any, send_body: Any, world: dict[str, str], redis_queue: Any,
        sink: tuple[Sink, int]) -> None:
    from trato.core.db import unit_of_work
    from trato.delivery import providers, service

    handler, port = sink
    with unit_of_work() as session:
        providers.add_provider(session, actor="test", name="mail-sink", url=f"smtp://127.0.0.1:{port}?tls=none",
                               channels=["email"], max_per_second=10)
    processes = two_workers

    # The API queues in Redis; a worker process delivers to the SMTP server.
    first = api.post("/api/v1/messages", json=send_body(channels=["email"]))
    assert first.status_code == 202, first.text
    assert first.json()["state"] == "queued"
    _wait_accepted([first.json()["id"]], processes)
    assert len(handler.arrivals) == 1

    # Thirty at once (one transaction, enqueued together): the bucket lets ten through at once and
    # then ten a second, whichever worker takes them.
    with unit_of_work() as session:
        ids = [service.send(session, actor="test", customer_id=world["customer_id"], communication=world["key"],
                            data={"invoice": f"F-{n}", "amount": 1.0}, channels=["email"]).id for n in range(30)]
    states = _wait_accepted(ids, processes)
    assert set(states.values()) == {"accepted"}
    times = sorted(at for at, _ in handler.arrivals[1:])
    assert len(times) == 30  # each exactly once
    # 30 messages at 10/s with a burst of 10 take at least 2 s; any 21 in a row at least 1.1 s.
    assert times[-1] - times[0] >= 1.8, times
    assert min(times[i + 20] - times[i] for i in range(len(times) - 20)) >= 0.9


def test_redis_circuit_follows_the_rules_on_redis_time(queue_name: str) -> None:
    from trato.delivery.resilience import RedisHealth

    health = RedisHealth(REDIS_URL, prefix=f"{queue_name}:providers", failures=2, cooldown=30.0)
    assert health.allow("twilio", now=100.0) == (True, 0.0)
    health.refused("twilio", now=100.0)
    assert health.state("twilio", now=100.0).state == "closed"
    health.refused("twilio", now=101.0)
    assert health.state("twilio", now=101.0).as_dict() == {"state": "open", "failures": 2, "retry_in": 30.0}
    assert health.allow("twilio", now=120.0) == (False, 11.0)
    assert health.allow("twilio", now=131.5) == (True, 0.0)  # the probe
    assert health.allow("twilio", now=132.0)[0] is False  # only one
    health.refused("twilio", now=133.0)  # the probe failed: open again
    assert health.state("twilio", now=133.0).state == "open"
    assert health.allow("twilio", now=163.5) == (True, 0.0)
    health.succeeded("twilio")
    assert health.state("twilio").as_dict() == {"state": "closed", "failures": 0, "retry_in": 0.0}
    # An ambiguous answer to a probe opens the circuit again; in a closed circuit it changes nothing.
    health.unsure("twilio", now=200.0)
    assert health.state("twilio", now=200.0).state == "closed"
    health.refused("other", now=10.0)
    health.refused("other", now=10.0)
    assert health.allow("other", now=41.0) == (True, 0.0)
    health.unsure("other", now=41.0)
    assert health.state("other", now=41.0).retry_in == 30.0


def test_redis_bucket_gives_a_seconds_burst_then_the_rate(queue_name: str) -> None:
    from trato.delivery.resilience import RedisHealth

    health = RedisHealth(REDIS_URL, prefix=f"{queue_name}:providers", failures=5, cooldown=30.0)
    assert [health.take("meta", 5, now=50.0) for _ in range(5)] == [0.0] * 5
    assert health.take("meta", 5, now=50.0) == pytest.approx(0.2)
    assert health.take("meta", 5, now=50.1) == pytest.approx(0.1)
    assert health.take("meta", 5, now=50.2) == 0.0
    assert health.take("slow", 0.5, now=0.0) == 0.0  # a slow provider still sends one at a time
    assert health.take("slow", 0.5, now=1.0) == pytest.approx(1.0)
    health.reset()
    assert health.take("meta", 5, now=60.0) == 0.0
