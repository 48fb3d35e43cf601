"""The customer's side, reached by signed links without signing in: the preference center
(``/p/{token}``), one-click unsubscribe (``/u/{token}``, RFC 8058) and the e-mail double opt-in
confirmation (``/c/{token}``).

Plain HTML forms that work without JavaScript, in the customer's language. A GET never changes
anything (mail scanners follow links); changes come by POST and are consent history with proof
(IP, user agent, the wording's version).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from trato.console.web import SECURITY_HEADERS, static_url, templates
from trato.core import i18n
from trato.core.channels import CHANNELS
from trato.core.clock import utcnow
from trato.core.errors import TratoError
from trato.core.http import db_read_session, db_session
from trato.core.i18n import N_
from trato.core.settings import get_settings
from trato.customers import service as customers
from trato.policy import service
from trato.policy.errors import BadLink
from trato.policy.links import message_of, read_token
from trato.policy.rules import CONSENT_SOURCES, ConsentState, effective_consent

router = APIRouter(include_in_schema=False)

WORDING = "preference-center-v1"
SHOWN_CHANNELS = ("email", "sms", "whatsapp", "push")
FREQUENCIES = (("normal", N_("Whenever there is something new")), ("weekly", N_("At most once a week")),
               ("monthly", N_("At most once a month")))
STATE_LABELS = {"granted": N_("Yes"), "denied": N_("No"), "pending": N_("Awaiting confirmation"),
                "unknown": N_("Not given")}
CHANNEL_LABELS = {"email": N_("E-mail"), "sms": N_("SMS"), "whatsapp": N_("WhatsApp"), "push": N_("App notifications"),
                  "voice": N_("Phone calls"), "letter": N_("Letters"), "web": N_("Website")}


def _lang(request: Request, customer: Any) -> str:
    asked = request.query_params.get("lang")
    if asked in i18n.LANGUAGES:
        return asked
    tag = (customer.locale or "").split("-")[0].split("_")[0].lower() if customer is not None else ""
    return tag if tag in i18n.LANGUAGES else get_settings().default_language


def _page(request: Request, template: str, lang: str, *, status_code: int = 200, tz: Any = None,
          **context: Any) -> HTMLResponse:
    settings = get_settings()
    base = {"lang": lang, "static": static_url, "tz": tz or i18n.zone(settings.default_timezone, "UTC"),
            "channel_labels": {k: i18n.gettext(lang, v) for k, v in CHANNEL_LABELS.items()},
            **i18n.template_callables(lang)}
    html = templates.get_template(template).render({**base, **context})
    response = HTMLResponse(html, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Referrer-Policy"] = "no-referrer"  # the address carries the customer's token
    response.headers["Cache-Control"] = "no-store"
    return response


def _link_error(request: Request, exc: TratoError) -> HTMLResponse:
    lang = _lang(request, None)
    message = N_("This link has expired. Use the link in a newer message from us.") if exc.code == "expired_link" \
        else N_("This link is not valid. Please use the link exactly as it came in our message.")
    return _page(request, "policy/link_error.html", lang, status_code=exc.status_code,
                 message=i18n.gettext(lang, message))


def _proof(request: Request, **extra: Any) -> dict[str, Any]:
    return {"ip": request.client.host if request.client else None,
            "user_agent": request.headers.get("user-agent", "")[:300], "wording": WORDING, **extra}


# -- the preference center ----------------------------------------------------------------------


def _grid(session: Session, customer_id: str, lang: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of (purpose, topic) with the effective state per shown channel."""
    states = {(c.channel, c.purpose, c.topic): ConsentState(c.state, c.source, c.updated_at)
              for c in service.consents_of(session, customer_id=customer_id)}
    ctx = service.prepare_contexts(session, customer_ids=[customer_id], config=service.load_config(session),
                                   at=utcnow())[customer_id]
    channels = [c for c in SHOWN_CHANNELS if c in ctx.reachable] or ["email"]
    rows = []
    for purpose, topics in service.list_purposes(session):
        if purpose.legal_basis not in ("consent", "legitimate_interest"):
            continue  # contracts and legal obligations are not the customer's to switch off here
        name = purpose.name_es if lang == "es" else purpose.name_en
        for topic in topics or [None]:
            key = topic.key if topic else ""
            cells = []
            for channel in channels:
                state = effective_consent(states, channel, purpose.key, key)
                checked = state.state == "granted" if state else not purpose.requires_consent
                if state is not None and state.state == "pending":
                    checked = False
                cells.append({"channel": channel, "field": f"consent.{purpose.key}.{key or '_'}.{channel}",
                              "checked": checked, "pending": state is not None and state.state == "pending"})
            label = (topic.name_es if lang == "es" else topic.name_en) if topic else name
            rows.append({"purpose": purpose.key, "topic": key, "purpose_name": name, "label": label,
                         "requires_consent": purpose.requires_consent, "cells": cells})
    return rows, channels


