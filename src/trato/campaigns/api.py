"""HTTP routes of campaigns (``/api/v1/campaigns``) and the public tracking links (``/t/...``, and
``/s/{code}``, the short links of text messages).

Viewers read; editors create, check, test and control; approving a marketing campaign needs
another person than its creator.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from trato.campaigns import results as campaign_results
from trato.campaigns import message_links, service, tracking
from trato.campaigns.errors import BadTrackingLink
from trato.campaigns.schemas import CampaignIn, CampaignList, CampaignOut, TestSendIn
from trato.console.auth import require
from trato.console.service import Principal
from trato.console.web import SECURITY_HEADERS, static_url, templates
from trato.core import i18n
from trato.core.db import unit_of_work
from trato.core.http import db_read_session, db_session
from trato.core.settings import get_settings

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])
tracking_router = APIRouter(prefix="/t", tags=["tracking"], include_in_schema=False)
short_link_router = APIRouter(prefix="/s", tags=["tracking"], include_in_schema=False)


@router.get("", response_model=CampaignList)
def list_campaigns(session: Session = Depends(db_read_session), _: Principal = Depends(require("viewer"))):
    return CampaignList(items=[CampaignOut.of(c) for c in service.list_campaigns(session)])


@router.post("", response_model=CampaignOut, status_code=201)
def create_campaign(body: CampaignIn, session: Session = Depends(db_session),
                    who: Principal = Depends(require("editor"))) -> CampaignOut:
    fields = body.model_dump(exclude={"variants"})
    variants = [v.model_dump() for v in body.variants] if body.variants else None
    campaign = service.create_campaign(session, actor=who.actor, variants=variants, **fields)
    session.commit()
    return CampaignOut.of(campaign)


@router.get("/{campaign_id}", response_model=CampaignOut)
def get_campaign(campaign_id: str, session: Session = Depends(db_read_session),
                 _: Principal = Depends(require("viewer"))) -> CampaignOut:
    return CampaignOut.of(service.get_campaign(session, campaign_id))


@router.post("/{campaign_id}/preflight")
def preflight(campaign_id: str, session: Session = Depends(db_read_session),
              _: Principal = Depends(require("viewer"))) -> dict[str, Any]:
    """Counts per channel, holdout, and exclusions / deferrals by reason with a sample of each."""
    return service.preflight(session, campaign_id=campaign_id)


@router.post("/{campaign_id}/test-send")
def test_send(campaign_id: str, body: TestSendIn, session: Session = Depends(db_session),
              who: Principal = Depends(require("editor"))) -> dict[str, Any]:
    sent = service.test_send(session, campaign_id=campaign_id, actor=who.actor, customer_ids=body.customer_ids,
                             seeds=body.seeds)
    session.commit()  # the seeds are sent after the commit; the rows then hold the answers
    return {"items": sent}


def _action(name: str) -> Any:
    role = "editor"

    def route(campaign_id: str, session: Session = Depends(db_session),
              who: Principal = Depends(require(role))) -> CampaignOut:
        campaign = getattr(service, name)(session, campaign_id=campaign_id, actor=who.actor)
        session.commit()
        return CampaignOut.of(campaign)

    route.__name__ = f"{name}_campaign"
    return route


for _name, _path in (("approve", "approve"), ("launch", "send"), ("pause", "pause"), ("resume", "resume"),
                     ("cancel", "cancel")):
    router.add_api_route(f"/{{campaign_id}}/{_path}", _action(_name), methods=["POST"], response_model=CampaignOut)


@router.get("/{campaign_id}/progress")
def progress(campaign_id: str, session: Session = Depends(db_read_session),
             _: Principal = Depends(require("viewer"))) -> dict[str, Any]:
    return service.progress(session, campaign_id=campaign_id)


@router.get("/{campaign_id}/results")
def results(campaign_id: str, _: Principal = Depends(require("viewer"))) -> dict[str, Any]:
    """Results per variant and channel and against the holdout (conversions attributed first)."""
    with unit_of_work() as session:
        service.get_campaign(session, campaign_id)
        campaign_results.attribute_conversions(session, campaign_id=campaign_id)
        return campaign_results.results(session, campaign_id=campaign_id)


def _followed(token: str, *, count: bool = True) -> str | None:
    payload = tracking.read_token(token)
    if not count:  # a link preview: on to the address signed in the link, nothing counted
        return payload.get("u") if isinstance(payload.get("u"), str) else None
    with unit_of_work() as session:
        return campaign_results.track(session, payload)


@tracking_router.get("/o/{token}")
def opened(token: str) -> Response:
    """The open pixel: a 1×1 GIF, never cached; a bad token still gets the image (nothing to tell)."""
    try:
        _followed(token)
    except BadTrackingLink:
        pass
    return Response(tracking.PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


@tracking_router.get("/c/{token}")
def clicked(request: Request, token: str) -> RedirectResponse:
    """A tracked link: recorded (unless a link preview fetches it), then on to the address signed in
    it (never anywhere else)."""
    target = _followed(token, count=not tracking.is_link_preview(request.headers.get("user-agent")))
    if not target:
        raise BadTrackingLink("this link is not valid")
    return RedirectResponse(target, status_code=302)


@short_link_router.get("/{code}")
def short_link(request: Request, code: str) -> Response:
    """A text message's short link: its click counted, then on to the address stored for it (never
    anywhere else). A code that was never issued gets the same page whatever it looks like."""
    with unit_of_work() as session:
        target = message_links.follow(session, code,
                                      count=not tracking.is_link_preview(request.headers.get("user-agent")))
    if target:
        return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})
    lang = i18n.negotiate(request.headers.get("accept-language")) or get_settings().default_language
    html = templates.get_template("campaigns/link_not_found.html").render(
        {"lang": lang, "static": static_url, **i18n.template_callables(lang)})
    response = HTMLResponse(html, status_code=404)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
