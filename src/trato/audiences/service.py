"""The audiences domain's public face: segments, their counts and members, static lists, snapshots.

Campaigns take a :func:`take_snapshot` and page through it with :func:`snapshot_members` (keyset,
resumable) or :func:`stream_snapshot`; the 360° view asks :func:`segments_of`. Every change writes
its audit row in the caller's unit of work.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlalchemy.orm import Session

from trato.audiences import compiler
from trato.audiences import conditions as c
from trato.audiences.errors import (
    InvalidList, InvalidSegment, NotAStaticList, SegmentInUse, SegmentNotFound, SnapshotNotFound,
)
from trato.audiences.models import KINDS, Segment, SegmentListMember, SegmentSnapshot, SegmentSnapshotMember
from trato.core import audit
from trato.core.clock import utcnow
from trato.core.db import chunks, insert_for
from trato.core.errors import Conflict
from trato.core.ids import new_id
from trato.customers import service as customers

MAX_LIST_ROWS = 100_000
MAX_SAMPLE = 100
CUSTOMERS = compiler.CUSTOMERS


# -- compiling ------------------------------------------------------------------------------------


def _loader(session: Session) -> Any:
    def load(segment_id: str) -> compiler.Reference | None:
        row = session.execute(select(Segment.id, Segment.kind, Segment.definition)
                              .where(Segment.id == segment_id)).first()
        return compiler.Reference(row.id, row.kind, row.definition) if row else None
    return load


def context(session: Session, *, now: datetime | None = None, customer_id: str | None = None,
            segment_id: str | None = None) -> compiler.Context:
    """How trees compile in this session: its database, this moment, segments looked up here."""
    return compiler.Context(dialect=session.get_bind().dialect.name, now=now or utcnow(), load=_loader(session),
                            customer_id=customer_id, stack=(segment_id,) if segment_id else ())


def check_definition(session: Session, definition: Any, *, segment_id: str | None = None) -> Any:
    """The parsed tree, checked: shape and bounds, referenced segments exist, no cycle (with
    ``segment_id``, a tree that reaches back to it). Raises InvalidSegment / SegmentCycle."""
    tree = c.parse(definition)
    compiler.members(tree, context(session, segment_id=segment_id))
    return tree


def _filter(session: Session, *, segment_id: str | None, definition: Any, now: datetime | None,
            customer_id: str | None = None) -> list[Any]:
    if segment_id is not None:
        segment = get_segment(session, segment_id)
        tree: Any = c.Membership(type="segment", segment_id=segment.id)
    else:
        tree = c.parse(definition)
    return compiler.live_filter(tree, context(session, now=now, customer_id=customer_id))


def members_query(session: Session, *, segment_id: str | None = None, definition: Any = None,
                  now: datetime | None = None) -> Any:
    """The one SELECT of member ids (for campaigns that need to join it into their own SQL)."""
    return select(CUSTOMERS.c.id).where(*_filter(session, segment_id=segment_id, definition=definition, now=now))


def count(session: Session, *, segment_id: str | None = None, definition: Any = None,
          now: datetime | None = None) -> int:
    """How many live customers are in a saved segment, or match an unsaved ``definition``."""
    where = _filter(session, segment_id=segment_id, definition=definition, now=now)
    return int(session.scalar(select(func.count()).select_from(CUSTOMERS).where(*where)) or 0)


def sample(session: Session, *, segment_id: str | None = None, definition: Any = None, limit: int = 10,
           now: datetime | None = None) -> list[dict[str, Any]]:
    """The first ``limit`` members by id, with their names, to show who a segment is."""
    where = _filter(session, segment_id=segment_id, definition=definition, now=now)
    t = CUSTOMERS.c
    rows = session.execute(select(t.id, t.first_name, t.last_name, t.email).where(*where).order_by(t.id)
                           .limit(max(1, min(limit, MAX_SAMPLE))))
    return [{"id": r.id, "name": " ".join(p for p in (r.first_name, r.last_name) if p), "email": r.email}
            for r in rows]


def preview(session: Session, *, definition: Any, limit: int = 10, now: datetime | None = None) -> dict[str, Any]:
    """Count and sample of an unsaved tree, for the condition builder."""
    check_definition(session, definition)
    return {"count": count(session, definition=definition, now=now),
            "sample": sample(session, definition=definition, limit=limit, now=now)}


def page_members(session: Session, *, segment_id: str, after: str | None = None, limit: int = 100,
                 now: datetime | None = None) -> list[str]:
    """Member ids in id order after ``after`` (keyset paging for the API)."""
    where = _filter(session, segment_id=segment_id, definition=None, now=now)
    if after:
        where.append(CUSTOMERS.c.id > after)
    return list(session.scalars(select(CUSTOMERS.c.id).where(*where).order_by(CUSTOMERS.c.id)
                                .limit(max(1, min(limit, 10_000)))))


def stream_members(session: Session, *, segment_id: str | None = None, definition: Any = None,
                   chunk_size: int = 1000, now: datetime | None = None) -> Iterator[list[str]]:
    """Every member id, in chunks, from one query read through a server-side cursor: memory stays
    flat however large the segment."""
    where = _filter(session, segment_id=segment_id, definition=definition, now=now)
    result = session.execute(select(CUSTOMERS.c.id).where(*where).order_by(CUSTOMERS.c.id),
                             execution_options={"stream_results": True, "yield_per": chunk_size})
    for part in result.scalars().partitions(chunk_size):
        yield list(part)


def segments_of(session: Session, *, customer_id: str, now: datetime | None = None) -> list[Segment]:
    """The segments this customer is in now: each segment's own query narrowed to this customer."""
    customer = customers.get_customer(session, customer_id)
    found = []
    for segment in list_segments(session):
        tree = c.Membership(type="segment", segment_id=segment.id)
        try:
            where = compiler.live_filter(tree, context(session, now=now, customer_id=customer.id))
        except InvalidSegment:  # a segment broken by a deleted reference is simply not matched
            continue
        if session.scalar(select(literal(1)).select_from(CUSTOMERS).where(*where)) is not None:
            found.append(segment)
    return found


