"""Properties of the decision rules over random zones, instants, histories and customers (no SQL)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from hypothesis import given, settings
from hypothesis import strategies as st

from trato.policy.quiet import allowed, next_allowed
from trato.policy.rules import (
    ActiveSuppression, CapRule, ConsentState, Contact, CustomerContext, PolicyConfig, channel_order, evaluate,
)

ZONES = sorted(z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(("posix/", "right/")))
CHANNELS = ("email", "sms", "whatsapp", "push")
START = datetime(1980, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=512)
def transitions(zone: str, year: int) -> tuple[datetime, ...]:
    """The instants in a year where the zone's UTC offset changes (to the hour; refined below)."""
    tz = zoneinfo.ZoneInfo(zone)
    found, t = [], datetime(year, 1, 1, tzinfo=UTC)
    previous = t.astimezone(tz).utcoffset()
    while t.year == year:
        t += timedelta(hours=1)
        offset = t.astimezone(tz).utcoffset()
        if offset != previous:
            found.append(t)
            previous = offset
    return tuple(found)


@st.composite
def instants(draw: st.DrawFn) -> tuple[str, datetime]:
    """A zone and an instant; half the time within hours of one of the zone's DST changes."""
    zone = draw(st.sampled_from(ZONES))
    if draw(st.booleans()):
        year = draw(st.integers(1990, 2037))
        changes = transitions(zone, year)
        if changes:
            edge = draw(st.sampled_from(changes))
            return zone, edge + timedelta(seconds=draw(st.integers(-36 * 3600, 36 * 3600)))
    return zone, START + timedelta(seconds=draw(st.integers(0, 65 * 365 * 86400)))


windows = st.tuples(st.integers(0, 1439), st.integers(0, 1439)).filter(lambda w: w[0] != w[1])


@settings(max_examples=300, deadline=None)
@given(instants(), windows)
def test_the_deferred_moment_is_the_first_allowed_one(moment, window):
    zone, at = moment
    tz = zoneinfo.ZoneInfo(zone)
    start, end = window
    found = next_allowed(at, tz, start, end)
    assert found >= at and allowed(found, tz, start, end)
    if found == at:
        return
    assert not allowed(at, tz, start, end)
    assert not allowed(found - timedelta(seconds=1), tz, start, end) or found - timedelta(seconds=1) < at
    # Offsets are whole minutes since 1980, so allowed-ness only changes on UTC minute boundaries.
    probe = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while probe < found:
        assert not allowed(probe, tz, start, end), (zone, at, probe, found)
        probe += timedelta(minutes=1)


def _config(quiet=None, caps=()) -> PolicyConfig:  # type: ignore[no-untyped-def]
    return PolicyConfig(
        requires_consent={"marketing": True, "service": False},
        topics={"marketing": frozenset({"offers"}), "service": frozenset()},
        quiet=quiet if quiet is not None else {("marketing", "*"): (8 * 60, 21 * 60, False)},
        caps=tuple(caps),
    )


def _granted(channels) -> dict:  # type: ignore[no-untyped-def]
    return {(c, "marketing", ""): ConsentState("granted", "form", START) for c in channels}


@settings(max_examples=300, deadline=None)
@given(instants(), windows)
def test_a_send_is_never_inside_quiet_hours_and_a_defer_is_the_first_allowed_moment(moment, window):
    zone, at = moment
    tz = zoneinfo.ZoneInfo(zone)
    config = _config(quiet={("marketing", "*"): (window[0], window[1], False)})
    ctx = CustomerContext("cus_1", zone, frozenset({"email"}), _granted(["email"]))
    decision = evaluate(config, ctx, communication="c", purpose="marketing", channels=["email"], at=at)
    if decision.outcome == "send":
        assert allowed(at, tz, *window)
    else:
        assert decision.outcome == "defer" and not allowed(at, tz, *window)
        assert decision.at == next_allowed(at, tz, *window) and allowed(decision.at, tz, *window)


