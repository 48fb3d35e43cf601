"""Condition trees to SQL: one SQLAlchemy Core query per segment, the same members on SQLite and
PostgreSQL.

Every condition becomes a boolean over the ``customers`` row that is never NULL (so ``not`` is
exact): profile fields and traits are read in place, everything else is ``id IN (subquery)``.
Behavioural conditions read the daily ``event_rollups`` when the window is in days and no property
is filtered, and raw ``events`` otherwise. Profiles merged away never count; what was recorded
under them (consents, list entries) counts for the profile they were merged into.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import (
    Numeric, String, and_, case, cast, collate, exists, false, func, literal, not_, or_, select, true, union_all,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from trato.audiences import conditions as c
from trato.audiences.errors import InvalidSegment, SegmentCycle
from trato.core.clock import as_utc
from trato.customers import service as customers
from trato.policy import service as policy

CUSTOMERS = customers.Customer.__table__
IDENTITIES = customers.Identity.__table__
EVENTS = customers.Event.__table__
ROLLUPS = customers.EventRollup.__table__
REVENUE = customers.CustomerRevenue.__table__
TRACKED_KINDS = ("track", "purchase")


@dataclass(frozen=True)
class Reference:
    """What the compiler needs of a referenced segment."""

    id: str
    kind: str  # dynamic | static
    definition: dict[str, Any] | None


@dataclass
class Context:
    dialect: str
    now: datetime
    # Looks up a segment by id (None if there is none); membership conditions inline its tree.
    load: Callable[[str], Reference | None] = lambda _id: None
    # Only this customer: every subquery is narrowed to it (membership of one customer, cheaply).
    customer_id: str | None = None
    stack: tuple[str, ...] = ()
    _merge_roots: Any = field(default=None, repr=False)

    @property
    def pg(self) -> bool:
        return self.dialect == "postgresql"

    @property
    def today(self) -> date:
        return as_utc(self.now).date()


def members(tree: Any, ctx: Context) -> Any:
    """SELECT customers.id of the live profiles matching ``tree`` (no order)."""
    return select(CUSTOMERS.c.id).where(*live_filter(tree, ctx))


def live_filter(tree: Any, ctx: Context) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [CUSTOMERS.c.merged_into_id.is_(None), compile_node(tree, ctx, "")]
    if ctx.customer_id is not None:
        clauses.insert(0, CUSTOMERS.c.id == ctx.customer_id)
    return clauses


def compile_node(node: Any, ctx: Context, path: str) -> ColumnElement[bool]:
    if isinstance(node, c.Group):
        parts = [compile_node(child, ctx, f"{path}.conditions[{i}]".lstrip(".")) for i, child in
                 enumerate(node.conditions)]
        return and_(*parts) if node.type == "and" else or_(*parts)
    if isinstance(node, c.Not):
        return not_(compile_node(node.condition, ctx, f"{path}.condition".lstrip(".")))
    handler = HANDLERS[type(node)]
    return handler(node, ctx, path)


def _strict(expr: ColumnElement[Any]) -> ColumnElement[bool]:
    """NULL (an unknown comparison) reads as false, so that ``not`` is exact."""
    return func.coalesce(expr, false())


def _narrow(stmt: Any, column: Any, ctx: Context) -> Any:
    return stmt.where(column == ctx.customer_id) if ctx.customer_id is not None else stmt


def _in(stmt: Any, column: Any, ctx: Context) -> ColumnElement[bool]:
    return member_of(_narrow(stmt, column, ctx), ctx)


def member_of(ids: Any, ctx: Context) -> ColumnElement[bool]:
    """The customer's id is among ``ids`` (a one-column SELECT, possibly a UNION).

    SQLite answers ``id IN (…)`` from an index it builds once, and ``NOT IN`` likewise. PostgreSQL
    turns ``NOT IN (…)`` over a million ids into a per-row search once they overflow work_mem, so
    there it is an EXISTS on the derived table: a hash semi-join, or anti-join under ``not``.
    """
    if not ctx.pg:
        return CUSTOMERS.c.id.in_(ids)
    found = ids.subquery()
    return exists(select(literal(1)).select_from(found).where(found.c[0] == CUSTOMERS.c.id))


# -- values in JSON (traits, event properties) ----------------------------------------------------


class JsonValue:
    """One key of a JSON column, typed the same way on both databases."""

    def __init__(self, column: Any, key: str, ctx: Context) -> None:
        self.ctx = ctx
        if ctx.pg:
            self.type = func.jsonb_typeof(column.op("->", return_type=JSONB)(literal(key, String)))
            self.text = column.op("->>", return_type=String)(literal(key, String))
        else:
            path = f'$."{key}"'
            self.type = func.json_type(column, path)
            self.raw = func.json_extract(column, path)

    def string(self) -> Any:
        if self.ctx.pg:
            return case((self.type == "string", self.text))
        return case((self.type == "text", self.raw))

    def number(self) -> Any:
        if self.ctx.pg:
            return case((self.type == "number", cast(self.text, Numeric)))
        return case((self.type.in_(("integer", "real")), self.raw))

    def boolean(self, value: bool) -> ColumnElement[bool]:
        if self.ctx.pg:
            return and_(self.type == "boolean", self.text == ("true" if value else "false"))
        return self.type == ("true" if value else "false")

    def present(self) -> ColumnElement[bool]:
        return and_(self.type.is_not(None), self.type != "null")


class ColumnValue:
    """A typed text column (first_name, country, ...): a string or nothing."""

    def __init__(self, column: Any, ctx: Context) -> None:
        self.column, self.ctx = column, ctx

    def string(self) -> Any:
        return self.column

    def number(self) -> Any:
        return None

    def boolean(self, value: bool) -> ColumnElement[bool]:
        return false()

    def present(self) -> ColumnElement[bool]:
        return self.column.is_not(None)


def _text(expr: Any, ctx: Context) -> Any:
    # Byte order on both databases, whatever PostgreSQL's default collation is.
    return collate(expr, "C") if ctx.pg else expr


def _equals(value: Any, test: Any, ctx: Context) -> ColumnElement[bool]:
    if isinstance(test, bool):
        return value.boolean(test)
    if c._is_number(test):
        number = value.number()
        return false() if number is None else number == test
    if isinstance(value, JsonValue) and not ctx.pg and not test.startswith(("{", "[")):
        # SQLite: a number, true/false or null never equals text, and objects come out as JSON text
        # starting with { or [, so the plain extract is exact and spares a second parse per row.
        return value.raw == test
    return value.string() == test


def value_test(value: Any, node: c.ValueTest, ctx: Context) -> ColumnElement[bool]:
    op = node.op
    if op == "exists":
        return _strict(value.present())
    if op == "not_exists":
        return not_(_strict(value.present()))
    if op == "eq":
        return _strict(_equals(value, node.value, ctx))
    if op == "ne":
        return not_(_strict(_equals(value, node.value, ctx)))
    if op == "in":
        assert node.values is not None
        strings = [v for v in node.values if isinstance(v, str)]
        others = [_equals(value, v, ctx) for v in node.values if not isinstance(v, str)]
        plain = isinstance(value, JsonValue) and not ctx.pg and not any(v.startswith(("{", "[")) for v in strings)
        text = value.raw if plain else value.string()
        parts = ([text.in_(strings)] if strings else []) + others
        return _strict(or_(*parts))
    if op == "contains":
        finder = func.strpos if ctx.pg else func.instr
        return _strict(finder(value.string(), node.value) > 0)
    if op == "between":
        assert node.values is not None
        number = value.number()
        if number is None:
            return false()
        return _strict(and_(number >= node.values[0], number <= node.values[1]))
    # gt, gte, lt, lte on numbers, or on text in byte order
    if c._is_number(node.value):
        left = value.number()
        if left is None:
            return false()
        right: Any = node.value
    else:
        left, right = _text(value.string(), ctx), node.value
    compare = {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]
    return _strict(compare)


def _trait(node: c.Trait, ctx: Context, path: str) -> ColumnElement[bool]:
    if node.trait in c.TEXT_COLUMNS:
        value: Any = ColumnValue(CUSTOMERS.c[node.trait], ctx)
    else:
        value = JsonValue(CUSTOMERS.c.traits, node.trait, ctx)
    return value_test(value, node, ctx)


# -- dates relative to now ------------------------------------------------------------------------


def month_days(start: date, days: int) -> list[str]:
    """The 'MM-DD' of every day from ``start`` for ``days`` more days; 29 February joins when the
    window crosses the end of a non-leap February (those born on it celebrate on the 28th)."""
    found: list[str] = []
    for offset in range(days + 1):
        day = start + timedelta(days=offset)
        found.append(day.strftime("%m-%d"))
        if day.month == 2 and day.day == 28 and (day + timedelta(days=1)).month == 3:
            found.append("02-29")
    return sorted(set(found))


def _date(node: c.DateCondition, ctx: Context, path: str) -> ColumnElement[bool]:
    today = ctx.today
    if node.field in c.DATE_COLUMNS or node.field in c.DATETIME_COLUMNS:
        column = CUSTOMERS.c[node.field]
        is_datetime = node.field in c.DATETIME_COLUMNS
        if node.op == "anniversary_in_next_days":
            if ctx.pg:
                md = func.to_char(func.timezone("UTC", column) if is_datetime else column, "MM-DD")
            else:
                md = func.substr(column, 6, 5)
            return _strict(md.in_(month_days(today, node.days)))
        bound: Any = (as_utc(ctx.now) - timedelta(days=node.days)) if is_datetime else today - timedelta(days=node.days)
        return _strict(column < bound if node.op == "more_than_days_ago" else column >= bound)
    # An ISO date (or timestamp) kept as a text trait: its first ten characters, compared as text.
    text = JsonValue(CUSTOMERS.c.traits, node.field, ctx).string()
    shaped = (text.op("~")(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}") if ctx.pg
              else text.op("GLOB")("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"))
    if node.op == "anniversary_in_next_days":
        test = func.substr(text, 6, 5).in_(month_days(today, node.days))
    else:
        bound_text = (today - timedelta(days=node.days)).isoformat()
        day = _text(func.substr(text, 1, 10), ctx)
        test = day < bound_text if node.op == "more_than_days_ago" else day >= bound_text
    return _strict(and_(shaped, test))


# -- identities, computed traits ------------------------------------------------------------------


def _identity(node: c.IdentityCondition, ctx: Context, path: str) -> ColumnElement[bool]:
    found = _in(select(IDENTITIES.c.customer_id).where(IDENTITIES.c.kind == node.kind), IDENTITIES.c.customer_id, ctx)
    return found if node.present else not_(found)


def _computed(node: c.Computed, ctx: Context, path: str) -> ColumnElement[bool]:
    if node.field == "lifetime_value_cents":
        cents = (select(REVENUE.c.cents).where(REVENUE.c.customer_id == CUSTOMERS.c.id,
                                               REVENUE.c.currency == node.currency).scalar_subquery())
        left: Any = func.coalesce(cents, 0)
    else:
        left = CUSTOMERS.c[node.field]
    right = node.value
    compare = {"eq": left == right, "ne": left != right, "gt": left > right, "gte": left >= right,
               "lt": left < right, "lte": left <= right}[node.op]
    if node.field == "last_channel" and node.op == "ne":
        return not_(_strict(left == right))
    return _strict(compare)


# -- events ---------------------------------------------------------------------------------------


def name_options(table: Any, name: str) -> list[ColumnElement[bool]]:
    """The ways a raw event is counted under ``name`` in the rollups (customers.computed.rollup_name),
    each one a range of the (name, occurred_at) index."""
    t = table.c
    options = [and_(t.name == name, t.kind.in_(TRACKED_KINDS)), and_(t.name.is_(None), t.kind == name)]
    if ":" in name:
        kind, rest = name.split(":", 1)
        if kind not in TRACKED_KINDS:
            options.append(and_(t.name == rest, t.kind == kind))
    return options


def event_matches(table: Any, name: str) -> ColumnElement[bool]:
    return or_(*name_options(table, name))


def _by_name_time(stmt: Any, table: Any, index: str, ctx: Context) -> Any:
    """SQLite's planner prefers reading a whole table in customer order (to skip the GROUP BY's sort)
    over a range of the name index; a range it is, except for one customer's membership."""
    if ctx.pg or ctx.customer_id is not None:
        return stmt
    return stmt.with_hint(table, f"INDEXED BY {index}", "sqlite")


