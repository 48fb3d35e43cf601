"""The console's contact-policy page (``/policy``): purposes and topics with their legal basis,
quiet hours, frequency caps and the latest suppressions, for compliance and marketing teams.

Read-only here; changes go through the API (``/api/v1/policy``), which audits them.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from trato.console.service import Principal
from trato.console.web import NAV, NavEntry, language, page_router, render, requires
from trato.core import i18n
from trato.core.channels import CHANNEL_LABELS
from trato.core.http import db_read_session
from trato.core.i18n import N_
from trato.policy import service
from trato.policy.rules import SUPPRESSION_REASONS

router = page_router(prefix="/policy")
NAV.append(NavEntry("/policy", N_("Contact policy")))

LEGAL_BASES = {"consent": N_("Consent"), "contract": N_("Contract"), "legal_obligation": N_("Legal obligation"),
               "legitimate_interest": N_("Legitimate interest")}


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _window(seconds: int, lang: str) -> str:
    if seconds % 86400 == 0:
        return i18n.ngettext(lang, "%(num)s day", "%(num)s days", seconds // 86400) % {"num": seconds // 86400}
    if seconds % 3600 == 0:
        return i18n.ngettext(lang, "%(num)s hour", "%(num)s hours", seconds // 3600) % {"num": seconds // 3600}
    return i18n.ngettext(lang, "%(num)s minute", "%(num)s minutes", seconds // 60) % {"num": seconds // 60}


@router.get("")
def policy_page(request: Request, session: Session = Depends(db_read_session),
                _: Principal = Depends(requires("viewer"))) -> Response:
    lang = language(request)
    purposes = service.list_purposes(session)
    purpose_names = {p.key: p.name_es if lang == "es" else p.name_en for p, _ in purposes}

    def channel(name: str | None) -> str | None:
        return i18n.gettext(lang, CHANNEL_LABELS[name]) if name in CHANNEL_LABELS else name

    return render(
        request, "policy/policy.html",
        purposes=[{"purpose": p, "name": p.name_es if lang == "es" else p.name_en,
                   "basis": i18n.gettext(lang, LEGAL_BASES.get(p.legal_basis, p.legal_basis)),
                   "topics": [t.name_es if lang == "es" else t.name_en for t in topics]}
                  for p, topics in purposes],
        quiet=[{"purpose": purpose_names.get(q.purpose, q.purpose), "channel": q.channel,
                "channel_name": channel(q.channel), "exempt": q.exempt,
                "window": f"{_hhmm(q.start_minute)}–{_hhmm(q.end_minute)}"} for q in service.list_quiet_hours(session)],
        caps=[{"max_count": c.max_count, "window": _window(c.window_seconds, lang),
               "purpose": purpose_names.get(c.purpose, c.purpose) if c.purpose else None,
               "channel": channel(c.channel), "communication": c.communication} for c in service.list_caps(session)],
        suppressions=service.list_suppressions(session, limit=50),
        reasons={k: i18n.gettext(lang, v) for k, v in SUPPRESSION_REASONS.items()},
        channel_name=channel,
    )
