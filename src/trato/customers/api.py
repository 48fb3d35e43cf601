"""HTTP routes of the customer memory (``/api/v1/customers``)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from trato.console.auth import require
from trato.console.service import Principal
from trato.core.errors import InvalidInput
from trato.core.http import db_read_session, db_session
from trato.customers import service
from trato.customers.schemas import (
    Customer360, CustomerIn, CustomerList, CustomerOut, EventOut, IdentityIn, IdentityOut, MergeIn,
    MergeOut, NoteIn, TimelinePage, TraitsIn, UnmergeIn,
)
from trato.policy import service as policy

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])
LOOKUP_KINDS = ("email", "phone", "user_id", "anonymous_id")


def _lifetime(session: Session, customer_id: str) -> dict[str, int]:
    return service.lifetime_values(session, customer_ids=[customer_id]).get(customer_id, {})


def view_360(session: Session, customer_id: str, *, recent: int = 20) -> Customer360:
    customer = service.get_customer(session, customer_id)
    return Customer360(
        customer=CustomerOut.of(customer, _lifetime(session, customer.id)),
        identities=[IdentityOut.of(i) for i in service.identities_of(session, customer.id)],
        event_counts=service.event_counts(session, customer_id=customer.id),
        channels=service.channel_summary(session, customer_id=customer.id),
        recent=[EventOut.of(e) for e in service.timeline(session, customer_id=customer.id, limit=recent)],
        merges=[MergeOut.of(m) for m in service.merge_log(session, customer_id=customer.id)],
        consents=policy.consent_summary(session, customer_id=customer.id),  # the contact policy's part
    )


@router.get("", response_model=CustomerList)
def search_customers(
    q: str = Query(min_length=1, max_length=200, description="name, e-mail, phone or identity prefix"),
    limit: int = Query(20, ge=1, le=100),
    session: Session = Depends(db_read_session),
    _: Principal = Depends(require("viewer")),
) -> CustomerList:
    found = service.search(session, query=q, limit=limit)
    values = service.lifetime_values(session, customer_ids=[c.id for c in found])
    return CustomerList(items=[CustomerOut.of(c, values.get(c.id)) for c in found])


@router.post("", response_model=Customer360, status_code=201)
def create_customer(
    body: CustomerIn, session: Session = Depends(db_session), who: Principal = Depends(require("editor"))
) -> Customer360:
    customer = service.create_customer(
        session, traits=body.traits, identities=[(i.kind, i.value) for i in body.identities], actor=who.actor
    )
    session.commit()
    return view_360(session, customer.id)


@router.get("/lookup", response_model=Customer360)
def lookup_customer(
    email: str | None = None,
    phone: str | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    kind: str | None = Query(None, description="any identity kind, with 'value'"),
    value: str | None = None,
    session: Session = Depends(db_read_session),
    _: Principal = Depends(require("viewer")),
) -> Customer360:
    given = {k: v for k, v in zip(LOOKUP_KINDS, (email, phone, user_id, anonymous_id), strict=True) if v}
    if kind and value:
        given[kind] = value
    if len(given) != 1:
        raise InvalidInput(
            "give exactly one of email, phone, user_id, anonymous_id, or kind with value",
            code="lookup_needs_one_identity",
        )
    (k, v), = given.items()
    return view_360(session, service.lookup(session, kind=k, value=v).id)


@router.get("/{customer_id}", response_model=Customer360)
def get_customer(
    customer_id: str, session: Session = Depends(db_read_session), _: Principal = Depends(require("viewer"))
) -> Customer360:
    return view_360(session, customer_id)


@router.get("/{customer_id}/timeline", response_model=TimelinePage)
def get_timeline(
    customer_id: str,
    kind: list[str] = Query(default=[]),
    channel: list[str] = Query(default=[]),
    department: list[str] = Query(default=[]),
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = Query(None, ge=1, le=2**63 - 1, description="id of the last entry of the previous page"),
    limit: int = Query(50, ge=1, le=500),
    session: Session = Depends(db_read_session),
    _: Principal = Depends(require("viewer")),
) -> TimelinePage:
    customer = service.get_customer(session, customer_id)
    items = service.timeline(
        session, customer_id=customer.id, kinds=kind, channels=channel, departments=department,
        since=since, until=until, before_id=before, limit=limit,
    )
    return TimelinePage(
        items=[EventOut.of(e) for e in items], next_before=items[-1].id if len(items) == limit else None
    )


@router.patch("/{customer_id}/traits", response_model=CustomerOut)
def patch_traits(
    customer_id: str, body: TraitsIn, session: Session = Depends(db_session),
    who: Principal = Depends(require("editor")),
) -> CustomerOut:
    customer = service.set_traits(session, customer_id=customer_id, traits=body.traits, actor=who.actor)
    session.commit()
    return CustomerOut.of(customer, _lifetime(session, customer.id))


@router.post("/{customer_id}/identities", response_model=IdentityOut, status_code=201)
def post_identity(
    customer_id: str, body: IdentityIn, session: Session = Depends(db_session),
    who: Principal = Depends(require("editor")),
) -> IdentityOut:
    identity = service.add_identity(session, customer_id=customer_id, kind=body.kind, value=body.value, actor=who.actor)
    session.commit()
    return IdentityOut.of(identity)


@router.post("/{customer_id}/notes", response_model=EventOut, status_code=201)
def post_note(
    customer_id: str, body: NoteIn, session: Session = Depends(db_session),
    who: Principal = Depends(require("editor")),
) -> EventOut:
    event = service.record_event(
        session, customer_id=customer_id, kind="note", name="Note", channel=body.channel,
        department=body.department.lower(), properties={"text": body.text, "author": who.name},
    )
    session.commit()
    assert event is not None
    return EventOut.of(event)


@router.get("/{customer_id}/merges", response_model=list[MergeOut])
def get_merges(
    customer_id: str, session: Session = Depends(db_read_session), _: Principal = Depends(require("viewer"))
) -> list[MergeOut]:
    customer = service.get_customer(session, customer_id, follow_merges=False)
    return [MergeOut.of(m) for m in service.merge_log(session, customer_id=customer.id)]


@router.post("/{customer_id}/merge", response_model=MergeOut, status_code=201)
def post_merge(
    customer_id: str, body: MergeIn, session: Session = Depends(db_session),
    who: Principal = Depends(require("admin")),
) -> MergeOut:
    record = service.merge(session, survivor_id=customer_id, merged_id=body.other_id, actor=who.actor, force=body.force)
    session.commit()
    return MergeOut.of(record)


@router.post("/{customer_id}/unmerge", response_model=MergeOut)
def post_unmerge(
    customer_id: str, body: UnmergeIn | None = None, session: Session = Depends(db_session),
    who: Principal = Depends(require("admin")),
) -> MergeOut:
    record = service.unmerge(
        session, customer_id=customer_id, merge_id=body.merge_id if body else None, actor=who.actor
    )
    session.commit()
    return MergeOut.of(record)
