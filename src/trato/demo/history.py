"""A demo customer's year, as the calls each of the company's systems sends to trato.

Every call is a Segment call exactly as an SDK sends it. A call carries the phase it belongs to:
:data:`STORY` calls (how the person first became known, and the merges that come with it) are
written before :data:`REST` calls, each phase source by source in :data:`STORY_ORDER`. Every
REST call carries an identity the story already linked, so its outcome does not depend on order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from trato.demo.calendar import Calendar, stamp
from trato.demo.catalogue import Catalogue
from trato.demo.people import (
    ANONYMOUS_FIRST, ANONYMOUS_MERGE, APP, BILLING, CALL_CENTRE, EMAIL, EMAIL_FIRST, STORES, WEB, Person, uuid4,
)

STORY, REST = 0, 1
# Within the story, the app and the desk systems speak before the website: a profile known by
# the app, then an e-mail given in a store, then a web sign-in with both is a real merge.
STORY_ORDER = (APP, STORES, CALL_CENTRE, BILLING, EMAIL, WEB)
PYTHON_LIBRARY = {"name": "analytics-python", "version": "2.3.3"}


@dataclass(slots=True)
class Call:
    phase: int
    source: str
    at: datetime
    body: dict[str, Any]


@dataclass(slots=True)
class Record:
    """An entry written on the timeline directly: inbound messages and agents' notes."""

    user_id: str
    at: datetime
    kind: str
    name: str
    channel: str
    department: str
    message_id: str
    properties: dict[str, Any]


SERVER_CONTEXT = {"library": PYTHON_LIBRARY}


