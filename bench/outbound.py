"""What the safety of the webhook and letter channels costs, beside a bare baseline in the same run.

    .venv/bin/python bench/outbound.py [--webhooks 2000] [--letters 500]

Webhooks: the ``webhook`` adapter sending to a loopback endpoint that verifies every signature
with the Standard Webhooks library (tests/fakes/webhook_receiver.py) — per message: the SSRF
check (parse, resolve, address rules), the pinned connection, the JSON body and the HMAC — beside
a bare keep-alive ``httpx`` POST of one pre-signed body to the same endpoint.

Letters: a real A4 letter (WeasyPrint, one page) batched by the ``printhouse`` adapter into a
fresh SQLite database (page count, postal address look-up, hash, one transaction per letter),
then the batch dropped to a folder (PDFs and manifests written aside, fsynced and renamed) —
beside writing the same PDFs to a folder with ``Path.write_bytes``.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def webhooks(n: int) -> None:
    from datetime import UTC, datetime

    import httpx
    import orjson
    from pydantic import SecretStr

    from tests.fakes import webhook_receiver
    from trato.delivery.channels.base import OutgoingMessage
    from trato.delivery.channels.webhook import Webhook, WebhookSettings, sign

    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    receiver = webhook_receiver.start(secret)
    adapter = Webhook(WebhookSettings(url=receiver.url, secret=SecretStr(secret), allow_private=True))
    parts = {"event_type": "invoice.ready", "text": "Hola Ana, tu factura F-1 de 48,20 € está lista.",
             "data": '{"amount":"48,20 €","invoice":"F-1","url":"https://example.com/f/F-1"}'}
    messages = [OutgoingMessage(message_id=f"msg_BENCH{i:06d}", channel="webhook", recipient="cus_BENCH",
                                customer_id="cus_BENCH", parts=parts, metadata={"communication": "invoice-ready"})
                for i in range(n)]
    at = datetime.now(UTC).replace(microsecond=0)
    body = orjson.dumps(Webhook.payload(messages[0], at))
    headers = {"content-type": "application/json", "webhook-id": messages[0].message_id,
               "webhook-timestamp": str(int(at.timestamp())),
               "webhook-signature": sign(secret, messages[0].message_id, int(at.timestamp()), body)}

    def timed(count: int, *fns) -> list[list[float]]:  # type: ignore[no-untyped-def]
        # Interleaved, one call of each in turn: both see the same machine (shared, noisy cores).
        took: list[list[float]] = [[] for _ in fns]
        for i in range(count):
            for fn, times in zip(fns, took, strict=True):
                start = time.perf_counter()
                fn(i)
                times.append(time.perf_counter() - start)
        return took

    with httpx.Client(trust_env=False) as bare:
        def baseline(i: int) -> None:
            if bare.post(receiver.url, content=body, headers=headers).status_code != 204:
                raise SystemExit("the endpoint refused the baseline request")

        def adapted(i: int) -> None:
            result = adapter.send(messages[i])
            if result.outcome != "accepted":
                raise SystemExit(f"the adapter's send was {result}")

        timed(50, baseline, adapted)  # warm both connections
        receiver.received.clear()
        base, ours = timed(n, baseline, adapted)
    verified = sum(1 for r in receiver.received if r.verified)
    adapter.close()
    webhook_receiver.stop(receiver)
    print(f"webhooks ({n} each, interleaved, sequential, one keep-alive connection each; {verified} of {2 * n} verified)")
    print(f"  bare httpx POST     {n / sum(base):8.0f} req/s   p50 {statistics.median(base) * 1e3:6.2f} ms   "
          f"p99 {percentile(base, 99) * 1e3:6.2f} ms")
    print(f"  webhook adapter     {n / sum(ours):8.0f} req/s   p50 {statistics.median(ours) * 1e3:6.2f} ms   "
          f"p99 {percentile(ours, 99) * 1e3:6.2f} ms")
    print(f"  ratio (adapter / bare): throughput {sum(base) / sum(ours):.2f}, "
          f"p50 {statistics.median(ours) / statistics.median(base):.2f}x")


def letters(n: int, folder: Path) -> None:
    from trato.content import letter as letter_kit
    from trato.core import migrate
    from trato.core.db import unit_of_work
    from trato.customers import service as customers
    from trato.delivery.channels.base import OutgoingMessage
    from trato.delivery.channels.letter import PrintHouse, PrintHouseSettings

    migrate.upgrade()
    with unit_of_work() as s:
        ana = customers.create_customer(s, actor="bench", traits={
            "first_name": "Ana", "last_name": "García",
            "address": {"street": "Calle Mayor 10", "postalCode": "28013", "city": "Madrid", "country": "ES"}},
            identities=[("user_id", "u-bench")]).id
    pdf = letter_kit.render_letter("<p>Estimada Ana:</p><p>" + "Le escribimos sobre su factura. " * 40 + "</p>",
                                   language="es", title="Su factura", address_lines=["Ana García", "Calle Mayor 10",
                                                                                     "28013 Madrid"],
                                   letterhead_html="<strong>Banco</strong>", sender_line="Banco · Madrid")
    outbox, plain = folder / "outbox", folder / "plain"
    outbox.mkdir()
    plain.mkdir()
    house = PrintHouse(PrintHouseSettings(drop=f"file://{outbox}", batch_size=n + 1, cutoff=None))
    start = time.perf_counter()
    for i in range(n):
        result = house.send(OutgoingMessage(message_id=f"msg_L{i:06d}", channel="letter", recipient=ana,
                                            customer_id=ana, parts={"title": "t", "html": "h", "pdf": pdf}))
        assert result.outcome == "accepted", result
    batched = time.perf_counter() - start
    start = time.perf_counter()
    report = house.run(close_all=True)
    dropped = time.perf_counter() - start
    assert len(report.dropped) == 1, report
    start = time.perf_counter()
    for i in range(n):
        (plain / f"{i + 1:06d}.pdf").write_bytes(pdf)
    bare = time.perf_counter() - start
    print(f"letters ({n} of {len(pdf) / 1024:.0f} KiB, SQLite, one batch)")
    print(f"  batched (send)        {n / batched:8.0f} letters/s")
    print(f"  dropped to a folder   {n / dropped:8.0f} letters/s  (aside + fsync + rename, manifests last)")
    print(f"  bare write_bytes      {n / bare:8.0f} letters/s")
    print(f"  ratio (drop / bare write): {dropped / bare:.1f}x the time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--letters", type=int, default=500)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="trato-bench-outbound-"))
    os.environ["TRATO_DATABASE_URL"] = f"sqlite:///{folder}/trato.db"
    os.environ["TRATO_SECRET_KEY"] = "bench-secret-" + "x" * 40
    os.environ.pop("TRATO_REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    for name in ("httpx", "trato", "alembic", "weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        if args.webhooks:
            webhooks(args.webhooks)
        if args.letters:
            letters(args.letters, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
