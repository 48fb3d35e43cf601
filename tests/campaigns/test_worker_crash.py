"""A worker killed mid-campaign (SIGKILL, no chance to clean up): real ``trato worker`` processes on
the test database, a campaign e-mailed through a real SMTP server on loopback. After the kill the
campaign is finished by a worker started again (or, on PostgreSQL, by the other worker that was
running it too): every recipient has exactly one message, the SMTP server got no message twice,
what it did not get is ``possibly_sent`` (at most the chunk being sent at the kill), the holdout
got nothing and the archive's chain verifies."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tests.campaigns.conftest import CONTENT, MADRID, create, launch, make_people
from tests.conftest import BACKEND
from tests.delivery.conftest import approve_communication
from tests import worker_processes
from tests.delivery.smtp_peer import serving

REDIS_URL = os.environ.get("TRATO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PEOPLE, CHUNK, STALE_SECONDS = 200, 20, 1


@dataclass
class Peer:
    """An SMTP server that takes a moment per message and notes each Message-ID it accepted."""

    delay: float = 0.01
    received: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        found = str(message_from_bytes(envelope.content)["Message-ID"] or "")
        with self.lock:
            self.received.append(found.strip("<>").partition("@")[0])
            self.recipients.extend(envelope.rcpt_tos)
        return "250 2.0.0 queued"


@pytest.fixture
def peer() -> Iterator[tuple[Peer, int]]:
    handler = Peer()
    with serving(handler) as port:
        yield handler, port


@pytest.fixture
def shared_queue(database_url: str) -> Iterator[dict[str, str]]:
    """This process and the workers share a queue: Redis on PostgreSQL, the SQLite queue file beside
    the database on SQLite (as `trato worker` finds it). Returns the workers' environment."""
    from huey.storage import RedisStorage, SqliteStorage

    from trato.core.queue import huey

    name = f"trato-test-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "TRATO_DATABASE_URL": database_url, "TRATO_QUEUE_NAME": name, "TRATO_LOG_LEVEL": "WARNING",
           "TRATO_CAMPAIGN_STALE_SECONDS": str(STALE_SECONDS)}
    env.pop("TRATO_REDIS_URL", None)
    env.pop("TRATO_EMAIL_URL", None)
    previous, immediate = huey.storage, huey.immediate
    huey.immediate = False
    if BACKEND == "postgresql":
        env["TRATO_REDIS_URL"] = REDIS_URL
        huey.storage = RedisStorage(name=name, url=REDIS_URL)
    else:
        folder = Path(str(make_url(database_url).database)).resolve().parent
        huey.storage = SqliteStorage(name=name, filename=str(folder / "trato-queue.db"))
    yield env
    huey.storage.flush_all()
    huey.storage, huey.immediate = previous, immediate
    if BACKEND == "postgresql":
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"*{name}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture
def workers(shared_queue: dict[str, str], tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Starts `trato worker` processes (one thread each: a run holds its worker); stopped after."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        started.append(worker_processes.start(shared_queue, tmp_path, threads=1, number=len(started)))
        return started[-1]

    yield start
    worker_processes.stop(started)


def consuming(process: subprocess.Popen[bytes]) -> bool:
    """The worker's queue consumer is up: its worker and scheduler threads beside the main one."""
    status = Path(f"/proc/{process.pid}/status").read_text()
    return int(status.split("Threads:")[1].split()[0]) >= 3


def logs(processes: list[Any]) -> str:
    return "\n".join(Path(p.log.name).read_text(errors="replace")[-3000:] for p in processes)


def mail_campaign(port: int) -> tuple[str, list[str]]:
    """PEOPLE customers with consent, an approved e-mail, a segment, the SMTP peer as the provider."""
    from trato.audiences import service as audiences
    from trato.core.db import unit_of_work
    from trato.delivery import providers

    people = make_people(PEOPLE)  # the n-th has c{n}@example.com
    with unit_of_work() as s:
        communication = approve_communication(s, key="spring-sale", purpose="marketing", content=CONTENT,
                                              channels=["email"], sample_data={"discount": 20})
        segment = audiences.create_segment(s, name="Madrid", definition=MADRID, actor="test")
        providers.add_provider(s, actor="test", name="mail-peer", url=f"smtp://127.0.0.1:{port}?tls=none",
                               channels=["email"])
    world = {"segment_id": segment.id, "communication": communication.key}
    return create(world, chunk_size=CHUNK, holdout_percent=10), people


def progress(campaign_id: str) -> tuple[str, int]:
    from trato.campaigns.models import Campaign, CampaignRecipient
    from trato.core.db import new_session

    with new_session(readonly=True) as s:
        state = s.scalar(select(Campaign.state).where(Campaign.id == campaign_id))
        handled = s.scalar(select(func.count()).select_from(CampaignRecipient).where(
            CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.state != "pending"))
    return str(state), int(handled or 0)


def wait_for(check: Callable[[], bool], processes: list[Any], what: str, timeout: float = 60.0,
             alive: list[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        for process in alive if alive is not None else processes:
            if process.poll() is not None:
                raise AssertionError(f"a worker exited while waiting for {what}:\n{logs(processes)}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}\n{logs(processes)}")


def check_outcome(campaign_id: str, people: list[str], peer: Peer, killed: int) -> dict[str, int]:
    """Exactly once, the SMTP server's view, possibly sent bounded, holdout untouched, chain intact."""
    from trato.archive import service as archive
    from trato.campaigns.models import CampaignRecipient
    from trato.core.audit import AuditEntry
    from trato.core.db import new_session
    from trato.delivery.models import Message

    with new_session(readonly=True) as s:
        found = {r.customer_id: r for r in s.scalars(select(CampaignRecipient).where(
            CampaignRecipient.campaign_id == campaign_id))}
        messages = list(s.scalars(select(Message).where(Message.created_by == f"campaign:{campaign_id}")))
        report = archive.verify(s)
        done = s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.object_id == campaign_id, AuditEntry.action == "campaign.done"))
    assert len(found) == PEOPLE
    holdout = {cid for cid, r in found.items() if r.state == "holdout"}
    assert holdout, "10% held out of 200: never empty in practice"
    assert Counter(r.state for cid, r in found.items() if cid not in holdout).keys() <= {"sent", "possibly_sent"}
    per_customer = Counter(m.customer_id for m in messages)
    assert set(per_customer) == set(found) - holdout and set(per_customer.values()) == {1}
    received = Counter(peer.received)
    assert received and max(received.values()) == 1, received.most_common(3)  # nothing sent twice
    by_id = {m.id: m for m in messages}
    assert set(received) <= set(by_id)
    missing = set(by_id) - set(received)
    assert {by_id[mid].state for mid in missing} <= {"possibly_sent"}  # what never arrived is flagged
    possibly = [m for m in messages if m.state == "possibly_sent"]
    assert len(possibly) <= killed * CHUNK  # at most the chunk each killed worker was sending
    assert {m.state for m in messages} <= {"accepted", "possibly_sent"}
    assert {found[m.customer_id].state for m in possibly} <= {"possibly_sent"}
    assert not {f"c{people.index(cid)}@example.com" for cid in holdout} & set(peer.recipients)
    assert len(peer.recipients) == len(peer.received)
    assert report.ok, report.problem
    assert done == 1
    return {"received": len(received), "possibly_sent": len(possibly), "holdout": len(holdout)}


def test_a_killed_worker_leaves_every_recipient_exactly_once_after_a_restart(
        policy_ready: None, workers: Any, peer: tuple[Peer, int]) -> None:
    first = workers()  # starts while the campaign is set up
    handler, port = peer
    campaign_id, people = mail_campaign(port)
    launch(campaign_id)
    processes = [first]
    wait_for(lambda: progress(campaign_id)[1] >= 3 * CHUNK, processes, "three chunks")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    state, handled = progress(campaign_id)
    assert state == "running" and handled < PEOPLE, (state, handled)
    second = workers()  # a worker starting queues the campaign's runs again
    processes.append(second)
    wait_for(lambda: progress(campaign_id)[0] == "done", processes, "done", alive=[second])
    figures = check_outcome(campaign_id, people, handler, killed=1)
    assert figures["received"] + figures["possibly_sent"] >= PEOPLE - figures["holdout"]


@pytest.mark.skipif(BACKEND != "postgresql", reason="several workers on one campaign need PostgreSQL")
def test_two_workers_on_one_campaign_and_one_killed_the_other_finishes(
        policy_ready: None, workers: Any, peer: tuple[Peer, int]) -> None:
    from sqlalchemy import text

    from trato.campaigns.runner import LOCK_SPACE
    from trato.core.db import new_session

    processes = [workers(), workers()]
    handler, port = peer
    campaign_id, people = mail_campaign(port)
    for process in processes:  # both take a run: neither may be still starting when the other is done
        wait_for(lambda process=process: consuming(process), processes, "the workers to start")
    launch(campaign_id)  # two runs: one in each worker (one thread each)

    def both_at_work() -> bool:
        with new_session(readonly=True) as s:  # the runner slots held right now
            slots = s.scalar(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                                  " AND classid = :space AND objsubid = 2"), {"space": LOCK_SPACE})
        return slots == 2 and progress(campaign_id)[1] >= 2 * CHUNK

    wait_for(both_at_work, processes, "two runs at work")
    processes[0].send_signal(signal.SIGKILL)
    processes[0].wait(10)
    assert progress(campaign_id)[0] == "running"
    wait_for(lambda: progress(campaign_id)[0] == "done", processes, "done", alive=[processes[1]])
    figures = check_outcome(campaign_id, people, handler, killed=1)
    assert figures["received"] + figures["possibly_sent"] >= PEOPLE - figures["holdout"]