def window_start(node: c.EventCondition, ctx: Context) -> datetime | None:
    if node.within_hours is not None:
        return as_utc(ctx.now) - timedelta(hours=node.within_hours)
    if node.within_days is not None:
        first_day = ctx.today - timedelta(days=node.within_days - 1)
        return datetime.combine(first_day, time(), tzinfo=timezone.utc)
    return None


def _event(node: c.EventCondition, ctx: Context, path: str) -> ColumnElement[bool]:
    op, count = (node.count_op, node.count) if node.performed else ("lte", 0)
    if node.performed and node.count_op == "gte" and node.count == 0:
        return true()
    use_rollups = not node.where and node.within_hours is None
    if use_rollups:
        who, amount = ROLLUPS.c.customer_id, func.sum(ROLLUPS.c.count)
        where = [ROLLUPS.c.name == node.name]
        if node.within_days is not None:
            where.append(ROLLUPS.c.day >= ctx.today - timedelta(days=node.within_days - 1))
        base = _by_name_time(_narrow(select(who).where(*where), who, ctx), ROLLUPS, "ix_event_rollups_name_day", ctx)
    else:
        where = []
        start = window_start(node, ctx)
        if start is not None:
            where.append(EVENTS.c.occurred_at >= start)
        for condition in node.where:
            where.append(value_test(JsonValue(EVENTS.c.properties, condition.property, ctx), condition, ctx))
        parts = [_by_name_time(_narrow(select(EVENTS.c.customer_id).where(option, *where), EVENTS.c.customer_id, ctx),
                               EVENTS, "ix_events_name_time", ctx) for option in name_options(EVENTS, node.name)]
        found = union_all(*parts).subquery("matching_events")
        who, amount = found.c.customer_id, func.count()
        base = select(who)
    # customers with more than / exactly / at least ``count``
    if op == "gte":
        stmt = base if count == 1 else base.group_by(who).having(amount >= count)
        return member_of(stmt, ctx)
    if op == "lte":
        stmt = base if count == 0 else base.group_by(who).having(amount > count)
        return not_(member_of(stmt, ctx))
    if count == 0:
        return not_(member_of(base, ctx))
    return member_of(base.group_by(who).having(amount == count), ctx)


