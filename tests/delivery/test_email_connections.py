"""SMTP connections are kept and reused (one connection carries many messages, RSET between them),
bounded across worker threads, replaced when the server dropped them while idle (no ambiguous
send), after an idle timeout and after N messages; DKIM signatures verify; the envelope sender
names the message (VERP)."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from trato.delivery.channels.base import OutgoingMessage

PARTS = {"subject": "Tu factura F-1 ✓", "html": "<p>Hola <b>Ana</b></p>", "text": "Hola Ana", "preheader": ""}


def _mail(n: int = 1, **extra: Any) -> OutgoingMessage:
    fields: dict[str, Any] = {"message_id": f"msg_01POOL{n}", "channel": "email", "recipient": "ana@example.com",
                              "parts": dict(PARTS), "customer_id": "cus_ANA", "language": "es"}
    fields.update(extra)
    return OutgoingMessage(**fields)


def _adapter(smtp_server: Any, **settings: Any) -> Any:
    from trato.delivery.channels.email import SmtpEmail, SmtpSettings

    fields: dict[str, Any] = {"host": "127.0.0.1", "port": smtp_server.port, "starttls": False, "timeout": 5,
                              "from_address": "Banco Ejemplo <avisos@banco.example>"}
    fields.update(settings)
    return SmtpEmail(SmtpSettings(**fields))


def test_one_connection_carries_many_messages_with_rset_between_them(smtp_adapter: Any, smtp_server: Any) -> None:
    results = [smtp_adapter.send(_mail(n)) for n in range(5)]
    assert [r.outcome for r in results] == ["accepted"] * 5
    assert len(smtp_server.received) == 5
    assert smtp_server.connections == 1
    assert smtp_server.rsets == 4  # before each reuse
    assert smtp_adapter.pool.stats.opened == 1 and smtp_adapter.pool.stats.reused == 4
    smtp_adapter.close()
    assert smtp_server.quits == 1  # close() says goodbye to every pooled connection


def test_worker_threads_share_at_most_max_connections(smtp_adapter: Any, smtp_server: Any) -> None:
    with ThreadPoolExecutor(max_workers=8) as threads:
        results = list(threads.map(lambda n: smtp_adapter.send(_mail(n)), range(40)))
    assert {r.outcome for r in results} == {"accepted"}
    assert len({r.provider_message_id for r in results}) == 40
    assert len(smtp_server.received) == 40
    assert 1 <= smtp_server.connections <= smtp_adapter.limits.max_connections == 4


def test_a_connection_dropped_while_idle_is_replaced_and_the_message_goes_on(
        smtp_adapter: Any, smtp_server: Any) -> None:
    assert smtp_adapter.send(_mail(1)).outcome == "accepted"
    assert smtp_server.drop_idle_clients() == 1
    result = smtp_adapter.send(_mail(2))
    assert result.outcome == "accepted", result  # a clear refusal of the old connection, not ambiguous
    assert [r.message["Message-ID"] for r in smtp_server.received] == ["<msg_01POOL1@banco.example>",
                                                                      "<msg_01POOL2@banco.example>"]
    assert smtp_server.connections == 2
    assert smtp_adapter.pool.stats.dropped == 1


def test_a_refused_recipient_leaves_the_connection_usable(smtp_adapter: Any, smtp_server: Any) -> None:
    smtp_server.refuse_rcpt = "550 5.1.1 no such mailbox"
    refused = smtp_adapter.send(_mail(1))
    assert (refused.outcome, refused.permanent) == ("refused", True)
    smtp_server.refuse_rcpt = None
    assert smtp_adapter.send(_mail(2)).outcome == "accepted"
    assert smtp_server.connections == 1 and smtp_server.rsets == 1


def test_a_connection_lost_during_data_is_ambiguous_and_not_reused(smtp_adapter: Any, smtp_server: Any) -> None:
    assert smtp_adapter.send(_mail(1)).outcome == "accepted"
    smtp_server.drop_during_data = True
    assert smtp_adapter.send(_mail(2)).outcome == "ambiguous"
    smtp_server.drop_during_data = False
    assert smtp_adapter.send(_mail(3)).outcome == "accepted"
    assert smtp_server.connections == 2
    assert smtp_adapter.pool.stats.dropped == 0  # the lost one was discarded, not found dead later


def test_close_lets_the_message_being_handed_over_finish(smtp_adapter: Any, smtp_server: Any) -> None:
    import threading

    started, release = threading.Event(), threading.Event()
    smtp_server.hold_data = (started, release)
    with ThreadPoolExecutor(max_workers=2) as threads:
        sending = threads.submit(smtp_adapter.send, _mail(1))
        assert started.wait(10)  # the message is being handed over
        pool = smtp_adapter.pool
        closing = threads.submit(smtp_adapter.close)
        while not pool.closed:  # close() has begun and now waits for the message
            threading.Event().wait(0.001)
        release.set()
        assert sending.result().outcome == "accepted"
        closing.result()
    assert len(smtp_server.received) == 1 and smtp_server.quits == 1
    smtp_server.hold_data = None
    assert smtp_adapter.send(_mail(2)).outcome == "accepted"  # a closed adapter opens new connections


def test_idle_connections_are_closed_after_the_idle_timeout(smtp_server: Any) -> None:
    adapter = _adapter(smtp_server, idle_timeout=30)
    now = [1000.0]
    adapter.pool.clock = lambda: now[0]
    try:
        assert adapter.send(_mail(1)).outcome == "accepted"
        now[0] += 29
        assert adapter.send(_mail(2)).outcome == "accepted"
        assert smtp_server.connections == 1
        now[0] += 31
        assert adapter.send(_mail(3)).outcome == "accepted"
        assert smtp_server.connections == 2 and smtp_server.quits == 1
    finally:
        adapter.close()


def test_a_connection_is_replaced_after_messages_per_connection(smtp_server: Any) -> None:
    adapter = _adapter(smtp_server, messages_per_connection=2)
    try:
        assert {adapter.send(_mail(n)).outcome for n in range(5)} == {"accepted"}
        assert smtp_server.connections == 3 and smtp_server.quits == 2
    finally:
        adapter.close()


def test_new_settings_get_new_connections(smtp_adapter: Any, smtp_server: Any) -> None:
    from trato.delivery.channels.email import SmtpSettings

    assert smtp_adapter.send(_mail(1)).outcome == "accepted"
    smtp_adapter.settings = SmtpSettings(host="127.0.0.1", port=smtp_server.port, starttls=False, timeout=5,
                                         from_address="Otro <otro@banco.example>")
    assert smtp_adapter.send(_mail(2)).outcome == "accepted"
    assert smtp_server.connections == 2 and smtp_server.quits == 1
    assert smtp_server.received[1].sender == "otro@banco.example"


def test_check_connects_without_sending(smtp_adapter: Any, smtp_server: Any) -> None:
    from tests.delivery.smtp_peer import free_port
    from trato.delivery.channels.email import SmtpSettings

    found = smtp_adapter.check()
    assert found.ok and str(smtp_server.port) in found.detail
    assert smtp_server.received == [] and smtp_server.quits == 1
    smtp_adapter.settings = SmtpSettings(host="127.0.0.1", port=free_port(), starttls=False, timeout=2)
    broken = smtp_adapter.check()
    assert not broken.ok and "cannot reach" in broken.detail


# -- envelope and DKIM -----------------------------------------------------------------------------


def test_the_envelope_sender_names_the_message_when_a_bounce_domain_is_set(smtp_server: Any) -> None:
    adapter = _adapter(smtp_server, bounce_domain="rebotes.banco.example")
    try:
        assert adapter.send(_mail(7)).outcome == "accepted"
    finally:
        adapter.close()
    [received] = smtp_server.received
    assert received.sender == "bounces+msg_01POOL7@rebotes.banco.example"
    assert received.message["From"] == "Banco Ejemplo <avisos@banco.example>"
    assert received.message["Message-ID"] == "<msg_01POOL7@banco.example>"


def test_a_server_offering_dsn_gets_our_message_id_as_the_envelope_id(
        smtp_adapter: Any, smtp_server: Any) -> None:
    assert smtp_adapter.send(_mail(1)).outcome == "accepted"
    assert smtp_server.dsn_params == []  # not offered: not asked for
    smtp_adapter.close()
    smtp_server.offer_dsn = True
    assert smtp_adapter.send(_mail(2)).outcome == "accepted"
    # (aiosmtpd upper-cases MAIL parameters; real servers keep the envelope id as given)
    assert smtp_server.dsn_params == [{"RET": "HDRS", "ENVID": "MSG_01POOL2"}]


def test_a_bounce_that_only_carries_our_envelope_id_finds_the_message() -> None:
    from tests.delivery.test_mailin import corpus
    from trato.delivery import mailin

    raw = corpus("postfix_hard_bounce.eml", message_id="msg_01ENV").replace(b"bounces+msg_01ENV@", b"avisos@")
    raw = raw.replace(b"<msg_01ENV@banco.example>", b"<rewritten@relay.example>")
    assert mailin.read(raw).verp_ids == ()
    raw = raw.replace(b"Reporting-MTA: dns; mx.banco.example", b"Reporting-MTA: dns; mx.banco.example\r\n"
                      b"Original-Envelope-Id: msg_01ENV")
    assert mailin.read(raw).verp_ids == ("msg_01ENV",)


@pytest.fixture(scope="module")
def dkim_key() -> tuple[str, bytes]:
    """A 2048-bit RSA key: the PEM for the settings, and the public key's DER for the DNS record."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, public


