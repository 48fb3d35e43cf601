"""The console shell: sign-in at ``/`` (API token, or e-mail and password), sign-out, static files.

Page machinery every domain shares (templates, ``render``, ``console_user``, ``NAV``) lives in
:mod:`trato.console.web`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session
from starlette.types import Scope

from trato.console import service as console_service
from trato.console import session as sessions
from trato.console.errors import InvalidCredentials, InvalidToken
from trato.console.throttle import sign_in_failures
from trato.console.service import Principal
from trato.console.web import (
    LANG_COOKIE, NAV, SECURITY_HEADERS, STATIC_PREFIX, NavEntry, error_page, home_path, language, page_router,
    render, safe_next,
)
from trato.core import i18n
from trato.core.http import db_read_session
from trato.core.i18n import N_

__all__ = ["NAV", "NavEntry", "mount", "router"]

router = page_router()

WRONG_TOKEN = N_("This API token is not valid: it is unknown or has been revoked.")
WRONG_PASSWORD = N_("The e-mail or the password is wrong.")
FORM_EXPIRED = N_("The form has expired. Please try again.")
TOO_MANY_FAILURES = N_("Too many failed sign-ins. Please wait a few minutes and try again.")


class ConsoleStatic(StaticFiles):
    """The console's stylesheet and htmx, served with the same security headers as its pages."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount(app: FastAPI) -> None:
    """Add the shell's routes and static files to the application."""
    i18n.load_catalogues()
    app.mount(STATIC_PREFIX, ConsoleStatic(directory=Path(__file__).parent / "static"), name="console-static")
    app.include_router(router)


def _sign_in_form(
    request: Request, *, next_path: str, error: str | None = None, status_code: int = 200,
    email: str = "", via: str = "token",
) -> Response:
    current = sessions.load(request)
    fresh = current is None
    if fresh:
        current = sessions.anonymous()
        sessions.use(request, current)
    context: dict[str, Any] = {
        "next_path": next_path,
        "error": i18n.gettext(language(request), error) if error else None,
        "email": email,
        "via": via,
    }
    response = render(request, "console/sign_in.html", status_code=status_code, **context)
    if fresh:
        assert current is not None
        sessions.save(response, current)
    return response


def _signed_in_principal(request: Request, session: Session) -> Principal | None:
    current = sessions.load(request)
    if current is None or current.principal is None:
        return None
    return console_service.principal_for(session, kind=current.principal.kind, principal_id=current.principal.id)


@router.get("/")
def sign_in_page(request: Request, next: str = "", session: Session = Depends(db_read_session)) -> Response:
    target = safe_next(next, home_path())
    if _signed_in_principal(request, session) is not None:
        return RedirectResponse(target, status_code=303)
    return _sign_in_form(request, next_path=target)


@router.post("/")
def sign_in(
    request: Request,
    session: Session = Depends(db_read_session),
    csrf: str = Form(""),
    via: str = Form("token"),
    token: str = Form(""),
    email: str = Form(""),
    password: str = Form(""),
    next: str = Form(""),
) -> Response:
    target = safe_next(next, home_path())
    via = "password" if via == "password" else "token"
    if not sessions.csrf_valid(sessions.load(request), csrf):
        # A new anonymous session and form: the old one may have expired or been forged.
        sessions.use(request, None)
        return _sign_in_form(request, next_path=target, error=FORM_EXPIRED, status_code=403, email=email, via=via)
    keys = [f"ip:{request.client.host if request.client else '-'}"]
    if via == "password" and email.strip():
        keys.append(f"email:{email.strip().lower()}")
    wait = sign_in_failures.wait_seconds(*keys)
    if wait > 0:
        response = _sign_in_form(
            request, next_path=target, error=TOO_MANY_FAILURES, status_code=429, email=email, via=via
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    language_of_user: str | None = None
    try:
        if via == "password":
            if not email.strip() or not password:
                raise InvalidCredentials("e-mail and password are both needed")
            principal = console_service.authenticate_user(session, email=email, password=password)
            user = console_service.get_user(session, principal.id)
            language_of_user = user.language if user is not None else None
        else:
            if not token.strip():
                raise InvalidToken("no token given")
            principal = console_service.authenticate_token(session, token.strip())
    except (InvalidCredentials, InvalidToken):
        sign_in_failures.failed(*keys)
        error = WRONG_PASSWORD if via == "password" else WRONG_TOKEN
        return _sign_in_form(request, next_path=target, error=error, status_code=401, email=email, via=via)
    sign_in_failures.succeeded(*keys)
    # A user's own language wins over the one shown on the form; a token keeps the current one.
    chosen = language_of_user if language_of_user in i18n.LANGUAGES else language(request)
    response = RedirectResponse(target, status_code=303)
    sessions.save(response, sessions.signed_in(principal, chosen))
    if language_of_user in i18n.LANGUAGES:
        response.delete_cookie(LANG_COOKIE, path="/")
    return response


@router.post("/logout")
def sign_out(request: Request, csrf: str = Form("")) -> Response:
    current = sessions.load(request)
    if current is None or current.principal is None:
        return RedirectResponse("/", status_code=303)
    if not sessions.csrf_valid(current, csrf):
        return error_page(request, 403, FORM_EXPIRED)
    response = RedirectResponse("/", status_code=303)
    sessions.clear(response)
    return response
