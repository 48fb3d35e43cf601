"""The sandbox provider: accepts every channel's messages and keeps them in memory, for the demo,
the tests and the benchmark; the console's ``/sandbox`` page shows what it "sent".

It can be told to misbehave, for demos and fault tests: ``fail_next(result, n)`` answers the next
sends with a given result, and the settings add latency and a share of answers that are refused
(a 503), throttled (a 429 with ``Retry-After``) or ambiguous (a time-out after the hand-over),
e.g. ``sandbox://?latency_ms=80&error_rate=0.1&throttle_rate=0.05&timeout_rate=0.01``."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, Field, model_validator

from trato.core.channels import CHANNELS
from trato.core.clock import utcnow
from trato.core.ids import new_id
from trato.delivery.channels.base import (
    ChannelAdapter, Limits, OutgoingMessage, ProviderResult, explicit_settings,
)


class SandboxSettings(BaseModel):
    keep: int = Field(1000, ge=1, le=1_000_000, description="how many sent messages are kept, newest first")
    latency_ms: float = Field(0.0, ge=0, le=60_000, description="time each send takes")
    error_rate: float = Field(0.0, ge=0, le=1, description="share of sends refused as a 503")
    throttle_rate: float = Field(0.0, ge=0, le=1, description="share of sends refused as a 429 with Retry-After")
    timeout_rate: float = Field(0.0, ge=0, le=1, description="share of sends that time out after the hand-over")
    retry_after: float = Field(1.0, ge=0, le=3600, description="seconds a throttled send is asked to wait")
    seed: int | None = Field(None, description="the random draws repeat for the same seed")

    @model_validator(mode="after")
    def _shares(self) -> SandboxSettings:
        if self.error_rate + self.throttle_rate + self.timeout_rate > 1:
            raise ValueError("error_rate + throttle_rate + timeout_rate must not exceed 1")
        return self


@dataclass(frozen=True)
class SentRecord:
    provider_message_id: str
    message: OutgoingMessage
    at: datetime


class Sandbox(ChannelAdapter):
    """Every channel; accepts and records. ``fail_next(outcome, n)`` makes the next sends misbehave."""

    name: ClassVar[str] = "sandbox"
    channels: ClassVar[tuple[str, ...]] = CHANNELS
    capabilities: ClassVar[frozenset[str]] = frozenset({"records", "fault_injection"})
    limits: ClassVar[Limits] = Limits()
    settings_model: ClassVar[type[BaseModel]] = SandboxSettings

    url_schemes: ClassVar[tuple[str, ...]] = ("sandbox",)

    def __init__(self, settings: BaseModel | None = None, *, instance: str | None = None) -> None:
        super().__init__(settings, instance=instance)
        keep = self.settings.keep if isinstance(self.settings, SandboxSettings) else 1000
        self.sent: deque[SentRecord] = deque(maxlen=keep)
        self._faults: deque[ProviderResult] = deque()
        self._lock = threading.Lock()
        seed = self.settings.seed if isinstance(self.settings, SandboxSettings) else None
        self._random = random.Random(seed)

    @classmethod
    def settings_from_url(cls, url: str) -> BaseModel:
        """``sandbox://``, ``sandbox://?keep=5000``, or with misbehaviour: ``latency_ms``,
        ``error_rate``, ``throttle_rate``, ``timeout_rate``, ``retry_after``, ``seed``."""
        parsed = urlsplit(url)
        query = dict(parse_qsl(parsed.query))
        unknown = set(query) - set(SandboxSettings.model_fields)
        if parsed.scheme not in cls.url_schemes or unknown or parsed.netloc or parsed.path not in ("", "/"):
            options = ", ".join(SandboxSettings.model_fields)
            raise ValueError(f"write the sandbox as sandbox:// or sandbox://?OPTION=VALUE with options {options} "
                             f"(not {sorted(unknown) or url!r})")
        return explicit_settings(SandboxSettings, query)

    def fail_next(self, result: ProviderResult, times: int = 1) -> None:
        """The next ``times`` sends answer ``result`` (refused or ambiguous) instead of accepting."""
        with self._lock:
            self._faults.extend([result] * times)

    def send(self, message: OutgoingMessage) -> ProviderResult:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
        settings = self.settings if isinstance(self.settings, SandboxSettings) else SandboxSettings()
        if settings.latency_ms:
            time.sleep(settings.latency_ms / 1000)
        with self._lock:
            draw = self._random.random()
            if draw < settings.error_rate:
                return ProviderResult.refused("sandbox: 503 service unavailable (error_rate)")
            draw -= settings.error_rate
            if draw < settings.throttle_rate:
                return ProviderResult.refused("sandbox: 429 too many requests (throttle_rate)",
                                              retry_after=settings.retry_after)
            draw -= settings.throttle_rate
            if draw < settings.timeout_rate:
                return ProviderResult.ambiguous("sandbox: no answer after the message was handed over (timeout_rate)")
            provider_id = new_id("sbx")
            self.sent.append(SentRecord(provider_id, message, utcnow()))
        return ProviderResult.accepted(provider_id)

    def recent(self, *, channel: str | None = None, limit: int = 100) -> list[SentRecord]:
        """What it "sent", newest first (of ``channel`` when given)."""
        with self._lock:
            records = [r for r in reversed(self.sent) if channel is None or r.message.channel == channel]
        return records[:limit]

    def find(self, message_id: str) -> list[SentRecord]:
        """What was sent for one delivery message (more than one would be a duplicate)."""
        with self._lock:
            return [r for r in self.sent if r.message.message_id == message_id]
