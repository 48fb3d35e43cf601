"""Console pages of the customer memory: search (``/customers``) and the 360° view of one person.

Both pages work as plain HTML forms and links; with htmx the search results follow the typing,
the timeline filters apply on click and older entries load in place.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from trato.console.service import Principal
from trato.console.web import error_page, is_fragment_request, language, page_router, render, requires
from trato.core import i18n
from trato.core.http import db_read_session
from trato.core.i18n import N_
from trato.core.settings import get_settings
from trato.customers import service
from trato.customers.errors import CustomerNotFound
from trato.customers.models import Customer
from trato.customers.traits import ALIASES
from trato.policy import service as policy
from trato.audiences import service as audiences

router = page_router(prefix="/customers")

SEARCH_LIMIT = 50
TIMELINE_PAGE = 50
MAX_QUERY = 200

KIND_LABELS = {
    "identify": N_("Identified"),
    "track": N_("Event"),
    "page": N_("Page view"),
    "screen": N_("Screen view"),
    "group": N_("Group"),
    "alias": N_("Alias"),
    "purchase": N_("Purchase"),
    "message_sent": N_("Message sent"),
    "message_received": N_("Message received"),
    "case": N_("Case"),
    "consent": N_("Consent"),
    "note": N_("Note"),
}
MERGE_STATUS_LABELS = {"merged": N_("Merged"), "refused": N_("Refused"), "undone": N_("Undone")}
# Traits kept in typed columns are shown as the profile's fields, not again among the free ones.
TYPED_TRAIT_KEYS = frozenset(name for names in ALIASES.values() for name in names) | {"name"}


def display_name(customer: Customer) -> str:
    return " ".join(part for part in (customer.first_name, customer.last_name) if part)


@router.get("")
def search_page(
    request: Request,
    q: str = "",
    session: Session = Depends(db_read_session),
    _: Principal = Depends(requires("viewer")),
) -> Response:
    query = q.strip()[:MAX_QUERY]
    found = service.search(session, query=query, limit=SEARCH_LIMIT) if query else []
    context: dict[str, Any] = {
        "q": query,
        "customers": [{"customer": c, "name": display_name(c)} for c in found],
        "limit": SEARCH_LIMIT,
    }
    if is_fragment_request(request):
        return render(request, "customers/_results.html", oob_languages=True, **context)
    return render(request, "customers/search.html", **context)


def _labels(lang: str, labels: dict[str, str]) -> dict[str, str]:
    return {key: i18n.gettext(lang, msgid) for key, msgid in labels.items()}


def _parse_before(value: str | None) -> int | None:
    # A hand-edited or stale cursor shows the newest entries rather than an error.
    try:
        cursor = int(value) if value else None
    except ValueError:
        return None
    return cursor if cursor is None or 0 < cursor < 2**63 else None


@router.get("/{customer_id}")
def customer_page(
    request: Request,
    customer_id: str,
    kind: list[str] = Query(default=[]),
    channel: list[str] = Query(default=[]),
    department: list[str] = Query(default=[]),
    before: str | None = None,
    session: Session = Depends(db_read_session),
    _: Principal = Depends(requires("viewer")),
) -> Response:
    try:
        customer = service.get_customer(session, customer_id, follow_merges=False)
    except CustomerNotFound:
        return error_page(request, 404, N_("No customer has this id."))
    if customer.merged_into_id:
        survivor = service.get_customer(session, customer.id)
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"/customers/{survivor.id}{query}", status_code=303)

    lang = language(request)
    settings = get_settings()
    selected = {"kind": kind[:20], "channel": channel[:20], "department": department[:20]}
    cursor = _parse_before(before)
    rows = service.timeline(
        session, customer_id=customer.id, kinds=selected["kind"], channels=selected["channel"],
        departments=selected["department"], before_id=cursor, limit=TIMELINE_PAGE + 1,
    )
    events, has_older = rows[:TIMELINE_PAGE], len(rows) > TIMELINE_PAGE
    filters = [(key, value) for key, values in selected.items() for value in values]
    path = f"/customers/{customer.id}"
    context: dict[str, Any] = {
        "customer": customer,
        "lifetime_values": service.lifetime_values(session, customer_ids=[customer.id]).get(customer.id, {}),
        "name": display_name(customer),
        "events": events,
        "selected": selected,
        "before": cursor,
        "timeline_url": path + (f"?{urlencode(filters)}" if filters else ""),
        "older_url": f"{path}?{urlencode([*filters, ('before', events[-1].id)])}" if has_older else None,
        "kind_labels": _labels(lang, KIND_LABELS),
        # Times on a customer's page are read in their own time zone, when they have one.
        "tz": i18n.zone(customer.timezone, settings.default_timezone),
        "tz_name": customer.timezone if customer.timezone else settings.default_timezone,
        "customer_tz": bool(customer.timezone),
    }
    if is_fragment_request(request):
        if cursor is not None:
            return render(request, "customers/_timeline_entries.html", **context)
        # The filters are now in the address bar: the language switch must carry them too.
        return render(request, "customers/_timeline.html", oob_languages=True, **context)
    context.update(
        facets=service.timeline_facets(session, customer_id=customer.id),
        identities=service.identities_of(session, customer.id),
        event_counts=service.event_counts(session, customer_id=customer.id),
        channels=service.channel_summary(session, customer_id=customer.id),
        merges=service.merge_log(session, customer_id=customer.id),
        merge_labels=_labels(lang, MERGE_STATUS_LABELS),
        policy=policy.customer_panel(session, customer_id=customer.id, lang=lang),  # the contact policy's part
        segments=audiences.segments_of(session, customer_id=customer.id),  # the segments they are in now
        free_traits=sorted(
            (key, value) for key, value in (customer.traits or {}).items() if key not in TYPED_TRAIT_KEYS
        ),
    )
    return render(request, "customers/customer.html", **context)
