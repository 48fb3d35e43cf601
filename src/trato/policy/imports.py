"""Bulk consent import from CSV (source ``import``): ``trato consents import FILE``.

Columns (header row required): one of ``customer_id``, ``email``, ``phone`` to find the person;
``channel``, ``purpose``, ``state`` (granted / denied); optional ``topic``, ``at`` (ISO 8601, when
the consent was given), and proof columns ``wording``, ``ip``, ``user_agent``, ``form``. A row
whose consent is already in that state changes nothing, so re-running a file is harmless; bad
rows are reported with their line and a stable code, and never stop the good ones.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DataError

from trato.core.clock import parse_timestamp
from trato.core.db import unit_of_work
from trato.core.errors import TratoError
from trato.customers import service as customers
from trato.policy.consents import ConsentInput, check_consent_input, set_consents

PROOF_COLUMNS = ("wording", "ip", "user_agent", "form")
CHUNK = 500


@dataclass(frozen=True)
class RejectedRow:
    line: int
    code: str
    message: str


@dataclass
class ConsentImport:
    read: int = 0
    stored: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)


def _customer_id(session: Any, row: dict[str, str]) -> str:
    if row.get("customer_id"):
        return customers.get_customer(session, row["customer_id"].strip()).id
    for kind in ("email", "phone"):
        if row.get(kind):
            return customers.lookup(session, kind=kind, value=row[kind]).id
    raise TratoError("a row needs customer_id, email or phone", code="customer_missing")


def _change(session: Any, row: dict[str, str]) -> ConsentInput:
    """The checked change a row asks for (raises the error that rejects the row)."""
    cid = _customer_id(session, row)
    state = (row.get("state") or "").strip().lower()
    if state not in ("granted", "denied"):
        raise TratoError("state must be granted or denied", code="invalid_consent_state")
    at = None
    if row.get("at"):
        at = parse_timestamp(row["at"].strip())
        if at is None:
            raise TratoError(f"'at' is not an ISO 8601 time: {row['at']!r}", code="invalid_time")
    change = ConsentInput(customer_id=cid, channel=(row.get("channel") or "").strip(),
                          purpose=(row.get("purpose") or "").strip(), topic=(row.get("topic") or "").strip(),
                          state=state, source="import", at=at,
                          proof={k: row[k] for k in PROOF_COLUMNS if row.get(k)})
    check_consent_input(session, change)
    return change


def import_consents(path: Path, *, actor: str = "import") -> ConsentImport:
    """Import a CSV of consents: rows are checked one by one and written in bulk, 500 per commit."""
    outcome = ConsentImport()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"channel", "purpose", "state"} - set(reader.fieldnames or [])
        if missing:
            outcome.rejected.append(RejectedRow(1, "missing_columns", f"the header lacks {', '.join(sorted(missing))}"))
            return outcome
        rows = list(enumerate(reader, start=2))
    for start in range(0, len(rows), CHUNK):
        with unit_of_work() as session:
            good: list[tuple[int, ConsentInput]] = []
            for line, row in rows[start:start + CHUNK]:
                outcome.read += 1
                try:
                    good.append((line, _change(session, row)))
                except TratoError as exc:
                    outcome.rejected.append(RejectedRow(line, exc.code, exc.message))
            try:
                with session.begin_nested():
                    stored = set_consents(session, [change for _, change in good], actor=actor)
            except DataError:  # a value the database cannot hold: find its row, one at a time
                stored = 0
                for line, change in list(good):
                    try:
                        with session.begin_nested():
                            stored += set_consents(session, [change], actor=actor)
                    except DataError:
                        good.remove((line, change))
                        outcome.rejected.append(RejectedRow(line, "unstorable_value", "a value cannot be stored"))
            outcome.stored += stored
            outcome.unchanged += len(good) - stored
    return outcome
