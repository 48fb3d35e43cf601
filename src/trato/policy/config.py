"""Managing purposes, topics, quiet hours and caps, and reading them once for many decisions."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from trato.core import audit
from trato.core.clock import utcnow
from trato.core.channels import CHANNELS
from trato.core.db import insert_for
from trato.core.ids import new_id
from trato.policy.errors import (
    InvalidPolicy, PolicyObjectNotFound, PurposeExists, PurposeInUse, UnknownChannel, UnknownPurpose, UnknownTopic,
)
from trato.policy.models import ConfigStamp, Consent, FrequencyCap, Purpose, QuietHours, Topic
from trato.policy.rules import CapRule, PolicyConfig

LEGAL_BASES = ("consent", "contract", "legal_obligation", "legitimate_interest")

DEFAULT_PURPOSES = (
    ("service", "Service", "Servicio", "contract"),
    ("transactional", "Transactional", "Transaccional", "contract"),
    ("advice", "Advice", "Asesoramiento", "legitimate_interest"),
    ("marketing", "Marketing", "Publicidad", "consent"),
    ("payment", "Payment", "Cobros", "legal_obligation"),
    ("research", "Research", "Encuestas", "consent"),
)
DEFAULT_TOPICS = (
    ("marketing", "newsletter", "Newsletter", "Boletín"),
    ("marketing", "offers", "Offers", "Ofertas"),
    ("service", "outages", "Outages", "Incidencias"),
    ("research", "surveys", "Surveys", "Encuestas de satisfacción"),
)
# Transactional and service messages go out at any hour; the others wait for the day.
DEFAULT_QUIET_HOURS = (
    ("marketing", 8 * 60, 21 * 60), ("advice", 8 * 60, 21 * 60), ("research", 9 * 60, 21 * 60),
    ("payment", 9 * 60, 21 * 60),
)
DEFAULT_CAPS = (("marketing", 3, 7 * 86400),)


# The configuration each process last read, by the stamp it was read under (see ConfigStamp).
_cache: dict[str, PolicyConfig] = {}
_cache_lock = threading.Lock()


def config_changed(session: Session) -> None:
    """Give the configuration a new stamp, in the caller's transaction: every process (this one
    included) reloads it at its next decision after the change commits, and not before."""
    values = {"stamp": uuid.uuid4().hex, "changed_at": utcnow()}
    session.execute(insert_for(session)(ConfigStamp).values(id=1, **values)
                    .on_conflict_do_update(index_elements=["id"], set_=values))


def install_defaults(session: Session) -> None:
    """The default purposes, topics, quiet hours and the marketing cap; existing ones are kept."""
    insert = insert_for(session)
    for key, en, es, basis in DEFAULT_PURPOSES:
        session.execute(insert(Purpose).values(key=key, name_en=en, name_es=es, legal_basis=basis)
                        .on_conflict_do_nothing(index_elements=["key"]))
    for purpose, key, en, es in DEFAULT_TOPICS:
        session.execute(insert(Topic).values(purpose=purpose, key=key, name_en=en, name_es=es)
                        .on_conflict_do_nothing(index_elements=["purpose", "key"]))
    for purpose, start, end in DEFAULT_QUIET_HOURS:
        session.execute(insert(QuietHours).values(purpose=purpose, channel="*", start_minute=start, end_minute=end,
                                                  exempt=False)
                        .on_conflict_do_nothing(index_elements=["purpose", "channel"]))
    if session.scalar(select(func.count()).select_from(FrequencyCap)) == 0:
        for purpose, count, window in DEFAULT_CAPS:
            session.add(FrequencyCap(id=new_id("cap"), purpose=purpose, max_count=count, window_seconds=window))
    session.flush()
    config_changed(session)


def load_config(session: Session) -> PolicyConfig:
    """Everything decisions read that is not about one customer: one query for the stamp when
    this process already read the configuration under that stamp, else five.

    The stamp is read in the caller's transaction and changes in the same transaction as the
    configuration, so the cached copy is exactly what the tables hold in this transaction's view,
    across processes (a time-to-live would let a withdrawn purpose or a new cap be ignored until
    it expires). Without a stamp row (tables filled by hand) nothing is cached.
    """
    stamp = session.scalar(select(ConfigStamp.stamp).where(ConfigStamp.id == 1))
    if stamp is not None and (cached := _cache.get(stamp)) is not None:
        return cached
    config = _read_config(session)
    if stamp is not None:
        with _cache_lock:
            _cache.clear()  # only the newest stamp is worth keeping
            _cache[stamp] = config
    return config


def _read_config(session: Session) -> PolicyConfig:
    purposes = {p.key: p.requires_consent for p in session.scalars(select(Purpose))}
    topics: dict[str, set[str]] = {key: set() for key in purposes}
    for purpose, key in session.execute(select(Topic.purpose, Topic.key)):
        topics.setdefault(purpose, set()).add(key)
    quiet = {(q.purpose, q.channel): (q.start_minute, q.end_minute, q.exempt) for q in session.scalars(select(QuietHours))}
    caps = tuple(
        CapRule(c.id, c.max_count, timedelta(seconds=c.window_seconds),
                frozenset({c.purpose}) if c.purpose else None, c.channel, c.communication)
        for c in session.scalars(select(FrequencyCap).order_by(FrequencyCap.created_at))
    )
    return PolicyConfig(purposes, {k: frozenset(v) for k, v in topics.items()}, quiet, caps)


def check_request(config: PolicyConfig, *, purpose: str, channels: list[str] | tuple[str, ...], topic: str) -> None:
    """Refuse an unknown purpose, topic or channel with a clear error."""
    if purpose not in config.requires_consent:
        raise UnknownPurpose(f"purpose {purpose!r} does not exist", details={"purpose": purpose,
                                                                             "known": sorted(config.requires_consent)})
    if topic and topic not in config.topics.get(purpose, ()):
        raise UnknownTopic(f"purpose {purpose} has no topic {topic!r}",
                           details={"topic": topic, "known": sorted(config.topics.get(purpose, ()))})
    check_channels(channels)


def check_channels(channels: list[str] | tuple[str, ...]) -> None:
    for channel in channels:
        if channel not in CHANNELS:
            raise UnknownChannel(f"channel {channel!r} does not exist; use one of {', '.join(CHANNELS)}",
                                 details={"channel": channel, "known": list(CHANNELS)})


# -- purposes and topics ------------------------------------------------------------------------


def list_purposes(session: Session) -> list[tuple[Purpose, list[Topic]]]:
    topics: dict[str, list[Topic]] = {}
    for topic in session.scalars(select(Topic).order_by(Topic.purpose, Topic.key)):
        topics.setdefault(topic.purpose, []).append(topic)
    return [(p, topics.get(p.key, [])) for p in session.scalars(select(Purpose).order_by(Purpose.key))]


def get_purpose(session: Session, key: str) -> Purpose:
    purpose = session.get(Purpose, key)
    if purpose is None:
        raise UnknownPurpose(f"purpose {key!r} does not exist", details={"purpose": key})
    return purpose


def _basis(value: str) -> str:
    if value not in LEGAL_BASES:
        raise InvalidPolicy(f"legal basis must be one of {', '.join(LEGAL_BASES)}", details={"legal_basis": value})
    return value


def create_purpose(session: Session, *, key: str, name_en: str, name_es: str, legal_basis: str, actor: str) -> Purpose:
    """A new purpose; its legal basis says whether consent is needed or only an objection stops it."""
    if session.get(Purpose, key) is not None:
        raise PurposeExists(f"purpose {key!r} already exists", details={"purpose": key})
    purpose = Purpose(key=key, name_en=name_en, name_es=name_es, legal_basis=_basis(legal_basis))
    session.add(purpose)
    session.flush()
    config_changed(session)
    audit.record(session, actor=actor, action="policy.purpose.create", object_type="purpose", object_id=key,
                 legal_basis=legal_basis)
    return purpose


def update_purpose(session: Session, *, key: str, actor: str, **changes: Any) -> Purpose:
    """Change a purpose's names or legal basis (given fields only)."""
    purpose = get_purpose(session, key)
    if changes.get("legal_basis") is not None:
        _basis(changes["legal_basis"])
    for name, value in changes.items():
        if value is not None:
            setattr(purpose, name, value)
    config_changed(session)
    audit.record(session, actor=actor, action="policy.purpose.update", object_type="purpose", object_id=key,
                 changes={k: v for k, v in changes.items() if v is not None})
    return purpose


