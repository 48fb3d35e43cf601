"""Providers: written in the settings as URLs (failover order, names, errors naming the setting),
stored through the API and CLI with their secrets sealed and never shown, validated on save,
tested without sending, used by every worker after a change; idempotency keys cleaned up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.console.conftest import signed_in  # noqa: F401
from trato.core.errors import ConfigurationError

SMTP_URL = "smtp://avisos%40banco.example:s3cr3t-Passw0rd-9876@mail.banco.example:2525?tls=starttls&from=Banco%20%3Cavisos@banco.example%3E"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Set TRATO_ variables for the registry; the settings are read again after the test."""
    from trato.core.settings import get_settings
    from trato.delivery.channels import registry

    def set_(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    for key in registry.URL_SETTINGS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("TRATO_SMTP_HOST", raising=False)
    monkeypatch.delenv("TRATO_CHANNEL_PROVIDERS", raising=False)
    get_settings.cache_clear()
    yield set_
    monkeypatch.undo()
    get_settings.cache_clear()
    registry.forget()


# -- settings URLs ------------------------------------------------------------------------------------


def test_several_urls_in_one_setting_are_the_channels_failover_order(env: Any, database_url: str) -> None:
    from trato.delivery.channels import registry
    from trato.delivery.channels.email import SmtpEmail
    from trato.delivery.channels.sandbox import Sandbox

    env(TRATO_EMAIL_URL=f"{SMTP_URL}#smtp-main, sandbox://?keep=5", TRATO_SMS_URL="sandbox://?keep=5 sandbox://#sms-b")
    email = registry.chain("email")
    assert [(c.name, c.origin, c.setting) for c in email] == [
        ("smtp-main", "settings", "TRATO_EMAIL_URL"), ("sandbox", "settings", "TRATO_EMAIL_URL")]
    smtp = email[0].adapter
    assert isinstance(smtp, SmtpEmail)
    assert (smtp.smtp.host, smtp.smtp.port, smtp.smtp.username, smtp.smtp.starttls) == (
        "mail.banco.example", 2525, "avisos@banco.example", True)
    assert smtp.smtp.password is not None and smtp.smtp.password.get_secret_value() == "s3cr3t-Passw0rd-9876"
    assert smtp.smtp.from_address == "Banco <avisos@banco.example>"
    # The same URL in two settings is one provider serving both channels.
    sms = registry.chain("sms")
    assert [c.name for c in sms] == ["sandbox", "sms-b"]
    assert sms[0].adapter is email[1].adapter and isinstance(sms[0].adapter, Sandbox)
    assert sms[0].channels == ("email", "sms")
    assert registry.provider("sms-b") is sms[1].adapter
    assert registry.adapter_for("email") is smtp
    # Channels nothing configures go to the sandbox, as before.
    assert [c.origin for c in registry.chain("push")] == ["default"]


@pytest.mark.parametrize(("setting", "value", "words"), [
    ("TRATO_SMS_URL", "carrier-pigeon://coo", "no adapter understands carrier-pigeon://"),
    ("TRATO_SMS_URL", "smtp://mail.example", "does not send sms"),
    ("TRATO_EMAIL_URL", "smtp://mail.example?tls=maybe", "tls must be"),
    ("TRATO_EMAIL_URL", "smtp://mail.example:99999", "port"),
    ("TRATO_EMAIL_URL", "sandbox://#Bad_Name", "is not a provider name"),
    ("TRATO_EMAIL_URL", "mail.example", "starts with its scheme"),
])
def test_a_bad_url_stops_start_up_naming_its_setting(env: Any, setting: str, value: str, words: str) -> None:
    from trato.app import create_app

    env(**{setting: value})
    with pytest.raises(ConfigurationError) as caught:
        create_app()
    assert caught.value.setting == setting
    assert words in caught.value.message


def test_a_password_in_a_bad_url_is_not_repeated_in_the_error(env: Any) -> None:
    from trato.delivery.channels import registry

    env(TRATO_EMAIL_URL="smtp://user:hunter2-very-secret@mail.example?tls=sometimes")
    with pytest.raises(ConfigurationError) as caught:
        registry.check_configuration()
    assert "hunter2" not in caught.value.message


def test_the_older_settings_still_choose_providers(env: Any, database_url: str) -> None:
    from trato.delivery.channels import registry
    from trato.delivery.channels.email import SmtpEmail

    env(TRATO_SMTP_HOST="mail.legacy.example", TRATO_CHANNEL_PROVIDERS="sms=sandbox")
    assert isinstance(registry.adapter_for("email"), SmtpEmail)
    assert registry.adapter_for("email").settings.host == "mail.legacy.example"  # type: ignore[attr-defined]
    assert [c.setting for c in registry.chain("sms")] == ["TRATO_CHANNEL_PROVIDERS"]
    env(TRATO_EMAIL_URL="sandbox://")  # the URL setting wins over the older one
    assert [c.adapter.name for c in registry.chain("email")] == ["sandbox"]


# -- stored providers ---------------------------------------------------------------------------------


def _smtp_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "smtp-backup", "adapter": "smtp", "channels": ["email"], "priority": 5,
                            "settings": {"host": "mail.backup.example", "port": 2525, "username": "avisos",
                                         "password": "s3cr3t-Passw0rd-9876", "starttls": False}}
    body.update(extra)
    return body


