"""E-mail over SMTP (aiosmtplib): multipart HTML + text, a Message-ID of our own, and the one-click
``List-Unsubscribe`` headers (RFC 8058) on every mail that is not transactional.

The SMTP dialogue is walked step by step so that the answer can be classified: anything that
fails before DATA is a clear refusal (safe to retry); a connection lost or a timeout while the
message is being handed over is ambiguous — the server may have queued it. Connections are kept
open and reused (email_pool.py), mail is DKIM-signed when configured (email_dkim.py), and the
envelope sender names the message (VERP) so that bounces find it (delivery/mailin.py).
"""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import CancelledError
from dataclasses import dataclass
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Annotated, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib
from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from trato.core.clock import utcnow
from trato.delivery.channels.base import (
    ChannelAdapter, CheckResult, Limits, OutgoingMessage, ProviderResult, explicit_settings,
)
from trato.delivery.channels.email_dkim import DEFAULT_HEADERS, DkimSigner
from trato.delivery.channels.email_pool import CONNECTION_ERRORS, Connection, PoolClosed, SlotTimeout, SmtpPool

# The local part of the VERP return path: bounces+<message id>@<bounce domain>.
VERP_PREFIX = "bounces+"
ENVID = re.compile(r"[A-Za-z0-9_]{1,100}")  # message ids need no xtext escaping (RFC 3461 4.4)
SMTP_POLICY = email_policy.default.clone(linesep="\r\n")


