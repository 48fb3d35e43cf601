"""The interface every channel adapter implements, and what it is given and gives back.

An adapter declares what it can do (channels, capabilities, limits, a pydantic settings model)
and sends one message. It never raises for a provider's answer: it classifies it, because what
delivery may do next depends on it —

- ``accepted``: the provider took the message (its id is kept);
- ``refused``: clearly not taken (connection refused, rejected before accept, 429, 5xx before
  accept): safe to retry or fail over;
- ``ambiguous``: the provider may have taken it (a timeout or a dropped connection after the
  message was handed over): never retried automatically, the message becomes ``possibly_sent``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from trato.core.errors import ConfigurationError

Outcome = Literal["accepted", "refused", "ambiguous"]


@dataclass(frozen=True)
class OutgoingMessage:
    """One rendered message for one recipient, as delivery hands it to an adapter."""

    message_id: str
    channel: str
    recipient: str
    parts: dict[str, str | bytes]
    customer_id: str
    language: str = "es"
    transactional: bool = True
    # Non-transactional mail: the one-click unsubscribe URL (RFC 8058) for List-Unsubscribe.
    unsubscribe_url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderResult:
    """The adapter's classification of the provider's answer."""

    outcome: Outcome
    provider_message_id: str | None = None
    error: str | None = None
    permanent: bool = False  # refused for good (e.g. mailbox does not exist): retrying cannot help
    retry_after: float | None = None  # seconds the provider asked us to wait

    @classmethod
    def accepted(cls, provider_message_id: str) -> ProviderResult:
        return cls("accepted", provider_message_id=provider_message_id)

    @classmethod
    def refused(cls, error: str, *, permanent: bool = False, retry_after: float | None = None) -> ProviderResult:
        return cls("refused", error=error, permanent=permanent, retry_after=retry_after)

    @classmethod
    def ambiguous(cls, error: str) -> ProviderResult:
        return cls("ambiguous", error=error)


@dataclass(frozen=True)
class Limits:
    """What the provider allows; shared by every worker once rate limiting lands."""

    max_per_second: float | None = None
    max_connections: int | None = None
    max_body_bytes: int | None = None


class NoSettings(BaseModel):
    """Adapters that need no configuration."""


@dataclass(frozen=True)
class CheckResult:
    """What "test connection" found: ``ok`` and a sentence a person can act on."""

    ok: bool
    detail: str


class ChannelAdapter(ABC):
    """A provider of one or more channels. Subclasses set the class attributes and ``send``."""

    name: ClassVar[str]
    channels: ClassVar[tuple[str, ...]]
    capabilities: ClassVar[frozenset[str]] = frozenset()
    limits: ClassVar[Limits] = Limits()
    settings_model: ClassVar[type[BaseModel]] = NoSettings
    # URL schemes of the one-line settings (``twilio://SID:TOKEN@?from=…``), see settings_from_url.
    url_schemes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: BaseModel | None = None, *, instance: str | None = None) -> None:
        self.settings = settings if settings is not None else self.settings_model()
        # The configured provider's name: several accounts of one adapter are told apart by it,
        # and provider callbacks arrive at /hooks/{instance}/….
        self.instance = instance or self.name

    @classmethod
    def settings_from_url(cls, url: str) -> BaseModel:
        """The settings written as one URL in the style Apprise made familiar."""
        raise ConfigurationError(cls.name, f"the {cls.name} adapter cannot be configured from a URL")

    def callback_url(self, path: str) -> str:
        """Where the provider should post what happens next to a message (status callbacks)."""
        from trato.core.settings import get_settings

        return f"{get_settings().base_url.rstrip('/')}/hooks/{self.instance}/{path.lstrip('/')}"

    def check(self) -> CheckResult:
        """Test the connection and credentials without sending anything; the default has nothing to test."""
        return CheckResult(True, "nothing to test")

    @abstractmethod
    def send(self, message: OutgoingMessage) -> ProviderResult:
        """Hand one message to the provider and classify its answer; never raises for it."""

    def close(self) -> None:
        """Release connections; the default holds none."""
        return None
