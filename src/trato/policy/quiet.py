"""Local time: a customer's time zone and the quiet-hours arithmetic, exact across DST changes.

An instant is allowed when its local wall time (in the customer's zone) lies in the rule's
window ``[start, end)`` (minutes after midnight; ``start > end`` wraps past midnight). The first
allowed instant at or after ``t`` is ``t`` itself, a moment when the local clock reaches
``start``, or a moment when a DST change makes the clock jump into the window; all three are
looked at, so a deferred send gets the earliest moment, not an approximation.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

DAY_MINUTES = 24 * 60
_SCAN = timedelta(hours=6)  # no zone changes its offset twice within six hours


@lru_cache(maxsize=4096)
def zone_named(name: str | None) -> ZoneInfo | None:
    """The IANA zone of that name, or None when the name is empty or unknown."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@lru_cache(maxsize=65536)
def zone_of_phone(phone: str | None) -> str | None:
    """The zone of an E.164 number's area (phonenumbers), when the number names exactly one country."""
    if not phone:
        return None
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    zones = [z for z in phone_timezones.time_zones_for_number(number) if zone_named(z) is not None]
    return zones[0] if zones else None


def customer_zone(*, profile_zone: str | None, phone: str | None, default: str) -> str:
    """Profile trait, else the phone's country, else the company default."""
    if zone_named(profile_zone) is not None:
        return profile_zone  # type: ignore[return-value]
    return zone_of_phone(phone) or default


def allowed(at: datetime, tz: ZoneInfo, start: int, end: int) -> bool:
    """Whether ``at`` falls, in ``tz``, inside the window ``[start, end)``."""
    local = at.astimezone(tz)
    minute = local.hour * 60 + local.minute
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end


def _first_with_offset(a: datetime, b: datetime, tz: ZoneInfo) -> datetime:
    """The first instant in (a, b] whose UTC offset is b's (a's differs); one-second precision."""
    target = b.astimezone(tz).utcoffset()
    while b - a > timedelta(seconds=1):
        mid = a + (b - a) / 2
        mid = mid.replace(microsecond=0)
        if mid <= a:
            break
        if mid.astimezone(tz).utcoffset() == target:
            b = mid
        else:
            a = mid
    return b


@lru_cache(maxsize=8192)  # a campaign decides many customers at one instant, in a few zones
def next_allowed(at: datetime, tz: ZoneInfo, start: int, end: int) -> datetime:
    """The first instant at or after ``at`` inside the window, in UTC."""
    if allowed(at, tz, start, end):
        return at
    if start == end:
        raise ValueError("an empty window never allows anything")
    local_day: date = at.astimezone(tz).date()
    wall = time(start // 60, start % 60)
    candidates: list[datetime] = []
    for offset in range(-1, 3):
        day = local_day + timedelta(days=offset)
        for fold in (0, 1):
            moment = datetime.combine(day, wall, tzinfo=tz).replace(fold=fold).astimezone(UTC)
            if moment > at and allowed(moment, tz, start, end):
                candidates.append(moment)
    best = min(candidates) if candidates else at + timedelta(days=3)
    # A DST change between now and then may jump the clock straight into the window earlier.
    left = at
    while left < best:
        right = min(left + _SCAN, best)
        if left.astimezone(tz).utcoffset() != right.astimezone(tz).utcoffset():
            change = _first_with_offset(left, right, tz)
            if change < best and allowed(change, tz, start, end):
                best = change
                break
        left = right
    return best.astimezone(UTC)


def local_label(at: datetime, tz: ZoneInfo) -> str:
    """``08:00 Europe/Madrid``: how a reason names a local moment."""
    local = at.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {tz.key}"
