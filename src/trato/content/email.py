"""E-mail bodies: MJML or raw HTML compiled once per template version, then checked.

Interface (stable; the content domain calls these):

- ``compile_mjml(source, *, language=None) -> str``: an MJML body with Jinja2 tags
  (``{{ }}``, ``{% %}``, ``{# #}``) becomes responsive HTML with inlined CSS and the same
  tags intact, ready to be a Jinja template. Run it ONCE per template version (it costs
  milliseconds) and keep the result; per recipient only the Jinja render runs. Tags may stand
  in text, in attribute values and around whole elements (a ``{% for %}`` around sections,
  columns or table rows repeats them). ``language`` sets ``<mjml lang>`` when the source has
  none. ``mj-include`` is refused (shared blocks are Jinja's job) and no web fonts are added.
- ``inline_html(source) -> str``: the same for a raw-HTML body: CSS inlined, media queries
  kept in a ``<style>``, Jinja tags intact. Neither function fetches anything.
- ``html_to_text(html) -> str``: the plain-text part (see ``trato.content.plaintext``).
- ``email_checks(html, *, marketing=False) -> list[Finding]``: preflight of a rendered (or
  compiled) body; codes below. ``has_unsubscribe_link(html) -> bool`` says whether a link a
  reader would take to unsubscribe or manage preferences is there.

Finding codes: ``email.clipped`` (over 102 KB: Gmail clips the message), ``email.img_alt``
(images without an alt attribute), ``email.missing_lang`` (no ``<html lang>``),
``email.low_contrast`` (below WCAG AA 4.5:1, 3:1 for large text, from inline ``color`` /
``background-color`` / ``bgcolor``), ``email.insecure_link`` (http:// links or images),
``email.unsafe_link`` (javascript:, data:, vbscript: - an error), ``email.empty_link``
(empty or "#" href), ``email.no_unsubscribe`` (marketing without an unsubscribe link - an error).
Errors raise ``InvalidInput`` with codes ``email.mjml_invalid`` (details: MJML's ``reason``
and, when it names a place, ``at`` and ``near`` quoted from the source), ``email.css_invalid``,
``email.language`` or ``email.template_tag_lost`` (details: the ``tags`` lost).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import css_inline
import mjml

from trato.content.contrast import blend, contrast_ratio, parse_color, to_hex
from trato.content.findings import Finding
from trato.content.jinja_tags import protect
from trato.content.plaintext import VOID, html_to_text
from trato.core.errors import InvalidInput

__all__ = ["compile_mjml", "inline_html", "html_to_text", "email_checks", "has_unsubscribe_link"]

GMAIL_CLIP_BYTES = 102 * 1024
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
_ROOT_RE = re.compile(r"<mjml\b([^>]*)>")
_POSITION_RE = re.compile(r"at position (\d+):(\d+)")
_LANGUAGE_RE = re.compile(r"[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*")
_TEMPLATE_RE = re.compile(r"\{\{|\{%")
_UNSUBSCRIBE_RE = re.compile(
    r"unsubscri|opt[-_ ]?out|preferenc|dar(?:se|te)? de baja|date de baja|baja de (?:la|esta|"
    r"nuestra|las)|cancelar (?:la |tu |su )?suscripci|desuscrib|\bbaja\b", re.I)


def _refuse_include(path: str) -> str:
    raise ValueError(f"mj-include is not allowed ({path}): use a content block")


def compile_mjml(source: str, *, language: str | None = None) -> str:
    """Compile an MJML template to HTML with CSS inlined, keeping its Jinja tags intact."""
    if language and not _LANGUAGE_RE.fullmatch(language):
        raise InvalidInput("The language is a code such as 'es' or 'en-GB'.",
                           code="email.language", details={"language": language})
    if (language and (root := _ROOT_RE.search(source)) and "lang=" not in root.group(1)
            and not root.group(1).rstrip().endswith("/")):
        source = f'{source[:root.end() - 1]} lang="{language}">{source[root.end():]}'
    protected = protect(source, mjml=True)
    try:
        html = mjml.mjml2html(protected.text, fonts={}, include_loader=_refuse_include)
    except ValueError as exc:
        reason = str(exc)
        details: dict[str, str] = {"reason": reason}
        if where := _POSITION_RE.search(reason):  # byte offsets in the text MJML was given
            start, end = int(where.group(1)), int(where.group(2))
            near = protected.text.encode()[max(0, start - 30):end + 30].decode(errors="ignore")
            details["near"] = protected.show(near)
            details["at"] = protected.show(
                protected.text.encode()[start:end].decode(errors="ignore"))
        message = f"The MJML body cannot be compiled: {_POSITION_RE.sub('', reason).strip()}"
        if details.get("at"):
            message += f" at {details['at']!r}"
        raise InvalidInput(message, code="email.mjml_invalid", details=details) from exc
    return protected.restore(_inline(protected.before_html_parser(html)))


def inline_html(source: str) -> str:
    """Inline the CSS of a raw-HTML e-mail body, keeping its Jinja tags intact."""
    protected = protect(source, mjml=False)
    return protected.restore(_inline(protected.before_html_parser(protected.text)))


def _inline(html: str) -> str:
    try:
        return _INLINER.inline(html)
    except css_inline.InlineError as exc:
        raise InvalidInput(f"The e-mail's CSS cannot be inlined: {exc}", code="email.css_invalid",
                           details={"reason": str(exc)}) from exc


def has_unsubscribe_link(html: str) -> bool:
    """True when a link's address or text lets the reader unsubscribe or manage preferences."""
    scan = _Scan()
    scan.feed(html)
    scan.close()
    return any(_UNSUBSCRIBE_RE.search(href) or _UNSUBSCRIBE_RE.search(text)
               for href, text in scan.links)