@dataclass
class Life:
    person: Person
    calendar: Calendar
    catalogue: Catalogue
    rng: random.Random
    calls: list[Call] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    def __post_init__(self) -> None:
        # What each SDK sends with every call from this person's browser or phone, built once.
        p, c = self.person, self.catalogue
        self.web: dict[str, Any] = {}
        self.app: dict[str, Any] = {}
        if p.web_id:
            self.web = {
                "library": {"name": "analytics.js", "version": "npm:next-1.72.0"},
                "ip": f"203.0.113.{p.index % 250 + 1}", "locale": p.locale, "timezone": p.timezone,
                "userAgent": c.browsers[p.index % len(c.browsers)],
            }
            self.current_page = c.page_context(p, c.pages[0], self.rng)
        if p.device:
            device = {k: p.device[k] for k in ("id", "manufacturer", "model", "type")}
            if p.device_token:
                device["token"] = p.device_token
            self.app = {
                "library": {"name": "analytics-swift" if p.device["type"] == "ios" else "analytics-kotlin",
                            "version": "1.16.1"},
                "app": {"name": "Trato Demo", "version": "5.12.0", "build": "51200",
                        "namespace": "com.example.tratodemo"},
                "device": device, "os": {"name": p.device["os"], "version": p.device["os_version"]},
                "locale": p.locale, "timezone": p.timezone, "network": {"wifi": p.index % 3 != 0},
            }

    # -- building calls ------------------------------------------------------------------------

    def add(self, phase: int, source: str, at: datetime, body: dict[str, Any]) -> None:
        body["messageId"] = uuid4(self.rng)
        body["timestamp"] = stamp(at)
        self.calls.append(Call(phase, source, at, body))

    def ids(self, source: str, *, known: bool = True) -> dict[str, str]:
        p = self.person
        if source == WEB:
            assert p.web_id is not None
            return {"userId": p.user_id, "anonymousId": p.web_id} if known else {"anonymousId": p.web_id}
        if source == APP:
            assert p.app_id is not None
            return {"userId": p.user_id, "anonymousId": p.app_id}
        return {"userId": p.user_id}

    def context(self, source: str, *, page: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        if source == WEB:
            return {**self.web, "page": page or self.current_page, **extra}
        base = self.app if source == APP else SERVER_CONTEXT
        return {**base, **extra} if extra else base

    def identify(self, phase: int, source: str, at: datetime, *, traits: dict[str, Any] | None = None,
                 known: bool = True, **context: Any) -> None:
        body: dict[str, Any] = {"type": "identify", **self.ids(source, known=known),
                                "context": self.context(source, **context)}
        if traits:
            body["traits"] = traits
        self.add(phase, source, at, body)

    def track(self, phase: int, source: str, at: datetime, event: str, properties: dict[str, Any], *,
              known: bool = True, ids: dict[str, str] | None = None, **context: Any) -> None:
        self.add(phase, source, at, {
            "type": "track", **(ids or self.ids(source, known=known)), "event": event,
            "properties": properties, "context": self.context(source, **context),
        })

    def page(self, phase: int, at: datetime, *, known: bool, page: dict[str, Any] | None = None) -> dict[str, Any]:
        p, c = self.person, self.catalogue
        spec = page or c.web_pages.pick(self.rng)
        ctx = self.current_page = c.page_context(p, spec, self.rng)
        extra = {"department": spec["department"]} if "department" in spec else {}
        self.add(phase, WEB, at, {
            "type": "page", **self.ids(WEB, known=known), "name": ctx["title"].split(" | ")[0],
            "properties": {k: ctx[k] for k in ("path", "url", "title", "referrer")},
            "context": self.context(WEB, page=ctx, **extra),
        })
        return ctx

    def later(self, at: datetime, low: float = 15, high: float = 150) -> datetime:
        return at + timedelta(seconds=self.rng.uniform(low, high))

    # -- the story: how the person became known ------------------------------------------------

    def story(self) -> datetime:
        """Write the story calls; returns the moment from which the rest of the year happens."""
        p, cal, rng = self.person, self.calendar, self.rng
        new = p.since > cal.start
        t0 = p.since if new else cal.start + timedelta(hours=rng.uniform(1, 24 * 20))
        if p.story == ANONYMOUS_FIRST:
            room = min(14 * 24 * 60, (t0 - cal.start).total_seconds() / 60 - 1)
            visits = sorted(t0 - timedelta(minutes=rng.uniform(min(10, room), room)) for _ in range(rng.randint(2, 7)))
            for at in visits:
                self.browse(STORY, at, known=False)
            self.identify(STORY, WEB, t0, traits=p.traits())
        elif p.story == EMAIL_FIRST:
            self.identify(STORY, APP, t0, traits=p.traits(email=False))
            t1 = t0 + timedelta(days=rng.uniform(3, 40), hours=rng.uniform(0, 8))
            desk = {"anonymousId": uuid4(rng)}
            given = {"email": p.email, "firstName": p.first_name, "lastName": p.last_name}
            if rng.random() < 0.6:
                self.store_purchase(STORY, t1, ids=desk, traits=given)
            else:
                self.support_call(STORY, t1, ids=desk, traits=given)
            t2 = t1 + timedelta(days=rng.uniform(1, 25))
            self.identify(STORY, WEB, t2, traits={"email": p.email})
            self.track(REST, WEB, self.later(t2), "Signed In", {"method": "email"})
        else:
            self.identify(STORY, p.first_source, t0, traits=p.traits())
            if p.web_id and p.first_source != WEB:
                room = (cal.anchor - t0).total_seconds() / 86400 * 0.8
                t1 = t0 + timedelta(days=rng.uniform(min(0.2, room), min(25, room)))
                if p.story == ANONYMOUS_MERGE:
                    for _ in range(rng.randint(2, 5)):
                        t1 = self.browse(STORY, t1, known=False) + timedelta(minutes=rng.uniform(1, 30))
                self.identify(STORY, WEB, t1)
                self.track(REST, WEB, self.later(t1), "Signed In", {"method": "password"})
        if new:
            self.sign_up(t0)
        return t0

    def sign_up(self, at: datetime) -> None:
        p = self.person
        at = self.later(at, 1, 30)
        if p.first_source in (WEB, APP):
            self.track(REST, p.first_source, at, "Signed Up", {"method": "email" if p.email else "phone"})
        if p.postpaid or p.first_source in (STORES, CALL_CENTRE):
            source = p.first_source if p.first_source in (STORES, CALL_CENTRE) else WEB if p.web_id else APP
            extra = {"store_name": p.store} if source == STORES else {}
            self.track(REST, source, self.later(at), "Contract Signed", {
                "plan": p.plan["name"], "contract_id": p.contract_id, **extra,
            }, department="sales")

    # -- pieces used by the story and the rest of the year -------------------------------------

    def browse(self, phase: int, at: datetime, *, known: bool) -> datetime:
        """A short visit: a page or two and maybe a product."""
        self.page(phase, at, known=known)
        if self.rng.random() < 0.5:
            at = self.later(at)
            item = self.catalogue.products.pick(self.rng)
            self.track(phase, WEB, at, "Product Viewed", self.catalogue.product_properties(self.person, item),
                       known=known)
        return at

    def store_purchase(self, phase: int, at: datetime, *, ids: dict[str, str] | None = None,
                       traits: dict[str, Any] | None = None) -> None:
        p, c = self.person, self.catalogue
        extra: dict[str, Any] = {"traits": traits} if traits else {}
        order = c.order(p, self.rng, prefix="T", lines=self.rng.choice((1, 1, 1, 2)))
        order.update(store_name=p.store, payment_method=self.rng.choice(("card", "card", "cash")))
        self.track(phase, STORES, at, "Order Completed", order, ids=ids, **extra)

    def support_call(self, phase: int, at: datetime, *, ids: dict[str, str] | None = None,
                     traits: dict[str, Any] | None = None) -> dict[str, Any]:
        p, c, rng = self.person, self.catalogue, self.rng
        reason = c.support_reasons.pick(rng)
        extra: dict[str, Any] = {"traits": traits} if traits else {}
        props = {
            "call_id": f"LL-{rng.randrange(10**10):010d}", "reason": reason[p.language], "reason_code": reason["code"],
            "queue": rng.choice(c.queues[reason["department"]]), "agent": rng.choice(c.agents),
            "duration_seconds": int(min(rng.lognormvariate(5.7, 0.6), 3600)), "resolved": rng.random() < 0.78,
            "direction": "inbound",
        }
        self.track(phase, CALL_CENTRE, at, "Support Call", props, ids=ids, department=reason["department"], **extra)
        return reason
