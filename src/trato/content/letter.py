"""Printed letters and e-letters: HTML rendered to an A4 PDF with WeasyPrint, and page previews.

Interface (stable; the content domain calls these):

- ``render_letter(html_body, *, language, title, address_lines, letterhead_html, sender_line,
  pdf_variant="pdf/a-3a", created=None) -> bytes``: the letter as PDF bytes.
- ``page_images(pdf, *, dpi=60, max_pages=None) -> list[bytes]``: one PNG per page for the
  preview (PDFium through pypdfium2).

Layout (DIN 5008 form B, for DL, C6/5 and C5 window envelopes - window 90 x 45 mm, 20 mm from
the left edge; mm measured from the page's top-left corner):

- letterhead: first page only, 0-45 mm from the top, full width (``letterhead_html``);
- address field: 20 mm from the left, 45 mm from the top, 85 mm wide, 45 mm tall:
  the return address (``sender_line``, 7 pt) sits at the foot of the 17.7 mm
  "Vermerkzone" (45-62.7 mm) and the recipient (``address_lines``, at most 6, 10 pt) in the
  27.3 mm below it (62.7-90 mm), so both show through the window; an address that does
  not fit there (too many or too long lines) is refused with ``letter.address_overflow``
  - checked on the PDF itself - rather than printed where the post cannot read it;
- body: from 98.46 mm on the first page, 20 mm on the following ones; 25 mm left and
  20 mm right margins; page numbers "1 / 3" bottom right in every page's 12.5 mm footer;
- fold marks at 105 and 210 mm and a punch mark at 148.5 mm on the left edge (first page).

Archival and accessibility: ``pdf_variant`` is any of WeasyPrint's variants; the default
"pdf/a-3a" is PDF/A-3 level A, which is archival AND tagged (structure tree, reading order,
language): what print houses and screen readers both accept. "pdf/ua-1" (tagged, PDF 1.7)
and "pdf/a-3b" are also offered; ``None`` writes a plain PDF.

Reproducible: the same inputs give the same bytes. The PDF's dates come only from
``created`` (the letter's own date, part of what is archived), its file identifier is a hash
of the content, and fonts are subset deterministically. Nothing is fetched: only ``data:``
URLs load (embed the logo), so a template can neither reach the network nor read files.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from datetime import UTC, datetime

import pypdfium2
from weasyprint import HTML
from weasyprint.pdf import VARIANTS
from weasyprint.urls import URLFetcher

from trato.core.errors import InvalidInput

MAX_ADDRESS_LINES = 6
FIRST_PAGE_BODY_TOP_MM = 98.46
LEFT_MARGIN_MM = 25
PDF_VARIANTS = tuple(VARIANTS)
WINDOW_MM = (20, 62.7, 105, 90)  # recipient zone: left, top, right, bottom from the top-left

LETTER_CSS = f"""
@page {{
  size: A4;
  margin: 20mm 20mm 25mm {LEFT_MARGIN_MM}mm;
  @bottom-right {{ content: counter(page) " / " counter(pages); font-size: 8pt;
                   color: #333; vertical-align: top; padding-top: 6mm; }}
}}
@page :first {{ margin-top: {FIRST_PAGE_BODY_TOP_MM}mm; }}
html {{ font-family: "Liberation Sans", "DejaVu Sans", sans-serif; font-size: 10pt;
        line-height: 1.35; color: #000; }}
body {{ margin: 0; }}
/* the first page's top: placed in page coordinates by undoing the first page's margins */
.letter-top {{ position: absolute; top: -{FIRST_PAGE_BODY_TOP_MM}mm; left: -{LEFT_MARGIN_MM}mm;
              width: 210mm; height: {FIRST_PAGE_BODY_TOP_MM}mm; }}
.letterhead {{ position: absolute; top: 0; left: 0; width: 210mm; height: 45mm;
               overflow: hidden; }}
.address-field {{ position: absolute; top: 45mm; left: 20mm; width: 85mm; height: 45mm; }}
.return-address {{ position: absolute; top: 0; left: 0; width: 85mm; height: 17.7mm;
                   display: flex; flex-direction: column; justify-content: flex-end;
                   font-size: 7pt; line-height: 1.2; overflow: hidden; }}
.recipient {{ position: absolute; top: 17.7mm; left: 0; width: 85mm; height: 27.3mm;
              font-style: normal; font-size: 10pt; line-height: 4.23mm; }}
.mark {{ position: absolute; left: 4mm; width: 5mm; border-top: 0.3pt solid #000; height: 0; }}
"""


def _document(html_body: str, *, language: str, title: str, address_lines: Sequence[str],
              letterhead_html: str, sender_line: str, created: datetime | None) -> str:
    dates = ""
    if created is not None:
        stamp = created.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        dates = (f'<meta name="dcterms.created" content="{stamp}">'
                 f'<meta name="dcterms.modified" content="{stamp}">')
    recipient = "<br>".join(html.escape(line) for line in address_lines)
    marks = "".join(f'<div class="mark" style="top: {mm}mm"></div>' for mm in (105, 148.5, 210))
    return (
        f'<!DOCTYPE html><html lang="{html.escape(language)}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>{dates}<style>{LETTER_CSS}</style></head><body>"
        f'<div class="letter-top"><header class="letterhead">{letterhead_html}</header>'
        f'<div class="address-field"><div class="return-address"><div>'
        f"{html.escape(sender_line)}</div></div>"
        f'<address class="recipient">{recipient}</address></div>{marks}</div>'
        f'<main class="letter-body">{html_body}</main></body></html>'
    )


def render_letter(
    html_body: str,
    *,
    language: str,
    title: str,
    address_lines: Sequence[str],
    letterhead_html: str,
    sender_line: str,
    pdf_variant: str | None = "pdf/a-3a",
    created: datetime | None = None,
) -> bytes:
    """Render a letter to an A4 PDF with the recipient in the envelope window (see above)."""
    lines = [line.strip() for line in address_lines if line.strip()]
    if not lines:
        raise InvalidInput("A letter needs a postal address.", code="letter.no_address")
    if len(lines) > MAX_ADDRESS_LINES:
        raise InvalidInput(
            f"A postal address has at most {MAX_ADDRESS_LINES} lines in the envelope window.",
            code="letter.address_too_long", details={"lines": len(lines)})
    if pdf_variant is not None and pdf_variant not in VARIANTS:
        raise InvalidInput(f"Unknown PDF variant {pdf_variant!r}.", code="letter.pdf_variant",
                           details={"allowed": list(PDF_VARIANTS)})
    source = _document(html_body, language=language, title=title, address_lines=lines,
                       letterhead_html=letterhead_html, sender_line=sender_line, created=created)
    fetcher = URLFetcher(allowed_protocols={"data"})
    document = HTML(string=source, url_fetcher=fetcher, base_url="data:,").render()
    pdf = document.write_pdf(pdf_variant=pdf_variant, pdf_identifier=True)
    _check_window(pdf, lines)
    return pdf


def _check_window(pdf: bytes, lines: list[str]) -> None:
    """Refuse a letter whose address does not fit the window: the post would not deliver it."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        page = document[0]
        mm, height = 72 / 25.4, page.get_height()
        left, top, right, bottom = (WINDOW_MM[0] * mm - 0.5, height - WINDOW_MM[1] * mm + 0.5,
                                    WINDOW_MM[2] * mm + 0.5, height - WINDOW_MM[3] * mm - 0.5)
        textpage = page.get_textpage()
        inside = []
        for index in range(textpage.count_chars()):
            x0, y0, x1, y1 = textpage.get_charbox(index)
            if left <= x0 and x1 <= right and bottom <= y0 and y1 <= top:
                inside.append(textpage.get_text_range(index, 1))
    finally:
        document.close()
    if "".join("".join(inside).split()) != "".join("".join(lines).split()):
        raise InvalidInput("The postal address does not fit the envelope window: at most "
                           f"{MAX_ADDRESS_LINES} lines of about 45 characters.",
                           code="letter.address_overflow", details={"lines": lines})


def page_images(pdf: bytes, *, dpi: int = 60, max_pages: int | None = None) -> list[bytes]:
    """PNG images of a PDF's pages for previews (at 60 dpi an A4 page is about 496 x 702 px)."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        images = []
        for index in range(len(document) if max_pages is None else min(max_pages, len(document))):
            page = document[index]
            try:
                bitmap = page.render(scale=dpi / 72)
                buffer = io.BytesIO()
                bitmap.to_pil().save(buffer, format="PNG", optimize=False)
                images.append(buffer.getvalue())
            finally:
                page.close()
        return images
    finally:
        document.close()