def test_a_stored_providers_secrets_are_sealed_at_rest_and_never_shown(api: Any, engine: Any, env: Any) -> None:
    created = api.post("/api/v1/providers", json=_smtp_body())
    assert created.status_code == 201, created.text
    shown = created.json()
    assert shown["settings"]["password"] == "••••9876"
    assert shown["settings"]["host"] == "mail.backup.example"
    assert (shown["origin"], shown["priority"], shown["circuit"]["state"]) == ("database", 5, "closed")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT settings FROM delivery_providers")).scalar_one()
        audit = conn.execute(text("SELECT details FROM audit_log WHERE object_type = 'provider'")).scalars().all()
    stored_text = stored if isinstance(stored, str) else json.dumps(stored)
    assert "s3cr3t" not in stored_text and "$sealed" in stored_text
    assert all("s3cr3t" not in (a if isinstance(a, str) else json.dumps(a)) for a in audit)
    listed = api.get("/api/v1/providers").json()
    assert [p["name"] for p in listed] == ["smtp-backup"]
    assert "s3cr3t" not in json.dumps(listed)

    # The adapter gets the secret in clear; a change that sends the mask back keeps it.
    from trato.delivery.channels import registry

    assert registry.provider("smtp-backup").settings.password.get_secret_value() == "s3cr3t-Passw0rd-9876"  # type: ignore[attr-defined]
    changed = api.patch("/api/v1/providers/smtp-backup", json={"settings": {**shown["settings"], "port": 2626}})
    assert changed.status_code == 200, changed.text
    adapter = registry.provider("smtp-backup")
    assert adapter.settings.port == 2626  # type: ignore[attr-defined]
    assert adapter.settings.password.get_secret_value() == "s3cr3t-Passw0rd-9876"  # type: ignore[attr-defined]


def test_a_stored_secret_cannot_be_read_with_another_key(api: Any, env: Any) -> None:
    from trato.core.sealing import SealBroken, _cache
    from trato.delivery.channels import registry

    assert api.post("/api/v1/providers", json=_smtp_body()).status_code == 201
    env(TRATO_CREDENTIALS_KEY="another-key-another-key-another-key-0123")
    registry.forget()
    # The channel's only provider is unusable: an error naming the key, never the sandbox instead.
    with pytest.raises(SealBroken) as caught:
        registry.chain("email")
    assert caught.value.setting == "TRATO_CREDENTIALS_KEY"
    listed = api.get("/api/v1/providers")
    assert listed.status_code == 200 and listed.json()[0]["settings"] == {}
    tested = api.post("/api/v1/providers/smtp-backup/test").json()
    assert tested["ok"] is False and "TRATO_CREDENTIALS_KEY" in tested["detail"]
    _cache.clear()


