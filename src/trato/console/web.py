"""What every console page shares: templates, the viewer's language, the signed-in principal,
security headers, and HTML error pages instead of JSON ones.

A domain contributes pages with a router from :func:`page_router`, templates in its own
``templates/`` folder (reached as ``"<domain>/<file>"``), and, when it wants a place in the
header, an entry appended to :data:`NAV`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, PrefixLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

import trato
from trato.console import service as console_service
from trato.console import session as sessions
from trato.console.service import Principal
from trato.core import i18n
from trato.core.clock import as_utc
from trato.core.errors import TratoError
from trato.core.http import db_read_session
from trato.core.i18n import N_
from trato.core.settings import get_settings

log = structlog.get_logger("trato.console")

LANG_COOKIE = "trato_lang"
LANG_COOKIE_AGE = 365 * 24 * 60 * 60
LANGUAGE_LABELS = (("es", "ES"), ("en", "EN"))
STATIC_PREFIX = "/static/console"

# Self only and no inline script or style: htmx is configured through a <meta> tag.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class NavEntry:
    path: str
    label: str  # an English message id, translated when shown


# The header's navigation, in order; other domains append their entry when their pages exist.
NAV: list[NavEntry] = [NavEntry("/customers", N_("Customers"))]

ROLE_LABELS = {"admin": N_("Admin"), "editor": N_("Editor"), "viewer": N_("Viewer")}
ERROR_MESSAGES = {
    400: N_("This request is not valid."),
    403: N_("Your role does not allow this page."),
    404: N_("There is nothing here."),
    500: N_("Something went wrong on our side. It has been logged; please try again."),
}


class SignInRequired(Exception):
    """Raised by :func:`console_user`; answered with a redirect to the sign-in page."""


# -- templates ---------------------------------------------------------------------------------


def _domain_loaders() -> PrefixLoader:
    """One loader per domain package that has a ``templates/`` folder, under the domain's name."""
    root = Path(trato.__file__).resolve().parent
    return PrefixLoader(
        {
            child.name: FileSystemLoader(child / "templates")
            for child in sorted(root.iterdir())
            if (child / "templates").is_dir()
        }
    )


templates = Environment(
    loader=_domain_loaders(), autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
)
i18n.install(templates)


@pass_context
def _when(context: Context, value: Any) -> Markup:
    """A <time> element: the local reading as text, the exact UTC instant for machines and tooltips."""
    if value is None:
        return Markup("")
    utc = as_utc(value)
    return Markup('<time datetime="{0}" title="{1}">{2}</time>').format(
        utc.isoformat(timespec="seconds").replace("+00:00", "Z"),
        utc.strftime("%Y-%m-%d %H:%M UTC"),
        i18n.format_datetime(utc, context["lang"], context["tz"]),
    )


def _display(value: Any, limit: int = 2000) -> str:
    """A JSON value as plain text for a table cell (escaped by the template like any other text)."""
    if isinstance(value, str):
        text = value
    elif value is None:
        text = "null"
    else:
        try:
            text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:  # what JSON cannot hold (such as integers past 64 bits) is still shown
            text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


templates.filters.update(
    when=_when,
    day=pass_context(lambda c, v: i18n.format_day(v, c["lang"])),
    number=pass_context(lambda c, v: i18n.format_number(v, c["lang"])),
    money=pass_context(lambda c, v: i18n.format_money(v, c["lang"], c["currency"])),
    money_in=pass_context(lambda c, v, currency: i18n.format_money(v, c["lang"], currency)),
    country=pass_context(lambda c, v: i18n.territory_name(v, c["lang"])),
    language_name=pass_context(lambda c, v: i18n.language_name(v, c["lang"])),
    display=_display,
)


def static_url(name: str) -> str:
    return f"{STATIC_PREFIX}/{name}?v={trato.__version__}"


# -- the viewer --------------------------------------------------------------------------------


def language(request: Request) -> str:
    """``?lang=``, else the language cookie, else the session's, else Accept-Language, else the default."""
    asked = request.query_params.get("lang")
    if asked in i18n.LANGUAGES:
        return asked
    remembered = request.cookies.get(LANG_COOKIE)
    if remembered in i18n.LANGUAGES:
        return remembered
    current = sessions.load(request)
    if current is not None and current.language:
        return current.language
    return i18n.negotiate(request.headers.get("accept-language")) or get_settings().default_language


