"""Delivery's public face: ask for a message (:func:`send`), read it, and the queue's two steps —
a deferred message decided again when its time comes (:func:`release_deferred`) and one delivery
attempt (:func:`deliver`).

A send is one unit of work: the policy decides (booking the contact), the approved version is
rendered and archived, the message row, its events, the audit row and the timeline entry are
written, and the delivery task is enqueued only after commit. The message row is the truth:
every task re-reads it and does nothing when it finds the work done.
"""

from __future__ import annotations

import importlib
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trato.archive import service as archive
from trato.content import service as content
from trato.core import audit
from trato.core.channels import ADDRESS_KIND, OPTIONAL_ADDRESS_KIND
from trato.core.clock import iso, utcnow
from trato.core.db import new_session, on_commit, unit_of_work
from trato.core.errors import ConfigurationError, TratoError
from trato.core.ids import new_id
from trato.customers import service as customers
from trato.delivery import push_devices
from trato.delivery.channels import registry
from trato.delivery.channels.base import OutgoingMessage, ProviderResult
from trato.delivery.errors import InvalidSend, MessageNotFound, MessageStateConflict
from trato.delivery.models import STATES, Message, MessageEvent
from trato.delivery.resilience import health
from trato.policy import service as policy
from trato.policy.schemas import DecisionOut

# Where a message's template data lives when its row does not carry it: a campaign's million
# messages share the campaign's data (a catalogue, offers) instead of each keeping a copy. Keyed by
# the start of the message's ``created_by``; the modules named here register theirs on import.
DataSource = Callable[[Session, str], "dict[str, Any] | None"]
_data_sources: dict[str, DataSource] = {}
BUILT_IN_DATA_SOURCES = ("trato.campaigns.service",)
_data_sources_loaded = False


def provide_data(prefix: str) -> Callable[[DataSource], DataSource]:
    """Register ``fn(session, rest)`` as the data of messages created by ``prefix + rest`` that carry none."""
    def register(fn: DataSource) -> DataSource:
        _data_sources[prefix] = fn
        return fn
    return register


def data_of(session: Session, message: Message) -> dict[str, Any]:
    """The template data a message is rendered with: its own, else its creator's (see above)."""
    global _data_sources_loaded
    if message.data:
        return dict(message.data)
    if not _data_sources_loaded:
        for module in BUILT_IN_DATA_SOURCES:
            importlib.import_module(module)
        _data_sources_loaded = True
    creator = message.created_by or ""
    for prefix, source in _data_sources.items():
        if creator.startswith(prefix):
            return dict(source(session, creator[len(prefix):]) or {})
    return {}


MAX_ATTEMPTS = 5
BACKOFF_BASE = 2.0  # seconds before the first retry; doubled each attempt, with jitter
BACKOFF_CAP = 3600.0
# The identity kind that addresses each channel; the others are addressed by the customer id.
CUSTOMER_REFERENCES = ("id", "user_id", "email", "phone")


# -- asking for a message -------------------------------------------------------------------------


def resolve_customer(session: Session, *, kind: str, value: str) -> str:
    """The trato id of the customer a send names, by id or by one of their identities."""
    if kind not in CUSTOMER_REFERENCES:
        raise InvalidSend(f"a customer is named by one of {', '.join(CUSTOMER_REFERENCES)}")
    if kind == "id":
        return customers.get_customer(session, value).id
    return customers.lookup(session, kind=kind, value=value).id


def send(
    session: Session, *, actor: str, customer_id: str, communication: str, data: dict[str, Any] | None = None,
    channels: list[str] | None = None, purpose: str | None = None, topic: str | None = None,
    idempotency_key: str | None = None,
) -> Message:
    """Ask for one message to one customer: decided, rendered, archived and queued in the caller's
    unit of work (or deferred, or refused with the policy's reasons). Delivery starts after commit."""
    customer = customers.get_customer(session, customer_id)
    found = content.get_communication(session, communication)
    order = list(dict.fromkeys(channels or found.channels or []))
    if not order:
        raise InvalidSend(f"{found.key} has no channel to send on; give channels", code="no_channels")
    now = utcnow()
    message = Message(
        id=new_id("msg"), idempotency_key=idempotency_key, communication_id=found.id, customer_id=customer.id,
        purpose=purpose or found.purpose, topic=topic or "", data=dict(data or {}), requested_channels=order,
        state="decided", attempts=0, created_by=actor, created_at=now, updated_at=now,
    )
    session.add(message)
    session.flush()
    audit.record(session, actor=actor, action="delivery.send", object_type="message", object_id=message.id,
                 communication=found.key, customer_id=customer.id, channels=order)
    _decide(session, message, communication_key=found.key)
    return message


