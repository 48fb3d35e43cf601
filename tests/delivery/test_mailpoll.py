"""The bounce mailbox poller against a real POP3 server on loopback: every mail is applied, then
deleted; a poll cut short leaves the rest for the next one, which applies them again harmlessly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.delivery.test_mailin import corpus, mail_adapter  # noqa: F401  (mail_adapter: the fixture)

pytestmark = pytest.mark.usefixtures("immediate_queue")


@pytest.fixture(scope="module")
def _pop3() -> Iterator[tuple[Any, Any]]:
    from tests.delivery import pop3_peer

    server, maildrop = pop3_peer.start()
    yield server, maildrop
    server.shutdown()


@pytest.fixture
def maildrop(_pop3: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    server, drop = _pop3
    drop.messages.clear()
    drop.logins = 0
    drop.drop_after_retr = False
    monkeypatch.setenv("TRATO_MAIL_POLL_URL", f"pop3://{drop.user}:{drop.password}@127.0.0.1:{server.server_address[1]}")
    return drop


def _sent(api: Any, send_body: Any) -> str:
    response = api.post("/api/v1/messages", json=send_body(channels=["email"]))
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _state(api: Any, message_id: str) -> str:
    return api.get(f"/api/v1/messages/{message_id}").json()["state"]


def test_each_mail_is_applied_then_deleted(api: Any, mail_adapter: Any, send_body: Any,  # noqa: F811
                                           maildrop: Any, world: dict[str, str]) -> None:
    from trato.delivery import mailpoll

    bounced, replied = _sent(api, send_body), _sent(api, send_body)
    maildrop.messages[:] = [corpus("gmail_hard_bounce.eml", message_id=bounced),
                            corpus("auto_reply_gmail_vacation.eml", message_id=replied),
                            corpus("reply_gmail.eml", message_id=replied),
                            b"\r\n"]
    settings = mailpoll.configured()
    assert settings is not None
    report = mailpoll.poll(settings)
    assert (report.fetched, report.unreadable, report.left, report.error) == (4, 1, 0, None)
    assert dict(report.applied) == {"bounced": 1, "ignored": 1, "reply": 1}
    assert maildrop.messages == []
    assert _state(api, bounced) == "bounced"


def test_a_poll_cut_short_leaves_the_mail_and_the_next_one_applies_it(
        api: Any, mail_adapter: Any, send_body: Any, maildrop: Any) -> None:  # noqa: F811
    from trato.delivery import mailpoll

    first, second = _sent(api, send_body), _sent(api, send_body)
    maildrop.messages[:] = [corpus("postfix_hard_bounce.eml", message_id=first),
                            corpus("microsoft_hard_bounce.eml", message_id=second)]
    maildrop.drop_after_retr = True  # the connection dies before QUIT: nothing is deleted
    settings = mailpoll.configured()
    assert settings is not None
    broken = mailpoll.poll(settings)
    assert broken.error and broken.fetched == 1
    assert len(maildrop.messages) == 2
    assert _state(api, first) == "bounced"  # applied and committed before the connection died
    maildrop.drop_after_retr = False
    result = CliRunner().invoke(__import__("trato.cli", fromlist=["app"]).app, ["mail", "poll"])
    assert result.exit_code == 0, result.output
    # The first bounce comes again (it was never deleted) and changes nothing the second time.
    assert result.output.strip().splitlines()[-1] == "fetched 2: bounced 2; unreadable 0; left 0"
    assert maildrop.messages == [] and maildrop.logins == 2
    assert _state(api, second) == "bounced"


def test_wrong_credentials_and_settings_are_reported(maildrop: Any, monkeypatch: pytest.MonkeyPatch,
                                                     database_url: str) -> None:
    from trato.core.errors import ConfigurationError
    from trato.delivery import mailpoll

    settings = mailpoll.configured()
    assert settings is not None
    wrong = settings.model_copy(update={"url": type(settings.url)(
        settings.url.get_secret_value().replace(maildrop.password, "wrong"))})
    report = mailpoll.poll(wrong)
    assert report.error and "invalid user or password" in report.error and "wrong" not in report.error
    for url in ("imap://u:p@host", "pop3://host", "pop3://u:p@host:port"):
        with pytest.raises(ConfigurationError) as error:
            mailpoll.Mailbox.from_url(url)
        assert error.value.setting == "TRATO_MAIL_POLL_URL"
    monkeypatch.delenv("TRATO_MAIL_POLL_URL")
    from trato.cli import app

    assert CliRunner().invoke(app, ["mail", "poll"]).exit_code == 78
