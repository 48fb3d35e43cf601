"""The demo company's customers: who they are, where they live, how to reach them.

Each person comes from a random generator seeded with the demo seed and the person's number,
so customer 42 is the same whether 200 or 10,000 are loaded. Values that must be unique across
people (customer numbers, e-mail addresses, phone numbers) are checked in :class:`Population`,
which hands people out in order, so the whole population is reproducible as well.
"""

from __future__ import annotations

import random
import unicodedata
from bisect import bisect
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import phonenumbers

from trato.demo.addresses import postal_address

DATA = Path(__file__).parent

# How a person first became known in the year shown, and which merge story they carry.
PLAIN = "plain"
ANONYMOUS_FIRST = "anonymous_first"  # browsed the website anonymously, then signed up there
EMAIL_FIRST = "email_first"  # known by the app, gave an e-mail in a store or on the phone, then linked it
ANONYMOUS_MERGE = "anonymous_merge"  # already a customer, browsed anonymously, then signed in
SHARED_EMAIL = "shared_email"  # uses a relative's e-mail address: the profiles must stay apart

WEB, APP, STORES, CALL_CENTRE, BILLING, EMAIL = "web", "app", "stores", "call_centre", "billing", "email"


@cache
def load(name: str) -> Any:
    return orjson.loads((DATA / name).read_bytes())


class Weighted:
    """Choosing among weighted options with one bisect (random.choices rebuilds its table)."""

    def __init__(self, options: list[Any], weights: list[float]) -> None:
        self.options = options
        self.cum = list(accumulate(weights))

    def pick(self, rng: random.Random) -> Any:
        return self.options[bisect(self.cum, rng.random() * self.cum[-1])]


def weighted(pairs: list[Any], key: str = "weight") -> Weighted:
    if pairs and isinstance(pairs[0], list):
        return Weighted([p[0] for p in pairs], [p[1] for p in pairs])
    return Weighted(pairs, [p[key] for p in pairs])


def ranked(names: list[str]) -> Weighted:
    """Names listed from most to least common (Zipf-like frequencies)."""
    return Weighted(names, [1 / (rank + 3) for rank in range(len(names))])


