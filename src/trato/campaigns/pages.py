"""Console pages of campaigns: the list (``/campaigns``) and a campaign's page with its progress
(count, rate, ETA), controls (approve, send, pause, resume, cancel), the pre-flight and the
results per variant and channel against the holdout, as simple HTML/SVG charts."""

from __future__ import annotations


from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from trato.campaigns import results as campaign_results
from trato.campaigns import service
from trato.console import session as sessions
from trato.console.service import Principal
from trato.console.web import NAV, NavEntry, error_page, language, page_router, render, requires
from trato.core import i18n
from trato.core.db import unit_of_work
from trato.core.errors import TratoError
from trato.core.http import db_read_session, db_session
from trato.core.i18n import N_

router = page_router(prefix="/campaigns")
NAV.append(NavEntry("/campaigns", N_("Campaigns")))

STATE_LABELS = {"draft": N_("Draft"), "scheduled": N_("Scheduled"), "running": N_("Sending"),
                "paused": N_("Paused"), "done": N_("Done"), "cancelled": N_("Cancelled")}
REASON_LABELS = {"no_consent": N_("no consent"), "suppressed": N_("suppressed"), "capped": N_("cap reached"),
                 "quiet_hours": N_("quiet hours"), "no_reachable_identity": N_("no address"),
                 "not_rendered": N_("could not be rendered"), "no_profile": N_("profile gone")}
METRICS = (("sent", N_("Sent")), ("delivered", N_("Delivered")), ("bounced", N_("Bounced")),
           ("opened", N_("Opened")), ("clicked", N_("Clicked")), ("converted", N_("Converted")),
           ("unsubscribed", N_("Unsubscribed")))
ACTIONS = ("approve", "launch", "pause", "resume", "cancel")


def _labels(lang: str, labels: dict[str, str]) -> dict[str, str]:
    return {key: i18n.gettext(lang, msgid) for key, msgid in labels.items()}


@router.get("")
def list_page(request: Request, session: Session = Depends(db_read_session),
              _: Principal = Depends(requires("viewer"))) -> Response:
    return render(request, "campaigns/campaigns.html", campaigns=service.list_campaigns(session),
                  state_labels=_labels(language(request), STATE_LABELS))


@router.get("/{campaign_id}")
def detail_page(request: Request, campaign_id: str, _: Principal = Depends(requires("viewer"))) -> Response:
    lang = language(request)
    with unit_of_work() as session:
        try:
            campaign = service.get_campaign(session, campaign_id)
        except TratoError:
            return error_page(request, 404, N_("This campaign does not exist."))
        progress = service.progress(session, campaign_id=campaign.id)
        preflight = service.preflight(session, campaign_id=campaign.id) if campaign.state == "draft" else None
        if campaign.state != "draft":
            campaign_results.attribute_conversions(session, campaign_id=campaign.id)
        found = campaign_results.results(session, campaign_id=campaign.id) if campaign.state != "draft" else None
        session.expunge(campaign)
    rows = found["by_variant_channel"] if found else []
    top = max([1, *(r["sent"] for r in rows)])
    return render(request, "campaigns/campaign.html", campaign=campaign, progress=progress, preflight=preflight,
                  results=found, rows=rows, top=top, state_labels=_labels(lang, STATE_LABELS),
                  reason_labels=_labels(lang, REASON_LABELS),
                  metrics=[(key, i18n.gettext(lang, label)) for key, label in METRICS])


@router.post("/{campaign_id}/{action}")
async def act(request: Request, campaign_id: str, action: str, session: Session = Depends(db_session),
              principal: Principal = Depends(requires("editor"))) -> Response:
    form = await request.form()
    if not sessions.csrf_valid(sessions.load(request), str(form.get("csrf", ""))):
        return error_page(request, 403, N_("The form has expired. Please try again."))
    if action not in ACTIONS:
        return error_page(request, 404, N_("This campaign does not exist."))
    try:
        getattr(service, action)(session, campaign_id=campaign_id, actor=principal.actor)
        session.commit()
    except TratoError as exc:
        session.rollback()
        return error_page(request, exc.status_code if exc.status_code < 500 else 400, exc.message)
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)
