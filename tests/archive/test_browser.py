"""The archive in a real browser: find a message, see exactly what the customer saw, download proof."""

from __future__ import annotations

import pytest

from tests.archive.conftest import ANA, PDF, archive_one

pytestmark = pytest.mark.browser


def test_search_open_an_email_see_it_styled_and_download_a_letter(page, admin_token, session):
    from playwright.sync_api import expect

    email = archive_one(session, message_id="m-1", parts={
        "subject": "Tu factura de noviembre",
        "html": '<html lang="es"><body><h1 id="hello" style="color: rgb(204, 0, 0)">Hola Ana</h1>'
                '<style>p { font-size: 22px }</style><p id="amount">Importe: 39,90 €</p>'
                '<img id="pixel" src="https://tracker.example.com/open.gif" alt="">'
                "<script>document.title = 'ran'</script></body></html>",
        "text": "Hola Ana. Importe: 39,90 €"})
    archive_one(session, channel="sms", recipient=ANA["phone"])
    letter = archive_one(session, channel="letter", recipient="Calle Mayor 1, Madrid", parts={"pdf": PDF})
    session.commit()

    page.goto("/")
    page.get_by_label("Token de administrador, editor o lector").fill(admin_token)
    page.get_by_role("button", name="Entrar con el token").click()
    page.get_by_role("link", name="Archivo").click()
    expect(page.get_by_role("heading", name="Archivo", level=1)).to_be_visible()
    page.get_by_label("Canal").select_option("email")
    page.get_by_role("button", name="Buscar").click()
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(ANA["email"])

    rows.first.get_by_role("link", name=str(email.sequence), exact=True).click()
    page.wait_for_url(f"**/archive/{email.id}")
    expect(page.locator("#content")).to_contain_text("Tu factura de noviembre")
    frame = page.frame_locator("iframe.email-frame")
    expect(frame.locator("#hello")).to_have_text("Hola Ana")
    # The e-mail's own inline styles apply (its policy allows them); its script never runs.
    expect(frame.locator("#hello")).to_have_css("color", "rgb(204, 0, 0)")
    expect(frame.locator("#amount")).to_have_css("font-size", "22px")
    expect(frame.locator("#pixel")).to_have_js_property("naturalWidth", 0)
    expect(page.locator("#proof")).to_contain_text(email.content_sha256)

    page.screenshot(path="/tmp/trato-archive-entry.png", full_page=True)
    page.goto(f"/archive/{letter.id}")
    with page.expect_download() as caught:
        page.get_by_role("link", name="Descargar PDF").click()
    download = caught.value
    assert download.suggested_filename == f"{letter.id}-pdf.pdf"
    assert open(download.path(), "rb").read() == PDF
    # The framed e-mail tried to fetch its tracking pixel and run its script: both were refused.
    blocked = " ".join(page.blocked_in_email)
    assert "tracker.example.com" in blocked and "allow-scripts" in blocked
