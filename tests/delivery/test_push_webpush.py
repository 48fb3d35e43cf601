"""Web Push end to end: a browser's subscription registered through the API, a message sent through
the send API, encrypted and VAPID-signed to the loopback push service, which verifies and decrypts
it; expired subscriptions removed; every kind of answer classified."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.delivery.push_world import message, outgoing, push_communication, register, send_push
from tests.fakes.server import Fault


@pytest.fixture
def push_via_webpush(webpush_adapter: Any) -> Iterator[Any]:
    from trato.delivery.channels import registry

    previous = registry.use("push", webpush_adapter)
    yield webpush_adapter
    registry.use("push", previous)


@pytest.fixture
def browser(webpush_service: Any, webpush_adapter: Any) -> Any:
    return webpush_service.subscribe(webpush_adapter.public_key)


@pytest.fixture
def registered(database_url: str, webpush_service: Any, webpush_adapter: Any, browser: Any) -> str:
    """A registration of ``browser`` for a customer, made through the service (for adapter-level tests)."""
    from trato.core.db import unit_of_work
    from trato.customers import service as customers
    from trato.delivery import push_devices

    with unit_of_work() as s:
        ana = customers.create_customer(s, traits={"first_name": "Ana"}, actor="test", identities=[])
        return push_devices.register(s, customer_id=ana.id, platform="webpush", actor="test",
                                     subscription=browser.subscription()).id


@pytest.mark.usefixtures("immediate_queue", "push_via_webpush")
def test_a_send_reaches_the_browser_encrypted_and_signed(api: Any, world: dict[str, str], webpush_service: Any,
                                                         browser: Any, vapid_keys: tuple[str, str]) -> None:
    registration = register(api, world["customer_id"], platform="webpush", subscription=browser.subscription(),
                            label="Firefox en el portátil")
    assert registration["platform"] == "webpush" and registration["id"].startswith("pdev_")
    key = push_communication()

    sent = send_push(api, world["customer_id"], key)
    assert sent.status_code == 202, sent.text
    shown = message(api, sent.json()["id"])
    assert shown["state"] == "accepted", shown
    [received] = webpush_service.received
    assert received.location.endswith(shown["provider_message_id"])
    assert received.json() == {
        "web_push": 8030, "message_id": shown["id"],
        "notification": {"title": "Tu factura F-7", "body": "Hola Ana, ya está disponible.", "lang": "es",
                         "navigate": "https://banco.example/facturas/F-7"},
    }
    assert received.headers["ttl"] == "86400"
    assert received.headers["urgency"] == "high"  # transactional
    assert "topic" not in received.headers  # off by default: another invoice must not replace this one
    assert received.headers["content-encoding"] == "aes128gcm"
    assert received.claims["aud"] == webpush_service.origin
    assert received.claims["sub"] == "mailto:ops@banco.example"
    assert f"k={vapid_keys[1]}" in received.headers["authorization"]


@pytest.mark.usefixtures("immediate_queue", "push_via_webpush")
def test_an_expired_subscription_is_removed_and_push_becomes_unreachable(
        api: Any, world: dict[str, str], webpush_service: Any, browser: Any) -> None:
    registration = register(api, world["customer_id"], platform="webpush", subscription=browser.subscription())
    key = push_communication()
    webpush_service.expire(browser)

    shown = message(api, send_push(api, world["customer_id"], key).json()["id"])
    assert shown["state"] == "failed"
    assert "410" in shown["last_error"] and "removed" in shown["last_error"]
    assert api.get(f"/api/v1/customers/{world['customer_id']}/push-registrations").json() == []
    gone = api.delete(f"/api/v1/customers/{world['customer_id']}/push-registrations/{registration['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "push_registration_not_found"
    again = send_push(api, world["customer_id"], key).json()
    assert again["state"] == "refused"
    assert {r["code"] for r in again["decision"]["reasons"]} == {"unreachable"}


@pytest.mark.usefixtures("immediate_queue", "push_via_webpush")
def test_the_newest_browser_is_used_and_an_fcm_only_customer_has_no_webpush_address(
        api: Any, world: dict[str, str], webpush_service: Any, webpush_adapter: Any, browser: Any) -> None:
    key = push_communication()
    register(api, world["customer_id"], platform="fcm", token="fcm-token-of-the-phone")
    refused = send_push(api, world["customer_id"], key)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "no_address"
    register(api, world["customer_id"], platform="webpush", subscription=browser.subscription())
    newer = webpush_service.subscribe(webpush_adapter.public_key)
    register(api, world["customer_id"], platform="webpush", subscription=newer.subscription())
    assert message(api, send_push(api, world["customer_id"], key).json()["id"])["state"] == "accepted"
    assert [r.browser for r in webpush_service.received] == [newer.id]


def test_registrations_are_checked_moved_and_removed(api: Any, world: dict[str, str], webpush_service: Any,
                                                      browser: Any) -> None:
    url = f"/api/v1/customers/{world['customer_id']}/push-registrations"
    subscription = browser.subscription()
    bad_key = {**subscription, "keys": {**subscription["keys"], "p256dh": "AAAA"}}
    for body in ({"platform": "webpush", "subscription": bad_key},
                 {"platform": "webpush", "token": "abc"},
                 {"platform": "fcm", "subscription": subscription},
                 {"platform": "fcm", "token": "has spaces in it"},
                 {"platform": "webpush", "subscription": {**subscription, "endpoint": "ftp://push.example/x"}},
                 {"platform": "webpush", "subscription": {**subscription, "keys": {**subscription["keys"],
                                                                                   "auth": "c2hvcnQ"}}}):
        answer = api.post(url, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["error"]["code"] == "invalid_push_registration", answer.text
    assert api.post(url, json={"platform": "apns", "token": "x"}).status_code == 422
    assert api.post("/api/v1/customers/cus_NOBODY/push-registrations",
                    json={"platform": "fcm", "token": "t"}).status_code == 404

    first = register(api, world["customer_id"], platform="webpush", subscription=subscription)
    again = register(api, world["customer_id"], platform="webpush", subscription=subscription, label="otra vez")
    assert again["id"] == first["id"] and again["label"] == "otra vez"
    other = api.post("/api/v1/customers", json={"traits": {"first_name": "Luis"}}).json()["customer"]
    moved = register(api, other["id"], platform="webpush", subscription=subscription)
    assert moved["id"] == first["id"] and moved["customer_id"] == other["id"]
    assert api.get(url).json() == []
    listed = api.get(f"/api/v1/customers/{other['id']}/push-registrations").json()
    assert [r["id"] for r in listed] == [first["id"]]
    assert api.delete(f"{url}/{first['id']}").status_code == 404  # not Ana's any more
    assert api.delete(f"/api/v1/customers/{other['id']}/push-registrations/{first['id']}").status_code == 204
    assert api.get(f"/api/v1/customers/{other['id']}/push-registrations").json() == []


@pytest.mark.parametrize(("fault", "permanent", "retry_after"), [
    (Fault(status=429, body={"code": 429, "errno": 999, "error": "Too Many Requests"}, headers={"Retry-After": "7"}),
     False, 7.0),
    (Fault(status=503, body={"code": 503, "errno": 202, "error": "Service Unavailable"}), False, None),
    (Fault(status=413, body={"code": 413, "errno": 104, "error": "Payload Too Large"}), True, None),
    (Fault(status=400, body={"code": 400, "errno": 111, "error": "Bad Request"}), True, None),
])
def test_answers_are_classified(webpush_adapter: Any, webpush_service: Any, registered: str, fault: Fault,
                                permanent: bool, retry_after: float | None) -> None:
    webpush_service.misbehave(fault)
    result = webpush_adapter.send(outgoing(registered))
    assert (result.outcome, result.permanent, result.retry_after) == ("refused", permanent, retry_after)
    assert str(fault.status) in (result.error or "")
    assert webpush_adapter.send(outgoing(registered)).outcome == "accepted"  # the registration is kept


def test_a_push_service_that_goes_silent_or_drops_the_connection_leaves_it_ambiguous(
        webpush_adapter: Any, webpush_service: Any, registered: str) -> None:
    from trato.delivery.channels.webpush import WebPush

    impatient = WebPush(webpush_adapter.settings.model_copy(update={"timeout": 0.3}))
    webpush_service.misbehave(Fault("hang"))
    assert impatient.send(outgoing(registered)).outcome == "ambiguous"
    webpush_service.reset_faults()
    webpush_service.misbehave(Fault("close"))
    assert impatient.send(outgoing(registered)).outcome == "ambiguous"
    impatient.close()


def test_an_unknown_endpoint_or_another_vapid_key_fails_for_good(
        webpush_adapter: Any, webpush_service: Any, registered: str) -> None:
    from tests.fakes.webpush import new_vapid_key
    from trato.core.db import unit_of_work
    from trato.delivery import push_devices

    webpush_service.state.browsers.clear()  # the push service forgot the subscription: 404
    result = webpush_adapter.send(outgoing(registered))
    assert (result.outcome, result.permanent) == ("refused", True)
    assert push_devices.target(registered) is None

    with unit_of_work() as s:
        from trato.customers import service as customers

        luis = customers.create_customer(s, traits={}, actor="test", identities=[])
        other_key = webpush_service.subscribe(new_vapid_key()[1])  # subscribed for another application server
        registration = push_devices.register(s, customer_id=luis.id, platform="webpush", actor="test",
                                             subscription=other_key.subscription()).id
    result = webpush_adapter.send(outgoing(registration))
    assert (result.outcome, result.permanent) == ("refused", True) and "403" in (result.error or "")
    assert webpush_service.state.rejected[-1][0] == 403


def test_a_topic_per_communication_when_asked(webpush_adapter: Any, webpush_service: Any, registered: str) -> None:
    from trato.delivery.channels.webpush import WebPush

    collapsing = WebPush(webpush_adapter.settings.model_copy(update={"topic_per_communication": True}))
    assert collapsing.send(outgoing(registered)).outcome == "accepted"
    assert webpush_service.received[-1].headers["topic"] == "invoice-push"
    collapsing.close()


def test_a_notification_too_large_is_refused_before_sending(webpush_adapter: Any, webpush_service: Any,
                                                            registered: str) -> None:
    result = webpush_adapter.send(outgoing(registered, body="x" * 5000))
    assert (result.outcome, result.permanent) == ("refused", True) and "bytes" in (result.error or "")
    assert webpush_service.received == []


def test_an_unreachable_push_service_is_a_clear_refusal(webpush_adapter: Any, registered: str) -> None:
    from sqlalchemy import update

    from tests.delivery.smtp_peer import free_port
    from trato.core.db import unit_of_work
    from trato.delivery.models import PushRegistration

    with unit_of_work() as s:
        s.execute(update(PushRegistration).values(token=f"http://127.0.0.1:{free_port()}/wpush/v2/x"))
    result = webpush_adapter.send(outgoing(registered))
    assert (result.outcome, result.permanent) == ("refused", False)


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://10.1.2.3/wpush/x", False), ("https://169.254.169.254/latest/meta-data", False),
    ("https://127.0.0.1:8443/x", False), ("https://[::1]/x", False), ("https://[fd00::1]/x", False),
    ("http://8.8.8.8/x", False), ("https://user:pw@8.8.8.8/x", False), ("https://8.8.8.8/wpush/x", True),
])
def test_browser_given_endpoints_must_be_public_https(url: str, allowed: bool) -> None:
    from trato.delivery.channels.webpush import endpoint_problem

    assert (endpoint_problem(url, allow_private=False) is None) is allowed


def test_a_private_endpoint_is_not_called_in_production(webpush_adapter: Any, webpush_service: Any,
                                                        registered: str) -> None:
    webpush_adapter.settings = webpush_adapter.settings.model_copy(update={"allow_private": False})
    result = webpush_adapter.send(outgoing(registered))
    assert (result.outcome, result.permanent) == ("refused", True) and "https" in (result.error or "")
    assert webpush_service.received == []


def test_settings_from_one_url_and_check(vapid_keys: tuple[str, str]) -> None:
    from trato.core.errors import ConfigurationError
    from trato.delivery.channels.webpush import WebPush, WebPushSettings

    settings = WebPush.settings_from_url(f"webpush://?vapid_private_key={vapid_keys[0]}"
                                         "&subject=mailto:ops@banco.example&ttl=3600&urgency=low&allow_private=1")
    assert isinstance(settings, WebPushSettings)
    assert (settings.ttl, settings.urgency, settings.allow_private) == (3600, "low", True)
    assert vapid_keys[0] not in repr(settings)
    adapter = WebPush(settings)
    assert adapter.public_key == vapid_keys[1]
    check = adapter.check()
    assert check.ok and vapid_keys[1] in check.detail
    with pytest.raises(ConfigurationError, match="subject"):
        WebPush.settings_from_url(f"webpush://?vapid_private_key={vapid_keys[0]}")
    with pytest.raises(ConfigurationError, match="subject"):
        WebPush.settings_from_url(f"webpush://?vapid_private_key={vapid_keys[0]}&subject=ops")
    with pytest.raises(ConfigurationError, match="vapid_private_key"):
        WebPush(WebPush.settings_from_url("webpush://?vapid_private_key=bm90LWEta2V5&subject=mailto:a@b.example"))
    with pytest.raises(ConfigurationError):
        WebPush()


def test_a_merge_keeps_the_device_and_an_erasure_forgets_it(api: Any, world: dict[str, str],
                                                            webpush_service: Any, browser: Any) -> None:
    from sqlalchemy import func, select

    from trato.core.db import unit_of_work
    from trato.delivery.models import PushRegistration

    luis = api.post("/api/v1/customers", json={"traits": {"first_name": "Luis"}}).json()["customer"]
    registration = register(api, luis["id"], platform="webpush", subscription=browser.subscription())
    merged = api.post(f"/api/v1/customers/{world['customer_id']}/merge", json={"other_id": luis["id"]})
    assert merged.status_code == 201, merged.text
    listed = api.get(f"/api/v1/customers/{world['customer_id']}/push-registrations").json()
    assert [r["id"] for r in listed] == [registration["id"]]

    erased = api.post(f"/api/v1/customers/{world['customer_id']}/privacy-erase")
    assert erased.status_code == 200, erased.text
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(PushRegistration)) == 0


def test_web_apps_read_the_application_server_key(api: Any, webpush_adapter: Any, sandbox: Any) -> None:
    from trato.delivery.channels import registry

    other = api.get("/api/v1/push/application-server-key")
    assert other.status_code == 404 and other.json()["error"]["code"] == "push_not_webpush"
    previous = registry.use("push", webpush_adapter)
    try:
        assert api.get("/api/v1/push/application-server-key").json() == {
            "application_server_key": webpush_adapter.public_key}
    finally:
        registry.use("push", previous)
