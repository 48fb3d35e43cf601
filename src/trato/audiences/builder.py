"""The console's condition builder: rows of a plain HTML form ⇄ a condition tree.

A tree the rows can show (one ``and``/``or`` group of simple conditions, each possibly negated)
is edited as rows; any other tree is edited as JSON. Values typed in a row are read as numbers or
true/false when they look like one, else as text.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from trato.core.i18n import N_

MAX_ROWS = 30
ROW_TYPES = {
    "trait": N_("Trait"), "date": N_("Date"), "event": N_("Did event"), "no_event": N_("Did not do event"),
    "sequence": N_("Event not followed by"), "identity": N_("Has identity"), "computed": N_("Computed trait"),
    "consent": N_("Consent"), "reachable": N_("Reachable on"), "segment": N_("In segment"),
}
OPS = {
    "eq": N_("is"), "ne": N_("is not"), "contains": N_("contains"), "in": N_("is one of (a, b, …)"),
    "gt": N_("greater than"), "gte": N_("at least"), "lt": N_("less than"), "lte": N_("at most"),
    "between": N_("between (low, high)"), "exists": N_("is set"), "not_exists": N_("is not set"),
    "more_than_days_ago": N_("more than N days ago"), "less_than_days_ago": N_("in the last N days"),
    "anniversary_in_next_days": N_("anniversary in the next N days"),
    "granted": N_("granted"), "denied": N_("denied"), "pending": N_("pending"),
}
FIELDS = ("type", "field", "op", "value", "number", "days", "negate")


def scalar(text: str) -> Any:
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d{1,15}", text):
        return int(text)
    if re.fullmatch(r"-?\d{1,15}\.\d{1,6}", text):
        return float(text)
    return text


def _int(text: str, default: int | None = None) -> int | None:
    text = (text or "").strip()
    return int(text) if re.fullmatch(r"\d{1,7}", text) else default


def row_node(row: dict[str, str]) -> dict[str, Any] | None:
    """A condition from one row; None for an empty row. Bad values stay in, for the tree's checks to
    name the row's node by its path."""
    kind, field, op, value = row.get("type", ""), row.get("field", "").strip(), row.get("op", ""), row.get("value", "")
    number, days = _int(row.get("number", "")), _int(row.get("days", ""))
    node: dict[str, Any]
    if not kind:
        return None
    if kind == "trait":
        node = {"type": "trait", "trait": field, "op": op or "eq"}
        if node["op"] in ("in", "between"):
            node["values"] = [scalar(v) for v in value.split(",") if v.strip()]
        elif node["op"] not in ("exists", "not_exists"):
            node["value"] = scalar(value)
    elif kind == "date":
        node = {"type": "date", "field": field, "op": op or "less_than_days_ago", "days": number if number is not None else days}
    elif kind in ("event", "no_event"):
        node = {"type": "event", "name": field, "performed": kind == "event"}
        if kind == "event":
            node["count_op"] = op if op in ("gte", "lte", "eq") else "gte"
            node["count"] = number if number is not None else 1
        if days is not None:
            node["within_days"] = days
        prop, _, wanted = value.partition("=")
        if prop.strip() and wanted.strip():
            node["where"] = [{"property": prop.strip(), "op": "eq", "value": scalar(wanted)}]
    elif kind == "sequence":
        node = {"type": "sequence", "first": field, "then_not": value.strip(), "within_hours": number or 1,
                "since_days": days or 30}
    elif kind == "identity":
        node = {"type": "identity", "kind": field, "present": op != "not_exists"}
    elif kind == "computed":
        node = {"type": "computed", "field": field, "op": op or "gte", "value": scalar(value)}
        if field == "lifetime_value_cents":
            node["currency"] = (row.get("currency") or "EUR").strip() or "EUR"
    elif kind == "consent":
        node = {"type": "consent", "channel": field, "purpose": value.strip() or "marketing",
                "state": op if op in ("granted", "denied", "pending") else "granted"}
    elif kind == "reachable":
        node = {"type": "reachable", "channel": field}
        if value.strip():
            node["purpose"] = value.strip()
    elif kind == "segment":
        node = {"type": "segment", "segment_id": field, "member": op != "ne"}
    else:
        node = {"type": kind}
    if row.get("negate"):
        node = {"type": "not", "condition": node}
    return node


