"""Letters: A4 PDF with the address in the envelope window, page numbers, PDF/A, tagged,
reproducible bytes, nothing fetched, page images for the preview."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import threading
import zlib
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pypdfium2
import pypdfium2.raw as pdfium_c
import pytest
from PIL import Image

from trato.content.letter import page_images, render_letter
from trato.core.errors import InvalidInput

LETTER = {
    "language": "es",
    "title": "Su factura de noviembre",
    "address_lines": ["Ana García López", "Calle Mayor 1, 3º B", "28013 Madrid"],
    "letterhead_html": '<div style="padding: 12mm 20mm 0 25mm; font-size: 16pt">'
                       "Energía Ejemplo S.A.</div>",
    "sender_line": "Energía Ejemplo S.A. · Castellana 1 · 28046 Madrid",
    "created": datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
}
BODY = "<h1>Su factura</h1>" + "".join(
    f"<p>Párrafo {i}: el importe de este mes es de 48,20 € y se cargará el día 5.</p>"
    for i in range(70))
MM_PER_PT = 25.4 / 72


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return render_letter(BODY, **LETTER)


def text_boxes(pdf: bytes, page_index: int, needle: str) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) in mm from the page's top-left corner of the text found."""
    document = pypdfium2.PdfDocument(pdf)
    page = document[page_index]
    height = page.get_height()
    textpage = page.get_textpage()
    found = textpage.search(needle).get_next()
    assert found, f"{needle!r} not on page {page_index + 1}"
    start, count = found
    boxes = [textpage.get_charbox(i) for i in range(start, start + count)]
    left = min(b[0] for b in boxes) * MM_PER_PT
    right = max(b[2] for b in boxes) * MM_PER_PT
    top = (height - max(b[3] for b in boxes)) * MM_PER_PT
    bottom = (height - min(b[1] for b in boxes)) * MM_PER_PT
    return left, top, right, bottom


def page_texts(pdf: bytes) -> list[str]:
    document = pypdfium2.PdfDocument(pdf)
    return [document[i].get_textpage().get_text_range() for i in range(len(document))]


def test_a4_pages_numbered_n_of_total(pdf):
    document = pypdfium2.PdfDocument(pdf)
    assert len(document) == 3
    width, height = document[0].get_size()
    assert (round(width * MM_PER_PT), round(height * MM_PER_PT)) == (210, 297)
    for number, text in enumerate(page_texts(pdf), start=1):
        assert f"{number} / 3" in text


def test_recipient_and_return_address_show_through_the_window(pdf):
    for line in LETTER["address_lines"]:
        left, top, right, bottom = text_boxes(pdf, 0, line)
        # DIN 5008 form B address zone: 20-105 mm across, 62.7-90 mm down
        assert 20 <= left and right <= 105, (line, left, right)
        assert 62.7 <= top and bottom <= 90, (line, top, bottom)
    left, top, right, bottom = text_boxes(pdf, 0, "Castellana 1")
    assert 20 <= left and right <= 105 and 45 <= top and bottom <= 62.7


def test_letterhead_first_page_only_and_body_below_the_window(pdf):
    texts = page_texts(pdf)
    assert "Energía Ejemplo S.A." in texts[0]
    assert all("Energía Ejemplo" not in t and "Ana García" not in t for t in texts[1:])
    _, top, _, bottom = text_boxes(pdf, 0, "Energía Ejemplo S.A.")
    assert bottom <= 45
    _, top, _, _ = text_boxes(pdf, 0, "Su factura")
    assert top >= 98
    _, top, _, _ = text_boxes(pdf, 1, "Párrafo")
    assert 19 <= top <= 30  # the following pages start at the 20 mm margin


def _xmp(pdf: bytes) -> str:
    for stream in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        data = stream.group(1)
        try:
            data = zlib.decompress(data)
        except zlib.error:
            pass
        if b"x:xmpmeta" in data:
            return data.decode()
    return ""


def test_pdf_a_3a_is_archival_tagged_and_has_language_and_dates(pdf):
    document = pypdfium2.PdfDocument(pdf)
    assert pdfium_c.FPDFCatalog_IsTagged(document.raw)
    metadata = document.get_metadata_dict()
    assert metadata["Title"] == "Su factura de noviembre"
    assert metadata["CreationDate"] == "D:20261127100000Z"
    xmp = _xmp(pdf)
    assert 'pdfaid:part="3"' in xmp and 'pdfaid:conformance="A"' in xmp
    assert pdf.startswith(b"%PDF-1.7")