def _purpose_names(session: Session, lang: str) -> dict[str, str]:
    """Purposes (``key``) and topics (``purpose/key``) by their name in the customer's language."""
    names = {}
    for purpose, topics in service.list_purposes(session):
        names[purpose.key] = purpose.name_es if lang == "es" else purpose.name_en
        names.update({f"{purpose.key}/{t.key}": t.name_es if lang == "es" else t.name_en for t in topics})
    return names


@router.get("/p/{token}")
def preference_center(request: Request, token: str, session: Session = Depends(db_read_session)) -> Response:
    try:
        payload = read_token("preferences", token)
        customer = customers.get_customer(session, payload["c"])
    except TratoError as exc:
        return _link_error(request, exc)
    lang = _lang(request, customer)
    rows, channels = _grid(session, customer.id, lang)
    preference = service.get_preference(session, customer_id=customer.id)
    history = service.consent_history(session, customer_id=customer.id, limit=30)
    return _page(
        request, "policy/preferences.html", lang, tz=i18n.zone(customer.timezone, get_settings().default_timezone),
        token=token, name=customer.first_name or "", rows=rows, channels=channels,
        preferred=(preference.preferred_channel if preference else None) or "",
        frequency=preference.frequency if preference else "normal",
        frequencies=[(k, i18n.gettext(lang, v)) for k, v in FREQUENCIES],
        history=history, state_labels={k: i18n.gettext(lang, v) for k, v in STATE_LABELS.items()},
        source_labels={k: i18n.gettext(lang, v) for k, v in CONSENT_SOURCES.items()},
        saved=request.query_params.get("saved") == "1", lang_query=f"?lang={lang}",
        purpose_names=_purpose_names(session, lang),
    )


