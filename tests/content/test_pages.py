"""Console pages of communications: inventory, the side-by-side preview, review actions, CSP."""

from __future__ import annotations

import re

from tests.console.conftest import csrf_of, sign_in_with_token
from tests.content.factory import make_communication
from tests.content.test_rendering import ALL_CHANNELS


def _seed(**extra):  # type: ignore[no-untyped-def]
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        communication = make_communication(s, content=ALL_CHANNELS, languages=["es"], channels=list(ALL_CHANNELS),
                                           actor="token:someone else", **extra)
        return communication.id


def _signed_in(client, token):  # type: ignore[no-untyped-def]
    assert sign_in_with_token(client, token).status_code == 303
    return client


def test_inventory_filters_and_exports(client, admin_token):
    _seed()
    _signed_in(client, admin_token)
    page = client.get("/communications")
    assert page.status_code == 200 and "<h1>Comunicaciones</h1>" in page.text and "Invoice ready" in page.text
    assert "Invoice ready" not in client.get("/communications?purpose=marketing").text
    assert 'href="/communications/export.csv?purpose=transactional"' in client.get(
        "/communications?purpose=transactional").text
    exported = client.get("/communications/export.csv?purpose=transactional")
    assert exported.headers["content-type"].startswith("text/csv") and "invoice-ready" in exported.text
    assert "<h1>Communications</h1>" in client.get("/communications?lang=en").text


def test_communication_page_previews_every_channel_and_reviews(client, admin_token):
    communication_id = _seed()
    _signed_in(client, admin_token)
    page = client.get(f"/communications/{communication_id}")
    assert page.status_code == 200
    html = page.text
    for channel in ALL_CHANNELS:
        assert f'id="preview-{channel}"' in html
    assert "Hola Lucía: tu factura F-2026-001 ya está disponible." in html
    assert 'sandbox="" ' in html and f"/communications/{communication_id}/frame/email?" in html
    assert "data:image/png;base64," in html
    assert "<script>" not in html

    frame_url = re.search(r'src="(/communications/[^"]+/frame/email\?[^"]+)"', html).group(1).replace("&amp;", "&")
    frame = client.get(frame_url)
    assert frame.status_code == 200 and "Hola Lucía" in frame.text
    assert "sandbox" in frame.headers["content-security-policy"]
    assert "script-src" not in frame.headers["content-security-policy"]

    csrf = csrf_of(html)
    version_id = re.search(r"/versions/(ver_[0-9A-Z]+)/submit", html).group(1)
    submitted = client.post(f"/communications/{communication_id}/versions/{version_id}/submit",
                            data={"csrf": csrf, "comment": "lista"}, follow_redirects=False)
    assert submitted.status_code == 303
    reviewing = client.get(submitted.headers["location"]).text
    warnings = re.findall(r'name="acknowledge" value="([^"]+)"', reviewing)
    if warnings:
        refused = client.post(f"/communications/{communication_id}/versions/{version_id}/approve",
                              data={"csrf": csrf}, follow_redirects=False)
        assert refused.status_code == 409 and "Confirme cada aviso" in refused.text
    approved = client.post(f"/communications/{communication_id}/versions/{version_id}/approve",
                           data={"csrf": csrf, "acknowledge": warnings}, follow_redirects=False)
    assert approved.status_code == 303
    assert "En uso" in client.get(approved.headers["location"]).text


def test_the_author_sees_no_approve_button_and_cannot_approve(client, admin_token):
    from trato.content import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        communication = make_communication(s, actor="token:test admin", content={
            "sms": {"es": {"text": "Hola"}, "en": {"text": "Hi"}}, "email": {
                "es": {"subject": "Hola", "body_html": "<html lang='es'><body><p>Hola</p></body></html>"},
                "en": {"subject": "Hi", "body_html": "<html lang='en'><body><p>Hi</p></body></html>"}}})
        service.submit(s, version_id=communication.latest_version_id, actor="token:test admin")
        ids = communication.id, communication.latest_version_id
    _signed_in(client, admin_token)
    html = client.get(f"/communications/{ids[0]}").text
    assert "/approve" not in html and "no puede aprobarla" in html
    refused = client.post(f"/communications/{ids[0]}/versions/{ids[1]}/approve", data={"csrf": csrf_of(html)})
    assert refused.status_code == 403 and "Cuatro ojos" in refused.text


def test_unknown_communication_is_a_404_page(client, admin_token):
    _signed_in(client, admin_token)
    assert client.get("/communications/com_nope").status_code == 404


def test_the_page_shows_what_changed_since_the_previous_version(client, admin_token):
    import copy

    from trato.content import service
    from trato.core.db import unit_of_work

    communication_id = _seed()
    with unit_of_work() as s:
        content = copy.deepcopy(ALL_CHANNELS)
        content["sms"]["es"]["text"] = "Hola {{ customer.first_name }}, <b>nueva</b> factura {{ data.invoice }}."
        service.save_version(s, communication_id=communication_id, content=content, actor="token:someone else")
    _signed_in(client, admin_token)
    html = client.get(f"/communications/{communication_id}").text
    assert "Cambios de v1 a v2" in html and ">sms.es.text</h3>" in html
    assert '<span class="add">+Hola {{ customer.first_name }}, &lt;b&gt;nueva&lt;/b&gt;' in html
    assert "Hola Lucía, &lt;b&gt;nueva&lt;/b&gt; factura F-2026-001." in html  # SMS text is shown, never run


def test_a_block_page_shows_who_uses_it_and_who_has_an_older_text(client, admin_token):
    from trato.content import service
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        service.create_block(s, key="firma", kind="signature", name="Firma", actor="test",
                             body={"es": "Un saludo, <b>{{ company.name }}</b>"})
        communication = make_communication(s, content={"sms": {"es": {"text": "Hola {% include 'blocks/firma' %}"}}},
                                           languages=["es"], channels=["sms"])
        service.update_block(s, block_id="firma", actor="test", body={"es": "Atentamente"})
    _signed_in(client, admin_token)
    inventory = client.get("/communications").text
    assert 'href="/communications/blocks/firma"' in inventory and "1 comunicación" in inventory
    page = client.get("/communications/blocks/firma")
    assert page.status_code == 200 and f'href="/communications/{communication.id}"' in page.text
    assert "Usa un texto anterior" in page.text and "Atentamente" in page.text
    assert client.get("/communications/blocks/nope").status_code == 404


def test_preflight_findings_are_explained_in_the_viewers_language(client, admin_token):
    from trato.core.db import unit_of_work

    with unit_of_work() as s:
        communication = make_communication(s, content={"sms": {"es": {"text": "Hola {{ cliente.nombre }}"}}},
                                           languages=["es", "en"], channels=["sms", "push"])
    _signed_in(client, admin_token)
    html = client.get(f"/communications/{communication.id}").text
    assert "La plantilla usa un nombre que ningún mensaje puede rellenar" in html
    assert "Un canal que cubre la comunicación no tiene texto" in html
    english = client.get(f"/communications/{communication.id}?lang=en").text
    assert "The template uses a name no message can fill" in english
