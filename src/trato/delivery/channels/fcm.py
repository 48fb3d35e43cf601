"""Firebase Cloud Messaging, HTTP v1: push to Android, iOS (through APNs) and web apps by their
FCM registration token.

The service account's key signs a JWT (RS256) that Google's token endpoint exchanges for an
access token (OAuth 2 JWT bearer grant); the token is kept until shortly before it expires, one
request for many sends. ``messages:send`` answers ``{"name": "projects/…/messages/…"}`` or a
``google.rpc.Status`` whose ``FcmError`` detail names the problem:

- ``UNREGISTERED`` (404): the app was uninstalled or the token expired → failed for good and
  the registration removed;
- ``INVALID_ARGUMENT`` (400), ``SENDER_ID_MISMATCH`` (403) → failed for good;
- ``QUOTA_EXCEEDED`` (429), ``UNAVAILABLE`` (503), ``INTERNAL`` (500) → retried after ``Retry-After``;
- 401 ``UNAUTHENTICATED`` → the cached access token is dropped and the message retried.
"""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import structlog
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator

from trato.core.errors import ConfigurationError
from trato.delivery import push_devices
from trato.delivery.channels.base import ChannelAdapter, CheckResult, Limits, OutgoingMessage, ProviderResult
from trato.delivery.channels.http import PooledClient, failure, refusal, retry_after
from trato.delivery.channels.push_notification import Notification, find_target

log = structlog.get_logger(__name__)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME = 3600  # Google accepts assertions of at most one hour
TOKEN_MARGIN = 120.0  # a cached access token is renewed this many seconds before it expires
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


class FcmSettings(BaseModel):
    project_id: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")
    credentials: SecretStr = Field(description="the service account's JSON key (its text)")
    base_url: str = Field("https://fcm.googleapis.com", description="FCM's API root")
    token_uri: str = Field("", description="the OAuth 2 token endpoint; empty: the one in the credentials")
    ttl: int = Field(86400, ge=0, le=2419200, description="seconds FCM keeps an undelivered message")
    # Off by default: two orders' "shipped" messages would otherwise replace each other offline.
    collapse_per_communication: bool = Field(False, description="a newer message of one communication replaces "
                                                                "the one still waiting (Android collapse_key, "
                                                                "apns-collapse-id)")
    timeout: float = Field(10.0, gt=0, le=120)

    @field_validator("credentials")
    @classmethod
    def _credentials(cls, value: SecretStr) -> SecretStr:
        _service_account(value)
        return value


