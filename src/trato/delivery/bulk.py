"""Bulk delivery for campaigns: many already queued messages handed to their adapters in one loop,
with the same states and events as :func:`trato.delivery.service.deliver` — claimed (``sending``,
committed) before any provider call, then recorded in one unit of work: accepted; a clear refusal
retried by the ordinary ``deliver`` task; failed or dead; ambiguous → ``possibly_sent`` (never
resent automatically). Each message goes through the channel's providers exactly as a single
send does (failover order, circuits, rate limits: ``service.send_through``) and is recorded under
the provider that answered, so its status callbacks find it. Statements are issued per batch, not
per message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from trato.archive import service as archive
from trato.content import service as content
from trato.core.clock import iso, utcnow
from trato.core.db import new_session, on_commit, unit_of_work
from trato.core.errors import ConfigurationError
from trato.customers import service as customers
from trato.customers import writes
from trato.delivery.channels import registry
from trato.delivery.channels.base import OutgoingMessage, ProviderResult
from trato.delivery.models import Message, MessageEvent
from trato.delivery.service import MAX_ATTEMPTS, retry_delay, send_through
from trato.policy import service as policy

MESSAGES = Message.__table__
EVENTS = MessageEvent.__table__
# What claiming and recording read of a message (not its data, decision or requested channels:
# JSON that would be parsed for every message of a chunk and never used here).
_WORKING = [MESSAGES.c[name] for name in (
    "id", "state", "updated_at", "not_before", "attempts", "archive_entry_id", "purpose", "topic", "channel",
    "recipient", "customer_id", "language", "communication_id", "reservation_id", "provider", "provider_message_id",
    "last_error")]


_ACCEPTED = ("UPDATE delivery_messages SET state = 'accepted', provider = :provider, provider_message_id = :pid, "
             "accepted_at = :at, last_error = NULL, updated_at = :at WHERE id = :id")


def insert_queued(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert messages that a bulk send has decided, rendered and archived, with their ``decided``
    and ``queued`` events. Message ids are the caller's (unique keys). A row the caller hands over
    already claimed (state ``sending``, attempt 1: it goes to the adapters right after this unit of
    work commits, see :func:`deliver_many`'s ``claimed``) gets its ``sending`` event too."""
    conn = session.connection()
    writes.insert_many(conn, MESSAGES, rows)
    events = []
    for row in rows:
        events.append({"message_id": row["id"], "state": "decided", "at": row["created_at"],
                       "details": {"outcome": "send", "channel": row["channel"]}})
        events.append({"message_id": row["id"], "state": "queued", "at": row["created_at"],
                       "details": {"channel": row["channel"], "archive_entry_id": row["archive_entry_id"]}})
        if row["state"] == "sending":
            events.append({"message_id": row["id"], "state": "sending", "at": row["updated_at"],
                           "details": {"attempt": row["attempts"]}})
    writes.insert_many(conn, EVENTS, events)


def timeline_rows(rows: Sequence[Mapping[str, Any]], keys: Mapping[str, str], at: datetime) -> list[dict[str, Any]]:
    """The ``message_sent`` timeline entries of messages in their current state (as delivery writes them)."""
    return [{
        "customer_id": r["customer_id"], "origin_customer_id": r["customer_id"], "source_id": "delivery",
        "message_id": f"{r['id']}:{r['state']}", "kind": "message_sent", "name": keys[r["communication_id"]],
        "channel": r["channel"], "department": None, "occurred_at": at, "received_at": at,
        "properties": {"message_id": r["id"], "state": r["state"], "channel": r["channel"],
                       "provider_message_id": r.get("provider_message_id"), "error": r.get("last_error")},
        "context": {}, "revenue_cents": None, "currency": None,
    } for r in rows]


def _keys(session: Session, communication_ids: set[str]) -> dict[str, str]:
    return {cid: content.get_communication(session, cid).key for cid in communication_ids}