# -- segments -------------------------------------------------------------------------------------


def list_segments(session: Session) -> list[Segment]:
    return list(session.scalars(select(Segment).order_by(Segment.name)))


def get_segment(session: Session, segment_id: str) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise SegmentNotFound(f"segment {segment_id} does not exist", details={"segment_id": segment_id})
    return segment


def _check_name(session: Session, name: str, segment_id: str | None = None) -> str:
    name = name.strip()
    if not name or len(name) > 120:
        raise InvalidSegment("a segment needs a name of 1-120 characters", code="invalid_name",
                             details={"path": "name"})
    owner = session.scalar(select(Segment.id).where(Segment.name == name))
    if owner is not None and owner != segment_id:
        raise Conflict(f"a segment named {name!r} exists already", code="segment_name_taken",
                       details={"segment_id": owner})
    return name


def create_segment(session: Session, *, name: str, actor: str, kind: str = "dynamic",
                   definition: Any = None, description: str = "") -> Segment:
    """A new segment: ``dynamic`` with a condition tree, or a ``static`` list filled by upload."""
    if kind not in KINDS:
        raise InvalidSegment("kind must be dynamic or static", code="invalid_kind", details={"path": "kind"})
    name = _check_name(session, name)
    segment_id = new_id("seg")
    stored = None
    if kind == "dynamic":
        if definition is None:
            raise InvalidSegment("a dynamic segment needs a definition", details={"path": "definition"})
        stored = c.dump(check_definition(session, definition, segment_id=segment_id))
    elif definition is not None:
        raise InvalidSegment("a static list has no definition", details={"path": "definition"})
    now = utcnow()
    segment = Segment(id=segment_id, name=name, description=(description or "")[:500], kind=kind,
                      definition=stored, created_by=actor, created_at=now, updated_at=now)
    session.add(segment)
    session.flush()
    audit.record(session, actor=actor, action="segment.create", object_type="segment", object_id=segment.id,
                 name=name, kind=kind, definition=stored)
    return segment


