"""Turning a template version into what one customer receives, channel by channel.

The render context is plain JSON (:func:`build_context`): the customer's traits and identities,
computed traits, the trigger's data, the company's settings, links, the language, locale, time
zone and the moment of rendering. The archive keeps that context with the version id, so
:func:`render_parts` with the same version and context gives the same bytes again.

Per recipient only Jinja runs: MJML is compiled once per version (cached with the templates).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from trato.content import channel_parts
from trato.content import email as email_kit
from trato.content import templating
from trato.content.errors import ChannelNotCovered
from trato.content.models import Communication, ContentBlockVersion, TemplateVersion
from trato.content.schemas import MARKUP_FIELDS
from trato.core.clock import iso, utcnow
from trato.core.i18n import LANGUAGES
from trato.core.settings import get_settings
from trato.customers import service as customers
from trato.policy import service as policy

Parts = dict[str, str | bytes]

# Locale for a language when the customer has none (or speaks another language than the message).
DEFAULT_LOCALES: Final = {"es": "es_ES", "en": "en_GB"}

SAMPLE_PROFILES: Final[dict[str, dict[str, Any]]] = {
    "es": {"id": "sample-es", "first_name": "Lucía", "last_name": "Fernández", "email": "lucia@example.com",
           "phone": "+34612345678", "locale": "es-ES", "country": "ES", "timezone": "Europe/Madrid",
           "city": "Madrid", "address": "Calle Mayor 10, 3º B", "postal_code": "28013", "plan": "Fibra 600 Mb",
           "customer_number": "C-104233"},
    "en": {"id": "sample-en", "first_name": "Oliver", "last_name": "Smith", "email": "oliver@example.com",
           "phone": "+447700900123", "locale": "en-GB", "country": "GB", "timezone": "Europe/London",
           "city": "London", "address": "221B Baker Street", "postal_code": "NW1 6XE", "plan": "Fibre 500",
           "customer_number": "C-208811"},
}


def json_safe(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str))


def _typed(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    return iso(value) if isinstance(value, datetime) else value.isoformat()


def customer_values(session: Session, customer_id: str) -> tuple[dict[str, Any], dict[str, list[str]], dict[str, Any]]:
    """A profile as templates see it: (customer, identities by kind, computed traits)."""
    customer = customers.get_customer(session, customer_id)
    identities: dict[str, list[str]] = {}
    for identity in customers.identities_of(session, customer.id):
        identities.setdefault(identity.kind, []).append(identity.value)
    lifetime = customers.lifetime_values(session, customer_ids=[customer.id]).get(customer.id, {})
    return _values(customer, identities, lifetime)


def _values(customer: Any, identities: dict[str, list[str]], lifetime: dict[str, int]
            ) -> tuple[dict[str, Any], dict[str, list[str]], dict[str, Any]]:
    """(profile, identities, computed) of a customer given as an ORM object or a row of its columns."""
    profile = dict(customer.traits or {})
    profile.update({
        "id": customer.id, "first_name": customer.first_name, "last_name": customer.last_name,
        "email": customer.email, "phone": customer.phone, "locale": customer.locale,
        "country": customer.country, "timezone": customer.timezone, "birthday": _typed(customer.birthday),
        "customer_since": _typed(customer.customer_since),
    })
    computed = {
        "first_seen_at": _typed(customer.first_seen_at), "last_seen_at": _typed(customer.last_seen_at),
        "event_count": customer.event_count, "purchase_count": customer.purchase_count,
        "last_purchase_at": _typed(customer.last_purchase_at), "last_channel": customer.last_channel,
        "lifetime_value": {currency: cents / 100 for currency, cents in lifetime.items()},
    }
    return profile, identities, computed


def customer_values_many(session: Session, customer_ids: list[str], *,
                         loaded: Mapping[str, customers.Loaded] | None = None,
                         ) -> dict[str, tuple[dict[str, Any], dict[str, list[str]], dict[str, Any]]]:
    """:func:`customer_values` for many customers in a few queries (bulk sends); ``loaded``: their
    profiles as :func:`customers.load_profiles` read them already (a campaign chunk reads them once)."""
    if not customer_ids:
        return {}
    if loaded is None:
        loaded = customers.load_profiles(session, customer_ids)
    lifetimes = customers.lifetime_values(session, customer_ids=[c for c in customer_ids if c in loaded])
    return {cid: _values(found.row, found.identities, lifetimes.get(cid, {}))
            for cid in customer_ids if (found := loaded.get(cid)) is not None}


def choose_language(communication: Communication, version: TemplateVersion, channel: str,
                    requested: str | None, customer_locale: str | None) -> str:
    """The asked language, else the customer's, else the communication's default: the first the
    channel variant has."""
    variants = (version.content or {}).get(channel) or {}
    if not variants:
        raise ChannelNotCovered(
            f"version {version.number} of {communication.key} has no {channel} variant",
            details={"channel": channel, "version_id": version.id},
        )
    spoken = (customer_locale or "").replace("_", "-").split("-")[0].lower() or None
    for candidate in (requested, spoken, communication.default_language, *LANGUAGES):
        if candidate and candidate in variants:
            return candidate
    return next(iter(variants))


def _company(settings: Any) -> dict[str, Any]:
    return {"name": settings.company_name, "address": settings.company_address, "url": settings.base_url,
            "currency": settings.default_currency, "country": settings.default_region}


def _links(customer_id: str, purpose: str, base: str, message_id: str | None = None) -> dict[str, str]:
    """The customer's signed one-click unsubscribe (from this purpose, by e-mail) and preference
    center links, carrying ``message_id`` when the message's id is known before it is rendered
    (campaigns); a sample profile gets links that name the pages and change nothing."""
    if not customer_id:
        return {"unsubscribe": f"{base}/u/sample", "preferences": f"{base}/p/sample"}
    return {"unsubscribe": policy.unsubscribe_url(customer_id, purpose, None, "email", message_id=message_id),
            "preferences": policy.preference_url(customer_id, message_id=message_id)}


def build_context(
    session: Session, *, communication: Communication, language: str, customer_id: str | None = None,
    sample: Mapping[str, Any] | None = None, data: Mapping[str, Any] | None = None, at: datetime | None = None,
    values: tuple[dict[str, Any], dict[str, list[str]], dict[str, Any]] | None = None,
    trusted_data: bool = False, message_id: str | None = None,
) -> dict[str, Any]:
    """The JSON render context for a real customer (by id) or a sample profile, as at ``at``
    (default: now). ``values``: the customer's :func:`customer_values`, when already loaded;
    ``trusted_data``: ``data`` is JSON-safe already (bulk renders make it so once);
    ``message_id``: the message being rendered, carried by its preference and unsubscribe links."""
    settings = get_settings()
    if values is not None:
        profile, identities, computed = values
    elif customer_id:
        profile, identities, computed = customer_values(session, customer_id)
    else:
        profile = dict(SAMPLE_PROFILES.get(language, SAMPLE_PROFILES["es"]))
        profile.update(sample or {})
        identities = {k: [str(profile[k])] for k in ("email", "phone") if profile.get(k)}
        computed = {"first_seen_at": "2024-05-02T10:00:00+00:00", "last_seen_at": iso(utcnow()),
                    "event_count": 42, "purchase_count": 3, "last_purchase_at": "2026-01-15T12:00:00+00:00",
                    "last_channel": "web", "lifetime_value": {settings.default_currency: 389.7}}
    locale = str(profile.get("locale") or "").replace("-", "_")
    if not locale.lower().startswith(language):
        locale = DEFAULT_LOCALES.get(language, language)
    base = settings.base_url
    customer_ref = str(profile.get("id") or "")
    if values is not None and trusted_data:
        # A bulk render: the profile was read from the database and ``data`` made JSON-safe once
        # for the whole chunk, so nothing needs the round trip; the sandbox is immutable, so the
        # shared values cannot be changed by one customer's template for the next.
        return {
            "customer": profile, "identities": identities, "computed": computed, "data": data,
            "company": _company(settings), "links": _links(customer_ref, communication.purpose, base, message_id),
            "lang": language, "locale": locale, "timezone": profile.get("timezone") or settings.default_timezone,
            "now": iso(at or utcnow()),
        }
    return json_safe({
        "customer": profile,
        "identities": identities,
        "computed": computed,
        "data": dict(data if data is not None else communication.sample_data or {}),
        "company": _company(settings),
        "links": _links(customer_ref, communication.purpose, base, message_id),
        "lang": language,
        "locale": locale,
        "timezone": profile.get("timezone") or settings.default_timezone,
        "now": iso(at or utcnow()),
    })


def block_texts(session: Session, version: TemplateVersion, language: str) -> dict[str, str]:
    """The pinned content blocks of a version in one language (falling back to any language)."""
    pinned = version.blocks or {}
    if not pinned:
        return {}
    rows = session.scalars(select(ContentBlockVersion).where(ContentBlockVersion.id.in_(list(pinned.values()))))
    by_id = {row.id: row for row in rows}
    texts: dict[str, str] = {}
    for key, block_version_id in pinned.items():
        row = by_id.get(block_version_id)
        if row is not None and row.body:
            texts[key] = row.body.get(language) or next(iter(row.body.values()))
    return texts


def _field(version: TemplateVersion, channel: str, language: str, field: str, source: str,
           blocks: Mapping[str, str], context: Mapping[str, Any]) -> str:
    if not source:  # an empty field (a preheader left blank) renders as nothing
        return ""
    template = templating.cached_template(
        (version.id, channel, language, field), source, blocks=blocks, autoescape=(channel, field) in MARKUP_FIELDS,
    )
    return templating.render(template, context)


def _email(version: TemplateVersion, language: str, variant: dict[str, Any], blocks: Mapping[str, str],
           context: Mapping[str, Any]) -> Parts:
    if variant.get("body_mjml"):
        key = (version.id, "email", language, "body_mjml")
        template = templating.cached_compiled(
            key, lambda: email_kit.compile_mjml(variant["body_mjml"], language=language), blocks=blocks,
        )
    else:
        key = (version.id, "email", language, "body_html")
        template = templating.cached_compiled(key, lambda: email_kit.inline_html(variant["body_html"]), blocks=blocks)
    html = templating.render(template, context)
    parts: Parts = {
        "subject": _field(version, "email", language, "subject", variant["subject"], blocks, context),
        "preheader": _field(version, "email", language, "preheader", variant.get("preheader", ""), blocks, context),
        "html": html,
    }
    parts["text"] = (_field(version, "email", language, "text", variant["text"], blocks, context)
                     if variant.get("text") else email_kit.html_to_text(html))
    return parts


# Locale formats put no-break spaces in money and dates ("48,20 €"); in an SMS they would force
# UCS-2 (70 characters a segment instead of 160) for no visible difference.
_SMS_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})


def _simple(version: TemplateVersion, channel: str, language: str, variant: dict[str, Any],
            blocks: Mapping[str, str], context: Mapping[str, Any]) -> Parts:
    parts: Parts = {name: _field(version, channel, language, name, value, blocks, context)
                    for name, value in variant.items() if isinstance(value, str)}
    if channel == "sms":
        parts["text"] = str(parts["text"]).translate(_SMS_SPACES)
    return parts


def render_parts(session: Session, *, version: TemplateVersion, channel: str, language: str,
                 context: Mapping[str, Any], documents: bool = True,
                 blocks: Mapping[str, str] | None = None) -> Parts:
    """Every part of one channel's message (text as str, documents as bytes); deterministic.

    ``documents=False`` leaves out what is slow to make and not needed to check text (letter PDFs).
    """
    variant = ((version.content or {}).get(channel) or {}).get(language)
    if variant is None:
        raise ChannelNotCovered(
            f"version {version.number} has no {channel} variant in {language}",
            details={"channel": channel, "language": language, "version_id": version.id},
        )
    if blocks is None:  # a bulk render passes them, looked up once per language
        blocks = block_texts(session, version, language)
    if channel == "email":
        return _email(version, language, variant, blocks, context)
    if channel == "whatsapp":
        customer = context.get("customer") or {}
        phones = (context.get("identities") or {}).get("phone") or []
        return channel_parts.whatsapp(
            version, language, variant, lambda f, s: _field(version, channel, language, f, s, blocks, context),
            phone=customer.get("phone") or (phones[0] if phones else None),
        )
    if channel == "letter":
        html = _field(version, channel, language, "body_html", variant["body_html"], blocks, context)
        title = _field(version, channel, language, "title", variant["title"], blocks, context)
        return channel_parts.letter(html=html, title=title, language=language, context=context, pdf=documents)
    if channel == "webhook":
        return channel_parts.webhook(variant, lambda f, s: _field(version, channel, language, f, s, blocks, context))
    return _simple(version, channel, language, variant, blocks, context)


def sha256_of_parts(parts: Parts) -> str:
    """One hash over every part, in name order: what the archive chains."""
    digest = hashlib.sha256()
    for name in sorted(parts):
        value = parts[name]
        data = value if isinstance(value, bytes) else value.encode()
        digest.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()
