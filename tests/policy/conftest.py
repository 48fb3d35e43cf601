"""Fixtures of the contact-policy tests: the default purposes and customers to decide about."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def defaults(database_url: str) -> None:
    """The default purposes, topics, quiet hours and marketing cap (the tables are emptied per test)."""
    from trato.core.db import unit_of_work
    from trato.policy import service

    with unit_of_work() as s:
        service.install_defaults(s)


@pytest.fixture
def make_customer(database_url: str) -> Callable[..., str]:
    """A stored customer with the given identities and traits; returns the id."""
    from trato.core.db import unit_of_work
    from trato.customers import service

    def make(email: str | None = "ana@example.com", phone: str | None = "+34612345678", **traits: Any) -> str:
        identities = [(k, v) for k, v in (("email", email), ("phone", phone)) if v]
        with unit_of_work() as s:
            return service.create_customer(s, traits=traits, identities=identities, actor="test").id

    return make
