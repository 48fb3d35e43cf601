"""Twilio: SMS through the Messages resource and voice calls through the Calls resource, both of
the REST API 2010-04-01 with HTTP Basic (account SID, auth token), form-encoded.

Twilio's answer is classified once, by ``http.refusal``/``http.failure``, except for the error
codes that say something about the recipient (an invalid or non-mobile number, a number that
unsubscribed with STOP): those are final whatever the HTTP status, and rate-limit codes may be
retried. Statuses come back to ``/hooks/{instance}/twilio/…`` (see ``callbacks/twilio.py``),
signed with the auth token.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator

from trato.core.errors import ConfigurationError
from trato.delivery.channels import twiml
from trato.delivery.channels.base import ChannelAdapter, CheckResult, Limits, OutgoingMessage, ProviderResult
from trato.delivery.channels.http import PooledClient, failure, refusal

API = "2010-04-01"
# Error codes that mean this number cannot receive what we send: retrying cannot help.
RECIPIENT_ERRORS: dict[int, str] = {
    21211: "invalid 'To' phone number", 21614: "'To' is not a mobile number",
    21610: "the recipient unsubscribed (STOP)",
    21612: "'To' cannot be reached from this sender", 21408: "no permission to send to this region",
    13223: "invalid phone number format", 13224: "invalid phone number", 21217: "phone number does not appear valid",
    21215: "no permission to call this region",
}
RETRYABLE_ERRORS = frozenset({20429, 14107, 20500, 20503})
# Delivery-report codes (callbacks) after which the number can never receive: suppressed.
UNREACHABLE_FOREVER = frozenset({21211, 21614, 21610, 30005, 30006, 13224})
DEFAULT_LANGUAGES = {"es": "es-ES", "en": "en-US", "ca": "ca-ES", "pt": "pt-PT", "fr": "fr-FR", "de": "de-DE",
                     "it": "it-IT"}
DEFAULT_VOICES = {"es-ES": "Polly.Lucia-Neural", "es-MX": "Polly.Mia-Neural", "es-US": "Polly.Lupe-Neural",
                  "en-US": "Polly.Joanna-Neural", "en-GB": "Polly.Amy-Neural"}
_E164 = re.compile(r"\+[1-9]\d{6,14}")


class TwilioSettings(BaseModel):
    """One Twilio account: ``twilio://SID:TOKEN@?from=%2B34…`` (or ``messaging_service=MG…``)."""

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr
    from_number: str | None = None  # E.164 number or an alphanumeric sender ID
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    base_url: str = "https://api.twilio.com"
    timeout: float = Field(10.0, gt=0, le=120)
    # Calls: the <Say> language for a message's language, and the voice for that language.
    languages: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_LANGUAGES))
    voices: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_VOICES))
    voice: str | None = None  # one voice for every language, overriding ``voices``

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _sender(self) -> TwilioSettings:
        if not (self.from_number or self.messaging_service_sid):
            raise ValueError("give a sender: from (a number or sender ID) or messaging_service (MG…)")
        return self


def settings_from_url(url: str, model: type[TwilioSettings] = TwilioSettings) -> TwilioSettings:
    """``twilio://SID:TOKEN@?from=%2B34600000000&messaging_service=MG…&base_url=…&voice=…``; the
    sender may also stand where a host would (``twilio://SID:TOKEN@%2B34600000000``)."""
    parts = urlsplit(url)
    if parts.scheme != "twilio":
        raise ConfigurationError("twilio", f"a Twilio URL starts with twilio://, not {parts.scheme or url!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    host = unquote(parts.netloc.rpartition("@")[2])
    fields: dict[str, Any] = {
        "account_sid": unquote(parts.username or ""), "auth_token": unquote(parts.password or ""),
        "from_number": query.get("from") or host or None,
        "messaging_service_sid": query.get("messaging_service") or None,
    }
    for name in ("base_url", "timeout", "voice"):
        if query.get(name):
            fields[name] = query[name]
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'url'}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError("twilio", f"the Twilio URL is not valid: {problems}") from None


