"""Push notifications: a provider-neutral payload and the checks a phone's screen implies.

Interface (stable): ``push_payload(title, body, image=None, deep_link=None) -> PushPayload``
with ``payload`` (``{"title", "body", "image"?, "deep_link"?}``, which the delivery adapters
map to FCM's ``notification`` + ``data`` or APNs' ``aps.alert``) and ``findings``:

- ``push.empty`` (error): no title or no body;
- ``push.title_long`` / ``push.body_long`` (warnings): over 65 / 240 characters, where
  Android and iOS lock screens typically cut the text;
- ``push.image_url`` (error): the image is not an https URL (both platforms refuse http);
- ``push.deep_link`` (error): the deep link is not an https URL or an app scheme
  (``myapp://orders/1``), e.g. ``javascript:``; ``push.deep_link_http`` (warning) for http;
- ``push.too_large`` (error): the payload is over 4 KB, APNs' and FCM's limit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from trato.content.findings import Finding

TITLE_LIMIT = 65
BODY_LIMIT = 240
PAYLOAD_LIMIT = 4096
_SCHEME_RE = re.compile(r"([a-z][a-z0-9+.-]*):(//)?", re.I)
_REFUSED_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob"})


@dataclass(frozen=True)
class PushPayload:
    payload: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)


def _link_findings(deep_link: str) -> list[Finding]:
    match = _SCHEME_RE.match(deep_link)
    scheme = match.group(1).lower() if match else ""
    if not match or scheme in _REFUSED_SCHEMES or (scheme in ("http", "https") and not match.group(2)):
        return [Finding("push.deep_link", "error", "The deep link must be an https URL or an "
                        "app link such as myapp://orders/1.", {"deep_link": deep_link[:200]})]
    if scheme == "http":
        return [Finding("push.deep_link_http", "warning", "The deep link uses http:// rather "
                        "than https://.", {"deep_link": deep_link[:200]})]
    return []


def push_payload(title: str, body: str, image: str | None = None,
                 deep_link: str | None = None) -> PushPayload:
    """The push notification's payload and what a preflight should say about it."""
    title, body = title.strip(), body.strip()
    findings: list[Finding] = []
    if not title or not body:
        findings.append(Finding("push.empty", "error", "A push notification needs a title and "
                                "a body.", {"title": bool(title), "body": bool(body)}))
    for name, text, limit in (("title", title, TITLE_LIMIT), ("body", body, BODY_LIMIT)):
        if len(text) > limit:
            findings.append(Finding(f"push.{name}_long", "warning", f"The {name} has {len(text)} "
                                    f"characters; lock screens typically show {limit}.",
                                    {"length": len(text), "limit": limit}))
    payload: dict[str, Any] = {"title": title, "body": body}
    if image:
        payload["image"] = image.strip()
        if not payload["image"].lower().startswith("https://"):
            findings.append(Finding("push.image_url", "error", "The image must be an https URL.",
                                    {"image": payload["image"][:200]}))
    if deep_link:
        payload["deep_link"] = deep_link.strip()
        findings.extend(_link_findings(payload["deep_link"]))
    size = len(json.dumps(payload, ensure_ascii=False).encode())
    if size > PAYLOAD_LIMIT:
        findings.append(Finding("push.too_large", "error", f"The notification is {size} bytes; "
                                f"push services accept {PAYLOAD_LIMIT}.",
                                {"bytes": size, "limit": PAYLOAD_LIMIT}))
    return PushPayload(payload, findings)
