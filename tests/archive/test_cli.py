"""``trato archive verify``: exit status 0 when intact, 1 and the broken entry when not."""

from __future__ import annotations

from sqlalchemy import text
from typer.testing import CliRunner

from tests.archive.conftest import archive_one


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
