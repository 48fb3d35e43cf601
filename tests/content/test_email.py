"""E-mail: MJML and raw HTML compiled once with Jinja tags intact, text part, preflight checks."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.sandbox import SandboxedEnvironment

from trato.content.contrast import contrast_ratio, parse_color
from trato.content.email import (
    compile_mjml,
    email_checks,
    has_unsubscribe_link,
    html_to_text,
    inline_html,
)
from trato.content.jinja_tags import protect
from trato.core.errors import InvalidInput

FIXTURES = Path(__file__).parents[1] / "fixtures" / "email"


@pytest.fixture(scope="module")
def invoice_template() -> jinja2.Template:
    env = SandboxedEnvironment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.globals["_"] = lambda text: text
    return env.from_string(compile_mjml((FIXTURES / "invoice.mjml").read_text(), language="es"))


def invoice_context(lines: int, offer: bool, total: int = 150) -> dict:
    return {
        "customer": {"first_name": "Ana <script>"},
        "invoice": {"number": "F-2026-001", "total": total, "url": "https://pay.example.com/i/1",
                    "lines": [{"label": f"Line {i}", "amount": f"{i}0 €"} for i in range(lines)]},
        "offer": {"text": "Half price heating check"} if offer else None,
        "unsubscribe_url": "https://example.com/u/tok",
    }


def test_loop_around_sections_repeats_them(invoice_template):
    one = invoice_template.render(invoice_context(1, offer=False))
    four = invoice_template.render(invoice_context(4, offer=False))
    # each line is a two-column section: one pair of 50% columns per line
    assert one.count('class="mj-outlook-group-fix mj-column-per-50"') == 2
    assert four.count('class="mj-outlook-group-fix mj-column-per-50"') == 8
    # and a row of the table, inside the same loop written between <tr> elements
    assert len(re.findall(r"<tr><td[^>]*>Line \d</td>", four)) == 4
    assert four.index("Line 0") < four.index("Line 3")


def test_loop_as_first_thing_in_an_mj_table_repeats_rows_only():
    template = jinja2.Environment().from_string(compile_mjml(
        "<mjml><mj-body><mj-section><mj-column><mj-table>{% for r in rows %}<tr><td>{{ r }}</td>"
        "</tr>{% endfor %}</mj-table></mj-column></mj-section></mj-body></mjml>"))
    one, three = template.render(rows=["a"]), template.render(rows=["a", "b", "c"])
    assert re.findall(r"<tr><td[^>]*>(\w)</td></tr>", three) == ["a", "b", "c"]
    assert three.count("<tbody>") == one.count("<tbody>") == three.count("</tbody>")


def test_conditions_in_text_and_between_elements(invoice_template):
    without = invoice_template.render(invoice_context(1, offer=False, total=50))
    with_offer = invoice_template.render(invoice_context(1, offer=True, total=150))
    assert "Half price heating check" not in without and "instalments" not in without
    assert "Half price heating check" in with_offer and "instalments" in with_offer


def test_values_are_escaped_and_attributes_filled(invoice_template):
    html = invoice_template.render(invoice_context(1, offer=False))
    assert "Ana &lt;script&gt;" in html and "<script>" not in html
    assert 'href="https://pay.example.com/i/1"' in html
    assert "<title>Your invoice F-2026-001</title>" in html
    assert 'lang="es"' in html
    assert "{" not in html.split("<body", 1)[1]


def test_css_is_inlined_and_media_queries_kept():
    html = compile_mjml((FIXTURES / "invoice.mjml").read_text())
    # mj-style's class rule now sits on the element, the responsive rules stay in <style>
    note = re.search(r'<div[^>]*class="note"[^>]*>', html) or re.search(
        r'<td[^>]*class="note"[^>]*>', html)
    assert note and "color: #555555" in note.group(0)
    assert "@media only screen and (min-width:480px)" in html
    assert "fonts.googleapis.com" not in html
    assert html.startswith("{# Invoice ready")
    jinja2.Environment().parse(html)


def test_tag_where_mjml_keeps_nothing_is_an_error():
    protected = protect("<mjml><mj-body>{% if a %}<mj-section></mj-section>{% endif %}"
                        "</mj-body></mjml>", mjml=True)
    assert protected.text.count("<mj-raw><!--") == 2
    with pytest.raises(InvalidInput) as error:  # as if the tool had dropped the second one
        protected.restore(protected.text.rsplit("<mj-raw>", 1)[0])
    assert error.value.code == "email.template_tag_lost"
    assert error.value.details == {"tags": ["{% endif %}"]}
    with pytest.raises(InvalidInput) as error:  # MJML keeps no text in mj-head
        compile_mjml("<mjml><mj-head>{{ x }}</mj-head><mj-body></mj-body></mjml>")
    assert error.value.code == "email.mjml_invalid"
    # the author is shown their own tag, not the placeholder MJML saw
    assert error.value.details["at"] == "{{ x }}"
    assert error.value.details["near"].startswith("<mjml><mj-head>{{ x }}</mj-head><mj-body>")
    assert "{{ x }}" in error.value.message


@pytest.mark.parametrize("source", [
    '<mjml><mj-body><mj-include path="/etc/passwd" /></mj-body></mjml>',
    "<mjml><mj-body><mj-section><mj-column><mj-text>x</mj-column></mj-body></mjml>",
])
def test_invalid_or_including_mjml_is_refused(source):
    with pytest.raises(InvalidInput) as error:
        compile_mjml(source)
    assert error.value.code == "email.mjml_invalid"


def test_raw_html_keeps_loops_between_table_rows():
    source = (
        "<!doctype html><html lang=\"en\"><head><title>{{ subject }}</title>"
        "<style>td.amount { text-align: right; color: #222222 } "
        "@media (max-width: 480px) { td { display: block } }</style></head><body>"
        "<table>{% for row in rows %}<tr><td>{{ row.name }}</td>"
        "<td class=\"amount\">{{ row.value }}</td></tr>{% endfor %}</table>"
        "<a href=\"{{ link }}\" style=\"color:{{ brand }}\">Open</a></body></html>"
    )
    compiled = inline_html(source)
    assert '<td class="amount" style="text-align: right;color: #222222;">{{ row.value }}' in compiled
    assert "@media (max-width: 480px)" in compiled
    html = jinja2.Environment(autoescape=True).from_string(compiled).render(
        subject="Receipt", rows=[{"name": "a", "value": 1}, {"name": "b", "value": 2}],
        link="https://example.com/r", brand="#0b5394")
    assert re.findall(r"<tr><td>(\w)</td>", html) == ["a", "b"]
    assert html.count("<tbody>") == 1  # the loop repeats rows, not table bodies
    assert "<title>Receipt</title>" in html
    assert 'style="color:#0b5394"' in html


tag_st = st.sampled_from(["{{ a }}", "{{ b|upper }}", "{% if c > 1 %}", "{% endif %}",
                          "{# note #}", "{{ 'x>y' }}", "{% set d = \"}}\" %}"])
word_st = st.sampled_from(["Hola", "<b>bold</b>", "&amp;", " ", "\n", "<br/>", "x"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(tag_st, word_st), min_size=1, max_size=12))
def test_every_tag_in_text_survives_compilation(parts):
    text = "".join(parts)
    html = compile_mjml(f"<mjml><mj-body><mj-section><mj-column><mj-text>{text}</mj-text>"
                        f"</mj-column></mj-section></mj-body></mjml>")
    body = html.split("<body", 1)[1]
    for tag in {p for p in parts if p.startswith("{")}:
        assert body.count(tag) == text.count(tag)


def test_plain_text_part():
    html = (
        '<html><head><title>Hidden</title><style>p{color:red}</style></head><body>'
        '<div style="display:none">preheader text</div>'
        "<h1>Your&nbsp;invoice</h1><p>Hello <b>Ana</b>,<br>it is ready.</p>"
        '<p><a href="https://example.com/i/1">See the invoice</a> or '
        '<a href="https://example.com/x">https://example.com/x</a>.</p>'
        '<ul><li>Gas</li><li>Power</li></ul>'
        '<a href="https://example.com"><img src="logo.png" alt="Example Energy"></a>'
        '<p>Write to <a href="mailto:help@example.com">help@example.com</a></p>'
        "<!--[if mso]><p>Outlook only</p><![endif]--></body></html>"
    )
    assert html_to_text(html) == (
        "Your invoice\n\nHello Ana,\nit is ready.\n\n"
        "See the invoice (https://example.com/i/1) or https://example.com/x.\n\n"
        "- Gas\n- Power\nExample Energy (https://example.com)\n\n"
        "Write to help@example.com\n"
    )


def codes(html: str, **kwargs) -> list[str]:
    return [f.code for f in email_checks(html, **kwargs)]


PAGE = '<html lang="es"><body style="background-color:#ffffff">{}</body></html>'


def test_clean_email_has_no_findings(invoice_template):
    html = invoice_template.render(invoice_context(3, offer=True))
    assert email_checks(html, marketing=True) == []


def test_weight_over_gmail_clipping():
    paragraph = "<p>" + "x" * 1017 + "</p>"  # 1 KB
    assert codes(PAGE.format(paragraph * 102)) == ["email.clipped"]
    assert codes(PAGE.format(paragraph * 101)) == []


def test_missing_lang_and_alt():
    html = '<html lang="und"><body><img src="https://x/a.png"><img src="https://x/b.png" alt="">'
    findings = email_checks(html)
    assert [f.code for f in findings] == ["email.missing_lang", "email.img_alt"]
    assert findings[1].detail["images"] == ["https://x/a.png"]
    assert codes("<html><body>x</body></html>") == ["email.missing_lang"]


@pytest.mark.parametrize(("style", "flagged"), [
    ("color:#777777", True),     # 4.48:1 on white
    ("color:#767676", False),    # 4.54:1 - the lightest grey that passes AA
    ("color:#949494;font-size:24px", False),  # large text needs 3:1 (3.03)
    ("color:#949494;font-size:18pt;font-weight:bold", False),
    ("color:#949494;font-size:18px;font-weight:bold", True),
    ("color:white;background-color:#ffd700", True),
    ("color:rgba(0,0,0,0.4)", True),
    ("color:{{ brand }}", False),  # decided per recipient
])
def test_text_contrast(style, flagged):
    assert (codes(PAGE.format(f'<p style="{style}">Hello</p>')) == ["email.low_contrast"]) is flagged


def test_contrast_uses_inherited_background_and_bgcolor():
    html = PAGE.format('<table bgcolor="#003366"><tr><td><span style="color:navy">Dark on dark'
                       "</span></td></tr></table>")
    (finding,) = email_checks(html)
    assert finding.detail["color"] == "#000080" and finding.detail["background"] == "#003366"
    assert finding.detail["ratio"] < 1.5 and finding.detail["sample"] == "Dark on dark"


def test_links():
    html = PAGE.format('<a href="http://example.com">a</a><a href="javascript:alert(1)">b</a>'
                       '<a href="#">c</a><img alt="" src="http://cdn.example.com/p.png">'
                       '<a href="{{ url }}">d</a><a href="mailto:x@example.com">e</a>')
    findings = {f.code: f for f in email_checks(html)}
    assert set(findings) == {"email.insecure_link", "email.unsafe_link", "email.empty_link"}
    assert findings["email.unsafe_link"].severity == "error"
    assert findings["email.insecure_link"].detail["urls"] == [
        {"kind": "link", "url": "http://example.com"},
        {"kind": "image", "url": "http://cdn.example.com/p.png"}]


@pytest.mark.parametrize(("body", "found"), [
    ('<a href="https://example.com/unsubscribe?t=1">here</a>', True),
    ('<a href="https://example.com/p/1">Darse de baja</a>', True),
    ('<a href="{{ preferences_url }}">Manage e-mails</a>', True),
    ('<a href="https://example.com/p/1">Cancelar suscripción</a>', True),
    ('<a href="https://example.com/offer">See the offer</a> unsubscribe', False),
])
def test_unsubscribe_link(body, found):
    html = PAGE.format(body)
    assert has_unsubscribe_link(html) is found
    assert ("email.no_unsubscribe" in codes(html, marketing=True)) is not found
    assert "email.no_unsubscribe" not in codes(html)


def test_language_is_a_code():
    with pytest.raises(InvalidInput) as error:
        compile_mjml("<mjml><mj-body></mj-body></mjml>", language='es" onload="x')
    assert error.value.code == "email.language"
    assert 'lang="en-GB"' in compile_mjml("<mjml><mj-body></mj-body></mjml>", language="en-GB")
    assert 'lang="fr"' in compile_mjml('<mjml lang="fr"><mj-body></mj-body></mjml>', language="es")


def test_text_part_of_a_compiled_template_is_itself_a_template(invoice_template):
    compiled = compile_mjml((FIXTURES / "invoice.mjml").read_text())
    text_template = html_to_text(compiled)
    assert "Pay now ({{ invoice.url }})" in text_template
    text = jinja2.Environment().from_string(text_template).render(
        invoice_context(2, offer=False), _=lambda s: s)
    assert "Pay now (https://pay.example.com/i/1)" in text
    assert "Line 1" in text and "Unsubscribe (https://example.com/u/tok)" in text


color_st = st.tuples(*[st.integers(0, 255)] * 3).map(lambda c: tuple(float(x) for x in c))


@given(color_st, color_st)
def test_contrast_ratio_is_symmetric_and_bounded(a, b):
    ratio = contrast_ratio(a, b)
    assert ratio == pytest.approx(contrast_ratio(b, a))
    assert 1.0 <= ratio <= 21.0 + 1e-9
    assert contrast_ratio(a, a) == pytest.approx(1.0)


@pytest.mark.parametrize(("value", "rgba"), [
    ("#FFF", (255, 255, 255, 1.0)), ("#00000080", (0, 0, 0, 128 / 255)),
    ("rgb(10, 20, 30)", (10, 20, 30, 1.0)), ("rgb(10 20 30 / 50%)", (10, 20, 30, 0.5)),
    ("rgba(100%,0%,0%,0.25)", (255, 0, 0, 0.25)), ("RebeccaPurple", (0x66, 0x33, 0x99, 1.0)),
    ("#333 !important", (0x33, 0x33, 0x33, 1.0)), ("inherit", None), ("var(--x)", None),
    ("{{ brand }}", None),
])
def test_parse_color(value, rgba):
    assert parse_color(value) == (None if rgba is None else tuple(float(x) for x in rgba))