def email_checks(html: str, *, marketing: bool = False) -> list[Finding]:
    """Preflight findings for an e-mail body: weight, accessibility, links, unsubscribe."""
    findings: list[Finding] = []
    size = len(html.encode())
    if size > GMAIL_CLIP_BYTES:
        findings.append(Finding("email.clipped", "warning",
                                f"The message is {size / 1024:.0f} KB: Gmail clips messages over "
                                "102 KB and hides the rest behind a link.",
                                {"bytes": size, "limit": GMAIL_CLIP_BYTES}))
    scan = _Scan()
    scan.feed(html)
    scan.close()
    if not scan.lang or scan.lang.lower() == "und":
        findings.append(Finding("email.missing_lang", "warning",
                                "The <html> element has no lang: screen readers cannot pick the "
                                "right voice.", {}))
    if scan.images_without_alt:
        findings.append(Finding("email.img_alt", "warning",
                                f"{len(scan.images_without_alt)} image(s) have no alt text.",
                                {"images": scan.images_without_alt[:10]}))
    for (fg, bg, large), (ratio, sample) in scan.contrasts.items():
        needed = 3.0 if large else 4.5
        findings.append(Finding("email.low_contrast", "warning",
                                f"Text {fg} on {bg} has contrast {ratio:.2f}:1; WCAG AA asks "
                                f"{needed}:1.", {"color": fg, "background": bg,
                                                 "ratio": round(ratio, 2), "required": needed,
                                                 "large_text": large, "sample": sample}))
    findings.extend(_link_findings(scan))
    if marketing and not has_unsubscribe_link(html):
        findings.append(Finding("email.no_unsubscribe", "error",
                                "A marketing e-mail needs a link to unsubscribe.", {}))
    return findings


def _link_findings(scan: _Scan) -> list[Finding]:
    insecure, unsafe, empty = [], [], []
    for kind, url in scan.urls:
        lowered = url.strip().lower()
        if _TEMPLATE_RE.search(url):
            continue  # decided per recipient: checked on the rendered message
        if lowered.startswith("http://"):
            insecure.append({"kind": kind, "url": url})
        elif lowered.startswith(("javascript:", "data:", "vbscript:")) and kind == "link":
            unsafe.append({"kind": kind, "url": url[:80]})
        elif kind == "link" and lowered in ("", "#"):
            empty.append({"kind": kind, "url": url})
    out = []
    if insecure:
        out.append(Finding("email.insecure_link", "warning",
                           f"{len(insecure)} link(s) or image(s) use http:// instead of https://.",
                           {"urls": insecure[:10]}))
    if unsafe:
        out.append(Finding("email.unsafe_link", "error",
                           "A link runs code or embeds data; mail clients block it.",
                           {"urls": unsafe[:10]}))
    if empty:
        out.append(Finding("email.empty_link", "warning",
                           f"{len(empty)} link(s) lead nowhere (empty or '#').", {}))
    return out