def _decide(session: Session, message: Message, *, communication_key: str) -> None:
    decision = policy.decide(session, customer_id=message.customer_id, communication=communication_key,
                             purpose=message.purpose, channels=message.requested_channels, topic=message.topic or None,
                             reserve=True)
    message.decision = DecisionOut.of(decision).model_dump(mode="json")
    message.channel = decision.channel
    _event(session, message, "decided", outcome=decision.outcome, channel=decision.channel)
    if decision.outcome == "refuse":
        reasons = ", ".join(f"{r.channel}: {r.code}" for r in decision.reasons)
        _transition(session, message, "refused", error=f"policy refused: {reasons}", reasons=decision.compact())
        _timeline(session, message, communication_key)
        return
    if decision.outcome == "defer":
        assert decision.until is not None
        message.not_before = decision.until
        _transition(session, message, "deferred", until=iso(decision.until), reasons=decision.compact())
        _timeline(session, message, communication_key)
        _after_commit(session, "release_deferred", message.id, decision.until)
        return
    assert decision.channel is not None
    message.reservation_id = decision.reservation_id
    message.recipient = _address(session, message.customer_id, decision.channel)
    rendered = content.render_for_send(session, communication_id=message.communication_id,
                                       customer_id=message.customer_id, channel=decision.channel,
                                       data=data_of(session, message))
    message.language = rendered.language
    entry = archive.record(
        session, customer_id=message.customer_id, communication_id=message.communication_id,
        version_id=rendered.version_id, channel=decision.channel, language=rendered.language,
        recipient=message.recipient, parts=rendered.parts, render_context=rendered.context,
        decision=message.decision, message_id=message.id,
    )
    message.archive_entry_id = entry.id
    _transition(session, message, "queued", channel=decision.channel, archive_entry_id=entry.id)
    _timeline(session, message, communication_key)
    _after_commit(session, "deliver", message.id, None)


def _address(session: Session, customer_id: str, channel: str) -> str:
    if channel == "push":  # a registered device or browser the configured adapter can reach
        try:
            platforms = getattr(registry.adapter_for(channel), "platforms", None)
        except ConfigurationError:
            platforms = None  # delivery reports the configuration when it tries
        return push_devices.recipient_for(session, customer_id=customer_id, platforms=platforms)
    kind = ADDRESS_KIND.get(channel) or OPTIONAL_ADDRESS_KIND.get(channel)
    if kind is None:
        return customer_id
    for identity in customers.identities_of(session, customer_id):
        if identity.kind == kind:
            return identity.value
    if channel in OPTIONAL_ADDRESS_KIND:
        return customer_id
    raise InvalidSend(f"the customer has no {kind} to send {channel} to", code="no_address",
                      details={"channel": channel})


def _after_commit(session: Session, task: str, message_id: str, eta: datetime | None) -> None:
    from trato.delivery import tasks  # the tasks module imports this one

    on_commit(session, lambda: tasks.enqueue(task, message_id, eta))


def _event(session: Session, message: Message, state: str, **details: Any) -> MessageEvent:
    event = MessageEvent(message_id=message.id, state=state, at=utcnow(),
                         details={k: v for k, v in details.items() if v is not None})
    session.add(event)
    return event


def _transition(session: Session, message: Message, state: str, *, error: str | None = None,
                **details: Any) -> None:
    message.state, message.updated_at = state, utcnow()
    if error is not None:
        message.last_error = error
    _event(session, message, state, error=error, **details)
    session.flush()


def _timeline(session: Session, message: Message, communication_key: str) -> None:
    # One entry per state that a person looking at the customer cares about; a repeat is a no-op.
    customers.record_event(
        session, customer_id=message.customer_id, kind="message_sent", name=communication_key,
        channel=message.channel, source_id="delivery", message_id=f"{message.id}:{message.state}",
        properties={"message_id": message.id, "state": message.state, "channel": message.channel,
                    "provider_message_id": message.provider_message_id, "error": message.last_error},
    )


