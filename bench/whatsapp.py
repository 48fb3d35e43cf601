"""WhatsApp through the Cloud API adapter and Meta's webhooks, against the fake Cloud API on loopback.

    .venv/bin/python bench/whatsapp.py [--sends 2000] [--threads 4] [--messages 400] [--batch 100]

1. Sends: the adapter (plan, JSON, Bearer header, classification of the answer) from ``--threads``
   threads sharing its pooled client, against a bare ``httpx.Client.post`` of the same body to the
   same fake server in the same run (the baseline). Meta's default throughput per number is 80
   messages a second: the figure says how far one process is from being the bottleneck.
2. Webhooks: ``--messages`` WhatsApp messages sent through the API (SQLite, queue in immediate
   mode), then Meta's signed "delivered" webhooks posted over HTTP to the app served by uvicorn:
   one status per POST (the baseline) for half of them, ``--batch`` statuses per POST for the other
   half, as Meta batches them under load. Each POST is verified and applied in one unit of work.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sends", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="trato-bench-whatsapp-")
    os.environ["TRATO_DATABASE_URL"] = f"sqlite:///{folder}/trato.db"
    os.environ["TRATO_SECRET_KEY"] = "bench-secret-" + "x" * 40
    os.environ.pop("TRATO_REDIS_URL", None)
    sys.path.insert(0, str(ROOT))

    import warnings

    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    import httpx
    import orjson
    import structlog
    import uvicorn
    from fastapi.testclient import TestClient

    from tests.content.factory import make_communication
    from tests.fakes.meta import FakeMeta
    from trato.app import create_app
    from trato.console import service as console
    from trato.content import service as content
    from trato.content.channel_parts import whatsapp as render_whatsapp
    from trato.content.channel_parts import whatsapp_definition
    from trato.core import migrate
    from trato.core.db import unit_of_work
    from trato.core.queue import huey
    from trato.customers import service as customers
    from trato.delivery.channels import registry
    from trato.delivery.channels.base import OutgoingMessage
    from trato.delivery.channels.whatsapp import WhatsAppCloud, WhatsAppSettings
    from trato.policy import service as policy

    for name in ("huey", "httpx", "trato", "uvicorn"):
        logging.getLogger(name).setLevel(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    variant = {"mode": "template", "template_name": "factura_disponible", "category": "utility",
               "body": "Hola {{1}}, tu factura {{2}} está disponible.",
               "params": ["{{ customer.first_name }}", "{{ data.invoice }}"]}
    meta = FakeMeta().start()
    meta.register(whatsapp_definition(variant, "es"))
    adapter = WhatsAppCloud(WhatsAppSettings(token=meta.token, phone_number_id=meta.phone_number_id,
                                             app_secret=meta.app_secret, base_url=meta.url))

    # -- 1. sends ----------------------------------------------------------------------------------
    parts = render_whatsapp(None, "es", variant, lambda n, _s: {"params.0": "Ana"}.get(n, "F-1"),  # type: ignore[arg-type]
                            "+34612345678")
    outgoing = [OutgoingMessage(message_id=f"msg_{i}", channel="whatsapp", recipient="+34612345678", parts=parts,
                                customer_id="cus_1") for i in range(args.sends)]
    body = orjson.loads(parts["payload"])
    raw = httpx.Client(limits=httpx.Limits(max_connections=args.threads))
    url = f"{meta.url}/v21.0/{meta.phone_number_id}/messages"
    headers = {"Authorization": f"Bearer {meta.token}", "Content-Type": "application/json"}

    def bare(_: Any) -> float:
        start = time.perf_counter()
        response = raw.post(url, content=orjson.dumps(body), headers=headers)
        assert response.status_code == 200, response.text
        return time.perf_counter() - start

    def adapted(message: OutgoingMessage) -> float:
        start = time.perf_counter()
        assert adapter.send(message).outcome == "accepted"
        return time.perf_counter() - start

    def run(call: Any) -> tuple[float, list[float]]:
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(call, outgoing[:50]))  # warm-up: connections open
            start = time.perf_counter()
            times = list(pool.map(call, outgoing))
        return len(outgoing) / (time.perf_counter() - start), times

    bare_rate, bare_times = run(bare)
    rate, times = run(adapted)
    raw.close()

    # -- 2. webhooks -------------------------------------------------------------------------------
    migrate.upgrade()
    with unit_of_work() as s:
        policy.install_defaults(s)
        people = [customers.create_customer(s, traits={"first_name": f"Cliente {i}", "locale": "es-ES"},
                                            identities=[("phone", f"+3461200{i:04d}")], actor="bench").id
                  for i in range(50)]
        communication = make_communication(s, key="wa-invoice", content={"whatsapp": {"es": variant}},
                                           channels=["whatsapp"], languages=["es"])
        version = content.get_version(s, communication.latest_version_id)
        content.submit(s, version_id=version.id, actor="token:author")
        found = sorted({f["code"] for f in version.findings or [] if f.get("severity") == "warning"})
        content.approve(s, version_id=version.id, actor="token:reviewer", acknowledge=found)
        _, token = console.create_token(s, name="bench", role="editor", actor="bench")
    registry.use("whatsapp", adapter)
    huey.immediate = True
    app = create_app()
    wamids: list[str] = []
    with TestClient(app) as client:
        for i in range(args.messages):
            sent = client.post("/api/v1/messages", headers={"Authorization": f"Bearer {token}"}, json={
                "customer": {"id": people[i % len(people)]}, "communication": "wa-invoice",
                "data": {"invoice": f"F-{i}"}, "channels": ["whatsapp"]})
            shown = client.get(f"/api/v1/messages/{sent.json()['id']}", headers={"Authorization": f"Bearer {token}"})
            assert shown.json()["state"] == "accepted", shown.text
            wamids.append(shown.json()["provider_message_id"])

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    hook = f"http://127.0.0.1:{port}/hooks/whatsapp/whatsapp"
    half = len(wamids) // 2
    hooks = httpx.Client(timeout=60)

    def post(statuses: list[str]) -> None:
        payload = meta.statuses(*(meta.status(w, "delivered", "34612000000") for w in statuses))
        data = orjson.dumps(payload)
        answer = hooks.post(hook, content=data, headers={"X-Hub-Signature-256": meta.sign(data),
                                                         "Content-Type": "application/json"})
        assert answer.status_code == 200 and answer.json()["changed"] == len(statuses), answer.text

    start = time.perf_counter()
    for wamid in wamids[:half]:
        post([wamid])
    single_rate = half / (time.perf_counter() - start)
    start = time.perf_counter()
    rest = wamids[half:]
    for i in range(0, len(rest), args.batch):
        post(rest[i:i + args.batch])
    batch_rate = len(rest) / (time.perf_counter() - start)
    hooks.close()
    server.should_exit = True
    meta.stop()
    adapter.close()
    shutil.rmtree(folder, ignore_errors=True)

    print(f"load average {os.getloadavg()[0]:.2f}; fake Cloud API and app on loopback; SQLite")
    print(f"sends, {args.threads} threads: adapter {rate:8.0f} msg/s (p50 {percentile(times, 50) * 1000:.2f} ms, "
          f"p99 {percentile(times, 99) * 1000:.2f} ms) · bare httpx {bare_rate:8.0f} msg/s "
          f"(p50 {percentile(bare_times, 50) * 1000:.2f} ms) · ratio {rate / bare_rate:.2f} · "
          f"{rate / 80:.1f}x Meta's default 80 msg/s per number")
    print(f"webhooks, 'delivered' applied: {single_rate:8.0f} statuses/s one per POST (baseline) · "
          f"{batch_rate:8.0f} statuses/s {args.batch} per POST · ratio {batch_rate / single_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
