"""Transactional send latency on the embedded default: from the ``POST /api/v1/messages`` call to
the sandbox provider's accept, through the SQLite-backed Huey queue and the in-process worker
threads of ``trato serve`` — beside a bare call of the same sandbox adapter in the same run.

    .venv/bin/python bench/send.py [--messages 300] [--customers 50] [--workers 2] [--warmup 20]

A fresh SQLite database (and queue file) in a temporary directory; the policy's defaults, N
customers with an e-mail address, one approved transactional e-mail ("invoice-ready", rendered
from its template for each customer). The API is called in-process (FastAPI's test client: the
ASGI app without a socket), one message at a time, round-robin over the customers; each message's
latency ends when the sandbox adapter accepts it on a worker thread. Target: p99 < 1 s.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="trato-bench-send-")
    # Before trato is imported: the queue file goes beside the database.
    os.environ["TRATO_DATABASE_URL"] = f"sqlite:///{folder}/trato.db"
    os.environ["TRATO_SECRET_KEY"] = "bench-secret-" + "x" * 40
    os.environ.pop("TRATO_REDIS_URL", None)
    sys.path.insert(0, str(ROOT))

    import warnings

    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

    from tests.content.factory import make_communication
    from trato.app import create_app
    from trato.console import service as console
    from trato.content import service as content
    from trato.core import migrate, queue
    from trato.core.channels import CHANNELS
    from trato.core.db import unit_of_work
    from trato.customers import service as customers
    from trato.delivery.channels import registry
    from trato.delivery.channels.base import OutgoingMessage, ProviderResult
    from trato.delivery.channels.sandbox import Sandbox
    from trato.policy import service as policy

    accepted: dict[str, float] = {}
    arrived = threading.Condition()

    class TimedSandbox(Sandbox):
        """The sandbox, noting when each message is accepted."""

        def send(self, message: OutgoingMessage) -> ProviderResult:
            result = super().send(message)
            with arrived:
                accepted[message.message_id] = time.perf_counter()
                arrived.notify_all()
            return result

    for name in ("huey", "httpx", "trato"):
        logging.getLogger(name).setLevel(logging.WARNING)
    migrate.upgrade()
    with unit_of_work() as s:
        policy.install_defaults(s)
        people = [customers.create_customer(s, traits={"first_name": f"Cliente {i}", "locale": "es-ES"},
                                            identities=[("email", f"cliente{i}@example.com")], actor="bench").id
                  for i in range(args.customers)]
        communication = make_communication(s, actor="token:author")
        version = content.get_version(s, communication.latest_version_id)
        content.submit(s, version_id=version.id, actor="token:author")
        warnings = sorted({f["code"] for f in version.findings or [] if f.get("severity") == "warning"})
        content.approve(s, version_id=version.id, actor="token:reviewer", acknowledge=warnings)
        _, token = console.create_token(s, name="bench", role="editor", actor="bench")

    sandbox = TimedSandbox()
    for channel in CHANNELS:
        registry.use(channel, sandbox)
    consumer = queue.start_embedded_worker(workers=args.workers)

    def one(client: TestClient, i: int) -> tuple[float, float]:
        body = {"customer": {"id": people[i % len(people)]}, "communication": "invoice-ready",
                "data": {"invoice": f"F-{i}", "amount": 10 + i % 90}, "channels": ["email"]}
        start = time.perf_counter()
        response = client.post("/api/v1/messages", json=body, headers={"Authorization": f"Bearer {token}"})
        answered = time.perf_counter()
        if response.status_code != 202 or response.json()["state"] != "queued":
            raise SystemExit(f"send {i} failed: {response.status_code} {response.text}")
        message_id = response.json()["id"]
        with arrived:
            if not arrived.wait_for(lambda: message_id in accepted, timeout=30):
                raise SystemExit(f"message {message_id} was not delivered within 30 s")
        return accepted[message_id] - start, answered - start

    try:
        with TestClient(create_app()) as client:
            for i in range(args.warmup):
                one(client, i)
            results = [one(client, args.warmup + i) for i in range(args.messages)]
    finally:
        consumer.stop(graceful=True)
        shutil.rmtree(folder, ignore_errors=True)

    # The baseline: the same adapter called directly, on the same machine, in the same run.
    bare = Sandbox()
    parts: dict[str, Any] = {"subject": "Tu factura F-1", "html": "<p>Hola</p>", "text": "Hola"}
    bare_times = []
    for i in range(max(args.messages, 1000)):
        message = OutgoingMessage(message_id=f"msg_{i}", channel="email", recipient="a@example.com",
                                  parts=parts, customer_id="cus_1")
        start = time.perf_counter()
        bare.send(message)
        bare_times.append(time.perf_counter() - start)

    e2e = [r[0] for r in results]
    api = [r[1] for r in results]
    b50, b99 = percentile(bare_times, 50), percentile(bare_times, 99)
    e50, e99 = percentile(e2e, 50), percentile(e2e, 99)
    print(f"messages: {args.messages} (+{args.warmup} warm-up), customers: {args.customers}, "
          f"worker threads: {args.workers}, SQLite + SqliteHuey, load average {os.getloadavg()[0]:.2f}")
    print(f"API call → sandbox accept   p50 {e50 * 1000:8.2f} ms   p99 {e99 * 1000:8.2f} ms   "
          f"max {max(e2e) * 1000:8.2f} ms   mean {statistics.mean(e2e) * 1000:8.2f} ms")
    print(f"API call → 202 response     p50 {percentile(api, 50) * 1000:8.2f} ms   "
          f"p99 {percentile(api, 99) * 1000:8.2f} ms")
    print(f"bare sandbox adapter call   p50 {b50 * 1e6:8.2f} µs   p99 {b99 * 1e6:8.2f} µs")
    print(f"ratio to the bare adapter call: p50 {e50 / b50:,.0f}x   p99 {e99 / b99:,.0f}x")
    print(f"target p99 < 1 s: {'met' if e99 < 1 else 'NOT met'}")
    return 0 if e99 < 1 else 1


if __name__ == "__main__":
    sys.exit(main())