def test_ua_and_plain_variants():
    ua = render_letter("<p>Hola</p>", **LETTER, pdf_variant="pdf/ua-1")
    assert pdfium_c.FPDFCatalog_IsTagged(pypdfium2.PdfDocument(ua).raw)
    assert 'pdfuaid:part="1"' in _xmp(ua)
    plain = render_letter("<p>Hola</p>", **LETTER, pdf_variant=None)
    assert not pdfium_c.FPDFCatalog_IsTagged(pypdfium2.PdfDocument(plain).raw)
    with pytest.raises(InvalidInput) as error:
        render_letter("<p>Hola</p>", **LETTER, pdf_variant="pdf/z-9")
    assert error.value.code == "letter.pdf_variant"


def test_same_input_same_bytes_even_in_another_process(pdf):
    assert render_letter(BODY, **LETTER) == pdf
    script = (
        "import sys, hashlib\n"
        "from tests.content.test_letter import BODY, LETTER\n"
        "from trato.content.letter import render_letter\n"
        "sys.stdout.write(hashlib.sha256(render_letter(BODY, **LETTER)).hexdigest())\n"
    )
    digest = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, timeout=60).stdout
    assert digest == hashlib.sha256(pdf).hexdigest()
    undated = {**LETTER, "created": None}
    assert render_letter("<p>x</p>", **undated) == render_letter("<p>x</p>", **undated)
    metadata = pypdfium2.PdfDocument(render_letter("<p>x</p>", **undated)).get_metadata_dict()
    assert metadata["CreationDate"] == ""


class _Counting(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).requests.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_nothing_is_fetched(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        body = (f'<link rel="stylesheet" href="{base}/x.css"><img src="{base}/logo.png">'
                f'<img src="file://{secret}"><iframe src="file://{secret}"></iframe>'
                f'<p style="background: url({base}/bg.png)">Hola</p>'
                '<img alt="dot" src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYA'
                'AAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==">')
        pdf = render_letter(body, **LETTER)
    finally:
        server.shutdown()
        server.server_close()
    assert _Counting.requests == []
    assert "TOP-SECRET" not in "".join(page_texts(pdf))
    assert "Hola" in page_texts(pdf)[0]


def test_address_is_text_not_markup_and_is_bounded():
    pdf = render_letter("<p>x</p>", **{**LETTER, "address_lines": ["<b>Ana</b> & Co", "Madrid"]})
    assert "<b>Ana</b> & Co" in page_texts(pdf)[0]
    with pytest.raises(InvalidInput) as error:
        render_letter("<p>x</p>", **{**LETTER, "address_lines": [str(i) for i in range(7)]})
    assert error.value.code == "letter.address_too_long"
    with pytest.raises(InvalidInput) as error:
        render_letter("<p>x</p>", **{**LETTER, "address_lines": [" ", ""]})
    assert error.value.code == "letter.no_address"


def test_address_that_would_not_show_in_the_window_is_refused():
    six = ["Comunidad de Propietarios", "Att. Ana García López", "Calle de Alcalá 123",
           "Escalera 2, 3º B", "28009 Madrid", "ESPAÑA"]
    assert "ESPAÑA" in page_texts(render_letter("<p>x</p>", **{**LETTER, "address_lines": six}))[0]
    too_wide = ["Ana García López",
                "Avenida de la Constitución de mil ochocientos doce, número 145, portal B",
                "41001 Sevilla", "España", "Referencia 1", "Referencia 2"]
    with pytest.raises(InvalidInput) as error:
        render_letter("<p>x</p>", **{**LETTER, "address_lines": too_wide})
    assert error.value.code == "letter.address_overflow"


def test_page_images_for_the_preview(pdf):
    images = page_images(pdf)
    assert len(images) == 3
    first = Image.open(io.BytesIO(images[0]))
    assert first.format == "PNG"
    assert abs(first.size[0] - 496) <= 1 and abs(first.size[1] - 702) <= 1  # A4 at 60 dpi
    # dark pixels where the address is (20-105 mm across, 62.7-90 mm down), none in the margin
    gray = first.convert("L")
    px = 60 / 25.4
    window = gray.crop((int(20 * px), int(62.7 * px), int(105 * px), int(90 * px)))
    margin = gray.crop((0, int(250 * px), int(20 * px), int(290 * px)))
    assert window.getextrema()[0] < 100
    assert margin.getextrema()[0] > 200
    assert page_images(pdf, dpi=30, max_pages=1)[0] != images[0]
    assert len(page_images(pdf, max_pages=2)) == 2
    assert page_images(pdf) == images
