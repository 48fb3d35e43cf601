"""Console page of printed letters (``/letters``): the print-house batches — open ones filling
up, closed ones waiting for their drop (with the error when a drop failed), dropped ones and
where they went."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from trato.console.service import Principal
from trato.console.web import NAV, NavEntry, page_router, render, requires
from trato.core.http import db_read_session
from trato.core.i18n import N_
from trato.delivery import letters

router = page_router(prefix="/letters")
NAV.append(NavEntry("/letters", N_("Letters")))

BATCH_LABELS = {"open": N_("open"), "closed": N_("closed, waiting for the drop"), "dropped": N_("at the print house")}


@router.get("")
def letters_page(request: Request, state: str = "", session: Session = Depends(db_read_session),
                 _: Principal = Depends(requires("viewer"))) -> Response:
    chosen = state if state in letters.BATCH_STATES else ""
    return render(request, "delivery/letters.html", batches=letters.list_batches(session, state=chosen or None),
                  counts=letters.counts(session), states=letters.BATCH_STATES, labels=BATCH_LABELS,
                  form={"state": chosen})
