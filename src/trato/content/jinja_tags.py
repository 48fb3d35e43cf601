"""Jinja2 tags kept intact through tools that parse markup (mjml-python, css-inline).

An e-mail template is MJML or HTML with Jinja2 tags in it. MJML's parser drops text where it
expects elements and an HTML5 parser moves text out of tables, so a ``{% for %}`` between two
sections or two table rows would not survive. Before the tool runs, each tag becomes a
placeholder the tool keeps where it is:

- inside a start tag (an attribute value, or an attribute written by a tag): a bare token
  of lower-case letters and digits, which attribute values, URLs and CSS keep as they are;
- inside ``<title>``, ``<style>``, ``<mj-title>``, ``<mj-preview>``...: a bare token
  (these hold text, where a comment would be printed as text);
- anywhere else in text: an HTML comment, which stays in place even between table rows;
- in MJML, between elements (directly inside ``mj-body``, ``mj-section``, ``mj-column``...):
  a comment inside ``<mj-raw>``, which MJML copies to the output at that position;
- before the root element or after it: kept aside and put back around the output.

``protect(source, mjml=...)`` returns the text to hand to the tool and a ``Protected`` that
``restore(output)`` turns back into a template; a placeholder that the tool lost is an error
rather than a template that silently lost a condition.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from trato.core.errors import InvalidInput

TAG_RE = re.compile(
    r"""\{\{(?:[^}'"]|'[^']*'|"[^"]*"|\}(?!\}))*\}\}"""
    r"""|\{%(?:[^%'"]|'[^']*'|"[^"]*"|%(?!\}))*%\}"""
    r"""|\{\#.*?\#\}""",
    re.S,
)
MARKUP_RE = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<![^>]*>|<\?.*?\?>"
    r"""|</?([A-Za-z][^\s/>]*)(?:"[^"]*"|'[^']*'|[^'">])*>""",
    re.S,
)
# Elements whose content is text for the parser: a comment there would be shown as text.
TEXT_ONLY = frozenset({"title", "style", "script", "textarea", "xmp", "mj-title", "mj-preview",
                       "mj-style"})
# MJML elements whose content is HTML (an "ending tag" in MJML's words).
MJML_CONTENT = frozenset({"mj-text", "mj-button", "mj-raw", "mj-table", "mj-navbar-link",
                          "mj-accordion-title", "mj-accordion-text", "mj-social-element",
                          "mj-title", "mj-preview", "mj-style"})


@dataclass(frozen=True)
class Protected:
    text: str
    prefix: str
    suffix: str
    tags: tuple[str, ...]
    token_prefix: str

    def before_html_parser(self, html: str) -> str:
        """Open a table's ``<tbody>`` explicitly when a tag comes before its first row.

        An HTML parser opens the body at the first ``<tr>``, after the tag's comment: the
        loop would then repeat ``<tbody><tr>`` instead of ``<tr>``.
        """
        if not self.token_prefix:
            return html
        return re.sub(rf"(<table\b[^>]*>)(\s*(?:<!--{self.token_prefix}\d+x-->\s*)+<tr\b)",
                      r"\1<tbody>\2", html)

    def show(self, fragment: str) -> str:
        """A piece of the protected text (e.g. quoted in a tool's error) with its tags back."""
        return re.sub(rf"(?:<mj-raw>)?(?:<!--)?{self.token_prefix}(\d+)x(?:-->)?(?:</mj-raw>)?",
                      lambda m: self.tags[int(m.group(1))], fragment) if self.token_prefix \
            else fragment

    def restore(self, output: str) -> str:
        """Put every Jinja tag back in place of its placeholder in the tool's output."""
        pattern = re.compile(rf"(?:<!--)?{self.token_prefix}(\d+)x(?:-->)?")
        seen: set[int] = set()

        def back(match: re.Match[str]) -> str:
            index = int(match.group(1))
            seen.add(index)
            return self.tags[index]

        restored = pattern.sub(back, output)
        lost = [self.tags[i] for i in range(len(self.tags)) if i not in seen]
        if lost:
            raise InvalidInput(
                "A template tag is in a place the e-mail markup does not keep: move it inside "
                "an element such as mj-text or mj-raw, or around whole elements.",
                code="email.template_tag_lost",
                details={"tags": lost},
            )
        return self.prefix + restored + self.suffix


def _token_prefix(source: str) -> str:
    digest = hashlib.sha256(source.encode()).hexdigest()
    for start in range(0, 56, 8):
        prefix = f"tj{digest[start:start + 8]}n".translate(str.maketrans("0123456789", "ghijklmnop"))
        if prefix not in source.lower():
            return prefix
    raise InvalidInput("The template cannot be compiled.", code="email.template_tag_lost")


def protect(source: str, *, mjml: bool) -> Protected:
    """Replace the Jinja tags of ``source`` by placeholders that ``mjml`` or HTML tools keep."""
    tags: list[str] = []
    prefix_end, suffix_start = 0, len(source)
    matches = list(TAG_RE.finditer(source))
    # tags (and blanks) before the root element or after it are kept aside
    for match in matches:
        if source[prefix_end:match.start()].strip():
            break
        prefix_end = match.end()
    for match in reversed(matches):
        if source[match.end():suffix_start].strip():
            break
        suffix_start = match.start()
    if prefix_end >= suffix_start:  # nothing but tags: no markup to protect
        return Protected(source, "", "", (), "")
    body = source[prefix_end:suffix_start]
    token_prefix = _token_prefix(source)

    def token(match: re.Match[str]) -> str:
        tags.append(match.group(0))
        return f"{token_prefix}{len(tags) - 1}x"

    skeleton = TAG_RE.sub(token, body)
    token_re = re.compile(rf"{token_prefix}\d+x")
    out: list[str] = []
    stack: list[str] = []  # open MJML elements (html mode: only text-only elements)
    content: str | None = None  # the MJML content element or text-only element we are in
    position = 0
    for markup in MARKUP_RE.finditer(skeleton):
        text = skeleton[position:markup.start()]
        out.append(token_re.sub(lambda m: _in_text(m.group(0), content, stack, mjml), text))
        out.append(markup.group(0))  # tokens inside markup stay bare
        position = markup.end()
        name = (markup.group(1) or "").lower()
        if not name:
            continue
        closing = markup.group(0).startswith("</")
        self_closing = markup.group(0).endswith("/>")
        if content is not None:
            if closing and name == content:
                content = None
            continue
        if closing:
            if name in stack:
                del stack[stack.index(name):]
        elif not self_closing:
            if name in TEXT_ONLY or (mjml and name in MJML_CONTENT):
                content = name
            elif mjml and name.startswith("mj"):
                stack.append(name)
    text = skeleton[position:]
    out.append(token_re.sub(lambda m: _in_text(m.group(0), content, stack, mjml), text))
    return Protected("".join(out), source[:prefix_end], source[suffix_start:], tuple(tags),
                     token_prefix)


def _in_text(tok: str, content: str | None, stack: list[str], mjml: bool) -> str:
    if content in TEXT_ONLY:
        return tok
    if content is not None or not mjml:
        return f"<!--{tok}-->"
    if not stack or "mj-head" in stack:
        return tok  # MJML keeps no text here: a lost tag is reported by restore()
    return f"<mj-raw><!--{tok}--></mj-raw>"
