"""Settings, errors, health and the OpenAPI document."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from trato.core.errors import ConfigurationError
from trato.core.settings import load_settings


@pytest.mark.parametrize(("setting", "value", "named"), [
    ("database_url", "mysql://root@localhost/x", "TRATO_DATABASE_URL"),
    ("database_url", "not a url", "TRATO_DATABASE_URL"),
    ("redis_url", "http://localhost:6379", "TRATO_REDIS_URL"),
    ("base_url", "localhost:8000", "TRATO_BASE_URL"),
    ("default_timezone", "Europe/Atlantis", "TRATO_DEFAULT_TIMEZONE"),
    ("secret_key", "short", "TRATO_SECRET_KEY"),
])
def test_a_bad_setting_is_named(setting, value, named):
    with pytest.raises(ConfigurationError) as caught:
        load_settings(**{setting: value})
    assert caught.value.setting == named
    assert caught.value.message.startswith(named)


def test_postgresql_requires_a_secret_key():
    settings = load_settings(database_url="postgresql://postgres@127.0.0.1/x", secret_key=None)
    assert settings.database_url.startswith("postgresql+psycopg://")
    with pytest.raises(ConfigurationError) as caught:
        settings.resolved_secret_key()
    assert caught.value.setting == "TRATO_SECRET_KEY"


def test_cli_stops_on_bad_configuration_naming_the_setting(monkeypatch):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "trato", "db", "upgrade"],
        env={"TRATO_DATABASE_URL": "oracle://x", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "TRATO_DATABASE_URL" in result.stderr


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["details"]["ingest"] == {"backlog_requests": 0, "backlog_events": 0, "oldest_received_at": None,
                                          "oldest_age_seconds": 0.0, "failed_requests": 0}


def test_unknown_route_and_method_get_the_error_shape(client):
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = client.delete("/healthz")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_validation_errors_name_the_field(api):
    r = api.post("/api/v1/customers", json={"traits": "not an object"})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert "traits" in error["message"]


def test_openapi_document_lists_the_api(client):
    doc = client.get("/openapi.json").json()
    assert "/api/v1/customers/{customer_id}" in doc["paths"]
    assert "/v1/batch" in doc["paths"]


def test_cli_creates_tokens_and_sources(database_url):
    from trato.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["tokens", "create", "--name", "ops", "--role", "admin"])
    assert result.exit_code == 0, result.output
    assert "trt_" in result.output
    result = runner.invoke(app, ["sources", "create", "Tiendas", "--channel", "store"])
    assert result.exit_code == 0, result.output
    assert "wk_" in result.output
    result = runner.invoke(app, ["tokens", "create", "--name", "x", "--role", "root"])
    assert result.exit_code != 0


def test_datetimes_bound_many_times_over_come_back_as_written(database_url):
    """Bulk writes repeat one moment across rows (bound once on SQLite): every row still gets its own."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import Column, Integer, MetaData, Table, insert, select

    from trato.core.db import UTCDateTime, get_engine

    table = Table("test_moments", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime))
    engine = get_engine()
    table.create(engine)
    try:
        now = datetime(2026, 3, 1, 18, 30, 0, 250, tzinfo=timezone.utc)
        madrid = timezone(timedelta(hours=1))
        values = [now, now, now, now + timedelta(microseconds=1), None, now, now.astimezone(madrid),
                  datetime(2026, 3, 1, 18, 30, tzinfo=timezone.utc), now]
        with engine.begin() as conn:
            conn.execute(insert(table), [{"id": i, "at": v} for i, v in enumerate(values)])
            found = [at for _, at in conn.execute(select(table.c.id, table.c.at).order_by(table.c.id))]
        assert found == values
    finally:
        table.drop(engine)


def test_rows_inserted_through_the_driver_read_back_as_sqlalchemy_would_have_written_them(database_url):
    """writes.insert_many (the hot bulk writes) against SQLAlchemy's own insert of the same rows:
    datetimes in any zone, JSON (None included), booleans, bytes and NULLs come back the same."""
    from datetime import datetime, timedelta, timezone

    import pytest
    from sqlalchemy import Boolean, Column, Integer, LargeBinary, MetaData, String, Table, insert, select

    from trato.core.db import JSONType, UTCDateTime, get_engine
    from trato.customers import writes

    table = Table("test_driver_rows", MetaData(), Column("id", Integer, primary_key=True),
                  Column("name", String(20)), Column("at", UTCDateTime), Column("data", JSONType),
                  Column("flag", Boolean), Column("blob", LargeBinary), Column("kind", String(10), default="x"))
    engine = get_engine()
    table.create(engine)
    try:
        madrid = timezone(timedelta(hours=2))
        rows = [{"name": "ana", "at": datetime(2026, 3, 1, 18, 30, 0, 250, tzinfo=timezone.utc),
                 "data": {"a": [1, "dos", None], "ñ": True}, "flag": True, "blob": b"\x00\xff", "kind": "a"},
                {"name": None, "at": datetime(2026, 3, 1, 20, 30, tzinfo=madrid), "data": None, "flag": False,
                 "blob": None, "kind": "b"},
                {"name": "luis", "at": None, "data": [], "flag": None, "blob": b"", "kind": "c"}]
        with engine.begin() as conn:
            conn.execute(insert(table), [{"id": i, **r} for i, r in enumerate(rows)])
            writes.insert_many(conn, table, [{"id": 10 + i, **r} for i, r in enumerate(rows)])
            found = {i: tuple(rest) for i, *rest in conn.execute(
                select(table.c.id, table.c.name, table.c.at, table.c.data, table.c.flag, table.c.blob, table.c.kind))}
            raw = dict(conn.execute(select(table.c.id, table.c.data.is_(None))).all())
        for i in range(len(rows)):
            assert found[10 + i] == found[i]
            assert raw[10 + i] == raw[i]  # JSON None is stored alike (JSON null, not SQL NULL)
        assert found[1][1] == datetime(2026, 3, 1, 18, 30, tzinfo=timezone.utc)
        with engine.begin() as conn, pytest.raises(ValueError, match="kind"):
            writes.insert_many(conn, table, [{"id": 99, "name": "sin tipo"}])  # a default it would lose
    finally:
        table.drop(engine)
