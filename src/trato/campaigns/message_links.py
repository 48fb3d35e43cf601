"""The links of a campaign message beyond the e-mail's tracked links (see :mod:`tracking`):

- the customer's own preference and unsubscribe links carry the message's id (the pipeline renders
  them knowing it), so an unsubscribe made through them — the mail client's one-click
  ``List-Unsubscribe`` aside, which delivery signs — is counted as the campaign's
  (:mod:`attribution`); in a text message they are shortened like any link, never counted as clicks;
- in text messages (SMS, WhatsApp free text) every http(s) link becomes ``{base_url}/s/{code}``:
  short, and a click is counted when it is followed.

A code is ten characters of an HMAC (the installation's secret) of the message id and the link,
so a chunk done again after a crash produces and stores the very same codes, and nobody can
guess one. The codes of a chunk are stored in one INSERT, with the campaign, customer, variant,
channel and the target (with the campaign's UTM parameters); ``/s/{code}`` redirects only there.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import string
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from trato.campaigns import results
from trato.campaigns.models import ShortLink
from trato.campaigns.tracking import medium_for, with_utm
from trato.core.clock import utcnow
from trato.core.db import chunks, insert_for
from trato.core.settings import get_settings

TEXT_CHANNELS = ("sms", "whatsapp")
CODE_LENGTH = 10  # 62^10: about 59 bits
ALPHABET = string.digits + string.ascii_letters
SALT = b"trato.campaigns.short\x00"
MAX_TARGET = 2000
# A link in running text: up to white space, quotes or angle brackets; what closes a sentence or a
# parenthesis around the link is left out (see _trim).
_URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
_TRAILING = ".,;:!?'*\u2019\u201d\u00bb"
_CLOSING = {")": "(", "]": "[", "}": "{"}
_CODE = re.compile(rf"^[{ALPHABET}]{{{CODE_LENGTH}}}$")


def _trim(url: str) -> str:
    while url:
        last = url[-1]
        if last in _TRAILING or (last in _CLOSING and url.count(last) > url.count(_CLOSING[last])):
            url = url[:-1]
            continue
        break
    return url


def find_links(text: str) -> list[tuple[int, int, str]]:
    """The http(s) links in a text: (start, end, link), in order."""
    found = []
    for match in _URL.finditer(text):
        url = _trim(match.group(0))
        if len(url) > len("https://") and "://" in url and url.split("://", 1)[1]:
            found.append((match.start(), match.start() + len(url), url))
    return found


def code_for(message_id: str, link: str) -> str:
    """The short code of a link in a message: the same for the same message and link, unguessable."""
    key = get_settings().resolved_secret_key().encode()
    digest = hmac.new(key, SALT + f"{message_id}\x00{link}".encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest[:8], "big")
    code = []
    for _ in range(CODE_LENGTH):
        number, digit = divmod(number, len(ALPHABET))
        code.append(ALPHABET[digit])
    return "".join(code)


class MessageLinks:
    """One chunk of a campaign: rewrites each message's links (:meth:`apply`) and keeps the short
    links it made, stored with :meth:`store` before the chunk's unit of work commits."""

    def __init__(self, *, campaign_id: str, utm: Mapping[str, str]) -> None:
        self.campaign_id = campaign_id
        self.utm = dict(utm)
        self.base = get_settings().base_url
        self.rows: dict[str, dict[str, Any]] = {}

    def apply(self, parts: Mapping[str, Any], *, customer_id: str, message_id: str, variant: str, channel: str,
              links: Mapping[str, str]) -> dict[str, Any]:
        """The message's parts with every link of a text message shortened. ``links``: the message's
        own preference and unsubscribe links (rendered with its id), followed without UTM
        parameters and never counted as clicks."""
        out = dict(parts)
        if channel not in TEXT_CHANNELS or not isinstance(out.get("text"), str) or "template" in out:
            return out
        own = [str(links[name]) for name in ("preferences", "unsubscribe")
               if links.get(name) and any(isinstance(v, str) and links[name] in v for v in out.values())]
        text = self.shorten(out["text"], customer_id=customer_id, message_id=message_id, variant=variant,
                            channel=channel, own=own)
        if text != out["text"]:
            out["text"] = text
            if channel == "whatsapp" and isinstance(out.get("payload"), str):
                out["payload"] = _with_text(out["payload"], text)
        return out

    def shorten(self, text: str, *, customer_id: str, message_id: str, variant: str, channel: str,
                own: list[str] | tuple[str, ...] = ()) -> str:
        """The text with each http(s) link replaced by its short link (links too long to store,
        or that are not valid addresses, stay as they are). ``own``: the customer's own policy
        links, followed without UTM parameters and never counted as clicks."""
        found = find_links(text)
        if not found:
            return text
        utm = {**medium_for(self.utm, channel), "utm_content": variant}
        pieces, at = [], 0
        for start, end, url in found:
            try:
                target = url if url in own else with_utm(url, utm)
            except ValueError:  # e.g. a malformed IPv6 host: not a link anyone can follow
                continue
            if len(target) > MAX_TARGET:
                continue
            # The customer's own links are signed with the time: their code must not depend on it,
            # or a chunk done again in another second would make other codes.
            code = code_for(message_id, f"own:{own.index(url)}" if url in own else url)
            self.rows.setdefault(code, {
                "code": code, "campaign_id": self.campaign_id, "customer_id": customer_id, "variant": variant,
                "channel": channel, "kind": "p" if url in own else "c", "target": target, "created_at": utcnow()})
            pieces.append(text[at:start])
            pieces.append(f"{self.base}/s/{code}")
            at = end
        pieces.append(text[at:])
        return "".join(pieces)

    def store(self, session: Session) -> int:
        """Store the chunk's short links (see :func:`store_short_links`). Returns how many the chunk has."""
        return store_short_links(session, list(self.rows.values()))


def store_short_links(session: Session, rows: list[dict[str, Any]]) -> int:
    """Store a chunk's short links (one INSERT; those stored by an earlier run of the chunk are
    left as they are). Returns how many the chunk has."""
    statement = insert_for(session)(ShortLink).on_conflict_do_nothing(index_elements=["code"])
    for part in chunks(rows, 2000):
        session.execute(statement, list(part))
    return len(rows)


def _with_text(payload: str, text: str) -> str:
    """A WhatsApp Cloud API text message's body with the new text (the archive keeps what is sent)."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload
    if not isinstance(body, dict) or not isinstance(body.get("text"), dict):
        return payload
    body["text"]["body"] = text
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


def follow(session: Session, code: str, *, count: bool = True) -> str | None:
    """Where a short link goes, its click (and so the open) counted unless ``count`` is False (a
    link preview); None for a code not issued."""
    if not _CODE.match(code):
        return None
    link = session.scalar(select(ShortLink).where(ShortLink.code == code))
    if link is None:
        return None
    if link.kind == "c" and count:
        results.track(session, {"m": link.campaign_id, "c": link.customer_id, "v": link.variant,
                                "ch": link.channel, "k": "c", "u": link.target})
    return link.target
