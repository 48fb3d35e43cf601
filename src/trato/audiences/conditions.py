"""The condition tree of a segment: typed JSON (pydantic discriminated unions), never code.

A tree is groups (``and``, ``or``, ``not``) of conditions on traits, dates, identities, computed
traits, events, event sequences, consent, reachability and other segments. :func:`parse` checks
one against the bounds below and reports a bad node by its path, e.g. ``conditions[2].within_days``.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from trato.audiences.errors import InvalidSegment

MAX_DEPTH = 8
MAX_NODES = 100
MAX_VALUES = 1000
MAX_FILTERS = 10
MAX_DAYS = 3650
MAX_HOURS = 24 * 90
MAX_NUMBER = 10**15

NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .:\-/]{0,119}$")
# A trait or property key: one level, no quotes or JSON path syntax.
KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]{0,63}$")

Scalar = Annotated[str, Field(max_length=500)] | bool | int | float
ValueOp = Literal["eq", "ne", "contains", "in", "gt", "gte", "lt", "lte", "between", "exists", "not_exists"]
COMPARISONS = ("gt", "gte", "lt", "lte")

# Profile fields kept in typed columns (text) and the dates among them.
TEXT_COLUMNS = ("first_name", "last_name", "email", "phone", "locale", "timezone", "country")
DATE_COLUMNS = ("birthday", "customer_since")
DATETIME_COLUMNS = ("first_seen_at", "last_seen_at", "last_purchase_at", "created_at")
COMPUTED_FIELDS = ("event_count", "purchase_count", "last_channel", "lifetime_value_cents")


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_key(value: str) -> str:
    if not KEY_RE.match(value):
        raise ValueError("must be 1-64 letters, digits, '_' or '-'")
    return value


Key = Annotated[str, AfterValidator(_check_key)]


class ValueTest(Node):
    """How a value is compared; shared by traits and event properties."""

    op: ValueOp
    value: Scalar | None = None
    values: list[Scalar] | None = Field(None, max_length=MAX_VALUES)

    @model_validator(mode="after")
    def _operands(self) -> ValueTest:
        for v in [self.value, *(self.values or [])]:
            if _is_number(v) and not (math.isfinite(v) and abs(v) <= MAX_NUMBER):
                raise ValueError(f"numbers must be finite and at most {MAX_NUMBER:.0e} in size")
        if self.op in ("exists", "not_exists"):
            if self.value is not None or self.values is not None:
                raise ValueError(f"{self.op} takes no value")
        elif self.op == "in":
            if not self.values:
                raise ValueError("in needs a non-empty 'values' list")
        elif self.op == "between":
            if not self.values or len(self.values) != 2 or not all(_is_number(v) for v in self.values):
                raise ValueError("between needs 'values': [low, high], two numbers")
        elif self.value is None:
            raise ValueError(f"{self.op} needs a 'value'")
        elif self.op == "contains" and not (isinstance(self.value, str) and self.value):
            raise ValueError("contains needs a non-empty text 'value'")
        elif self.op in COMPARISONS and not (_is_number(self.value) or isinstance(self.value, str)):
            raise ValueError(f"{self.op} compares numbers or text")
        return self


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Trait(ValueTest):
    """A trait of the profile: ``city`` eq ``Madrid``, ``age`` between [18, 30], ``vip`` exists."""

    type: Literal["trait"]
    trait: Key



class DateCondition(Node):
    """A date relative to now: ``customer_since`` more than 30 days ago, ``birthday`` in the next 7 days
    (its anniversary). Works on typed dates, computed times and ISO-date traits."""

    type: Literal["date"]
    field: Key
    op: Literal["more_than_days_ago", "less_than_days_ago", "anniversary_in_next_days"]
    days: int = Field(ge=0, le=MAX_DAYS)


    @model_validator(mode="after")
    def _anniversary(self) -> DateCondition:
        if self.op == "anniversary_in_next_days" and self.days > 365:
            raise ValueError("anniversary_in_next_days takes at most 365 days")
        return self


class IdentityCondition(Node):
    """The customer has (or has not) an identity of this kind: email, phone, user_id, device_token…"""

    type: Literal["identity"]
    kind: Key
    present: bool = True



class Computed(Node):
    """A computed trait kept on ingest: event_count, purchase_count, last_channel, lifetime_value_cents
    (the latter in one ``currency``)."""

    type: Literal["computed"]
    field: Literal["event_count", "purchase_count", "last_channel", "lifetime_value_cents"]
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte"]
    value: int | Annotated[str, Field(max_length=64)]
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")

    @model_validator(mode="after")
    def _typed(self) -> Computed:
        if self.field == "last_channel":
            if not isinstance(self.value, str) or self.op not in ("eq", "ne"):
                raise ValueError("last_channel takes eq or ne and a channel name")
        elif not isinstance(self.value, int) or isinstance(self.value, bool) or abs(self.value) > MAX_NUMBER:
            raise ValueError(f"{self.field} compares whole numbers (at most {MAX_NUMBER:.0e})")
        if self.field == "lifetime_value_cents" and not self.currency:
            raise ValueError("lifetime_value_cents needs a 'currency' such as EUR")
        return self


class PropertyFilter(ValueTest):
    """A test on one property of the event: ``product_id`` eq ``X``."""

    property: Key



class EventCondition(Node):
    """Events performed: how many times (``count_op`` ``count``), within a window, matching properties.

    ``performed: false`` means none in the window. ``within_days`` counts calendar days (UTC,
    today included) and reads the daily rollups; ``within_hours`` or property filters read events.
    """

    type: Literal["event"]
    name: str
    performed: bool = True
    count_op: Literal["gte", "lte", "eq"] = "gte"
    count: int = Field(1, ge=0, le=1_000_000)
    within_days: int | None = Field(None, ge=1, le=MAX_DAYS)
    within_hours: int | None = Field(None, ge=1, le=MAX_HOURS)
    where: list[PropertyFilter] = Field(default_factory=list, max_length=MAX_FILTERS)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("must be an event name of 1-120 letters, digits, spaces or _ . : - /")
        return v

    @model_validator(mode="after")
    def _window(self) -> EventCondition:
        if self.within_days is not None and self.within_hours is not None:
            raise ValueError("give within_days or within_hours, not both")
        return self


class Sequence(Node):
    """``first`` happened (within ``since_days``) and no ``then_not`` followed within ``within_hours``:
    "added to cart and no purchase within 1 hour after"."""

    type: Literal["sequence"]
    first: str
    then_not: str
    within_hours: int = Field(ge=1, le=MAX_HOURS)
    since_days: int = Field(30, ge=1, le=MAX_DAYS)

    @model_validator(mode="after")
    def _names(self) -> Sequence:
        for name in (self.first, self.then_not):
            if not NAME_RE.match(name):
                raise ValueError("event names are 1-120 letters, digits, spaces or _ . : - /")
        if self.first == self.then_not:
            raise ValueError("first and then_not must be different events")
        return self


class ConsentCondition(Node):
    """The customer's consent for ``purpose`` on ``channel`` is in ``state``."""

    type: Literal["consent"]
    channel: Literal["email", "sms", "whatsapp", "push", "voice", "letter", "web"]
    purpose: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    state: Literal["granted", "denied", "pending"] = "granted"


