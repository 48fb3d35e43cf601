"""Provider callbacks: ``/hooks/{provider}/…``, where ``{provider}`` is the configured provider's
name (so two accounts of one adapter are told apart and each is verified with its own secret).

Each provider's module verifies its signature scheme first (a forged or unsigned callback gets
401/403 and a log line, nothing else), then hands statuses to ``feedback.apply_status`` and
customers' messages to ``feedback.receive_inbound``. Providers retry a callback that fails, so
every handler is idempotent and answers 2xx once the change is committed.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/hooks", tags=["provider callbacks"])
