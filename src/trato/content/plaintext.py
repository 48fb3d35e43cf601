"""The plain-text part of an e-mail, written from its HTML when the author wrote none.

Paragraphs, headings, rows and list items become lines; links read "text (url)" (just the
URL when the text is the URL, the address for ``mailto:``); images give their alt text;
what a reader never sees (head, style, script, ``display:none`` such as the preheader,
Outlook-only conditional comments) is left out. Jinja tags in the HTML stay as text, so the
text part of a compiled template is itself a template.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "source", "track", "wbr"})
SKIPPED = frozenset({"head", "title", "style", "script", "noscript", "template", "svg"})
BLOCK = frozenset({"address", "article", "aside", "blockquote", "center", "dd", "div", "dl",
                   "dt", "fieldset", "figcaption", "figure", "footer", "form", "header",
                   "main", "nav", "ol", "pre", "section", "table", "tbody", "thead", "tfoot",
                   "tr", "ul"})
PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "hr"})
_HIDDEN_RE = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all|visibility\s*:\s*hidden", re.I)
_LINE, _PARAGRAPH = "\x00", "\x01"  # block edges: one line break, or a blank line, however many
_BREAKS_RE = re.compile(r"[ \t\r\n\u00a0]*[\x00\x01][\x00\x01 \t\r\n\u00a0]*")
_SPACE_RE = re.compile(r"[ \t\r\n\f\u00a0\u200c\u200b\u034f\u00ad]+")


class _TextWriter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.stack: list[str] = []
        self.hidden_at: int | None = None  # depth of the element that hides its content
        self.links: list[tuple[str, int]] = []  # (href, index in parts where its text starts)

    def _hidden(self) -> bool:
        return self.hidden_at is not None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag not in VOID:
            self.stack.append(tag)
            if not self._hidden() and (tag in SKIPPED or _HIDDEN_RE.search(attributes.get("style", ""))):
                self.hidden_at = len(self.stack)
        if self._hidden():
            return
        if tag == "br":
            self.parts.append("\n")
        elif tag in PARAGRAPH:
            self.parts.append(_PARAGRAPH)
        elif tag in BLOCK:
            self.parts.append(_LINE)
        elif tag in ("td", "th"):
            self.parts.append(" ")
        if tag == "li":
            self.parts.append(_LINE + "- ")
        elif tag == "img" and attributes.get("alt", "").strip():
            self.parts.append(attributes["alt"].strip())
        elif tag == "a":
            self.links.append((attributes.get("href", "").strip(), len(self.parts)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.stack:
            return
        while self.stack:
            depth = len(self.stack)
            top = self.stack.pop()
            if self.hidden_at is not None and depth <= self.hidden_at:
                self.hidden_at = None
            elif not self._hidden():
                self._close(top)
            if top == tag:
                break

    def _close(self, tag: str) -> None:
        if tag in PARAGRAPH:
            self.parts.append(_PARAGRAPH)
        elif tag in BLOCK:
            self.parts.append(_LINE)
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            text = _SPACE_RE.sub(" ", "".join(self.parts[start:])).strip()
            shown = href.removeprefix("mailto:") if href.startswith("mailto:") else href
            if href and not href.startswith("#") and shown != text:
                self.parts.append(f" ({shown})" if text else shown)

    def handle_data(self, data: str) -> None:
        if not self._hidden():
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML e-mail, links written as "text (url)"."""
    writer = _TextWriter()
    writer.feed(html)
    writer.close()
    text = _BREAKS_RE.sub(lambda m: "\n\n" if _PARAGRAPH in m.group(0) else "\n",
                          "".join(writer.parts))
    lines = []
    for line in text.split("\n"):
        lines.append(_SPACE_RE.sub(" ", line).strip())
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
