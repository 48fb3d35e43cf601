"""Twilio's REST API (2010-04-01) on loopback: Messages.json, Calls.json and the account
resource, with HTTP Basic (account SID, auth token), form-encoded bodies, Twilio's error body
``{"code", "message", "more_info", "status"}`` and its error codes, and the callbacks Twilio
sends (message status, call status, incoming message) signed with ``X-Twilio-Signature``
exactly as Twilio signs them: base64(HMAC-SHA1(auth token, URL + sorted name/value pairs)).

Callbacks go to the URL given in the request (StatusCallback), whose host may be replaced by
``deliver_to`` — as a proxy in front of the app would — while the signature covers the URL as
given."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import re
import secrets
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

import httpx

from tests.fakes.provider_server import Answer, FakeProvider, Request, redirected

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6"
E164 = re.compile(r"\+[1-9]\d{6,14}")
ERROR_TEXT = {
    20003: "Authenticate", 21211: "The 'To' number {to} is not a valid phone number.",
    21614: "'To' number is not a valid mobile number", 21610: "Attempt to send to unsubscribed recipient",
    21602: "Message body is required.",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
    21604: "A 'To' phone number is required.", 21617: "The concatenated message body exceeds the 1600 character limit.",
    21201: "No 'To' number is specified", 21213: "No 'From' number is specified", 21205: "Url parameter is required.",
    12100: "Document parse failure", 20429: "Too Many Requests", 20500: "Internal Server Error",
    20404: "The requested resource was not found",
}
CALL_EVENTS = {"initiated", "ringing", "answered", "completed"}


def sign(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's signature, written from its documentation (independently of the app's)."""
    data = url
    for name in sorted({n for n, _ in params}):
        for value in sorted(v for n, v in params if n == name):
            data += name + value
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _error(status: int, code: int, **fmt: str) -> Answer:
    return Answer(status, {"code": code, "message": ERROR_TEXT.get(code, "Error").format(**fmt),
                           "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status})


def _segments(body: str) -> int:
    ucs2 = any(ord(c) > 0xFF for c in body)
    single, multi = (70, 67) if ucs2 else (160, 153)
    return 1 if len(body) <= single else -(-len(body) // multi)


class FakeTwilio(FakeProvider):
    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid, self.auth_token = account_sid, auth_token
        self.messages: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, dict[str, Any]] = {}
        # A number → (HTTP status, Twilio error code) it answers for that recipient.
        self.reject: dict[str, tuple[int, int]] = {}
        self.account_status = "active"
        self.deliver_to: str | None = None  # where callbacks really go (the app's port)
        self._sequence = itertools.count()
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.messages.clear()
        self.calls.clear()
        self.reject.clear()
        self.account_status = "active"

    def error_body(self, status: int) -> Any:
        code = 20429 if status == 429 else 20500
        return {"code": code, "message": ERROR_TEXT[code], "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status}

    # -- the REST API ------------------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return hmac.compare_digest(user, self.account_sid) and hmac.compare_digest(password, self.auth_token)

    def answer(self, request: Request) -> Answer:
        prefix = f"/2010-04-01/Accounts/{self.account_sid}"
        if not self._authorised(request):
            return _error(401, 20003)
        if request.method == "GET" and request.path == f"{prefix}.json":
            return Answer(200, {"sid": self.account_sid, "friendly_name": "Banco Ejemplo",
                                "status": self.account_status,
                                "type": "Full", "date_created": "Mon, 01 Jun 2026 10:00:00 +0000",
                                "uri": f"{prefix}.json"})
        if request.method != "POST" or not request.path.startswith(prefix + "/"):
            return _error(404, 20404)
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _error(400, 21604)
        form = parse_qs(request.body.decode(), keep_blank_values=True)
        if request.path == f"{prefix}/Messages.json":
            return self._message(form)
        if request.path == f"{prefix}/Calls.json":
            return self._call(form)
        return _error(404, 20404)

    def _message(self, form: dict[str, list[str]]) -> Answer:
        one = {k: v[-1] for k, v in form.items()}
        to, body = one.get("To"), one.get("Body", "")
        if not to:
            return _error(400, 21604)
        if not (one.get("From") or one.get("MessagingServiceSid")):
            return _error(400, 21603)
        if not body and not one.get("MediaUrl"):
            return _error(400, 21602)
        if not E164.fullmatch(to):
            return _error(400, 21211, to=to)
        if len(body) > 1600:
            return _error(400, 21617)
        if to in self.reject:
            status, code = self.reject[to]
            return _error(status, code, to=to)
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC))
        resource = {
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": body, "date_created": now,
            "date_sent": None, "date_updated": now, "direction": "outbound-api", "error_code": None,
            "error_message": None, "from": one.get("From"), "messaging_service_sid": one.get("MessagingServiceSid"),
            "num_media": "0", "num_segments": str(_segments(body)), "price": None, "price_unit": "USD", "sid": sid,
            "status": "accepted" if one.get("MessagingServiceSid") else "queued", "to": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
        }
        self.messages[sid] = {**resource, "status_callback": one.get("StatusCallback")}
        return Answer(201, resource)

    def _call(self, form: dict[str, list[str]]) -> Answer:
        one = {k: v[-1] for k, v in form.items()}
        if not one.get("To"):
            return _error(400, 21201)
        if not one.get("From"):
            return _error(400, 21213)
        if not (one.get("Url") or one.get("Twiml") or one.get("ApplicationSid")):
            return _error(400, 21205)
        if not E164.fullmatch(one["To"]):
            return _error(400, 21211, to=one["To"])
        if one["To"] in self.reject:
            status, code = self.reject[one["To"]]
            return _error(status, code, to=one["To"])
        if one.get("Twiml"):
            try:
                root = ET.fromstring(one["Twiml"])
            except ET.ParseError:
                return _error(400, 12100)
            if root.tag != "Response" or len(one["Twiml"]) > 4000:
                return _error(400, 12100)
        events = form.get("StatusCallbackEvent", [])
        if not set(events) <= CALL_EVENTS:
            return _error(400, 21205)
        sid = "CA" + secrets.token_hex(16)
        resource = {"sid": sid, "account_sid": self.account_sid, "to": one["To"], "from": one["From"],
                    "status": "queued", "direction": "outbound-api", "api_version": "2010-04-01",
                    "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json"}
        self.calls[sid] = {**resource, "twiml": one.get("Twiml"), "status_callback": one.get("StatusCallback"),
                           "events": events}
        return Answer(201, resource)

    # -- callbacks, signed as Twilio signs them ---------------------------------------------------

    def post_signed(self, url: str, params: list[tuple[str, str]], *, signature: str | None = None,
                    tamper: dict[str, str] | None = None) -> httpx.Response:
        """POST ``params`` to ``url`` signed; ``tamper`` changes values after signing (a forgery)."""
        header = signature if signature is not None else sign(self.auth_token, url, params)
        sent = [(n, (tamper or {}).get(n, v)) for n, v in params]
        headers = {"X-Twilio-Signature": header, "User-Agent": "TwilioProxy/1.1", "I-Twilio-Idempotency-Token": "x"}
        if signature == "":
            headers.pop("X-Twilio-Signature")
        return httpx.post(redirected(url, self.deliver_to), data=dict(sent), headers=headers, timeout=10)

    def message_status(self, sid: str, status: str, *, error_code: int | None = None, **kw: Any) -> httpx.Response:
        message = self.messages[sid]
        params = [("SmsSid", sid), ("SmsStatus", status), ("MessageStatus", status), ("To", message["to"]),
                  ("MessageSid", sid), ("AccountSid", self.account_sid), ("From", message["from"] or ""),
                  ("ApiVersion", "2010-04-01")]
        if error_code is not None:
            params.append(("ErrorCode", str(error_code)))
        return self.post_signed(message["status_callback"], params, **kw)

    def call_status(self, sid: str, status: str, *, duration: int | None = None, **kw: Any) -> httpx.Response:
        call = self.calls[sid]
        params = [("Called", call["to"]), ("Direction", "outbound-api"), ("CallbackSource", "call-progress-events"),
                  ("Timestamp", format_datetime(datetime.now(UTC))), ("SequenceNumber", str(next(self._sequence))),
                  ("CallStatus", status), ("CallSid", sid), ("To", call["to"]), ("From", call["from"]),
                  ("AccountSid", self.account_sid), ("ApiVersion", "2010-04-01")]
        if duration is not None:
            params += [("CallDuration", str(duration)), ("Duration", str(-(-duration // 60)))]
        return self.post_signed(call["status_callback"], params, **kw)

    def incoming(self, url: str, *, sender: str, body: str, to: str = "+34911000000", media: list[str] = (),
                 sid: str | None = None, **kw: Any) -> httpx.Response:
        """A customer's SMS to our number, posted to the number's webhook ``url``."""
        sid = sid or "SM" + secrets.token_hex(16)
        params = [("ToCountry", "ES"), ("SmsMessageSid", sid), ("NumMedia", str(len(media))), ("SmsSid", sid),
                  ("SmsStatus", "received"), ("Body", body), ("FromCountry", "ES"), ("To", to),
                  ("NumSegments", "1"), ("MessageSid", sid), ("AccountSid", self.account_sid), ("From", sender),
                  ("ApiVersion", "2010-04-01")]
        for i, link in enumerate(media):
            params += [(f"MediaUrl{i}", link), (f"MediaContentType{i}", "image/jpeg")]
        return self.post_signed(url, params, **kw)
