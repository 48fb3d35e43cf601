"""Infobip SMS: ``POST {base}/sms/2/text/advanced`` (JSON) with ``Authorization: App <key>``.

Every Infobip account has its own API host (``xxxxx.api.infobip.com``), so the base URL is
required. Our message id travels as ``callbackData`` and the delivery report comes back to
``notifyUrl``. Infobip does not sign its webhooks: the notify URL carries a secret token of this
provider's own (``webhook_secret``), checked in constant time (see ``callbacks/infobip.py``);
without one, no report is asked for and every callback is refused.

The answer lists one status per destination: PENDING (or ACCEPTED) is accepted; REJECTED is
final, except for a lack of credit, which a top-up cures (retried).
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator

from trato.core.errors import ConfigurationError
from trato.delivery.channels.base import ChannelAdapter, CheckResult, Limits, OutgoingMessage, ProviderResult
from trato.delivery.channels.http import PooledClient, failure, refusal

RETRYABLE_REJECTIONS = frozenset({"REJECTED_NOT_ENOUGH_CREDITS"})


class InfobipSettings(BaseModel):
    """``infobip://KEY@xxxxx.api.infobip.com?from=Banco&webhook_secret=…``."""

    api_key: SecretStr
    base_url: str  # the account's own API host, e.g. https://xxxxx.api.infobip.com
    sender: str | None = None  # "from": a number or an alphanumeric sender; None: the account's default
    webhook_secret: SecretStr | None = Field(default=None, description="token in the notify URL (16+ characters)")
    timeout: float = Field(10.0, gt=0, le=120)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or not urlsplit(value).hostname:
            raise ValueError("must be the account's API URL, e.g. https://xxxxx.api.infobip.com")
        return value.rstrip("/")

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value


def settings_from_url(url: str) -> InfobipSettings:
    """``infobip://KEY@HOST[:PORT]?from=…&webhook_secret=…`` (``base_url=`` overrides the host)."""
    parts = urlsplit(url)
    if parts.scheme != "infobip":
        raise ConfigurationError("infobip", f"an Infobip URL starts with infobip://, not {parts.scheme or url!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    host = parts.netloc.rpartition("@")[2]
    fields: dict[str, Any] = {
        "api_key": unquote(parts.username or ""),
        "base_url": query.get("base_url") or (f"https://{host}" if host else ""),
        "sender": query.get("from") or None, "webhook_secret": query.get("webhook_secret") or None,
    }
    if query.get("timeout"):
        fields["timeout"] = query["timeout"]
    if not fields["api_key"]:
        raise ConfigurationError("infobip", "the Infobip URL needs the API key: infobip://KEY@xxxxx.api.infobip.com")
    try:
        return InfobipSettings(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'url'}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError("infobip", f"the Infobip URL is not valid: {problems}") from None


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        exception = body["requestError"]["serviceException"]
        return f"{exception.get('messageId', '')}: {exception.get('text', '')}".strip(": ")
    except (ValueError, KeyError, TypeError):
        return response.text[:300]


def destination(recipient: str) -> str:
    """Infobip writes numbers in international format without the plus: 34612345678."""
    return recipient.removeprefix("+").replace(" ", "")


class InfobipSms(ChannelAdapter):
    name: ClassVar[str] = "infobip"
    channels: ClassVar[tuple[str, ...]] = ("sms",)
    capabilities: ClassVar[frozenset[str]] = frozenset({"text", "concatenation", "status_callbacks", "inbound"})
    limits: ClassVar[Limits] = Limits(max_per_second=100, max_connections=10)
    settings_model: ClassVar[type[BaseModel]] = InfobipSettings
    url_schemes: ClassVar[tuple[str, ...]] = ("infobip",)

    def __init__(self, settings: BaseModel | None = None, *, instance: str | None = None) -> None:
        if settings is None:
            raise ConfigurationError("infobip", "Infobip needs an API key and the account's base URL")
        super().__init__(settings, instance=instance)
        self._client = PooledClient(timeout=httpx.Timeout(self.infobip.timeout, connect=min(5.0, self.infobip.timeout)),
                                    max_connections=self.limits.max_connections or 10)

    @classmethod
    def settings_from_url(cls, url: str) -> BaseModel:
        return settings_from_url(url)

    @property
    def infobip(self) -> InfobipSettings:
        assert isinstance(self.settings, InfobipSettings)
        return self.settings

    @property
    def webhook_secret(self) -> str | None:
        secret = self.infobip.webhook_secret
        return secret.get_secret_value() if secret is not None else None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"App {self.infobip.api_key.get_secret_value()}", "Accept": "application/json"}

    def payload(self, message: OutgoingMessage) -> dict[str, Any]:
        """The request body: one message to one destination, whole (Infobip concatenates)."""
        item: dict[str, Any] = {"destinations": [{"to": destination(message.recipient)}],
                                "text": str(message.parts.get("text", "")), "callbackData": message.message_id}
        if self.infobip.sender:
            item["from"] = self.infobip.sender
        if self.webhook_secret:
            item["notifyUrl"] = self.callback_url(f"infobip/{self.webhook_secret}/reports")
            item["notifyContentType"] = "application/json"
        return {"messages": [item]}

    def send(self, message: OutgoingMessage) -> ProviderResult:
        try:
            response = self._client.get().post(f"{self.infobip.base_url}/sms/2/text/advanced",
                                               json=self.payload(message), headers=self._headers())
        except httpx.HTTPError as exc:
            return failure(exc, "Infobip")
        if not response.is_success:
            return refusal(response, f"Infobip {_error_text(response)}")
        try:
            sent = response.json()["messages"][0]
            status = sent["status"]
            provider_id = sent["messageId"]
        except (ValueError, KeyError, IndexError, TypeError):
            return ProviderResult.ambiguous(f"Infobip answered {response.status_code} without a message status")
        group, name = str(status.get("groupName", "")), str(status.get("name", ""))
        if group == "REJECTED":
            error = f"Infobip {name}: {status.get('description', '')}".strip()[:1000]
            return ProviderResult.refused(error, permanent=name not in RETRYABLE_REJECTIONS)
        if group == "UNDELIVERABLE":
            return ProviderResult.refused(f"Infobip {name}: {status.get('description', '')}"[:1000], permanent=True)
        count = sent.get("smsCount")
        return ProviderResult.accepted(str(provider_id), segments=count if isinstance(count, int) else None,
                                       provider_status=name or None)

    def check(self) -> CheckResult:
        """GET the account's balance: proves the key and the base URL without sending anything."""
        try:
            response = self._client.get().get(f"{self.infobip.base_url}/account/1/balance", headers=self._headers())
        except httpx.HTTPError as exc:
            return CheckResult(False, f"Infobip cannot be reached at {self.infobip.base_url}: {type(exc).__name__}")
        if response.status_code in (401, 403):
            return CheckResult(False, "Infobip refused the API key (check the key and the account's base URL)")
        if not response.is_success:
            return CheckResult(False, f"Infobip answered HTTP {response.status_code}: {_error_text(response)}")
        try:
            body = response.json()
            return CheckResult(True, f"Infobip account reached; balance {body['balance']} {body['currency']}")
        except (ValueError, KeyError, TypeError):
            return CheckResult(False, "Infobip answered without a balance: is the base URL the account's API URL?")

    def close(self) -> None:
        self._client.close()
