"""Mail that comes back, read from a corpus of real-looking DSNs (Postfix, Exim, Gmail, Microsoft),
ARF reports, auto-replies and replies (tests/fixtures/mail), then applied end to end: a mail sent
over SMTP bounces → the address is suppressed → the next e-mail is refused; a complaint suppresses
and refuses the purpose; a reply lands on the timeline; a forged webhook is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
BOUNCE_DOMAIN = "rebotes.banco.example"
SECRET = "inbound-secret-" + "s" * 24


def corpus(name: str, *, message_id: str = "msg_01ABC", recipient: str = "ana@example.com") -> bytes:
    """A fixture with the placeholders of the message it is about filled in."""
    local, _, domain = recipient.partition("@")
    text = (FIXTURES / name).read_text()
    for key, value in {"VERP": f"bounces+{message_id}@{BOUNCE_DOMAIN}", "MESSAGE_ID": f"<{message_id}@banco.example>",
                       "RECIPIENT": recipient, "RECIPIENT_LOCAL": local, "RECIPIENT_DOMAIN": domain}.items():
        text = text.replace("{{" + key + "}}", value)
    return text.encode()


@pytest.mark.parametrize(("name", "kind", "action", "status"), [
    ("postfix_hard_bounce.eml", "bounce", "failed", "5.1.1"),
    ("postfix_delayed.eml", "bounce", "delayed", "4.4.1"),
    ("postfix_mailbox_full.eml", "bounce", "failed", "5.2.2"),
    ("exim_hard_bounce.eml", "bounce", "failed", "5.1.1"),  # Exim says 5.0.0; the remote server's answer tells
    ("exim_legacy_bounce.eml", "bounce", "failed", "5.1.1"),  # no delivery report at all
    ("gmail_hard_bounce.eml", "bounce", "failed", "5.1.1"),
    ("microsoft_hard_bounce.eml", "bounce", "failed", "5.1.10"),
])
def test_every_mta_s_bounce_names_the_recipient_its_status_and_our_message(
        name: str, kind: str, action: str, status: str) -> None:
    from trato.delivery import mailin

    read = mailin.read(corpus(name))
    assert read.kind == kind
    [recipient] = read.recipients
    assert (recipient.address, recipient.action, recipient.status) == ("ana@example.com", action, status)
    assert read.verp_ids[0] == "msg_01ABC"
    assert "<msg_01ABC@banco.example>" in read.message_ids


def test_only_a_bad_address_is_a_hard_bounce() -> None:
    from trato.delivery.mailin import Recipient

    hard = {s: Recipient("a@b.c", "failed", s).hard for s in
            ("5.1.1", "5.1.10", "5.2.1", "5.4.4", "5.2.2", "5.7.1", "5.3.4", "5.0.0", "4.4.1")}
    assert hard == {"5.1.1": True, "5.1.10": True, "5.2.1": True, "5.4.4": True, "5.2.2": False, "5.7.1": False,
                    "5.3.4": False, "5.0.0": False, "4.4.1": False}


@pytest.mark.parametrize(("name", "kind", "feedback_type", "verp"), [
    ("arf_yahoo_abuse.eml", "complaint", "abuse", ("msg_01ABC",)),
    ("arf_headers_only_abuse.eml", "complaint", "abuse", ()),  # found by the original's Message-ID only
    ("arf_not_spam.eml", "not_spam", "not-spam", ()),
])
def test_feedback_reports_are_read(name: str, kind: str, feedback_type: str, verp: tuple[str, ...]) -> None:
    from trato.delivery import mailin

    read = mailin.read(corpus(name))
    assert (read.kind, read.feedback_type, read.verp_ids) == (kind, feedback_type, verp)
    assert read.message_ids == ("<msg_01ABC@banco.example>",)


@pytest.mark.parametrize("name", ["auto_reply_gmail_vacation.eml", "auto_reply_exchange.eml"])
def test_auto_replies_are_recognised(name: str) -> None:
    from trato.delivery import mailin

    assert mailin.read(corpus(name)).kind == "auto_reply"


@pytest.mark.parametrize(("name", "text"), [
    ("reply_gmail.eml", "Hola, el importe de la factura no coincide con mi contrato.\n¿Pueden revisarlo?\n\n"
                        "Gracias,\nAna"),
    ("reply_outlook_html.eml", "Buenos días:\n\n¿Pueden enviarme la factura en papel & por correo?\n\nUn saludo"),
    ("reply_stop.eml", "BAJA"),
])
def test_a_reply_keeps_the_customer_s_words_without_the_quoted_history(name: str, text: str) -> None:
    from trato.delivery import mailin

    read = mailin.read(corpus(name))
    assert read.kind == "reply"
    assert read.text == text
    assert read.sender == "ana@example.com"
    assert read.message_ids == ("<msg_01ABC@banco.example>",)


def test_an_empty_mail_is_invalid() -> None:
    from trato.delivery import mailin
    from trato.delivery.errors import InvalidCallback

    with pytest.raises(InvalidCallback):
        mailin.read(b"  \n")


# -- end to end ------------------------------------------------------------------------------------


@pytest.fixture
def mail_adapter(smtp_server: Any) -> Any:
    """The SMTP adapter with a VERP bounce domain and an inbound secret, sending every e-mail."""
    from trato.delivery.channels import registry
    from trato.delivery.channels.email import SmtpEmail, SmtpSettings

    adapter = SmtpEmail(SmtpSettings(host="127.0.0.1", port=smtp_server.port, starttls=False, timeout=5,
                                     from_address="Banco Ejemplo <avisos@banco.example>",
                                     bounce_domain=BOUNCE_DOMAIN, inbound_secret=SECRET))
    previous = registry.use("email", adapter)
    yield adapter
    registry.use("email", previous)
    adapter.close()


def _sent(api: Any, send_body: Any, smtp_server: Any, **extra: Any) -> dict[str, Any]:
    response = api.post("/api/v1/messages", json=send_body(channels=["email"], **extra))
    assert response.status_code == 202, response.text
    shown = api.get(f"/api/v1/messages/{response.json()['id']}").json()
    assert shown["state"] == "accepted", shown
    assert smtp_server.received[-1].sender == f"bounces+{shown['id']}@{BOUNCE_DOMAIN}"
    return shown


def said(result: Any) -> str:
    """The command's own last line (log lines may come before it)."""
    return result.output.strip().splitlines()[-1]


