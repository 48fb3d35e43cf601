"""Google's OAuth 2 token endpoint and FCM HTTP v1 on loopback, strict as the real ones.

- ``POST /token`` (form): ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and an
  ``assertion`` JWT verified with the service account's public key (RS256, ``kid`` the key id,
  ``iss`` the client e-mail, ``aud`` this endpoint, the firebase.messaging scope, ``exp`` at most an
  hour after ``iat``) → ``{"access_token", "expires_in": 3599, "token_type": "Bearer"}``, or
  ``{"error": "invalid_grant", ...}``.
- ``POST /v1/projects/{project}/messages:send`` with ``Authorization: Bearer`` an issued token and
  a JSON ``{"message": {...}}`` checked as FCM does (one target, string-only ``data``, notification
  fields, android priority and ttl, apns headers) → ``{"name": "projects/…/messages/0:…"}``, or a
  ``google.rpc.Status`` with an ``FcmError`` detail (UNREGISTERED, INVALID_ARGUMENT,
  SENDER_ID_MISMATCH, QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL; UNAUTHENTICATED for a bad token).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.server import Fault, FakeServer

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rpc_error(code: int, message: str, error_code: str | None = None) -> dict[str, Any]:
    """A google.rpc.Status as FCM answers it."""
    details = [{"@type": FCM_ERROR, "errorCode": error_code}] if error_code else []
    return {"error": {"code": code, "message": message, "status": STATUS.get(code, "UNKNOWN"), "details": details}}


def fault(error_code: str, status: int, retry_after: str | None = None) -> Fault:
    """The next answer: an FCM error (e.g. ``fault("QUOTA_EXCEEDED", 429, "7")``)."""
    return Fault(status=status, body=rpc_error(status, f"{error_code} (fake)", error_code),
                 headers={"Retry-After": retry_after} if retry_after else {})


@dataclass
class Sent:
    project: str
    message: dict[str, Any]
    name: str


@dataclass
class _State:
    tokens: set[str] = field(default_factory=set)  # FCM registration tokens of installed apps
    access_tokens: dict[str, float] = field(default_factory=dict)  # issued → expires (epoch)
    token_requests: int = 0
    sent: list[Sent] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)


class FcmService(FakeServer):
    """Both Google endpoints; ``service_account(project)`` makes the JSON key a console would give."""

    def __init__(self) -> None:
        self.state = _State()
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = secrets.token_hex(20)
        self.client_email = "trato-sender@demo-project.iam.gserviceaccount.com"
        self.project = "demo-project"
        super().__init__()
        self.token_uri = f"{self.origin}/token"

    def reset(self) -> None:
        self.reset_faults()
        self.state = _State()

    def service_account(self) -> str:
        pem = self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()
        return json.dumps({
            "type": "service_account", "project_id": self.project, "private_key_id": self.key_id,
            "private_key": pem, "client_email": self.client_email, "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": self.token_uri,
        })

    def install_app(self) -> str:
        """An app instance registering with FCM: its registration token."""
        token = f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(100)}"
        self.state.tokens.add(token)
        return token

    def uninstall(self, token: str) -> None:
        self.state.tokens.discard(token)

    def expire_access_tokens(self) -> None:
        self.state.access_tokens.clear()

    # -- the endpoints ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], Any]:
        if method == "POST" and path == "/token":
            return self._token(headers, body)
        match = re.fullmatch(r"/v1/projects/([a-z0-9-]+)/messages:send", path)
        if method == "POST" and match:
            return self._send(match.group(1), headers, body)
        return 404, {}, rpc_error(404, "Requested entity was not found.")

    def _oauth_error(self, description: str) -> tuple[int, dict[str, str], Any]:
        self.state.rejected.append((400, description))
        return 400, {}, {"error": "invalid_grant", "error_description": description}

    def _token(self, headers: Any, body: bytes) -> tuple[int, dict[str, str], Any]:
        self.state.token_requests += 1
        if not headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return self._oauth_error("Content-Type must be application/x-www-form-urlencoded")
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {}, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}
        try:
            head, payload, signature = form.get("assertion", "").split(".")
            header, claims = json.loads(unb64(head)), json.loads(unb64(payload))
            self._key.public_key().verify(unb64(signature), f"{head}.{payload}".encode(), padding.PKCS1v15(),
                                          hashes.SHA256())
        except (ValueError, TypeError):
            return self._oauth_error("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe")
        except InvalidSignature:
            return self._oauth_error("Invalid JWT Signature.")
        now = time.time()
        if header.get("alg") != "RS256" or header.get("kid") not in (None, self.key_id):
            return self._oauth_error("Invalid JWT header")
        if claims.get("iss") != self.client_email or claims.get("aud") != self.token_uri:
            return self._oauth_error("Invalid JWT: iss or aud")
        if "https://www.googleapis.com/auth/firebase.messaging" not in str(claims.get("scope", "")).split():
            return 400, {}, {"error": "invalid_scope", "error_description": "Invalid OAuth scope"}
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or not (iat - 300 <= now < exp <= iat + 3600):
            return self._oauth_error("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe")
        token = f"ya29.{secrets.token_urlsafe(48)}"
        self.state.access_tokens[token] = now + 3599
        return 200, {}, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _reject(self, code: int, message: str, error_code: str | None = None) -> tuple[int, dict[str, str], Any]:
        self.state.rejected.append((code, message))
        return code, {}, rpc_error(code, message, error_code)

    def _send(self, project: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], Any]:
        auth = headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if self.state.access_tokens.get(token, 0) < time.time():
            return self._reject(401, "Request had invalid authentication credentials. Expected OAuth 2 access "
                                     "token, login cookie or other valid authentication credential.")
        if project != self.project:
            return self._reject(403, "Permission 'cloudmessaging.messages.create' denied on resource", None)
        if not headers.get("Content-Type", "").startswith("application/json"):
            return self._reject(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
        try:
            message = json.loads(body)["message"]
        except (ValueError, KeyError, TypeError):
            return self._reject(400, "Invalid JSON payload received. Unknown name", "INVALID_ARGUMENT")
        problem = _invalid(message)
        if problem:
            return self._reject(400, problem, "INVALID_ARGUMENT")
        if message["token"] not in self.state.tokens:
            return self._reject(404, "Requested entity was not found.", "UNREGISTERED")
        name = f"projects/{project}/messages/0:{int(time.time() * 1000)}%{uuid.uuid4().hex[:16]}"
        self.state.sent.append(Sent(project, message, name))
        return 200, {}, {"name": name}


def _invalid(message: Any) -> str | None:
    """What FCM would refuse in a v1 ``message`` (the subset trato uses), or None."""
    if not isinstance(message, dict):
        return "message must be an object"
    targets = [k for k in ("token", "topic", "condition") if k in message]
    if targets != ["token"] or not isinstance(message["token"], str) or not message["token"]:
        return "exactly one of token, topic, condition: trato sends by token"
    known = {"token", "notification", "data", "android", "apns", "webpush", "fcm_options", "name"}
    if set(message) - known:
        return f"Invalid JSON payload received. Unknown name {sorted(set(message) - known)[0]!r}"
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return "data values must be strings"
    if any(k in ("from", "notification", "message_type") or k.startswith(("google", "gcm")) for k in data):
        return "data uses a reserved key"
    notification = message.get("notification", {})
    if set(notification) - {"title", "body", "image"} or not all(isinstance(v, str) for v in notification.values()):
        return "notification has only string title, body, image"
    android = message.get("android", {})
    if android.get("priority", "normal") not in ("normal", "high"):
        return "android.priority must be normal or high"
    if "ttl" in android and not re.fullmatch(r"\d+(\.\d{1,9})?s", str(android["ttl"])):
        return "android.ttl must be a duration such as 3.5s"
    apns_headers = message.get("apns", {}).get("headers", {})
    if not all(isinstance(v, str) for v in apns_headers.values()):
        return "apns.headers values must be strings"
    link = message.get("webpush", {}).get("fcm_options", {}).get("link")
    if link is not None and not str(link).startswith("https://"):
        return "webpush.fcm_options.link must be https"
    return None
