"""The console's session: a signed cookie that says who signed in, and the CSRF tokens tied to it.

The cookie holds no secret, only a random nonce, the principal (kind, id, name, role) and the
language chosen at sign-in, signed with the instance's secret key. Every visitor of the sign-in
page gets an anonymous session first, so that the sign-in form too carries a CSRF token; signing
in replaces the nonce, so a session fixed before sign-in is worth nothing after it.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from trato.console.service import Principal
from trato.core.i18n import LANGUAGES
from trato.core.settings import get_settings

COOKIE = "trato_session"
SESSION_SALT = "console-session"
CSRF_SALT = "console-csrf"
MAX_AGE = 12 * 60 * 60
CSRF_FIELD = "csrf"
_UNREAD = object()


@dataclass(frozen=True)
class ConsoleSession:
    nonce: str
    principal: Principal | None = None
    language: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"n": self.nonce}
        if self.principal is not None:
            p = self.principal
            data["p"] = [p.kind, p.id, p.name, p.role]
        if self.language:
            data["l"] = self.language
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ConsoleSession | None:
        if not isinstance(data, dict) or not isinstance(data.get("n"), str):
            return None
        principal = None
        raw = data.get("p")
        if isinstance(raw, list) and len(raw) == 4 and all(isinstance(x, str) for x in raw):
            principal = Principal(*raw)
        language = data.get("l") if data.get("l") in LANGUAGES else None
        return cls(nonce=data["n"], principal=principal, language=language)


def anonymous() -> ConsoleSession:
    return ConsoleSession(nonce=secrets.token_urlsafe(18))


def signed_in(principal: Principal, language: str | None) -> ConsoleSession:
    return ConsoleSession(nonce=secrets.token_urlsafe(18), principal=principal, language=language)


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().resolved_secret_key(), salt=salt)


def load(request: Request) -> ConsoleSession | None:
    """The request's session if its cookie is genuine and under 12 hours old (read once per request)."""
    cached = getattr(request.state, "console_session", _UNREAD)
    if cached is not _UNREAD:
        return cached  # type: ignore[no-any-return]
    found: ConsoleSession | None = None
    raw = request.cookies.get(COOKIE)
    if raw:
        try:
            found = ConsoleSession.from_dict(_serializer(SESSION_SALT).loads(raw, max_age=MAX_AGE))
        except BadSignature:  # also SignatureExpired
            found = None
    request.state.console_session = found
    return found


def use(request: Request, session: ConsoleSession | None) -> None:
    """Make ``session`` the request's session for the rest of it (forms rendered now use its nonce)."""
    request.state.console_session = session


def save(response: Response, session: ConsoleSession) -> None:
    response.set_cookie(
        COOKIE, _serializer(SESSION_SALT).dumps(session.to_dict()), max_age=MAX_AGE, path="/",
        httponly=True, samesite="lax", secure=_secure(),
    )


def clear(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=_secure())


def _secure() -> bool:
    # Behind https the cookie must never travel in clear; on a plain-http loopback it has to.
    return get_settings().base_url.startswith("https://")


def csrf_token(session: ConsoleSession | None) -> str:
    """The token every POST form of this session carries."""
    if session is None:
        return ""
    return _serializer(CSRF_SALT).dumps(session.nonce)


def csrf_valid(session: ConsoleSession | None, token: str) -> bool:
    """Whether ``token`` was issued for this very session, less than 12 hours ago."""
    if session is None or not token:
        return False
    try:
        nonce = _serializer(CSRF_SALT).loads(token, max_age=MAX_AGE)
    except BadSignature:
        return False
    return isinstance(nonce, str) and hmac.compare_digest(nonce.encode(), session.nonce.encode())
