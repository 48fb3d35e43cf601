"""Console pages of the archive: compliance search (``/archive``) and one message as it was sent.

The entry page shows exactly what the customer saw: an e-mail in a sandboxed iframe, the SMS
text, the letter PDF as a download. The e-mail's HTML is served by ``/archive/{id}/view`` with
a policy of its own — no scripts, no remote loads, styles allowed — because an ``srcdoc``
iframe would inherit the console's policy and lose the e-mail's inline styles. Remote images
stay blocked on purpose: opening the archive must not fire a tracking pixel.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from trato.archive import proof, service
from trato.archive.errors import ContentErased, ContentMismatch, EntryNotFound, ReproducerMissing
from trato.console.service import RANK, Principal
from trato.console.web import NAV, ConsoleRoute, NavEntry, error_page, language, page_router, render, requires
from trato.core import audit, i18n
from trato.core.channels import CHANNEL_LABELS, CHANNELS
from trato.core.http import db_read_session, db_session
from trato.core.i18n import N_
from trato.core.settings import get_settings

router = page_router(prefix="/archive")
NAV.append(NavEntry("/archive", N_("Archive")))

PAGE = 50
CONTENT_ROLE = "editor"
HTML_CHANNELS = ("email", "web")
# The archived e-mail's own policy: its inline styles apply, nothing runs, nothing is fetched.
EMBED_POLICY = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
CONTENT_PROBLEMS = {
    ContentErased: N_("The content of this message was erased at the customer's request. Its hashes remain."),
    ContentMismatch: N_("The stored content does not match its archived SHA-256: it is not what was sent. "
                        "Run “trato archive verify”."),
    ReproducerMissing: N_("This message is kept as its render context and cannot be reproduced right now."),
}

# What the console calls an archived message's parts and states (catalogue ids).
PART_LABELS = {
    "subject": N_("Subject"), "preheader": N_("Preheader"), "text": N_("Text"), "html": N_("HTML"),
    "title": N_("Title"), "body": N_("Body text"), "image": N_("Image"), "deep_link": N_("Deep link"),
    "ssml": N_("SSML script"), "template": N_("WhatsApp template"), "params": N_("Template values"),
    "payload": N_("API payload"), "preview": N_("Preview text"), "pdf": N_("PDF"),
    "address": N_("Postal address"),
}
STATUS_LABELS = {
    "archived": N_("Archived"), "decided": N_("Decided"), "queued": N_("Queued"), "sending": N_("Sending"),
    "accepted": N_("Accepted by the provider"), "possibly_sent": N_("Possibly sent"), "sent": N_("Sent"),
    "delivered": N_("Delivered"), "read": N_("Read"), "opened": N_("Opened"), "clicked": N_("Clicked"),
    "failed": N_("Failed"), "bounced": N_("Bounced"), "complained": N_("Complained"),
    "unsubscribed": N_("Unsubscribed"),
}
assert set(STATUS_LABELS) == {"archived", *service.STATUSES}


def _labels(lang: str) -> dict[str, Callable[[str], str]]:
    """Functions the templates call to name a channel, a part or a state in the viewer's language."""
    def namer(labels: dict[str, str]) -> Callable[[str], str]:
        return lambda key: i18n.gettext(lang, labels[key]) if key in labels else key

    return {"channel": namer(CHANNEL_LABELS), "part": namer(PART_LABELS), "status": namer(STATUS_LABELS)}


class OwnPolicyRoute(ConsoleRoute):
    """A console route whose answer keeps headers of its own (``response.own_headers``) over the
    console's: the framed e-mail's policy, or a download's."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_own_headers(request: Request) -> Response:
            response = await handler(request)
            response.headers.update(getattr(response, "own_headers", {}))
            return response

        return with_own_headers


content_router = APIRouter(prefix="/archive", route_class=OwnPolicyRoute, include_in_schema=False)


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _start_of(day: date) -> datetime:
    """Midnight of a day in the company's time zone: the dates on the form are read there."""
    zone = i18n.zone(get_settings().default_timezone, "UTC")
    return datetime.combine(day, time(), zone)