# -- reading --------------------------------------------------------------------------------------


def get_message(session: Session, message_id: str) -> Message:
    """One message by id."""
    message = session.get(Message, message_id)
    if message is None:
        raise MessageNotFound(f"message {message_id} does not exist", details={"message_id": message_id})
    return message


def events_of(session: Session, message_id: str) -> list[MessageEvent]:
    """A message's state history, oldest first."""
    return list(session.scalars(select(MessageEvent).where(MessageEvent.message_id == message_id)
                                .order_by(MessageEvent.id)))


def list_messages(session: Session, *, state: str | None = None, customer_id: str | None = None,
                  limit: int = 100) -> list[Message]:
    """Messages newest first, e.g. the dead letters (``state="dead"``) or the possibly sent ones."""
    if state is not None and state not in STATES:
        raise InvalidSend(f"state must be one of {', '.join(STATES)}", code="invalid_state")
    query = select(Message).order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)
    if state is not None:
        query = query.where(Message.state == state)
    if customer_id is not None:
        query = query.where(Message.customer_id == customer_id)
    return list(session.scalars(query))


# -- what a person settles ------------------------------------------------------------------------


def requeue(session: Session, *, message_id: str, actor: str) -> Message:
    """Send a dead letter, or a possibly sent message, again — a person's decision, never automatic.

    The attempts count starts again; the archived content is the one sent.
    """
    message = session.get(Message, message_id, with_for_update=True) or get_message(session, message_id)
    if message.state not in ("dead", "possibly_sent"):
        raise MessageStateConflict(f"a message that is {message.state} cannot be queued again; only dead "
                                   "letters and possibly sent messages can", details={"state": message.state})
    previous = message.state
    message.attempts, message.not_before = 0, None
    _transition(session, message, "queued", requeued_by=actor, previous=previous)
    audit.record(session, actor=actor, action="delivery.requeue", object_type="message", object_id=message.id,
                 previous=previous)
    key = content.get_communication(session, message.communication_id).key
    _timeline(session, message, key)
    _after_commit(session, "deliver", message.id, None)
    return message


def resolve_as_sent(session: Session, *, message_id: str, actor: str, note: str = "") -> Message:
    """A person confirms that a possibly sent message did reach the provider (e.g. from its logs)."""
    message = session.get(Message, message_id, with_for_update=True) or get_message(session, message_id)
    if message.state != "possibly_sent":
        raise MessageStateConflict(f"only a possibly sent message can be resolved; this one is {message.state}",
                                   details={"state": message.state})
    now = utcnow()
    message.accepted_at = now
    _transition(session, message, "accepted", resolved_by=actor, note=note or None)
    archive.record_status(session, status="accepted", at=now, entry_id=message.archive_entry_id,
                          details={"resolved_by": actor})
    audit.record(session, actor=actor, action="delivery.resolve", object_type="message", object_id=message.id,
                 note=note)
    return message


# -- the queue's steps ------------------------------------------------------------------------------


def release_deferred(message_id: str) -> str:
    """A deferred message's time has come: the policy decides again (things may have changed)."""
    with unit_of_work() as session:
        message = session.get(Message, message_id, with_for_update=True)
        if message is None or message.state != "deferred":
            return message.state if message else "missing"
        _decide(session, message, communication_key=content.get_communication(session, message.communication_id).key)
        return message.state


def deliver(message_id: str) -> str:
    """One delivery attempt, safe to run twice: only a queued or retrying message is sent.

    The message is marked ``sending`` and committed before the provider is called, so a worker
    that dies during the call leaves ``sending`` behind; the next run of this task finds it and
    marks it ``possibly_sent`` instead of sending it again.

    The channel's providers are tried in their failover order (``registry.chain``) within the
    attempt, the next one only after a clear refusal that is not about the recipient (connection
    refused, 5xx, 429, an open circuit) — never after an ambiguous answer. The first provider's
    rate limit is waited for before the message is claimed: a spent limit puts the task back on
    the queue without counting an attempt.
    """
    try:
        planned = _plan(message_id)
    except ConfigurationError as exc:  # nothing was handed over: a clear refusal, retried later
        claimed = _claim(message_id)
        if isinstance(claimed, str):
            return claimed
        return _record(message_id, claimed[1], [("none", ProviderResult.refused(exc.message))])
    if planned == "sending":  # a worker died during the call: the claim settles it as possibly sent
        settled = _claim(message_id)
        assert isinstance(settled, str)
        return settled
    if isinstance(planned, str):
        return planned
    taken: set[str] = set()
    first = next((p for p in planned if p.origin == "test" or not health().is_open(p.name)), None)
    if first is not None and first.origin != "test" and first.rate:
        wait = _wait_for_token(first)
        if wait:
            return _postpone(message_id, wait)
        taken.add(first.name)
    claimed = _claim(message_id)
    if isinstance(claimed, str):
        return claimed
    outgoing, attempt = claimed
    return _record(message_id, attempt, send_through(planned, outgoing, taken))


