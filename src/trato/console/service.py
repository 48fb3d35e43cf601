"""Access: API tokens for systems and users for the console, with roles."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trato.console.errors import InvalidCredentials, InvalidRole, InvalidToken, RoleRequired
from trato.console.models import ROLES, ApiToken, User
from trato.core import audit
from trato.core.clock import utcnow
from trato.core.ids import new_id
from trato.core.secrets import display_prefix, hash_password, new_token, token_digest, verify_password

RANK = {"viewer": 0, "editor": 1, "admin": 2}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token or a console user, with a role."""

    kind: str  # token | user
    id: str
    name: str
    role: str

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.name}"

    def require(self, role: str) -> None:
        if RANK[self.role] < RANK[role]:
            raise RoleRequired(f"this needs the {role} role; {self.name} has {self.role}")


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidRole(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def create_token(session: Session, *, name: str, role: str, actor: str) -> tuple[ApiToken, str]:
    """A new API token; the secret is returned once and stored only hashed."""
    secret = new_token("trt")
    token = ApiToken(
        id=new_id("tok"), name=name.strip()[:120] or "token", role=_check_role(role),
        token_digest=token_digest(secret), token_prefix=display_prefix(secret), created_at=utcnow(),
    )
    session.add(token)
    audit.record(session, actor=actor, action="token.create", object_type="token", object_id=token.id, role=role)
    return token, secret


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.created_at)))


_cache: dict[str, tuple[float, Principal]] = {}
_lock = threading.Lock()
CACHE_SECONDS = 30.0


def authenticate_token(session: Session, secret: str) -> Principal:
    digest = token_digest(secret)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(digest)
    if hit and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    token = session.scalar(select(ApiToken).where(ApiToken.token_digest == digest))
    if token is None or token.revoked_at is not None:
        raise InvalidToken("the API token is not valid (unknown or revoked)")
    principal = Principal("token", token.id, token.name, token.role)
    with _lock:
        _cache[digest] = (now, principal)
    return principal


def revoke_token(session: Session, *, token_id: str, actor: str) -> None:
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=utcnow()))
    audit.record(session, actor=actor, action="token.revoke", object_type="token", object_id=token_id)
    with _lock:
        _cache.clear()


def create_user(
    session: Session, *, email: str, name: str, password: str, role: str, language: str = "es", actor: str
) -> User:
    if len(password) < 10:
        raise InvalidCredentials("a password needs at least 10 characters", code="weak_password")
    user = User(
        id=new_id("usr"), email=email.strip().lower(), name=name, role=_check_role(role),
        language=language if language in ("es", "en") else "es", password_hash=hash_password(password),
        created_at=utcnow(),
    )
    session.add(user)
    audit.record(session, actor=actor, action="user.create", object_type="user", object_id=user.id)
    return user


def authenticate_user(session: Session, *, email: str, password: str) -> Principal:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or user.disabled_at is not None or not verify_password(user.password_hash, password):
        raise InvalidCredentials("e-mail or password is wrong")
    return Principal("user", user.id, user.name, user.role)


def get_user(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


def principal_for(session: Session, *, kind: str, principal_id: str) -> Principal | None:
    """Who a console session belongs to now; None once its token is revoked or its user disabled.

    Read on every page, so that revoking a token or disabling a user also ends their sessions
    and a changed role takes effect at once.
    """
    if kind == "token":
        token = session.get(ApiToken, principal_id)
        if token is None or token.revoked_at is not None:
            return None
        return Principal("token", token.id, token.name, token.role)
    if kind == "user":
        user = session.get(User, principal_id)
        if user is None or user.disabled_at is not None:
            return None
        return Principal("user", user.id, user.name, user.role)
    return None
