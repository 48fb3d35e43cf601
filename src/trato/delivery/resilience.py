"""Per-provider health shared by every worker: a circuit breaker and a token-bucket rate limit.

- **Circuit breaker**: after ``TRATO_CIRCUIT_FAILURES`` clear refusals in a row (connection refused,
  5xx, 429 — not a permanent refusal of one recipient, which shows the provider working) the
  provider's circuit opens: sends to it count as refused without calling it, so delivery fails over
  at once. After ``TRATO_CIRCUIT_COOLDOWN_SECONDS`` it is half-open: one send goes through as a
  probe (its lease expires after another cool-down, should its worker die); success closes the
  circuit, a refusal opens it again.
- **Rate limit**: a token bucket per provider, ``max_per_second`` tokens a second and as many in
  the bucket (a second's burst). :meth:`Health.take` returns 0 when a token was taken, else the
  seconds until one will be there.

Where the state lives: in Redis when ``TRATO_REDIS_URL`` is set (Lua scripts, so every check and
update is one atomic step, timed by Redis's clock so workers on several machines agree) — the
scale-out deployment, where several ``trato worker`` processes share providers. Without Redis the
state is in this process: the embedded default runs its workers as threads of one ``trato serve``,
so one process holds every sender. (Several processes without Redis each keep their own state: a
rate limit is then per process. Keeping it in the database instead would add a write per message
to the one SQLite writer that every send already waits for.)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol


@dataclass(frozen=True)
class CircuitState:
    state: str  # closed | open | half_open
    failures: int
    retry_in: float  # seconds until a send may go through (0 when it may now)

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "failures": self.failures, "retry_in": round(self.retry_in, 3)}


class Health(Protocol):
    def allow(self, name: str, *, now: float | None = None) -> tuple[bool, float]:
        """May a send go to ``name`` now? (False, seconds to wait) while its circuit is open or a
        probe is out; a half-open circuit lets exactly one caller through."""

    def is_open(self, name: str, *, now: float | None = None) -> bool:
        """True while sends to ``name`` would be refused (without taking the probe)."""

    def succeeded(self, name: str) -> None:
        """The provider answered (accepted, or refused one recipient for good): the circuit closes."""

    def refused(self, name: str, *, now: float | None = None) -> None:
        """A clear refusal: one more in a row; the circuit opens at the threshold or after a failed probe."""

    def unsure(self, name: str, *, now: float | None = None) -> None:
        """An ambiguous answer: a probe that got one opens the circuit again; otherwise nothing changes."""

    def state(self, name: str, *, now: float | None = None) -> CircuitState:
        """Where the circuit of ``name`` stands, for pages and the API."""

    def take(self, name: str, rate: float, *, now: float | None = None) -> float:
        """Take a token from ``name``'s bucket (``rate`` a second): 0 if taken, else seconds to wait."""

    def reset(self) -> None:
        """Forget every circuit and bucket (tests)."""


