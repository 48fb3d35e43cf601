"""What the demo company sells and talks about: products, plans, pages, reasons for calling.

The words live in ``catalogue.json`` in Spanish and English; this module picks among them.
"""

from __future__ import annotations

import random
from typing import Any

from trato.demo.people import Person, load, weighted

SITE = {"ES": "https://www.example.com/es", "MX": "https://www.example.com/mx",
        "US": "https://www.example.com/us", "GB": "https://www.example.com/uk"}


class Catalogue:
    def __init__(self) -> None:
        data = load("catalogue.json")
        self.data = data
        self.company = data["company"]
        self.categories = data["categories"]
        self.products = weighted(data["products"])
        self.add_ons = weighted(data["add_ons"])
        self.pages = data["web_pages"]
        self.web_pages = weighted(data["web_pages"])
        self.screens = weighted(data["app_screens"])
        self.referrers = data["referrers"]
        self.search_terms = data["search_terms"]
        self.support_reasons = weighted(data["support_reasons"])
        self.queues = data["call_queues"]
        self.agents = data["agents"]
        self.complaints = data["complaints"]
        self.visit_reasons = weighted(data["store_visit_reasons"])
        self.payment_methods = {k: weighted(v) for k, v in data["payment_methods"].items()}
        self.campaigns = data["email_campaigns"]
        self.messages = data["messages"]
        self.notes = data["notes"]
        self.browsers = data["browsers"]

    def category(self, person: Person, key: str) -> str:
        names = self.categories[key]
        return names.get(person.locale) or names[person.language]

    def page_context(self, person: Person, spec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        path = spec.get("en_path", spec["path"]) if person.language == "en" else spec["path"]
        base = SITE[person.country]
        return {
            "path": path, "url": base + (path if path != "/" else "/"),
            "title": f"{spec[person.language]} | Trato Demo",
            "referrer": rng.choice(self.referrers) if rng.random() < 0.3 else "",
            "search": "",
        }

    def product(self, person: Person, item: dict[str, Any], quantity: int = 1) -> dict[str, Any]:
        price = item["price"][person.currency]
        return {
            "product_id": item["id"], "sku": item["id"].upper(), "name": item[person.language],
            "category": self.category(person, item["category"]), "brand": item.get("brand", "Trato"),
            "price": price, "currency": person.currency, "quantity": quantity,
        }

    def product_properties(self, person: Person, item: dict[str, Any]) -> dict[str, Any]:
        properties = self.product(person, item)
        del properties["quantity"]
        return properties

    def order(self, person: Person, rng: random.Random, *, prefix: str, lines: int = 1,
              items: list[dict[str, Any]] | None = None, add_on: bool = False) -> dict[str, Any]:
        """Properties of Segment's Order Completed: revenue excludes shipping; prices include tax."""
        picker = self.add_ons if add_on else self.products
        chosen = items or [picker.pick(rng) for _ in range(lines)]
        products = [self.product(person, item, 2 if rng.random() < 0.08 else 1) for item in chosen]
        revenue = round(sum(p["price"] * p["quantity"] for p in products), 2)
        shipping = 0.0 if add_on or prefix != "W" or revenue > 50 else {"MXN": 99.0}.get(person.currency, 4.99)
        return {
            "order_id": f"{prefix}{person.country}-{rng.randrange(10**8):08d}", "revenue": revenue,
            "shipping": shipping, "total": round(revenue + shipping, 2), "currency": person.currency,
            "products": products,
        }

    def complaint(self, person: Person, rng: random.Random) -> dict[str, Any]:
        complaint = rng.choice(self.complaints)
        text = complaint.get(f"text_{person.locale}") or complaint[f"text_{person.language}"]
        return {
            "case_id": f"RC-{rng.randrange(10**7):07d}", "reason": complaint[person.language],
            "reason_code": complaint["code"], "description": text,
            "severity": rng.choice(("low", "medium", "medium", "high")), "department": complaint["department"],
        }

    def message_text(self, person: Person, rng: random.Random) -> str:
        texts = self.messages.get(person.locale) or self.messages[person.language]
        return rng.choice(texts)