def delete_purpose(session: Session, *, key: str, actor: str) -> None:
    """Remove a purpose nobody has consented to or refused yet."""
    purpose = get_purpose(session, key)
    if session.scalar(select(Consent.id).where(Consent.purpose == key).limit(1)) is not None:
        raise PurposeInUse(f"customers have consents for {key}; it cannot be removed", details={"purpose": key})
    session.execute(delete(Topic).where(Topic.purpose == key))
    session.execute(delete(QuietHours).where(QuietHours.purpose == key))
    session.delete(purpose)
    config_changed(session)
    audit.record(session, actor=actor, action="policy.purpose.delete", object_type="purpose", object_id=key)


def create_topic(session: Session, *, purpose: str, key: str, name_en: str, name_es: str, actor: str) -> Topic:
    get_purpose(session, purpose)
    if session.scalar(select(Topic).where(Topic.purpose == purpose, Topic.key == key)) is not None:
        raise PurposeExists(f"purpose {purpose} already has topic {key!r}", code="topic_exists")
    topic = Topic(purpose=purpose, key=key, name_en=name_en, name_es=name_es)
    session.add(topic)
    session.flush()
    config_changed(session)
    audit.record(session, actor=actor, action="policy.topic.create", object_type="topic",
                 object_id=f"{purpose}/{key}")
    return topic