_HEADING_PX = {"h1": 32.0, "h2": 24.0, "h3": 18.72, "h4": 16.0, "h5": 13.28, "h6": 10.72}
_HIDDEN_RE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all"
                        r"|opacity\s*:\s*0(?:\.0+)?\s*(?:;|!|$)", re.I)
_SKIP = frozenset({"head", "title", "style", "script", "noscript", "template"})


class _Frame:
    __slots__ = ("tag", "fg", "bg", "px", "bold", "hidden")

    def __init__(self, tag: str, fg: Any, bg: Any, px: float, bold: bool, hidden: bool) -> None:
        self.tag, self.fg, self.bg, self.px, self.bold, self.hidden = tag, fg, bg, px, bold, hidden


def _declarations(style: str) -> dict[str, str]:
    out = {}
    for part in style.split(";"):
        name, _, value = part.partition(":")
        if value:
            out[name.strip().lower()] = value.strip()
    return out


def _font_px(value: str, parent: float) -> float:
    value = value.lower().removesuffix("!important").strip()
    match = re.fullmatch(r"([\d.]+)\s*(px|pt|em|rem|%)?", value)
    if not match:
        return parent
    number, unit = float(match.group(1)), match.group(2) or "px"
    return {"px": number, "pt": number * 4 / 3, "em": number * parent, "rem": number * 16,
            "%": number * parent / 100}[unit]


class _Scan(HTMLParser):
    """One pass over the HTML: lang, images, URLs, link texts and text colours in context."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        white: Any = (255.0, 255.0, 255.0)
        self.stack = [_Frame("#root", (0.0, 0.0, 0.0), white, 16.0, False, False)]
        self.lang: str | None = None
        self.images_without_alt: list[str] = []
        self.urls: list[tuple[str, str]] = []
        self.links: list[tuple[str, str]] = []
        self._link: list[Any] | None = None
        self.contrasts: dict[tuple[str, str, bool], tuple[float, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.lang = a.get("lang") or self.lang
        elif tag == "img":
            if "alt" not in a:
                self.images_without_alt.append(a.get("src", "")[:200])
            if a.get("src"):
                self.urls.append(("image", a["src"]))
        elif tag == "a" and "href" in a:
            self.urls.append(("link", a["href"]))
            self._link = [a["href"], ""]
        if tag in VOID:
            return
        parent = self.stack[-1]
        style = _declarations(a.get("style", ""))
        fg, bg = parent.fg, parent.bg
        if "color" in style or (tag == "font" and "color" in a):
            color = parse_color(style.get("color") or a.get("color", ""))
            fg = None if color is None or bg is None else blend(color, bg)
        background = style.get("background-color") or a.get("bgcolor") or next(
            (c for c in style.get("background", "").split() if parse_color(c)), None)
        if background and bg is not None:
            color = parse_color(background)
            bg = None if color is None else blend(color, bg)
        px = _font_px(style["font-size"], parent.px) if "font-size" in style else _HEADING_PX.get(tag, parent.px)
        weight = style.get("font-weight", "").lower()
        bold = parent.bold or tag in ("b", "strong") or tag in _HEADING_PX
        if weight:
            bold = weight in ("bold", "bolder") or (weight.isdigit() and int(weight) >= 700)
        hidden = parent.hidden or tag in _SKIP or bool(_HIDDEN_RE.search(a.get("style", "")))
        self.stack.append(_Frame(tag, fg, bg, px, bold, hidden))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link is not None:
            self.links.append((self._link[0], self._link[1]))
            self._link = None
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self._link[1] += data
        frame = self.stack[-1]
        text = data.strip()
        if not text or frame.hidden or frame.px <= 1 or frame.fg is None or frame.bg is None:
            return
        large = frame.px >= 24 or (frame.bold and frame.px >= 18.66)
        ratio = contrast_ratio(frame.fg, frame.bg)
        if ratio < (3.0 if large else 4.5):
            key = (to_hex(frame.fg), to_hex(frame.bg), large)
            self.contrasts.setdefault(key, (ratio, text[:60]))
