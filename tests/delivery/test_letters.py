"""Printed letters: PDFs batched per print house, batches closed when full or at the cut-off and
dropped — to a folder and to a real SFTP server on loopback — as one directory whose manifest,
written last, matches every PDF's SHA-256; a drop is idempotent and one cut short completes on
the next run; the print house's return file moves letters to delivered or bounced."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import orjson
import pypdfium2
import pytest

from tests.console.conftest import signed_in  # noqa: F401
from tests.fakes import sftp_server
from trato.core.errors import ConfigurationError
from trato.delivery.channels.base import OutgoingMessage
from trato.delivery.channels.letter import PrintHouse, PrintHouseSettings
from trato.delivery.letter_drop import FolderDrop


def make_pdf(pages: int) -> bytes:
    document = pypdfium2.PdfDocument.new()
    for _ in range(pages):
        document.new_page(595, 842)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def ana(database_url: str) -> str:
    from trato.core.db import unit_of_work
    from trato.customers import service as customers

    with unit_of_work() as s:
        return customers.create_customer(s, actor="test", traits={
            "first_name": "Ana", "last_name": "García", "locale": "es-ES",
            "address": {"street": "Calle Mayor 10, 3º B", "postalCode": "28013", "city": "Madrid", "country": "ES"},
        }, identities=[("user_id", "u-ana")]).id


def letter(n: int, customer_id: str, pages: int = 2) -> OutgoingMessage:
    return OutgoingMessage(message_id=f"msg_LETTER{n}", channel="letter", recipient=customer_id,
                           customer_id=customer_id, parts={"title": "Tu factura", "html": "<p>…</p>",
                                                           "pdf": make_pdf(pages)})


def folder_house(root: Path, **settings: Any) -> PrintHouse:
    return PrintHouse(PrintHouseSettings(drop=f"file://{root}", **{"batch_size": 2, **settings}))


def _manifest_matches_the_pdfs(folder: Path) -> dict[str, Any]:
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    assert manifest["letters"] == len(manifest["items"])
    for item in manifest["items"]:
        data = (folder / item["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item["sha256"]
        assert len(pypdfium2.PdfDocument(data)) == item["pages"] and len(data) == item["bytes"]
    rows = list(csv.DictReader(io.StringIO((folder / "manifest.csv").read_text())))
    assert [r["sha256"] for r in rows] == [i["sha256"] for i in manifest["items"]]
    assert not list(folder.glob(".*.part"))
    return manifest


def test_letters_fill_batches_and_a_full_batch_is_dropped_with_its_manifest(ana: str, tmp_path: Path) -> None:
    from trato.core.db import new_session
    from trato.delivery import letters

    house = folder_house(tmp_path, duplex=False, postage="priority")
    ids = [house.send(letter(n, ana, pages=n)).provider_message_id for n in (1, 2, 3)]
    full, rest = ids[0].split("/")[0], ids[2].split("/")[0]
    assert ids == [f"{full}/1", f"{full}/2", f"{rest}/1"] and full != rest
    assert house.send(letter(2, ana)).provider_message_id == f"{full}/2"  # the same message again: its first id
    report = house.run()
    assert (report.closed, report.dropped, report.failed) == ([], [full], {})
    manifest = _manifest_matches_the_pdfs(tmp_path / full)
    assert [(i["item"], i["message_id"], i["pages"], i["sides"], i["postage"]) for i in manifest["items"]] == [
        (f"{full}/1", "msg_LETTER1", 1, "simplex", "priority"), (f"{full}/2", "msg_LETTER2", 2, "simplex", "priority")]
    assert manifest["items"][0]["name"] == "Ana García"
    assert manifest["items"][0]["address"] == ["Calle Mayor 10, 3º B", "28013 Madrid"]
    assert not (tmp_path / rest).exists()  # still open
    with new_session() as s:
        batch = letters.get_batch(s, full)
        assert (batch.state, batch.location, batch.page_count) == ("dropped", str(tmp_path / full), 3)
        assert letters.get_batch(s, rest).state == "open"
    stamp = (tmp_path / full / "manifest.json").stat().st_mtime_ns
    assert house.run().dropped == []  # dropping again does nothing
    assert (tmp_path / full / "manifest.json").stat().st_mtime_ns == stamp


def test_the_open_batch_closes_at_the_cut_off(ana: str, tmp_path: Path) -> None:
    from trato.delivery import letters

    house = folder_house(tmp_path, batch_size=100, cutoff=time(16, 0))
    batch = house.send(letter(1, ana)).provider_message_id.split("/")[0]
    opened = datetime.now().astimezone()
    assert house.run(now=opened - timedelta(minutes=1)).closed == []
    next_cutoff = letters.last_cutoff(opened, time(16, 0)) + timedelta(days=1)
    report = house.run(now=next_cutoff + timedelta(seconds=1))
    assert (report.closed, report.dropped) == ([batch], [batch])
    assert house.send(letter(2, ana)).provider_message_id.split("/")[0] != batch  # a new batch opens


def test_a_drop_cut_short_before_the_manifest_stays_closed_and_completes_next_time(
        ana: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trato.core.db import new_session
    from trato.delivery import letters

    house = folder_house(tmp_path)
    batch = house.send(letter(1, ana)).provider_message_id.split("/")[0]
    house.send(letter(2, ana))
    real_put = FolderDrop.put

    def crash_at_manifest(self: FolderDrop, folder: Path, name: str, data: bytes) -> None:
        if name == "manifest.json":
            raise OSError("the machine went down")
        real_put(self, folder, name, data)

    monkeypatch.setattr(FolderDrop, "put", crash_at_manifest)
    report = house.run()
    assert report.dropped == [] and "went down" in report.failed[batch]
    assert (tmp_path / batch / "000001.pdf").exists() and not (tmp_path / batch / "manifest.json").exists()
    with new_session() as s:
        stuck = letters.get_batch(s, batch)
        assert (stuck.state, stuck.drop_attempts) == ("closed", 1) and "went down" in (stuck.last_error or "")
    monkeypatch.setattr(FolderDrop, "put", real_put)
    assert house.run().dropped == [batch]
    _manifest_matches_the_pdfs(tmp_path / batch)


@pytest.fixture(scope="session")
def sftp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sftp_server.SftpPeer]:
    peer = sftp_server.start(tmp_path_factory.mktemp("printhouse"))
    yield peer
    sftp_server.stop(peer)


def test_a_batch_is_dropped_over_sftp_and_a_cut_short_drop_completes(ana: str, sftp: sftp_server.SftpPeer) -> None:
    house = PrintHouse(PrintHouse.settings_from_url(sftp.url() + "&batch_size=2&cutoff=none"))
    assert house.check().ok
    batch = house.send(letter(1, ana)).provider_message_id.split("/")[0]
    house.send(letter(2, ana, pages=3))
    sftp.fail_manifest = 1
    failed = house.run()
    assert failed.dropped == [] and batch in failed.failed
    folder = sftp.root / "inbox" / batch
    assert (folder / "000002.pdf").exists() and not (folder / "manifest.json").exists()
    assert house.run().dropped == [batch]
    manifest = _manifest_matches_the_pdfs(folder)
    assert [i["pages"] for i in manifest["items"]] == [2, 3]
    assert any(name.endswith("manifest.json.part") for name in sftp.opened)  # written aside, then renamed


def test_an_sftp_server_with_another_host_key_gets_nothing(ana: str, sftp: sftp_server.SftpPeer,
                                                           tmp_path: Path) -> None:
    from tests.fakes.sftp_server import asyncssh

    stranger = tmp_path / "known_hosts"
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    stranger.write_text(f"[127.0.0.1]:{sftp.port} {key}\n")
    house = PrintHouse(PrintHouseSettings(drop=f"sftp://printer@127.0.0.1:{sftp.port}/inbox", key=str(sftp.client_key),
                                          known_hosts=str(stranger), batch_size=1))
    batch = house.send(letter(1, ana)).provider_message_id.split("/")[0]
    report = house.run()
    assert batch in report.failed and not (sftp.root / "inbox" / batch).exists()
    assert house.check().ok is False


def test_settings_from_one_url() -> None:
    folder = PrintHouse.settings_from_url("file:///srv/print/outbox?batch_size=250&cutoff=17:30&duplex=false")
    assert (folder.drop, folder.batch_size, folder.cutoff, folder.duplex) == (
        "file:///srv/print/outbox", 250, time(17, 30), False)
    remote = PrintHouse.settings_from_url("sftp://acme:s3cr%2Ft@print.example:2222/in?postage=registered")
    assert remote.drop == "sftp://acme@print.example:2222/in" and remote.postage == "registered"
    assert remote.password is not None and remote.password.get_secret_value() == "s3cr/t"
    assert "s3cr" not in repr(remote)
    for bad in ("ftp://print.example/in", "file:///x?postage=pigeon", "file:///x?batch_size=0", "file:///x?cutoff=25"):
        with pytest.raises(ConfigurationError):
            PrintHouse.settings_from_url(bad)


def test_a_letter_without_a_pdf_or_a_drop_is_refused_for_good(ana: str, tmp_path: Path) -> None:
    broken = OutgoingMessage(message_id="msg_X", channel="letter", recipient=ana, customer_id=ana,
                             parts={"title": "t", "html": "h", "pdf": b"not a pdf"})
    assert folder_house(tmp_path).send(broken).permanent
    assert PrintHouse().send(letter(1, ana)).permanent
    assert PrintHouse().check().ok is False


# -- through delivery and back from the print house -------------------------------------------------------

LETTER_CONTENT = {"letter": {"es": {"title": "Tu factura {{ data.invoice }}",
                                    "body_html": "<p>Hola {{ customer.first_name }}, adjuntamos tu factura.</p>"}}}


@pytest.mark.usefixtures("immediate_queue", "policy_defaults")
def test_a_letter_sent_is_batched_dropped_and_delivered_by_the_return_file(
        api: Any, ana: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tests.delivery.conftest import approve_communication
    from trato.cli import app
    from trato.core.db import unit_of_work
    from trato.delivery.channels import registry

    with unit_of_work() as s:
        communication = approve_communication(s, key="invoice-letter", content=LETTER_CONTENT, channels=["letter"],
                                              languages=["es"])
    house = folder_house(tmp_path / "outbox", batch_size=10)
    (tmp_path / "outbox").mkdir()
    previous = registry.use("letter", house)
    try:
        ids = []
        for invoice in ("F-1", "F-2"):
            sent = api.post("/api/v1/messages", json={"customer": {"id": ana}, "communication": communication.key,
                                                      "data": {"invoice": invoice}})
            assert sent.status_code < 300, sent.text
            ids.append(sent.json()["id"])
        shown = [api.get(f"/api/v1/messages/{i}").json() for i in ids]
        assert [m["state"] for m in shown] == ["accepted", "accepted"]
        batch = shown[0]["provider_message_id"].split("/")[0]
        dropped = CliRunner().invoke(app, ["letters", "drop", "--now"])
        assert dropped.exit_code == 0, dropped.output
        assert f"dropped {batch}" in dropped.output
        manifest = _manifest_matches_the_pdfs(tmp_path / "outbox" / batch)
        assert [i["message_id"] for i in manifest["items"]] == ids
        listed = CliRunner().invoke(app, ["letters", "list"])
        assert batch in listed.output and "dropped" in listed.output
        returned = tmp_path / "return.csv"
        returned.write_text("item,status,date,reason\n"
                            f"{shown[0]['provider_message_id']},delivered,2026-12-07T10:00:00Z,\n"
                            f"{shown[1]['provider_message_id']},returned,2026-12-08T10:00:00Z,addressee unknown\n"
                            f"{batch}/99,delivered,,\n")
        imported = CliRunner().invoke(app, ["letters", "import-status", str(returned)])
        assert imported.exit_code == 0, imported.output
        assert "2 applied, 0 unchanged, 1 unknown" in imported.output
        again = CliRunner().invoke(app, ["letters", "import-status", str(returned)])
        assert "0 applied, 2 unchanged" in again.output
        after = [api.get(f"/api/v1/messages/{i}").json() for i in ids]
        assert [m["state"] for m in after] == ["delivered", "bounced"]
        bad = tmp_path / "bad.csv"
        bad.write_text("item,status\nx/1,lost\n")
        refused = CliRunner().invoke(app, ["letters", "import-status", str(bad)])
        assert refused.exit_code == 1
    finally:
        registry.use("letter", previous)


def test_the_letters_page_lists_batches_in_both_languages(signed_in: Any,  # noqa: F811
                                                          ana: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    house = folder_house(tmp_path, batch_size=1)
    dropped = house.send(letter(1, ana)).provider_message_id.split("/")[0]
    house.run()
    stuck = house.send(letter(2, ana)).provider_message_id.split("/")[0]
    monkeypatch.setattr(FolderDrop, "put", lambda *a: (_ for _ in ()).throw(OSError("<b>share offline</b>")))
    house.run()
    page = signed_in.get("/letters?lang=es")
    assert page.status_code == 200 and "<h1>Cartas</h1>" in page.text
    assert dropped in page.text and stuck in page.text
    assert "en la imprenta" in page.text and "cerrado, esperando la entrega" in page.text
    assert "&lt;b&gt;share offline&lt;/b&gt;" in page.text and "<b>share offline" not in page.text
    english = signed_in.get("/letters?state=dropped&lang=en").text
    assert "at the print house" in english and dropped in english and stuck not in english
    assert signed_in.get("/letters?state=nonsense").status_code == 200


def test_the_minutely_task_drops_through_the_configured_print_house(ana: str, tmp_path: Path) -> None:
    from trato.delivery import tasks
    from trato.delivery.channels import registry

    assert tasks.drop_letter_batches.call_local() == 0  # letters go to the sandbox: nothing to drop
    house = folder_house(tmp_path, batch_size=1)
    previous = registry.use("letter", house)
    try:
        batch = house.send(letter(1, ana)).provider_message_id.split("/")[0]
        assert tasks.drop_letter_batches.call_local() == 1
        assert (tmp_path / batch / "manifest.json").exists()
    finally:
        registry.use("letter", previous)


def test_a_return_file_with_a_bad_line_changes_nothing(database_url: str) -> None:
    from trato.core.db import unit_of_work
    from trato.delivery import letters

    for rows, problem in (([{"item": "lb_1/1", "status": "lost"}], "status must be one of"),
                          ([{"item": "lb_1/1", "status": "delivered", "date": "yesterday"}], "ISO 8601")):
        with pytest.raises(letters.InvalidReturnFile, match=problem), unit_of_work() as s:
            letters.import_status(s, rows=rows)