def _plus_hours(column: Any, hours: int, ctx: Context) -> Any:
    if ctx.pg:
        return column + func.make_interval(0, 0, 0, 0, hours)
    # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff': whole seconds move, the fraction stays as it was.
    return func.strftime("%Y-%m-%d %H:%M:%S", column, f"+{hours * 3600} seconds").concat(func.substr(column, 20))


def _sequence(node: c.Sequence, ctx: Context, path: str) -> ColumnElement[bool]:
    first, then = EVENTS.alias("seq_first"), EVENTS.alias("seq_then")
    since = datetime.combine(ctx.today - timedelta(days=node.since_days - 1), time(), tzinfo=timezone.utc)
    settled = as_utc(ctx.now) - timedelta(hours=node.within_hours)  # its hour has passed
    followed = exists(select(then.c.id).where(
        then.c.customer_id == first.c.customer_id, event_matches(then, node.then_not),
        then.c.occurred_at >= first.c.occurred_at,
        then.c.occurred_at <= _plus_hours(first.c.occurred_at, node.within_hours, ctx)))
    stmt = select(first.c.customer_id).where(
        event_matches(first, node.first), first.c.occurred_at >= since, first.c.occurred_at <= settled, ~followed)
    return _in(stmt, first.c.customer_id, ctx)


