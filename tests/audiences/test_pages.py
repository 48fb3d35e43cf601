"""The segment pages as plain forms: list, builder, preview fragment with errors that name the row,
save, snapshot, CSV upload, delete, and the segments on the customer's 360° page."""

from __future__ import annotations

import re

from tests.console.conftest import csrf_of

MADRID = {"type": "trait", "trait": "city", "op": "eq", "value": "Madrid"}


def test_build_save_and_change_a_segment_with_the_form(signed_in, people):
    page = signed_in.get("/segments/new")
    assert page.status_code == 200 and "<h1>Nuevo segmento</h1>" in page.text
    csrf = csrf_of(page.text)
    form = {"csrf": csrf, "name": "Clientes de Madrid", "kind": "dynamic", "match": "and",
            "r0_type": "trait", "r0_field": "city", "r0_op": "eq", "r0_value": "Madrid"}
    preview = signed_in.post("/segments/preview", data=form, headers={"HX-Request": "true"})
    assert re.search(r'id="segment-count">2<', preview.text), preview.text
    assert "Ana" in preview.text and "Eva" in preview.text and "Luis" not in preview.text

    broken = signed_in.post("/segments/preview", data={**form, "r1_type": "event", "r1_field": "Viewed",
                                                       "r1_days": "0"}, headers={"HX-Request": "true"})
    assert 'id="segment-problem"' in broken.text and "conditions[1]" in broken.text

    saved = signed_in.post("/segments", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    url = saved.headers["location"]
    shown = signed_in.get(url).text
    assert 'value="Clientes de Madrid"' in shown and re.search(r'id="segment-count">2<', shown)
    assert 'name="r0_field" value="city"' in shown

    # Only those who viewed the product three times: Ana.
    changed = signed_in.post(url, data={**form, "csrf": csrf_of(shown), "r1_type": "event",
                                        "r1_field": "Product Viewed", "r1_op": "gte", "r1_number": "3",
                                        "r1_days": "7", "r1_value": "product=X"}, follow_redirects=True)
    assert re.search(r'id="segment-count">1<', changed.text), changed.text
    assert signed_in.get("/segments").text.count(f'href="{url}"') == 1
    assert signed_in.get(url + "/count").text.strip() == "1"

    snap = signed_in.post(url + "/snapshots", data={"csrf": csrf_of(changed.text)}, follow_redirects=True)
    assert 'id="snapshots"' in snap.text

    # The 360° page lists the segments the customer is in now.
    assert url in signed_in.get(f"/customers/{people['Ana']}").text
    assert "En ningún segmento ahora." in signed_in.get(f"/customers/{people['Luis']}").text

    gone = signed_in.post(url + "/delete", data={"csrf": csrf_of(snap.text)}, follow_redirects=False)
    assert gone.status_code == 303 and signed_in.get(url).status_code == 404


def test_refused_saves_keep_the_form_and_say_why(signed_in, people, make_segment):
    make_segment("Clientes de Madrid", MADRID)
    page = signed_in.get("/segments/new?lang=en")
    form = {"csrf": csrf_of(page.text), "name": "Clientes de Madrid", "match": "or",
            "r0_type": "trait", "r0_field": "city", "r0_op": "eq", "r0_value": "Sevilla"}
    taken = signed_in.post("/segments", data=form)
    assert taken.status_code == 409 and "Another segment has this name" in taken.text
    assert 'name="r0_value" value="Sevilla"' in taken.text
    bad_json = signed_in.post("/segments", data={**form, "name": "Otro", "definition_json": "{not json"})
    assert bad_json.status_code == 422 and 'id="segment-problem"' in bad_json.text
    expired = signed_in.post("/segments", data={**form, "csrf": "nope", "name": "x"})
    assert expired.status_code == 403


def test_static_list_upload_from_the_page(signed_in, people, make_segment):
    sid = make_segment("Lista VIP", None, kind="static")
    page = signed_in.get(f"/segments/{sid}")
    done = signed_in.post(f"/segments/{sid}/list", data={"csrf": csrf_of(page.text)},
                          files={"file": ("vip.csv", b"email\nana@example.com\nx@y.z\n", "text/csv")})
    assert done.status_code == 200 and 'id="upload-result"' in done.text
    assert re.search(r'id="segment-count">1<', done.text)
    bad = signed_in.post(f"/segments/{sid}/list", data={"csrf": csrf_of(page.text)},
                         files={"file": ("vip.csv", b"\xff\xfe\x00\x00", "text/csv")})
    assert bad.status_code == 400


def test_viewers_see_but_cannot_change(client, people, make_segment, database_url):
    from tests.console.conftest import sign_in_with_token
    from trato.console import service
    from trato.core.db import unit_of_work

    sid = make_segment("Clientes de Madrid", MADRID)
    with unit_of_work() as s:
        _, viewer = service.create_token(s, name="viewer", role="viewer", actor="test")
    sign_in_with_token(client, viewer)
    page = client.get(f"/segments/{sid}")
    assert page.status_code == 200 and "Guardar segmento" not in page.text
    assert client.post(f"/segments/{sid}", data={"csrf": csrf_of(page.text), "name": "x"}).status_code == 403
    assert client.get("/segments/new").status_code == 403
