"""Meta's WhatsApp Cloud API, faked by a real HTTP server on loopback.

It checks what the Graph API checks — the Bearer token, the version and phone number id in the
path, a JSON body, ``messaging_product``, the recipient, the template being registered in that
language and the number of parameters each of its components takes, the 24-hour window for free
text — and answers with Graph's JSON: ``{"messaging_product", "contacts": [{"input", "wa_id"}],
"messages": [{"id": "wamid…"}]}`` or ``{"error": {"message", "type", "code", "error_subcode",
"error_data", "fbtrace_id"}}``. It can be told to misbehave (an error, 5xx, 429, hang, drop the
connection) and it posts webhooks to our app the way Meta does: the exact bytes signed with
``X-Hub-Signature-256``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

WABA_ID = "102290129340398"
DISPLAY_NUMBER = "34900000000"
VARIABLE = re.compile(r"\{\{\s*\d+\s*\}\}")


@dataclass
class Template:
    """A template as approved at Meta: how many values each component takes."""

    name: str
    language: str
    header: int = 0
    body: int = 0
    buttons: dict[int, str] = field(default_factory=dict)  # index → sub_type that takes a value

    @classmethod
    def of(cls, definition: dict[str, Any]) -> Template:
        """From a template definition as content keeps it (``content.channel_parts.whatsapp_definition``)."""
        counts: dict[str, int] = {}
        buttons: dict[int, str] = {}
        for component in definition.get("components", []):
            kind = component["type"].upper()
            if kind in ("HEADER", "BODY"):
                counts[kind] = len(set(VARIABLE.findall(component.get("text", ""))))
            if kind == "BUTTONS":
                for i, button in enumerate(component["buttons"]):
                    if button["type"].upper() == "URL" and VARIABLE.search(button.get("url", "")):
                        buttons[i] = "url"
        return cls(definition["name"], definition["language"], counts.get("HEADER", 0), counts.get("BODY", 0), buttons)


@dataclass
class Fault:
    kind: str  # "error" | "hang" | "drop"
    status: int = 500
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def graph_error(code: int, message: str, *, subcode: int | None = None, details: str | None = None,
                kind: str = "OAuthException") -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code,
                             "fbtrace_id": "A" + secrets.token_urlsafe(16)}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


class FakeMeta:
    """The Graph API for one phone number. ``start()``, then point the adapter's base_url at ``url``."""

    def __init__(self, *, token: str = "EAAG-test-token", phone_number_id: str = "106540352242922",
                 version: str = "v21.0", app_secret: str = "meta-app-secret") -> None:
        self.token, self.phone_number_id, self.version, self.app_secret = token, phone_number_id, version, app_secret
        self.templates: dict[tuple[str, str], Template] = {}
        self.open_windows: set[str] = set()  # wa_ids who wrote in the last 24 hours
        self.sent: list[dict[str, Any]] = []  # accepted bodies, each with its "wamid"
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers)
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # -- running -------------------------------------------------------------------------------

    def start(self) -> FakeMeta:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes: no delayed-ACK stall

            def log_message(self, *args: Any) -> None:  # quiet
                return None

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:  # a dropped connection
                return None

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def reset(self) -> None:
        with self._lock:
            self.templates.clear()
            self.open_windows.clear()
            self.sent.clear()
            self.requests.clear()
            self._faults.clear()
        self._release.set()
        self._release = threading.Event()

    # -- set-up and misbehaviour -----------------------------------------------------------------

    def register(self, definition: dict[str, Any]) -> Template:
        """A template approved at Meta (the definition as content keeps it)."""
        template = Template.of(definition)
        self.templates[(template.name, template.language)] = template
        return template

    def fail_next(self, fault: Fault, times: int = 1) -> None:
        with self._lock:
            self._faults.extend([fault] * times)

    def error_next(self, status: int, code: int, message: str, *, subcode: int | None = None,
                   details: str | None = None, headers: dict[str, str] | None = None, times: int = 1) -> None:
        """The next sends answer this Graph error."""
        self.fail_next(Fault("error", status, graph_error(code, message, subcode=subcode, details=details),
                             headers or {}), times)

    def hang_next(self) -> None:
        """The next request is read and never answered (until reset or stop)."""
        self.fail_next(Fault("hang"))

    def drop_next(self) -> None:
        """The next request is read, then the connection is closed without an answer."""
        self.fail_next(Fault("drop"))

    # -- the API --------------------------------------------------------------------------------

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any],
                headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=UTF-8")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        path = handler.path.split("?", 1)[0]
        with self._lock:
            self.requests.append((method, path, dict(handler.headers.items())))
            fault = self._faults.popleft() if self._faults and method == "POST" else None
        if fault is not None:
            if fault.kind == "hang":
                self._release.wait(30)
                handler.close_connection = True
                return
            if fault.kind == "drop":
                handler.close_connection = True
                handler.connection.shutdown(2)
                return
            self._answer(handler, fault.status, fault.body or {}, fault.headers)
            return
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            self._answer(handler, 401, graph_error(190, "Error validating access token: Session has expired.",
                                                   subcode=463))
            return
        match = re.fullmatch(r"/(v\d+\.\d+)/(\d+)(/messages)?", path)
        if match is None or match.group(2) != self.phone_number_id:
            self._answer(handler, 400, graph_error(100, f"Unsupported {method.lower()} request. Object with ID "
                                                   f"'{path.split('/')[-1]}' does not exist", subcode=33,
                                                   kind="GraphMethodException"))
            return
        if method == "GET" and match.group(3) is None:
            self._answer(handler, 200, {"verified_name": "Banco Ejemplo", "code_verification_status": "VERIFIED",
                                        "display_phone_number": "+34 900 00 00 00", "quality_rating": "GREEN",
                                        "platform_type": "CLOUD_API", "id": self.phone_number_id})
            return
        if method != "POST" or match.group(3) is None:
            self._answer(handler, 400, graph_error(100, "Unsupported request", kind="GraphMethodException"))
            return
        if not handler.headers.get("Content-Type", "").startswith("application/json"):
            self._answer(handler, 400, graph_error(100, "(#100) Param messaging_product is required"))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._answer(handler, 400, graph_error(100, "(#100) Invalid JSON"))
            return
        status, answer = self._message(body)
        self._answer(handler, status, answer)

    def _message(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("messaging_product") != "whatsapp":
            return 400, graph_error(100, "(#100) The parameter messaging_product is required.")
        to = str(body.get("to", ""))
        if not re.fullmatch(r"\d{7,15}", to):
            return 400, graph_error(100, "(#100) Invalid parameter", details="Parameter 'to' is not a phone number")
        kind = body.get("type")
        if kind == "text":
            text = (body.get("text") or {}).get("body")
            if not isinstance(text, str) or not text:
                return 400, graph_error(100, "(#100) The parameter text['body'] is required.")
            if to not in self.open_windows:
                return 400, graph_error(131047, "(#131047) Re-engagement message", details=(
                    "Message failed to send because more than 24 hours have passed since the customer last "
                    "replied to this number."))
        elif kind == "template":
            problem = self._check_template(body.get("template") or {})
            if problem is not None:
                return 400, problem
        else:
            return 400, graph_error(100, f"(#100) Param type must be one of {{TEXT, TEMPLATE}} - got {kind!r}")
        wamid = "wamid.HBgL" + secrets.token_hex(18).upper()
        with self._lock:
            self.sent.append({**body, "wamid": wamid})
        return 200, {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                     "messages": [{"id": wamid, "message_status": "accepted"}]}

    def _check_template(self, template: dict[str, Any]) -> dict[str, Any] | None:
        name, language = template.get("name"), (template.get("language") or {}).get("code")
        found = self.templates.get((name, language))
        if found is None:
            return graph_error(132001, "(#132001) Template name does not exist in the translation",
                               details=f"template name ({name}) does not exist in {language}")
        given: dict[str, int] = {"header": 0, "body": 0}
        buttons: dict[int, str] = {}
        for component in template.get("components") or []:
            kind = component.get("type")
            if kind in ("header", "body"):
                given[kind] = len(component.get("parameters") or [])
                if any(p.get("type") == "text" and not str(p.get("text", "")).strip()
                       for p in component.get("parameters") or []):
                    return graph_error(131008, "(#131008) Required parameter is missing")
            elif kind == "button":
                buttons[int(component.get("index", -1))] = str(component.get("sub_type"))
        expected = {"header": found.header, "body": found.body}
        for kind in ("header", "body"):
            if given[kind] != expected[kind]:
                return graph_error(132000, "(#132000) Number of parameters does not match the expected number "
                                   "of params", details=f"{kind}: number of localizable_params "
                                   f"({given[kind]}) does not match the expected number of params ({expected[kind]})")
        if buttons != found.buttons:
            return graph_error(131008, "(#131008) Required parameter is missing",
                               details="buttons: parameters do not match the template's buttons")
        return None

    # -- webhooks, as Meta posts them -------------------------------------------------------------

    def sign(self, body: bytes, secret: str | None = None) -> str:
        key = (secret or self.app_secret).encode()
        return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()

    def post_webhook(self, url: str, payload: dict[str, Any], *, signature: str | None = None,
                     tamper: tuple[bytes, bytes] | None = None) -> httpx.Response:
        """POST ``payload`` to our app as Meta does: compact JSON, signed on its exact bytes.
        ``tamper=(old, new)`` changes the body after signing; ``signature=""`` sends none."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        header = self.sign(body) if signature is None else signature
        if tamper is not None:
            assert tamper[0] in body
            body = body.replace(*tamper)
        headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
        if header:
            headers["X-Hub-Signature-256"] = header
        return httpx.post(url, content=body, headers=headers, timeout=10)

    def handshake(self, url: str, verify_token: str, challenge: str = "1158201444") -> httpx.Response:
        return httpx.get(url, params={"hub.mode": "subscribe", "hub.challenge": challenge,
                                      "hub.verify_token": verify_token}, timeout=10)

    def _envelope(self, value: dict[str, Any]) -> dict[str, Any]:
        return {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [{
            "value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": self.phone_number_id},
                      **value},
            "field": "messages"}]}]}

    def status(self, wamid: str, status: str, recipient: str, *, errors: list[dict[str, Any]] | None = None,
               at: int | None = None) -> dict[str, Any]:
        """One ``statuses[]`` item as Meta sends it."""
        item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(at or int(time.time())),
                                "recipient_id": recipient}
        if status in ("sent", "delivered"):
            item["conversation"] = {"id": secrets.token_hex(16), "origin": {"type": "utility"}}
            item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}
        if errors:
            item["errors"] = errors
        return item

    def statuses(self, *items: dict[str, Any]) -> dict[str, Any]:
        return self._envelope({"statuses": list(items)})

    def inbound(self, sender: str, kind: str, content: dict[str, Any], *, name: str = "Ana",
                wamid: str | None = None, context: dict[str, Any] | None = None,
                at: int | None = None) -> dict[str, Any]:
        """A customer's message: ``kind`` is text, button, interactive, image, document, location…"""
        message: dict[str, Any] = {"from": sender, "id": wamid or "wamid.HBgL" + secrets.token_hex(18).upper(),
                                   "timestamp": str(at or int(time.time())), "type": kind, kind: content}
        if context:
            message["context"] = context
        return self._envelope({"contacts": [{"profile": {"name": name}, "wa_id": sender}], "messages": [message]})

    @staticmethod
    def error_item(code: int, title: str, details: str) -> dict[str, Any]:
        return {"code": code, "title": title, "message": title, "error_data": {"details": details},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}


_running: FakeMeta | None = None
_running_lock = threading.Lock()


def running() -> FakeMeta:
    """One fake per test process, started on first use (tests ``reset()`` it)."""
    global _running
    with _running_lock:
        if _running is None:
            _running = FakeMeta().start()
        return _running
