"""Webhooks: each message POSTed as JSON to a company's own system, signed per the Standard
Webhooks specification (https://www.standardwebhooks.com), so any of its libraries verifies it.

Where it goes: the provider's ``url`` (the company's endpoint, one per configured provider);
with ``customer_urls`` on, a customer who has an identity of kind ``webhook`` (a URL) gets their
messages there instead. Every target is checked against SSRF on every attempt
(:mod:`trato.core.outbound`): https only and public addresses only, unless the provider sets
``allow_private`` (a system inside the company's network); the connection goes to the address
checked, and redirects are not followed.

The request (``Content-Type: application/json``)::

    webhook-id: <trato message id>          (the same on every retry: receivers deduplicate on it)
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>

    {"type": "<the variant's event_type>", "timestamp": "<ISO 8601 of this attempt>",
     "data": {"message_id", "customer_id", "communication", "language", "transactional",
              "text": <the rendered text>, "data": {<the rendered fields>}}}

The answer: 2xx accepted; 410 Gone refused for good (the endpoint was removed); 429 and 5xx
retried honouring ``Retry-After``; other 4xx (and 3xx: not followed) refused for good; no
answer after the request went out is ambiguous (possibly sent).

One-line settings: ``webhooks://host/path?secret=whsec_…`` (https) or ``webhook://…`` (http, only
with ``allow_private=true``); other query parameters: ``allow_private``, ``customer_urls``,
``timeout``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
import orjson
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator

from trato.core.errors import ConfigurationError
from trato.core.outbound import PinnedTransport, UnsafeURL, check_url
from trato.delivery.channels.base import CheckResult, ChannelAdapter, Limits, OutgoingMessage, ProviderResult
from trato.delivery.channels.http import failure, refusal

SECRET_PREFIX = "whsec_"
USER_AGENT = "trato-webhooks/1"
SETTINGS_KEYS = ("secret", "allow_private", "customer_urls", "timeout")


def secret_bytes(secret: str) -> bytes:
    """The key of a ``whsec_<base64>`` secret (ValueError when it is not one)."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except ValueError:
        raise ValueError("a webhook secret is whsec_ followed by base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("a webhook secret's key is 24 to 64 bytes (the spec recommends 32)")
    return key


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 HMAC-SHA256>`` over ``id.timestamp.body``."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()).decode()


class WebhookSettings(BaseModel):
    """The company's endpoint and its signing secret."""

    url: str = Field("", description="where every message is POSTed (https unless allow_private)")
    secret: SecretStr | None = Field(None, description="whsec_<base64>: the key both sides sign with")
    allow_private: bool = Field(False, description="allow http and private/loopback addresses (a system inside)")
    customer_urls: bool = Field(False, description="send to a customer's own URL (identity kind webhook) if any")
    timeout: float = Field(10.0, gt=0, le=60)

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            secret_bytes(value.get_secret_value())
        return value


def _flag(value: str, name: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ConfigurationError("webhook", f"{name} must be true or false, not {value!r}")


class Webhook(ChannelAdapter):
    """Channel ``webhook``: signed JSON POSTs to the company's endpoint (see the module's docstring)."""

    name: ClassVar[str] = "webhook"
    channels: ClassVar[tuple[str, ...]] = ("webhook",)
    capabilities: ClassVar[frozenset[str]] = frozenset({"json", "standard_webhooks", "ssrf_checked", "customer_urls"})
    limits: ClassVar[Limits] = Limits(max_connections=10, max_body_bytes=1024 * 1024)
    settings_model: ClassVar[type[BaseModel]] = WebhookSettings
    url_schemes: ClassVar[tuple[str, ...]] = ("webhook", "webhooks")

    def __init__(self, settings: BaseModel | None = None, *, instance: str | None = None,
                 resolver: Any = None) -> None:
        super().__init__(settings, instance=instance)
        self._resolver = resolver  # tests resolve made-up names to loopback
        self._client: httpx.Client | None = None
        self._transport: PinnedTransport | None = None
        self._lock = threading.Lock()

    @property
    def webhook(self) -> WebhookSettings:
        assert isinstance(self.settings, WebhookSettings)
        return self.settings

    @classmethod
    def settings_from_url(cls, url: str) -> WebhookSettings:
        parts = urlsplit(url)
        if parts.scheme not in cls.url_schemes or not parts.hostname:
            raise ConfigurationError("webhook", "write it as webhooks://host/path?secret=whsec_… "
                                                "(or webhook:// for http inside your network)")
        # Split by hand: a whsec_ secret is base64, whose "+" parse_qsl would turn into a space.
        pairs = [pair.partition("=") for pair in parts.query.split("&") if pair]
        own = {unquote(k): unquote(v) for k, _, v in pairs if unquote(k) in SETTINGS_KEYS}
        rest = "&".join(f"{k}={v}" if sep else k for k, sep, v in pairs if unquote(k) not in SETTINGS_KEYS)
        scheme = "https" if parts.scheme == "webhooks" else "http"
        if scheme == "http" and not _flag(own.get("allow_private", ""), "allow_private"):
            raise ConfigurationError("webhook", "webhook:// is plain http, allowed only inside your network: add "
                                                "allow_private=true, or use webhooks:// (https)")
        endpoint = urlunsplit((scheme, parts.netloc, parts.path or "/", rest, ""))
        try:
            return WebhookSettings(
                url=endpoint, secret=SecretStr(own["secret"]) if own.get("secret") else None,
                allow_private=_flag(own.get("allow_private", ""), "allow_private"),
                customer_urls=_flag(own.get("customer_urls", ""), "customer_urls"),
                timeout=float(own.get("timeout", 10.0)),
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigurationError("webhook", f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        except ValueError as exc:
            raise ConfigurationError("webhook", str(exc)) from None

    # -- the HTTP client, one per adapter ------------------------------------------------------------

    def _http(self) -> tuple[httpx.Client, PinnedTransport]:
        with self._lock:
            if self._client is None or self._transport is None:
                self._transport = PinnedTransport(allow_private=self.webhook.allow_private, resolver=self._resolver,
                                                  limits=httpx.Limits(max_connections=10, max_keepalive_connections=10))
                self._client = httpx.Client(transport=self._transport, follow_redirects=False, trust_env=False,
                                            timeout=httpx.Timeout(self.webhook.timeout, connect=5.0))
            return self._client, self._transport

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = self._transport = None

    # -- what is sent ------------------------------------------------------------------------------------

    def target(self, message: OutgoingMessage) -> str:
        """The URL this message goes to: the customer's own (when allowed and given), else the endpoint."""
        recipient = message.recipient or ""
        if self.webhook.customer_urls and recipient.lower().startswith(("https://", "http://")):
            return recipient
        return self.webhook.url

    @staticmethod
    def payload(message: OutgoingMessage, at: datetime) -> dict[str, Any]:
        """The JSON body (see the module's docstring)."""
        parts = message.parts
        fields: Any = {}
        if isinstance(parts.get("data"), str | bytes):
            try:
                fields = orjson.loads(parts["data"])
            except orjson.JSONDecodeError:
                fields = {"value": parts["data"] if isinstance(parts["data"], str) else ""}
        data: dict[str, Any] = {
            "message_id": message.message_id, "customer_id": message.customer_id,
            "communication": message.metadata.get("communication"), "language": message.language,
            "transactional": message.transactional, "text": str(parts.get("text", "")), "data": fields,
        }
        for name, value in parts.items():  # any other text part the variant renders
            if name not in ("event_type", "text", "data") and isinstance(value, str):
                data.setdefault(name, value)
        return {"type": str(parts.get("event_type") or "message.sent"),
                "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data}

    def send(self, message: OutgoingMessage) -> ProviderResult:
        settings = self.webhook
        if settings.secret is None:
            return ProviderResult.refused(f"the {self.instance} webhook provider has no secret (whsec_…)",
                                          permanent=True)
        url = self.target(message)
        if not url:
            return ProviderResult.refused(f"the {self.instance} webhook provider has no endpoint URL", permanent=True)
        try:
            checked = check_url(url, allow_private=settings.allow_private, resolver=self._resolver)
        except UnsafeURL as exc:  # nothing was sent; only a failed DNS look-up may pass later
            transient = (exc.details or {}).get("reason") == "resolve"
            return ProviderResult.refused(f"webhook target refused: {exc.message}", permanent=not transient)
        at = datetime.now(UTC).replace(microsecond=0)
        body = orjson.dumps(self.payload(message, at))
        timestamp = int(at.timestamp())
        headers = {
            "content-type": "application/json", "user-agent": USER_AGENT,
            "webhook-id": message.message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(settings.secret.get_secret_value(), message.message_id, timestamp, body),
        }
        client, transport = self._http()
        try:
            with transport.pin(checked):
                response = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return failure(exc, f"webhook {checked.host}")
        if 200 <= response.status_code < 300:
            return ProviderResult.accepted(message.message_id)
        if 300 <= response.status_code < 400:
            return ProviderResult.refused(
                f"HTTP {response.status_code}: the endpoint redirects (to {response.headers.get('location', '?')!r}); "
                "redirects are not followed, configure the final URL", permanent=True)
        if response.status_code == 410:
            return ProviderResult.refused("HTTP 410: the endpoint is gone", permanent=True)
        return refusal(response, response.text[:300])

    def check(self) -> CheckResult:
        """The endpoint's address is checked and a HEAD request made (no message is sent)."""
        settings = self.webhook
        if not settings.url or settings.secret is None:
            return CheckResult(False, "give the endpoint URL and its whsec_ secret")
        try:
            checked = check_url(settings.url, allow_private=settings.allow_private, resolver=self._resolver)
        except UnsafeURL as exc:
            return CheckResult(False, exc.message)
        client, transport = self._http()
        try:
            with transport.pin(checked):
                response = client.head(settings.url, headers={"user-agent": USER_AGENT})
        except httpx.HTTPError as exc:
            return CheckResult(False, f"{checked.host} cannot be reached: {type(exc).__name__}: {exc}")
        if response.status_code >= 500 or response.status_code in (404, 410):
            return CheckResult(False, f"{checked.host} answered HTTP {response.status_code}")
        return CheckResult(True, f"{checked.host} ({', '.join(checked.addresses)}) answered HTTP "
                                 f"{response.status_code}")
