"""Mail that comes back: bounces (DSN, RFC 3464), complaints (ARF, RFC 5965), auto-replies and
customers' own replies, from a raw RFC 822 message.

:func:`read` only reads (no database): what kind of mail it is, for which recipients, and every
reference to the message it is about — the VERP return path ``bounces+<message id>@…`` (the
envelope recipient of a bounce, an ARF report's ``Original-Mail-From``), ``X-Original-Message-ID``
and the headers of the original message that reports embed. :func:`receive` acts on it:

- a DSN recipient with ``Action: failed`` → ``bounced``; it is a *hard* bounce (the address is
  suppressed) only when the status says the address itself is bad (5.1.x, 5.2.1, 5.4.4); a full
  mailbox (5.2.2), a spam or policy rejection (5.7.x) or a message too large fails the message but
  keeps the address. ``delayed`` changes nothing (the MTA is still trying), ``delivered`` moves
  the message to delivered. The failed address must be the message's recipient;
- an ARF report of ``abuse`` or ``fraud`` → ``complained`` (suppression and the purpose refused);
- auto-replies (RFC 3834 ``Auto-Submitted``, vacation and out-of-office answers) are ignored;
- anything else from a person is a reply: its text without the quoted history goes to the
  customer's timeline (``receive_inbound``; a STOP word acts through the policy).
"""

from __future__ import annotations

import hashlib
import html as html_lib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, message_from_string
from email import policy as email_policy
from email.message import EmailMessage, Message as MimeMessage
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any, Literal

import nh3
import structlog
from sqlalchemy.orm import Session

from trato.core.clock import utcnow
from trato.delivery import feedback
from trato.delivery.channels.email import VERP_PREFIX
from trato.delivery.errors import InvalidCallback
from trato.delivery.models import Message

log = structlog.get_logger("trato.delivery.mailin")

Kind = Literal["bounce", "complaint", "not_spam", "auto_reply", "reply", "unknown"]
VERP = re.compile(re.escape(VERP_PREFIX) + r"([A-Za-z0-9_]{1,40})@", re.IGNORECASE)
ENHANCED_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")
OUR_ID = re.compile(r"msg_[A-Za-z0-9]{1,36}")
COMPLAINT_TYPES = frozenset({"abuse", "fraud"})
# Statuses that say the address itself cannot receive mail: suppressing it is right.
HARD_STATUSES = ("5.1.", "5.2.1", "5.4.4")
AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?reply|autoreply|out of (the )?office|respuesta autom[aá]tica|fuera de la oficina"
    r"|ausencia|vacation|abwesenheitsnotiz|r[ée]ponse automatique)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Recipient:
    """One per-recipient block of a delivery status notification."""

    address: str
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # x.y.z
    diagnostic: str | None = None
    remote_mta: str | None = None

    @property
    def hard(self) -> bool:
        return self.status.startswith(HARD_STATUSES)


@dataclass(frozen=True)
class ReadMail:
    """What a raw message is (see :func:`read`)."""

    kind: Kind
    subject: str = ""
    sender: str = ""
    message_id: str | None = None
    recipients: tuple[Recipient, ...] = ()
    feedback_type: str | None = None
    reporting_mta: str | None = None
    verp_ids: tuple[str, ...] = ()  # our message ids: from a VERP address or the DSN envelope id
    message_ids: tuple[str, ...] = ()  # Message-IDs of the original (ours if it is about our mail)
    text: str = ""  # a reply's own words, without the quoted history
    date: datetime | None = None


@dataclass(frozen=True)
class MailOutcome:
    """What :func:`receive` did: ``action`` is bounced | soft_bounce | delayed | delivered | complained |
    reply | ignored."""

    action: str
    kind: Kind
    message_id: str | None = None
    suppressed: bool = False
    customer_id: str | None = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# -- reading -----------------------------------------------------------------------------------


