"""The bounce mailbox poller: where no MTA can pipe mail into ``trato mail receive`` (a hosted
mailbox), trato fetches the bounce and reply address's mail over POP3 and applies each one
(:mod:`trato.delivery.mailin`).

``TRATO_MAIL_POLL_URL=pop3s://user:password@pop.example.com:995`` (or ``pop3://…:110``,
``?starttls=true`` for STLS) turns it on; the worker polls every minute and ``trato mail poll``
polls once. A mail is deleted only after it was applied and committed; the deletions take
effect at QUIT, so a poll that dies half-way leaves the rest for the next one, which applies
them again harmlessly (statuses only move forward, replies are stored once).
"""

from __future__ import annotations

import poplib
import ssl
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import structlog
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import OperationalError

from trato.core.db import unit_of_work
from trato.core.errors import ConfigurationError, TratoError
from trato.delivery import mailin

log = structlog.get_logger("trato.delivery.mailpoll")
SCHEMES = {"pop3": 110, "pop3s": 995}


class MailPollSettings(BaseSettings):
    """``TRATO_MAIL_POLL_URL`` (the mailbox), ``_PROVIDER`` (the e-mail provider whose mail comes back
    there), ``_MAX_MESSAGES`` per poll, ``_TIMEOUT`` in seconds."""

    model_config = SettingsConfigDict(env_prefix="TRATO_MAIL_POLL_", extra="ignore")

    url: SecretStr | None = None
    provider: str = "smtp"
    max_messages: int = Field(200, ge=1, le=10_000)
    timeout: float = Field(30.0, gt=0)


@dataclass(frozen=True)
class Mailbox:
    scheme: str
    host: str
    port: int
    user: str
    password: SecretStr
    starttls: bool

    @classmethod
    def from_url(cls, url: str) -> Mailbox:
        """The mailbox a ``pop3://`` or ``pop3s://`` URL names; a wrong one names the setting."""
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ConfigurationError("TRATO_MAIL_POLL_URL", "must start with pop3:// or pop3s://")
        if not parts.hostname or not parts.username:
            raise ConfigurationError("TRATO_MAIL_POLL_URL", "needs user:password@host")
        try:
            port = parts.port or SCHEMES[parts.scheme]
        except ValueError:
            raise ConfigurationError("TRATO_MAIL_POLL_URL", "has a port that is not a number") from None
        starttls = parse_qs(parts.query).get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        return cls(parts.scheme, parts.hostname, port, unquote(parts.username), SecretStr(unquote(parts.password or "")),
                   starttls)


@dataclass
class PollReport:
    fetched: int = 0
    applied: Counter[str] = field(default_factory=Counter)  # action → how many
    unreadable: int = 0
    left: int = 0  # kept in the mailbox for the next poll
    error: str | None = None


def configured() -> MailPollSettings | None:
    settings = MailPollSettings()
    return settings if settings.url is not None else None


def poll(settings: MailPollSettings) -> PollReport:
    """Fetch and apply up to ``max_messages`` mails, deleting each one once it is applied."""
    assert settings.url is not None
    box = Mailbox.from_url(settings.url.get_secret_value())
    report = PollReport()
    try:
        client = _connect(box, settings.timeout)
    except (OSError, poplib.error_proto) as exc:
        report.error = f"cannot reach {box.host}:{box.port}: {exc}"
        return report
    try:
        client.user(box.user)
        client.pass_(box.password.get_secret_value())
        count, _ = client.stat()
        report.left = count
        for number in range(1, min(count, settings.max_messages) + 1):
            _, lines, _ = client.retr(number)
            report.fetched += 1
            raw = b"\r\n".join(lines) + b"\r\n"
            try:
                with unit_of_work() as session:
                    outcome = mailin.receive(session, raw, provider=settings.provider)
                report.applied[outcome.action] += 1
            except OperationalError as exc:  # the database is away: keep this one and the rest
                report.error = f"database unavailable: {type(exc.orig or exc).__name__}"
                break
            except TratoError as exc:  # nothing will ever read it: out of the way
                log.warning("unreadable mail in the bounce mailbox", code=exc.code, number=number)
                report.unreadable += 1
            client.dele(number)
            report.left -= 1
        client.quit()  # the deletions take effect here
    except (OSError, poplib.error_proto) as exc:
        report.error = f"POP3: {exc}"
        log.warning("bounce mailbox poll failed", host=box.host, error=str(exc))
        _close(client)
    return report


def _connect(box: Mailbox, timeout: float) -> poplib.POP3:
    if box.scheme == "pop3s":
        return poplib.POP3_SSL(box.host, box.port, timeout=timeout, context=ssl.create_default_context())
    client = poplib.POP3(box.host, box.port, timeout=timeout)
    if box.starttls:
        client.stls(context=ssl.create_default_context())
    return client


def _close(client: poplib.POP3) -> None:
    try:
        client.close()
    except OSError:
        pass
