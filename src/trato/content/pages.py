"""Console pages of the content domain: the communications inventory (``/communications``) and
one communication's page: every channel previewed side by side for a real customer or a sample
profile, preflight findings, versions with diffs, and the review actions.

E-mail and web HTML show in sandboxed iframes loaded from :func:`frame`, which answers with its
own Content-Security-Policy (inline styles, no scripts, no network but images): a ``srcdoc``
frame would inherit the console's policy, which rightly forbids the inline styles every e-mail
is made of.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from trato.console import session as sessions
from trato.console.service import Principal
from trato.console.web import (
    NAV, NavEntry, SignInRequired, console_user, error_page, language, page_router, render, requires,
)
from trato.content import api as content_api
from trato.content import blocks as block_service
from trato.content import explanations
from trato.content import preview as previews
from trato.content import service
from trato.content.errors import CommunicationNotFound, VersionNotFound
from trato.content.models import KINDS, PURPOSES, STATUSES, VERSION_STATUSES
from trato.core import i18n
from trato.core.channels import CHANNEL_LABELS, CHANNELS
from trato.core.errors import TratoError
from trato.core.http import db_read_session, db_session
from trato.core.i18n import N_
from trato.customers import service as customers

router = page_router(prefix="/communications")
NAV.append(NavEntry("/communications", N_("Communications")))

STATIC = Path(__file__).parent / "static"
PURPOSE_LABELS = {
    "service": N_("Service"), "transactional": N_("Transactional"), "advice": N_("Advice"),
    "marketing": N_("Marketing"), "payment": N_("Payment"), "research": N_("Research"),
}
STATUS_LABELS = {"draft": N_("Draft"), "active": N_("Active"), "retired": N_("Retired")}
VERSION_LABELS = {"draft": N_("Draft"), "in_review": N_("In review"), "approved": N_("Approved"),
                  "changes_requested": N_("Changes requested")}
KIND_LABELS = {"reactive": N_("Reactive"), "proactive": N_("Proactive")}
ACTIONS = ("submit", "approve", "request-changes", "comments")
# What the content domain's own preflight codes are about, in the viewer's language (what each
# finding of the channel kits says: content.explanations).
FINDING_LABELS = {
    "missing_variant": N_("A channel the communication covers has no text"),
    "missing_language": N_("A channel has no text in one of the communication's languages"),
    "unknown_variable": N_("The template uses a name no message can fill"),
    "sample_missing_value": N_("The sample profile has no value for something the template uses"),
    "malformed_link": N_("A link is not a web address"),
    "insecure_link": N_("A link is not HTTPS"),
    "sms.segments": N_("The SMS takes more than one segment"),
    "sms.no_opt_out": N_("A marketing SMS should say how to stop receiving them"),
    "promotional_as_transactional": N_("Promotional words in a message that skips marketing consent and quiet hours"),
    "whatsapp.category": N_("A marketing communication uses a non-marketing WhatsApp template"),
}
REFUSALS = {
    "self_approval": N_("Four eyes: the author of a version cannot approve it. Another person must review it."),
    "warnings_not_acknowledged": N_("Acknowledge every preflight warning before approving."),
    "preflight_failed": N_("Preflight found errors: fix them and save a new version."),
    "wrong_version_state": N_("This version is not in a state that allows this."),
    "comment_required": N_("Say what should change."),
}
# The preview frame: the message's own inline styles and images, nothing that runs.
FRAME_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; font-src data:; "
                "frame-ancestors 'self'; form-action 'none'; base-uri 'none'; sandbox")
assert set(PURPOSE_LABELS) == set(PURPOSES) and set(KIND_LABELS) == set(KINDS)
assert set(STATUS_LABELS) == set(STATUSES) and set(VERSION_LABELS) == set(VERSION_STATUSES)


def mount(app: FastAPI) -> None:
    """The pages and their stylesheet."""
    from trato.console.pages import ConsoleStatic

    app.mount("/static/content", ConsoleStatic(directory=STATIC), name="content-static")
    app.include_router(frame_router)
    app.include_router(router)


def _labels(lang: str) -> dict[str, dict[str, str]]:
    def tr(labels: dict[str, str]) -> dict[str, str]:
        return {key: i18n.gettext(lang, msgid) for key, msgid in labels.items()}

    return {"purpose": tr(PURPOSE_LABELS), "status": tr(STATUS_LABELS), "version": tr(VERSION_LABELS),
            "kind": tr(KIND_LABELS), "channel": tr(CHANNEL_LABELS)}


def _filters(purpose: str, department: str, channel: str, status: str, q: str) -> dict[str, str]:
    return {
        "purpose": purpose if purpose in PURPOSES else "", "channel": channel if channel in CHANNELS else "",
        "status": status if status in STATUSES else "", "department": department.strip()[:64], "q": q.strip()[:200],
    }


@router.get("")
def inventory_page(
    request: Request, purpose: str = "", department: str = "", channel: str = "", status: str = "", q: str = "",
    session: Session = Depends(db_read_session), _: Principal = Depends(requires("viewer")),
) -> Response:
    chosen = _filters(purpose, department, channel, status, q)
    found = service.list_communications(session, **{k: v or None for k, v in chosen.items() if k != "q"},
                                        query=chosen["q"] or None)
    departments = sorted({c.department for c in service.list_communications(session)})
    blocks = [(b, len(service.block_used_by(session, block_key=b.key))) for b in service.list_blocks(session)]
    query = urlencode({k: v for k, v in chosen.items() if v})
    return render(request, "content/inventory.html", rows=service.inventory(session, found), chosen=chosen,
                  departments=departments, blocks=blocks, purposes=PURPOSES, statuses=STATUSES, channels=CHANNELS,
                  labels=_labels(language(request)),
                  export_url="/communications/export.csv" + (f"?{query}" if query else ""))


@router.get("/export.csv")
def export_page(
    purpose: str = "", department: str = "", channel: str = "", status: str = "", q: str = "",
    session: Session = Depends(db_read_session), _: Principal = Depends(requires("viewer")),
) -> Response:
    chosen = _filters(purpose, department, channel, status, q)
    found = service.list_communications(session, **{k: v or None for k, v in chosen.items() if k != "q"},
                                        query=chosen["q"] or None)
    return Response(content_api.inventory_csv(service.inventory(session, found)),
                    media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="communications.csv"'})


@router.get("/blocks/{key}")
def block_page(request: Request, key: str, session: Session = Depends(db_read_session),
               _: Principal = Depends(requires("viewer"))) -> Response:
    """A content block's text in each language and the communications that include it."""
    try:
        block = service.get_block(session, key)
    except TratoError:
        return error_page(request, 404, N_("No content block has this key."))
    version = block_service.latest_version(session, block)
    return render(request, "content/block.html", block=block, version=version,
                  used_by=service.block_used_by(session, block_key=block.key))