def delete_topic(session: Session, *, purpose: str, key: str, actor: str) -> None:
    topic = session.scalar(select(Topic).where(Topic.purpose == purpose, Topic.key == key))
    if topic is None:
        raise UnknownTopic(f"purpose {purpose} has no topic {key!r}", details={"topic": key})
    session.delete(topic)
    config_changed(session)
    audit.record(session, actor=actor, action="policy.topic.delete", object_type="topic", object_id=f"{purpose}/{key}")


# -- quiet hours and caps -----------------------------------------------------------------------


def list_quiet_hours(session: Session) -> list[QuietHours]:
    return list(session.scalars(select(QuietHours).order_by(QuietHours.purpose, QuietHours.channel)))


def set_quiet_hours(session: Session, *, purpose: str, channel: str, start_minute: int, end_minute: int,
                    exempt: bool, actor: str) -> QuietHours:
    """Create or replace the rule for a purpose on a channel (``*``: every channel)."""
    get_purpose(session, purpose)
    if channel != "*":
        check_channels([channel])
    if not (0 <= start_minute < 1440 and 0 <= end_minute < 1440) or (start_minute == end_minute and not exempt):
        raise InvalidPolicy("start and end are minutes after midnight (0-1439) and must differ",
                            details={"start_minute": start_minute, "end_minute": end_minute})
    rule = session.scalar(select(QuietHours).where(QuietHours.purpose == purpose, QuietHours.channel == channel))
    if rule is None:
        rule = QuietHours(purpose=purpose, channel=channel)
        session.add(rule)
    rule.start_minute, rule.end_minute, rule.exempt = start_minute, end_minute, exempt
    session.flush()
    config_changed(session)
    audit.record(session, actor=actor, action="policy.quiet_hours.set", object_type="quiet_hours",
                 object_id=f"{purpose}/{channel}", start=start_minute, end=end_minute, exempt=exempt)
    return rule


def delete_quiet_hours(session: Session, *, purpose: str, channel: str, actor: str) -> None:
    rule = session.scalar(select(QuietHours).where(QuietHours.purpose == purpose, QuietHours.channel == channel))
    if rule is None:
        raise PolicyObjectNotFound(f"no quiet-hours rule for {purpose} on {channel}", code="quiet_hours_not_found")
    session.delete(rule)
    config_changed(session)
    audit.record(session, actor=actor, action="policy.quiet_hours.delete", object_type="quiet_hours",
                 object_id=f"{purpose}/{channel}")


def list_caps(session: Session) -> list[FrequencyCap]:
    return list(session.scalars(select(FrequencyCap).order_by(FrequencyCap.created_at)))


def create_cap(session: Session, *, max_count: int, window_seconds: int, purpose: str | None = None,
               channel: str | None = None, communication: str | None = None, actor: str) -> FrequencyCap:
    """At most ``max_count`` matching sends per customer in a rolling window."""
    if purpose is not None:
        get_purpose(session, purpose)
    if channel is not None:
        check_channels([channel])
    if max_count < 1 or not 60 <= window_seconds <= 366 * 86400:
        raise InvalidPolicy("a cap allows at least 1 message in a window of 1 minute to 366 days")
    cap = FrequencyCap(id=new_id("cap"), purpose=purpose, channel=channel, communication=communication,
                       max_count=max_count, window_seconds=window_seconds)
    session.add(cap)
    session.flush()
    config_changed(session)
    audit.record(session, actor=actor, action="policy.cap.create", object_type="cap", object_id=cap.id,
                 purpose=purpose, channel=channel, communication=communication, max_count=max_count,
                 window_seconds=window_seconds)
    return cap


def delete_cap(session: Session, *, cap_id: str, actor: str) -> None:
    cap = session.get(FrequencyCap, cap_id)
    if cap is None:
        raise PolicyObjectNotFound(f"cap {cap_id} does not exist", code="cap_not_found")
    session.delete(cap)
    config_changed(session)
    audit.record(session, actor=actor, action="policy.cap.delete", object_type="cap", object_id=cap_id)
