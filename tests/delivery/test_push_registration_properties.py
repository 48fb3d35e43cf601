"""Push registrations under any sequence of registering, moving, unregistering and expiring: every
registration belongs to exactly one customer (its identity's owner), that customer lists it, and
the recipient look-up only ever names a registration its customer holds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.database import empty_database

TOKENS = ("tok-a", "tok-b", "tok-c")
PEOPLE = 3

operations = st.lists(st.tuples(st.sampled_from(["register", "unregister", "expire"]), st.integers(0, PEOPLE - 1),
                                st.sampled_from(TOKENS)), min_size=1, max_size=12)


@pytest.mark.usefixtures("database_url")
@settings(max_examples=40, deadline=None)
@given(operations)
def test_every_registration_has_one_owner_who_lists_it(steps: list[tuple[str, int, str]]) -> None:
    from sqlalchemy import select

    from trato.core.db import unit_of_work
    from trato.customers import service as customers
    from trato.delivery import push_devices
    from trato.delivery.errors import InvalidSend, PushRegistrationNotFound
    from trato.delivery.models import PushRegistration

    empty_database()
    with unit_of_work() as s:
        people = [customers.create_customer(s, traits={}, actor="test", identities=[]).id for _ in range(PEOPLE)]
    owner: dict[str, int] = {}  # the model: token → who holds it
    for action, who, token in steps:
        with unit_of_work() as s:
            if action == "register":
                push_devices.register(s, customer_id=people[who], platform="fcm", token=token, actor="test")
                owner[token] = who
            elif action == "unregister":
                ids = {r.token: r.id for r in push_devices.registrations_of(s, people[who])}
                if token in ids:
                    push_devices.unregister(s, customer_id=people[who], registration_id=ids[token], actor="test")
                    del owner[token]
                else:
                    with pytest.raises(PushRegistrationNotFound):
                        push_devices.unregister(s, customer_id=people[who], registration_id="pdev_NOPE", actor="t")
        if action == "expire":
            with unit_of_work() as s:
                found = s.scalar(select(PushRegistration.id).where(PushRegistration.token == token))
            if found is not None:
                assert push_devices.forget(registration_id=found, provider="fcm", reason="test")
            owner.pop(token, None)

        recipients: list[tuple[str, set[str]]] = []
        with unit_of_work() as s:
            for n, person in enumerate(people):
                listed = {r.token for r in push_devices.registrations_of(s, person)}
                assert listed == {t for t, o in owner.items() if o == n}
                try:
                    recipients.append((push_devices.recipient_for(s, customer_id=person, platforms=("fcm",)), listed))
                except InvalidSend:
                    assert not listed
            rows: list[Any] = list(s.scalars(select(PushRegistration)))
            assert {r.token for r in rows} == set(owner)
            for row in rows:
                assert customers.owner_of(s, kind="device_token", value=row.id) == people[owner[row.token]]
        for recipient, listed in recipients:  # outside the transaction: adapters read in their own
            assert push_devices.target(recipient).token in listed  # type: ignore[union-attr]