def read(raw: bytes, *, envelope_recipient: str | None = None) -> ReadMail:
    """Classify a raw RFC 822 message and gather its references (no database)."""
    if not raw.strip():
        raise InvalidCallback("the mail is empty")
    mail = message_from_bytes(raw, policy=email_policy.default)
    assert isinstance(mail, EmailMessage)
    subject = _header(mail, "Subject")
    sender = parseaddr(_header(mail, "From"))[1]
    common = {"subject": subject, "sender": sender, "message_id": _message_id(_header(mail, "Message-ID")),
              "date": _date(_header(mail, "Date"))}
    verp = _verp_ids([envelope_recipient or "", *_headers(mail, "Delivered-To", "X-Original-To", "Envelope-To",
                                                             "To")])
    report = _report_type(mail)
    if report == "delivery-status":
        return _read_dsn(mail, verp, common)
    if report == "feedback-report":
        return _read_arf(mail, verp, common)
    if _is_plain_bounce(mail, sender):
        return _read_plain_bounce(mail, verp, common)
    if _is_auto_reply(mail, subject):
        return ReadMail("auto_reply", **common)
    if not sender or sender.lower().split("@")[0] in ("mailer-daemon", "postmaster"):
        return ReadMail("unknown", **common)
    references = _ids(" ".join(_headers(mail, "In-Reply-To", "References")))
    return ReadMail("reply", verp_ids=verp, message_ids=references, text=reply_text(mail), **common)


def _read_dsn(mail: EmailMessage, verp: tuple[str, ...], common: dict[str, Any]) -> ReadMail:
    status_part = _part(mail, "message/delivery-status")
    blocks = _field_blocks(status_part) if status_part is not None else []
    per_message = blocks[0] if blocks else MimeMessage()
    recipients = tuple(r for r in (_recipient(b) for b in blocks[1:]) if r is not None)
    original = _original(mail)
    ids = _ids(" ".join([*_headers(per_message, "X-Original-Message-ID", "Original-Message-ID"),
                         *_headers(original, "Message-ID"), *_headers(mail, "In-Reply-To", "References")]))
    verp = verp + _verp_ids(_headers(original, "Return-Path") + _headers(per_message, "X-Postfix-Sender"))
    # The ENVID we gave at MAIL FROM (servers offering DSN): our message id itself.
    verp = verp + tuple(v.strip() for v in _headers(per_message, "Original-Envelope-Id") if OUR_ID.fullmatch(v.strip()))
    return ReadMail("bounce", recipients=recipients, reporting_mta=_value(_header(per_message, "Reporting-MTA")),
                    verp_ids=_unique(verp), message_ids=ids, **common)


def _read_arf(mail: EmailMessage, verp: tuple[str, ...], common: dict[str, Any]) -> ReadMail:
    part = _part(mail, "message/feedback-report")
    blocks = _field_blocks(part) if part is not None else []
    report = blocks[0] if blocks else MimeMessage()
    feedback_type = _header(report, "Feedback-Type").strip().lower() or None
    original = _original(mail)
    ids = _ids(" ".join(_headers(report, "Original-Message-ID") + _headers(original, "Message-ID")))
    verp = verp + _verp_ids(_headers(report, "Original-Mail-From") + _headers(original, "Return-Path"))
    kind: Kind = "complaint" if feedback_type in COMPLAINT_TYPES else "not_spam" if feedback_type == "not-spam" \
        else "unknown"
    return ReadMail(kind, feedback_type=feedback_type, verp_ids=_unique(verp), message_ids=ids, **common)


def _read_plain_bounce(mail: EmailMessage, verp: tuple[str, ...], common: dict[str, Any]) -> ReadMail:
    """An old-style bounce without a delivery report (e.g. Exim before 4.90): X-Failed-Recipients and
    the status code found in its text."""
    text = _body_text(mail)
    found = ENHANCED_STATUS.search(text)
    status = ".".join(found.groups()) if found else "5.0.0"
    addresses = [a for _, a in getaddresses(_headers(mail, "X-Failed-Recipients")) if a]
    recipients = tuple(Recipient(a, "failed", status, _first_line_with(text, status)) for a in addresses)
    ids = _ids(" ".join(re.findall(r"(?im)^message-id:\s*(<[^>]+>)", text)))
    return ReadMail("bounce", recipients=recipients, verp_ids=_unique(verp + _verp_ids(
        re.findall(r"(?im)^return-path:\s*(<[^>]*>)", text))), message_ids=ids, **common)