def deliver_many(message_ids: Sequence[str], *, parts: Mapping[str, Mapping[str, str | bytes]] | None = None,
                 stale: timedelta | None = None,
                 then: Callable[[Session, dict[str, str]], None] | None = None,
                 claimed: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, str]:
    """Hand these messages to their adapters; returns each message's state afterwards.

    Only queued or retrying messages are sent. ``parts``: the rendered parts by message id (else
    read back from the archive). A message found ``sending`` was being sent by a worker that
    stopped: with ``stale`` (how old its state must be) it becomes ``possibly_sent``. ``claimed``: the
    rows, by id, of messages the caller inserted already claimed (``sending``, attempt 1) in a unit of
    work that has committed: they are sent as they are, with no claim and nothing read back. Claiming
    them when they are written leaves the same window as claiming them here (a worker stopped after
    that commit and before the provider call leaves them ``sending``, possibly sent, never resent),
    and saves a statement and a commit a batch. ``then`` is called with the states in the unit of work
    that records the providers' answers (what follows the messages, e.g. a campaign's recipients,
    commits with them).
    """
    taken, states = _claim(message_ids, parts or {}, stale, claimed)
    results: list[tuple[OutgoingMessage, int, str, ProviderResult]] = []
    chains: dict[str, list[registry.Configured]] = {}
    for outgoing, attempt in taken:
        # The same providers, failover order, circuits and rate limits as a single send.
        try:
            providers = chains.get(outgoing.channel) or registry.chain(outgoing.channel)
            chains[outgoing.channel] = providers
        except ConfigurationError as exc:
            results.append((outgoing, attempt, "none", ProviderResult.refused(exc.message)))
            continue
        provider, result = send_through(providers, outgoing, set())[-1]
        results.append((outgoing, attempt, provider, result))
    if results:
        states.update(_record(results, then=None if then is None else
                              lambda session, recorded: then(session, {**states, **recorded})))
    elif then is not None and states:
        with unit_of_work() as session:
            then(session, states)
    return states


def _claim(message_ids: Sequence[str], parts: Mapping[str, Mapping[str, str | bytes]],
           stale: timedelta | None, claimed_already: Mapping[str, Mapping[str, Any]] | None = None,
           ) -> tuple[list[tuple[OutgoingMessage, int]], dict[str, str]]:
    claimed: list[tuple[OutgoingMessage, int]] = []
    states: dict[str, str] = {}
    mine = {mid: claimed_already[mid] for mid in message_ids if mid in claimed_already} if claimed_already else {}
    ids = [mid for mid in message_ids if mid not in mine]
    # All claimed when written (a campaign's chunk): nothing to lock or change, only keys to read.
    with unit_of_work() if ids else new_session(readonly=True) as session:
        now = utcnow()
        rows = session.execute(select(*_WORKING).where(MESSAGES.c.id.in_(ids)).with_for_update()
                               ).mappings().all() if ids else []
        keys = _keys(session, {r["communication_id"] for r in rows} | {r["communication_id"] for r in mine.values()})
        moves, events, lost = [], [], []
        for mid, r in mine.items():
            found = parts.get(mid) or archive.content_of(session, r["archive_entry_id"])
            claimed.append((_outgoing(r, found, keys), r["attempts"]))
            states[mid] = "sending"
        for r in rows:
            states[r["id"]] = r["state"]
            if r["state"] == "sending" and stale is not None and r["updated_at"] <= now - stale:
                lost.append(r)
                continue
            if r["state"] not in ("queued", "retrying"):
                continue
            if r["state"] == "retrying" and r["not_before"] is not None and r["not_before"] > now:
                continue  # its retry is not due: the deliver task scheduled for it sends it
            found = parts.get(r["id"]) or archive.content_of(session, r["archive_entry_id"])
            attempt = r["attempts"] + 1
            moves.append({"b_id": r["id"], "b_state": "sending", "b_at": now, "b_attempts": attempt})
            events.append({"message_id": r["id"], "state": "sending", "at": now, "details": {"attempt": attempt}})
            claimed.append((_outgoing(r, found, keys), attempt))
            states[r["id"]] = "sending"
        if moves:
            session.connection().execute(
                update(MESSAGES).where(MESSAGES.c.id == bindparam("b_id")).values(
                    state=bindparam("b_state"), updated_at=bindparam("b_at"), attempts=bindparam("b_attempts")),
                moves)
        if events:
            session.execute(EVENTS.insert(), events)
        if lost:
            _possibly_sent(session, [dict(r) for r in lost], keys, "the worker stopped while the provider was being called")
            states.update({r["id"]: "possibly_sent" for r in lost})
    return claimed, states