def _plan(message_id: str) -> list[registry.Configured] | str:
    with new_session(readonly=True) as session:
        message = session.get(Message, message_id)
        if message is None:
            return "missing"
        if message.state not in ("queued", "retrying") or not message.channel:
            return message.state
        return registry.chain(message.channel, session=session)


def _wait_for_token(configured: registry.Configured) -> float:
    """Take a token of ``configured``'s rate limit, waiting for it a bounded time; the seconds still
    to wait when that bound is reached (0: taken)."""
    from trato.core.settings import get_settings

    bound, waited = get_settings().rate_limit_wait_seconds, 0.0
    assert configured.rate
    while True:
        wait = health().take(configured.name, configured.rate)
        if wait <= 0:
            return 0.0
        if waited + wait > bound:
            return wait
        time.sleep(wait)
        waited += wait


def _postpone(message_id: str, wait: float) -> str:
    # The provider's rate limit is spent: the task comes back when a token will be there. The
    # message keeps its state and attempts (this is not a failure); updated_at moves so the sweep
    # of lost tasks does not enqueue it a second time meanwhile.
    with unit_of_work() as session:
        message = session.get(Message, message_id, with_for_update=True)
        if message is None or message.state not in ("queued", "retrying"):
            return message.state if message else "missing"
        now = utcnow()
        message.updated_at = now
        message.not_before = now + timedelta(seconds=wait)
        _after_commit(session, "deliver", message.id, message.not_before)
        return message.state


Trail = list[tuple[str, ProviderResult]]


def send_through(providers: list[registry.Configured], outgoing: OutgoingMessage, taken: set[str]) -> Trail:
    """Hand the message to each provider in turn until one takes it, refuses it for good, or may have
    taken it; each answer moves the provider's circuit."""
    trail: Trail = []
    for configured in providers:
        guarded = configured.origin != "test"  # an adapter a test installed answers for itself
        if guarded:
            allowed, retry_in = health().allow(configured.name)
            if not allowed:
                trail.append((configured.name, ProviderResult.refused(
                    f"{configured.name} is out of service after repeated refusals (circuit open); "
                    f"tried again in {retry_in:.0f} s", retry_after=retry_in)))
                continue
            if configured.rate and configured.name not in taken and (wait := _wait_for_token(configured)):
                trail.append((configured.name, ProviderResult.refused(
                    f"{configured.name}'s rate limit is spent", retry_after=wait)))
                continue
        try:
            result = configured.adapter.send(outgoing)
        except Exception as exc:  # an adapter's bug: whether the provider took it is unknown
            result = ProviderResult.ambiguous(f"the {configured.adapter.name} adapter failed: "
                                              f"{type(exc).__name__}: {exc}")
        if guarded:
            if result.outcome == "accepted" or result.permanent:
                health().succeeded(configured.name)
            elif result.outcome == "refused":
                health().refused(configured.name)
            else:
                health().unsure(configured.name)
        trail.append((configured.name, result))
        if result.outcome != "refused" or result.permanent:
            break
    return trail