caps_strategy = st.lists(
    st.builds(lambda i, n, hours, channel: CapRule(f"cap{i}", n, timedelta(hours=hours), None, channel),
              st.integers(0, 99), st.integers(1, 4), st.integers(1, 200), st.sampled_from([None, *CHANNELS[:2]])),
    min_size=1, max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(caps_strategy, st.lists(st.tuples(st.integers(0, 30 * 60), st.sampled_from(CHANNELS[:2])), max_size=60))
def test_random_histories_never_exceed_a_cap(caps, attempts):
    config = _config(quiet={}, caps=caps)
    sent: list[Contact] = []
    t = datetime(2026, 1, 1, tzinfo=UTC)
    for gap_minutes, channel in attempts:
        t += timedelta(minutes=gap_minutes)
        ctx = CustomerContext("cus_1", "UTC", frozenset(CHANNELS), _granted(CHANNELS), contacts=tuple(sent))
        decision = evaluate(config, ctx, communication="c", purpose="marketing", channels=[channel], at=t)
        if decision.outcome == "send":
            sent.append(Contact(t, channel, "marketing", "c"))
        elif decision.outcome == "defer":
            assert decision.at > t
    for cap in caps:
        for contact in sent:
            window = [c for c in sent if contact.sent_at - cap.window < c.sent_at <= contact.sent_at
                      and cap.counts(c.channel, c.purpose, c.communication)]
            assert len(window) <= cap.max_count


@st.composite
def customers(draw: st.DrawFn) -> CustomerContext:
    reachable = frozenset(draw(st.sets(st.sampled_from(CHANNELS))))
    consents = {}
    for channel in CHANNELS:
        state = draw(st.sampled_from([None, "granted", "denied", "pending"]))
        if state:
            consents[(channel, "marketing", "")] = ConsentState(state, "form", START)
    suppressed = draw(st.sets(st.sampled_from(CHANNELS), max_size=2))
    return CustomerContext(
        "cus_1", "Europe/Madrid", reachable, consents,
        suppressions=tuple(ActiveSuppression("complaint", c, None, None) for c in sorted(suppressed)),
        preferred_channel=draw(st.sampled_from([None, *CHANNELS])),
    )


@settings(max_examples=300, deadline=None)
@given(customers(), st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=4, unique=True),
       st.sampled_from(["marketing", "service"]))
def test_channel_choice_takes_the_first_usable_channel_in_preference_order(ctx, channels, purpose):
    at = datetime(2026, 6, 10, 10, tzinfo=UTC)  # noon in Madrid: no quiet hours
    decision = evaluate(_config(), ctx, communication="c", purpose=purpose, channels=channels, at=at)
    order = channel_order(ctx, channels)
    if ctx.preferred_channel in channels:
        assert order[0] == ctx.preferred_channel

    def usable(channel: str) -> bool:
        state = ctx.consents.get((channel, "marketing", ""))
        consent_ok = state is not None and state.state == "granted" if purpose == "marketing" else True
        suppressed = any(s.channel == channel for s in ctx.suppressions)
        return channel in ctx.reachable and consent_ok and not suppressed

    expected = next((c for c in order if usable(c)), None)
    assert decision.channel == expected
    assert decision.outcome == ("send" if expected else "refuse")
    considered = [r.channel for r in decision.reasons]
    assert considered == order[: order.index(expected) + 1] if expected else considered == order


def test_a_window_opening_inside_the_spring_gap_opens_when_the_clock_jumps():
    madrid = zoneinfo.ZoneInfo("Europe/Madrid")
    # 2026-03-29: at 01:00 UTC the clock goes from 02:00 to 03:00; a window from 02:30 opens at the jump.
    found = next_allowed(datetime(2026, 3, 28, 23, 0, tzinfo=UTC), madrid, 2 * 60 + 30, 6 * 60)
    assert found == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    # On the autumn night 02:30 comes twice; the first one counts.
    found = next_allowed(datetime(2026, 10, 24, 22, 0, tzinfo=UTC), madrid, 2 * 60 + 30, 6 * 60)
    assert found == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
