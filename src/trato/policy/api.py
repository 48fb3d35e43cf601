"""HTTP routes of the contact policy (``/api/v1/policy``): dry-run decisions, purposes, topics,
quiet hours, caps, consents and their history, preferences, suppressions and inbound keywords."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

from trato.console.auth import require
from trato.console.service import Principal
from trato.core.http import db_read_session, db_session
from trato.customers import service as customers
from trato.policy import service
from trato.policy.schemas import (
    CapIn, CapOut, ConsentChangeOut, ConsentIn, ConsentOut, DecideIn, DecisionLogOut, DecisionOut, KeywordIn,
    KeywordOut, PreferenceIn, PurposeIn, PurposeOut, PurposePatch, QuietHoursIn, QuietHoursOut, SuppressionIn,
    SuppressionOut, TopicIn, TopicOut, minutes,
)

router = APIRouter(prefix="/api/v1/policy", tags=["policy"])


@router.post("/decide", response_model=DecisionOut)
def decide(body: DecideIn, session: Session = Depends(db_read_session),
           _: Principal = Depends(require("viewer"))) -> DecisionOut:
    """A dry run: what would happen if this communication were sent now (or ``at``). Nothing is
    reserved or logged."""
    decision = service.decide(session, customer_id=body.customer_id, communication=body.communication,
                              purpose=body.purpose, channels=body.channels, at=body.at, topic=body.topic,
                              reserve=False, log=False)
    return DecisionOut.of(decision)


# -- purposes and topics ------------------------------------------------------------------------


@router.get("/purposes", response_model=list[PurposeOut])
def list_purposes(session: Session = Depends(db_read_session), _: Principal = Depends(require("viewer"))):
    return [PurposeOut.of(p, topics) for p, topics in service.list_purposes(session)]


def _purpose_out(session: Session, key: str) -> PurposeOut:
    return next(PurposeOut.of(p, t) for p, t in service.list_purposes(session) if p.key == key)


@router.post("/purposes", response_model=PurposeOut, status_code=201)
def create_purpose(body: PurposeIn, session: Session = Depends(db_session),
                   who: Principal = Depends(require("admin"))) -> PurposeOut:
    service.create_purpose(session, key=body.key, name_en=body.name_en, name_es=body.name_es,
                           legal_basis=body.legal_basis, actor=who.actor)
    session.commit()
    return _purpose_out(session, body.key)


@router.patch("/purposes/{key}", response_model=PurposeOut)
def update_purpose(key: str, body: PurposePatch, session: Session = Depends(db_session),
                   who: Principal = Depends(require("admin"))) -> PurposeOut:
    service.update_purpose(session, key=key, actor=who.actor, **body.model_dump())
    session.commit()
    return _purpose_out(session, key)


@router.delete("/purposes/{key}", status_code=204)
def delete_purpose(key: str, session: Session = Depends(db_session),
                   who: Principal = Depends(require("admin"))) -> Response:
    service.delete_purpose(session, key=key, actor=who.actor)
    session.commit()
    return Response(status_code=204)


@router.post("/purposes/{key}/topics", response_model=TopicOut, status_code=201)
def create_topic(key: str, body: TopicIn, session: Session = Depends(db_session),
                 who: Principal = Depends(require("admin"))) -> TopicOut:
    topic = service.create_topic(session, purpose=key, key=body.key, name_en=body.name_en, name_es=body.name_es,
                                 actor=who.actor)
    session.commit()
    return TopicOut.of(topic)


@router.delete("/purposes/{key}/topics/{topic}", status_code=204)
def delete_topic(key: str, topic: str, session: Session = Depends(db_session),
                 who: Principal = Depends(require("admin"))) -> Response:
    service.delete_topic(session, purpose=key, key=topic, actor=who.actor)
    session.commit()
    return Response(status_code=204)


# -- quiet hours and caps -----------------------------------------------------------------------


@router.get("/quiet-hours", response_model=list[QuietHoursOut])
def list_quiet_hours(session: Session = Depends(db_read_session), _: Principal = Depends(require("viewer"))):
    return [QuietHoursOut.of(r) for r in service.list_quiet_hours(session)]


@router.put("/quiet-hours", response_model=QuietHoursOut)
def set_quiet_hours(body: QuietHoursIn, session: Session = Depends(db_session),
                    who: Principal = Depends(require("admin"))) -> QuietHoursOut:
    rule = service.set_quiet_hours(session, purpose=body.purpose, channel=body.channel,
                                   start_minute=minutes(body.start), end_minute=minutes(body.end),
                                   exempt=body.exempt, actor=who.actor)
    session.commit()
    return QuietHoursOut.of(rule)


@router.delete("/quiet-hours/{purpose}/{channel}", status_code=204)
def delete_quiet_hours(purpose: str, channel: str, session: Session = Depends(db_session),
                       who: Principal = Depends(require("admin"))) -> Response:
    service.delete_quiet_hours(session, purpose=purpose, channel=channel, actor=who.actor)
    session.commit()
    return Response(status_code=204)


@router.get("/caps", response_model=list[CapOut])
def list_caps(session: Session = Depends(db_read_session), _: Principal = Depends(require("viewer"))):
    return [CapOut.of(c) for c in service.list_caps(session)]


@router.post("/caps", response_model=CapOut, status_code=201)
def create_cap(body: CapIn, session: Session = Depends(db_session),
               who: Principal = Depends(require("admin"))) -> CapOut:
    cap = service.create_cap(session, actor=who.actor, **body.model_dump())
    session.commit()
    return CapOut.of(cap)


@router.delete("/caps/{cap_id}", status_code=204)
def delete_cap(cap_id: str, session: Session = Depends(db_session),
               who: Principal = Depends(require("admin"))) -> Response:
    service.delete_cap(session, cap_id=cap_id, actor=who.actor)
    session.commit()
    return Response(status_code=204)


# -- a customer's consents, history, preferences and decisions ----------------------------------


@router.get("/customers/{customer_id}/consents", response_model=list[ConsentOut])
def get_consents(customer_id: str, session: Session = Depends(db_read_session),
                 _: Principal = Depends(require("viewer"))):
    return [ConsentOut.of(c) for c in service.consents_of(session, customer_id=customer_id)]


@router.put("/customers/{customer_id}/consents", response_model=ConsentOut)
def put_consent(customer_id: str, body: ConsentIn, session: Session = Depends(db_session),
                who: Principal = Depends(require("editor"))) -> ConsentOut:
    """Record a consent or a refusal; the change goes to the history, the audit log and the timeline."""
    consent = service.set_consent(session, customer_id=customer_id, channel=body.channel, purpose=body.purpose,
                                  topic=body.topic, state=body.state, source=body.source, proof=body.proof,
                                  actor=who.actor)
    session.commit()
    return ConsentOut.of(consent)


@router.get("/customers/{customer_id}/consents/history", response_model=list[ConsentChangeOut])
def get_history(customer_id: str, limit: int = Query(200, ge=1, le=1000), session: Session = Depends(db_read_session),
                _: Principal = Depends(require("viewer"))):
    return [ConsentChangeOut.of(c) for c in service.consent_history(session, customer_id=customer_id, limit=limit)]


@router.put("/customers/{customer_id}/preferences", status_code=204)
def put_preferences(customer_id: str, body: PreferenceIn, session: Session = Depends(db_session),
                    who: Principal = Depends(require("editor"))) -> Response:
    service.set_preference(session, customer_id=customer_id, actor=who.actor,
                           preferred_channel=body.preferred_channel, frequency=body.frequency)
    session.commit()
    return Response(status_code=204)


@router.get("/customers/{customer_id}/decisions", response_model=list[DecisionLogOut])
def get_decisions(customer_id: str, limit: int = Query(100, ge=1, le=1000),
                  session: Session = Depends(db_read_session), _: Principal = Depends(require("viewer"))):
    """Why this customer got, or did not get, each message (the decision log)."""
    customer = customers.get_customer(session, customer_id)
    return [DecisionLogOut.of(d) for d in service.decisions_of(session, customer_id=customer.id, limit=limit)]


# -- suppressions and inbound keywords ----------------------------------------------------------


@router.get("/suppressions", response_model=list[SuppressionOut])
def list_suppressions(kind: str | None = Query(None, max_length=16), value: str | None = Query(None, max_length=320),
                      limit: int = Query(100, ge=1, le=1000), session: Session = Depends(db_read_session),
                      _: Principal = Depends(require("viewer"))):
    return [SuppressionOut.of(s) for s in service.list_suppressions(session, kind=kind, value=value, limit=limit)]


@router.post("/suppressions", response_model=SuppressionOut, status_code=201)
def add_suppression(body: SuppressionIn, session: Session = Depends(db_session),
                    who: Principal = Depends(require("editor"))) -> SuppressionOut:
    suppression = service.add_suppression(session, actor=who.actor, **body.model_dump())
    session.commit()
    return SuppressionOut.of(suppression)


@router.delete("/suppressions/{suppression_id}", status_code=204)
def delete_suppression(suppression_id: str, session: Session = Depends(db_session),
                       who: Principal = Depends(require("editor"))) -> Response:
    service.delete_suppression(session, suppression_id=suppression_id, actor=who.actor)
    session.commit()
    return Response(status_code=204)


@router.post("/keywords", response_model=KeywordOut)
def inbound_keyword(body: KeywordIn, session: Session = Depends(db_session),
                    _: Principal = Depends(require("editor"))) -> KeywordOut:
    """An inbound message: STOP / BAJA / ... suppresses its address, START / ALTA lifts that."""
    outcome = service.handle_inbound_keyword(session, channel=body.channel, address=body.address, text=body.text)
    session.commit()
    return KeywordOut(action=outcome.action, customer_id=outcome.customer_id, changed=outcome.changed)


# -- privacy requests (under the customer they are about) ---------------------------------------

privacy_router = APIRouter(prefix="/api/v1/customers", tags=["privacy"])


@privacy_router.get("/{customer_id}/privacy-export")
def privacy_export(customer_id: str, session: Session = Depends(db_session),
                   who: Principal = Depends(require("admin"))) -> dict:
    """Everything trato holds about this person, as one JSON archive (the request is audited)."""
    archive = service.export_customer(session, customer_id=customer_id, actor=who.actor)
    session.commit()
    return archive


@privacy_router.post("/{customer_id}/privacy-erase")
def privacy_erase(customer_id: str, session: Session = Depends(db_session),
                  who: Principal = Depends(require("admin"))) -> dict:
    """Erase this person's personal data everywhere; counts and hashed suppressions stay."""
    summary = service.erase_customer(session, customer_id=customer_id, actor=who.actor)
    session.commit()
    return summary
