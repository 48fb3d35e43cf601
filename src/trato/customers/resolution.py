"""Identity resolution: which person an event is about, creating, linking and merging profiles.

The rules, in order (tested as properties in tests/customers/test_resolution_properties.py):

1. An event's identities are taken in precedence order: user_id, email, phone, anonymous_id,
   device_token, then any other kind.
2. If one of them is an *exclusive* kind (``user_id`` by default: a person has one) and is
   known, the event belongs to that identity's profile.
3. Every other profile that owns one of the event's identities is merged into it — unless the
   two hold different values of an exclusive kind (two different user ids never merge
   automatically). Such a refusal is logged, and that identity stays where it was.
4. With no profile found, a new one is created. Identities not yet known join the profile.
5. On merge the known person (with an exclusive id) survives, else the older profile.

A :class:`Resolver` works on a whole batch with few round trips: one look-up per identity kind
for the batch, inserts and trait updates written together in :meth:`Resolver.flush`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from trato.core.clock import iso, utcnow
from trato.core.ids import new_id
from trato.customers import merges, writes
from trato.customers.traits import TYPED_COLUMNS, search_name, typed_columns

PRECEDENCE = {"user_id": 0, "email": 1, "phone": 2, "anonymous_id": 3, "device_token": 4}

Key = tuple[str, str]


def by_precedence(identities: list[Key]) -> list[Key]:
    seen: set[Key] = set()
    unique = [k for k in identities if not (k in seen or seen.add(k))]
    return sorted(unique, key=lambda k: PRECEDENCE.get(k[0], 9))


@dataclass
class Observation:
    """What one event says about a person."""

    identities: list[Key]
    at: datetime
    linked_via: str
    traits: dict[str, Any] = field(default_factory=dict)
    source_id: str | None = None
    message_id: str | None = None
    # Segment's alias: an earlier identity of the same person, linked after the event is placed.
    previous: Key | None = None


@dataclass
class Resolution:
    customer_id: str
    origin_customer_id: str
    created: bool = False


class Resolver:
    def __init__(self, session: Session, *, exclusive_kinds: list[str], actor: str = "ingest") -> None:
        self.session = session
        self.exclusive_kinds = set(exclusive_kinds)
        self.actor = actor
        self.owner: dict[Key, tuple[str, str] | None] = {}  # identity -> (customer, origin)
        self.exclusive: dict[str, dict[str, str]] = {}
        self._new_customers: dict[str, dict[str, Any]] = {}
        self._new_identities: list[dict[str, Any]] = []
        self._traits: dict[str, dict[str, tuple[Any, str]]] = {}
        self.merges: list[str] = []
        self.merged_into: dict[str, str] = {}

    # -- loading ---------------------------------------------------------------------------

    def prefetch(self, identities: list[Key]) -> None:
        """Load the owners of these identities (and those owners' exclusive ids) in few queries."""
        owner = self.owner
        if all(k in owner for k in identities):  # every event asks again after the batch's prefetch
            return
        missing = [k for k in set(identities) if k not in owner]
        by_kind: dict[str, list[str]] = {}
        for kind, value in missing:
            by_kind.setdefault(kind, []).append(value)
        owners: set[str] = set()
        connection = self.session.connection()
        for kind, values in by_kind.items():
            rows = writes.select_by_key(
                connection, table="identities", columns="value, customer_id, origin_customer_id",
                first=("kind", kind), second="value", values=values,
            )
            for value, customer_id, origin in rows:
                self.owner[(kind, value)] = (customer_id, origin)
                owners.add(customer_id)
        for key in missing:
            self.owner.setdefault(key, None)
        new_owners = [c for c in owners if c not in self.exclusive]
        for customer_id in new_owners:
            self.exclusive[customer_id] = {}
        # By customer only: given the kind too, SQLite may pick the (kind, value) index and scan.
        rows = writes.select_in(
            connection, "SELECT customer_id, kind, value FROM identities WHERE customer_id IN :values", new_owners
        )
        for customer_id, kind, value in rows:
            if kind in self.exclusive_kinds:
                self.exclusive[customer_id][kind] = value

    def alias_key(self, previous_id: str) -> Key:
        """Segment's ``previousId`` is an earlier user id if one is known, else an anonymous id."""
        as_user = ("user_id", previous_id)
        self.prefetch([as_user, ("anonymous_id", previous_id)])
        return as_user if self.owner[as_user] else ("anonymous_id", previous_id)

    # -- resolving -------------------------------------------------------------------------

    def resolve(self, obs: Observation) -> Resolution:
        """The profile this observation is about; links, creates or merges as the rules say."""
        keys = by_precedence(obs.identities)
        self.prefetch(keys)
        wanted = {k: v for k, v in keys if k in self.exclusive_kinds}
        owners: list[tuple[str, Key]] = []
        for key in keys:
            owned = self.owner[key]
            if owned and all(owned[0] != c for c, _ in owners):
                owners.append((owned[0], key))

        target: str | None = None
        for key in keys:  # rule 2
            owned = self.owner[key]
            if key[0] in self.exclusive_kinds and owned:
                target = owned[0]
                break
        refused: list[tuple[str, Key, list[str]]] = []
        for customer_id, via in owners:  # rule 3
            if customer_id == target:
                continue
            wanted_now = {**wanted, **(self.exclusive.get(target, {}) if target else {})}
            conflicts = merges.conflicting_kinds(self.exclusive.get(customer_id, {}), wanted_now)
            if conflicts:
                refused.append((customer_id, via, conflicts))
            elif target is None:
                target = customer_id
            else:
                target = self._merge(target, customer_id, via, obs)

        created = False
        if target is None:  # rule 4
            target = self._create()
            created = True
        if refused:
            self.flush()  # the refusal row refers to the profile, which must exist first
        for customer_id, via, conflicts in refused:
            merges.record_refusal(
                self.session, survivor_id=target, merged_id=customer_id, conflicts=conflicts,
                trigger_identity=f"{via[0]}:{via[1]}", actor=self.actor,
                source_id=obs.source_id, message_id=obs.message_id,
            )
        mine = self.exclusive.setdefault(target, {})
        for key in keys:
            if self.owner[key] is None and mine.get(key[0], key[1]) == key[1]:
                self._attach(key, target, obs)
        if obs.previous is not None:
            target = self._link_previous(target, obs.previous, obs)
        # The event's origin is where its strongest identity on this profile first belonged.
        origin = next(
            (owned[1] for key in keys if (owned := self.owner[key]) and owned[0] == target), target
        )
        if obs.traits:
            pending = self._traits.setdefault(target, {})
            when = iso(obs.at)
            for name, value in obs.traits.items():
                if name not in pending or pending[name][1] <= when:
                    pending[name] = (value, when)
        return Resolution(target, origin, created)

    def _link_previous(self, target: str, previous: Key, obs: Observation) -> str:
        """Alias: the earlier identity joins the profile, by merge if it has one of its own."""
        self.prefetch([previous])
        owned = self.owner[previous]
        if owned is None:
            if self.exclusive.get(target, {}).get(previous[0], previous[1]) == previous[1]:
                self._attach(previous, target, obs)
            return target
        if owned[0] == target:
            return target
        conflicts = merges.conflicting_kinds(self.exclusive.get(owned[0], {}), self.exclusive.get(target, {}))
        if not conflicts:
            return self._merge(target, owned[0], previous, obs)
        self.flush()
        merges.record_refusal(
            self.session, survivor_id=target, merged_id=owned[0], conflicts=conflicts,
            trigger_identity=f"{previous[0]}:{previous[1]}", actor=self.actor,
            source_id=obs.source_id, message_id=obs.message_id,
        )
        return target

    def _create(self) -> str:
        customer_id = new_id("cus")
        now = utcnow()
        self._new_customers[customer_id] = {
            "id": customer_id, "traits": {}, "trait_times": {}, "created_at": now, "updated_at": now,
        }
        self.exclusive[customer_id] = {}
        return customer_id

    def _attach(self, key: Key, customer_id: str, obs: Observation) -> None:
        self.owner[key] = (customer_id, customer_id)
        if key[0] in self.exclusive_kinds:
            self.exclusive.setdefault(customer_id, {})[key[0]] = key[1]
        self._new_identities.append({
            "customer_id": customer_id, "origin_customer_id": customer_id, "kind": key[0],
            "value": key[1], "linked_via": obs.linked_via, "source_id": obs.source_id,
            "message_id": obs.message_id, "created_at": utcnow(),
        })

    def _merge(self, a: str, b: str, via: Key, obs: Observation) -> str:
        survivor, merged = merges.choose_survivor(a, b, self.exclusive)
        self.flush()
        record = merges.merge_customers(
            self.session, survivor_id=survivor, merged_id=merged, reason=obs.linked_via,
            explanation=f"{obs.linked_via} call carried {via[0]} {via[1]}, which links both profiles",
            actor=self.actor, exclusive_kinds=self.exclusive_kinds,
            trigger_identity=f"{via[0]}:{via[1]}", source_id=obs.source_id, message_id=obs.message_id,
        )
        self.merges.append(record.id)
        self.merged_into[merged] = survivor
        for key, owned in self.owner.items():
            if owned and owned[0] == merged:
                self.owner[key] = (survivor, owned[1])
        self.exclusive[survivor] = {**self.exclusive.pop(merged, {}), **self.exclusive.get(survivor, {})}
        return survivor

    def survivor_of(self, customer_id: str) -> str:
        """Where a profile this resolver saw ended up after its merges."""
        while customer_id in self.merged_into:
            customer_id = self.merged_into[customer_id]
        return customer_id

    # -- writing ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Write new profiles, identities and coalesced trait changes (a few executemany calls)."""
        connection = self.session.connection()
        for customer_id, row in self._new_customers.items():
            if customer_id in self._traits:
                _fold_traits(row, self._traits.pop(customer_id))
        if self._new_customers:
            writes.insert_customers(connection, list(self._new_customers.values()))
            self._new_customers.clear()
        if self._new_identities:
            writes.insert_identities(connection, self._new_identities)
            self._new_identities.clear()
        if self._traits:
            updates = []
            now = utcnow()
            for cid, (traits, times) in writes.profile_traits(connection, list(self._traits)).items():
                row = {"id": cid, "traits": traits, "trait_times": times}
                if _fold_traits(row, self._traits[cid]):
                    row["updated_at"] = now
                    updates.append(row)
            self._traits.clear()
            if updates:
                writes.update_profiles(connection, updates)


def _fold_traits(row: dict[str, Any], pending: dict[str, tuple[Any, str]]) -> bool:
    """Apply pending trait values newer than the stored ones; refresh typed columns. Changed?"""
    traits, times = row["traits"], row["trait_times"]
    changed = False
    for name, (value, when) in pending.items():
        # A value seen again later is re-asserted: its newer time matters when profiles merge.
        stored = times.get(name, "")
        if when >= stored and (traits.get(name), stored) != (value, when):
            traits[name], times[name] = value, when
            changed = True
    if changed:
        columns = typed_columns(traits)
        for column in TYPED_COLUMNS:
            row[column] = columns.get(column)
        row["search_name"] = search_name(row.get("first_name"), row.get("last_name"))
    return changed