class SmtpSettings(BaseSettings):
    """``TRATO_SMTP_HOST``, ``_PORT``, ``_USERNAME``, ``_PASSWORD``, ``_STARTTLS``, ``_FROM``; the connection
    pool (``_IDLE_TIMEOUT``, ``_MESSAGES_PER_CONNECTION``), DKIM (``_DKIM_DOMAIN``, ``_DKIM_SELECTOR``,
    ``_DKIM_PRIVATE_KEY`` or ``_DKIM_PRIVATE_KEY_PATH``, ``_DKIM_HEADERS``), the VERP bounce domain
    (``_BOUNCE_DOMAIN``) and the inbound mail webhook's shared secret (``_INBOUND_SECRET``)."""

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
    # Open connections are kept this long without use, and replaced after this many messages.
    idle_timeout: float = Field(30.0, gt=0)
    messages_per_connection: int = Field(100, ge=1)
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_private_key: SecretStr | None = None
    dkim_private_key_path: Path | None = None
    dkim_headers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_HEADERS))
    # Envelope sender bounces+<message id>@<bounce_domain> (VERP): each bounce names its message.
    bounce_domain: str | None = None
    # HMAC-SHA256 key of POST /hooks/{provider}/email/inbound (raw mail from the MTA or a relay).
    inbound_secret: SecretStr | None = None

    @field_validator("dkim_headers", mode="before")
    @classmethod
    def _headers(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value


def _permanent(code: int) -> bool:
    return 500 <= code < 600


def _refusal(exc: aiosmtplib.SMTPResponseException) -> ProviderResult:
    return ProviderResult.refused(f"SMTP {exc.code}: {exc.message}", permanent=_permanent(exc.code))


@dataclass(eq=False)
class _Runtime:
    """What one settings object gives: its connection pool and its DKIM signer (None: no DKIM)."""

    settings: SmtpSettings
    pool: SmtpPool
    signer: DkimSigner | None


class SmtpEmail(ChannelAdapter):
    name: ClassVar[str] = "smtp"
    channels: ClassVar[tuple[str, ...]] = ("email",)
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"html", "text", "list_unsubscribe", "starttls", "auth", "dkim", "verp", "connection_reuse"})
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

    def __init__(self, settings: BaseModel | None = None, *, instance: str | None = None) -> None:
        super().__init__(settings, instance=instance)
        self._runtime_lock = threading.Lock()
        self._runtime: _Runtime | None = None
        self._current()  # a wrong DKIM setting stops start-up, naming the setting

    @property
    def smtp(self) -> SmtpSettings:
        assert isinstance(self.settings, SmtpSettings)
        return self.settings

    def _current(self) -> _Runtime:
        """The pool and signer of the current settings (new ones when the settings were replaced)."""
        with self._runtime_lock:
            runtime = self._runtime
            if runtime is not None and runtime.settings is self.settings:
                return runtime
            settings = self.smtp
            signer = DkimSigner.from_settings(
                domain=settings.dkim_domain, selector=settings.dkim_selector,
                key=settings.dkim_private_key.get_secret_value() if settings.dkim_private_key else None,
                key_path=settings.dkim_private_key_path, headers=settings.dkim_headers)
            pool = SmtpPool(connect=lambda: self._connect(settings), size=self.limits.max_connections or 1,
                            idle_timeout=settings.idle_timeout,
                            messages_per_connection=settings.messages_per_connection,
                            slot_wait=settings.timeout * 3, name=self.instance)
            self._runtime = _Runtime(settings, pool, signer)
        if runtime is not None:
            runtime.pool.close()
        return self._runtime

    @property
    def pool(self) -> SmtpPool:
        """The connection pool of the current settings."""
        return self._current().pool

    def envelope_sender(self, message: OutgoingMessage) -> str:
        """The return path: ``bounces+<message id>@<bounce domain>`` (VERP) when a bounce domain is set."""
        if self.smtp.bounce_domain:
            return f"{VERP_PREFIX}{message.message_id}@{self.smtp.bounce_domain}"
        return parseaddr(self.smtp.from_address)[1]

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

    def wire_bytes(self, mail: EmailMessage) -> bytes:
        """What goes after DATA: CRLF line ends, DKIM-signed when DKIM is configured."""
        data = mail.as_bytes(policy=SMTP_POLICY)
        signer = self._current().signer
        return signer.sign(data) if signer is not None else data

    def send(self, message: OutgoingMessage) -> ProviderResult:
        mail = self.build(message)
        data = self.wire_bytes(mail)
        sender, message_id = self.envelope_sender(message), str(mail["Message-ID"])
        for _ in range(3):  # the settings may be replaced (and the pool with them) meanwhile
            pool = self.pool
            try:
                return pool.run(lambda: self._transfer(pool, sender, message.recipient, data, message_id))
            except PoolClosed:
                continue
            except (CancelledError, asyncio.CancelledError):
                return ProviderResult.ambiguous("the SMTP connections were closed while the message was handed over")
        return ProviderResult.refused("the SMTP connections are being replaced; try again")

    def check(self) -> CheckResult:
        """Connect, authenticate and QUIT without sending anything."""
        settings = self.smtp

        async def probe() -> CheckResult:
            try:
                client = await self._connect(settings)
            except aiosmtplib.SMTPResponseException as exc:
                return CheckResult(False, f"the SMTP server answered {exc.code}: {exc.message}")
            except CONNECTION_ERRORS as exc:
                return CheckResult(False, f"cannot reach {settings.host}:{settings.port}: {exc}")
            await _quit(client)
            return CheckResult(True, f"connected to {settings.host}:{settings.port}"
                                     + (f" as {settings.username}" if settings.username else ""))

        return self.pool.run(probe)

    def close(self) -> None:
        """QUIT every pooled connection and stop the pool's thread (a later send opens new ones)."""
        with self._runtime_lock:
            runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.pool.close()

    async def _connect(self, settings: SmtpSettings) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=settings.host, port=settings.port, timeout=settings.timeout, use_tls=settings.use_tls,
            start_tls=settings.starttls,
        )
        await client.connect()
        try:
            if client.last_ehlo_response is None and client.last_helo_response is None:
                try:  # now rather than lazily: MAIL FROM's options depend on the extensions offered
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
            if settings.username:
                password = settings.password.get_secret_value() if settings.password else ""
                await client.login(settings.username, password)
        except BaseException:
            await _quit(client)
            raise
        return client

    async def _transfer(self, pool: SmtpPool, sender: str, recipient: str, data: bytes,
                        message_id: str) -> ProviderResult:
        """One SMTP transaction on a pooled connection, classified: anything before DATA is a clear
        refusal; a connection lost or a timeout while the message is handed over is ambiguous."""
        try:
            async with pool.slot():
                while True:
                    try:
                        connection = await pool.checkout()
                    except aiosmtplib.SMTPResponseException as exc:
                        return _refusal(exc)
                    except CONNECTION_ERRORS as exc:
                        return ProviderResult.refused(f"SMTP server unreachable: {exc}")
                    client = connection.client
                    try:
                        await client.mail(sender, options=_dsn_options(client, message_id))
                        await client.rcpt(recipient)
                    except aiosmtplib.SMTPResponseException as exc:
                        await (pool.checkin(connection) if exc.code != 421 else _discarded(pool, connection))
                        return _refusal(exc)
                    except CONNECTION_ERRORS as exc:
                        pool.discard(connection)
                        if connection.reused:  # dropped while idle, before anything was handed over
                            pool.stats.dropped += 1
                            continue
                        return ProviderResult.refused(f"SMTP server unreachable: {exc}")
                    try:
                        await client.data(data)
                    except aiosmtplib.SMTPResponseException as exc:  # the server answered: a clear refusal
                        await (pool.checkin(connection) if exc.code != 421 else _discarded(pool, connection))
                        return _refusal(exc)
                    except CONNECTION_ERRORS as exc:
                        pool.discard(connection)
                        return ProviderResult.ambiguous(f"connection lost while handing the message over: {exc}")
                    connection.messages += 1
                    await pool.checkin(connection)
                    return ProviderResult.accepted(message_id)
        except SlotTimeout as exc:
            return ProviderResult.refused(str(exc))


def _dsn_options(client: aiosmtplib.SMTP, message_id: str) -> list[str]:
    """Where the server offers DSN (RFC 3461): our message id as the envelope id, which every
    bounce then carries (Original-Envelope-Id), and only the headers returned, not the whole mail."""
    if not client.supports_extension("dsn"):
        return []
    envelope_id = message_id.strip("<>").partition("@")[0]
    return ["RET=HDRS", f"ENVID={envelope_id}"] if ENVID.fullmatch(envelope_id) else ["RET=HDRS"]


async def _discarded(pool: SmtpPool, connection: Connection) -> None:
    pool.discard(connection)


_TLS = {"": None, "auto": None, "starttls": True, "required": True, "none": False, "no": False, "off": False}


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        if client.is_connected:
            await client.quit()
    except CONNECTION_ERRORS:
        client.close()