def _dns(public: bytes, *, domain: str = "banco.example", selector: str = "trato2026") -> Any:
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    asked: list[bytes] = []

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        asked.append(name)
        return record if name == f"{selector}._domainkey.{domain}.".encode() else None

    lookup.asked = asked  # type: ignore[attr-defined]
    return lookup


def test_mail_is_dkim_signed_and_verifies_with_the_published_key(
        smtp_server: Any, dkim_key: tuple[str, bytes]) -> None:
    import dkim

    pem, public = dkim_key
    adapter = _adapter(smtp_server, dkim_domain="banco.example", dkim_selector="trato2026", dkim_private_key=pem)
    try:
        result = adapter.send(_mail(1, transactional=False, unsubscribe_url="https://banco.example/u/abc"))
    finally:
        adapter.close()
    assert result.outcome == "accepted"
    [received] = smtp_server.received
    raw = bytes(received.raw)
    signature = received.message["DKIM-Signature"]
    assert "d=banco.example" in signature and "s=trato2026" in signature
    signed = {h.strip().lower() for h in signature.split("h=")[1].split(";")[0].replace("\r\n", "").split(":")}
    assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"} <= signed
    dns = _dns(public)
    assert dkim.verify(raw, dnsfunc=dns)
    assert dns.asked == [b"trato2026._domainkey.banco.example."]
    # A changed body or subject on the way no longer verifies.
    assert not dkim.verify(raw.replace(b"Hola Ana", b"Hola Eva"), dnsfunc=dns)
    assert not dkim.verify(raw.replace(b"Subject:", b"Subject: RE:"), dnsfunc=dns)
    assert not dkim.verify(raw, dnsfunc=_dns(public, selector="other"))