def _same_origin(request: Request) -> bool:
    """A page elsewhere that learnt the link must not submit the customer's preferences for them
    (no cookies here, so the link is the credential). Browsers say where a form POST comes from in
    Sec-Fetch-Site (reliable even with our no-referrer policy, under which Origin is "null");
    older ones only in Origin. Clients that send neither are let through."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    allowed = {f"{request.url.scheme}://{request.headers.get('host', '')}".lower(),
               get_settings().base_url.rstrip("/").lower()}
    return origin.rstrip("/").lower() in allowed


@router.post("/p/{token}")
async def save_preferences(request: Request, token: str, session: Session = Depends(db_session)) -> Response:
    try:
        if not _same_origin(request):
            raise BadLink("this form was sent from another site", code="cross_site_form")
        payload = read_token("preferences", token)
        customer = customers.get_customer(session, payload["c"])
    except TratoError as exc:
        return _link_error(request, exc)
    form = await request.form()
    lang = _lang(request, customer)
    rows, channels = _grid(session, customer.id, lang)
    via = message_of(payload)  # the message whose link opened this page: its campaign counts a withdrawal
    proof = _proof(request, **({"message_id": via} if via else {}))
    actor = f"customer:{customer.id}"
    # The whole purpose first: ticking a topic again lifts a refusal of its purpose.
    for row in rows:
        for cell in row["cells"]:
            wanted = form.get(cell["field"]) == "1"
            if wanted == cell["checked"]:
                continue
            if wanted and row["topic"]:
                whole = next((c for c in service.consents_of(session, customer_id=customer.id)
                              if (c.channel, c.purpose, c.topic) == (cell["channel"], row["purpose"], "")), None)
                if whole is not None and whole.state == "denied":
                    service.set_consent(session, customer_id=customer.id, channel=cell["channel"],
                                        purpose=row["purpose"], state="granted", source="preference_center",
                                        proof=proof, actor=actor, via_message_id=via)
                    for other in rows:  # the purpose's other topics keep what the form says
                        if other["purpose"] == row["purpose"] and other is not row:
                            other_field = f"consent.{row['purpose']}.{other['topic'] or '_'}.{cell['channel']}"
                            service.set_consent(
                                session, customer_id=customer.id, channel=cell["channel"], purpose=row["purpose"],
                                topic=other["topic"] or None, proof=proof, actor=actor, source="preference_center",
                                state="granted" if form.get(other_field) == "1" else "denied", via_message_id=via)
            service.set_consent(session, customer_id=customer.id, channel=cell["channel"], purpose=row["purpose"],
                                topic=row["topic"] or None, state="granted" if wanted else "denied",
                                source="preference_center", proof=proof, actor=actor, via_message_id=via)
    preferred = str(form.get("preferred_channel", ""))
    frequency = str(form.get("frequency", "normal"))
    service.set_preference(session, customer_id=customer.id, actor=actor,
                           preferred_channel=preferred if preferred in channels else "",
                           frequency=frequency if frequency in ("normal", "weekly", "monthly") else "normal")
    session.commit()
    return RedirectResponse(f"/p/{token}?saved=1&lang={lang}", status_code=303)


# -- one-click unsubscribe (RFC 8058) -----------------------------------------------------------


def _link_target(session: Session, kind: str, token: str) -> tuple[Any, dict[str, Any]]:
    """The customer and payload of an unsubscribe or confirmation link whose purpose (and topic)
    still exist: a link to something removed since is refused on the page, not half-applied."""
    payload = read_token(kind, token)
    config = service.load_config(session)
    purpose, topic = payload.get("p"), payload.get("t") or ""
    if (kind == "unsubscribe" and payload.get("ch") not in CHANNELS) or not isinstance(purpose, str) \
            or purpose not in config.requires_consent or not isinstance(topic, str) \
            or (topic and topic not in config.topics.get(purpose, ())):
        raise BadLink("this link is not valid", details={"kind": kind})
    return customers.get_customer(session, payload["c"]), payload


def _purpose_label(session: Session, payload: dict[str, Any], lang: str) -> str:
    for purpose, topics in service.list_purposes(session):
        if purpose.key == payload["p"]:
            topic = next((t for t in topics if t.key == payload.get("t")), None)
            if topic is not None:
                return topic.name_es if lang == "es" else topic.name_en
            return purpose.name_es if lang == "es" else purpose.name_en
    return payload["p"]


@router.get("/u/{token}")
def unsubscribe_page(request: Request, token: str, session: Session = Depends(db_read_session)) -> Response:
    """Asks, changes nothing: mail scanners open links."""
    try:
        customer, payload = _link_target(session, "unsubscribe", token)
    except TratoError as exc:
        return _link_error(request, exc)
    lang = _lang(request, customer)
    return _page(request, "policy/unsubscribe.html", lang, token=token, done=False, channel=payload["ch"],
                 what=_purpose_label(session, payload, lang),
                 preferences=service.preference_url(customer.id, message_id=message_of(payload)))


@router.post("/u/{token}")
def unsubscribe(request: Request, token: str, session: Session = Depends(db_session)) -> Response:
    """Unsubscribes at once (the mail client's one-click POST, or the confirm button)."""
    try:
        customer, payload = _link_target(session, "unsubscribe", token)
    except TratoError as exc:
        return _link_error(request, exc)
    via = message_of(payload)  # the message it came in (List-Unsubscribe): its campaign counts it
    service.set_consent(session, customer_id=customer.id, channel=payload["ch"], purpose=payload["p"],
                        topic=payload.get("t") or None, state="denied", source="unsubscribe",
                        proof=_proof(request, link="one-click", **({"message_id": via} if via else {})),
                        actor=f"customer:{customer.id}", via_message_id=via)
    session.commit()
    lang = _lang(request, customer)
    return _page(request, "policy/unsubscribe.html", lang, token=token, done=True, channel=payload["ch"],
                 what=_purpose_label(session, payload, lang),
                 preferences=service.preference_url(customer.id, message_id=via))


# -- e-mail double opt-in -----------------------------------------------------------------------


@router.get("/c/{token}")
def confirm_page(request: Request, token: str, session: Session = Depends(db_read_session)) -> Response:
    try:
        customer, payload = _link_target(session, "confirm", token)
    except TratoError as exc:
        return _link_error(request, exc)
    lang = _lang(request, customer)
    return _page(request, "policy/confirm.html", lang, token=token, done=False,
                 what=_purpose_label(session, {"p": payload.get("p", ""), "t": payload.get("t")}, lang))


@router.post("/c/{token}")
def confirm(request: Request, token: str, session: Session = Depends(db_session)) -> Response:
    try:
        customer, payload = _link_target(session, "confirm", token)
        service.confirm_email_opt_in(session, customer_id=customer.id, purpose=str(payload.get("p")),
                                     topic=payload.get("t") or None, proof=_proof(request, link="confirmation"))
    except TratoError as exc:
        return _link_error(request, exc)
    session.commit()
    lang = _lang(request, customer)
    return _page(request, "policy/confirm.html", lang, token=token, done=True,
                 what=_purpose_label(session, {"p": payload.get("p", ""), "t": payload.get("t")}, lang))
