"""Structured logs (structlog). Secrets never reach a log line: tokens are shown by prefix only."""

from __future__ import annotations

import logging

import structlog

_SECRET_KEYS = {"password", "token", "write_key", "secret", "authorization", "secret_key"}


def _redact(_logger: object, _name: str, event: dict[str, object]) -> dict[str, object]:
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
