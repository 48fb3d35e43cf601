"""Traits: free JSON about a person, of which some are well known and kept typed.

Segment's reserved traits (firstName, lastName, email, phone, birthday, createdAt, ...) and
their snake_case spellings map onto typed columns; a wrong value of a well-known trait is
refused with a message that names it, rather than stored where a later send would trip on it.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date
from typing import Any

from trato.core.clock import parse_timestamp
from trato.core.settings import get_settings
from trato.customers.errors import InvalidIdentity, InvalidTrait
from trato.customers.identities import normalize_email, normalize_phone

MAX_TRAITS_BYTES = 16 * 1024
_LOCALE_RE = re.compile(r"^[a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,8})*$")

# column -> trait spellings accepted, first found wins
ALIASES: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name", "firstName"),
    "last_name": ("last_name", "lastName"),
    "email": ("email",),
    "phone": ("phone",),
    "locale": ("locale", "language"),
    "timezone": ("timezone", "time_zone", "timeZone"),
    "country": ("country",),
    "birthday": ("birthday",),
    "customer_since": ("customer_since", "createdAt", "created_at"),
}
TYPED_COLUMNS = tuple(ALIASES)


def _first(traits: dict[str, Any], names: tuple[str, ...]) -> tuple[str | None, Any]:
    for name in names:
        if name in traits and traits[name] not in (None, ""):
            return name, traits[name]
    return None, None


def _as_date(name: str, value: Any) -> date:
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    parsed = parse_timestamp(value)
    if parsed is None:
        raise InvalidTrait(
            f"trait {name!r} must be a date such as 1985-04-12, not {value!r}", details={"trait": name}
        )
    return parsed.date()


def typed_columns(traits: dict[str, Any], *, region: str | None = None) -> dict[str, Any]:
    """The typed column values found in ``traits``; raises InvalidTrait naming a bad one."""
    columns: dict[str, Any] = {}
    for column, names in ALIASES.items():
        name, value = _first(traits, names)
        if name is None:
            continue
        if column in ("first_name", "last_name"):
            columns[column] = str(value)[:120]
        elif column == "email":
            try:
                columns[column] = normalize_email(str(value))
            except InvalidIdentity as exc:
                raise InvalidTrait(exc.message, code=exc.code, details={"trait": name}) from None
        elif column == "phone":
            country = traits.get("country") if isinstance(traits.get("country"), str) else None
            try:
                columns[column] = normalize_phone(str(value), (country or region or default_region()).upper())
            except InvalidIdentity as exc:
                raise InvalidTrait(exc.message, code=exc.code, details={"trait": name}) from None
        elif column == "locale":
            if not isinstance(value, str) or len(value) > 16 or not _LOCALE_RE.match(value):
                raise InvalidTrait(
                    f"trait {name!r} must be a language tag such as es-ES or en, not {value!r}",
                    details={"trait": name},
                )
            columns[column] = value.replace("_", "-")
        elif column == "timezone":
            try:
                zoneinfo.ZoneInfo(str(value))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise InvalidTrait(
                    f"trait {name!r} must be an IANA time zone such as Europe/Madrid, not {value!r}",
                    details={"trait": name},
                ) from None
            columns[column] = str(value)
        elif column == "country":
            if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{2}", value):
                raise InvalidTrait(
                    f"trait {name!r} must be a two-letter ISO country code such as ES, not {value!r}",
                    details={"trait": name},
                )
            columns[column] = value.upper()
        else:
            columns[column] = _as_date(name, value)
    if "first_name" not in columns and isinstance(traits.get("name"), str):
        first, _, last = traits["name"].strip().partition(" ")
        columns["first_name"] = first[:120]
        if last:
            columns.setdefault("last_name", last[:120])
    return columns


def default_region() -> str:
    return get_settings().default_region


def search_name(first: str | None, last: str | None) -> str | None:
    name = " ".join(part for part in (first, last) if part).strip().lower()
    return name or None