class Reachable(Node):
    """The customer has an address on ``channel`` that is not suppressed (for ``purpose``, if given)."""

    type: Literal["reachable"]
    channel: Literal["email", "sms", "whatsapp", "push", "voice", "letter", "web"]
    purpose: str | None = Field(None, pattern=r"^[a-z0-9_]{1,40}$")


class Membership(Node):
    """Member (or not) of another segment, dynamic or a static list."""

    type: Literal["segment"]
    segment_id: str = Field(max_length=40)
    member: bool = True


class Group(Node):
    type: Literal["and", "or"]
    conditions: list[Condition] = Field(min_length=1, max_length=MAX_NODES)


class Not(Node):
    type: Literal["not"]
    condition: Condition


Condition = Annotated[
    Group | Not | Trait | DateCondition | IdentityCondition | Computed | EventCondition | Sequence
    | ConsentCondition | Reachable | Membership,
    Field(discriminator="type"),
]
Group.model_rebuild()
Not.model_rebuild()

_adapter: TypeAdapter[Any] = TypeAdapter(Condition)
TAGS = {"and", "or", "not", "trait", "date", "identity", "computed", "event", "sequence", "consent", "reachable",
        "segment"}


def node_path(loc: tuple[Any, ...] | list[Any], prefix: str = "") -> str:
    """``('conditions', 2, 'event', 'within_days')`` → ``conditions[2].within_days``."""
    text = prefix
    previous: Any = None
    for index, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in TAGS and (index == 0 or isinstance(previous, int) or previous == "condition"):
            pass  # the discriminator's tag pydantic adds to the location
        elif "function-after" in str(part) or str(part).startswith("function-"):
            pass
        else:
            text += f".{part}" if text else str(part)
        previous = part
    return text or "$"


def _shape(data: Any, depth: int = 1) -> tuple[int, int]:
    """(nodes, depth) of raw JSON, checked before pydantic parses it, so an abusive tree is cheap."""
    if depth > MAX_DEPTH + 2:
        return 1, depth
    nodes, deepest = 1, depth
    if isinstance(data, dict):
        children = data.get("conditions") if isinstance(data.get("conditions"), list) else []
        if isinstance(data.get("condition"), dict):
            children = [data["condition"]]
        for child in children[: MAX_NODES + 1]:
            n, d = _shape(child, depth + 1)
            nodes += n
            deepest = max(deepest, d)
    return nodes, deepest


def count_nodes(node: Any) -> int:
    if isinstance(node, Group):
        return 1 + sum(count_nodes(c) for c in node.conditions)
    if isinstance(node, Not):
        return 1 + count_nodes(node.condition)
    return 1


def parse(data: Any, *, prefix: str = "") -> Any:
    """A checked condition tree from JSON data; :class:`InvalidSegment` names the bad node."""
    if not isinstance(data, dict):
        raise InvalidSegment("a segment definition is a JSON object with a 'type'",
                             details={"path": prefix or "$", "problems": []})
    nodes, depth = _shape(data)
    if depth > MAX_DEPTH:
        raise InvalidSegment(f"the condition tree is nested more than {MAX_DEPTH} levels deep",
                             code="segment_too_deep", details={"path": prefix or "$", "max_depth": MAX_DEPTH})
    if nodes > MAX_NODES:
        raise InvalidSegment(f"the condition tree has more than {MAX_NODES} nodes",
                             code="segment_too_large", details={"path": prefix or "$", "max_nodes": MAX_NODES})
    try:
        return _adapter.validate_python(data)
    except ValidationError as exc:
        problems = [{"path": node_path(err["loc"], prefix), "message": err["msg"]} for err in exc.errors()]
        first = problems[0]
        raise InvalidSegment(f"{first['path']}: {first['message']}",
                             details={"path": first["path"], "problems": problems[:20]}) from None


def dump(node: Any) -> dict[str, Any]:
    return _adapter.dump_python(node, mode="json", exclude_none=True)


def referenced_segments(node: Any) -> list[str]:
    if isinstance(node, Group):
        return [s for c in node.conditions for s in referenced_segments(c)]
    if isinstance(node, Not):
        return referenced_segments(node.condition)
    if isinstance(node, Membership):
        return [node.segment_id]
    return []
