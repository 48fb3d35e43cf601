"""What every adapter that talks to a provider's HTTP API shares: one pooled client per adapter,
and the one classification of the provider's answer (see ``base``):

- no connection, or a connect timeout: nothing was handed over → ``refused`` (retry, fail over);
- an answer: 2xx → the caller reads the provider's id; 429 and 5xx → ``refused`` honouring
  ``Retry-After``; 408 → ``refused``; any other 4xx → ``refused`` for good (``permanent``);
- the request went out and no answer came (read timeout, connection dropped) → ``ambiguous``:
  the provider may have taken it; never retried automatically.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from trato.delivery.channels.base import ProviderResult

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_RETRY_AFTER = 3600.0


class PooledClient:
    """A lazily made ``httpx.Client`` shared by the threads of one adapter (keep-alive pooling)."""

    def __init__(self, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT, max_connections: int = 10) -> None:
        self._timeout, self._max = timeout, max_connections
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self._timeout, follow_redirects=False,
                    limits=httpx.Limits(max_connections=self._max, max_keepalive_connections=self._max),
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def retry_after(response: httpx.Response, *, now: datetime | None = None) -> float | None:
    """Seconds asked for by ``Retry-After`` (delta-seconds or an HTTP date), bounded; None if absent."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def refusal(response: httpx.Response, detail: str) -> ProviderResult:
    """A non-2xx answer classified: 429/5xx/408 may be retried; other 4xx are final."""
    code = response.status_code
    error = f"HTTP {code}: {detail}"[:1000]
    if code == 429 or code >= 500 or code == 408:
        return ProviderResult.refused(error, retry_after=retry_after(response))
    return ProviderResult.refused(error, permanent=True)


def failure(exc: httpx.HTTPError, provider: str) -> ProviderResult:
    """An exception from the HTTP call classified by whether the request may have arrived."""
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
                        httpx.InvalidURL)):
        return ProviderResult.refused(f"{provider} unreachable: {type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.WriteError | httpx.WriteTimeout):
        # The request was not fully written: the provider cannot have acted on a partial request.
        return ProviderResult.refused(f"{provider}: the request could not be sent: {type(exc).__name__}")
    return ProviderResult.ambiguous(f"{provider} did not answer after the request was sent: {type(exc).__name__}: {exc}")
