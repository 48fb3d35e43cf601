"""What the Twilio and Infobip adapters add to one provider call, and what checking a Twilio
signature costs.

Each adapter sends N messages to its loopback fake (tests/fakes: a real HTTP server that checks
auth and payloads as the provider does), one after another on one kept-alive connection, and
the same requests are sent with a bare ``httpx.Client`` in the same run: the ratio is the
adapter's own share (building the request, classifying the answer). The signature line times
``verify`` of a realistic status callback against computing one HMAC-SHA1 of the same bytes.

    .venv/bin/python bench/sms.py [-n 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _timed(n: int, call: Callable[[int], object]) -> list[float]:
    for i in range(min(50, n)):  # warm the connection and the caches
        call(i)
    times = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return times


def _paired(n: int, call: Callable[[int], object],
            baseline: Callable[[int], object]) -> tuple[list[float], list[float]]:
    """Both timed in alternation, so a busy machine weighs on each alike."""
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(n // 50):
        ours += _timed(50, call)
        theirs += _timed(50, baseline)
    return ours, theirs


def _p(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _row(name: str, times: list[float], base: list[float]) -> str:
    p50, p99, b50, b99 = _p(times, 0.5), _p(times, 0.99), _p(base, 0.5), _p(base, 0.99)
    rate = len(times) / sum(times)
    return (f"| {name} | {p50 * 1e3:.2f} ms | {p99 * 1e3:.2f} ms | {rate:,.0f}/s | "
            f"{b50 * 1e3:.2f} / {b99 * 1e3:.2f} ms | {p50 / b50:.2f}× / {p99 / b99:.2f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("TRATO_SECRET_KEY", "bench-secret-" + "x" * 40)
    sys.path.insert(0, str(ROOT))

    import httpx

    from tests.fakes.infobip import FakeInfobip
    from tests.fakes.twilio import FakeTwilio, sign
    from trato.delivery.callbacks.twilio import verify
    from trato.delivery.channels.base import OutgoingMessage
    from trato.delivery.channels.infobip import InfobipSettings, InfobipSms
    from trato.delivery.channels.twilio import TwilioSettings, TwilioSms

    text = "Hola Ana: tu factura F-2026-001 de 49,90 € ya está disponible en tu área de cliente."
    twilio, infobip = FakeTwilio(), FakeInfobip()
    rows = ["| path | p50 | p99 | rate | bare httpx p50 / p99 | ratio p50 / p99 |",
            "| --- | --- | --- | --- | --- | --- |"]
    try:
        sms = TwilioSms(TwilioSettings(account_sid=twilio.account_sid, auth_token=twilio.auth_token,
                                       from_number="+34911000000", base_url=twilio.url))
        message = OutgoingMessage(message_id="msg_BENCH", channel="sms", recipient="+34612345678",
                                  parts={"text": text}, customer_id="cus_BENCH")
        with httpx.Client() as bare:
            url = f"{twilio.url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
            form = {"To": "+34612345678", "From": "+34911000000", "Body": text,
                    "StatusCallback": "http://127.0.0.1:8000/hooks/twilio/twilio/status"}
            adapter_times, base = _paired(args.n, lambda i: sms.send(message), lambda i: bare.post(
                url, data=form, auth=(twilio.account_sid, twilio.auth_token)))
        rows.append(_row("Twilio SMS adapter → fake", adapter_times, base))
        sms.close()

        ib = InfobipSms(InfobipSettings(api_key=infobip.api_key, base_url=infobip.url, sender="BancoEj",
                                        webhook_secret="s3cr3t-hook-token-0123456789"))
        with httpx.Client() as bare:
            body = ib.payload(message)
            headers = {"Authorization": f"App {infobip.api_key}"}
            adapter_times, base = _paired(args.n, lambda i: ib.send(message), lambda i: bare.post(
                f"{infobip.url}/sms/2/text/advanced", json=body, headers=headers))
        rows.append(_row("Infobip SMS adapter → fake", adapter_times, base))
        ib.close()
    finally:
        twilio.stop()
        infobip.stop()

    url = "https://trato.example/hooks/twilio/twilio/status"
    params = [("SmsSid", "SM" + "a" * 32), ("SmsStatus", "delivered"), ("MessageStatus", "delivered"),
              ("To", "+34612345678"), ("MessageSid", "SM" + "a" * 32), ("AccountSid", "AC" + "b" * 32),
              ("From", "+34911000000"), ("ApiVersion", "2010-04-01")]
    header = sign("t" * 32, url, params)
    data = (url + "".join(n + v for n, v in sorted(params))).encode()
    checked, bare_hmac = _paired(args.n * 20, lambda i: verify("t" * 32, url, params, header),
                                 lambda i: hmac.new(b"t" * 32, data, hashlib.sha1).digest())
    print("\n".join(rows))
    print(f"\nTwilio signature check: p50 {statistics.median(checked) * 1e6:.1f} µs "
          f"(one HMAC-SHA1 of the same bytes: {statistics.median(bare_hmac) * 1e6:.1f} µs, "
          f"ratio {statistics.median(checked) / statistics.median(bare_hmac):.1f}×)")


if __name__ == "__main__":
    main()