_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng``: what SDKs send as messageId and anonymousId."""
    h = "%032x" % rng.getrandbits(128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def ascii_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if ch.isascii() and (ch.isalnum() or ch in " -"))


@dataclass
class Person:
    index: int
    country: str
    language: str  # es | en
    locale: str
    currency: str
    timezone: str
    city: str
    store: str
    first_name: str
    last_name: str
    birthday: date
    since: datetime  # became a customer (UTC)
    user_id: str
    email: str | None
    phone: str | None  # E.164
    phone_input: str | None  # as the sending systems spell it
    plan: dict[str, Any]
    loyalty_tier: str
    preferred_channel: str
    web_id: str | None  # the website's anonymousId (cookie)
    app_id: str | None  # the app's anonymousId (install)
    device: dict[str, Any] | None
    device_token: str | None
    social: dict[str, str]
    contract_id: str | None
    activity: float
    story: str
    first_source: str
    engagement: float
    shared_email: str | None = None
    address: dict[str, Any] | None = None  # Segment's address object: where letters go
    tz: ZoneInfo = field(repr=False, default=ZoneInfo("UTC"))

    @property
    def postpaid(self) -> bool:
        return self.plan["price"] is not None

    def traits(self, *, email: bool = True) -> dict[str, Any]:
        """What a sign-up form and the CRM send about the person (Segment's reserved names)."""
        traits: dict[str, Any] = {
            "firstName": self.first_name, "lastName": self.last_name,
            "birthday": self.birthday.isoformat(),
            "createdAt": self.since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "country": self.country, "city": self.city, "locale": self.locale, "timezone": self.timezone,
            "plan": self.plan["name"], "loyalty_tier": self.loyalty_tier,
            "preferred_channel": self.preferred_channel, "customer_number": self.user_id,
        }
        if email and self.email:
            traits["email"] = self.email
        if self.phone_input:
            traits["phone"] = self.phone_input
        if self.address:
            traits["address"] = dict(self.address)
        return traits


class Population:
    """People in order of their number; the same seed and anchor give the same people."""

    def __init__(self, *, seed: int, anchor: datetime) -> None:
        self.seed = seed
        self.anchor = anchor
        data = load("people.json")
        catalogue = load("catalogue.json")
        self.countries = data["countries"]
        self.country_pick = Weighted(list(self.countries), [c["weight"] for c in self.countries.values()])
        self.domains = weighted(data["email_domains"])
        self.cities = {k: weighted(c["cities"]) for k, c in self.countries.items()}
        self.first = {k: {s: ranked(n) for s, n in c["first_names"].items()} for k, c in self.countries.items()}
        self.surnames = {k: ranked(c["surnames"]) for k, c in self.countries.items()}
        self.stores = {k: [c["store"] for c in v["cities"] if "store" in c] for k, v in self.countries.items()}
        self.plans = {k: weighted(v) for k, v in catalogue["plans"].items()}
        self.tiers = weighted(catalogue["loyalty_tiers"])
        self.channels = {k: weighted(v) for k, v in catalogue["preferred_channels"].items()}
        self.devices = catalogue["devices"]
        self.emails: set[str] = set()
        self.phones: set[str] = set()
        self.handles: set[tuple[str, str]] = set()
        self.recent: list[Person] = []
        # A bijection of the person number onto 8 digits: customer numbers look random, never repeat.
        self.number_offset = random.Random(f"trato-demo:{seed}:numbers").randrange(90_000_000)

    def people(self, count: int) -> list[Person]:
        return [self.person(i) for i in range(count)]

    def person(self, index: int) -> Person:
        rng = random.Random(f"trato-demo:{self.seed}:{index}")
        country = self.country_pick.pick(rng)
        spec = self.countries[country]
        home = self.cities[country].pick(rng)
        sex = "f" if rng.random() < 0.51 else "m"
        first = self.first[country][sex].pick(rng)
        surnames = self.surnames[country]
        if spec["two_surnames"]:
            one, two = surnames.pick(rng), surnames.pick(rng)
            last = f"{one} {two}" if one != two else f"{one} {surnames.pick(rng)}"
        else:
            last = surnames.pick(rng)

        story_roll = rng.random()
        relative = self._relative(rng, country) if story_roll >= 0.994 else None
        if relative is not None:
            home = next(c for c in spec["cities"] if c["city"] == relative.city)
            family = relative.last_name.split(" ")[0]
            last = f"{family} {surnames.pick(rng)}" if spec["two_surnames"] else family

        age = int(rng.triangular(18, 86, 37))
        birthday = date(self.anchor.year - age, 1, 1) + timedelta(days=rng.randrange(365))
        tz = ZoneInfo(home["timezone"])
        new = rng.random() < 0.28
        days_ago = rng.uniform(2, 362) if new else 365 + min(rng.expovariate(1 / 1300), 365 * 15)
        local_day = (self.anchor - timedelta(days=days_ago)).date()
        since = datetime.combine(local_day, time(rng.randrange(9, 21), rng.randrange(60), rng.randrange(60)),
                                 tz).astimezone(UTC)

        web = rng.random() < 0.78
        app = rng.random() < 0.42
        plan = self.plans[country].pick(rng)
        email = self._email(rng, first, last, birthday) if rng.random() < 0.94 else None
        phone, phone_input = self._phone(rng, country, spec, home) if rng.random() < 0.88 else (None, None)
        device = dict(rng.choice(self.devices)) if app else None

        story, first_source = PLAIN, (WEB if web and rng.random() < 0.6 else APP if app else
                                      rng.choice([STORES, STORES, CALL_CENTRE]))
        if new and web and first_source == WEB and rng.random() < 0.6:
            story = ANONYMOUS_FIRST
        elif story_roll < 0.05 and email and app and web and days_ago > 90:
            story, first_source = EMAIL_FIRST, APP
        elif 0.05 <= story_roll < 0.085 and web and days_ago > 30 and first_source != WEB:
            story = ANONYMOUS_MERGE
        elif relative is not None and relative.email:
            story, email = SHARED_EMAIL, None

        activity = min(max(rng.lognormvariate(-0.32, 0.8), 0.12), 8.0)
        person = Person(
            index=index, country=country, language=spec["language"], locale=spec["locale"],
            currency=spec["currency"], timezone=home["timezone"], city=home["city"],
            store=home.get("store") or rng.choice(self.stores[country]),
            first_name=first, last_name=last, birthday=birthday, since=since,
            user_id=f"TD-{(index * 7_368_787 + self.number_offset) % 90_000_000 + 10_000_000}",
            email=email, phone=phone, phone_input=phone_input, plan=plan,
            loyalty_tier=self.tiers.pick(rng), preferred_channel=self.channels[country].pick(rng),
            web_id=uuid4(rng) if web else None, app_id=uuid4(rng).upper() if app else None,
            device=device, device_token=f"{rng.getrandbits(256):064x}" if app and rng.random() < 0.7 else None,
            social=self._social(rng, first, last), contract_id=None, activity=activity, story=story,
            first_source=first_source, engagement=rng.betavariate(2, 5),
            shared_email=relative.email if story == SHARED_EMAIL and relative else None, tz=tz,
        )
        if device is not None:
            device["id"] = uuid4(rng).upper()
        # A relative sharing an e-mail address lives at the same address; others have their own.
        person.address = (dict(relative.address) if story == SHARED_EMAIL and relative and relative.address
                          else postal_address(self.seed, index, country, home["city"]))
        if person.postpaid:
            person.contract_id = f"CT-{country}-{since.year}-{index:06d}"
        person.preferred_channel = _reachable(person)
        self.recent = [*self.recent[-40:], person]
        return person

    def _relative(self, rng: random.Random, country: str) -> Person | None:
        same = [p for p in self.recent if p.country == country and p.email and p.story == PLAIN]
        return rng.choice(same) if same else None

    def _email(self, rng: random.Random, first: str, last: str, birthday: date) -> str:
        f = ascii_fold(first).split(" ")[0]
        surnames = [s.replace("-", "") for s in ascii_fold(last).replace("'", "").split(" ") if s]
        s1, s2 = surnames[0], surnames[-1]
        yy = f"{birthday.year % 100:02d}"
        local = rng.choice([
            f"{f}.{s1}", f"{f}{s1}", f"{f}_{s1}", f"{f[0]}{s1}", f"{f}.{s1}{yy}", f"{f}{s1}{birthday.year}",
            f"{f}.{s1}.{s2}" if s1 != s2 else f"{s1}.{f}", f"{f[0]}{s1}{s2[:1]}", f"{s1}.{f}",
        ])
        domain = self.domains.pick(rng)
        address = f"{local}@{domain}"
        while address in self.emails:
            address = f"{local}{rng.randrange(2, 999)}@{self.domains.pick(rng)}"
        self.emails.add(address)
        return address

    def _phone(self, rng: random.Random, country: str, spec: dict[str, Any],
               home: dict[str, Any]) -> tuple[str, str]:
        """A valid, unused mobile number (E.164) and the spelling the source systems send."""
        phone = spec["phone"]
        for _ in range(200):
            if country == "US":
                exchange = rng.randrange(200, 1000)
                if exchange % 100 == 11 or exchange == 555:
                    continue
                digits = f"{rng.choice(home['area_codes'])}{exchange}{rng.randrange(10_000):04d}"
            else:
                prefix = rng.choice(phone.get("mobile_prefixes") or home["area_codes"])
                rest = phone["length"] - len(prefix)
                digits = f"{prefix}{rng.randrange(10 ** rest):0{rest}d}"
            number = phonenumbers.parse(f"+{phone['country_code']}{digits}")
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if e164 in self.phones or not phonenumbers.is_valid_number_for_region(number, country):
                continue
            self.phones.add(e164)
            style = rng.random()
            if style < 0.6:
                return e164, e164
            form = (phonenumbers.PhoneNumberFormat.INTERNATIONAL if style < 0.85
                    else phonenumbers.PhoneNumberFormat.NATIONAL)
            return e164, phonenumbers.format_number(number, form)
        raise RuntimeError(f"no free phone number found for {country}")

    def _social(self, rng: random.Random, first: str, last: str) -> dict[str, str]:
        handles: dict[str, str] = {}
        base = ascii_fold(first).split(" ")[0] + ascii_fold(last).split(" ")[0].replace("-", "")
        for kind, share, handle in (
            ("social:twitter", 0.06, lambda: f"{base[:11]}{rng.randrange(10, 9999)}"),
            ("social:instagram", 0.09, lambda: f"{base[:14]}.{rng.randrange(1, 999)}"),
        ):
            if rng.random() < share:
                value = handle()
                while (kind, value) in self.handles:
                    value = handle()
                self.handles.add((kind, value))
                handles[kind] = value
        return handles


def _reachable(person: Person) -> str:
    """The preferred channel, or the first one the person can be reached on (a letter at worst)."""
    email = bool(person.email or person.shared_email)
    reachable = {"email": email, "sms": bool(person.phone), "whatsapp": bool(person.phone),
                 "phone": bool(person.phone), "push": bool(person.device_token)}
    if reachable[person.preferred_channel]:
        return person.preferred_channel
    return next((channel for channel, ok in reachable.items() if ok), "letter")
