"""What a preflight check found: one shape for every channel's checks.

``Finding(code, severity, message, detail)``: ``code`` is stable (``sms.ucs2_by_value``,
``email.img_alt``, ``whatsapp.body_too_long`` ...) so pages translate it and approvals record
which warnings were acknowledged; ``severity`` is ``"error"`` (blocks submission) or
``"warning"`` (needs an explicit acknowledgement); ``message`` is English for logs and the API;
``detail`` is JSON-safe data the page shows next to it (counts, offending text, limits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message,
                "detail": self.detail}


def has_errors(findings: list[Finding]) -> bool:
    """True when any finding blocks submission."""
    return any(f.severity == "error" for f in findings)