def update_segment(session: Session, *, segment_id: str, actor: str, name: str | None = None,
                   description: str | None = None, definition: Any = None) -> Segment:
    """Rename, describe or redefine a segment (a tree that would refer back to it is refused)."""
    segment = get_segment(session, segment_id)
    changes: dict[str, Any] = {}
    if name is not None:
        segment.name = changes["name"] = _check_name(session, name, segment.id)
    if description is not None:
        segment.description = changes["description"] = description[:500]
    if definition is not None:
        if segment.kind != "dynamic":
            raise InvalidSegment("a static list has no definition", details={"path": "definition"})
        segment.definition = changes["definition"] = c.dump(
            check_definition(session, definition, segment_id=segment.id))
    segment.updated_at = utcnow()
    session.flush()
    audit.record(session, actor=actor, action="segment.update", object_type="segment", object_id=segment.id,
                 **changes)
    return segment


def delete_segment(session: Session, *, segment_id: str, actor: str) -> None:
    """Delete a segment that no other segment refers to (its list and snapshots go with it)."""
    segment = get_segment(session, segment_id)
    users = [s.id for s in list_segments(session)
             if s.definition and segment.id in c.referenced_segments(c.parse(s.definition))]
    if users:
        raise SegmentInUse(f"segments {', '.join(users)} refer to this one; change them first",
                           details={"segments": users})
    for table in (SegmentSnapshotMember, SegmentListMember):
        session.query(table).filter(table.segment_id == segment.id).delete(synchronize_session=False)
    session.query(SegmentSnapshot).filter(SegmentSnapshot.segment_id == segment.id).delete(
        synchronize_session=False)
    session.delete(segment)
    session.flush()
    audit.record(session, actor=actor, action="segment.delete", object_type="segment", object_id=segment.id,
                 name=segment.name)


# -- static lists ---------------------------------------------------------------------------------


