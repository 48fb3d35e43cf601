"""E-mail over SMTP (aiosmtplib): multipart HTML + text, a Message-ID of our own, and the one-click
``List-Unsubscribe`` headers (RFC 8058) on every mail that is not transactional.

The SMTP dialogue is walked step by step so that the answer can be classified: anything that
fails before DATA is a clear refusal (safe to retry); a connection lost or a timeout while the
message is being handed over is ambiguous — the server may have queued it.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from collections.abc import Coroutine
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib
from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from trato.core.clock import utcnow
from trato.delivery.channels.base import (
    ChannelAdapter, CheckResult, Limits, OutgoingMessage, ProviderResult, explicit_settings,
)

T = TypeVar("T")


class SmtpSettings(BaseSettings):
    """``TRATO_SMTP_HOST``, ``_PORT``, ``_USERNAME``, ``_PASSWORD``, ``_STARTTLS``, ``_FROM``."""

    model_config = SettingsConfigDict(env_prefix="TRATO_SMTP_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(587, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    # None: STARTTLS when the server offers it; True: required; False: never.
    starttls: bool | None = None
    use_tls: bool = False  # implicit TLS (port 465)
    from_address: str = Field("trato@localhost", validation_alias=AliasChoices("from_address", "trato_smtp_from"))
    timeout: float = Field(10.0, gt=0)


def _permanent(code: int) -> bool:
    return 500 <= code < 600


class SmtpEmail(ChannelAdapter):
    name: ClassVar[str] = "smtp"
    channels: ClassVar[tuple[str, ...]] = ("email",)
    capabilities: ClassVar[frozenset[str]] = frozenset({"html", "text", "list_unsubscribe", "starttls", "auth"})
    limits: ClassVar[Limits] = Limits(max_connections=4, max_body_bytes=10 * 1024 * 1024)
    settings_model: ClassVar[type[BaseModel]] = SmtpSettings
    url_schemes: ClassVar[tuple[str, ...]] = ("smtp", "smtps")

    @classmethod
    def settings_from_url(cls, url: str) -> BaseModel:
        """``smtp://USER:PASS@HOST:587?tls=starttls&from=Name%20<a@b.example>&timeout=10``.

        ``smtp://`` uses STARTTLS when the server offers it (``tls=starttls`` requires it,
        ``tls=none`` never); ``smtps://`` is implicit TLS (port 465 unless given).
        """
        parsed = urlsplit(url)
        if parsed.scheme not in cls.url_schemes or not parsed.hostname:
            raise ValueError("write SMTP as smtp://[USER:PASSWORD@]HOST[:PORT][?tls=starttls|none&from=ADDRESS]")
        query = dict(parse_qsl(parsed.query, keep_blank_values=True))
        unknown = set(query) - {"tls", "from", "timeout"}
        if unknown:
            raise ValueError(f"unknown SMTP URL option {sorted(unknown)[0]!r}; the options are tls, from, timeout")
        implicit = parsed.scheme == "smtps"
        try:
            port = parsed.port
        except ValueError:
            raise ValueError("the SMTP port must be a number from 1 to 65535") from None
        data: dict[str, object] = {"host": parsed.hostname, "use_tls": implicit, "port": port or (465 if implicit else 587)}
        if parsed.username:
            data["username"] = unquote(parsed.username)
            data["password"] = unquote(parsed.password or "")
        tls = query.get("tls", "").lower()
        if tls not in _TLS:
            raise ValueError("tls must be starttls (required), auto (when offered) or none")
        if not implicit:
            data["starttls"] = _TLS[tls]
        if "from" in query:
            data["from_address"] = query["from"]
        if "timeout" in query:
            data["timeout"] = query["timeout"]
        return explicit_settings(SmtpSettings, data)

    def check(self) -> CheckResult:
        """Connect, greet, STARTTLS and sign in as a send would, then say goodbye without sending."""
        return _run(self._check())

    async def _check(self) -> CheckResult:
        settings = self.smtp
        client = aiosmtplib.SMTP(hostname=settings.host, port=settings.port, timeout=settings.timeout,
                                 use_tls=settings.use_tls, start_tls=settings.starttls)
        try:
            await client.connect()
            if settings.username:
                await client.login(settings.username,
                                   settings.password.get_secret_value() if settings.password else "")
            await client.noop()
        except aiosmtplib.SMTPResponseException as exc:
            return CheckResult(False, f"the SMTP server at {settings.host}:{settings.port} answered {exc.code}: "
                                      f"{exc.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return CheckResult(False, f"cannot reach the SMTP server at {settings.host}:{settings.port}: {exc}")
        finally:
            await _quit(client)
        signed = f" as {settings.username}" if settings.username else ""
        return CheckResult(True, f"the SMTP server at {settings.host}:{settings.port} accepts us{signed}")

    @property
    def smtp(self) -> SmtpSettings:
        assert isinstance(self.settings, SmtpSettings)
        return self.settings

    def build(self, message: OutgoingMessage) -> EmailMessage:
        """The MIME message: text first, HTML as the preferred alternative."""
        mail = EmailMessage()
        domain = parseaddr(self.smtp.from_address)[1].rpartition("@")[2] or "localhost"
        mail["Message-ID"] = f"<{message.message_id}@{domain}>"
        mail["Date"] = format_datetime(utcnow())
        mail["From"] = self.smtp.from_address
        mail["To"] = message.recipient
        mail["Subject"] = str(message.parts.get("subject", ""))
        if not message.transactional and message.unsubscribe_url:
            mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(str(message.parts.get("text", "")), subtype="plain", charset="utf-8")
        if message.parts.get("html"):
            mail.add_alternative(str(message.parts["html"]), subtype="html", charset="utf-8")
        mail["Content-Language"] = message.language  # after the body: set_content drops Content-* headers
        return mail

    def send(self, message: OutgoingMessage) -> ProviderResult:
        mail = self.build(message)
        return _run(self._send(mail, message.recipient))

    async def _send(self, mail: EmailMessage, recipient: str) -> ProviderResult:
        settings = self.smtp
        client = aiosmtplib.SMTP(
            hostname=settings.host, port=settings.port, timeout=settings.timeout, use_tls=settings.use_tls,
            start_tls=settings.starttls,
        )
        message_id = str(mail["Message-ID"])
        try:
            return await self._dialogue(client, mail, recipient, message_id)
        finally:
            await _quit(client)

    async def _dialogue(self, client: aiosmtplib.SMTP, mail: EmailMessage, recipient: str,
                        message_id: str) -> ProviderResult:
        settings = self.smtp
        try:
            await client.connect()
            if settings.username:
                password = settings.password.get_secret_value() if settings.password else ""
                await client.login(settings.username, password)
            await client.mail(parseaddr(settings.from_address)[1])
            await client.rcpt(recipient)
        except aiosmtplib.SMTPResponseException as exc:
            return ProviderResult.refused(f"SMTP {exc.code}: {exc.message}", permanent=_permanent(exc.code))
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return ProviderResult.refused(f"SMTP server unreachable: {exc}")
        try:
            await client.data(mail.as_bytes())
        except aiosmtplib.SMTPResponseException as exc:  # the server answered: a clear refusal
            return ProviderResult.refused(f"SMTP {exc.code}: {exc.message}", permanent=_permanent(exc.code))
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return ProviderResult.ambiguous(f"connection lost while handing the message over: {exc}")
        return ProviderResult.accepted(message_id)

_TLS = {"": None, "auto": None, "starttls": True, "required": True, "none": False, "no": False, "off": False}


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # the usual case: a worker thread without a loop
        return asyncio.run(work)
    # Called from a thread that runs a loop already (an async caller): a thread of its own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        if client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()
