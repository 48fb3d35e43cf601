"""``trato segments create|list|count|export``."""

from __future__ import annotations

import csv
import io
import json

from typer.testing import CliRunner


def test_create_list_count_and_export(people, tmp_path):
    from trato.cli import app

    spec = tmp_path / "madrid.json"
    spec.write_text(json.dumps({"name": "Clientes de Madrid", "definition": {
        "type": "trait", "trait": "city", "op": "eq", "value": "Madrid"}}))
    runner = CliRunner()
    created = runner.invoke(app, ["segments", "create", str(spec)])
    assert created.exit_code == 0, created.output
    assert "Clientes de Madrid" in created.output and "2 customers" in created.output
    segment_id = created.output.split("(")[1].split(")")[0]

    listed = runner.invoke(app, ["segments", "list"])
    assert listed.exit_code == 0 and segment_id in listed.output
    assert runner.invoke(app, ["segments", "count", segment_id]).output.strip() == "2"

    exported = runner.invoke(app, ["segments", "export", segment_id])
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(exported.output)))
    assert sorted(r["first_name"] for r in rows) == ["Ana", "Eva"]
    out = tmp_path / "out.csv"
    assert runner.invoke(app, ["segments", "export", segment_id, "--output", str(out)]).exit_code == 0
    assert out.read_text().count("\n") == 3


def test_a_bad_file_is_refused_with_the_nodes_path(database_url, tmp_path):
    from trato.cli import app
    from trato.core.errors import TratoError

    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"name": "x", "definition": {"type": "and", "conditions": [
        {"type": "event", "name": "Viewed", "within_hours": 0}]}}))
    result = CliRunner().invoke(app, ["segments", "create", str(spec)])
    assert isinstance(result.exception, TratoError)
    assert result.exception.code == "invalid_segment" and "conditions[0].within_hours" in result.exception.message