def _claim(message_id: str) -> tuple[OutgoingMessage, int] | str:
    with unit_of_work() as session:
        message = session.get(Message, message_id, with_for_update=True)
        if message is None:
            return "missing"
        key = content.get_communication(session, message.communication_id).key
        if message.state == "sending":
            _possibly_sent(session, message, key, "the worker stopped while the provider was being called")
            return message.state
        if message.state not in ("queued", "retrying"):
            return message.state
        assert message.channel and message.recipient and message.archive_entry_id
        parts = archive.content_of(session, message.archive_entry_id)
        message.attempts += 1
        _transition(session, message, "sending", attempt=message.attempts)
        transactional = message.purpose == "transactional"
        metadata: dict[str, Any] = {"communication": key}
        if message.channel == "whatsapp":  # free text only within 24 h of the customer's last message
            last = customers.last_event_at(session, customer_id=message.customer_id, kind="message_received",
                                           channel="whatsapp")
            metadata["last_inbound_at"] = iso(last) if last else None
        outgoing = OutgoingMessage(
            message_id=message.id, channel=message.channel, recipient=message.recipient, parts=dict(parts),
            customer_id=message.customer_id, language=message.language or "es", transactional=transactional,
            unsubscribe_url=None if transactional else policy.unsubscribe_url(
                message.customer_id, message.purpose, message.topic or None, message.channel, message_id=message.id),
            metadata=metadata,
        )
        return outgoing, message.attempts


def _record(message_id: str, attempt: int, trail: Trail) -> str:
    with unit_of_work() as session:
        message = session.get(Message, message_id, with_for_update=True)
        if message is None or message.state != "sending" or message.attempts != attempt:
            return message.state if message else "missing"
        key = content.get_communication(session, message.communication_id).key
        for (tried, answer), (following, _) in zip(trail, trail[1:], strict=False):
            _event(session, message, "failover", kind="provider", error=answer.error, **{"from": tried, "to": following})
        provider, result = trail[-1]
        message.provider = provider
        now = utcnow()
        if result.outcome == "accepted":
            message.provider_message_id, message.accepted_at, message.last_error = \
                result.provider_message_id, now, None
            _transition(session, message, "accepted", provider=provider,
                        provider_message_id=result.provider_message_id, **(result.details or {}))
            archive.record_status(session, status="accepted", at=now, entry_id=message.archive_entry_id,
                                  provider_id=result.provider_message_id)
            policy.record_contact(session, customer_id=message.customer_id, channel=message.channel or "",
                                  purpose=message.purpose, communication=key, topic=message.topic or None,
                                  sent_at=now, message_id=message.id, reservation_id=message.reservation_id)
            _timeline(session, message, key)
        elif result.outcome == "ambiguous":
            _possibly_sent(session, message, key, result.error or "the provider's answer was ambiguous")
        elif not result.permanent and (message.attempts >= MAX_ATTEMPTS or _channel_is_down(trail)) \
                and _fail_over_channel(session, message, key, result.error or "refused"):
            pass
        elif result.permanent or message.attempts >= MAX_ATTEMPTS:
            state = "failed" if result.permanent else "dead"
            _transition(session, message, state, error=result.error, provider=provider, attempt=attempt)
            archive.record_status(session, status="failed", at=now, entry_id=message.archive_entry_id,
                                  details={"error": result.error})
            if message.reservation_id is not None:
                policy.release_reservation(session, reservation_id=message.reservation_id)
            _timeline(session, message, key)
        else:
            # The next attempt starts again from the first provider, as soon as any of them may be tried.
            hint = min((answer.retry_after or 0.0) for _, answer in trail)
            delay = retry_delay(message.attempts, retry_after=hint)
            message.not_before = now + timedelta(seconds=delay)
            _transition(session, message, "retrying", error=result.error, provider=provider, attempt=attempt,
                        retry_at=iso(message.not_before))
            _after_commit(session, "deliver", message.id, message.not_before)
        return message.state


def _channel_is_down(trail: Trail) -> bool:
    # Every provider of the channel is out of service (its circuit open), not just refusing once.
    return all(name != "none" and health().is_open(name) for name, _ in trail)


