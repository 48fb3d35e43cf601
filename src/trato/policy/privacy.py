"""Privacy requests: everything trato holds about a person as one JSON archive, and erasure.

Erasure removes personal data everywhere (profile, merged profiles, identities, timeline
payloads, merge snapshots, consent proofs, audit details, suppression addresses) and keeps
anonymous counts plus keyed-hash suppressions of the person's e-mails and phones, so that an
import bringing the same address back does not lead to contacting them again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trato.core import audit
from trato.core.audit import AuditEntry
from trato.core.clock import utcnow
from trato.core.ids import new_id
from trato.customers import service as customers
from trato.policy.consents import add_suppression, address_hash
from trato.policy import consents as policy_consents
from trato.policy.models import ConsentChange, ContactLedger, ContactPreference, DecisionLog, Suppression

ARCHIVE_VERSION = 1


def _row(obj: Any, *names: str) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in names}


def export_customer(session: Session, *, customer_id: str, actor: str) -> dict[str, Any]:
    """Everything trato holds about a person: profile, identities, timeline, merges, consents and
    their history, preferences, suppressions, messages sent and the decisions about them."""
    customer = customers.get_customer(session, customer_id)
    cid = customer.id
    identities = customers.identities_of(session, cid)
    timeline, before = [], None
    while True:  # the whole timeline, a page at a time
        page = customers.timeline(session, customer_id=cid, before_id=before, limit=500)
        timeline.extend(_row(e, "occurred_at", "kind", "name", "channel", "department", "source_id", "message_id",
                             "properties", "context") for e in page)
        if len(page) < 500:
            break
        before = page[-1].id
    hashes = [address_hash(i.kind, i.value) for i in identities if i.kind in ("email", "phone")]
    hashes.append(address_hash("customer", cid))
    archive = {
        "format": "trato.privacy-export", "version": ARCHIVE_VERSION, "exported_at": utcnow(), "customer_id": cid,
        "profile": {**_row(customer, "id", "first_name", "last_name", "email", "phone", "locale", "timezone",
                           "country", "birthday", "customer_since", "created_at", "first_seen_at", "last_seen_at",
                           "event_count", "purchase_count", "last_purchase_at", "last_channel"),
                    "traits": customer.traits},
        "lifetime_value_cents": customers.lifetime_values(session, customer_ids=[cid]).get(cid, {}),
        "identities": [_row(i, "kind", "value", "linked_via", "source_id", "created_at") for i in identities],
        "timeline": timeline,
        "merges": [_row(m, "id", "status", "survivor_id", "merged_id", "reason", "explanation", "created_at")
                   for m in customers.merge_log(session, customer_id=cid)],
        "consents": [_row(c, "channel", "purpose", "topic", "state", "source", "updated_at")
                     for c in policy_consents.consents_of(session, customer_id=cid)],
        "consent_history": [_row(c, "channel", "purpose", "topic", "state", "previous", "source", "proof", "actor",
                                 "at") for c in policy_consents.consent_history(session, customer_id=cid, limit=100_000)],
        "preferences": [_row(p, "preferred_channel", "frequency", "updated_at")
                        for p in session.scalars(select(ContactPreference).where(ContactPreference.customer_id == cid))],
        "suppressions": [_row(s, "kind", "value", "reason", "channel", "purpose", "expires_at", "created_at")
                         for s in session.scalars(select(Suppression).where(Suppression.value_hash.in_(hashes)))],
        "messages": [_row(c, "sent_at", "channel", "purpose", "topic", "communication", "status", "message_id")
                     for c in session.scalars(select(ContactLedger).where(ContactLedger.customer_id == cid)
                                              .order_by(ContactLedger.sent_at))],
        "decisions": [_row(d, "decided_at", "communication", "purpose", "topic", "outcome", "channel", "at", "reasons")
                      for d in session.scalars(select(DecisionLog).where(DecisionLog.customer_id == cid)
                                               .order_by(DecisionLog.decided_at))],
    }
    audit.record(session, actor=actor, action="privacy.export", object_type="customer", object_id=cid)
    return archive


def _erase_in_other_domains(session: Session, *, customer_id: str, actor: str) -> None:
    """The single call point for erasure in the other domains that hold personal content
    (the archive today; delivery and conversations add theirs here)."""
    from trato.archive import service as archive

    archive.erase_customer(session, customer_id=customer_id, actor=actor)
    from trato.delivery import push_devices

    push_devices.erase_customer(session, customer_id=customer_id, actor=actor)


def erase_customer(session: Session, *, customer_id: str, actor: str) -> dict[str, Any]:
    """Erase a person's personal data everywhere; returns what was done (no personal data in it)."""
    customer = customers.get_customer(session, customer_id)
    cid = customer.id
    profile_ids, addresses = customers.erase_personal_data(session, customer_id=cid)
    blocked = 0
    for kind, value in addresses:
        if kind not in ("email", "phone"):
            continue
        digest = address_hash(kind, value)
        session.execute(update(Suppression).where(Suppression.value_hash == digest).values(value=None, note=None))
        already = session.scalar(select(Suppression.id).where(Suppression.value_hash == digest,
                                                              Suppression.reason == "erased"))
        if already is None:
            session.add(Suppression(id=new_id("sup"), kind=kind, value=None, value_hash=digest,
                                    reason="erased", actor=actor, created_at=utcnow()))
            blocked += 1
    if session.scalar(select(Suppression.id).where(Suppression.value_hash == address_hash("customer", cid),
                                                   Suppression.reason == "erased")) is None:
        add_suppression(session, kind="customer", value=cid, reason="erased", actor=actor)
    session.execute(update(ConsentChange).where(ConsentChange.customer_id.in_(profile_ids)).values(proof={}))
    session.execute(update(AuditEntry).where(AuditEntry.object_id.in_(profile_ids)).values(details={}))
    _erase_in_other_domains(session, customer_id=cid, actor=actor)
    summary = {"customer_id": cid, "profiles": len(profile_ids), "addresses_blocked": blocked,
               "identities_removed": len(addresses)}
    audit.record(session, actor=actor, action="privacy.erase", object_type="customer", object_id=cid,
                 profiles=len(profile_ids), addresses_blocked=blocked)
    return summary
