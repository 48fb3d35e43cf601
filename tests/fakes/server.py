"""What the loopback fakes share: a ThreadingHTTPServer in a daemon thread, and a queue of
misbehaviours (an error answer, a hang until released, a dropped connection) for the next requests."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Fault:
    """One misbehaviour: ``status`` with ``body`` and ``headers``, or ``hang`` / ``close``."""

    def __init__(self, kind: str = "answer", status: int = 503, body: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        self.kind, self.status, self.body, self.headers = kind, status, body, headers or {}


class FakeServer:
    """Subclasses implement ``handle(handler, method, path, headers, body) -> (status, headers, body)``."""

    def __init__(self) -> None:
        fake = self
        self.faults: deque[Fault] = deque()
        self.released = threading.Event()
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: Any) -> None:
                return None

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with fake.lock:
                    fault = fake.faults.popleft() if fake.faults else None
                if fault is not None and fault.kind == "hang":
                    fake.released.wait(30)
                    self.close_connection = True
                    return
                if fault is not None and fault.kind == "close":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault is not None:
                    status, headers, payload = fault.status, fault.headers, fault.body
                else:
                    status, headers, payload = fake.handle(self.command, self.path, self.headers, body)
                data = payload if isinstance(payload, bytes) else (
                    b"" if payload is None else json.dumps(payload).encode())
                self.send_response(status)
                if payload is not None and not isinstance(payload, bytes):
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET = do_PUT = do_DELETE = _serve  # noqa: N815

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], Any]:
        raise NotImplementedError

    def misbehave(self, fault: Fault, times: int = 1) -> None:
        """The next ``times`` requests get ``fault`` instead of the real answer."""
        with self.lock:
            self.faults.extend([fault] * times)

    def reset_faults(self) -> None:
        with self.lock:
            self.faults.clear()
        self.released.set()
        self.released = threading.Event()

    def stop(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()
