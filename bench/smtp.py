"""E-mail over SMTP to a real SMTP server (aiosmtpd) on loopback: latency and throughput of the SMTP
adapter with its pooled, reused connections, against a new connection for every message (the
adapter with ``messages_per_connection=1``: connect, EHLO, MAIL, RCPT, DATA, QUIT each time) —
both measured in the same run, one after the other, plus reuse with DKIM signing (RSA-2048).

    .venv/bin/python bench/smtp.py [--messages 1000] [--threads 4] [--warmup 50]

The server runs in this process (a thread of its own, as in the tests), so both modes pay the
same server-side cost; the figures are the adapter's ``send`` call as a worker thread sees it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=4, help="worker threads sending at once")
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.delivery import smtp_peer
    from trato.delivery.channels.base import OutgoingMessage
    from trato.delivery.channels.email import SmtpEmail, SmtpSettings

    class Counting(smtp_peer.Mailbox):
        """Counts what arrives without keeping it (the bench would otherwise grow in memory)."""

        arrived = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.arrived += 1
            return "250 2.0.0 queued"

    mailbox = Counting()
    controller = smtp_peer._Controller(mailbox, hostname="127.0.0.1", port=smtp_peer.free_port())
    controller.start()
    mailbox.loop = controller.loop
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    parts: dict[str, str | bytes] = {"subject": "Tu factura F-1 ✓", "text": "Hola Ana, tu factura F-1 ya está lista.",
                                     "html": "<p>Hola <b>Ana</b>, tu factura <b>F-1</b> ya está lista.</p>" * 20}

    def adapter(**extra: Any) -> SmtpEmail:
        return SmtpEmail(SmtpSettings(host="127.0.0.1", port=controller.port, starttls=False, timeout=10,
                                      from_address="Banco Ejemplo <avisos@banco.example>",
                                      bounce_domain="rebotes.banco.example", **extra))

    def run(subject: SmtpEmail, threads: int, count: int, tag: str) -> tuple[list[float], float]:
        def one(n: int) -> float:
            message = OutgoingMessage(message_id=f"msg_{tag}{n}", channel="email", recipient=f"c{n}@example.com",
                                      parts=parts, customer_id="cus_1")
            start = time.perf_counter()
            result = subject.send(message)
            if result.outcome != "accepted":
                raise SystemExit(f"{tag} message {n}: {result}")
            return time.perf_counter() - start

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            latencies = list(pool.map(one, range(count)))
        return latencies, count / (time.perf_counter() - started)

    modes = {
        "new connection per message": {"messages_per_connection": 1},
        "reused connections": {},
        "reused connections + DKIM": {"dkim_domain": "banco.example", "dkim_selector": "s1",
                                      "dkim_private_key": pem.decode()},
    }
    figures: dict[tuple[str, int], tuple[float, float, float]] = {}
    try:
        for threads in sorted({1, args.threads}):
            for name, settings in modes.items():
                subject = adapter(**settings)
                try:
                    run(subject, threads, args.warmup, "w")
                    latencies, rate = run(subject, threads, args.messages, "m")
                finally:
                    subject.close()
                figures[(name, threads)] = (percentile(latencies, 50), percentile(latencies, 99), rate)
    finally:
        controller.stop()

    print(f"messages: {args.messages} per mode (+{args.warmup} warm-up), HTML part "
          f"{len(parts['html'])} bytes, loopback aiosmtpd, load average {os.getloadavg()[0]:.2f}")
    for threads in sorted({1, args.threads}):
        print(f"\n{threads} sending thread{'s' if threads > 1 else ''} (pool of {SmtpEmail.limits.max_connections}):")
        for name in modes:
            p50, p99, rate = figures[(name, threads)]
            print(f"  {name:30} p50 {p50 * 1000:7.2f} ms   p99 {p99 * 1000:7.2f} ms   {rate:8,.0f} msg/s")
        base, reuse = figures[("new connection per message", threads)], figures[("reused connections", threads)]
        print(f"  ratio reuse / new connection:  throughput {reuse[2] / base[2]:.2f}x   "
              f"p50 latency {base[0] / reuse[0]:.2f}x lower")
    print(f"\nconnections the server accepted in all: {mailbox.connections:,}; messages: {mailbox.arrived:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
