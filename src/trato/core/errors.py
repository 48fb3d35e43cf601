"""The error hierarchy. Every error carries a stable ``code``; the API maps them to HTTP once.

Domains subclass these in their own ``errors.py``; the HTTP status comes from the base class.
"""

from __future__ import annotations

from typing import Any


class TratoError(Exception):
    """Base of every error that trato reports to a person or a client."""

    code = "error"
    status_code = 400

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(TratoError):
    code = "invalid_input"
    status_code = 422


class BadRequest(TratoError):
    code = "bad_request"
    status_code = 400


class NotFound(TratoError):
    code = "not_found"
    status_code = 404


class Conflict(TratoError):
    code = "conflict"
    status_code = 409


class Unauthorized(TratoError):
    code = "unauthorized"
    status_code = 401


class Forbidden(TratoError):
    code = "forbidden"
    status_code = 403


class PayloadTooLarge(TratoError):
    code = "payload_too_large"
    status_code = 413


class ConfigurationError(TratoError):
    """A setting has a wrong value; raised at start-up, before anything is served."""

    code = "configuration_error"
    status_code = 500

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}", details={"setting": setting})
        self.setting = setting
