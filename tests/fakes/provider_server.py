"""What every fake provider shares: a threaded HTTP server on a loopback port that records each
request, and can be told to misbehave on the next ones — answer an error status (5xx, 429 with
Retry-After), hang until released (the client times out after sending), or drop the connection
without answering."""

from __future__ import annotations

import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int
    body: Any = None  # dict/list → JSON, bytes/str as they are
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fault:
    kind: str  # status | hang | drop
    status: int = 503
    retry_after: str | None = None


class FakeProvider:
    """Subclasses implement ``answer(request) -> Answer`` and ``error_body(status)``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: Any) -> None:  # quiet
                return None

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request(self.command, parts.path, parts.query, headers, body)
                with fake._lock:
                    fake.requests.append(request)
                    fault = fake._faults.popleft() if fake._faults else None
                if fault is not None and fault.kind == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault is not None and fault.kind == "hang":
                    fake._release.wait(10)
                    self.close_connection = True
                    return
                if fault is not None:
                    answer = Answer(fault.status, fake.error_body(fault.status),
                                    {"Retry-After": fault.retry_after} if fault.retry_after else {})
                else:
                    answer = fake.answer(request)
                self._write(answer)

            def _write(self, answer: Answer) -> None:
                body = answer.body
                content_type = "application/json"
                if isinstance(body, str):
                    body, content_type = body.encode(), "text/plain"
                elif not isinstance(body, bytes):
                    body = orjson.dumps(body) if body is not None else b""
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.headers.pop("Content-Type", content_type))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def answer(self, request: Request) -> Answer:  # pragma: no cover - subclasses
        raise NotImplementedError

    def error_body(self, status: int) -> Any:  # pragma: no cover - subclasses
        return {"status": status}

    def fail_next(self, kind: str = "status", *, status: int = 503, retry_after: str | None = None,
                  times: int = 1) -> None:
        """The next ``times`` requests misbehave (see the module's docstring)."""
        with self._lock:
            self._faults.extend([Fault(kind, status, retry_after)] * times)

    def reset(self) -> None:
        """Forget requests and faults; release any hanging request."""
        self._release.set()
        with self._lock:
            self.requests.clear()
            self._faults.clear()
        self._release = threading.Event()

    def stop(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def redirected(url: str, target: str | None) -> str:
    """``url`` with its scheme and host replaced by ``target``'s (a proxy in front of the app)."""
    if not target:
        return url
    given, to = urlsplit(url), urlsplit(target)
    return urlunsplit(given._replace(scheme=to.scheme, netloc=to.netloc))
