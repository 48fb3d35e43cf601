"""The demo company's consents: a realistic mix, reproducible from the seed.

About half the customers signed up to e-mail marketing on the web or in a store (some to the
newsletter only), a fifth later refused or unsubscribed, a third accepted SMS offers and a few
sent BAJA / STOP; some answer surveys, some chose a preferred channel or fewer messages, and a
handful of addresses bounced. The proof texts are in the customer's language. Everything goes
through ``policy.service`` (its bulk path), so it is history, audit and timeline like any other consent.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trato.core.db import unit_of_work
from trato.customers import service as customers
from trato.policy import service as policy

ACTOR = "demo"
CHUNK = 500
WORDING = {
    "es": ("alta-web-v3", "Acepto recibir ofertas y novedades de Trato Demo por correo electrónico."),
    "en": ("signup-web-v3", "I agree to receive offers and news from Trato Demo by e-mail."),
}
SMS_WORDING = {
    "es": ("alta-tienda-v1", "Acepto recibir ofertas por SMS. Responde BAJA para dejar de recibirlas."),
    "en": ("store-signup-v1", "I agree to receive offers by SMS. Reply STOP to opt out."),
}


def _people(session: Session) -> Iterator[tuple[str, str, str, bool, bool]]:
    """(customer id, user id, language, has e-mail, has phone) of every demo customer, in user-id order."""
    kinds: dict[str, set[str]] = {}
    users: dict[str, str] = {}
    for cid, kind, value in session.execute(select(customers.Identity.customer_id, customers.Identity.kind,
                                                   customers.Identity.value)):
        kinds.setdefault(cid, set()).add(kind)
        if kind == "user_id":
            users[cid] = value
    locales = dict(session.execute(select(customers.Customer.id, customers.Customer.locale)
                                   .where(customers.Customer.merged_into_id.is_(None))).all())
    for cid in sorted(users, key=users.__getitem__):
        if cid in locales:
            lang = "en" if (locales[cid] or "").startswith("en") else "es"
            yield cid, users[cid], lang, "email" in kinds[cid], "phone" in kinds[cid]


def _one(session: Session, rng: random.Random, person: tuple[str, str, str, bool, bool], anchor: datetime,
         batch: list[policy.ConsentInput]) -> int:
    """Adds this person's consents to ``batch`` (written in bulk by the caller)."""
    cid, user_id, lang, has_email, has_phone = person
    written = 0

    def _consent(session: Session, cid: str, user_id: str, n: int, *, topic: str | None = None,
                 **kwargs: Any) -> None:
        batch.append(policy.ConsentInput(customer_id=cid, message_id=f"demo-consent-{user_id}-{n}",
                                         topic=topic or "", **kwargs))

    def day(low: int, high: int) -> datetime:
        return anchor - timedelta(days=rng.randint(low, high), minutes=rng.randint(0, 24 * 60 - 1))

    ip = f"198.51.100.{rng.randint(1, 254)}"
    if has_email and rng.random() < 0.55:
        version, text = WORDING[lang]
        source = rng.choice(["form", "form", "form", "agent"])
        topic = "newsletter" if rng.random() < 0.2 else None
        signed_up = day(120, 360)
        _consent(session, cid, user_id, 1, channel="email", purpose="marketing", topic=topic, state="granted",
                 source=source, at=signed_up, proof={"wording": version, "text": text, "ip": ip})
        written += 1
        if rng.random() < 0.2:
            _consent(session, cid, user_id, 2, channel="email", purpose="marketing", topic=topic, state="denied",
                     source=rng.choice(["unsubscribe", "preference_center"]), at=day(5, 110),
                     proof={"link": "one-click"})
            written += 1
        elif rng.random() < 0.15:
            _consent(session, cid, user_id, 3, channel="email", purpose="marketing", topic="offers",
                     state="denied", source="preference_center", at=day(5, 110), proof={"wording": "pc-v1"})
            written += 1
    if has_phone and rng.random() < 0.33:
        version, text = SMS_WORDING[lang]
        _consent(session, cid, user_id, 4, channel="sms", purpose="marketing", state="granted", source="form",
                 at=day(150, 360), proof={"wording": version, "text": text})
        written += 1
        if rng.random() < 0.12:
            word = "BAJA" if lang == "es" else "STOP"
            _consent(session, cid, user_id, 5, channel="sms", purpose="marketing", state="denied", source="inbound",
                     at=day(5, 140), proof={"message": word})
            written += 1
    if has_phone and rng.random() < 0.15:
        _consent(session, cid, user_id, 6, channel="whatsapp", purpose="marketing", state="granted", source="form",
                 at=day(30, 300), proof={"wording": "whatsapp-optin-v1"})
        written += 1
    if has_email and rng.random() < 0.2:
        _consent(session, cid, user_id, 7, channel="email", purpose="research", state="granted", source="form",
                 at=day(30, 300), proof={"wording": "surveys-v1"})
        written += 1
    if rng.random() < 0.2:
        channels = [c for c, ok in (("email", has_email), ("sms", has_phone), ("whatsapp", has_phone)) if ok]
        if channels:
            policy.set_preference(session, customer_id=cid, actor=ACTOR, preferred_channel=rng.choice(channels),
                                  frequency=rng.choice(["normal", "normal", "weekly", "monthly"]))
    return written


def load_consents(*, seed: int, anchor: datetime) -> int:
    """Consents for every demo customer; loading again changes nothing. Returns how many were written."""
    with unit_of_work() as session:
        policy.install_defaults(session)
        people = list(_people(session))
    written = 0
    for start in range(0, len(people), CHUNK):
        with unit_of_work() as session:
            part = people[start:start + CHUNK]
            done = policy.customers_with_consents(session, customer_ids=[p[0] for p in part])
            batch: list[policy.ConsentInput] = []
            for person in part:
                if person[0] in done:  # loaded before: a reload writes nothing
                    continue
                rng = random.Random(f"trato-demo:{seed}:consents:{person[1]}")
                written += _one(session, rng, person, anchor, batch)
            policy.set_consents(session, batch, actor=ACTOR)
    with unit_of_work() as session:  # a few addresses bounced for good
        rng = random.Random(f"trato-demo:{seed}:bounces")
        emails = sorted(v for v in session.scalars(select(customers.Identity.value)
                                                   .where(customers.Identity.kind == "email")))
        for address in rng.sample(emails, k=min(len(emails), max(1, len(emails) // 100))):
            if not policy.list_suppressions(session, kind="email", value=address):
                policy.add_suppression(session, kind="email", value=address, reason="hard_bounce", actor=ACTOR,
                                       channel="email", note="550 5.1.1 user unknown")
    return written