@pytest.mark.parametrize(("body", "status", "code", "field"), [
    (_smtp_body(settings={"host": "mail.example", "port": "many"}), 422, "invalid_provider", "settings.port"),
    (_smtp_body(adapter="fax"), 422, "invalid_provider", "adapter"),
    (_smtp_body(settings={"host": "mail.example", "pasword": "typo"}), 422, "invalid_provider", "settings.pasword"),
    (_smtp_body(channels=["sms"]), 422, "invalid_provider", "channels"),
    (_smtp_body(name="Not A Name"), 422, "validation_error", None),
    ({"name": "by-url", "url": "smtp://mail.example?tls=perhaps"}, 422, "invalid_provider", "url"),
])
def test_settings_are_validated_on_save_naming_the_field(api: Any, env: Any, body: dict[str, Any], status: int,
                                                         code: str, field: str | None) -> None:
    response = api.post("/api/v1/providers", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if field is not None:
        assert (error["code"], error["details"]["field"]) == (code, field)
        assert field.rpartition(".")[2] in error["message"] or field in ("adapter", "channels", "url")


def test_names_are_unique_and_settings_providers_are_read_only(api: Any, env: Any) -> None:
    env(TRATO_SMS_URL="sandbox://#sms-env")
    assert api.post("/api/v1/providers", json=_smtp_body()).status_code == 201
    again = api.post("/api/v1/providers", json=_smtp_body())
    assert (again.status_code, again.json()["error"]["code"]) == (409, "provider_exists")
    taken = api.post("/api/v1/providers", json={"name": "sms-env", "url": "sandbox://"})
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "provider_exists")
    locked = api.patch("/api/v1/providers/sms-env", json={"enabled": False})
    assert (locked.status_code, locked.json()["error"]["code"]) == (409, "provider_in_settings")
    missing = api.delete("/api/v1/providers/nobody")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "provider_not_found")
    listed = api.get("/api/v1/providers").json()
    assert [(p["name"], p["origin"], p["setting"]) for p in listed] == [
        ("sms-env", "settings", "TRATO_SMS_URL"), ("smtp-backup", "database", None)]
    assert api.delete("/api/v1/providers/smtp-backup").status_code == 204
    assert [p["name"] for p in api.get("/api/v1/providers").json()] == ["sms-env"]


def test_only_admins_manage_providers(client: Any, database_url: str) -> None:
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        _, editor = service.create_token(s, name="editor", role="editor", actor="test")
    client.headers["Authorization"] = f"Bearer {editor}"
    assert client.get("/api/v1/providers").status_code == 403
    assert client.post("/api/v1/providers", json=_smtp_body()).status_code == 403


def test_test_connection_signs_in_without_sending(api: Any, env: Any, smtp_server: Any) -> None:
    from tests.delivery.smtp_peer import free_port

    up = {"name": "local", "url": f"smtp://127.0.0.1:{smtp_server.port}?tls=none&timeout=5"}
    down = {"name": "nowhere", "url": f"smtp://127.0.0.1:{free_port()}?tls=none&timeout=2", "enabled": False}
    assert api.post("/api/v1/providers", json=up).status_code == 201
    assert api.post("/api/v1/providers", json=down).status_code == 201
    ok = api.post("/api/v1/providers/local/test").json()
    assert ok["ok"] is True and f"127.0.0.1:{smtp_server.port}" in ok["detail"]
    failed = api.post("/api/v1/providers/nowhere/test").json()  # disabled ones can be tested too
    assert failed["ok"] is False and "cannot reach" in failed["detail"]
    assert smtp_server.received == []


def test_a_change_reaches_the_registry_at_its_next_look_up(api: Any, env: Any) -> None:
    from trato.delivery.channels import registry

    assert api.post("/api/v1/providers", json={"name": "a", "url": "sandbox://", "channels": ["sms"],
                                               "priority": 2}).status_code == 201
    assert api.post("/api/v1/providers", json={"name": "b", "url": "sandbox://", "channels": ["sms"],
                                               "priority": 1}).status_code == 201
    kept = registry.provider("a")
    assert [c.name for c in registry.chain("sms")] == ["b", "a"]
    assert api.patch("/api/v1/providers/b", json={"enabled": False}).status_code == 200
    assert [c.name for c in registry.chain("sms")] == ["a"]
    assert registry.provider("b").instance == "b"  # disabled: sends nothing, still verifies its callbacks
    assert registry.provider("a") is kept  # an unchanged provider keeps its adapter (and its connections)
    assert api.patch("/api/v1/providers/a", json={"max_per_second": 3}).status_code == 200
    assert registry.chain("sms")[0].rate == 3


