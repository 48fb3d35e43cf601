"""The demo company's segments, in Spanish and English: who marketing and service teams ask for.

Loaded through the audiences service like any other; loading again adds nothing (by name).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from trato.audiences import service as audiences

ACTOR = "user:Marta Ruiz"
MADRID = "Clientes de Madrid"

DEMOS: list[tuple[str, str, dict[str, Any]]] = [
    (MADRID, "Viven en Madrid (rasgo city).", {"type": "trait", "trait": "city", "op": "eq", "value": "Madrid"}),
    ("Carrito abandonado 24h", "Añadieron un producto en los últimos 7 días y no compraron en las 24 horas siguientes.",
     {"type": "sequence", "first": "Product Added", "then_not": "Order Completed", "within_hours": 24,
      "since_days": 7}),
    ("Cumpleaños esta semana", "Su cumpleaños cae en los próximos 7 días.",
     {"type": "date", "field": "birthday", "op": "anniversary_in_next_days", "days": 7}),
    ("Customers in the United States", "Profiles whose country is US.",
     {"type": "trait", "trait": "country", "op": "eq", "value": "US"}),
    ("Compradores frecuentes", "Tres compras o más.",
     {"type": "computed", "field": "purchase_count", "op": "gte", "value": 3}),
    ("Browsed a lot, bought nothing (30 days)", "Viewed products 3+ times in the last 30 days, no order in them.",
     {"type": "and", "conditions": [
         {"type": "event", "name": "Product Viewed", "count_op": "gte", "count": 3, "within_days": 30},
         {"type": "event", "name": "Order Completed", "performed": False, "within_days": 30}]}),
    ("Clientes de hace más de un año", "Clientes desde hace más de 365 días.",
     {"type": "date", "field": "customer_since", "op": "more_than_days_ago", "days": 365}),
    ("Marketing por e-mail permitido", "Consentimiento de marketing por e-mail y una dirección no suprimida.",
     {"type": "and", "conditions": [
         {"type": "consent", "channel": "email", "purpose": "marketing", "state": "granted"},
         {"type": "reachable", "channel": "email", "purpose": "marketing"}]}),
]
# Built on another segment: membership conditions name it by id, found when loading.
MADRID_EMAIL = ("Madrid con e-mail de marketing", "Clientes de Madrid a los que se puede escribir por e-mail.")


def load_segments(session: Session) -> int:
    """Create the demo segments that do not exist yet; returns how many were created."""
    existing = {s.name: s for s in audiences.list_segments(session)}
    created = 0
    for name, description, definition in DEMOS:
        if name not in existing:
            existing[name] = audiences.create_segment(session, name=name, description=description,
                                                      definition=definition, actor=ACTOR)
            created += 1
    name, description = MADRID_EMAIL
    if name not in existing:
        audiences.create_segment(session, name=name, description=description, actor=ACTOR, definition={
            "type": "and", "conditions": [
                {"type": "segment", "segment_id": existing[MADRID].id},
                {"type": "segment", "segment_id": existing["Marketing por e-mail permitido"].id}]})
        created += 1
    return created
