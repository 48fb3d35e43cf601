"""HTTP routes of delivery: ``POST /api/v1/messages`` (send, editor role),
``GET /api/v1/messages/{id}`` (its states, viewer role), the devices and browsers apps register
for push (``/api/v1/customers/{id}/push-registrations``) and ``/api/v1/providers`` (admin role)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from trato.console.auth import require
from trato.console.service import Principal
from trato.core.errors import ConfigurationError
from trato.core.http import JSON, db_read_session, db_session
from trato.customers import service as customers_service
from trato.delivery import idempotency, providers, push_devices, service
from trato.delivery.errors import PushNotWebPush
from trato.delivery.schemas import (
    MessageOut, ProviderCheckOut, ProviderIn, ProviderOut, ProviderPatch, PushRegistrationIn, PushRegistrationOut, SendIn,
)

router = APIRouter(prefix="/api/v1/messages", tags=["delivery"])
ACCEPTED = 202


@router.post("", status_code=ACCEPTED, response_model=MessageOut,
             responses={409: {"description": "a request with this Idempotency-Key is still in flight"},
                        422: {"description": "invalid request, or this Idempotency-Key came with another body"}})
def send_message(
    body: SendIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", min_length=1, max_length=255),
    session: Session = Depends(db_session),
    who: Principal = Depends(require("editor")),
) -> JSON:
    """Send a communication to a customer: decided by the contact policy, rendered, archived and
    queued; deferred or refused with the reasons when the policy says so."""
    principal = f"{who.kind}:{who.id}"
    if idempotency_key is not None:
        replay = idempotency.claim(principal=principal, key=idempotency_key,
                                   body_sha256=idempotency.request_hash(body.model_dump(mode="json")))
        if replay is not None:
            return JSON(replay.response, status_code=replay.status_code, headers={"Idempotent-Replayed": "true"})
    try:
        kind, value = body.customer.reference()
        customer_id = service.resolve_customer(session, kind=kind, value=value)
        message = service.send(session, actor=who.actor, customer_id=customer_id, communication=body.communication,
                               data=body.data, channels=list(body.channels) if body.channels else None,
                               purpose=body.purpose, topic=body.topic, idempotency_key=idempotency_key)
        payload = MessageOut.of(message, service.events_of(session, message.id)).model_dump(mode="json")
        if idempotency_key is not None:
            idempotency.complete(session, principal=principal, key=idempotency_key, status_code=ACCEPTED,
                                 response=payload, message_id=message.id)
        session.flush()
    except BaseException:
        session.rollback()
        if idempotency_key is not None:
            idempotency.release(principal=principal, key=idempotency_key)
        raise
    # Past this point the send is done: a key whose commit failed stays claimed until it is stale.
    session.commit()
    return JSON(payload, status_code=ACCEPTED)


@router.get("", response_model=list[MessageOut])
def list_messages(
    state: str | None = Query(None, max_length=16, description="e.g. dead (the dead letters) or possibly_sent"),
    customer_id: str | None = Query(None, max_length=64),
    limit: int = Query(50, ge=1, le=500),
    session: Session = Depends(db_read_session),
    _: Principal = Depends(require("viewer")),
) -> list[MessageOut]:
    """Messages newest first, by state and customer."""
    found = service.list_messages(session, state=state, customer_id=customer_id, limit=limit)
    return [MessageOut.of(m, service.events_of(session, m.id)) for m in found]


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=1000)


@router.post("/{message_id}/requeue", response_model=MessageOut)
def requeue_message(message_id: str, session: Session = Depends(db_session),
                    who: Principal = Depends(require("editor"))) -> MessageOut:
    """Send a dead letter or a possibly sent message again (a person's decision)."""
    message = service.requeue(session, message_id=message_id, actor=who.actor)
    out = MessageOut.of(message, service.events_of(session, message.id))
    session.commit()
    return out


@router.post("/{message_id}/resolve", response_model=MessageOut)
def resolve_message(message_id: str, body: ResolveIn, session: Session = Depends(db_session),
                    who: Principal = Depends(require("editor"))) -> MessageOut:
    """Confirm that a possibly sent message reached the provider: it is accepted, not sent again."""
    message = service.resolve_as_sent(session, message_id=message_id, actor=who.actor, note=body.note)
    out = MessageOut.of(message, service.events_of(session, message.id))
    session.commit()
    return out


@router.get("/{message_id}", response_model=MessageOut)
def get_message(message_id: str, session: Session = Depends(db_read_session),
                _: Principal = Depends(require("viewer"))) -> MessageOut:
    """A message, its policy decision and every state it went through."""
    message = service.get_message(session, message_id)
    return MessageOut.of(message, service.events_of(session, message.id))


# -- push registrations: the devices and browsers an app registers for a customer ------------------

push_router = APIRouter(tags=["delivery"])


@push_router.post("/api/v1/customers/{customer_id}/push-registrations", status_code=201, response_model=PushRegistrationOut)
def register_push(customer_id: str, body: PushRegistrationIn, session: Session = Depends(db_session),
                  who: Principal = Depends(require("editor"))) -> PushRegistrationOut:
    """Register a device (``fcm`` + token) or a browser (``webpush`` + subscription) to receive the
    customer's push notifications; the same token again refreshes it, from another customer moves it."""
    registration = push_devices.register(
        session, customer_id=customer_id, platform=body.platform, actor=who.actor, token=body.token,
        subscription=body.subscription.model_dump() if body.subscription else None, label=body.label)
    out = PushRegistrationOut.of(registration, customers_service.get_customer(session, customer_id).id)
    session.commit()
    return out


@push_router.get("/api/v1/customers/{customer_id}/push-registrations", response_model=list[PushRegistrationOut])
def list_push(customer_id: str, session: Session = Depends(db_read_session),
              _: Principal = Depends(require("viewer"))) -> list[PushRegistrationOut]:
    """The customer's registered devices and browsers, newest first."""
    owner = customers_service.get_customer(session, customer_id).id
    return [PushRegistrationOut.of(r, owner) for r in push_devices.registrations_of(session, customer_id)]


@push_router.delete("/api/v1/customers/{customer_id}/push-registrations/{registration_id}", status_code=204)
def unregister_push(customer_id: str, registration_id: str, session: Session = Depends(db_session),
                    who: Principal = Depends(require("editor"))) -> Response:
    """Stop sending push to one device or browser (the app signed out, the user turned push off)."""
    push_devices.unregister(session, customer_id=customer_id, registration_id=registration_id, actor=who.actor)
    session.commit()
    return Response(status_code=204)


@push_router.get("/api/v1/push/application-server-key")
def webpush_key(_: Principal = Depends(require("viewer"))) -> dict[str, str]:
    """The VAPID public key that web apps pass to ``pushManager.subscribe({applicationServerKey})``."""
    from trato.delivery.channels import registry
    from trato.delivery.channels.webpush import WebPush

    try:
        adapter = registry.adapter_for("push")
    except ConfigurationError as exc:
        raise PushNotWebPush(f"push is not configured: {exc.message}") from None
    if not isinstance(adapter, WebPush):
        raise PushNotWebPush(f"push is sent by {adapter.name}, not webpush: browsers subscribe through it",
                             details={"adapter": adapter.name})
    return {"application_server_key": adapter.public_key}


# -- providers (admin) ---------------------------------------------------------------------------

providers_router = APIRouter(prefix="/api/v1/providers", tags=["providers"])


@providers_router.get("", response_model=list[ProviderOut])
def list_providers(session: Session = Depends(db_read_session),
                   _: Principal = Depends(require("admin"))) -> list[ProviderOut]:
    """Every provider in failover order per origin: those in the settings, then the stored ones;
    secrets masked, each with its circuit's state."""
    return [ProviderOut.of(view) for view in providers.list_providers(session)]


@providers_router.post("", status_code=201, response_model=ProviderOut,
                       responses={409: {"description": "a provider has this name"},
                                  422: {"description": "unknown adapter or channel, or invalid settings"}})
def add_provider(body: ProviderIn, session: Session = Depends(db_session),
                 who: Principal = Depends(require("admin"))) -> ProviderOut:
    """Store a provider (settings validated by its adapter, secrets sealed); every worker uses it
    from its next message."""
    row = providers.add_provider(session, actor=who.actor, name=body.name, adapter=body.adapter, url=body.url,
                                 channels=list(body.channels) if body.channels else None, priority=body.priority,
                                 enabled=body.enabled, settings=body.settings, max_per_second=body.max_per_second)
    out = ProviderOut.of(providers.view_of(row))
    session.commit()
    return out


@providers_router.get("/{name}", response_model=ProviderOut)
def get_provider(name: str, session: Session = Depends(db_read_session),
                 _: Principal = Depends(require("admin"))) -> ProviderOut:
    """One provider, secrets masked."""
    return ProviderOut.of(providers.view_by_name(session, name))


@providers_router.patch("/{name}", response_model=ProviderOut)
def change_provider(name: str, body: ProviderPatch, session: Session = Depends(db_session),
                    who: Principal = Depends(require("admin"))) -> ProviderOut:
    """Change a stored provider: channels, priority, enabled, rate limit, settings (merged)."""
    given = body.model_dump(exclude_unset=True)
    extra = {"max_per_second": given["max_per_second"]} if "max_per_second" in given else {}
    row = providers.update_provider(session, actor=who.actor, name=name, url=body.url,
                                    channels=list(body.channels) if body.channels else None, priority=body.priority,
                                    enabled=body.enabled, settings=body.settings, **extra)
    out = ProviderOut.of(providers.view_of(row))
    session.commit()
    return out


@providers_router.delete("/{name}", status_code=204)
def remove_provider(name: str, session: Session = Depends(db_session),
                    who: Principal = Depends(require("admin"))) -> Response:
    """Remove a stored provider."""
    providers.remove_provider(session, actor=who.actor, name=name)
    session.commit()
    return Response(status_code=204)


@providers_router.post("/{name}/test", response_model=ProviderCheckOut)
def test_provider(name: str, session: Session = Depends(db_read_session),
                  _: Principal = Depends(require("admin"))) -> ProviderCheckOut:
    """Test the connection and credentials without sending anything (e.g. an SMTP sign-in)."""
    result = providers.check_provider(session, name=name)
    return ProviderCheckOut(ok=result.ok, detail=result.detail)