def _cli(raw: bytes, *args: str) -> Any:
    from trato.cli import app

    return CliRunner().invoke(app, ["mail", "receive", *args], input=raw)


@pytest.mark.usefixtures("immediate_queue")
@pytest.mark.parametrize("name", ["postfix_hard_bounce.eml", "gmail_hard_bounce.eml", "microsoft_hard_bounce.eml",
                                  "exim_legacy_bounce.eml"])
def test_a_hard_bounce_through_the_mta_pipe_suppresses_and_the_next_email_is_refused(
        api: Any, mail_adapter: Any, smtp_server: Any, send_body: Any, name: str) -> None:
    sent = _sent(api, send_body, smtp_server)
    result = _cli(corpus(name, message_id=sent["id"]))
    assert result.exit_code == 0, result.output
    assert said(result).startswith(f"bounced {sent['id']} 5.1.1")
    shown = api.get(f"/api/v1/messages/{sent['id']}").json()
    assert shown["state"] == "bounced"
    assert shown["events"][-1]["details"]["dsn_status"].startswith("5.1.1")
    again = api.post("/api/v1/messages", json=send_body(channels=["email"])).json()
    assert again["state"] == "refused"
    assert "suppressed" in {r["code"] for r in again["decision"]["reasons"]}
    assert _cli(corpus(name, message_id=sent["id"])).exit_code == 0  # the MTA delivers it twice: no harm


@pytest.mark.usefixtures("immediate_queue")
def test_a_bounce_found_only_by_the_envelope_recipient(
        api: Any, mail_adapter: Any, smtp_server: Any, send_body: Any) -> None:
    sent = _sent(api, send_body, smtp_server)
    raw = corpus("postfix_hard_bounce.eml", message_id="msg_NOTOURS").replace(
        b"<msg_NOTOURS@banco.example>", b"<other@elsewhere.example>")
    assert said(_cli(raw)).startswith("ignored")  # on its own, the mail names no message of ours
    result = _cli(raw, "--recipient", f"bounces+{sent['id']}@{BOUNCE_DOMAIN}")
    assert said(result).startswith(f"bounced {sent['id']}"), result.output


@pytest.mark.usefixtures("immediate_queue")
def test_soft_bounces_and_delays_keep_the_address(api: Any, mail_adapter: Any, smtp_server: Any, send_body: Any) -> None:
    sent = _sent(api, send_body, smtp_server)
    delayed = _cli(corpus("postfix_delayed.eml", message_id=sent["id"]))
    assert said(delayed).startswith(f"delayed {sent['id']} 4.4.1"), delayed.output
    assert api.get(f"/api/v1/messages/{sent['id']}").json()["state"] == "accepted"
    full = _cli(corpus("postfix_mailbox_full.eml", message_id=sent["id"]))
    assert said(full).startswith(f"soft_bounce {sent['id']} 5.2.2"), full.output
    assert api.get(f"/api/v1/messages/{sent['id']}").json()["state"] == "bounced"
    assert api.post("/api/v1/messages", json=send_body(channels=["email"])).json()["state"] != "refused"


