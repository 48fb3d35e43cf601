"""A company's webhook endpoint on loopback: a real HTTP server that verifies every request with
the Standard Webhooks reference library (``standardwebhooks``), as a receiver would, records what
it got, and can be told to misbehave (5xx, 429 + Retry-After, 410 Gone, a redirect, hang until
the client gives up, close the connection without answering)."""

from __future__ import annotations

import http.server
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    payload: Any = None
    error: str | None = None


@dataclass
class Receiver:
    secret: str
    port: int = 0
    received: list[Received] = field(default_factory=list)
    faults: deque[tuple[str, Any]] = field(default_factory=deque)
    release: threading.Event = field(default_factory=threading.Event)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/trato"

    def fail_next(self, kind: str, value: Any = None, times: int = 1) -> None:
        """``status`` (value: code), ``retry_after`` (value: seconds; answers 429), ``redirect``,
        ``hang`` (no answer until released), ``close`` (drops the connection after reading)."""
        self.faults.extend([(kind, value)] * times)

    def reset(self) -> None:
        self.received.clear()
        self.faults.clear()
        self.release.set()
        self.release = threading.Event()

    def verified(self) -> list[Received]:
        return [r for r in self.received if r.verified]


def start(secret: str) -> Receiver:
    receiver = Receiver(secret=secret)
    verifier = Verifier(secret)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            return None

        def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:  # noqa: N802 - the http.server API
            self._answer(200)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            record = Received(self.path, headers, body, False)
            if headers.get("content-type") != "application/json":
                record.error = "content type"
            else:
                try:
                    record.payload = verifier.verify(body, headers)
                    record.verified = True
                except WebhookVerificationError as exc:
                    record.error = str(exc)
            receiver.received.append(record)
            if not record.verified:
                self._answer(401, b'{"error":"invalid signature"}', {"content-type": "application/json"})
                return
            kind, value = receiver.faults.popleft() if receiver.faults else ("ok", None)
            if kind == "status":
                self._answer(value, b'{"error":"failure"}', {"content-type": "application/json"})
            elif kind == "retry_after":
                self._answer(429, b"slow down", {"retry-after": str(value)})
            elif kind == "redirect":
                self._answer(307, b"", {"location": "http://127.0.0.1:9/elsewhere"})
            elif kind == "hang":
                receiver.release.wait(30)
                self.close_connection = True
            elif kind == "close":
                self.close_connection = True
                self.connection.shutdown(2)
            else:
                self._answer(204)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.server = server
    receiver.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True).start()
    return receiver


def stop(receiver: Receiver) -> None:
    receiver.release.set()
    if receiver.server is not None:
        receiver.server.shutdown()
        receiver.server.server_close()
