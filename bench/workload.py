"""A deterministic, realistic Segment workload for the ingest benchmarks.

A web shop in Spain: a population of people (three in four with a user id once they sign in,
all with an analytics.js anonymous id, e-mail at example.com and a valid Spanish mobile),
and the calls analytics.js sends for them: pages, Product Viewed / Added, Products Searched,
Checkout Started, Order Completed with revenue, and identify with traits. A few active people
send most of the events. The same seed always gives the same calls and messageIds.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import phonenumbers

# Events fall in the 30 days before SENT_AT; the server shifts them by its own clock (sentAt).
START = datetime(2026, 10, 1, tzinfo=UTC)
SPAN_SECONDS = 30 * 86400
SENT_AT = (START + timedelta(seconds=SPAN_SECONDS)).isoformat(timespec="milliseconds").replace("+00:00", "Z")

FIRST = ("Ana", "Lucía", "María", "Carmen", "Sofía", "Paula", "Elena", "Laura", "Marta", "Julia",
         "Hugo", "Martín", "Lucas", "Mateo", "Daniel", "Pablo", "Álvaro", "Javier", "Diego", "Sergio")
LAST = ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez",
        "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez")
ASCII = str.maketrans("áéíóúñÁÉÍÓÚÑ", "aeiounAEIOUN")
CATEGORIES = ("Zapatillas", "Camisetas", "Pantalones", "Chaquetas", "Gorras", "Mochilas")
ARTICLES = ("Zapatilla", "Camiseta", "Pantalón", "Chaqueta", "Gorra", "Mochila")
BRANDS = ("Norte", "Sierra", "Brisa", "Atlas", "Faro")
PAGES = (("/", "Inicio"), ("/ofertas", "Ofertas"), ("/novedades", "Novedades"), ("/carrito", "Carrito"),
         ("/cuenta", "Mi cuenta"), ("/ayuda/envios", "Envíos y devoluciones"))
AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Mobile Safari/537.36",
)
SHOP = "https://tienda.example.com"
ACTIVE_SHARE = 0.3  # 30% of the people send 80% of the events
# (call, event name) and how often, out of 100.
MIX = (("page", None, 30), ("track", "Product Viewed", 28), ("track", "Product Added", 11),
       ("track", "Products Searched", 6), ("track", "Checkout Started", 5),
       ("track", "Order Completed", 5), ("identify", None, 15))
TRACK_NAMES = tuple(name for call, name, _ in MIX if call == "track")


@dataclass(frozen=True)
class Person:
    user_id: str | None
    anonymous_id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    created_at: str
    agent: str
    ip: str


def population(size: int, seed: int) -> list[Person]:
    """``size`` people with unique ids, e-mails and valid E.164 Spanish mobiles (+3461xxxxxxx)."""
    rng = random.Random(f"{seed}:population")
    numbers = rng.sample(range(10_000_000), size)
    people = []
    for index in range(size):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        phone = f"+3461{numbers[index]:07d}"
        if not phonenumbers.is_valid_number(phonenumbers.parse(phone)):
            raise ValueError(f"generated phone {phone} is not valid")
        people.append(Person(
            user_id=f"usr_{index:06d}" if rng.random() < 0.75 else None,
            anonymous_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            first_name=first,
            last_name=last,
            email=f"{first}.{last}.{index}@example.com".translate(ASCII).lower(),
            phone=phone,
            created_at=(START - timedelta(days=rng.randrange(1, 1500))).date().isoformat(),
            agent=rng.choice(AGENTS),
            ip=f"83.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        ))
    return people


class Calls:
    """A stream of Segment calls for ``people``; ``stream`` names an independent sequence."""

    def __init__(self, people: list[Person], *, seed: int, stream: str) -> None:
        self.people = people
        self.rng = random.Random(f"{seed}:{stream}")
        self.active = max(1, int(len(people) * ACTIVE_SHARE))
        self.products = [
            {"product_id": f"p{n:05d}", "sku": f"SKU-{n:05d}", "category": CATEGORIES[n % len(CATEGORIES)],
             "name": f"{ARTICLES[n % len(ARTICLES)]} {BRANDS[n % len(BRANDS)]} {n}",
             "brand": BRANDS[n % len(BRANDS)], "price": round(9.95 + (n * 7919 % 15000) / 100, 2)}
            for n in range(500)
        ]
        self._weights = [w for _, _, w in MIX]

    def _person(self) -> Person:
        rng = self.rng
        index = rng.randrange(self.active) if rng.random() < 0.8 else rng.randrange(len(self.people))
        return self.people[index]

    def _timestamp(self) -> str:
        at = START + timedelta(milliseconds=self.rng.randrange(SPAN_SECONDS * 1000))
        return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _context(self, person: Person, path: str, title: str) -> dict[str, Any]:
        context: dict[str, Any] = {
            "library": {"name": "analytics.js", "version": "next-1.72.0"},
            "page": {"path": path, "url": SHOP + path, "title": title, "referrer": "https://www.google.com/",
                     "search": ""},
            "userAgent": person.agent,
            "locale": "es-ES",
            "timezone": "Europe/Madrid",
            "ip": person.ip,
        }
        if self.rng.random() < 0.2:
            context["campaign"] = {"name": "rebajas-invierno", "source": "newsletter", "medium": "email"}
        return context

    def call(self, kind: str | None = None, name: str | None = None) -> dict[str, Any]:
        """One call; ``kind``/``name`` force a type (e.g. ``track``), else drawn from the mix."""
        rng = self.rng
        if kind is None:
            kind, name, _ = rng.choices(MIX, weights=self._weights)[0]
        elif kind == "track" and name is None:
            name = rng.choice(TRACK_NAMES)
        person = self._person()
        if kind == "identify" and person.user_id is None:
            kind, name = "page", None  # anonymous people do not identify
        product = rng.choice(self.products)
        message: dict[str, Any] = {
            "type": kind,
            "messageId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "anonymousId": person.anonymous_id,
            "timestamp": self._timestamp(),
            "sentAt": SENT_AT,
        }
        # Signed-in people send their user id with most calls (always with identify).
        if person.user_id and (kind == "identify" or rng.random() < 0.85):
            message["userId"] = person.user_id
        if kind == "page":
            path, title = rng.choice(PAGES + ((f"/p/{product['sku'].lower()}", product["name"]),))
            message["name"] = title
            message["properties"] = {"path": path, "url": SHOP + path, "title": title,
                                     "referrer": "https://www.google.com/", "search": ""}
        elif kind == "identify":
            path, title = "/cuenta", "Mi cuenta"
            message["traits"] = {
                "email": person.email, "phone": person.phone, "firstName": person.first_name,
                "lastName": person.last_name, "country": "ES", "createdAt": person.created_at,
            }
        else:
            path, title = f"/p/{product['sku'].lower()}", product["name"]
            message["event"] = name
            message["properties"] = self._properties(name or "", product)
        message["context"] = self._context(person, path, title)
        return message

    def _properties(self, name: str, product: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        if name == "Products Searched":
            return {"query": rng.choice(("zapatillas running", "chaqueta impermeable", "mochila 30l"))}
        if name in ("Order Completed", "Checkout Started"):
            lines = [{**p, "quantity": rng.randrange(1, 3)} for p in rng.sample(self.products, rng.randrange(1, 4))]
            subtotal = round(sum(p["price"] * p["quantity"] for p in lines), 2)
            properties = {"order_id": f"ORD-{rng.getrandbits(40):010x}", "currency": "EUR", "products": lines,
                          "value" if name == "Checkout Started" else "subtotal": subtotal}
            if name == "Order Completed":
                properties.update({"total": round(subtotal + 4.95, 2), "revenue": subtotal, "shipping": 4.95,
                                   "tax": round(subtotal * 0.21, 2), "affiliation": "tienda online"})
            return properties
        properties = {**product, "currency": "EUR", "url": f"{SHOP}/p/{product['sku'].lower()}",
                      "image_url": f"{SHOP}/img/{product['sku'].lower()}.jpg"}
        if name == "Product Added":
            properties.update({"quantity": rng.randrange(1, 3), "cart_id": f"cart-{rng.getrandbits(32):08x}"})
        return properties


def batch_bodies(calls: Calls, events: int, batch_size: int) -> Iterator[bytes]:
    """``/v1/batch`` bodies of ``batch_size`` calls, ``events`` calls in all."""
    left = events
    while left > 0:
        n = min(batch_size, left)
        left -= n
        yield orjson.dumps({"batch": [calls.call() for _ in range(n)], "sentAt": SENT_AT})


def track_bodies(calls: Calls, events: int) -> Iterator[bytes]:
    """``/v1/track`` bodies, one call each (the type is given by the path)."""
    for _ in range(events):
        message = calls.call("track")
        del message["type"]
        yield orjson.dumps(message)
