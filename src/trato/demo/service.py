"""The demo company, Trato Demo, S.A.: a telecom and electronics retailer in Spain, Mexico, the
US and the UK, with a year of history, loaded through the same write path as live traffic.

Each system of the company is a source; its Segment calls go through ``parse_calls`` and
``ingest`` a batch at a time, so profiles, identities, merges, computed traits and rollups come
out exactly as they would in production. Inbound messages and agents' notes, which are not
tracking calls, go on the timeline through ``customers.record_event``, as the console's notes do.

The same seed gives the same customers and the same history relative to the anchor day (today,
00:00 UTC). Loading again adds no customer, identity or event (every call keeps its messageId);
it only hands out a new API token and a new write key.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trato.console import service as console
from trato.core.clock import utcnow
from trato.core.db import unit_of_work
from trato.core.errors import TratoError
from trato.customers import service as customers
from trato.demo import consents, sent
from trato.demo.batches import Batch, generated
from trato.demo.communications import load_communications
from trato.demo.segments import load_segments
from trato.demo.history import Record
from trato.demo.people import APP, BILLING, CALL_CENTRE, EMAIL, STORES, WEB
from trato.ingest import service as ingest
from trato.ingest.models import Source

ACTOR = "demo"
ADMIN_EMAIL = "admin@example.com"
# Calls per transaction (whole customers, so a little over): as many as the live writer groups.
BATCH_CALLS = 5000
SOURCES = {
    WEB: ("Web", "web", "sales"),
    APP: ("App", "app", "sales"),
    STORES: ("Tiendas", "store", "sales"),
    CALL_CENTRE: ("Centro de atención", "call_center", "service"),
    BILLING: ("Facturación", "email", "billing"),
    EMAIL: ("Email marketing", "email", "sales"),
}


@dataclass
class Totals:
    customers: int = 0
    calls: int = 0
    stored: int = 0
    records: int = 0


def load_demo(
    *, customers: int = 10_000, seed: int = 7, progress: Console | None = None, today: date | None = None
) -> dict[str, str]:
    """Load the demo company and return how to sign in to it.

    ``today`` sets the anchor day the year of history ends on (default: today, UTC). Returns
    ``admin_email``, ``admin_password`` (the same for the same seed), a new admin ``api_token``
    and a ``write_key`` for a web source.
    """
    anchor = datetime.combine(today or utcnow().date(), time(), UTC)
    with unit_of_work() as session:
        sources, write_key = _sources(session)
    received_at = utcnow()
    totals = Totals()
    sends: list[sent.Send] = []
    with _progress(progress, customers) as advance, \
            generated(customers=customers, seed=seed, anchor=anchor, size=BATCH_CALLS) as stream:
        for batch in stream:
            _write(batch, sources, received_at, totals)
            sends.extend(sent.sends_in(batch.groups, anchor=anchor))
            advance(batch.customers)
    consents.load_consents(seed=seed, anchor=anchor)  # the contact policy's part of the demo
    password = admin_password(seed)
    with unit_of_work() as session:
        _admin(session, password)
        _, token = console.create_token(session, name="Demo administrator", role="admin", actor=ACTOR)
    with unit_of_work() as session:
        load_communications(session)
    with unit_of_work() as session:
        load_segments(session)
    archived = load_archive(sends=sends)
    if progress is not None:
        progress.print(
            f"{totals.customers:,} customers, {totals.calls:,} tracking calls "
            f"({totals.stored:,} new events), {totals.records:,} messages and notes, "
            f"{archived:,} messages sent archived"
        )
    return {"admin_email": ADMIN_EMAIL, "admin_password": password, "api_token": token, "write_key": write_key}


def load_archive(*, sends: list[sent.Send]) -> int:
    """Archive the messages the demo company sent in its year (those not archived yet)."""
    return sent.archive_sends(sends)


def admin_password(seed: int) -> str:
    """The demo administrator's password: derived from the seed, so a reload can print it again."""
    rng = random.Random(f"trato-demo:{seed}:admin")
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(rng.choice(alphabet) for _ in range(4)) for _ in range(4))


def _sources(session: Session) -> tuple[dict[str, Source], str]:
    """The company's systems as sources (reused when they exist) and a write key for the web."""
    existing = {source.name: source for source in ingest.list_sources(session)}
    sources: dict[str, Source] = {}
    write_key: str | None = None
    for key, (name, channel, department) in SOURCES.items():
        if name in existing:
            sources[key] = existing[name]
            continue
        sources[key], secret = ingest.create_source(
            session, name=name, actor=ACTOR, default_channel=channel, default_department=department
        )
        if key == WEB:
            write_key = secret
    if write_key is None:
        # A write key is kept only hashed, so a reload cannot show Web's again: it opens another web source.
        number = 2
        while f"Web {number}" in existing:
            number += 1
        _, write_key = ingest.create_source(
            session, name=f"Web {number}", actor=ACTOR, default_channel="web", default_department="sales"
        )
    return sources, write_key


def _admin(session: Session, password: str) -> None:
    try:
        with session.begin_nested():
            console.create_user(
                session, email=ADMIN_EMAIL, name="Administración demo", password=password, role="admin",
                language="es", actor=ACTOR,
            )
    except IntegrityError:
        pass  # the demo's administrator exists already: its password stays as it is


def _write(batch: Batch, sources: dict[str, Source], received_at: datetime, totals: Totals) -> None:
    """One transaction: the story calls source by source, then the rest, then messages and notes."""
    with unit_of_work() as session:
        for key, calls in batch.groups:
            events, rejected = ingest.parse_calls(calls, call_type=None, received_at=received_at)
            if rejected:
                raise TratoError(
                    f"a demo call was refused: {rejected[0]['message']}", code="demo_call_refused",
                    details=rejected[0],
                )
            result = ingest.ingest(session, source=sources[key], events=events, received_at=received_at)
            totals.calls += result.accepted
            totals.stored += result.stored
        _record(session, batch.records, totals)
    totals.customers += batch.customers


def _record(session: Session, records: list[Record], totals: Totals) -> None:
    for record in records:
        customer = customers.lookup(session, kind="user_id", value=record.user_id)
        event = customers.record_event(
            session, customer_id=customer.id, kind=record.kind, name=record.name, channel=record.channel,
            department=record.department, message_id=record.message_id, properties=record.properties,
            occurred_at=record.at,
        )
        totals.records += event is not None


@contextmanager
def _progress(output: Console | None, total: int) -> Iterator[Callable[[int], None]]:
    if output is None:
        yield lambda _: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=output) as bar:
        task = bar.add_task("Loading demo customers", total=total)
        yield lambda done: bar.advance(task, done)
