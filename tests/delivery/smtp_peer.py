"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives and can be told to
refuse a recipient, refuse the data, or drop the connection while the message is handed over; it
counts the connections it accepted and the RSETs and QUITs it saw, and can drop every idle client
(as a server's own idle timeout or a restart does)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    raw: bytes = b""  # the bytes as they arrived after DATA


@dataclass
class Mailbox:
    """The handler: what arrived, and what to do with the next message."""

    received: list[Received] = field(default_factory=list)
    refuse_rcpt: str | None = None  # e.g. "550 5.1.1 no such mailbox"
    refuse_data: str | None = None  # e.g. "451 4.3.0 try again later"
    drop_during_data: bool = False
    connections: int = 0  # accepted since the last reset
    rsets: int = 0
    quits: int = 0
    open: set[Any] = field(default_factory=set)  # the live server sessions
    loop: Any = None
    offer_dsn: bool = False  # advertise DSN (RFC 3461) and accept RET/ENVID on MAIL FROM
    dsn_params: list[dict[str, Any]] = field(default_factory=list)
    # (started, release): DATA signals ``started`` and waits for ``release`` before answering.
    hold_data: tuple[Any, Any] | None = None

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.offer_dsn:
            responses.insert(-1, "250-DSN")
        return responses

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        self.rsets += 1
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self.quits += 1
        return "221 Bye"

    def drop_idle_clients(self) -> int:
        """Close every client connection from the server's side; how many there were."""
        import asyncio

        async def drop() -> int:
            sessions = [s for s in self.open if s.transport is not None]
            for session in sessions:
                session.transport.close()
            return len(sessions)

        return asyncio.run_coroutine_threadsafe(drop(), self.loop).result(timeout=5)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.hold_data is not None:
            import asyncio

            started, release = self.hold_data
            started.set()
            await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)
        if self.drop_during_data:
            server.transport.close()  # gone before answering: did it queue the message or not?
            return "250 OK"
        if self.refuse_data:
            return self.refuse_data
        raw = envelope.original_content or envelope.content
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, raw))
        return "250 2.0.0 queued as 4242"

    def reset(self) -> None:
        self.received.clear()
        self.refuse_rcpt = self.refuse_data = None
        self.drop_during_data = False
        self.hold_data = None
        self.offer_dsn = False
        self.dsn_params.clear()
        self.connections = self.rsets = self.quits = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _CountingSMTP(SMTP):
    def _getparams(self, params: Any) -> Any:
        found = super()._getparams(params)
        if found is not None and self.event_handler.offer_dsn:
            dsn = {k: found.pop(k) for k in ("RET", "ENVID") if k in found}
            if dsn:
                self.event_handler.dsn_params.append(dsn)
        return found

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.event_handler.connections += 1
        self.event_handler.open.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.event_handler.open.discard(self)
        super().connection_lost(error)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)


@contextmanager
def serving(handler: Any) -> Iterator[int]:
    """A real aiosmtpd server on a free loopback port for the block, with ``handler`` (an object with
    aiosmtpd's ``handle_*`` methods) taking what it receives; yields the port."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


def start() -> tuple[Controller, Mailbox]:
    mailbox = Mailbox()
    controller = _Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailbox.loop = controller.loop
    return controller, mailbox
