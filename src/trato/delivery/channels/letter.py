"""Printed letters through a print house: ``send`` puts the letter's PDF in the provider's open
batch (accepted at once, known as ``batch/item``); every minute (and with ``trato letters drop``)
batches that are full or past the daily cut-off are closed and dropped to the print house as one
directory with the PDFs and a manifest (see ``delivery.letters`` and ``delivery.letter_drop``).
"Delivered" or "returned" comes back from the print house's return file
(``trato letters import-status``).

One-line settings: ``file:///srv/print/outbox?batch_size=500&cutoff=16:00`` or
``sftp://user@print.example:22/inbox?key=/etc/trato/print_key&known_hosts=/etc/trato/known_hosts``
(a password may stand in the URL: ``sftp://user:pass@host/…``); also ``duplex``, ``postage``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import pypdfium2
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from sqlalchemy.exc import SQLAlchemyError

from trato.core.db import new_session, unit_of_work
from trato.core.errors import ConfigurationError, TratoError
from trato.delivery import letters
from trato.delivery.channels.base import CheckResult, ChannelAdapter, Limits, OutgoingMessage, ProviderResult
from trato.delivery.letter_drop import DropTarget, FolderDrop, SftpDrop

POSTAGE = ("economy", "standard", "priority", "registered")


class PrintHouseSettings(BaseModel):
    """Where batches are dropped and how letters are printed and posted."""

    drop: str = Field("", description="file:///path or sftp://user@host:port/path")
    password: SecretStr | None = Field(None, description="the SFTP password, when no key is used")
    key: str | None = Field(None, description="path of the SFTP client's private key")
    known_hosts: str | None = Field(None, description="known_hosts file with the print house's host key")
    batch_size: int = Field(500, ge=1, le=100_000, description="a batch closes when it holds this many letters")
    cutoff: time | None = Field(time(16, 0), description="daily time (UTC) at which the open batch closes")
    duplex: bool = Field(True, description="print on both sides")
    postage: str = Field("standard", description="postage class: economy, standard, priority, registered")

    @field_validator("drop")
    @classmethod
    def _drop(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in ("file", "sftp"):
            raise ValueError("the drop is file:///path or sftp://user@host:port/path")
        return value

    @field_validator("postage")
    @classmethod
    def _postage(cls, value: str) -> str:
        if value not in POSTAGE:
            raise ValueError(f"postage must be one of {', '.join(POSTAGE)}")
        return value


@dataclass
class DropReport:
    closed: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _flag(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


class PrintHouse(ChannelAdapter):
    """Channel ``letter``: batched PDFs dropped to a print house (see the module's docstring)."""

    name: ClassVar[str] = "printhouse"
    channels: ClassVar[tuple[str, ...]] = ("letter",)
    capabilities: ClassVar[frozenset[str]] = frozenset({"pdf", "batches", "manifest", "sftp", "folder"})
    limits: ClassVar[Limits] = Limits(max_body_bytes=20 * 1024 * 1024)
    settings_model: ClassVar[type[BaseModel]] = PrintHouseSettings
    url_schemes: ClassVar[tuple[str, ...]] = ("file", "sftp")

    @property
    def print_house(self) -> PrintHouseSettings:
        assert isinstance(self.settings, PrintHouseSettings)
        return self.settings

    @classmethod
    def settings_from_url(cls, url: str) -> PrintHouseSettings:
        parts = urlsplit(url)
        if parts.scheme not in cls.url_schemes:
            raise ConfigurationError("printhouse", "write it as file:///path or sftp://user@host:port/path")
        query = dict(parse_qsl(parts.query))
        password = unquote(parts.password) if parts.password else None
        netloc = parts.netloc.rpartition("@")[2]
        user = unquote(parts.username or "")
        drop = f"{parts.scheme}://{user + '@' if user else ''}{netloc}{parts.path}"
        try:
            return PrintHouseSettings(
                drop=drop, password=SecretStr(password) if password else None, key=query.get("key"),
                known_hosts=query.get("known_hosts"), batch_size=int(query.get("batch_size", 500)),
                cutoff=None if query.get("cutoff", "16:00") in ("", "none") else time.fromisoformat(
                    query.get("cutoff", "16:00")),
                duplex=_flag(query.get("duplex", "true")), postage=query.get("postage", "standard"),
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigurationError("printhouse", f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        except ValueError as exc:
            raise ConfigurationError("printhouse", str(exc)) from None

    def target(self) -> DropTarget:
        """Where this provider's batches are dropped (ConfigurationError when not set)."""
        settings = self.print_house
        parts = urlsplit(settings.drop)
        if parts.scheme == "file" and parts.path:
            return FolderDrop(Path(unquote(parts.path)))
        if parts.scheme == "sftp" and parts.hostname and parts.username:
            return SftpDrop(host=parts.hostname, port=parts.port or 22, username=unquote(parts.username),
                            root=unquote(parts.path) or "/", key=settings.key, known_hosts=settings.known_hosts,
                            password=settings.password.get_secret_value() if settings.password else None)
        raise ConfigurationError("printhouse", "the drop is file:///path or sftp://user@host:port/path")

    def send(self, message: OutgoingMessage) -> ProviderResult:
        settings = self.print_house
        if not settings.drop:
            return ProviderResult.refused(f"the {self.instance} print house has no drop configured", permanent=True)
        pdf = message.parts.get("pdf")
        if not isinstance(pdf, bytes) or not pdf:
            return ProviderResult.refused("the letter has no PDF to print", permanent=True)
        try:
            document = pypdfium2.PdfDocument(pdf)
            pages = len(document)
            document.close()
        except pypdfium2.PdfiumError as exc:
            return ProviderResult.refused(f"the letter's PDF cannot be read: {exc}", permanent=True)
        letter = letters.Letter(
            message_id=message.message_id, customer_id=message.customer_id, pdf=pdf, pages=pages,
            address=self._address(message), sides="duplex" if settings.duplex else "simplex",
            postage=settings.postage,
        )
        try:
            provider_id = letters.add_letter(provider=self.instance, letter=letter, batch_size=settings.batch_size)
        except SQLAlchemyError as exc:  # nothing reached the print house: safe to try again
            return ProviderResult.refused(f"the letter could not be batched: {type(exc).__name__}")
        return ProviderResult.accepted(provider_id)

    @staticmethod
    def _address(message: OutgoingMessage) -> list[str]:
        from trato.content import service as content

        try:
            with new_session(readonly=True) as session:
                return content.postal_address(session, customer_id=message.customer_id, language=message.language)
        except TratoError:  # no such customer any more: the PDF's window still carries the address
            return []

    def run(self, *, now: datetime | None = None, close_all: bool = False) -> DropReport:
        """Close the batches that are due (all open ones with ``close_all``) and drop every closed
        one; a batch whose drop fails stays closed, with its error, for the next run."""
        report = DropReport()
        with unit_of_work() as session:
            report.closed = letters.close_due(session, provider=self.instance, cutoff=self.print_house.cutoff,
                                              now=now, force=close_all)
        with new_session(readonly=True) as session:
            pending = letters.batches_to_drop(session, provider=self.instance)
        if not pending:
            return report
        target = self.target()
        for batch_id in pending:
            try:
                with new_session(readonly=True) as session:
                    files = letters.files_of(session, batch_id)
                location = target.drop(files)
            except Exception as exc:  # noqa: BLE001 - any failure leaves the batch closed, retried next time
                error = f"{type(exc).__name__}: {exc}"
                with unit_of_work() as session:
                    letters.mark_drop_failed(session, batch_id=batch_id, error=error)
                report.failed[batch_id] = error
                continue
            with unit_of_work() as session:
                letters.mark_dropped(session, batch_id=batch_id, location=location)
            report.dropped.append(batch_id)
        return report

    def check(self) -> CheckResult:
        try:
            return CheckResult(True, self.target().check())
        except ConfigurationError as exc:
            return CheckResult(False, exc.message)
        except Exception as exc:  # noqa: BLE001 - what went wrong, for a person to act on
            return CheckResult(False, f"{type(exc).__name__}: {exc}")
