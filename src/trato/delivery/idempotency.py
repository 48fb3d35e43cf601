"""``Idempotency-Key`` with the semantics of payment APIs, per client (principal):

- the same key and body: the first response again (the API adds ``Idempotent-Replayed: true``);
- the same key with another body: 422 ``idempotency_key_reused``;
- the first request still being handled: 409 ``idempotency_key_in_flight``.

The key is claimed in a short transaction of its own, so a second request sees it at once; the
response is stored in the same transaction as the work. A request that fails gives its key back
(nothing was done, so a retry is safe); a claim left by a crashed process expires.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from trato.core.clock import utcnow
from trato.core.db import insert_for, unit_of_work
from trato.delivery.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from trato.delivery.models import IdempotencyKey

STALE_CLAIM = timedelta(minutes=5)


@dataclass(frozen=True)
class Replay:
    status_code: int
    response: dict[str, Any]


def request_hash(body: Any) -> str:
    """The same JSON, whatever its key order or spacing, hashes the same."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def claim(*, principal: str, key: str, body_sha256: str) -> Replay | None:
    """Claim ``key`` for a new request (None), or the stored response to replay."""
    with unit_of_work() as session:
        now = utcnow()
        inserted = session.execute(insert_for(session)(IdempotencyKey).values(
            principal=principal, key=key, request_sha256=body_sha256, locked_at=now, created_at=now,
        ).on_conflict_do_nothing(index_elements=["principal", "key"]).returning(IdempotencyKey.key)).scalar()
        if inserted is not None:
            return None
        row = session.get(IdempotencyKey, (principal, key), with_for_update=True)
        assert row is not None
        if row.request_sha256 != body_sha256:
            raise IdempotencyKeyReused("this Idempotency-Key was used with another request body",
                                       details={"idempotency_key": key})
        if row.status_code is not None and row.response is not None:
            return Replay(row.status_code, row.response)
        if row.locked_at > now - STALE_CLAIM:
            raise IdempotencyKeyInFlight("a request with this Idempotency-Key is still being handled; retry later",
                                         details={"idempotency_key": key})
        row.locked_at = now  # its first request died: this one takes the key over
        return None


def complete(session: Session, *, principal: str, key: str, status_code: int, response: dict[str, Any],
             message_id: str | None) -> None:
    """Store the response in the caller's unit of work (the one that did the work)."""
    row = session.get(IdempotencyKey, (principal, key))
    assert row is not None
    row.status_code, row.response, row.message_id = status_code, response, message_id


def release(*, principal: str, key: str) -> None:
    """The request failed and did nothing: the key may be used again."""
    with unit_of_work() as session:
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.principal == principal, IdempotencyKey.key == key,
                                                     IdempotencyKey.status_code.is_(None)))


def remove_expired(session: Session, *, older_than: timedelta, now: datetime | None = None,
                   batch: int = 5000) -> int:
    """Forget keys first used more than ``older_than`` ago (a client retrying after that sends a new
    message): at most ``batch`` in the caller's transaction; the number removed."""
    cutoff = (now or utcnow()) - older_than
    old = select(IdempotencyKey.principal, IdempotencyKey.key).where(IdempotencyKey.created_at < cutoff).limit(batch)
    rows = session.execute(old).all()
    for principal, key in rows:
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.principal == principal, IdempotencyKey.key == key))
    return len(rows)
