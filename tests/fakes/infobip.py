"""Infobip's SMS API on loopback: ``POST /sms/2/text/advanced`` and ``GET /account/1/balance``
with ``Authorization: App <key>``, JSON bodies and Infobip's shapes — per-destination statuses
(groupId/groupName/id/name/description), ``requestError.serviceException`` errors — and the
callbacks Infobip makes: delivery reports to each message's ``notifyUrl`` and incoming messages
to the number's forwarding URL (``results[]``). Infobip signs neither; the URL carries the
secret."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from tests.fakes.provider_server import Answer, FakeProvider, Request, redirected

API_KEY = "0123456789abcdef0123456789abcdef-01234567-89ab-cdef-0123-456789abcdef"
DIGITS = re.compile(r"\d{7,15}")
PENDING = {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED",
           "description": "Message sent to next instance"}
STATUSES = {
    "DELIVERED": {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET",
                  "description": "Message delivered to handset"},
    "UNDELIVERABLE": {"groupId": 2, "groupName": "UNDELIVERABLE", "id": 9, "name": "UNDELIVERABLE_NOT_DELIVERED",
                      "description": "Message sent not delivered"},
    "EXPIRED": {"groupId": 4, "groupName": "EXPIRED", "id": 15, "name": "EXPIRED_EXPIRED",
                "description": "Message expired"},
    "REJECTED_DESTINATION": {"groupId": 5, "groupName": "REJECTED", "id": 14, "name": "REJECTED_DESTINATION",
                             "description": "Message rejected: destination not allowed"},
    "REJECTED_NOT_ENOUGH_CREDITS": {"groupId": 5, "groupName": "REJECTED", "id": 12,
                                    "name": "REJECTED_NOT_ENOUGH_CREDITS", "description": "Not enough credits"},
    "REJECTED_PREFIX_MISSING": {"groupId": 5, "groupName": "REJECTED", "id": 8, "name": "REJECTED_PREFIX_MISSING",
                                "description": "Number prefix missing"},
}
NO_ERROR = {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "description": "No Error", "permanent": False}
ERRORS = {
    "EC_UNKNOWN_SUBSCRIBER": {"groupId": 1, "groupName": "HANDSET_ERRORS", "id": 1, "name": "EC_UNKNOWN_SUBSCRIBER",
                              "description": "Unknown Subscriber", "permanent": True},
    "EC_ABSENT_SUBSCRIBER": {"groupId": 1, "groupName": "HANDSET_ERRORS", "id": 27, "name": "EC_ABSENT_SUBSCRIBER",
                             "description": "Absent Subscriber", "permanent": False},
}


def _request_error(message_id: str, text: str) -> dict[str, Any]:
    return {"requestError": {"serviceException": {"messageId": message_id, "text": text}}}


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class FakeInfobip(FakeProvider):
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.sent: dict[str, dict[str, Any]] = {}  # messageId → the message as sent (to, text, notifyUrl…)
        self.reject: dict[str, str] = {}  # destination → a status name of STATUSES
        self.deliver_to: str | None = None
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.sent.clear()
        self.reject.clear()

    def error_body(self, status: int) -> Any:
        if status == 429:
            return _request_error("TOO_MANY_REQUESTS", "Too many requests")
        return _request_error("GENERAL_ERROR", "Something went wrong. Please contact support.")

    def answer(self, request: Request) -> Answer:
        if request.headers.get("authorization") != f"App {self.api_key}":
            return Answer(401, _request_error("UNAUTHORIZED", "Invalid login details"))
        if request.method == "GET" and request.path == "/account/1/balance":
            return Answer(200, {"balance": 47.79134, "currency": "EUR"})
        if request.method != "POST" or request.path != "/sms/2/text/advanced":
            return Answer(404, _request_error("NOT_FOUND", "Requested URL not found"))
        if not request.headers.get("content-type", "").startswith("application/json"):
            return Answer(415, _request_error("UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"))
        try:
            body = orjson.loads(request.body)
            messages = body["messages"]
            if not isinstance(messages, list) or not messages:
                raise TypeError("messages")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return Answer(400, _request_error("BAD_REQUEST", "Bad request: messages are required"))
        bulk_id, answers = secrets.token_hex(10), []
        for message in messages:
            destinations = message.get("destinations") or []
            if not destinations or not isinstance(message.get("text"), str) or not message["text"]:
                return Answer(400, _request_error("BAD_REQUEST", "Invalid destinations or text"))
            if message.get("notifyUrl") and message.get("notifyContentType") not in ("application/json",
                                                                                      "application/xml"):
                return Answer(400, _request_error("BAD_REQUEST", "Invalid notifyContentType"))
            for destination in destinations:
                to = str(destination.get("to", ""))
                message_id = destination.get("messageId") or secrets.token_hex(18)
                if not DIGITS.fullmatch(to):
                    status = STATUSES["REJECTED_PREFIX_MISSING"]
                else:
                    status = STATUSES[self.reject[to]] if to in self.reject else PENDING
                if status is PENDING:
                    self.sent[message_id] = {**message, "to": to, "bulk_id": bulk_id}
                answers.append({"to": to, "status": status, "messageId": message_id})
        return Answer(200, {"bulkId": bulk_id, "messages": answers})

    # -- callbacks ----------------------------------------------------------------------------------

    def report(self, message_id: str, group: str = "DELIVERED", *, error: str | None = None,
               url: str | None = None) -> httpx.Response:
        """The delivery report Infobip posts to the message's notifyUrl."""
        sent = self.sent[message_id]
        result = {
            "bulkId": sent["bulk_id"], "messageId": message_id, "to": sent["to"], "sentAt": _stamp(),
            "doneAt": _stamp(), "smsCount": 2 if len(sent["text"]) > 160 else 1, "mccMnc": "21401",
            "callbackData": sent.get("callbackData"), "price": {"pricePerMessage": 0.05, "currency": "EUR"},
            "status": STATUSES[group], "error": ERRORS[error] if error else NO_ERROR,
        }
        target = url or sent["notifyUrl"]
        return httpx.post(redirected(target, self.deliver_to), json={"results": [result]}, timeout=10)

    def incoming(self, url: str, *, sender: str, text: str, to: str = "34911000000", message_id: str | None = None,
                 auth: tuple[str, str] | None = None) -> httpx.Response:
        """A customer's SMS to our number, forwarded to ``url`` (Infobip's numbers are digits only)."""
        result = {"messageId": message_id or secrets.token_hex(9), "from": sender.removeprefix("+"), "to": to,
                  "text": text, "cleanText": text, "keyword": text.split()[0].upper() if text.split() else "",
                  "receivedAt": _stamp(), "smsCount": 1, "price": {"pricePerMessage": 0, "currency": "EUR"},
                  "callbackData": None}
        return httpx.post(redirected(url, self.deliver_to), json={"results": [result], "messageCount": 1,
                                                                   "pendingMessageCount": 0}, auth=auth, timeout=10)
