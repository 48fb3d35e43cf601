"""Identity kinds and their normal forms: one spelling per identity, so that look-ups match.

E-mails are lower-cased and checked (no DNS); phones become E.164 (phonenumbers), with the
customer's country or the company's default region for national numbers; social handles are
``social:<network>`` with the ``@`` dropped.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from trato.customers.errors import InvalidEmail, InvalidIdentity, InvalidPhone

BUILT_IN_KINDS = ("user_id", "anonymous_id", "email", "phone", "device_token")
_KIND_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}(:[a-z0-9][a-z0-9_.-]{0,31})?$")
MAX_VALUE_LENGTH = 512


def normalize_kind(kind: str) -> str:
    kind = kind.strip().lower()
    if not _KIND_RE.match(kind):
        raise InvalidIdentity(
            f"identity kind {kind!r} is not valid: use lower-case letters, digits, '_', '.', '-', "
            "optionally 'social:<network>'",
            details={"kind": kind},
        )
    return kind


# Plain ASCII addresses (nearly all of them) are checked here; email-validator, which is
# thorough but slow, sees the rest (internationalised, quoted, unusual).
_PLAIN_EMAIL = re.compile(
    r"^(?=.{3,254}$)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


@lru_cache(maxsize=65536)
def normalize_email(value: str) -> str:
    text = value.strip()
    if _PLAIN_EMAIL.match(text) and len(text.partition("@")[0]) <= 64:
        return text.lower()
    try:
        result = validate_email(value.strip(), check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"{value!r} is not a valid e-mail address: {exc}", details={"value": value}) from None
    return result.normalized.lower()


@lru_cache(maxsize=65536)
def normalize_phone(value: str, region: str | None = None) -> str:
    text = value.strip()
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else (region or "ES"))
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidPhone(
            f"{value!r} is not a valid phone number; give it in international form, e.g. +34 612 345 678",
            details={"value": value, "region": region},
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize(kind: str, value: object, *, region: str | None = None) -> tuple[str, str]:
    """The normal (kind, value) of an identity, or InvalidIdentity saying what is wrong."""
    kind = normalize_kind(kind)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidIdentity(f"identity {kind} must be text, not {type(value).__name__}", details={"kind": kind})
    text = str(value).strip()
    if not text:
        raise InvalidIdentity(f"identity {kind} is empty", details={"kind": kind})
    if len(text) > MAX_VALUE_LENGTH:
        raise InvalidIdentity(
            f"identity {kind} is longer than {MAX_VALUE_LENGTH} characters", details={"kind": kind}
        )
    if kind == "email":
        return kind, normalize_email(text)
    if kind == "phone":
        return kind, normalize_phone(text, region)
    if kind.startswith("social:"):
        return kind, text.lstrip("@").lower()
    return kind, text
