"""When things happen in the demo year: seasons for shopping, office hours for service.

The year ends at the anchor (today, 00:00 UTC); a given seed always gives the same history
relative to it.
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate

from trato.demo.people import Person

DAYS = 365
# A session or a call that starts this close to the anchor could run past it: none start then.
LAST_START = timedelta(hours=2)

# Relative activity per local hour, 0-23.
HOURS = {
    "web": [1, .5, .3, .2, .2, .3, .8, 2, 3, 4, 4.5, 5, 5, 4.5, 4, 4, 4.5, 5, 5.5, 6, 6.5, 6, 4, 2],
    "app": [1.5, .6, .3, .2, .2, .5, 1.5, 3.5, 4, 3.5, 3.5, 4, 4.5, 4.5, 4, 3.5, 3.5, 4, 4.5, 5, 5.5, 5.5, 4.5, 3],
    "store": [0] * 10 + [3, 4, 5, 5, 4, 4, 5, 6, 6, 5, 3] + [0] * 3,
    "call": [0] * 9 + [5, 6, 6, 5, 4, 4, 5, 5, 4, 3, 2, 1] + [0] * 3,
    "email": [.5, .2, .1, .1, .1, .3, 1, 3, 4, 4, 3.5, 3, 3, 3, 2.5, 2.5, 2.5, 3, 3, 3.5, 3.5, 3, 2, 1],
}
_HOUR_CUM = {kind: list(accumulate(weights)) for kind, weights in HOURS.items()}


def _black_friday(year: int) -> date:
    november = date(year, 11, 1)
    first_friday = november + timedelta(days=(4 - november.weekday()) % 7)
    return first_friday + timedelta(days=21)


class Calendar:
    def __init__(self, anchor: datetime) -> None:
        self.anchor = anchor
        self.start = anchor - timedelta(days=DAYS)
        first = self.start.date()
        shop, service = [], []
        for offset in range(DAYS):
            day = first + timedelta(days=offset)
            weight = 1.25 if day.weekday() >= 5 else 1.0
            if abs((day - _black_friday(day.year)).days) <= 3:
                weight *= 3.0
            elif day.month == 12 and day.day <= 24:
                weight *= 1.8
            elif day.month == 1 and day.day >= 7:
                weight *= 1.6
            elif day.month == 7 and day.day <= 15:
                weight *= 1.3
            shop.append(weight)
            service.append((1.0, 1.0, 1.0, 1.0, 1.0, 0.45, 0.2)[day.weekday()])
        self.first_day = first
        self.cum = {"shop": [0.0, *accumulate(shop)], "service": [0.0, *accumulate(service)]}

    def day_index(self, at: datetime) -> int:
        return min(max((at - self.start).days, 0), DAYS - 1)

    def fraction_after(self, at: datetime) -> float:
        """Share of the year still ahead of ``at``."""
        return max(0.0, (self.anchor - at).total_seconds() / (DAYS * 86400))

    def pick(self, rng: random.Random, person: Person, after: datetime, *, days: str = "shop",
             hours: str = "web") -> datetime | None:
        """A local day (seasonal) and hour (by channel) after ``after`` and before the anchor."""
        first = self.day_index(after)
        cum = self.cum[days]
        low, high = cum[first], cum[DAYS]
        if high <= low:
            return None
        index = bisect(cum, low + rng.random() * (high - low)) - 1
        hour_cum = _HOUR_CUM[hours]
        hour = bisect(hour_cum, rng.random() * hour_cum[-1])
        local_day = self.first_day + timedelta(days=index)
        at = datetime.combine(local_day, time(hour, rng.randrange(60), rng.randrange(60)), person.tz)
        at = at.astimezone(UTC)
        if at <= after:
            at = after + timedelta(minutes=rng.uniform(5, 600))
        return at if at < self.anchor - LAST_START else None


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 40:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def stamp(at: datetime) -> str:
    """ISO-8601 in UTC with milliseconds, as the SDKs send it."""
    return at.isoformat(timespec="milliseconds")[:-6] + "Z"
