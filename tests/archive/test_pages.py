"""Console pages of the archive: search, one entry as the customer saw it, downloads, roles."""

from __future__ import annotations

import re

import pytest

from tests.archive.conftest import ANA, PDF, archive_one, sign_in_with_token


@pytest.fixture
def sent(session):  # type: ignore[no-untyped-def]
    email = archive_one(session, message_id="m-email",
                        parts={"subject": "Tu factura <F-1>", "html": '<p style="color:#c00">Hola <b>Ana</b></p>',
                               "text": "Hola Ana"})
    sms = archive_one(session, channel="sms", recipient=ANA["phone"])
    letter = archive_one(session, channel="letter", recipient="Calle Mayor 1, Madrid",
                         parts={"pdf": PDF, "address": "Ana García\nCalle Mayor 1"})
    session.commit()
    return {"email": email, "sms": sms, "letter": letter}


def test_search_lists_filters_and_pages(signed_in, sent):
    html = signed_in.get("/archive").text
    assert "<h1>Archivo</h1>" in html and 'href="/archive" aria-current="page"' in html
    assert html.count('<tr>') == 4 and ANA["phone"] in html
    only_sms = signed_in.get("/archive", params={"channel": "sms"}).text
    assert ANA["phone"] in only_sms and ANA["email"] not in only_sms
    assert "Ningún mensaje archivado" in signed_in.get("/archive", params={"customer": "cus_NOBODY"}).text
    bad = signed_in.get("/archive", params={"since": "01/02/2026"})
    assert bad.status_code == 200 and "AAAA-MM-DD" in bad.text


def test_search_pages_by_fifty(signed_in, session):
    for i in range(52):
        archive_one(session, invoice=f"F-{i}")
    session.commit()
    first = signed_in.get("/archive").text
    older = re.search(r'href="(/archive\?before=\d+)" rel="next"', first)
    assert older and first.count('<tr>') == 51
    second = signed_in.get(older.group(1).replace("&amp;", "&")).text
    assert second.count('<tr>') == 3 and 'rel="next"' not in second


def test_the_email_entry_frames_the_html_under_its_own_policy(signed_in, sent):
    entry = sent["email"]
    page = signed_in.get(f"/archive/{entry.id}")
    assert page.status_code == 200
    assert f'<iframe class="email-frame" sandbox="" src="/archive/{entry.id}/view"' in page.text
    assert "Tu factura &lt;F-1&gt;" in page.text  # the subject, escaped
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    view = signed_in.get(f"/archive/{entry.id}/view")
    assert view.text == '<p style="color:#c00">Hola <b>Ana</b></p>'
    policy = view.headers["content-security-policy"]
    assert policy.startswith("sandbox;") and "script-src" not in policy and "frame-ancestors 'self'" in policy
    assert view.headers["x-frame-options"] == "SAMEORIGIN"


def test_sms_and_letter_entries(signed_in, sent):
    sms = signed_in.get(f"/archive/{sent['sms'].id}").text
    assert 'id="message-text">Hola Ana, tu factura F-1 está lista.</div>' in sms
    letter = signed_in.get(f"/archive/{sent['letter'].id}").text
    assert f'href="/archive/{sent["letter"].id}/download?part=pdf"' in letter and "Calle Mayor 1" in letter
    pdf = signed_in.get(f"/archive/{sent['letter'].id}/download")
    assert pdf.content == PDF and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'attachment; filename="{sent["letter"].id}-pdf.pdf"'
    assert pdf.headers["content-security-policy"] == "sandbox; default-src 'none'"


def test_a_viewer_sees_the_facts_but_not_the_content(client, sent):
    from trato.console import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        _, secret = service.create_token(s, name="auditor", role="viewer", actor="test")
    sign_in_with_token(client, secret)
    page = client.get(f"/archive/{sent['email'].id}").text
    assert "necesita el rol de editor" in page and "email-frame" not in page and ANA["email"] in page
    assert client.get(f"/archive/{sent['email'].id}/view").status_code == 403
    assert client.get(f"/archive/{sent['letter'].id}/download").status_code == 403


def test_erased_and_tampered_entries_say_so(signed_in, sent):
    from sqlalchemy import text

    from trato.archive import service
    from trato.core.db import get_engine, unit_of_work

    with get_engine().begin() as conn:
        conn.execute(text("UPDATE archived_messages SET content = :c WHERE id = :i"),
                      {"c": b"x\x9c+\xc9H-J\x05\x00\x06\xd2\x02\x13", "i": sent["sms"].id})
    assert "no coincide con su SHA-256" in signed_in.get(f"/archive/{sent['sms'].id}").text
    with unit_of_work() as s:
        service.erase_customer(s, customer_id=ANA["customer_id"], actor="test")
    erased = signed_in.get(f"/archive/{sent['email'].id}").text
    assert "se borró a petición del cliente" in erased and ANA["email"] not in erased
    assert signed_in.get("/archive/arc_nope").status_code == 404


@pytest.mark.parametrize("params", [
    {"customer": "cus_\x00"}, {"communication": "\x00"}, {"before": "²"}, {"before": "99999999999999999999"},
    {"channel": "fax"}, {"until": "2026-13-45"},
])
def test_odd_search_input_never_fails(signed_in, params):
    assert signed_in.get("/archive", params=params).status_code == 200


def test_an_odd_entry_id_is_a_404_page(signed_in, database_url):
    assert signed_in.get("/archive/arc_%00").status_code == 404
    assert signed_in.get("/archive/arc_%00/download").status_code == 404
