"""The decision itself, as a pure function over prepared data: no SQL, no clock.

:func:`evaluate` looks at one customer's prepared :class:`CustomerContext` under a
:class:`PolicyConfig` and answers send / defer / refuse with a reason for every channel it
considered. ``service.decide`` prepares one customer from the database; ``decide_many`` runs
this over many prepared customers (campaigns), which is what the 20,000 decisions/s are about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from trato.core import i18n
from trato.core.clock import iso
from trato.core.i18n import N_
from trato.policy.quiet import local_label, next_allowed, zone_named

SEND, DEFER, REFUSE = "send", "defer", "refuse"
FREQUENCY_WINDOWS = {"weekly": timedelta(days=7), "monthly": timedelta(days=30)}

# Stable reason codes and their text (English ids, Spanish in the catalogue).
REASON_TEXT = {
    "ok": N_("%(channel)s: allowed"),
    "unreachable": N_("%(channel)s: no address to reach the customer on"),
    "suppressed": N_("%(channel)s: suppressed (%(reason)s)"),
    "no_consent": N_("%(channel)s: no consent for %(purpose)s"),
    "consent_pending": N_("%(channel)s: consent for %(purpose)s awaits e-mail confirmation"),
    "consent_denied": N_("%(channel)s: no consent for %(purpose)s since %(since)s (%(source)s)"),
    "capped": N_("%(channel)s: cap %(count)s/%(window)s reached until %(until)s"),
    "quiet_hours": N_("%(channel)s: quiet hours until %(until)s"),
}
# Short labels of the reason codes, for the decision log's compact rows.
REASON_LABELS = {
    "ok": N_("allowed"), "unreachable": N_("no address"), "suppressed": N_("suppressed"),
    "no_consent": N_("no consent"), "consent_pending": N_("awaiting confirmation"),
    "consent_denied": N_("refused"), "capped": N_("cap reached"), "quiet_hours": N_("quiet hours"),
}
SUPPRESSION_REASONS = {
    "hard_bounce": N_("hard bounce"), "complaint": N_("complaint"), "stop_keyword": N_("STOP keyword"),
    "legal_hold": N_("legal hold"), "erased": N_("erased"), "unsubscribe": N_("unsubscribed"),
    "manual": N_("added by hand"),
}
CONSENT_SOURCES = {
    "form": N_("form"), "api": N_("API"), "import": N_("import"), "inbound": N_("inbound message"),
    "agent": N_("agent"), "preference_center": N_("preference center"),
    "double_opt_in": N_("e-mail confirmation"), "unsubscribe": N_("unsubscribe link"),
    "privacy": N_("privacy request"), "complaint": N_("spam complaint"),
}
TEMPORARY = frozenset({"capped", "quiet_hours"})


@dataclass(frozen=True, slots=True)
class CapRule:
    id: str
    max_count: int
    window: timedelta
    purposes: frozenset[str] | None = None  # None: any purpose
    channel: str | None = None
    communication: str | None = None

    def counts(self, channel: str, purpose: str, communication: str) -> bool:
        return (
            (self.purposes is None or purpose in self.purposes)
            and (self.channel is None or self.channel == channel)
            and (self.communication is None or self.communication == communication)
        )

    @property
    def label(self) -> str:
        seconds = int(self.window.total_seconds())
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds % size == 0:
                return f"{seconds // size}{unit}"
        return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Purposes, topics, quiet hours and caps, read once and shared by many decisions."""

    requires_consent: dict[str, bool]  # purpose -> consent needed (else opt-out)
    topics: dict[str, frozenset[str]]  # purpose -> its topic keys
    quiet: dict[tuple[str, str], tuple[int, int, bool]]  # (purpose, channel|"*") -> start, end, exempt
    caps: tuple[CapRule, ...]

    def quiet_rule(self, purpose: str, channel: str) -> tuple[int, int, bool] | None:
        return self.quiet.get((purpose, channel)) or self.quiet.get((purpose, "*"))


@dataclass(frozen=True, slots=True)
class ConsentState:
    state: str  # granted | denied | pending
    source: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ActiveSuppression:
    reason: str
    channel: str | None
    purpose: str | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Contact:
    sent_at: datetime
    channel: str
    purpose: str
    communication: str


@dataclass(slots=True)
class CustomerContext:
    """What a decision needs to know about one customer, read beforehand."""

    customer_id: str
    zone: str
    reachable: frozenset[str]
    consents: dict[tuple[str, str, str], ConsentState] = field(default_factory=dict)
    suppressions: tuple[ActiveSuppression, ...] = ()
    contacts: tuple[Contact, ...] = ()  # oldest first
    preferred_channel: str | None = None
    frequency: str = "normal"


@dataclass(frozen=True, slots=True)
class Reason:
    channel: str
    code: str
    until: datetime | None = None
    params: tuple[tuple[str, str], ...] = ()
    zone: str | None = None  # names ``until`` in the customer's local time

    def text(self, lang: str) -> str:
        values = {"channel": self.channel, **dict(self.params)}
        if self.until is not None and self.zone:
            values["until"] = local_label(self.until, zone_named(self.zone))  # type: ignore[arg-type]
        if self.code == "suppressed":
            values["reason"] = i18n.gettext(lang, SUPPRESSION_REASONS.get(values["reason"], values["reason"]))
        if "source" in values:
            values["source"] = i18n.gettext(lang, CONSENT_SOURCES.get(values["source"], values["source"]))
        return i18n.gettext(lang, REASON_TEXT[self.code]) % values

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel, "code": self.code, "until": self.until,
            "text": {"en": self.text("en"), "es": self.text("es")},
        }