@pytest.mark.usefixtures("immediate_queue")
def test_a_bounce_for_another_address_or_an_unknown_message_changes_nothing(
        api: Any, mail_adapter: Any, smtp_server: Any, send_body: Any) -> None:
    sent = _sent(api, send_body, smtp_server)
    forged = _cli(corpus("gmail_hard_bounce.eml", message_id=sent["id"], recipient="eva@example.com"))
    assert forged.exit_code == 0 and said(forged).startswith("ignored"), forged.output
    unknown = _cli(corpus("gmail_hard_bounce.eml", message_id="msg_UNKNOWN"))
    assert unknown.exit_code == 0 and said(unknown).startswith("ignored")
    assert api.get(f"/api/v1/messages/{sent['id']}").json()["state"] == "accepted"


@pytest.mark.usefixtures("immediate_queue")
@pytest.mark.parametrize("name", ["arf_yahoo_abuse.eml", "arf_headers_only_abuse.eml"])
def test_a_complaint_suppresses_and_refuses_the_purpose(
        api: Any, mail_adapter: Any, smtp_server: Any, send_body: Any, world: dict[str, str], name: str) -> None:
    from trato.core.db import unit_of_work
    from trato.policy import service as policy

    sent = _sent(api, send_body, smtp_server, purpose="service")
    result = _cli(corpus(name, message_id=sent["id"]))
    assert said(result).startswith(f"complained {sent['id']}"), result.output
    with unit_of_work() as s:
        consents = {(c.channel, c.purpose): (c.state, c.source)
                    for c in policy.consents_of(s, customer_id=world["customer_id"])}
    assert consents[("email", "service")] == ("denied", "complaint")
    again = api.post("/api/v1/messages", json=send_body(channels=["email"], purpose="service")).json()
    assert again["state"] == "refused"


@pytest.mark.usefixtures("immediate_queue")
def test_a_reply_lands_on_the_customer_s_timeline_once_and_auto_replies_do_not(
        api: Any, mail_adapter: Any, smtp_server: Any, send_body: Any, world: dict[str, str]) -> None:
    from trato.core.db import unit_of_work
    from trato.customers import service as customers

    sent = _sent(api, send_body, smtp_server)
    for name in ("auto_reply_gmail_vacation.eml", "auto_reply_exchange.eml"):
        ignored = _cli(corpus(name, message_id=sent["id"]))
        assert said(ignored).startswith("ignored"), ignored.output
    for _ in range(2):
        result = _cli(corpus("reply_gmail.eml", message_id=sent["id"]))
        assert result.exit_code == 0 and said(result).startswith(f"reply {sent['id']}"), result.output
    assert said(result).endswith("already stored")
    with unit_of_work() as s:
        received = customers.timeline(s, customer_id=world["customer_id"], kinds=["message_received"])
        [event] = received
        assert event.properties["text"].startswith("Hola, el importe de la factura no coincide")
        assert "Importe: 12,50" not in event.properties["text"]
        assert event.properties["in_reply_to"] == sent["id"]
        assert event.properties["subject"] == "Re: Tu factura F-1"
        assert event.channel == "email"


@pytest.mark.usefixtures("immediate_queue")
def test_a_reply_saying_baja_stops_email(api: Any, mail_adapter: Any, smtp_server: Any, send_body: Any) -> None:
    sent = _sent(api, send_body, smtp_server)
    result = _cli(corpus("reply_stop.eml", message_id=sent["id"]))
    assert result.exit_code == 0, result.output
    assert api.post("/api/v1/messages", json=send_body(channels=["email"])).json()["state"] == "refused"


