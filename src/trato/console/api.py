"""Management of API tokens (``/api/v1/tokens``), for admins."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from trato.console import service
from trato.console.auth import require
from trato.console.models import ApiToken
from trato.console.schemas import TokenCreated, TokenIn, TokenOut
from trato.console.service import Principal
from trato.core.http import db_read_session, db_session

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


def _out(token: ApiToken) -> TokenOut:
    return TokenOut(
        id=token.id, name=token.name, role=token.role, token_prefix=token.token_prefix,
        created_at=token.created_at, revoked_at=token.revoked_at,
    )


@router.get("", response_model=list[TokenOut])
def list_tokens(session: Session = Depends(db_read_session), _: Principal = Depends(require("admin"))) -> list[TokenOut]:
    return [_out(t) for t in service.list_tokens(session)]


@router.post("", response_model=TokenCreated, status_code=201)
def create_token(
    body: TokenIn, session: Session = Depends(db_session), who: Principal = Depends(require("admin"))
) -> TokenCreated:
    token, secret = service.create_token(session, name=body.name, role=body.role, actor=who.actor)
    session.commit()
    return TokenCreated(token=_out(token), secret=secret)


@router.delete("/{token_id}", status_code=204)
def revoke_token(
    token_id: str, session: Session = Depends(db_session), who: Principal = Depends(require("admin"))
) -> None:
    service.revoke_token(session, token_id=token_id, actor=who.actor)
    session.commit()
