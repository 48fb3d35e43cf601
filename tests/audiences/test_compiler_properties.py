"""The SQL compiler against the Python oracle: random memories and random trees, on the test
database (SQLite or PostgreSQL — CI runs both, so both give the oracle's members)."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.audiences import oracle
from tests.audiences.data import NOW, store, trees, worlds
from tests.database import empty_database


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(world=worlds(), definitions=st.lists(trees, min_size=1, max_size=8))
def test_compiled_segments_have_the_oracles_members(database_url, world, definitions):
    from trato.audiences import conditions as c
    from trato.audiences import service
    from trato.core.db import new_session

    empty_database()
    store(world)
    with new_session(readonly=True) as s:
        for definition in definitions:
            tree = c.parse(definition)
            expected = oracle.members(world, tree)
            found = set(s.scalars(service.members_query(s, definition=definition, now=NOW)))
            assert found == expected, (definition, sorted(found), sorted(expected))
            live = sum(1 for x in world.customers if x["merged_into_id"] is None)
            event("some but not all live profiles match" if 0 < len(expected) < live else "all or none")
            assert service.count(s, definition=definition, now=NOW) == len(expected)
            # One customer's membership, narrowed, agrees with the whole segment's.
            for x in world.customers[:3]:
                where = service.compiler.live_filter(tree, service.context(s, now=NOW, customer_id=x["id"]))
                one = s.scalar(service.select(service.CUSTOMERS.c.id).where(*where))
                assert (one is not None) == (x["id"] in expected), (definition, x["id"])
