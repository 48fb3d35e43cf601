"""Signed, expiring links for the customer's side: the preference center, one-click unsubscribe
and the e-mail double opt-in confirmation (:mod:`trato.core.signing`, keyed by the installation's
secret; links made earlier with itsdangerous are still read).

Each kind of link has its own salt, so a link made for one purpose can never be replayed as
another; a changed character, another customer's id or an old link are refused.

A preference or unsubscribe link sent in a message may also carry that message's id (``msg``,
optional: links without it keep working), so what the customer does through it can be counted
for the message's campaign.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from trato.core import signing
from trato.core.settings import get_settings
from trato.policy.errors import BadLink, ExpiredLink

MAX_AGE = {
    "preferences": 30 * 86400,
    "unsubscribe": 180 * 86400,  # unsubscribe links in old e-mails must keep working a long time
    "confirm": 7 * 86400,
}
PATHS = {"preferences": "/p/", "unsubscribe": "/u/", "confirm": "/c/"}


def _legacy(kind: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().resolved_secret_key(), salt=f"trato.policy.{kind}")


def make_token(kind: str, payload: dict[str, Any]) -> str:
    return signing.signer(get_settings().resolved_secret_key(), f"trato.policy.{kind}").dumps(payload, timed=True)


def make_url(kind: str, payload: dict[str, Any]) -> str:
    return f"{get_settings().base_url}{PATHS[kind]}{make_token(kind, payload)}"


def read_token(kind: str, token: str) -> dict[str, Any]:
    """The payload of a valid link, else BadLink / ExpiredLink."""
    try:
        payload = signing.read(get_settings().resolved_secret_key(), f"trato.policy.{kind}", token,
                               max_age=MAX_AGE[kind],
                               legacy=lambda t: _legacy(kind).loads(t, max_age=MAX_AGE[kind]))
    except (SignatureExpired, signing.ExpiredToken):
        raise ExpiredLink("this link has expired; ask for a new one", details={"kind": kind}) from None
    except (BadSignature, signing.BadToken, UnicodeError, ValueError):
        raise BadLink("this link is not valid", details={"kind": kind}) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("c"), str):
        raise BadLink("this link is not valid", details={"kind": kind})
    return payload


def message_of(payload: dict[str, Any]) -> str | None:
    """The id of the message a link came in, when the link carries one."""
    found = payload.get("msg")
    return found if isinstance(found, str) and found else None