def _twilio_error(response: httpx.Response) -> tuple[int | None, str]:
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:300]
    if not isinstance(body, dict):
        return None, str(body)[:300]
    code = body.get("code")
    number = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
    return number, str(body.get("message", ""))[:500]


class _Twilio(ChannelAdapter):
    """What the SMS and the call adapters share: the account, the client, the classification."""

    settings_model: ClassVar[type[BaseModel]] = TwilioSettings
    url_schemes: ClassVar[tuple[str, ...]] = ("twilio",)

    def __init__(self, settings: BaseModel | None = None, *, instance: str | None = None) -> None:
        if settings is None:
            raise ConfigurationError(self.name, "Twilio needs an account SID, an auth token and a sender")
        super().__init__(settings, instance=instance)
        self._client = PooledClient(timeout=httpx.Timeout(self.twilio.timeout, connect=min(5.0, self.twilio.timeout)),
                                    max_connections=self.limits.max_connections or 10)

    @classmethod
    def settings_from_url(cls, url: str) -> BaseModel:
        return settings_from_url(url)

    @property
    def twilio(self) -> TwilioSettings:
        assert isinstance(self.settings, TwilioSettings)
        return self.settings

    @property
    def auth_token(self) -> str:
        """The key that signs Twilio's callbacks (``X-Twilio-Signature``)."""
        return self.twilio.auth_token.get_secret_value()

    def _url(self, resource: str) -> str:
        return f"{self.twilio.base_url}/{API}/Accounts/{self.twilio.account_sid}/{resource}"

    def _auth(self) -> tuple[str, str]:
        return self.twilio.account_sid, self.auth_token

    def _post(self, resource: str, data: dict[str, Any]) -> tuple[httpx.Response | None, ProviderResult | None]:
        try:
            return self._client.get().post(self._url(resource), data=data, auth=self._auth()), None
        except httpx.HTTPError as exc:
            return None, failure(exc, "Twilio")

    def _classify(self, response: httpx.Response) -> ProviderResult | dict[str, Any]:
        """The created resource (a dict with its ``sid``) or the refusal."""
        if response.is_success:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("sid"), str):
                return body
            return ProviderResult.ambiguous(f"Twilio answered {response.status_code} without a resource sid")
        code, text = _twilio_error(response)
        detail = f"Twilio {code}: {text}" if code else text
        if code in RECIPIENT_ERRORS:
            return ProviderResult.refused(f"Twilio {code} ({RECIPIENT_ERRORS[code]}): {text}"[:1000], permanent=True)
        if code in RETRYABLE_ERRORS and response.status_code < 500 and response.status_code != 429:
            return ProviderResult.refused(f"HTTP {response.status_code}: {detail}"[:1000])
        return refusal(response, detail)

    def check(self) -> CheckResult:
        """GET the account: proves the SID and token without sending anything."""
        try:
            response = self._client.get().get(f"{self.twilio.base_url}/{API}/Accounts/{self.twilio.account_sid}.json",
                                              auth=self._auth())
        except httpx.HTTPError as exc:
            return CheckResult(False, f"Twilio cannot be reached at {self.twilio.base_url}: {type(exc).__name__}")
        if response.status_code in (401, 403):
            return CheckResult(False, "Twilio refused the account SID or the auth token (check both)")
        if not response.is_success:
            code, text = _twilio_error(response)
            return CheckResult(False, f"Twilio answered HTTP {response.status_code}: {text}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return CheckResult(False, "Twilio answered without an account: is base_url Twilio's API?")
        status = body.get("status", "unknown")
        name = body.get("friendly_name") or self.twilio.account_sid
        if status != "active":
            return CheckResult(False, f"the Twilio account {name} is {status}, not active")
        return CheckResult(True, f"the Twilio account {name} is active")

    def close(self) -> None:
        self._client.close()


class TwilioSms(_Twilio):
    """SMS (long texts are sent whole: Twilio splits them into concatenated segments)."""

    name: ClassVar[str] = "twilio"
    channels: ClassVar[tuple[str, ...]] = ("sms",)
    capabilities: ClassVar[frozenset[str]] = frozenset({"text", "concatenation", "status_callbacks", "inbound",
                                                        "messaging_service"})
    # Twilio queues what exceeds a sender's rate; 1,600 characters is its limit for one body.
    limits: ClassVar[Limits] = Limits(max_per_second=10, max_connections=10, max_body_bytes=1600 * 4)

    def send(self, message: OutgoingMessage) -> ProviderResult:
        data = {"To": message.recipient, "Body": str(message.parts.get("text", "")),
                "StatusCallback": self.callback_url("twilio/status")}
        if self.twilio.messaging_service_sid:
            data["MessagingServiceSid"] = self.twilio.messaging_service_sid
        else:
            data["From"] = self.twilio.from_number or ""
        response, failed = self._post("Messages.json", data)
        if failed is not None or response is None:
            return failed or ProviderResult.ambiguous("Twilio: no answer")
        created = self._classify(response)
        if isinstance(created, ProviderResult):
            return created
        segments = created.get("num_segments")
        return ProviderResult.accepted(created["sid"], segments=int(segments) if str(segments).isdigit() else None)


class TwilioVoice(_Twilio):
    """Calls that read the voice template's script (SSML → TwiML ``<Say>``)."""

    name: ClassVar[str] = "twilio_voice"
    channels: ClassVar[tuple[str, ...]] = ("voice",)
    capabilities: ClassVar[frozenset[str]] = frozenset({"ssml", "status_callbacks", "play_audio"})
    limits: ClassVar[Limits] = Limits(max_per_second=1, max_connections=4, max_body_bytes=twiml.MAX_TWIML_CHARS)

    def language_and_voice(self, message: OutgoingMessage, script_language: str | None) -> tuple[str, str | None]:
        tag = script_language or message.language or "es"
        language = tag if "-" in tag else self.twilio.languages.get(tag, tag)
        voice = self.twilio.voice or self.twilio.voices.get(language) or self.twilio.voices.get(language.split("-")[0])
        return language, voice

    def build(self, message: OutgoingMessage) -> str:
        """The TwiML of the call (raises ``twiml.InvalidScript``)."""
        ssml = str(message.parts.get("ssml", ""))
        script_language = twiml.language_of(twiml.parse(ssml))
        language, voice = self.language_and_voice(message, script_language)
        return twiml.twiml(ssml, language=language, voice=voice)

    def send(self, message: OutgoingMessage) -> ProviderResult:
        if not self.twilio.from_number or not _E164.fullmatch(self.twilio.from_number):
            return ProviderResult.refused("Twilio calls need a caller number (from=+…) in E.164", permanent=True)
        try:
            document = self.build(message)
        except twiml.InvalidScript as exc:
            return ProviderResult.refused(f"the voice script cannot be played: {exc}", permanent=True)
        if len(document) > twiml.MAX_TWIML_CHARS:
            return ProviderResult.refused(f"the call's TwiML has {len(document)} characters; Twilio takes "
                                          f"{twiml.MAX_TWIML_CHARS} (shorten the script)", permanent=True)
        data: dict[str, Any] = {
            "To": message.recipient, "From": self.twilio.from_number, "Twiml": document,
            "StatusCallback": self.callback_url("twilio/call-status"), "StatusCallbackMethod": "POST",
            "StatusCallbackEvent": ["answered", "completed"],
        }
        response, failed = self._post("Calls.json", data)
        if failed is not None or response is None:
            return failed or ProviderResult.ambiguous("Twilio: no answer")
        created = self._classify(response)
        if isinstance(created, ProviderResult):
            return created
        return ProviderResult.accepted(created["sid"])