def _report_type(mail: EmailMessage) -> str | None:
    if mail.get_content_type() != "multipart/report":
        return None
    declared = str(mail.get_param("report-type", "") or "").lower()
    if declared in ("delivery-status", "feedback-report"):
        return declared
    if _part(mail, "message/delivery-status") is not None:
        return "delivery-status"
    return "feedback-report" if _part(mail, "message/feedback-report") is not None else None


def _is_plain_bounce(mail: EmailMessage, sender: str) -> bool:
    local = sender.lower().split("@")[0]
    return bool(_header(mail, "X-Failed-Recipients")) and (local in ("mailer-daemon", "postmaster") or not sender)


def _is_auto_reply(mail: EmailMessage, subject: str) -> bool:
    auto = (_header(mail, "Auto-Submitted") or "no").strip().lower()
    precedence = _header(mail, "Precedence").strip().lower()
    return (not auto.startswith("no") or bool(_header(mail, "X-Autoreply")) or bool(_header(mail, "X-Autorespond"))
            or precedence in ("bulk", "junk", "list", "auto_reply") or bool(AUTO_SUBJECT.match(subject)))


def _recipient(block: MimeMessage) -> Recipient | None:
    address = _value(_header(block, "Final-Recipient")) or _value(_header(block, "Original-Recipient"))
    action = _header(block, "Action").strip().lower()
    if not address or not action:
        return None
    diagnostic = " ".join(_header(block, "Diagnostic-Code").split()) or None
    status = _header(block, "Status").strip()
    found = ENHANCED_STATUS.search(status)
    detailed = ENHANCED_STATUS.search(diagnostic or "")
    # Exim writes 5.0.0 and leaves the real status to the remote server's answer.
    if detailed and (not found or found.group(0).endswith(".0.0")) and detailed.group(1) == (found or detailed).group(1):
        found = detailed
    code = found.group(0) if found else ("5.0.0" if action == "failed" else "4.0.0" if action == "delayed" else "2.0.0")
    return Recipient(address.strip("<>"), action, code, diagnostic, _value(_header(block, "Remote-MTA")))


def _field_blocks(part: MimeMessage) -> list[MimeMessage]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, MimeMessage)]
    text = payload if isinstance(payload, str) else ""
    if _header(part, "Content-Transfer-Encoding").lower() in ("base64", "quoted-printable"):
        text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    return [message_from_string(block.strip() + "\n") for block in re.split(r"\r?\n\s*\r?\n", text) if block.strip()]


def _original(mail: EmailMessage) -> MimeMessage:
    """The headers of the message a report is about (message/rfc822 or text/rfc822-headers)."""
    part = _part(mail, "message/rfc822")
    if part is not None:
        payload = part.get_payload()
        if isinstance(payload, list) and payload:
            return payload[0]
    part = _part(mail, "text/rfc822-headers")
    if part is not None:
        text = part.get_payload(decode=True) or b""
        headers = text.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n", 1)[0]
        return message_from_string(headers + "\n")
    return MimeMessage()


def _part(mail: EmailMessage, content_type: str) -> MimeMessage | None:
    for part in mail.walk():
        if part.get_content_type() == content_type:
            return part
    return None


# -- a reply's own words -----------------------------------------------------------------------

_ATTRIBUTION = re.compile(r"^\s*(on|el|le|am)\b.{0,300}\b(wrote|escribi[oó]|a écrit|schrieb)\s*:\s*$", re.IGNORECASE)
_SEPARATOR = re.compile(r"^\s*(-{2,}\s*(original message|mensaje original|forwarded message|mensaje reenviado)"
                        r"\s*-{2,}|_{8,})\s*$", re.IGNORECASE)