def _customer_choice(session: Session, customer_id: str) -> dict[str, Any] | None:
    if not customer_id:
        return None
    try:
        customer = customers.get_customer(session, customer_id)
    except TratoError:
        return None
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p) or customer.email or customer.id
    return {"id": customer.id, "name": name, "email": customer.email, "locale": customer.locale}


def _search(session: Session, q: str) -> list[dict[str, Any]]:
    found = customers.search(session, query=q.strip()[:200], limit=8) if q.strip() else []
    return [{"id": c.id, "name": " ".join(p for p in (c.first_name, c.last_name) if p) or c.id, "email": c.email,
             "locale": c.locale} for c in found]


def _view_url(communication_id: str, **params: str) -> str:
    kept = {k: v for k, v in params.items() if v}
    return f"/communications/{communication_id}" + (f"?{urlencode(kept)}" if kept else "")


@router.get("/{communication_id}/customers")
def customer_search(
    request: Request, communication_id: str, q: str = "", version: str = "", preview_lang: str = "",
    session: Session = Depends(db_read_session), _: Principal = Depends(requires("viewer")),
) -> Response:
    """The customer search of the preview (an htmx fragment)."""
    return render(request, "content/_customer_results.html", results=_search(session, q), q=q,
                  communication_id=communication_id, version=version, view_url=_view_url,
                  preview_lang=preview_lang if preview_lang in i18n.LANGUAGES else "")


