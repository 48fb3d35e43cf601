"""Bulk consent import from CSV: `trato consents import FILE`."""

from __future__ import annotations

from typer.testing import CliRunner

from trato.core.db import new_session
from trato.policy import service

CSV = """customer_id,email,phone,channel,purpose,topic,state,at,wording,ip
,ana@example.com,,email,marketing,newsletter,granted,2025-11-02T10:00:00Z,signup-v2,198.51.100.7
,,+34 612 345 678,sms,marketing,,denied,,,
,ana@example.com,,email,gossip,,granted,,,
,nobody@example.com,,email,marketing,,granted,,,
,ana@example.com,,email,marketing,,maybe,,,
,ana@example.com,,email,marketing,,granted,yesterday,,
,,,email,marketing,,granted,,,
"""


def test_import_consents_from_csv(defaults, make_customer, tmp_path):
    from trato.cli import app

    cid = make_customer()
    path = tmp_path / "consents.csv"
    path.write_text(CSV)
    result = CliRunner().invoke(app, ["consents", "import", str(path)])
    assert result.exit_code == 1, result.output  # some rows are bad
    assert "read 7 rows: 2 stored, 0 already so, 5 rejected" in result.output
    for line, code in ((4, "unknown_purpose"), (5, "customer_not_found"), (6, "invalid_consent_state"),
                       (7, "invalid_time"), (8, "customer_missing")):
        assert f"line {line}: {code}" in result.output
    with new_session(readonly=True) as s:
        (newest, oldest) = service.consent_history(s, customer_id=cid)
    assert (oldest.channel, oldest.topic, oldest.state, oldest.source) == ("email", "newsletter", "granted", "import")
    assert oldest.proof == {"wording": "signup-v2", "ip": "198.51.100.7"} and oldest.at.year == 2025
    assert (newest.channel, newest.state) == ("sms", "denied")

    again = CliRunner().invoke(app, ["consents", "import", str(path)])
    assert "2 stored" not in again.output and "0 stored, 2 already so" in again.output


def test_a_file_without_the_needed_columns(defaults, tmp_path):
    from trato.cli import app

    path = tmp_path / "bad.csv"
    path.write_text("email,state\nana@example.com,granted\n")
    result = CliRunner().invoke(app, ["consents", "import", str(path)])
    assert result.exit_code == 1 and "missing_columns" in result.output and "channel, purpose" in result.output