def console_user(request: Request, session: Session = Depends(db_read_session)) -> Principal:
    """The signed-in principal, checked against the database on every page; else a sign-in redirect."""
    current = sessions.load(request)
    if current is None or current.principal is None:
        raise SignInRequired
    principal = console_service.principal_for(
        session, kind=current.principal.kind, principal_id=current.principal.id
    )
    if principal is None:
        raise SignInRequired
    request.state.principal = principal
    return principal


def requires(role: str) -> Callable[..., Principal]:
    """A dependency for pages that need at least ``role``; others get a 403 page."""

    def dependency(principal: Principal = Depends(console_user)) -> Principal:
        principal.require(role)
        return principal

    return dependency


def is_fragment_request(request: Request) -> bool:
    """An htmx request that swaps part of a page (a history restore needs the whole page)."""
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )


def safe_next(target: str | None, default: str) -> str:
    """Only paths on this site, so that a crafted sign-in link cannot send people elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def home_path() -> str:
    return NAV[0].path


# -- rendering ---------------------------------------------------------------------------------


def _language_url(request: Request, code: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    params.append(("lang", code))
    return f"{request.url.path}?{urlencode(params)}"


def render(
    request: Request, template: str, *, status_code: int = 200, headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page (or an htmx fragment) in the viewer's language, with the console's shared context."""
    settings = get_settings()
    lang = language(request)
    principal: Principal | None = getattr(request.state, "principal", None)
    base: dict[str, Any] = {
        "request": request,
        "lang": lang,
        "languages": [(code, label, _language_url(request, code)) for code, label in LANGUAGE_LABELS],
        "oob_languages": False,
        "principal": principal,
        "role_label": i18n.gettext(lang, ROLE_LABELS.get(principal.role, principal.role)) if principal else "",
        "nav": [
            {"path": e.path, "label": i18n.gettext(lang, e.label),
             "active": request.url.path == e.path or request.url.path.startswith(e.path + "/")}
            for e in NAV
        ] if principal else [],
        "csrf_field": sessions.CSRF_FIELD,
        "csrf_token": sessions.csrf_token(sessions.load(request)),
        "static": static_url,
        "tz": i18n.zone(settings.default_timezone, "UTC"),
        "tz_name": settings.default_timezone,
        "currency": i18n.currency_of(settings.default_region),
        **i18n.template_callables(lang),
    }
    base.update(context)
    html = templates.get_template(template).render(base)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def error_page(request: Request, status_code: int, message: str | None = None) -> HTMLResponse:
    """The shell with a translated explanation; ``message`` is an English message id."""
    msgid = message or ERROR_MESSAGES.get(status_code, ERROR_MESSAGES[400])
    lang = language(request)
    return render(
        request, "console/error.html", status_code=status_code, status=status_code,
        message=i18n.gettext(lang, msgid),
    )


def _to_sign_in(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = "/" if request.method != "GET" or target == "/" else "/?" + urlencode({"next": target})
    if is_fragment_request(request):
        # htmx follows HX-Redirect with a full page load instead of swapping the answer in.
        return Response(status_code=401, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def _finish(request: Request, response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    # The same URL answers a whole page or an htmx fragment: caches must keep them apart.
    response.headers["Vary"] = ", ".join(filter(None, (response.headers.get("Vary"), "HX-Request")))
    asked = request.query_params.get("lang")
    if asked in i18n.LANGUAGES:
        response.set_cookie(LANG_COOKIE, asked, max_age=LANG_COOKIE_AGE, path="/", httponly=True, samesite="lax")
    return response


class ConsoleRoute(APIRoute):
    """A console route: errors become translated HTML pages, and every answer gets the headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired:
                response = _to_sign_in(request)
            except TratoError as exc:
                response = error_page(request, exc.status_code)
            except RequestValidationError:
                response = error_page(request, 400)
            except StarletteHTTPException as exc:
                response = error_page(request, exc.status_code)
            except Exception:
                log.exception("console page failed", path=request.url.path, method=request.method)
                response = error_page(request, 500)
            return _finish(request, response)

        return console_handler


def page_router(**kwargs: Any) -> APIRouter:
    """A router for console pages: HTML errors, security headers, and kept out of the API schema."""
    return APIRouter(route_class=ConsoleRoute, include_in_schema=False, **kwargs)