def _service_account(credentials: SecretStr) -> dict[str, Any]:
    """The parts of the service account key that sign in; ValueError naming what is missing."""
    try:
        account = orjson.loads(credentials.get_secret_value())
    except orjson.JSONDecodeError:
        raise ValueError("the credentials are not the service account's JSON key") from None
    if not isinstance(account, dict):
        raise ValueError("the credentials are not the service account's JSON key")
    missing = [k for k in ("client_email", "private_key") if not isinstance(account.get(k), str)]
    if missing:
        raise ValueError(f"the service account key lacks {', '.join(missing)}")
    return account


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Fcm(ChannelAdapter):
    """Push through FCM HTTP v1; one adapter per Firebase project."""

    name: ClassVar[str] = "fcm"
    channels: ClassVar[tuple[str, ...]] = ("push",)
    # FCM registrations, and device tokens that came with tracked events (Segment's context.device.token).
    platforms: ClassVar[tuple[str, ...]] = ("fcm", "token")
    capabilities: ClassVar[frozenset[str]] = frozenset({"expiry", "images", "data"})
    # FCM's default quota: 600,000 messages a minute per project.
    limits: ClassVar[Limits] = Limits(max_per_second=10000, max_connections=20, max_body_bytes=4096)
    settings_model: ClassVar[type[BaseModel]] = FcmSettings
    url_schemes: ClassVar[tuple[str, ...]] = ("fcm",)

    def __init__(self, settings: BaseModel | None = None, *, instance: str | None = None) -> None:
        if settings is None:
            raise ConfigurationError("fcm", "FCM needs the project id and service account "
                                            "(fcm://PROJECT_ID?credentials=/path/sa.json)")
        super().__init__(settings, instance=instance)
        assert isinstance(self.settings, FcmSettings)
        account = _service_account(self.settings.credentials)
        try:
            key = serialization.load_pem_private_key(account["private_key"].encode(), password=None)
        except (ValueError, TypeError):
            raise ConfigurationError("credentials", "the service account's private_key is not a PEM key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError("credentials", "the service account's private_key is not an RSA key")
        self._key, self._email = key, account["client_email"]
        self._key_id = account.get("private_key_id") or None
        self._token_uri = self.settings.token_uri or account.get("token_uri") or "https://oauth2.googleapis.com/token"
        self._access: tuple[str, float] | None = None  # (token, monotonic time it expires)
        self._token_lock = threading.Lock()
        self._http = PooledClient(timeout=httpx.Timeout(self.settings.timeout, connect=min(5.0, self.settings.timeout)),
                                  max_connections=self.limits.max_connections or 20)
        self.token_requests = 0

    @classmethod
    def settings_from_url(cls, url: str) -> BaseModel:
        """``fcm://PROJECT_ID?credentials=/path/service-account.json[&base_url=…&token_uri=…&ttl=…]``"""
        parts = urlsplit(url)
        if parts.scheme not in cls.url_schemes:
            raise ConfigurationError("fcm", f"an FCM URL starts with fcm://, not {parts.scheme}://")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if "collapse_per_communication" in query:
            query["collapse_per_communication"] = query["collapse_per_communication"].lower() in ("1", "true", "yes")  # type: ignore[assignment]
        path = query.pop("credentials", "")
        if not path:
            raise ConfigurationError("fcm", "the FCM URL needs credentials=/path/to/service-account.json")
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError("fcm", f"the service account file {path} cannot be read: {exc.strerror}") \
                from None
        try:
            return FcmSettings(project_id=parts.hostname or "", credentials=SecretStr(text), **query)  # type: ignore[arg-type]
        except ValidationError as exc:
            wrong = ", ".join(str(e["loc"][0]) for e in exc.errors() if e["loc"])
            raise ConfigurationError("fcm", f"the FCM URL has missing or wrong settings: {wrong}") from None

    # -- the access token ---------------------------------------------------------------------------

    def _assertion(self) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", **({"kid": self._key_id} if self._key_id else {})}
        claims = {"iss": self._email, "scope": SCOPE, "aud": self._token_uri, "iat": now, "exp": now + TOKEN_LIFETIME}
        signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}".encode()
        signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input.decode()}.{_b64(signature)}"

    def access_token(self) -> str | ProviderResult:
        """A valid access token (cached until shortly before it expires), or why none was had."""
        with self._token_lock:  # one token request at a time: the others wait and share it
            if self._access is not None and self._access[1] > time.monotonic():
                return self._access[0]
            self.token_requests += 1
            try:
                response = self._http.get().post(self._token_uri, data={"grant_type": GRANT_TYPE,
                                                                        "assertion": self._assertion()})
            except httpx.HTTPError as exc:  # the message itself was not sent: never ambiguous
                return ProviderResult.refused(f"Google's token endpoint unreachable: {type(exc).__name__}")
            if response.status_code != 200:
                detail = _oauth_error(response)
                log.warning("fcm access token refused", provider=self.instance, status=response.status_code,
                            error=detail)
                return ProviderResult.refused(f"access token refused (HTTP {response.status_code}): {detail}",
                                              retry_after=retry_after(response))
            try:
                answer = response.json()
                token, expires_in = str(answer["access_token"]), float(answer.get("expires_in", 3600))
            except (ValueError, KeyError, TypeError):
                return ProviderResult.refused("the token endpoint's answer has no access_token")
            self._access = (token, time.monotonic() + max(0.0, expires_in - TOKEN_MARGIN))
            return token

    def check(self) -> CheckResult:
        """Sign in with the service account (no message is sent)."""
        with self._token_lock:
            self._access = None
        token = self.access_token()
        if isinstance(token, ProviderResult):
            return CheckResult(False, token.error or "no access token")
        return CheckResult(True, f"signed in as {self._email} for project {self._settings().project_id}")

    def _settings(self) -> FcmSettings:
        assert isinstance(self.settings, FcmSettings)
        return self.settings

    # -- sending ------------------------------------------------------------------------------------

    def payload(self, message: OutgoingMessage, token: str) -> dict[str, Any]:
        """The v1 ``message``: the notification for every platform, the link in ``data``, priorities."""
        note = Notification.of(message)
        notification = {"title": note.title, "body": note.body, **({"image": note.image} if note.image else {})}
        data = {"message_id": message.message_id, **({"deep_link": note.deep_link} if note.deep_link else {})}
        ttl = self._settings().ttl
        body: dict[str, Any] = {
            "token": token, "notification": notification, "data": data,
            # The app opens ``data.deep_link`` itself (click_action is an intent action, not a URL).
            "android": {"priority": "high" if message.transactional else "normal", "ttl": f"{ttl}s"},
            "apns": {"headers": {"apns-priority": "10" if message.transactional else "5",
                                 "apns-expiration": str(int(time.time()) + ttl)},
                     "payload": {"aps": {"mutable-content": 1} if note.image else {}},
                     **({"fcm_options": {"image": note.image}} if note.image else {})},
        }
        if note.deep_link and note.deep_link.startswith("https://"):
            body["webpush"] = {"fcm_options": {"link": note.deep_link}}
        topic = str(message.metadata.get("communication", ""))[:64]
        if topic and self._settings().collapse_per_communication:
            body["android"]["collapse_key"] = topic
            body["apns"]["headers"]["apns-collapse-id"] = topic
        return {"message": body}

    def send(self, message: OutgoingMessage) -> ProviderResult:
        found = find_target(message, platform="fcm", bare_tokens=True)
        if isinstance(found, ProviderResult):
            return found
        token = self.access_token()
        if isinstance(token, ProviderResult):
            return token
        url = f"{self._settings().base_url.rstrip('/')}/v1/projects/{self._settings().project_id}/messages:send"
        try:
            response = self._http.get().post(url, content=orjson.dumps(self.payload(message, found.token)),
                                             headers={"Authorization": f"Bearer {token}",
                                                      "Content-Type": "application/json; charset=UTF-8"})
        except httpx.HTTPError as exc:
            return failure(exc, "FCM")
        if response.status_code == 200:
            try:
                name = str(response.json()["name"])
            except (ValueError, KeyError, TypeError):
                return ProviderResult.ambiguous("FCM answered 200 without the message's name")
            return ProviderResult.accepted(name[:255])
        code, status, detail = _fcm_error(response)
        if response.status_code == 401 and code != "THIRD_PARTY_AUTH_ERROR":
            with self._token_lock:  # revoked or expired early: sign in again on the retry
                self._access = None
            return ProviderResult.refused(f"HTTP 401 {status}: {detail}")
        if code == "UNREGISTERED":
            if found.registration_id:
                push_devices.forget(registration_id=found.registration_id, provider=self.instance,
                                    reason="FCM: UNREGISTERED")
            return ProviderResult.refused(f"HTTP {response.status_code} UNREGISTERED: the app was uninstalled or "
                                          "the token expired; its registration was removed", permanent=True)
        if code in ("QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"):
            return ProviderResult.refused(f"HTTP {response.status_code} {code}: {detail}"[:1000],
                                          retry_after=retry_after(response))
        return refusal(response, f"{code or status}: {detail}")

    def close(self) -> None:
        self._http.close()


def _fcm_error(response: httpx.Response) -> tuple[str | None, str, str]:
    """(FcmError errorCode, google.rpc status, message) of an error answer, as far as it says."""
    try:
        error = response.json()["error"]
        status, detail = str(error.get("status", "")), str(error.get("message", ""))[:300]
        codes = [d.get("errorCode") for d in error.get("details") or []
                 if isinstance(d, dict) and d.get("@type") == FCM_ERROR_TYPE]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, "", response.text[:300] or response.reason_phrase
    return (str(codes[0]) if codes and codes[0] else None), status, detail


def _oauth_error(response: httpx.Response) -> str:
    try:
        answer = response.json()
        return f"{answer.get('error', '')}: {answer.get('error_description', '')}"[:300]
    except ValueError:
        return response.text[:300] or response.reason_phrase