def _resolve(session: Session, value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if value.startswith("cus_"):
        customer = session.get(customers.Customer, value)
        return customers.get_customer(session, value).id if customer is not None else None
    kind = "email" if "@" in value else "phone"
    try:
        return customers.lookup(session, kind=kind, value=value).id
    except Exception:  # not an address we know (or not an address at all): reported as unmatched
        return None


def upload_list(session: Session, *, segment_id: str, data: str, actor: str, replace: bool = False) -> dict[str, Any]:
    """Fill a static list from CSV text: one customer per row, by trato id, e-mail or phone (the first
    column, or the column named id/customer_id/email/phone). Returns how many matched and which did not."""
    segment = get_segment(session, segment_id)
    if segment.kind != "static":
        raise NotAStaticList("only a static segment takes a list", details={"segment_id": segment.id})
    try:
        rows = list(csv.reader(io.StringIO(data.lstrip("\ufeff"))))
    except csv.Error as exc:
        raise InvalidList(f"the file is not valid CSV: {exc}") from None
    if len(rows) > MAX_LIST_ROWS + 1:
        raise InvalidList(f"a list takes at most {MAX_LIST_ROWS} rows", details={"rows": len(rows)})
    column = 0
    if rows and rows[0]:
        header = [cell.strip().lower() for cell in rows[0]]
        named = [i for i, h in enumerate(header) if h in ("id", "customer_id", "email", "phone")]
        if named:
            column, rows = named[0], rows[1:]
    values = [row[column] for row in rows if len(row) > column and row[column].strip()]
    matched: set[str] = set()
    unmatched: list[str] = []
    for value in values:
        found = _resolve(session, value[:320])
        if found is None:
            unmatched.append(value[:320])
        else:
            matched.add(found)
    if replace:
        session.query(SegmentListMember).filter(SegmentListMember.segment_id == segment.id).delete(
            synchronize_session=False)
    for part in chunks(sorted(matched), 500):
        session.execute(insert_for(session)(SegmentListMember).values(
            [{"segment_id": segment.id, "customer_id": cid} for cid in part]).on_conflict_do_nothing())
    segment.updated_at = utcnow()
    session.flush()
    audit.record(session, actor=actor, action="segment.list.upload", object_type="segment", object_id=segment.id,
                 rows=len(values), matched=len(matched), unmatched=len(unmatched), replace=replace)
    return {"rows": len(values), "matched": len(matched), "unmatched": unmatched[:100],
            "unmatched_count": len(unmatched)}


# -- snapshots ------------------------------------------------------------------------------------


def take_snapshot(session: Session, *, segment_id: str, actor: str, now: datetime | None = None) -> SegmentSnapshot:
    """Freeze who is in the segment now, in one INSERT … SELECT (no member passes through Python)."""
    segment = get_segment(session, segment_id)
    snapshot = SegmentSnapshot(id=new_id("snp"), segment_id=segment.id, member_count=0,
                               definition=segment.definition, created_by=actor, created_at=utcnow())
    session.add(snapshot)
    session.flush()
    where = _filter(session, segment_id=segment.id, definition=None, now=now)
    chosen = select(literal(snapshot.id), CUSTOMERS.c.id, literal(segment.id)).where(*where)
    result = session.execute(insert(SegmentSnapshotMember).from_select(["snapshot_id", "customer_id", "segment_id"],
                                                                       chosen))
    snapshot.member_count = int(session.scalar(select(func.count()).select_from(SegmentSnapshotMember).where(
        SegmentSnapshotMember.snapshot_id == snapshot.id)) or 0) if result.rowcount in (None, -1) else result.rowcount
    session.flush()
    audit.record(session, actor=actor, action="segment.snapshot", object_type="segment", object_id=segment.id,
                 snapshot_id=snapshot.id, members=snapshot.member_count)
    return snapshot


def list_snapshots(session: Session, *, segment_id: str) -> list[SegmentSnapshot]:
    get_segment(session, segment_id)
    return list(session.scalars(select(SegmentSnapshot).where(SegmentSnapshot.segment_id == segment_id)
                                .order_by(SegmentSnapshot.created_at.desc(), SegmentSnapshot.id.desc())))


def get_snapshot(session: Session, snapshot_id: str) -> SegmentSnapshot:
    snapshot = session.get(SegmentSnapshot, snapshot_id)
    if snapshot is None:
        raise SnapshotNotFound(f"snapshot {snapshot_id} does not exist", details={"snapshot_id": snapshot_id})
    return snapshot


def snapshot_members(session: Session, *, snapshot_id: str, after: str | None = None, limit: int = 1000) -> list[str]:
    """Customer ids of a snapshot in id order after ``after``: a campaign resumes from its last id."""
    m = SegmentSnapshotMember
    stmt = select(m.customer_id).where(m.snapshot_id == snapshot_id)
    if after:
        stmt = stmt.where(m.customer_id > after)
    return list(session.scalars(stmt.order_by(m.customer_id).limit(max(1, min(limit, 10_000)))))


def stream_snapshot(session: Session, *, snapshot_id: str, chunk_size: int = 1000,
                    after: str | None = None) -> Iterator[list[str]]:
    """Every member of a snapshot in chunks of ids (keyset pages: flat memory, resumable)."""
    get_snapshot(session, snapshot_id)
    while True:
        part = snapshot_members(session, snapshot_id=snapshot_id, after=after, limit=chunk_size)
        if not part:
            return
        yield part
        after = part[-1]


def snapshot_members_query(*, snapshot_id: str) -> Any:
    """A SELECT of a snapshot's customer ids, for a campaign to copy its recipients in one
    INSERT … SELECT (no member passes through Python)."""
    m = SegmentSnapshotMember
    return select(m.customer_id).where(m.snapshot_id == snapshot_id)