@router.get("/{communication_id}")
def communication_page(
    request: Request, communication_id: str, version: str = "", customer: str = "", q: str = "",
    preview_lang: str = "", diff_from: str = "", diff_to: str = "",
    session: Session = Depends(db_read_session), principal: Principal = Depends(requires("viewer")),
) -> Response:
    try:
        communication = service.get_communication(session, communication_id)
    except CommunicationNotFound:
        return error_page(request, 404, N_("No communication has this id."))
    versions = service.list_versions(session, communication_id=communication.id)
    if not versions:
        return render(request, "content/communication.html", communication=communication, versions=[],
                      labels=_labels(language(request)), selected=None)
    selected = next((v for v in versions if v.id == version), versions[0])
    chosen_customer = _customer_choice(session, customer)
    lang = preview_lang if preview_lang in i18n.LANGUAGES else None
    shown = previews.preview(session, communication=communication, customer_id=chosen_customer["id"]
                             if chosen_customer else None, language=lang, version_id=selected.id)
    findings = (selected.findings if selected.status != "draft" else
                [f.to_dict() for f in service.preflight(session, version_id=selected.id)])
    lang_shown = language(request)
    findings = [{**f, "title": i18n.gettext(lang_shown, FINDING_LABELS[f["code"]]) if f["code"] in FINDING_LABELS
                 else None, "explained": explanations.explain(lang_shown, f["code"], f.get("detail")),
                 **_where(f.get("detail") or {})} for f in findings]
    for out in shown["channels"].values():
        if "error" in out:
            out["error"]["explained"] = explanations.explain(lang_shown, out["error"]["code"])
    diff = None
    older = next((v for v in versions if v.number < selected.number), None)
    from_id = diff_from or (older.id if older else "")
    if from_id and from_id != selected.id:
        try:
            diff = {"from": service.get_version(session, from_id),
                    "fields": service.diff_versions(session, from_version_id=from_id, to_version_id=diff_to or selected.id)}
        except (VersionNotFound, TratoError):
            diff = None
    comments = service.comments_of(session, version_ids=[v.id for v in versions])
    frame_query = urlencode({k: v for k, v in {"version": selected.id, "customer": customer,
                                               "lang": preview_lang}.items() if v})
    return render(
        request, "content/communication.html", communication=communication, versions=versions, selected=selected,
        preview=shown, findings=findings, diff=diff, comments=comments, chosen_customer=chosen_customer,
        results=_search(session, q) if q and not chosen_customer else [], q=q, preview_lang=preview_lang,
        frame_query=frame_query, labels=_labels(language(request)), view_url=_view_url,
        action_label=lambda name: explanations.action(lang_shown, name),
        warnings=sorted({f["code"] for f in findings if f.get("severity") == "warning"}),
        can_review=principal.role in ("editor", "admin") and selected.author != principal.actor,
        can_edit=principal.role in ("editor", "admin"), communication_id=communication.id, version=selected.id,
    )


def _where(detail: dict[str, Any]) -> dict[str, str]:
    """Which variant a finding is about (``sms/es/text``) and the link it names, shown beside it."""
    where = "/".join(str(detail[k]) for k in ("channel", "language", "field") if detail.get(k))
    return {"where": where, "url": str(detail.get("url") or "")}


def _frame_viewer(request: Request, session: Session = Depends(db_read_session)) -> Principal:
    try:
        principal = console_user(request, session)
    except SignInRequired:
        raise HTTPException(401, "sign in to the console to see previews") from None
    principal.require("viewer")
    return principal


# Not a ConsoleRoute: the frame answers with its own security headers, not the console's.
frame_router = APIRouter(prefix="/communications", include_in_schema=False)


@frame_router.get("/{communication_id}/frame/{channel}")
def frame(
    communication_id: str, channel: str, version: str = "", customer: str = "", lang: str = "",
    session: Session = Depends(db_read_session), _: Principal = Depends(_frame_viewer),
) -> Response:
    """The rendered HTML of an e-mail or web variant, for a sandboxed preview frame."""
    if channel not in ("email", "web"):
        return HTMLResponse("", status_code=404, headers={"Content-Security-Policy": FRAME_POLICY})
    communication = service.get_communication(session, communication_id)
    try:
        rendered = service.render(session, communication=communication, channel=channel, customer_id=customer or None,
                                  language=lang if lang in i18n.LANGUAGES else None, version_id=version or None)
        body, status_code = str(rendered.parts["html"]), 200
    except TratoError as exc:
        body, status_code = f"<p>{exc.code}</p>", 422
    headers = {"Content-Security-Policy": FRAME_POLICY, "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Frame-Options": "SAMEORIGIN"}
    return HTMLResponse(body, status_code=status_code, headers=headers)


@router.post("/{communication_id}/versions/{version_id}/{action}")
def review_action(
    request: Request, communication_id: str, version_id: str, action: str, csrf: str = Form(""),
    comment: str = Form(""), acknowledge: list[str] = Form(default=[]),
    session: Session = Depends(db_session), principal: Principal = Depends(requires("editor")),
) -> Response:
    if not sessions.csrf_valid(sessions.load(request), csrf):
        return error_page(request, 403, N_("The form has expired. Please try again."))
    if action not in ACTIONS:
        return error_page(request, 404)
    version = service.get_version(session, version_id)
    communication = service.get_communication(session, communication_id)
    if version.communication_id != communication.id:
        return error_page(request, 404)
    try:
        if action == "submit":
            service.submit(session, version_id=version.id, actor=principal.actor, comment=comment)
        elif action == "approve":
            service.approve(session, version_id=version.id, actor=principal.actor, comment=comment,
                            acknowledge=acknowledge)
        elif action == "request-changes":
            service.request_changes(session, version_id=version.id, actor=principal.actor, comment=comment)
        else:
            service.add_comment(session, version_id=version.id, actor=principal.actor, body=comment)
    except TratoError as exc:
        session.rollback()
        known = REFUSALS.get(exc.code)
        return render(request, "content/refused.html", status_code=exc.status_code, code=exc.code,
                      message=i18n.gettext(language(request), known) if known else exc.message, details=exc.details if isinstance(exc.details, list) else [],
                      back=_view_url(communication.id, version=version.id))
    session.commit()
    return RedirectResponse(_view_url(communication.id, version=version.id), status_code=303)

