"""WhatsApp through Meta's Cloud API: ``POST {base}/{version}/{phone_number_id}/messages``.

What the archive holds for a WhatsApp message (see ``content.channel_parts.whatsapp``): a
template variant keeps ``template`` (as approved at Meta), ``params``, ``preview`` (the bubble
with the values filled in) and ``payload`` (the Cloud API body); a session variant keeps
``text`` and ``payload``. Which one goes out depends on WhatsApp's 24-hour customer service
window, which delivery hands over as ``metadata["last_inbound_at"]`` (ISO text, None when the
customer never wrote on WhatsApp; absent when unknown):

- window open: a session text (free of charge at Meta). A template variant without buttons or a
  media header goes as its filled-in text; should Meta answer 131047 (the window closed in
  between), the template is sent at once instead;
- window closed: the template; a session-only variant is refused for good without calling Meta.

Graph API errors are classified by their ``code`` (Meta answers most of them with HTTP 400, so
the status alone says little): rate limits and Meta's own trouble are retried, token errors are
retried (the message is fine; the operator must renew the token), everything that a retry cannot
fix is refused for good. Anything else falls back to the shared HTTP classification.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import orjson
import structlog
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator

from trato.core.clock import parse_timestamp, utcnow
from trato.core.errors import ConfigurationError
from trato.delivery.channels.base import ChannelAdapter, CheckResult, Limits, OutgoingMessage, ProviderResult
from trato.delivery.channels.http import PooledClient, failure, refusal, retry_after

log = structlog.get_logger("trato.delivery.whatsapp")

SERVICE_WINDOW = timedelta(hours=24)
# Graph error codes (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
OUTSIDE_WINDOW = 131047
UNDELIVERABLE = 131026
# Throttling: code → the least seconds to wait when Meta sends no Retry-After.
THROTTLED = {4: 60.0, 80007: 60.0, 130429: 1.0, 131048: 60.0, 131056: 6.0}
# Meta's own trouble or a token that must be renewed: the message itself is fine, retry later.
TRANSIENT = frozenset({1, 2, 190, 131000, 131016, 133004})
# Requests that cannot succeed as they are: invalid parameters, unknown or paused templates,
# recipients that cannot receive, numbers or accounts not allowed to send.
PERMANENT = frozenset({
    3, 10, 100, 131005, 131008, 131009, 131021, 131026, 131030, 131031, 131042, 131045, 131047, 131049,
    131050, 131051, 131052, 131053, 132000, 132001, 132005, 132007, 132012, 132015, 132016, 132068,
    132069, 133010, 135000, 200, 368,
})
_VERSION_RE = re.compile(r"v\d{1,3}\.\d{1,2}")
_PHONE_NUMBER_ID_RE = re.compile(r"\d{1,32}")


class WhatsAppSettings(BaseModel):
    """One WhatsApp Business phone number on Meta's Cloud API and the app that receives its webhooks."""

    token: SecretStr = Field(description="a system user's permanent access token (whatsapp_business_messaging)")
    phone_number_id: str = Field(description="the phone number's id in WhatsApp Manager (not the number)")
    app_secret: SecretStr | None = Field(None, description="the Meta app's secret: verifies X-Hub-Signature-256")
    verify_token: SecretStr | None = Field(None, description="the token typed in the app's webhook set-up")
    version: str = Field("v21.0", description="the Graph API version, e.g. v21.0")
    base_url: str = "https://graph.facebook.com"
    timeout: float = Field(10.0, gt=0, le=120)
    # Inside the service window a template without buttons or media goes as plain text (no charge).
    session_text: bool = True

    @field_validator("phone_number_id")
    @classmethod
    def _phone_number_id(cls, value: str) -> str:
        if not _PHONE_NUMBER_ID_RE.fullmatch(value):
            raise ValueError("the phone number id is the digits WhatsApp Manager shows, not the phone number")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION_RE.fullmatch(value):
            raise ValueError("the Graph API version looks like v21.0")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("the base URL is https://host[:port] (http only for a local test server)")
        return value.rstrip("/")


