"""WhatsApp and letter variants turned into what their channel takes, with the rendering kit's
functions (``whatsapp``, ``letter``): Meta Cloud API payloads and chat-bubble texts, A4 PDFs;
and the kit's checks of push notifications and voice scripts.

A WhatsApp variant keeps the template as approved at Meta (``body`` with ``{{1}}``..) and, per
numbered variable, the Jinja text that fills it (``params``); only those values are personal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson
from babel import Locale, UnknownLocaleError
from markupsafe import escape

from trato.content import letter as letter_kit
from trato.content import push as push_kit
from trato.content import voice as voice_kit
from trato.content import whatsapp as whatsapp_kit
from trato.content.findings import Finding
from trato.content.models import TemplateVersion
from trato.core.clock import parse_timestamp
from trato.core.settings import get_settings

Parts = dict[str, str | bytes]
RenderField = Callable[[str, str], str]


def _canonical(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def whatsapp_definition(variant: Mapping[str, Any], language: str) -> dict[str, Any]:
    """The template as created at Meta, from a variant."""
    components: list[dict[str, Any]] = []
    if variant.get("header"):
        components.append({"type": "HEADER", "format": "TEXT", "text": variant["header"]})
    components.append({"type": "BODY", "text": variant.get("body", "")})
    if variant.get("footer"):
        components.append({"type": "FOOTER", "text": variant["footer"]})
    if variant.get("buttons"):
        components.append({"type": "BUTTONS", "buttons": [
            {k: (v.upper() if k == "type" else v) for k, v in button.items() if k != "url_param" and v}
            for button in variant["buttons"]]})
    return {"name": variant.get("template_name", ""), "language": language,
            "category": str(variant.get("category", "utility")).upper(), "components": components}


def whatsapp_params(variant: Mapping[str, Any], render_field: RenderField) -> dict[str, Any]:
    """The personal values of a template message, each rendered from its Jinja text."""
    params: dict[str, Any] = {
        "header": [render_field(f"header_params.{i}", s) for i, s in enumerate(variant.get("header_params") or [])],
        "body": [render_field(f"params.{i}", s) for i, s in enumerate(variant.get("params") or [])],
    }
    buttons = {str(i): render_field(f"buttons.{i}.url_param", b["url_param"])
               for i, b in enumerate(variant.get("buttons") or []) if b.get("url_param")}
    if buttons:
        params["buttons"] = buttons
    return params


def whatsapp(version: TemplateVersion, language: str, variant: Mapping[str, Any], render_field: RenderField,
             phone: str | None) -> Parts:
    """Template messages: ``template`` (definition), ``params``, ``preview`` (the bubble) and, when
    the customer has a phone number, ``payload`` (the Cloud API request body). Session messages:
    ``text`` and ``payload``."""
    if variant.get("mode") == "session":
        text = render_field("text", variant["text"])
        parts: Parts = {"text": text}
        if phone:
            parts["payload"] = _canonical(whatsapp_kit.text_message(phone, text))
        return parts
    definition = whatsapp_definition(variant, language)
    params = whatsapp_params(variant, render_field)
    parts = {"template": _canonical(definition), "params": _canonical(params),
             "preview": _canonical(whatsapp_kit.preview(definition, params))}
    if phone:
        parts["payload"] = _canonical(whatsapp_kit.template_message(phone, definition, params))
    return parts


def whatsapp_checks(language: str, variant: Mapping[str, Any], parts: Mapping[str, Any]) -> list[Finding]:
    where = {"channel": "whatsapp", "language": language}
    if variant.get("mode") == "session":
        return []
    definition = orjson.loads(parts["template"])
    params = orjson.loads(parts["params"])
    return [Finding(f"whatsapp.{f.code}" if not f.code.startswith("whatsapp.") else f.code, f.severity,
                    f"{language}: {f.message}", {**f.detail, **where})
            for f in whatsapp_kit.check_template(definition, params)]


def _city_line(country: str, postal: str, city: str, state: str) -> list[str]:
    """The lines under the street, as each country's post writes them."""
    if country == "US":
        return [" ".join(p for p in (f"{city}," if city else "", state, postal) if p).strip(" ,")]
    if country == "GB":
        return [city.upper(), postal]
    if country in ("ES", "MX"):
        line = " ".join(p for p in (postal, city) if p)
        if state and state != city:
            line = f"{line}, {state}" if country == "MX" else f"{line} ({state})"
        return [line]
    return [" ".join(p for p in (postal, city, state) if p)]