def _fail_over_channel(session: Session, message: Message, communication_key: str, error: str) -> bool:
    """Every provider of the message's channel refused: send it on the next channel of its fallback
    order that the policy allows now — decided again, rendered and archived for that channel.
    False (nothing changed) when no channel is left or allowed."""
    tried = {message.channel} | {e.details.get("from") for e in events_of(session, message.id)
                                 if e.state == "failover" and e.details.get("kind") == "channel"}
    remaining = [c for c in message.requested_channels if c not in tried]
    if not remaining or message.channel is None:
        return False
    previous = (message.channel, message.archive_entry_id, message.reservation_id)
    savepoint = session.begin_nested()
    try:
        if message.reservation_id is not None:  # the new channel is booked instead
            policy.release_reservation(session, reservation_id=message.reservation_id)
        decision = policy.decide(session, customer_id=message.customer_id, communication=communication_key,
                                 purpose=message.purpose, channels=remaining, topic=message.topic or None,
                                 reserve=True)
        if decision.outcome != "send" or decision.channel is None:
            savepoint.rollback()
            return False
        channel = decision.channel
        recipient = _address(session, message.customer_id, channel)
        rendered = content.render_for_send(session, communication_id=message.communication_id,
                                           customer_id=message.customer_id, channel=channel,
                                           data=data_of(session, message))
        decided = DecisionOut.of(decision).model_dump(mode="json")
        entry = archive.record(
            session, customer_id=message.customer_id, communication_id=message.communication_id,
            version_id=rendered.version_id, channel=channel, language=rendered.language, recipient=recipient,
            parts=rendered.parts, render_context=rendered.context, decision=decided,
            message_id=f"{message.id}:{channel}",
        )
    except TratoError as exc:  # e.g. no template for that channel: the message stays on its channel
        savepoint.rollback()
        _event(session, message, "failover_refused", kind="channel", error=f"{exc.code}: {exc.message}")
        return False
    savepoint.commit()
    archive.record_status(session, status="failed", at=utcnow(), entry_id=previous[1],
                          details={"error": error, "failover_to": channel})
    message.channel, message.recipient, message.archive_entry_id = channel, recipient, entry.id
    message.reservation_id, message.decision, message.language = decision.reservation_id, decided, rendered.language
    message.attempts, message.not_before, message.provider_message_id = 0, None, None
    _event(session, message, "failover", kind="channel", error=error, **{"from": previous[0], "to": channel})
    _transition(session, message, "queued", channel=channel, archive_entry_id=entry.id)
    _timeline(session, message, communication_key)
    _after_commit(session, "deliver", message.id, None)
    return True


def _possibly_sent(session: Session, message: Message, communication_key: str, error: str) -> None:
    # Counted as sent for the caps (the customer may have it); a person resolves it, never a retry.
    _transition(session, message, "possibly_sent", error=error)
    archive.record_status(session, status="possibly_sent", at=utcnow(), entry_id=message.archive_entry_id,
                          details={"error": error})
    policy.record_contact(session, customer_id=message.customer_id, channel=message.channel or "",
                          purpose=message.purpose, communication=communication_key, topic=message.topic or None,
                          message_id=message.id, reservation_id=message.reservation_id)
    _timeline(session, message, communication_key)


STUCK_QUEUED = timedelta(minutes=1)
STUCK_SENDING = timedelta(minutes=5)  # far past any adapter's timeout


def stuck_messages(session: Session, *, now: datetime | None = None, limit: int = 500) -> list[tuple[str, str]]:
    """Messages whose task was lost (an enqueue that failed after commit, a worker that died —
    the queue does not redeliver): (id, task) to enqueue again. Running them twice is harmless."""
    now = now or utcnow()
    found: list[tuple[str, str]] = []
    # A campaign message is sent by its campaign's run, which waits TRATO_CAMPAIGN_STALE_SECONDS before
    # taking one left ``sending`` for a stopped worker's: the sweep waits as long for those.
    from trato.core.settings import get_settings

    campaign_sending = timedelta(seconds=get_settings().campaign_stale_seconds)
    rows = session.execute(select(Message.id, Message.state, Message.updated_at, Message.not_before,
                                  Message.created_by).where(
        Message.state.in_(("queued", "sending", "retrying", "deferred"))).order_by(Message.updated_at).limit(limit))
    for message_id, state, updated_at, not_before, created_by in rows:
        due = not_before or updated_at
        if state == "queued" and updated_at < now - STUCK_QUEUED:
            found.append((message_id, "deliver"))
        elif state == "sending" and updated_at < now - (
                campaign_sending if (created_by or "").startswith("campaign:") else STUCK_SENDING):
            found.append((message_id, "deliver"))  # which marks it possibly_sent
        elif state in ("retrying", "deferred") and due < now - STUCK_QUEUED:
            found.append((message_id, "deliver" if state == "retrying" else "release_deferred"))
    return found


def retry_delay(attempt: int, *, retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds before retry number ``attempt``: exponential with full jitter over the upper half,
    never sooner than the provider's ``Retry-After``."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempt - 1))
    delay = ceiling / 2 + (rng or random).random() * ceiling / 2
    return max(delay, retry_after or 0.0)