_HEADER_BLOCK = re.compile(r"^\s*\*?(from|de)\s*:\*?\s", re.IGNORECASE)
_HEADER_NEXT = re.compile(r"^\s*\*?(sent|enviado|date|fecha|to|para)\s*:", re.IGNORECASE)
# Where mail programs start the quoted message in HTML-only replies.
_HTML_QUOTE = re.compile(r'<div[^>]+(class="gmail_quote|id="(divRplyFwdMsg|appendonsend)")|<blockquote|<hr\b',
                         re.IGNORECASE)


def reply_text(mail: EmailMessage) -> str:
    """What the customer wrote, without the quoted history below (or interleaved ``>`` lines)."""
    body = mail.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    try:
        content = body.get_content()
    except (LookupError, ValueError):  # an unknown charset: keep what can be read
        content = (body.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if body.get_content_subtype() == "html":
        content = _html_to_text(content)
    lines = content.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        joined = line + " " + (lines[i + 1] if i + 1 < len(lines) else "")
        if line.rstrip() in ("--", "-- ") or _SEPARATOR.match(line) or _ATTRIBUTION.match(line) \
                or _ATTRIBUTION.match(joined):
            break
        if _HEADER_BLOCK.match(line) and any(_HEADER_NEXT.match(n) for n in lines[i + 1:i + 4]):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line.rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def _html_to_text(html: str) -> str:
    cut = _HTML_QUOTE.search(html)
    html = html[:cut.start()] if cut else html
    html = re.sub(r"(?i)<br\s*/?>|</(p|div|li|tr|h[1-6])>", "\n", html)
    return html_lib.unescape(nh3.clean(html, tags=set(), clean_content_tags={"style", "script", "head", "title"}))


# -- acting ------------------------------------------------------------------------------------


def receive(session: Session, raw: bytes, *, provider: str, envelope_recipient: str | None = None) -> MailOutcome:
    """Read ``raw`` and apply it (see the module's docstring) in the caller's unit of work."""
    mail = read(raw, envelope_recipient=envelope_recipient)
    if mail.kind == "reply":
        return _reply(session, mail, provider=provider, raw=raw)
    if mail.kind in ("auto_reply", "not_spam", "unknown"):
        log.info("mail ignored", kind=mail.kind, provider=provider)
        return MailOutcome("ignored", mail.kind, detail=f"{mail.kind.replace('_', ' ')}: nothing to do")
    message = _find(session, mail)
    if message is None:
        log.info("report about a message trato does not know", kind=mail.kind, provider=provider)
        return MailOutcome("ignored", mail.kind, detail="no message of ours matches this report")
    if mail.kind == "complaint":
        outcome = _apply(session, message, "complained", details={"feedback_type": mail.feedback_type})
        return MailOutcome("complained", mail.kind, message.id, outcome.suppressed, message.customer_id,
                           f"{mail.feedback_type} report")
    return _bounce(session, mail, message)


def _bounce(session: Session, mail: ReadMail, message: Message) -> MailOutcome:
    ours = [r for r in mail.recipients if (message.recipient or "").lower() == r.address.lower()]
    if not ours:
        log.warning("bounce for another address than the message's recipient", message_id=message.id)
        return MailOutcome("ignored", mail.kind, message.id, detail="the report names another recipient")
    recipient = ours[0]
    details = {"dsn_status": recipient.status, "dsn_action": recipient.action, "reporting_mta": mail.reporting_mta,
               "remote_mta": recipient.remote_mta}
    if recipient.action == "delayed":
        return MailOutcome("delayed", mail.kind, message.id, detail=f"{recipient.status}: the MTA is still trying")
    if recipient.action in ("delivered", "relayed", "expanded"):
        _apply(session, message, "delivered", details=details)
        return MailOutcome("delivered", mail.kind, message.id, detail=recipient.status)
    error = f"{recipient.status} {recipient.diagnostic or ''}".strip()[:500]
    hard = recipient.status.startswith("5") and recipient.hard
    outcome = _apply(session, message, "bounced", error=error, permanent=hard, details=details)
    return MailOutcome("bounced" if hard else "soft_bounce", mail.kind, message.id, outcome.suppressed,
                       message.customer_id, error)


def _apply(session: Session, message: Message, status: str, *, error: str | None = None, permanent: bool = False,
           details: dict[str, Any] | None = None) -> feedback.StatusOutcome:
    if message.provider is None or message.provider_message_id is None:
        return feedback.StatusOutcome(message.id, message.state, False)
    return feedback.apply_status(session, provider=message.provider, provider_message_id=message.provider_message_id,
                                 status=status, error=error, permanent=permanent, details=details)


def _find(session: Session, mail: ReadMail) -> Message | None:
    for message_id in mail.verp_ids:
        message = session.get(Message, message_id)
        if message is not None and message.channel == "email":
            return message
    for reference in mail.message_ids:
        message = feedback.find_by_provider_id(session, reference)
        if message is not None and message.channel == "email":
            return message
    return None


def _reply(session: Session, mail: ReadMail, *, provider: str, raw: bytes) -> MailOutcome:
    if not mail.sender or "@" not in mail.sender:
        return MailOutcome("ignored", mail.kind, detail="no sender address")
    answered = next((m for m in (feedback.find_by_provider_id(session, r) for r in mail.message_ids[:10]) if m), None)
    provider_id = mail.message_id or "sha256:" + hashlib.sha256(raw).hexdigest()
    at = mail.date if mail.date is not None and mail.date <= utcnow() else None
    outcome = feedback.receive_inbound(
        session, channel="email", provider=provider, sender=mail.sender.lower(), text=mail.text,
        provider_message_id=provider_id, at=at,
        details={"subject": mail.subject[:300], "in_reply_to": answered.id if answered else None})
    return MailOutcome("reply", mail.kind, answered.id if answered else None, customer_id=outcome.customer_id,
                       detail="stored" if outcome.event_id is not None else "already stored",
                       extra={"keyword": outcome.keyword, "created_customer": outcome.created_customer})


# -- small readers -----------------------------------------------------------------------------


def _headers(mail: MimeMessage, *names: str) -> list[str]:
    """The values of these headers as written (encoded words decoded), never raising: the email
    package's structured headers fail on some malformed addresses, and bounces quote anything."""
    wanted = {n.lower() for n in names}
    return [_decoded(value) for key, value in mail.raw_items() if key.lower() in wanted]


def _header(mail: MimeMessage, name: str) -> str:
    found = _headers(mail, name)
    return found[0] if found else ""


def _decoded(value: Any) -> str:
    text = " ".join(str(value).split())  # unfolded
    # Raw 8-bit headers (UTF-8 written as is, as many mailers do) arrive surrogate-escaped.
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    try:
        decoded = str(make_header(decode_header(text)))
    except (HeaderParseError, LookupError, ValueError, UnicodeError):
        return text
    return decoded.encode("utf-8", "replace").decode("utf-8")


def _value(field_value: Any) -> str | None:
    """``rfc822; ana@example.com`` → ``ana@example.com`` (the type before the semicolon dropped)."""
    if field_value is None:
        return None
    text = " ".join(str(field_value).split())
    return (text.split(";", 1)[1] if ";" in text else text).strip() or None


def _verp_ids(values: list[str]) -> tuple[str, ...]:
    return _unique(tuple(m.group(1) for v in values for m in VERP.finditer(v)))


def _ids(text: str) -> tuple[str, ...]:
    return _unique(tuple(MESSAGE_ID.findall(text)))


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _message_id(value: Any) -> str | None:
    found = MESSAGE_ID.search(str(value or ""))
    return found.group(0) if found else None


def _date(value: Any) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError):
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


def _body_text(mail: EmailMessage) -> str:
    body = mail.get_body(preferencelist=("plain",))
    try:
        return body.get_content() if body is not None else ""
    except (LookupError, ValueError):
        return ""


def _first_line_with(text: str, needle: str) -> str | None:
    return next((" ".join(line.split()) for line in text.splitlines() if needle in line), None)