# -- consent, reachability, other segments --------------------------------------------------------


def _merge_roots(ctx: Context) -> Any:
    """(child, root) for every profile merged away, through chains of merges."""
    if ctx._merge_roots is None:
        m = CUSTOMERS.alias("merged")
        base = select(m.c.id.label("child"), m.c.merged_into_id.label("root")).where(
            m.c.merged_into_id.is_not(None)).cte("merge_roots", recursive=True)
        up = CUSTOMERS.alias("merged_up")
        ctx._merge_roots = base.union_all(
            select(base.c.child, up.c.merged_into_id).join(up, up.c.id == base.c.root).where(
                up.c.merged_into_id.is_not(None)))
    return ctx._merge_roots


def _owned(ids: Any, ctx: Context) -> ColumnElement[bool]:
    """The customer is among ``ids`` (a one-column SELECT), or a profile merged into it is."""
    roots = _merge_roots(ctx)
    inherited = select(roots.c.root).where(roots.c.child.in_(ids))
    return or_(member_of(ids, ctx), member_of(_narrow(inherited, roots.c.root, ctx), ctx))


def _consent(node: c.ConsentCondition, ctx: Context, path: str) -> ColumnElement[bool]:
    return _owned(policy.consent_holders(channel=node.channel, purpose=node.purpose, state=node.state), ctx)


