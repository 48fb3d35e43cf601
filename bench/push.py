"""Push adapters' cost per message against the loopback fakes of the test suite, each beside a
baseline measured in the same run:

- Web Push: ``WebPush.send`` (registration look-up in SQLite, RFC 8291 encryption with a fresh
  ECDH key, VAPID ES256 signature, POST) vs a bare POST of an equally large body over the same
  kind of pooled client to the same push service;
- FCM: ``Fcm.send`` with the access token cached vs the same with the token fetched for every
  message (RS256 assertion + token request), which is what the cache saves.

    .venv/bin/python bench/push.py [--messages 300]

The fakes verify (VAPID signature, RS256 assertion) and decrypt each request, so their share of
the time is in both sides of each ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f} msg/s ({seconds / n * 1e3:.2f} ms each)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    n = args.messages

    folder = tempfile.mkdtemp(prefix="trato-bench-push-")
    os.environ["TRATO_DATABASE_URL"] = f"sqlite:///{folder}/trato.db"
    os.environ["TRATO_SECRET_KEY"] = "bench-secret-" + "x" * 40
    sys.path.insert(0, str(ROOT))

    import httpx
    from pydantic import SecretStr

    from tests.fakes.fcm import FcmService
    from tests.fakes.webpush import WebPushService, new_vapid_key
    from trato.core import migrate
    from trato.core.db import unit_of_work
    from trato.customers import service as customers
    from trato.delivery import push_devices
    from trato.delivery.channels.base import OutgoingMessage
    from trato.delivery.channels.fcm import Fcm, FcmSettings
    from trato.delivery.channels.webpush import WebPush, WebPushSettings, encrypt

    migrate.upgrade()
    parts = {"title": "Tu pedido ha salido", "body": "Llega el viernes entre 9 y 14 h.",
             "deep_link": "https://tienda.example/pedidos/1"}

    def message(recipient: str, i: int) -> OutgoingMessage:
        return OutgoingMessage(message_id=f"msg_{i}", channel="push", recipient=recipient, parts=parts,
                               customer_id="cus_X", metadata={"communication": "order-shipped"})

    # -- Web Push ------------------------------------------------------------------------------
    push_service = WebPushService()
    private, public = new_vapid_key()
    webpush = WebPush(WebPushSettings(vapid_private_key=SecretStr(private), subject="mailto:ops@tienda.example",
                                      allow_private=True))
    browser = push_service.subscribe(public)
    with unit_of_work() as s:
        ana = customers.create_customer(s, traits={}, actor="bench", identities=[])
        registration = push_devices.register(s, customer_id=ana.id, platform="webpush", actor="bench",
                                             subscription=browser.subscription()).id
    for i in range(20):  # warm-up: connections, imports
        assert webpush.send(message(registration, i)).outcome == "accepted"
    start = time.perf_counter()
    for i in range(n):
        assert webpush.send(message(registration, i)).outcome == "accepted"
    webpush_s = time.perf_counter() - start

    sample = encrypt(webpush.payload(message(registration, 0)), p256dh=browser.subscription()["keys"]["p256dh"],
                     auth=browser.subscription()["keys"]["auth"])
    headers = webpush._headers(message(registration, 0), browser.endpoint)  # one signature, reused
    with httpx.Client() as bare:
        start = time.perf_counter()
        for _ in range(n):
            assert bare.post(browser.endpoint, content=sample, headers=headers).status_code == 201
        bare_s = time.perf_counter() - start
    print(f"Web Push send            {rate(n, webpush_s)}")
    print(f"bare POST (same body)    {rate(n, bare_s)}")
    print(f"ratio                    {webpush_s / bare_s:.2f}x the bare POST")

    # -- FCM -----------------------------------------------------------------------------------
    fcm_service = FcmService()
    fcm = Fcm(FcmSettings(project_id=fcm_service.project, credentials=SecretStr(fcm_service.service_account()),
                          base_url=fcm_service.origin))
    token = fcm_service.install_app()
    for i in range(20):
        assert fcm.send(message(token, i)).outcome == "accepted"
    start = time.perf_counter()
    for i in range(n):
        assert fcm.send(message(token, i)).outcome == "accepted"
    cached_s = time.perf_counter() - start
    before = fcm_service.state.token_requests
    start = time.perf_counter()
    for i in range(n):
        fcm._access = None  # what every send would pay without the cache
        assert fcm.send(message(token, i)).outcome == "accepted"
    uncached_s = time.perf_counter() - start
    print(f"FCM send, token cached   {rate(n, cached_s)}")
    fetched = fcm_service.state.token_requests - before
    print(f"FCM send, token per send {rate(n, uncached_s)} ({fetched} token requests)")
    print(f"ratio                    {uncached_s / cached_s:.2f}x slower without the cache")
    webpush.close()
    fcm.close()
    push_service.stop()
    fcm_service.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
