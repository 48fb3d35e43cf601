"""The proof copy of an archived message: which part a download gives, its content type and name.

An e-mail downloads as its HTML, an SMS as its text, a letter as its PDF; ``part`` picks any
other part; a channel without a natural single part (WhatsApp, push) downloads every part as
JSON (bytes in base64).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson
from sqlalchemy.orm import Session

from trato.archive import service
from trato.archive.errors import PartNotFound

# The part that is "the message" on each channel, in the order they are tried.
MAIN_PART = {
    "email": ("html",), "web": ("html",), "sms": ("text", "body"), "letter": ("pdf",),
    "voice": ("ssml", "text"), "whatsapp": (), "push": (),
}
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf", "ssml": "application/ssml+xml"}
EXTENSIONS = {"html": "html", "pdf": "pdf", "ssml": "ssml"}


@dataclass(frozen=True)
class Download:
    filename: str
    media_type: str
    body: bytes
    part: str | None  # None: every part, as JSON


def main_part(channel: str, parts: dict[str, str | bytes]) -> str | None:
    """The part that shows the message itself on its channel, if it has one."""
    return next((name for name in MAIN_PART.get(channel, ()) if name in parts), None)


def download(session: Session, *, entry_id: str, part: str | None = None) -> Download:
    """The exact bytes of one part (or every part) of an archived message, checked against its hash."""
    entry = service.get_entry(session, entry_id)
    parts = service.content_of(session, entry_id)
    name = part or main_part(entry.channel, parts)
    if name is None:
        every = {key: value if isinstance(value, str) else {"base64": base64.b64encode(value).decode()}
                 for key, value in parts.items()}
        return Download(f"{entry.id}.json", "application/json", orjson.dumps(every, option=orjson.OPT_SORT_KEYS), None)
    if name not in parts:
        raise PartNotFound(f"this message has no part {name!r}", details={"parts": sorted(parts)})
    value = parts[name]
    if isinstance(value, str):
        media_type = MEDIA_TYPES.get(name, "text/plain; charset=utf-8")
        extension = EXTENSIONS.get(name, "txt")
        body = value.encode()
    else:
        media_type = MEDIA_TYPES.get(name, "application/octet-stream")
        extension = EXTENSIONS.get(name, "bin")
        body = value
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40]
    return Download(f"{entry.id}-{safe}.{extension}", media_type, body, name)


def headers_for(found: Download, *, content_sha256: str) -> dict[str, str]:
    """Download headers: an attachment, never rendered on our origin, with the archived hash."""
    return {
        "Content-Disposition": f'attachment; filename="{found.filename}"',
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "X-Content-Type-Options": "nosniff",
        "X-Content-SHA256": content_sha256,
        "Cache-Control": "no-store",
    }