def address_lines(customer: Mapping[str, Any], *, language: str = "en") -> list[str]:
    """The postal address for the envelope window, from the customer's traits: Segment's
    ``address`` object (street, postalCode, city, state, country) or flat ``address``,
    ``postal_code`` and ``city`` traits. No street, no letter. A country given as an ISO code
    is written the way its post expects, and named (upper case, in the letter's language) only
    when it is not the sender's."""
    name = " ".join(str(customer.get(k) or "") for k in ("first_name", "last_name")).strip()
    given = customer.get("address")
    if isinstance(given, Mapping):
        street = str(given.get("street") or "")
        postal = str(given.get("postalCode") or given.get("postal_code") or "")
        city, state = str(given.get("city") or ""), str(given.get("state") or "")
        country = str(given.get("country") or "")
        if len(country) == 2 and country.isalpha():
            code = country.upper()
            below = _city_line(code, postal, city, state)
            country = "" if code == get_settings().default_region.upper() else _country_name(code, language)
        else:
            below = [" ".join(p for p in (postal, city, state) if p)]
    else:
        street = str(given or "")
        below = [" ".join(str(customer.get(k) or "") for k in ("postal_code", "city")).strip()]
        country = ""
    if not street.strip():
        return []
    return [line for line in (name, street, *below, country) if line.strip()][:6]


def _country_name(code: str, language: str) -> str:
    try:
        return str(Locale.parse(language).territories.get(code, code)).upper()
    except (ValueError, UnknownLocaleError):
        return code


def letter(*, html: str, title: str, language: str, context: Mapping[str, Any], pdf: bool = True) -> Parts:
    """``html`` (the rendered body), ``title`` and, unless ``pdf`` is False, the PDF/A document."""
    parts: Parts = {"title": title, "html": html}
    if not pdf:
        return parts
    company = context.get("company") or {}
    created: datetime | None = parse_timestamp(context.get("now"))
    parts["pdf"] = letter_kit.render_letter(
        html, language=language, title=title,
        address_lines=address_lines(context.get("customer") or {}, language=language),
        letterhead_html=f"<strong>{escape(str(company.get('name', '')))}</strong>",
        sender_line=f"{company.get('name', '')} · {company.get('address', '')}", created=created,
    )
    return parts


def webhook(variant: Mapping[str, Any], render_field: RenderField) -> Parts:
    """``event_type`` (as written), ``text`` and ``data``: the rendered fields as canonical JSON."""
    fields = {name: render_field(f"data.{name}", source) for name, source in (variant.get("data") or {}).items()}
    return {"event_type": str(variant["event_type"]), "text": render_field("text", variant.get("text", "")),
            "data": _canonical(fields)}


def page_images(pdf: bytes) -> list[bytes]:
    """PNG images of the letter's pages for the preview (at most 6)."""
    return letter_kit.page_images(pdf, dpi=60, max_pages=6)


def checks(channel: str, language: str, variant: Mapping[str, Any], parts: Mapping[str, Any], *,
           marketing: bool) -> list[Finding]:
    """Preflight findings of WhatsApp templates, push notifications and voice scripts."""
    if channel == "whatsapp":
        found = whatsapp_checks(language, variant, parts)
        if marketing and variant.get("category") != "marketing" and variant.get("mode") != "session":
            found.append(Finding("whatsapp.category", "warning",
                                 f"{language}: a marketing communication sent as a {variant.get('category')} template",
                                 {"channel": channel, "language": language}))
        return found
    where = {"channel": channel, "language": language}
    if channel == "push":
        payload = push_kit.push_payload(str(parts.get("title", "")), str(parts.get("body", "")),
                                        parts.get("image") or None, parts.get("deep_link") or None)
        return [Finding(f.code, f.severity, f"{language}: {f.message}", {**f.detail, **where})
                for f in payload.findings]
    if channel == "voice":
        return [Finding(f.code, f.severity, f"{language}: {f.message}", {**f.detail, **where})
                for f in voice_kit.check_ssml(str(parts.get("ssml", "")))]
    return []