@router.get("")
def search_page(
    request: Request,
    customer: str = "",
    communication: str = "",
    channel: str = "",
    since: str = "",
    until: str = "",
    before: str = "",
    session: Session = Depends(db_read_session),
    _: Principal = Depends(requires("viewer")),
) -> Response:
    form = {"customer": customer.strip()[:64], "communication": communication.strip()[:64],
            "channel": channel if channel in CHANNELS else "", "since": since[:10], "until": until[:10]}
    first, last = _day(form["since"]), _day(form["until"])
    bad_dates = bool((form["since"] and first is None) or (form["until"] and last is None))
    cursor = int(before) if before.isascii() and before.isdigit() and 0 < int(before) < 2**63 else None
    entries = [] if bad_dates else service.search(
        session, customer_id=form["customer"] or None, communication_id=form["communication"] or None,
        channel=form["channel"] or None, since=_start_of(first) if first else None,
        until=_start_of(last + timedelta(days=1)) if last else None, before=cursor, limit=PAGE + 1,
    )
    kept = [(key, value) for key, value in form.items() if value]
    older = (f"/archive?{urlencode([*kept, ('before', entries[PAGE - 1].sequence)])}"
             if len(entries) > PAGE else None)
    return render(request, "archive/search.html", form=form, entries=entries[:PAGE], channels=CHANNELS,
                  label=_labels(language(request)),
                  bad_dates=bad_dates, older_url=older, paged=cursor is not None,
                  first_url=f"/archive?{urlencode(kept)}")


@router.get("/{entry_id}")
def entry_page(
    request: Request,
    entry_id: str,
    session: Session = Depends(db_session),
    who: Principal = Depends(requires("viewer")),
) -> Response:
    try:
        entry = service.get_entry(session, entry_id)
    except EntryNotFound:
        return error_page(request, 404, N_("No archived message has this id."))
    may_see = RANK[who.role] >= RANK[CONTENT_ROLE]
    parts: dict[str, str | bytes] = {}
    problem = None
    if may_see:
        try:
            parts = service.content_of(session, entry.id)
        except (ContentErased, ContentMismatch, ReproducerMissing) as exc:
            problem = i18n.gettext(language(request), CONTENT_PROBLEMS[type(exc)])
        else:
            audit.record(session, actor=who.actor, action="archive.content_view", object_type="archived_message",
                         object_id=entry.id)
            session.commit()
    main = proof.main_part(entry.channel, parts)
    framed = entry.channel in HTML_CHANNELS and main == "html"
    main_text = parts[main] if main and not framed and isinstance(parts[main], str) else None
    return render(
        request, "archive/entry.html", entry=entry, may_see=may_see, problem=problem, label=_labels(language(request)),
        statuses=service.statuses_of(session, entry.id), framed=framed,
        decision=orjson.dumps(orjson.loads(entry.decision), option=orjson.OPT_INDENT_2).decode() if entry.decision else None,
        main=main, main_text=main_text,
        texts=[(name, value) for name, value in sorted(parts.items()) if isinstance(value, str) and name != main],
        files=[(name, len(value)) for name, value in sorted(parts.items()) if isinstance(value, bytes)],
    )


@content_router.get("/{entry_id}/view")
def entry_view(
    request: Request,
    entry_id: str,
    session: Session = Depends(db_read_session),
    _: Principal = Depends(requires(CONTENT_ROLE)),
) -> Response:
    """The e-mail (or web) HTML alone, for the entry page's sandboxed iframe."""
    entry = service.get_entry(session, entry_id)
    parts = service.content_of(session, entry.id)
    html = parts.get("html")
    if entry.channel not in HTML_CHANNELS or not isinstance(html, str):
        return error_page(request, 404)
    response = Response(html.encode(), media_type="text/html; charset=utf-8")
    response.own_headers = {"Content-Security-Policy": EMBED_POLICY, "X-Frame-Options": "SAMEORIGIN"}  # type: ignore[attr-defined]
    return response


@content_router.get("/{entry_id}/download")
def entry_download(
    request: Request,
    entry_id: str,
    part: str | None = None,
    session: Session = Depends(db_session),
    who: Principal = Depends(requires(CONTENT_ROLE)),
) -> Response:
    found = proof.download(session, entry_id=entry_id, part=part[:64] if part else None)
    entry = service.get_entry(session, entry_id)
    audit.record(session, actor=who.actor, action="archive.content_download", object_type="archived_message",
                 object_id=entry.id, part=found.part)
    session.commit()
    response = Response(found.body, media_type=found.media_type)
    response.own_headers = proof.headers_for(found, content_sha256=entry.content_sha256)  # type: ignore[attr-defined]
    return response