def _outgoing(r: Mapping[str, Any], parts: Mapping[str, str | bytes], keys: Mapping[str, str]) -> OutgoingMessage:
    transactional = r["purpose"] == "transactional"
    return OutgoingMessage(
        message_id=r["id"], channel=r["channel"], recipient=r["recipient"], parts=dict(parts),
        customer_id=r["customer_id"], language=r["language"] or "es", transactional=transactional,
        unsubscribe_url=None if transactional else policy.unsubscribe_url(
            r["customer_id"], r["purpose"], r["topic"] or None, r["channel"], message_id=r["id"]),
        metadata={"communication": keys[r["communication_id"]]},
    )


def _possibly_sent(session: Session, rows: list[dict[str, Any]], keys: Mapping[str, str], error: str) -> None:
    # Counted as sent for the caps (the customer may have it); a person resolves it, never a retry.
    now = utcnow()
    for r in rows:
        r.update(state="possibly_sent", last_error=error)
    session.connection().execute(
        update(MESSAGES).where(MESSAGES.c.id == bindparam("b_id")).values(
            state="possibly_sent", updated_at=now, last_error=error), [{"b_id": r["id"]} for r in rows])
    session.execute(EVENTS.insert(), [{"message_id": r["id"], "state": "possibly_sent", "at": now,
                                       "details": {"error": error}} for r in rows])
    archive.record_statuses(session, [{"message_id": r["id"], "status": "possibly_sent", "at": now,
                                       "details": {"error": error}} for r in rows])
    _count_as_sent(session, rows, keys, now)
    customers.record_events(session, rows=timeline_rows(rows, keys, now))


def _count_as_sent(session: Session, rows: list[dict[str, Any]], keys: Mapping[str, str], now: datetime) -> None:
    reserved = [r["reservation_id"] for r in rows if r["reservation_id"] is not None]
    policy.confirm_many(session, reservation_ids=reserved)
    for r in rows:
        if r["reservation_id"] is None:
            policy.record_contact(session, customer_id=r["customer_id"], channel=r["channel"] or "",
                                  purpose=r["purpose"], communication=keys[r["communication_id"]],
                                  topic=r["topic"] or None, sent_at=now, message_id=r["id"])