def test_the_cli_adds_lists_tests_disables_and_removes(env: Any, database_url: str, smtp_server: Any) -> None:
    from typer.testing import CliRunner

    from trato.cli import app

    runner = CliRunner()
    url = f"smtp://user:pa55-word-4321@127.0.0.1:{smtp_server.port}?tls=none&timeout=5"
    added = runner.invoke(app, ["providers", "add", "mail-cli", url, "--channel", "email", "--priority", "3",
                                "--rate", "20"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["providers", "list"], terminal_width=250)
    assert "mail-cli" in listed.output and "••••4321" in listed.output and "pa55-word" not in listed.output
    tested = runner.invoke(app, ["providers", "test", "mail-cli"])
    # The loopback peer offers no AUTH: the sign-in is refused, and the command says so.
    assert tested.exit_code == 1 and "failed" in tested.output
    assert runner.invoke(app, ["providers", "disable", "mail-cli"]).exit_code == 0
    assert runner.invoke(app, ["providers", "remove", "mail-cli"]).exit_code == 0
    missing = runner.invoke(app, ["providers", "remove", "mail-cli"])
    assert missing.exit_code != 0


# -- sealing -----------------------------------------------------------------------------------------


def test_sealed_values_open_only_with_their_key_and_unaltered(database_url: str) -> None:
    from trato.core.sealing import SealBroken, masked, seal, unseal

    token = seal("AC-token-123456")
    assert "AC-token" not in token and unseal(token) == "AC-token-123456"
    assert seal("AC-token-123456") != token  # a fresh IV each time
    altered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(SealBroken):
        unseal(altered)
    assert masked("AC-token-123456") == "••••3456"
    assert masked("short") == "••••"


# -- idempotency keys ----------------------------------------------------------------------------------


def test_idempotency_keys_older_than_a_day_are_removed(api: Any, sandbox: Any, send_body: Any) -> None:
    from trato.core.clock import utcnow
    from trato.core.db import unit_of_work
    from trato.delivery import idempotency, tasks
    from trato.delivery.models import IdempotencyKey

    for key in ("old-1", "old-2", "fresh"):
        assert api.post("/api/v1/messages", json=send_body(), headers={"Idempotency-Key": key}).status_code == 202
    with unit_of_work() as session:
        for row in session.query(IdempotencyKey).filter(IdempotencyKey.key.like("old-%")):
            row.created_at = utcnow() - timedelta(hours=25)
    assert tasks.remove_expired_idempotency_keys.call_local() == 2
    with unit_of_work() as session:
        assert [r.key for r in session.query(IdempotencyKey)] == ["fresh"]
        assert idempotency.remove_expired(session, older_than=timedelta(hours=24)) == 0
    # A removed key is free again: the client's request is a new message.
    again = api.post("/api/v1/messages", json=send_body(), headers={"Idempotency-Key": "old-1"})
    assert again.status_code == 202 and "Idempotent-Replayed" not in again.headers


# -- the console page ----------------------------------------------------------------------------------


def test_the_providers_page_shows_health_and_tests_a_connection_in_both_languages(
        signed_in: Any, env: Any, smtp_server: Any) -> None:  # noqa: F811
    from tests.console.conftest import csrf_of
    from trato.core.db import unit_of_work
    from trato.delivery import providers
    from trato.delivery.resilience import health

    env(TRATO_SMS_URL="sandbox://#sms-env")
    with unit_of_work() as session:
        providers.add_provider(session, actor="test", name="mail-local", channels=["email"], priority=3,
                               url=f"smtp://user:pa55-word-4321@127.0.0.1:{smtp_server.port}?tls=none&timeout=5")
    health().reset()
    for _ in range(5):
        health().refused("sms-env")
    page = signed_in.get("/providers?lang=es")
    assert page.status_code == 200
    assert "<h1>Proveedores</h1>" in page.text
    assert "mail-local" in page.text and "sms-env" in page.text and "TRATO_SMS_URL" in page.text
    assert "fuera de servicio (circuito abierto)" in page.text and "5 rechazos seguidos" in page.text
    assert "pa55-word" not in page.text
    english = signed_in.get("/providers?lang=en").text
    assert "out of service (circuit open)" in english and "Test connection" in english
    tested = signed_in.post("/providers/sms-env/test?lang=en", data={"csrf": csrf_of(page.text)})
    assert tested.status_code == 200
    assert "the connection works." in tested.text
    forged = signed_in.post("/providers/sms-env/test", data={"csrf": "forged"})
    assert forged.status_code == 403
    health().reset()


def test_the_providers_page_is_for_admins(client: Any, database_url: str) -> None:
    from tests.console.conftest import sign_in_with_token
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        _, editor = service.create_token(s, name="editor", role="editor", actor="test")
    assert sign_in_with_token(client, editor).status_code == 303
    assert client.get("/providers").status_code == 403