def test_the_pipe_answers_in_sysexits(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from contextlib import contextmanager

    from sqlalchemy.exc import OperationalError

    from trato.core import db

    assert _cli(b"").exit_code == 65  # EX_DATAERR: not a mail
    assert _cli(corpus("auto_reply_exchange.eml")).exit_code == 0  # nothing to do is done

    @contextmanager
    def database_down() -> Any:
        raise OperationalError("connect", {}, ConnectionRefusedError("connection refused"))
        yield

    monkeypatch.setattr(db, "unit_of_work", database_down)
    result = _cli(corpus("reply_stop.eml"))
    assert result.exit_code == 75, result.output  # EX_TEMPFAIL: the MTA keeps the mail and tries again


# -- the webhook -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("immediate_queue")
def test_the_signed_webhook_applies_a_bounce_and_refuses_forgeries(
        api: Any, mail_adapter: Any, smtp_server: Any, send_body: Any) -> None:
    from trato.delivery.callbacks.email import sign

    sent = _sent(api, send_body, smtp_server)
    raw = corpus("exim_hard_bounce.eml", message_id=sent["id"])
    url = "/hooks/smtp/email/inbound"
    headers = {"Content-Type": "message/rfc822"}
    unsigned = api.post(url, content=raw, headers=headers)
    assert (unsigned.status_code, unsigned.json()["error"]["code"]) == (401, "bad_signature")
    forged = api.post(url, content=raw, headers={**headers, "X-Trato-Signature": sign("not-the-secret", raw)})
    assert forged.status_code == 401
    tampered = api.post(url, content=raw.replace(b"5.1.1", b"5.2.2"),
                        headers={**headers, "X-Trato-Signature": sign(SECRET, raw)})
    assert tampered.status_code == 401
    assert api.get(f"/api/v1/messages/{sent['id']}").json()["state"] == "accepted"
    accepted = api.post(url, content=raw, headers={**headers, "X-Trato-Signature": sign(SECRET, raw)})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() | {"detail": None} == {"action": "bounced", "kind": "bounce", "message_id": sent["id"],
                                                  "suppressed": True, "detail": None}
    assert api.get(f"/api/v1/messages/{sent['id']}").json()["state"] == "bounced"
    assert api.post("/hooks/nobody/email/inbound", content=raw, headers=headers).status_code == 404


def test_the_webhook_refuses_everything_without_a_secret_and_large_mail(api: Any, smtp_adapter: Any) -> None:
    from trato.delivery.callbacks.email import sign
    from trato.delivery.channels import registry

    previous = registry.use("email", smtp_adapter)  # no inbound secret configured
    try:
        raw = corpus("reply_stop.eml")
        refused = api.post("/hooks/smtp/email/inbound", content=raw, headers={"X-Trato-Signature": sign("", raw)})
        assert refused.status_code == 401 and "no inbound mail secret" in refused.json()["error"]["message"]
        big = b"x" * (smtp_adapter.limits.max_body_bytes + 1)
        assert api.post("/hooks/smtp/email/inbound", content=big).status_code == 413
    finally:
        registry.use("email", previous)


# -- whatever arrives --------------------------------------------------------------------------------

_HEADER_NAMES = st.sampled_from(["From", "To", "Subject", "Content-Type", "Auto-Submitted", "X-Failed-Recipients",
                                 "Message-ID", "In-Reply-To", "Content-Transfer-Encoding", "Precedence", "Date"])
_CONTENT_TYPES = st.sampled_from([
    "multipart/report; report-type=delivery-status; boundary=b", "multipart/report; report-type=feedback-report",
    "multipart/report; boundary=b", "message/delivery-status", "text/html; charset=x-unknown", "multipart/mixed",
    "text/plain; charset=utf-8", "message/rfc822"])


@st.composite
def _mails(draw: Any) -> bytes:
    headers = draw(st.lists(st.tuples(_HEADER_NAMES, st.text(max_size=60)), max_size=8))
    lines = [f"{name}: {value}".replace("\n", " ").replace("\r", " ") for name, value in headers]
    if draw(st.booleans()):
        lines.append(f"Content-Type: {draw(_CONTENT_TYPES)}")
    body_parts = draw(st.lists(st.sampled_from([
        "--b", "--b--", "Content-Type: message/delivery-status", "Content-Type: text/rfc822-headers",
        "Content-Type: message/feedback-report", "Action: failed", "Status: 5.1.1", "Final-Recipient: rfc822; a@b.c",
        "Feedback-Type: abuse", "", "> quoted", "On Mon wrote:", "Message-ID: <x@y>", ".", "=?utf-8?q?=FF?=",
    ]) | st.text(max_size=40), max_size=30))
    return ("\r\n".join(lines) + "\r\n\r\n" + "\r\n".join(body_parts)).encode("utf-8", "surrogatepass")


@settings(max_examples=300, deadline=None)
@given(raw=_mails() | st.binary(max_size=400))
def test_any_mail_is_read_or_refused_as_invalid_never_crashes(raw: bytes) -> None:
    from trato.delivery import mailin
    from trato.delivery.errors import InvalidCallback

    try:
        read = mailin.read(raw)
    except InvalidCallback:
        assert not raw.strip()
        return
    assert read.kind in ("bounce", "complaint", "not_spam", "auto_reply", "reply", "unknown")
    assert all(r.status[0] in "245" for r in read.recipients)
    for text in (read.subject, read.sender, read.text, *(r.address for r in read.recipients)):
        text.encode("utf-8")  # storable: no lone surrogates from undecodable bytes
