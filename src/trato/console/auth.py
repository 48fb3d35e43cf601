"""Authentication for the management API (Bearer tokens) and the console (signed cookie)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from trato.console import service
from trato.console.errors import MissingToken
from trato.console.service import Principal
from trato.core.http import db_read_session


def api_principal(request: Request, session: Session = Depends(db_read_session)) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise MissingToken("send the API token as 'Authorization: Bearer <token>'")
    return service.authenticate_token(session, secret.strip())


def require(role: str) -> Callable[..., Principal]:
    """A dependency that lets through callers with at least ``role``."""

    def dependency(principal: Principal = Depends(api_principal)) -> Principal:
        principal.require(role)
        return principal

    return dependency
