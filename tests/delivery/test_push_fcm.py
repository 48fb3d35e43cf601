"""FCM HTTP v1 end to end: the service account signs in at the loopback token endpoint (one access
token for many sends), messages carry the notification for every platform, and FCM's errors are
classified: UNREGISTERED removes the registration, INVALID_ARGUMENT fails, quota and outages retry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.delivery.push_world import message, outgoing, push_communication, register, send_push
from tests.fakes.fcm import fault
from tests.fakes.server import Fault


@pytest.fixture
def push_via_fcm(fcm_adapter: Any) -> Iterator[Any]:
    from trato.delivery.channels import registry

    previous = registry.use("push", fcm_adapter)
    yield fcm_adapter
    registry.use("push", previous)


@pytest.mark.usefixtures("immediate_queue", "push_via_fcm")
def test_sends_share_one_access_token_and_carry_the_notification(api: Any, world: dict[str, str],
                                                                  fcm_service: Any) -> None:
    phone = fcm_service.install_app()
    register(api, world["customer_id"], platform="fcm", token=phone, label="Pixel 9")
    key = push_communication()

    ids = [send_push(api, world["customer_id"], key).json()["id"] for _ in range(3)]
    shown = [message(api, i) for i in ids]
    assert [m["state"] for m in shown] == ["accepted"] * 3
    assert fcm_service.state.token_requests == 1
    assert [s.name for s in fcm_service.state.sent] == [m["provider_message_id"] for m in shown]
    first = fcm_service.state.sent[0].message
    assert first["token"] == phone
    assert first["notification"] == {"title": "Tu factura F-7", "body": "Hola Ana, ya está disponible."}
    assert first["data"] == {"message_id": ids[0], "deep_link": "https://banco.example/facturas/F-7"}
    assert first["android"]["priority"] == "high" and first["android"]["ttl"] == "86400s"
    assert first["apns"]["headers"]["apns-priority"] == "10"
    assert first["webpush"] == {"fcm_options": {"link": "https://banco.example/facturas/F-7"}}


@pytest.mark.usefixtures("immediate_queue", "push_via_fcm")
def test_an_uninstalled_app_is_removed_and_push_becomes_unreachable(api: Any, world: dict[str, str],
                                                                     fcm_service: Any) -> None:
    phone = fcm_service.install_app()
    register(api, world["customer_id"], platform="fcm", token=phone)
    key = push_communication()
    fcm_service.uninstall(phone)

    shown = message(api, send_push(api, world["customer_id"], key).json()["id"])
    assert shown["state"] == "failed" and "UNREGISTERED" in shown["last_error"]
    assert api.get(f"/api/v1/customers/{world['customer_id']}/push-registrations").json() == []
    again = send_push(api, world["customer_id"], key).json()
    assert again["state"] == "refused"
    assert {r["code"] for r in again["decision"]["reasons"]} == {"unreachable"}


@pytest.mark.usefixtures("immediate_queue", "push_via_fcm")
def test_a_device_token_from_tracked_events_is_reached_too(api: Any, world: dict[str, str], fcm_service: Any) -> None:
    phone = fcm_service.install_app()
    added = api.post(f"/api/v1/customers/{world['customer_id']}/identities", json={"kind": "device_token",
                                                                                   "value": phone})
    assert added.status_code == 201, added.text
    shown = message(api, send_push(api, world["customer_id"], push_communication()).json()["id"])
    assert shown["state"] == "accepted"
    assert fcm_service.state.sent[0].message["token"] == phone


@pytest.mark.parametrize(("answer", "permanent", "retry_after"), [
    (fault("INVALID_ARGUMENT", 400), True, None),
    (fault("SENDER_ID_MISMATCH", 403), True, None),
    (fault("QUOTA_EXCEEDED", 429, "30"), False, 30.0),
    (fault("UNAVAILABLE", 503, "5"), False, 5.0),
    (fault("INTERNAL", 500), False, None),
])
def test_fcm_errors_are_classified(fcm_adapter: Any, fcm_service: Any, answer: Fault, permanent: bool,
                                   retry_after: float | None) -> None:
    phone = fcm_service.install_app()
    assert fcm_adapter.send(outgoing(phone)).outcome == "accepted"  # signs in first: the fault hits the send
    fcm_service.misbehave(answer)
    result = fcm_adapter.send(outgoing(phone))
    assert (result.outcome, result.permanent, result.retry_after) == ("refused", permanent, retry_after)
    assert answer.body["error"]["details"][0]["errorCode"] in (result.error or "")


def test_a_revoked_access_token_is_dropped_and_the_next_send_signs_in_again(fcm_adapter: Any,
                                                                             fcm_service: Any) -> None:
    phone = fcm_service.install_app()
    assert fcm_adapter.send(outgoing(phone)).outcome == "accepted"
    fcm_service.expire_access_tokens()
    result = fcm_adapter.send(outgoing(phone))
    assert (result.outcome, result.permanent) == ("refused", False) and "401" in (result.error or "")
    assert fcm_adapter.send(outgoing(phone)).outcome == "accepted"
    assert fcm_service.state.token_requests == 2


def test_fcm_answers_invalid_payloads_as_the_real_api(fcm_adapter: Any, fcm_service: Any) -> None:
    result = fcm_adapter.send(outgoing("not-a-token-anyone-installed"))
    assert (result.outcome, result.permanent) == ("refused", True) and "UNREGISTERED" in (result.error or "")
    phone = fcm_service.install_app()
    http_link = fcm_adapter.send(outgoing(phone, deep_link="myapp://facturas/F-7"))
    assert http_link.outcome == "accepted"
    sent = fcm_service.state.sent[-1].message
    assert "webpush" not in sent and sent["data"]["deep_link"] == "myapp://facturas/F-7"


def test_silence_and_dropped_connections_are_ambiguous_but_sign_in_failures_are_not(
        fcm_adapter: Any, fcm_service: Any) -> None:
    from trato.delivery.channels.fcm import Fcm

    phone = fcm_service.install_app()
    impatient = Fcm(fcm_adapter.settings.model_copy(update={"timeout": 0.3}))
    assert impatient.send(outgoing(phone)).outcome == "accepted"
    fcm_service.misbehave(Fault("hang"))
    assert impatient.send(outgoing(phone)).outcome == "ambiguous"
    fcm_service.reset_faults()
    fcm_service.misbehave(Fault("close"))
    assert impatient.send(outgoing(phone)).outcome == "ambiguous"
    impatient.close()
    signing_in = Fcm(fcm_adapter.settings.model_copy(update={"timeout": 0.3}))  # no access token yet
    fcm_service.misbehave(Fault("close"))  # the token request: the message itself never left
    result = signing_in.send(outgoing(phone))
    assert (result.outcome, result.permanent) == ("refused", False) and "token" in (result.error or "")
    assert signing_in.send(outgoing(phone)).outcome == "accepted"
    signing_in.close()


def test_a_service_account_google_does_not_know_cannot_sign_in(fcm_service: Any) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from pydantic import SecretStr

    from trato.delivery.channels.fcm import Fcm, FcmSettings

    account = json.loads(fcm_service.service_account())
    account["private_key"] = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    forged = Fcm(FcmSettings(project_id=fcm_service.project, credentials=SecretStr(json.dumps(account)),
                             base_url=fcm_service.origin))
    check = forged.check()
    assert not check.ok and "invalid_grant" in check.detail
    result = forged.send(outgoing(fcm_service.install_app()))
    assert (result.outcome, result.permanent) == ("refused", False)
    assert fcm_service.state.sent == []
    forged.close()


def test_settings_from_one_url_and_check(fcm_service: Any, tmp_path: Path) -> None:
    from trato.core.errors import ConfigurationError
    from trato.delivery.channels.fcm import Fcm, FcmSettings

    path = tmp_path / "sa.json"
    path.write_text(fcm_service.service_account())
    settings = Fcm.settings_from_url(f"fcm://{fcm_service.project}?credentials={path}&base_url={fcm_service.origin}"
                                     "&ttl=600")
    assert isinstance(settings, FcmSettings)
    assert (settings.project_id, settings.ttl, settings.base_url) == (fcm_service.project, 600, fcm_service.origin)
    assert "PRIVATE KEY" not in repr(settings)
    adapter = Fcm(settings)
    check = adapter.check()
    assert check.ok and fcm_service.client_email in check.detail
    adapter.close()
    with pytest.raises(ConfigurationError, match="cannot be read"):
        Fcm.settings_from_url(f"fcm://{fcm_service.project}?credentials={tmp_path / 'missing.json'}")
    with pytest.raises(ConfigurationError, match="credentials"):
        Fcm.settings_from_url(f"fcm://{fcm_service.project}")
    (tmp_path / "bad.json").write_text('{"client_email": "x@y"}')
    with pytest.raises(ConfigurationError, match="credentials"):
        Fcm.settings_from_url(f"fcm://{fcm_service.project}?credentials={tmp_path / 'bad.json'}")
    with pytest.raises(ConfigurationError):
        Fcm()


def test_an_image_reaches_android_and_ios(fcm_adapter: Any, fcm_service: Any) -> None:
    from trato.delivery.channels.fcm import Fcm

    phone = fcm_service.install_app()
    image = "https://cdn.banco.example/f7.png"
    assert fcm_adapter.send(outgoing(phone, image=image)).outcome == "accepted"
    sent = fcm_service.state.sent[-1].message
    assert sent["notification"]["image"] == image
    assert sent["apns"]["fcm_options"] == {"image": image}
    assert sent["apns"]["payload"]["aps"] == {"mutable-content": 1}  # the app's extension fetches the image
    assert "collapse_key" not in sent["android"]  # off by default: another invoice must not replace this one
    collapsing = Fcm(fcm_adapter.settings.model_copy(update={"collapse_per_communication": True}))
    assert collapsing.send(outgoing(phone)).outcome == "accepted"
    sent = fcm_service.state.sent[-1].message
    assert sent["android"]["collapse_key"] == sent["apns"]["headers"]["apns-collapse-id"] == "invoice-push"
    collapsing.close()