def _reachable(node: c.Reachable, ctx: Context, path: str) -> ColumnElement[bool]:
    holders = policy.address_holders(channel=node.channel)
    if holders is None:  # a letter needs a postal address trait
        address = JsonValue(CUSTOMERS.c.traits, "address", ctx)
        if ctx.pg:
            has: Any = or_(and_(address.type == "string", address.text != ""),
                           and_(address.type == "object", address.text != "{}"))
        else:
            has = or_(and_(address.type == "text", address.raw != ""),
                      and_(address.type == "object", address.raw != "{}"))
        has = _strict(has)
    else:
        has = _in(holders, holders.selected_columns[0], ctx)
    blocked = policy.suppressed_holders(channel=node.channel, purpose=node.purpose, at=ctx.now)
    return and_(has, not_(member_of(blocked, ctx)))


def _membership(node: c.Membership, ctx: Context, path: str) -> ColumnElement[bool]:
    if node.segment_id in ctx.stack:
        chain = " → ".join([*ctx.stack, node.segment_id])
        raise SegmentCycle(f"{path or '$'}: segments refer to each other in a cycle ({chain})",
                           details={"path": f"{path}.segment_id".lstrip("."), "cycle": [*ctx.stack, node.segment_id]})
    target = ctx.load(node.segment_id)
    if target is None:
        raise InvalidSegment(f"{path or '$'}.segment_id: there is no segment {node.segment_id}",
                             code="unknown_segment", details={"path": f"{path}.segment_id".lstrip(".")})
    if target.kind == "static":
        from trato.audiences.models import SegmentListMember

        lm = SegmentListMember.__table__.c
        found = _owned(select(lm.customer_id).where(lm.segment_id == target.id), ctx)
    else:
        inner = c.parse(target.definition)
        ctx.stack = (*ctx.stack, node.segment_id)
        try:
            found = compile_node(inner, ctx, path)
        except InvalidSegment as exc:  # name the node of the tree being compiled, not one inside the other
            here = f"{path}.segment_id".lstrip(".")
            if isinstance(exc.details, dict):
                exc.details = {**exc.details, "path": here, "inside": target.id}
            exc.message = f"{here}: {exc.message.split(': ', 1)[-1]}"
            raise
        finally:
            ctx.stack = ctx.stack[:-1]
    return found if node.member else not_(found)


HANDLERS: dict[type, Callable[[Any, Context, str], ColumnElement[bool]]] = {
    c.Trait: _trait, c.DateCondition: _date, c.IdentityCondition: _identity, c.Computed: _computed,
    c.EventCondition: _event, c.Sequence: _sequence, c.ConsentCondition: _consent, c.Reachable: _reachable,
    c.Membership: _membership,
}