class WhatsAppCloud(ChannelAdapter):
    """Template and session messages through one WhatsApp Business number."""

    name: ClassVar[str] = "whatsapp"
    channels: ClassVar[tuple[str, ...]] = ("whatsapp",)
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"templates", "session_messages", "status_callbacks", "inbound", "signed_callbacks"})
    # Meta's default throughput of a business number: 80 messages a second (more once upgraded).
    limits: ClassVar[Limits] = Limits(max_per_second=80.0, max_connections=20)
    settings_model: ClassVar[type[BaseModel]] = WhatsAppSettings
    url_schemes: ClassVar[tuple[str, ...]] = ("whatsapp",)

    def __init__(self, settings: BaseModel | None = None, *, instance: str | None = None) -> None:
        if settings is None:
            raise ConfigurationError("whatsapp", "the WhatsApp adapter needs a token and a phone number id: "
                                     "whatsapp://TOKEN@PHONE_NUMBER_ID?app_secret=…&verify_token=…")
        super().__init__(settings, instance=instance)
        self.http = PooledClient(timeout=httpx.Timeout(self.wa.timeout, connect=min(5.0, self.wa.timeout)),
                                 max_connections=self.limits.max_connections or 10)

    @property
    def wa(self) -> WhatsAppSettings:
        assert isinstance(self.settings, WhatsAppSettings)
        return self.settings

    @classmethod
    def settings_from_url(cls, url: str) -> WhatsAppSettings:
        """``whatsapp://TOKEN@PHONE_NUMBER_ID?app_secret=…&verify_token=…&version=v21.0&base_url=…``."""
        parts = urlsplit(url)
        if parts.scheme not in cls.url_schemes:
            raise ConfigurationError("whatsapp", f"a WhatsApp URL starts with whatsapp://, not {parts.scheme}://")
        query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=False).items()}
        fields: dict[str, Any] = {"token": unquote(parts.username or ""), "phone_number_id": parts.hostname or ""}
        known = set(WhatsAppSettings.model_fields) - {"token", "phone_number_id"}
        unknown = sorted(set(query) - known)
        if unknown:
            raise ConfigurationError("whatsapp", f"unknown options in the WhatsApp URL: {', '.join(unknown)}")
        fields.update(query)
        if not fields["token"]:
            raise ConfigurationError("whatsapp", "the WhatsApp URL needs the access token before @")
        try:
            return WhatsAppSettings(**fields)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError("whatsapp", problems) from None

    # -- talking to Meta ----------------------------------------------------------------------------

    def _url(self, path: str = "") -> str:
        return f"{self.wa.base_url}/{self.wa.version}/{self.wa.phone_number_id}{path}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.wa.token.get_secret_value()}"}

    def check(self) -> CheckResult:
        """Reads the phone number (``GET /{version}/{phone_number_id}``): token, id and reach at once."""
        try:
            response = self.http.get().get(self._url(), headers=self._headers(),
                                           params={"fields": "display_phone_number,verified_name,quality_rating"})
        except httpx.HTTPError as exc:
            return CheckResult(False, f"Meta's Graph API cannot be reached: {type(exc).__name__}")
        if response.is_success:
            body = _json(response)
            return CheckResult(True, f"{body.get('verified_name', '?')} ({body.get('display_phone_number', '?')}), "
                                     f"quality {body.get('quality_rating', 'unknown')}")
        error = GraphError.of(response)
        if error.code == 190:
            return CheckResult(False, f"the access token is not valid: {error.message}")
        return CheckResult(False, f"Meta refused: {error.describe()}")

    def send(self, message: OutgoingMessage) -> ProviderResult:
        try:
            attempts = self.plan(message)
        except ValueError as exc:
            return ProviderResult.refused(str(exc), permanent=True)
        result = ProviderResult.refused("nothing to send", permanent=True)
        for index, (_kind, payload) in enumerate(attempts):
            result, code = self._post(payload)
            if code == OUTSIDE_WINDOW and index + 1 < len(attempts):
                log.info("whatsapp window closed; sending the template", message_id=message.message_id)
                continue
            return result
        return result

    def _post(self, payload: dict[str, Any]) -> tuple[ProviderResult, int | None]:
        try:
            response = self.http.get().post(self._url("/messages"), content=orjson.dumps(payload),
                                            headers={**self._headers(), "Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            return failure(exc, "WhatsApp"), None
        if response.is_success:
            try:
                return ProviderResult.accepted(str(_json(response)["messages"][0]["id"])), None
            except (KeyError, IndexError, TypeError):
                return ProviderResult.ambiguous(f"WhatsApp answered {response.status_code} without a message id"), None
        error = GraphError.of(response)
        return error.classify(response), error.code

    def close(self) -> None:
        self.http.close()

    # -- what to send -------------------------------------------------------------------------------

    def plan(self, message: OutgoingMessage) -> list[tuple[str, dict[str, Any]]]:
        """The request bodies to try in order: ``[("text", …), ("template", …)]`` inside the window,
        ``[("template", …)]`` outside it. Raises ValueError when nothing can be sent."""
        parts, to = message.parts, _wa_id(message.recipient)
        window = service_window_open(message.metadata)
        if "template" in parts or _payload_type(parts) == "template":
            template = _payload(parts)
            template["to"] = to
            text = _template_as_text(parts) if self.wa.session_text else None
            if window and text:
                return [("text", text_body(to, text)), ("template", template)]
            return [("template", template)]
        text = str(parts.get("text") or "")
        if not text and _payload_type(parts) == "text":
            text = str(_payload(parts).get("text", {}).get("body", ""))
        if not text.strip():
            raise ValueError("the archived WhatsApp message has neither a template nor a text")
        if window is False:
            raise ValueError("WhatsApp takes free text only within 24 hours of the customer's last message; "
                             "give this communication a WhatsApp template to reach them now")
        return [("text", text_body(to, text))]


class GraphError:
    """A Graph API error object: ``{"error": {"message", "type", "code", "error_subcode",
    "error_data": {"details"}, "fbtrace_id"}}``."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        self.status = status
        self.code: int | None = error.get("code") if isinstance(error.get("code"), int) else None
        self.subcode = error.get("error_subcode")
        self.message = str(error.get("message") or f"HTTP {status}")[:300]
        data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
        self.details = str(data.get("details") or "")[:300]
        self.trace = error.get("fbtrace_id")

    @classmethod
    def of(cls, response: httpx.Response) -> GraphError:
        return cls(response.status_code, _json(response))

    def describe(self) -> str:
        code = f"{self.code}/{self.subcode}" if self.subcode else str(self.code)
        text = f"WhatsApp error {code}: {self.message}"
        if self.details and self.details not in self.message:
            text += f" ({self.details})"
        return text + (f" [fbtrace_id {self.trace}]" if self.trace else "")

    def classify(self, response: httpx.Response) -> ProviderResult:
        error = f"HTTP {self.status}: {self.describe()}"[:1000]
        if self.code in THROTTLED:
            wait = max(retry_after(response) or 0.0, THROTTLED[self.code])
            return ProviderResult.refused(error, retry_after=wait)
        if self.code in TRANSIENT:
            return ProviderResult.refused(error, retry_after=retry_after(response))
        if self.code in PERMANENT:
            return ProviderResult.refused(error, permanent=True)
        return refusal(response, self.describe())


def service_window_open(metadata: dict[str, Any]) -> bool | None:
    """Whether the customer wrote on WhatsApp within 24 hours; None when delivery did not say."""
    if "last_inbound_at" not in metadata:
        return None
    last = parse_timestamp(metadata["last_inbound_at"])
    return last is not None and utcnow() - last < SERVICE_WINDOW


def text_body(to: str, text: str) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "text",
            "text": {"preview_url": False, "body": text}}


def _wa_id(recipient: str) -> str:
    return re.sub(r"[^\d]", "", recipient)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _payload(parts: dict[str, str | bytes]) -> dict[str, Any]:
    raw = parts.get("payload")
    if not raw:
        raise ValueError("the archived WhatsApp template has no Cloud API payload (no phone number when rendered)")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError("the archived WhatsApp payload is not JSON") from None
    if not isinstance(payload, dict):
        raise ValueError("the archived WhatsApp payload is not a JSON object")
    return payload


def _payload_type(parts: dict[str, str | bytes]) -> str | None:
    try:
        return str(_payload(parts).get("type"))
    except ValueError:
        return None


def _template_as_text(parts: dict[str, str | bytes]) -> str | None:
    """The filled-in template as one chat text, when nothing of it needs the template (buttons, media)."""
    try:
        shown = orjson.loads(parts.get("preview") or b"null")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(shown, dict) or shown.get("buttons") or not str(shown.get("body") or "").strip():
        return None
    header = shown.get("header")
    if header and header.get("format") != "TEXT":
        return None
    lines = [f"*{header['text']}*" if header and header.get("text") else "", str(shown["body"]),
             f"_{shown['footer']}_" if shown.get("footer") else ""]
    return "\n\n".join(line for line in lines if line)
