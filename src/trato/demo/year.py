"""The rest of a demo customer's year, channel by channel, after the story made them known.

Volumes scale with the person's activity (log-normal: many light customers, a few very
active ones) and with the share of the year they have been a customer.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from typing import Any

from trato.demo.calendar import LAST_START, Calendar, poisson
from trato.demo.catalogue import Catalogue
from trato.demo.history import REST, Life, Record
from trato.demo.people import APP, BILLING, CALL_CENTRE, EMAIL, SHARED_EMAIL, STORES, WEB, Person, uuid4

PAYMENT_CHANNEL = {"card": "web", "bizum": "app", "cash_oxxo": "store"}


class Year(Life):
    def live(self) -> None:
        p, cal, rng = self.person, self.calendar, self.rng
        start = self.story()
        share = cal.fraction_after(start)
        if p.web_id:
            for _ in range(poisson(rng, 2.4 * p.activity * share)):
                if at := cal.pick(rng, p, start, hours="web"):
                    self.web_session(at)
        if p.app_id:
            for number in range(poisson(rng, 3.0 * p.activity * share) or 1):
                if at := cal.pick(rng, p, start, hours="app"):
                    self.app_session(at, first=number == 0)
        if p.first_source == STORES or rng.random() < 0.4:
            for _ in range(poisson(rng, 1.4 * p.activity ** 0.7 * share)):
                if at := cal.pick(rng, p, start, hours="store"):
                    self.store_visit(at)
        for _ in range(poisson(rng, 0.8 * p.activity ** 0.5 * share)):
            if at := cal.pick(rng, p, start, days="service", hours="call"):
                self.call(at)
        change = self.plan_change(start) if p.postpaid and rng.random() < 0.07 else None
        if p.postpaid:
            self.billing(start, change)
        if p.email or p.story == SHARED_EMAIL:
            self.campaigns(start)
        if p.social and (at := cal.pick(rng, p, start, days="service", hours="call")):
            ids = [{"id": v, "type": k, "collection": "users", "encoding": "none"} for k, v in p.social.items()]
            self.identify(REST, CALL_CENTRE, at, externalIds=ids)
        if p.story == SHARED_EMAIL and (at := cal.pick(rng, p, start, hours="web")):
            source = WEB if p.web_id else CALL_CENTRE
            self.identify(REST, source, at, traits={"email": p.shared_email})
        if p.phone and rng.random() < 0.04:
            self.messages(start)

    # -- digital channels ----------------------------------------------------------------------

    def web_session(self, at: datetime) -> None:
        p, c, rng = self.person, self.catalogue, self.rng
        known = rng.random() < 0.6
        if known and rng.random() < 0.15:
            self.identify(REST, WEB, at)
            at = self.later(at, 1, 5)
            self.track(REST, WEB, at, "Signed In", {"method": "password"})
        for _ in range(1 + min(int(rng.expovariate(0.8)), 4)):
            at = self.later(at)
            self.page(REST, at, known=known)
        if rng.random() < 0.12:
            at = self.later(at)
            self.track(REST, WEB, at, "Products Searched", {"query": rng.choice(c.search_terms[p.language])},
                       known=known)
        viewed: list[dict[str, Any]] = []
        if rng.random() < 0.5:
            for _ in range(rng.choice((1, 1, 2, 3))):
                at = self.later(at)
                viewed.append(c.products.pick(rng))
                self.track(REST, WEB, at, "Product Viewed", c.product_properties(p, viewed[-1]), known=known)
        if not viewed or rng.random() > 0.22:
            return
        cart = f"cart-{uuid4(rng)[:8]}"
        at = self.later(at)
        self.track(REST, WEB, at, "Product Added", {"cart_id": cart, **c.product(p, viewed[-1])}, known=known)
        if rng.random() < 0.7:
            at = self.later(at)
            self.track(REST, WEB, at, "Cart Viewed", {"cart_id": cart, "products": [c.product(p, viewed[-1])]},
                       known=known)
        if rng.random() > 0.45:
            return
        if not known:
            at = self.later(at)
            self.identify(REST, WEB, at)
            self.track(REST, WEB, self.later(at, 1, 5), "Signed In", {"method": "password"})
        order = c.order(p, rng, prefix="W", items=[viewed[-1]])
        at = self.later(at, 60, 400)
        self.track(REST, WEB, at, "Checkout Started", {k: v for k, v in order.items() if k != "shipping"})
        self.track(REST, WEB, self.later(at, 60, 300), "Order Completed", order)

    def app_session(self, at: datetime, *, first: bool) -> None:
        p, c, rng = self.person, self.catalogue, self.rng
        if first:
            self.identify(REST, APP, at)
            installed = {"version": "5.12.0", "build": "51200"}
            self.track(REST, APP, self.later(at, 1, 3), "Application Installed", installed)
            at = self.later(at, 3, 10)
        self.track(REST, APP, at, "Application Opened", {"from_background": rng.random() < 0.4, "version": "5.12.0"})
        for _ in range(rng.randint(1, 3)):
            at = self.later(at, 5, 90)
            screen = c.screens.pick(rng)
            extra = {"department": screen["department"]} if "department" in screen else {}
            self.add(REST, APP, at, {"type": "screen", **self.ids(APP), "name": screen[p.language],
                                     "properties": {"name": screen[p.language]}, "context": self.context(APP, **extra)})
        if rng.random() < 0.06:
            self.track(REST, APP, self.later(at, 30, 200), "Order Completed", c.order(p, rng, prefix="A", add_on=True))

    # -- people: stores and the contact centre -------------------------------------------------

    def store_visit(self, at: datetime) -> None:
        p, c, rng = self.person, self.catalogue, self.rng
        reason = c.visit_reasons.pick(rng)
        self.track(REST, STORES, at, "Store Visited", {"store_name": p.store, "reason": reason[p.language]},
                   department=reason["department"])
        if rng.random() < 0.5:
            self.store_purchase(REST, self.later(at, 300, 1800))
        if rng.random() < 0.02:
            self.note(self.later(at, 600, 2400), channel="store")

    def call(self, at: datetime) -> None:
        p, c, rng = self.person, self.catalogue, self.rng
        reason = self.support_call(REST, at)
        end = at + timedelta(minutes=rng.uniform(3, 25))
        if rng.random() < (0.16 if reason["code"] in ("outage", "charge", "order_status") else 0.04):
            complaint = c.complaint(p, rng)
            department = complaint.pop("department")
            self.track(REST, CALL_CENTRE, end, "Complaint Filed", complaint, department=department)
            solved = end + timedelta(days=rng.uniform(1, 15))
            if rng.random() < 0.75 and solved < self.calendar.anchor:
                self.track(REST, CALL_CENTRE, solved, "Complaint Resolved", {
                    "case_id": complaint["case_id"], "reason_code": complaint["reason_code"],
                    "resolution": "credit" if department == "billing" else "fixed",
                }, department=department)
        if rng.random() < 0.05:
            self.note(self.later(end, 10, 300), channel="call_center")

    def note(self, at: datetime, *, channel: str) -> None:
        p, c, rng = self.person, self.catalogue, self.rng
        choices = [n for n in c.notes[p.language] if n["channel"] == channel]
        note = rng.choice(choices)
        self.records.append(Record(
            p.user_id, at, "note", "Note", channel, note["department"], f"note-{uuid4(rng)}",
            {"text": note["text"], "author": rng.choice(c.agents)},
        ))

    def messages(self, start: datetime) -> None:
        p, c, rng = self.person, self.catalogue, self.rng
        whatsapp = p.preferred_channel == "whatsapp" or (p.language == "es" and rng.random() < 0.6)
        for _ in range(rng.choice((1, 1, 2, 3))):
            at = self.calendar.pick(rng, p, start, hours="web")
            if at is None:
                continue
            message_id = f"wamid.{rng.getrandbits(160):040X}" if whatsapp else f"SM{rng.getrandbits(128):032x}"
            self.records.append(Record(
                p.user_id, at, "message_received", "Message Received", "whatsapp" if whatsapp else "sms",
                "service", message_id, {"text": c.message_text(p, rng), "from": p.phone},
            ))

    # -- plans and bills -----------------------------------------------------------------------

    def plan_change(self, start: datetime) -> tuple[datetime, dict[str, Any]] | None:
        p, rng = self.person, self.rng
        at = self.calendar.pick(rng, p, start, days="service", hours="call")
        options = [plan for plan in self.catalogue.data["plans"][p.country]
                   if plan["price"] is not None and plan["name"] != p.plan["name"]]
        if at is None or not options:
            return None
        new = rng.choice(options)
        source = CALL_CENTRE if rng.random() < 0.6 or not p.web_id else WEB
        self.track(REST, source, at, "Plan Changed", {"previous_plan": p.plan["name"], "plan": new["name"]},
                   department="sales")
        self.identify(REST, source, self.later(at, 1, 5), traits={"plan": new["name"]})
        return at, new

    def billing(self, start: datetime, change: tuple[datetime, dict[str, Any]] | None) -> None:
        p, c, rng = self.person, self.catalogue, self.rng
        day = rng.randint(1, 28)
        method = c.payment_methods[p.country].pick(rng)
        contract = [{"id": p.contract_id, "type": "contract_id", "collection": "users", "encoding": "none"}]
        month = datetime(start.year, start.month, 1)
        first = True
        while True:
            month = (month + timedelta(days=32)).replace(day=1)
            issued = datetime.combine(month.replace(day=day).date(), time(4, rng.randrange(60)), p.tz).astimezone(UTC)
            if issued >= self.calendar.anchor:
                return
            plan = change[1] if change and change[0] < issued else p.plan
            extra = rng.choice((0, 0, 0, 0, 1, 2)) * round(plan["price"] * 0.08, 2)
            amount = round(plan["price"] + extra, 2)
            invoice = f"F{p.country}-{issued:%Y%m}-{p.index:07d}"
            due = issued + timedelta(days=rng.randint(5, 10))
            # The billing system names the contract with the first bill of the year shown.
            self.track(REST, BILLING, issued, "Invoice Issued", {
                "invoice_id": invoice, "amount": amount, "currency": p.currency, "period": f"{issued:%Y-%m}",
                "due_date": f"{due:%Y-%m-%d}", "plan": plan["name"],
            }, **({"externalIds": contract} if first else {}))
            first = False
            if due >= self.calendar.anchor:
                continue
            paid = due.replace(hour=rng.randint(6, 20), minute=rng.randrange(60))
            if rng.random() < 0.03:
                self.track(REST, BILLING, paid, "Payment Failed", {
                    "invoice_id": invoice, "amount": amount, "currency": p.currency, "method": method,
                    "reason": rng.choice(("insufficient_funds", "card_expired", "mandate_cancelled")),
                })
                paid += timedelta(days=rng.randint(2, 9))
                if paid >= self.calendar.anchor:
                    continue
            channel = {"channel": PAYMENT_CHANNEL[method]} if method in PAYMENT_CHANNEL else {}
            self.track(REST, BILLING, paid, "Payment Received", {
                "invoice_id": invoice, "amount": amount, "currency": p.currency, "method": method,
            }, **channel)

    def campaigns(self, start: datetime) -> None:
        p, rng, cal = self.person, self.rng, self.calendar
        by_month = {c["month"]: c for c in self.catalogue.campaigns}
        month = datetime(cal.start.year, cal.start.month, 1)
        for _ in range(13):
            month = (month + timedelta(days=32)).replace(day=1)
            campaign = by_month.get(month.month)
            sent = datetime.combine(month.replace(day=8).date(), time(10), p.tz).astimezone(UTC)
            if campaign is None or sent <= start or sent >= cal.anchor or rng.random() > p.engagement * 0.7 + 0.03:
                continue
            opened = sent + timedelta(hours=rng.expovariate(1 / 8))
            if opened >= cal.anchor - LAST_START:
                continue
            props = {"campaign_id": campaign["id"], "campaign_name": campaign[p.language],
                     "email_subject": campaign[p.language], "email_id": f"{campaign['id']}-{p.index}"}
            self.track(REST, EMAIL, opened, "Email Opened", props)
            if rng.random() < 0.3:
                url = f"https://www.example.com/{p.country.lower()}/ofertas?utm_campaign={campaign['id']}"
                self.track(REST, EMAIL, self.later(opened, 5, 120), "Email Link Clicked", {**props, "link_url": url})
            if rng.random() < 0.005:
                self.track(REST, EMAIL, self.later(opened, 5, 120), "Unsubscribed", props)
                return


def build(person: Person, calendar: Calendar, catalogue: Catalogue, seed: int) -> Year:
    """The calls and timeline entries of one person's year."""
    year = Year(person, calendar, catalogue, random.Random(f"trato-demo:{seed}:{person.index}:history"))
    year.live()
    return year