def _record(results: list[tuple[OutgoingMessage, int, str, ProviderResult]],
            then: Callable[[Session, dict[str, str]], None] | None = None) -> dict[str, str]:
    if not results:
        return {}
    by_id = {outgoing.message_id: (attempt, provider, result) for outgoing, attempt, provider, result in results}
    states: dict[str, str] = {}
    retries: list[tuple[str, datetime]] = []
    with unit_of_work() as session:
        now = utcnow()
        rows = [dict(r) for r in session.execute(
            select(*_WORKING).where(MESSAGES.c.id.in_(list(by_id))).with_for_update()).mappings()]
        keys = _keys(session, {r["communication_id"] for r in rows})
        accepted, ambiguous, finished, retrying = [], [], [], []
        for r in rows:
            attempt, provider, result = by_id[r["id"]]
            if r["state"] != "sending" or r["attempts"] != attempt:
                states[r["id"]] = r["state"]
                continue
            r["provider"] = provider
            if result.outcome == "accepted":
                r.update(state="accepted", provider_message_id=result.provider_message_id, accepted_at=now,
                         last_error=None)
                accepted.append(r)
            elif result.outcome == "ambiguous":
                ambiguous.append((r, result.error or "the provider's answer was ambiguous"))
                r["state"] = "possibly_sent"
            elif result.permanent or r["attempts"] >= MAX_ATTEMPTS:
                r.update(state="failed" if result.permanent else "dead", last_error=result.error)
                finished.append(r)
            else:
                r.update(state="retrying", last_error=result.error,
                         not_before=now + timedelta(seconds=retry_delay(r["attempts"], retry_after=result.retry_after)))
                retrying.append(r)
            states[r["id"]] = r["state"]
        conn = session.connection()
        if accepted:
            at = writes.moment(conn.dialect.name, now)
            writes.execute_many(conn, writes.driver_sql(conn.dialect.name, _ACCEPTED), [
                {"id": r["id"], "provider": r["provider"], "pid": r["provider_message_id"], "at": at} for r in accepted])
            writes.insert_many(conn, EVENTS, [{"message_id": r["id"], "state": "accepted", "at": now, "details": {
                "provider": r["provider"], "provider_message_id": r["provider_message_id"]}} for r in accepted])
            archive.record_statuses(session, [{"message_id": r["id"], "entry_id": r["archive_entry_id"],
                                               "status": "accepted", "at": now,
                                               "provider_id": r["provider_message_id"]} for r in accepted])
            _count_as_sent(session, accepted, keys, now)
        for r, _error in ambiguous:
            conn.execute(update(MESSAGES).where(MESSAGES.c.id == r["id"]).values(provider=r["provider"]))
        for r, error in ambiguous:
            _possibly_sent(session, [r], keys, error)
        if finished:
            conn.execute(update(MESSAGES).where(MESSAGES.c.id == bindparam("b_id")).values(
                state=bindparam("b_state"), provider=bindparam("b_provider"), last_error=bindparam("b_error"),
                updated_at=now), [{"b_id": r["id"], "b_state": r["state"], "b_provider": r["provider"],
                                   "b_error": r["last_error"]} for r in finished])
            session.execute(EVENTS.insert(), [{"message_id": r["id"], "state": r["state"], "at": now, "details": {
                "error": r["last_error"], "provider": r["provider"], "attempt": r["attempts"]}} for r in finished])
            archive.record_statuses(session, [{"message_id": r["id"], "status": "failed", "at": now,
                                               "details": {"error": r["last_error"]}} for r in finished])
            policy.release_many(session, reservation_ids=[r["reservation_id"] for r in finished
                                                          if r["reservation_id"] is not None])
        if retrying:
            conn.execute(update(MESSAGES).where(MESSAGES.c.id == bindparam("b_id")).values(
                state="retrying", provider=bindparam("b_provider"), last_error=bindparam("b_error"),
                not_before=bindparam("b_nb"), updated_at=now),
                [{"b_id": r["id"], "b_provider": r["provider"], "b_error": r["last_error"], "b_nb": r["not_before"]}
                 for r in retrying])
            session.execute(EVENTS.insert(), [{"message_id": r["id"], "state": "retrying", "at": now, "details": {
                "error": r["last_error"], "provider": r["provider"], "attempt": r["attempts"],
                "retry_at": iso(r["not_before"])}} for r in retrying])
            retries = [(r["id"], r["not_before"]) for r in retrying]
        shown = accepted + finished
        if shown:
            customers.record_events(session, rows=timeline_rows(shown, keys, now))
        if retries:
            from trato.delivery import tasks

            on_commit(session, lambda: [tasks.enqueue("deliver", mid, eta) for mid, eta in retries])
        if then is not None:
            then(session, states)
    return states