def rows_from_form(form: Any) -> list[dict[str, str]]:
    rows = []
    for i in range(MAX_ROWS):
        row = {name: str(form.get(f"r{i}_{name}", ""))[:500] for name in FIELDS}
        if any(row.values()):
            rows.append(row)
    return rows


def tree_from_form(form: Any) -> dict[str, Any] | None:
    """The tree the form describes: its JSON box when filled in, else its rows."""
    raw = str(form.get("definition_json", "") or "").strip()
    if raw:
        try:
            parsed = orjson.loads(raw[:100_000])
        except orjson.JSONDecodeError:
            return {"type": "invalid JSON"}
        return parsed if isinstance(parsed, dict) else {"type": "not an object"}
    nodes = [n for n in (row_node(r) for r in rows_from_form(form)) if n is not None]
    if not nodes:
        return None
    return {"type": "or" if form.get("match") == "or" else "and", "conditions": nodes}


def _row_of(node: dict[str, Any]) -> dict[str, str] | None:
    negate = ""
    if node.get("type") == "not":
        node, negate = node["condition"], "1"
    t = node.get("type")
    row = {"type": "", "field": "", "op": "", "value": "", "number": "", "days": "", "negate": negate}

    def text(v: Any) -> str:
        return "true" if v is True else "false" if v is False else str(v)

    if t == "trait":
        row.update(type="trait", field=node["trait"], op=node["op"],
                   value=", ".join(text(v) for v in node["values"]) if node.get("values") else
                   text(node["value"]) if "value" in node else "")
    elif t == "date":
        row.update(type="date", field=node["field"], op=node["op"], number=str(node["days"]))
    elif t == "event":
        if len(node.get("where", [])) > 1 or node.get("within_hours") or any(
                w["op"] != "eq" for w in node.get("where", [])):
            return None
        row.update(type="event" if node.get("performed", True) else "no_event", field=node["name"],
                   op=node.get("count_op", "gte"), number=str(node.get("count", 1)),
                   days=str(node.get("within_days") or ""),
                   value="".join(f"{w['property']}={text(w['value'])}" for w in node.get("where", [])))
    elif t == "sequence":
        row.update(type="sequence", field=node["first"], value=node["then_not"], number=str(node["within_hours"]),
                   days=str(node.get("since_days", 30)))
    elif t == "identity":
        row.update(type="identity", field=node["kind"], op="exists" if node.get("present", True) else "not_exists")
    elif t == "computed":
        if node.get("currency") not in (None, "EUR"):
            return None
        row.update(type="computed", field=node["field"], op=node["op"], value=text(node["value"]))
    elif t == "consent":
        row.update(type="consent", field=node["channel"], op=node.get("state", "granted"), value=node["purpose"])
    elif t == "reachable":
        row.update(type="reachable", field=node["channel"], value=node.get("purpose") or "")
    elif t == "segment":
        row.update(type="segment", field=node["segment_id"], op="eq" if node.get("member", True) else "ne")
    else:
        return None
    return row


def form_of(definition: dict[str, Any] | None) -> tuple[str, list[dict[str, str]], str]:
    """(match, rows, json) to show a saved tree: rows when they can hold it, else the JSON box."""
    if not definition:
        return "and", [], ""
    group = definition if definition.get("type") in ("and", "or") else {"type": "and", "conditions": [definition]}
    rows = [_row_of(n) for n in group["conditions"]]
    if len(rows) <= MAX_ROWS and all(r is not None for r in rows):
        return group["type"], [r for r in rows if r is not None], ""
    return "and", [], orjson.dumps(definition, option=orjson.OPT_INDENT_2).decode()