class LocalHealth:
    """The state in this process (the embedded single-process default)."""

    def __init__(self, *, failures: int, cooldown: float) -> None:
        self.threshold, self.cooldown = failures, cooldown
        self.clock = time.monotonic  # tests move it
        self._lock = threading.Lock()
        self._circuits: dict[str, list[float]] = {}  # name → [failures, opened_until, probe_until]
        self._buckets: dict[str, tuple[float, float]] = {}  # name → (tokens, at)

    def _circuit(self, name: str) -> list[float]:
        return self._circuits.setdefault(name, [0, 0.0, 0.0])

    def allow(self, name: str, *, now: float | None = None) -> tuple[bool, float]:
        now = self.clock() if now is None else now
        with self._lock:
            circuit = self._circuit(name)
            _, opened_until, probe_until = circuit
            if not opened_until:
                return True, 0.0
            if now < opened_until:
                return False, opened_until - now
            if now < probe_until:
                return False, probe_until - now
            circuit[2] = now + self.cooldown  # this caller is the probe
            return True, 0.0

    def is_open(self, name: str, *, now: float | None = None) -> bool:
        return self.state(name, now=now).retry_in > 0

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._circuits.pop(name, None)

    def refused(self, name: str, *, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        with self._lock:
            circuit = self._circuit(name)
            circuit[0] += 1
            if circuit[1] or circuit[0] >= self.threshold:
                circuit[1], circuit[2] = now + self.cooldown, 0.0

    def unsure(self, name: str, *, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        with self._lock:
            circuit = self._circuit(name)
            if circuit[1]:
                circuit[1], circuit[2] = now + self.cooldown, 0.0

    def state(self, name: str, *, now: float | None = None) -> CircuitState:
        now = self.clock() if now is None else now
        with self._lock:
            failures, opened_until, probe_until = self._circuits.get(name, [0, 0.0, 0.0])
        return _state(int(failures), opened_until, probe_until, now)

    def take(self, name: str, rate: float, *, now: float | None = None) -> float:
        now = self.clock() if now is None else now
        burst = max(1.0, rate)
        with self._lock:
            tokens, at = self._buckets.get(name, (burst, now))
            tokens = min(burst, tokens + max(0.0, now - at) * rate)
            if tokens >= 1:
                self._buckets[name] = (tokens - 1, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1 - tokens) / rate

    def reset(self) -> None:
        with self._lock:
            self._circuits.clear()
            self._buckets.clear()


def _state(failures: int, opened_until: float, probe_until: float, now: float) -> CircuitState:
    if not opened_until:
        return CircuitState("closed", failures, 0.0)
    if now < opened_until:
        return CircuitState("open", failures, opened_until - now)
    return CircuitState("half_open", failures, max(0.0, probe_until - now))


# Each script reads the time from Redis (one clock for every worker) unless the caller gives it.
_NOW = """
local now = tonumber(ARGV[1])
if now == nil or now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""
_ALLOW = _NOW + """
local c = redis.call('HMGET', KEYS[1], 'opened_until', 'probe_until')
local opened_until = tonumber(c[1]) or 0
local probe_until = tonumber(c[2]) or 0
if opened_until == 0 then return {1, '0'} end
if now < opened_until then return {0, tostring(opened_until - now)} end
if now < probe_until then return {0, tostring(probe_until - now)} end
redis.call('HSET', KEYS[1], 'probe_until', tostring(now + tonumber(ARGV[2])))
return {1, '0'}
"""
_REFUSED = _NOW + """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local opened_until = tonumber(redis.call('HGET', KEYS[1], 'opened_until')) or 0
if opened_until > 0 or failures >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'opened_until', tostring(now + tonumber(ARGV[2])), 'probe_until', '0')
end
redis.call('EXPIRE', KEYS[1], 86400)
return failures
"""
_UNSURE = _NOW + """
local opened_until = tonumber(redis.call('HGET', KEYS[1], 'opened_until')) or 0
if opened_until > 0 then
  redis.call('HSET', KEYS[1], 'opened_until', tostring(now + tonumber(ARGV[2])), 'probe_until', '0')
end
return 0
"""
_STATE = _NOW + """
local c = redis.call('HMGET', KEYS[1], 'failures', 'opened_until', 'probe_until')
return {tonumber(c[1]) or 0, c[2] or '0', c[3] or '0', tostring(now)}
"""
_TAKE = _NOW + """
local rate = tonumber(ARGV[2])
local burst = math.max(1, rate)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisHealth:
    """The state in Redis, shared by every worker process (see the module's docstring)."""

    def __init__(self, url: str, *, prefix: str, failures: int, cooldown: float) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.prefix, self.threshold, self.cooldown = prefix, failures, cooldown
        self._allow = self.client.register_script(_ALLOW)
        self._refused = self.client.register_script(_REFUSED)
        self._unsure = self.client.register_script(_UNSURE)
        self._state = self.client.register_script(_STATE)
        self._take = self.client.register_script(_TAKE)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:{kind}:{name}"

    @staticmethod
    def _now(now: float | None) -> str:
        return "-1" if now is None else repr(now)

    def allow(self, name: str, *, now: float | None = None) -> tuple[bool, float]:
        allowed, wait = self._allow(keys=[self._key("circuit", name)], args=[self._now(now), self.cooldown])
        return bool(allowed), float(wait)

    def is_open(self, name: str, *, now: float | None = None) -> bool:
        return self.state(name, now=now).retry_in > 0

    def succeeded(self, name: str) -> None:
        self.client.delete(self._key("circuit", name))

    def refused(self, name: str, *, now: float | None = None) -> None:
        self._refused(keys=[self._key("circuit", name)], args=[self._now(now), self.cooldown, self.threshold])

    def unsure(self, name: str, *, now: float | None = None) -> None:
        self._unsure(keys=[self._key("circuit", name)], args=[self._now(now), self.cooldown])

    def state(self, name: str, *, now: float | None = None) -> CircuitState:
        failures, opened_until, probe_until, at = self._state(keys=[self._key("circuit", name)],
                                                              args=[self._now(now)])
        return _state(int(failures), float(opened_until), float(probe_until), float(at))

    def take(self, name: str, rate: float, *, now: float | None = None) -> float:
        return float(self._take(keys=[self._key("bucket", name)], args=[self._now(now), rate]))

    def reset(self) -> None:
        keys = list(self.client.scan_iter(match=f"{self.prefix}:*"))
        if keys:
            self.client.delete(*keys)


@lru_cache(maxsize=1)
def health() -> Health:
    """This process's view of providers' health: Redis when configured, else in-process."""
    from trato.core.settings import get_settings

    settings = get_settings()
    if settings.redis_url:
        return RedisHealth(settings.redis_url, prefix=f"{settings.queue_name}:providers",
                           failures=settings.circuit_failures, cooldown=settings.circuit_cooldown_seconds)
    return LocalHealth(failures=settings.circuit_failures, cooldown=settings.circuit_cooldown_seconds)
