"""``trato archive verify``: exit status 0 when intact, 1 and the broken entry when not."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests.archive.conftest import archive_one
from trato.core.errors import TratoError


def test_verify_says_intact_then_names_the_broken_entry(session):
    from trato.cli import app
    from trato.core.db import get_engine

    entries = [archive_one(session, invoice=f"F-{i}") for i in range(3)]
    session.commit()
    runner = CliRunner()
    result = runner.invoke(app, ["archive", "verify"])
    assert result.exit_code == 0, result.output
    assert "checked 3 entries" in result.output and "intact" in result.output

    with get_engine().begin() as conn:
        conn.execute(text("UPDATE archived_messages SET language = 'en' WHERE sequence = 2"))
    result = runner.invoke(app, ["archive", "verify"])
    assert result.exit_code == 1
    assert "entry_changed" in result.output and entries[1].id in result.output and "checked 1 entries" in result.output


def test_verify_reproduce_catches_a_template_that_no_longer_gives_the_same_bytes(session, reproducer):
    from trato.archive import service
    from trato.cli import app

    archive_one(session, invoice="F-1")
    archive_one(session, invoice="F-2")
    session.commit()
    runner = CliRunner()
    assert runner.invoke(app, ["archive", "verify", "--reproduce"]).exit_code == 0
    service.register_reproducer(
        lambda s, **kw: {**reproducer(s, **kw), "text": "changed"} if kw["context"]["invoice"] == "F-2"
        else reproducer(s, **kw))
    result = runner.invoke(app, ["archive", "verify", "--reproduce"])
    assert result.exit_code == 1 and "reproduction_differs" in result.output
    assert runner.invoke(app, ["archive", "verify"]).exit_code == 0  # the chain itself is intact
    service.register_reproducer(None)
    with pytest.raises(TratoError) as missing:  # the CLI registers the content domain's; the service needs one
        service.verify(session, reproduce=True)
    assert missing.value.code == "archive_reproducer_missing"