@dataclass(slots=True)
class Decision:
    outcome: str  # send | defer | refuse
    channel: str | None
    at: datetime | None  # send: the decision time; defer: the first allowed moment; refuse: None
    reasons: list[Reason]
    zone: str
    reservation_id: int | None = None

    @property
    def until(self) -> datetime | None:
        return self.at if self.outcome == DEFER else None

    def compact(self) -> list[list[Any]]:
        return [[r.channel, r.code, iso(r.until) if r.until else None] for r in self.reasons]

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome, "channel": self.channel, "at": self.at, "until": self.until,
            "zone": self.zone, "reservation_id": self.reservation_id,
            "reasons": [r.as_dict() for r in self.reasons],
        }


def channel_order(ctx: CustomerContext, channels: list[str] | tuple[str, ...]) -> list[str]:
    """The preferred channel first (when the communication has it), then the given fallback order."""
    preferred = ctx.preferred_channel
    if preferred and preferred in channels and channels[0] != preferred:
        return [preferred, *(c for c in channels if c != preferred)]
    return list(channels)


def effective_consent(consents: dict[tuple[str, str, str], ConsentState], channel: str, purpose: str,
                      topic: str) -> ConsentState | None:
    """A refusal of the whole purpose covers its topics; else the topic's own state, else the purpose's."""
    whole = consents.get((channel, purpose, ""))
    if topic and (whole is None or whole.state != "denied"):
        found = consents.get((channel, purpose, topic))
        if found is not None:
            return found
    return whole


def _cap_until(cap: CapRule, ctx: CustomerContext, channel: str, purpose: str, communication: str,
               at: datetime) -> datetime | None:
    """When this cap lets one more message through, or None when it already does."""
    since = at - cap.window
    counted = [c.sent_at for c in ctx.contacts
               if since < c.sent_at <= at and cap.counts(c.channel, c.purpose, c.communication)]
    if len(counted) < cap.max_count:
        return None
    counted.sort()
    return counted[len(counted) - cap.max_count] + cap.window


def _channel(config: PolicyConfig, ctx: CustomerContext, channel: str, purpose: str, topic: str,
             communication: str, at: datetime, tz: Any, memo: dict[CapRule, datetime | None]) -> list[Reason]:
    """The reasons this channel cannot be used now; empty when it can."""
    if channel not in ctx.reachable:
        return [Reason(channel, "unreachable")]
    for s in ctx.suppressions:
        if (s.channel is None or s.channel == channel) and (s.purpose is None or s.purpose == purpose) and (
            s.expires_at is None or s.expires_at > at
        ):
            return [Reason(channel, "suppressed", s.expires_at, (("reason", s.reason),))]
    consent = effective_consent(ctx.consents, channel, purpose, topic)
    label = f"{purpose}/{topic}" if topic else purpose
    if consent is not None and consent.state == "denied":
        return [Reason(channel, "consent_denied", None, (
            ("purpose", label), ("since", consent.at.date().isoformat()), ("source", consent.source)))]
    needs_consent = config.requires_consent[purpose]
    if needs_consent and consent is None:
        return [Reason(channel, "no_consent", None, (("purpose", label),))]
    if needs_consent and consent is not None and consent.state != "granted":
        return [Reason(channel, "consent_pending", None, (("purpose", label),))]
    reasons: list[Reason] = []
    free_at = at
    caps = config.caps
    if needs_consent and ctx.frequency in FREQUENCY_WINDOWS:
        consent_purposes = frozenset(p for p, needed in config.requires_consent.items() if needed)
        caps = (*caps, CapRule("preference", 1, FREQUENCY_WINDOWS[ctx.frequency], consent_purposes))
    for cap in caps:
        if ctx.contacts and cap.counts(channel, purpose, communication):
            if cap.channel is None:  # the same answer for every channel of this decision
                if cap not in memo:
                    memo[cap] = _cap_until(cap, ctx, channel, purpose, communication, at)
                until = memo[cap]
            else:
                until = _cap_until(cap, ctx, channel, purpose, communication, at)
            if until is not None:
                reasons.append(Reason(channel, "capped", until, (("count", str(cap.max_count)), ("window", cap.label)),
                                      tz.key))
                free_at = max(free_at, until)
    rule = config.quiet_rule(purpose, channel)
    if rule is not None and not rule[2]:
        allowed_at = next_allowed(free_at, tz, rule[0], rule[1])
        if allowed_at > free_at:
            reasons.append(Reason(channel, "quiet_hours", allowed_at, (), tz.key))
    return reasons


def evaluate(config: PolicyConfig, ctx: CustomerContext, *, communication: str, purpose: str,
             channels: list[str] | tuple[str, ...], at: datetime, topic: str = "") -> Decision:
    """Send now on the first usable channel, else defer to the earliest moment one becomes usable,
    else refuse; with the reasons for every channel considered, in order."""
    tz = zone_named(ctx.zone)
    reasons: list[Reason] = []
    best: tuple[datetime, str] | None = None
    memo: dict[CapRule, datetime | None] = {}
    for channel in channel_order(ctx, channels):
        blocked = _channel(config, ctx, channel, purpose, topic, communication, at, tz, memo)
        if not blocked:
            reasons.append(Reason(channel, "ok"))
            return Decision(SEND, channel, at, reasons, ctx.zone)
        reasons.extend(blocked)
        if all(r.code in TEMPORARY for r in blocked):
            ready = max(r.until for r in blocked if r.until is not None)
            if best is None or ready < best[0]:
                best = (ready, channel)
    if best is not None:
        return Decision(DEFER, best[1], best[0], reasons, ctx.zone)
    return Decision(REFUSE, None, None, reasons, ctx.zone)
