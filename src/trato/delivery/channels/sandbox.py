"""The sandbox provider: accepts every channel's messages and keeps them in memory, for the demo,
the tests and the benchmark. It can be told to misbehave (refuse, time out) for fault tests."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, Field

from trato.core.channels import CHANNELS
from trato.core.clock import utcnow
from trato.core.ids import new_id
from trato.delivery.channels.base import (
    ChannelAdapter, Limits, OutgoingMessage, ProviderResult, explicit_settings,
)


class SandboxSettings(BaseModel):
    keep: int = Field(1000, ge=1, description="how many sent messages are kept, newest first")


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

    @classmethod
    def settings_from_url(cls, url: str) -> BaseModel:
        """``sandbox://`` or ``sandbox://?keep=5000``."""
        parsed = urlsplit(url)
        query = dict(parse_qsl(parsed.query))
        unknown = set(query) - {"keep"}
        if parsed.scheme not in cls.url_schemes or unknown or parsed.netloc or parsed.path not in ("", "/"):
            raise ValueError(f"write the sandbox as sandbox:// or sandbox://?keep=N (not {sorted(unknown) or url!r})")
        return explicit_settings(SandboxSettings, query)

    def fail_next(self, result: ProviderResult, times: int = 1) -> None:
        """The next ``times`` sends answer ``result`` (refused or ambiguous) instead of accepting."""
        with self._lock:
            self._faults.extend([result] * times)

    def send(self, message: OutgoingMessage) -> ProviderResult:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            provider_id = new_id("sbx")
            self.sent.append(SentRecord(provider_id, message, utcnow()))
        return ProviderResult.accepted(provider_id)

    def find(self, message_id: str) -> list[SentRecord]:
        """What was sent for one delivery message (more than one would be a duplicate)."""
        with self._lock:
            return [r for r in self.sent if r.message.message_id == message_id]