def test_the_key_can_come_from_a_file(smtp_server: Any, dkim_key: tuple[str, bytes], tmp_path: Any) -> None:
    import dkim

    pem, public = dkim_key
    path = tmp_path / "dkim.pem"
    path.write_text(pem)
    adapter = _adapter(smtp_server, dkim_domain="banco.example", dkim_selector="trato2026", dkim_private_key_path=path)
    try:
        assert adapter.send(_mail(1)).outcome == "accepted"
    finally:
        adapter.close()
    assert dkim.verify(bytes(smtp_server.received[0].raw), dnsfunc=_dns(public))


@pytest.mark.parametrize(("settings", "named"), [
    ({"dkim_domain": "banco.example"}, "TRATO_SMTP_DKIM_SELECTOR"),
    ({"dkim_domain": "banco.example", "dkim_selector": "s"}, "TRATO_SMTP_DKIM_PRIVATE_KEY"),
    ({"dkim_selector": "s", "dkim_private_key": "x"}, "TRATO_SMTP_DKIM_DOMAIN"),
    ({"dkim_domain": "banco.example", "dkim_selector": "s", "dkim_private_key": "not a key"},
     "TRATO_SMTP_DKIM_PRIVATE_KEY"),
    ({"dkim_domain": "banco.example", "dkim_selector": "s", "dkim_private_key_path": "/nonexistent/dkim.pem"},
     "TRATO_SMTP_DKIM_PRIVATE_KEY_PATH"),
])
def test_a_wrong_dkim_setting_stops_start_up_naming_it(smtp_server: Any, settings: dict[str, Any], named: str) -> None:
    from trato.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as error:
        _adapter(smtp_server, **settings)
    assert error.value.setting == named


def test_dkim_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, dkim_key: tuple[str, bytes]) -> None:
    from trato.delivery.channels.email import SmtpEmail

    pem, _ = dkim_key
    monkeypatch.setenv("TRATO_SMTP_DKIM_DOMAIN", "banco.example")
    monkeypatch.setenv("TRATO_SMTP_DKIM_SELECTOR", "trato2026")
    monkeypatch.setenv("TRATO_SMTP_DKIM_PRIVATE_KEY", pem.replace("\n", "\\n"))
    monkeypatch.setenv("TRATO_SMTP_DKIM_HEADERS", "From, To, Subject")
    monkeypatch.setenv("TRATO_SMTP_BOUNCE_DOMAIN", "rebotes.banco.example")
    adapter = SmtpEmail()
    assert adapter.smtp.dkim_headers == ["From", "To", "Subject"]
    assert "secret" not in repr(adapter.smtp.dkim_private_key) and "PRIVATE" not in repr(adapter.smtp)
    assert adapter.envelope_sender(_mail(3)) == "bounces+msg_01POOL3@rebotes.banco.example"
