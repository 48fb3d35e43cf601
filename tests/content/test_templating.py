"""The template sandbox: personalisation works, known escapes are blocked, bombs hit the bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trato.content import templating
from trato.content.errors import TemplateError
from trato.content.templating import Limits, compile_template, render, render_source, unknown_variables

CONTEXT = {
    "customer": {"first_name": "Ana", "last_name": "García", "plan": "gold"},
    "data": {"amount": "1234.5", "due": "2026-03-01", "at": "2026-03-01T18:30:00Z", "items": [1, 2, 3]},
    "company": {"name": "Trato Demo", "currency": "EUR"},
    "locale": "es_ES", "lang": "es", "timezone": "Europe/Madrid",
}
FAST = Limits(timeout_ms=200, max_output_bytes=1024 * 1024)


@pytest.fixture(autouse=True, scope="module")
def _patient_clock():  # type: ignore[no-untyped-def]
    """Tests that are not about time get 10 s: two busy cores must not fail them."""
    from trato.core.settings import get_settings

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRATO_TEMPLATE_TIMEOUT_MS", "10000")
        get_settings.cache_clear()
        yield
    get_settings.cache_clear()


def _code(source: str, context: dict | None = None, limits: Limits = FAST, **kw) -> str:
    with pytest.raises(TemplateError) as caught:
        render_source(source, CONTEXT if context is None else context, limits=limits, **kw)
    return caught.value.code


def test_personalises_with_locale_filters_in_both_languages():
    source = ("Hola {{ customer.first_name }}: {{ data.amount|money }} antes del {{ data.due|date('long') }}, "
              "{{ data.at|datetime('short') }}, {{ 1234567.891|number(2) }}")
    assert render_source(source, CONTEXT) == (
        "Hola Ana: 1.234,50\xa0€ antes del 1 de marzo de 2026, 1/3/26, 19:30, 1.234.567,89")
    english = dict(CONTEXT, locale="en_GB", timezone="Europe/London")
    assert render_source("{{ data.amount|money('GBP') }} by {{ data.due|date('long') }}", english) == (
        "£1,234.50 by 1 March 2026")


def test_html_templates_escape_customer_values():
    context = dict(CONTEXT, customer={"first_name": "<script>alert(1)</script>"})
    assert render_source("<p>{{ customer.first_name }}</p>", context, autoescape=True) == (
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>")


def test_a_missing_value_fails_instead_of_printing_nothing():
    assert _code("{{ customer.middle_name }}") == "template_undefined_variable"


def test_unknown_variables_are_found_at_validation_not_at_send():
    source = "{{ customer.first_name }} {{ cusomer.plan }} {% for x in data.items %}{{ x }}{{ y }}{% endfor %}"
    assert unknown_variables(source) == {"cusomer", "y"}
    assert unknown_variables("{% set y = 1 %}{{ y }} {{ range(3)|list }} {{ company.name }}") == set()


def test_syntax_errors_name_the_line():
    with pytest.raises(TemplateError) as caught:
        compile_template("ok\n{% if %}")
    assert caught.value.code == "template_syntax" and caught.value.details["line"] == 2


@pytest.mark.parametrize("source", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ customer.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self.__init__.__globals__ }}",
    "{{ ''|attr('__class__') }}",
    "{{ (''|attr('__class__'))|attr('__base__') }}",
    "{{ '{0.__class__.__mro__}'.format(customer) }}",
    "{{ '{0.__class__}'.format_map({'0': 1}) }}",
    "{{ '%s'.format.__globals__ }}",
    "{{ data.items.pop() }}{{ customer.update({}) }}" if False else "{{ config }}",
    "{{ request.application }}",
    "{{ lipsum.__globals__ }}",
    "{% import 'os' as os %}",
    "{% extends 'base' %}",
    "{% include '/etc/passwd' %}",
])
def test_known_sandbox_escapes_are_blocked(source):
    assert _code(source) in {
        "template_unsafe", "template_undefined_variable", "template_include_not_allowed", "template_syntax",
        "template_failed",
    }


def test_escape_attempts_never_reach_python_objects():
    # Where Jinja answers with an undefined rather than an error, nothing of Python shows.
    for source in ("{{ ''.__class__ }}", "{{ customer.__class__ }}", "{{ (1).__class__ }}"):
        try:
            out = render_source(source, CONTEXT)
        except TemplateError:
            continue
        assert "class" not in out


@pytest.mark.parametrize("source, code", [
    ("{{ 'x' * 10000000000 }}", "template_too_large"),
    ("{{ ['x'] * 10000000000 }}", "template_too_large"),
    ("{% set s = 'x' * 1000000 %}{{ s ~ s }}", "template_too_large"),
    ("{% set s = 'x' * 1000000 %}{{ s + s }}", "template_too_large"),
    ("{{ '{:>999999999}'.format(1) }}", "template_too_large"),
    ("{{ '%999999999d' % 1 }}", "template_too_large"),
    ("{{ '%*d' % (999999999, 1) }}", "template_too_large"),
    ("{{ '%999999999d'|format(1) }}", "template_too_large"),
    ("{{ 'x'.center(999999999) }}", "template_too_large"),
    ("{{ 'x'|center(999999999) }}", "template_too_large"),
    ("{{ 9 ** 9999999 }}", "template_too_large"),
    ("{{ range(10000000000)|list }}", "template_failed"),
    ("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "template_too_large"),
    ("{% set r = range(100000) %}{% for a in r %}{% for b in r %}{% for c in r %}{% endfor %}"
     "{% endfor %}{% endfor %}", "template_timeout"),
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "template_failed"),
    ("{% set r = range(100000)|list %}{{ (r|map('string')|join('x' * 20)) }}", "template_too_large"),
])
def test_bombs_fail_with_a_clear_code(source, code):
    # Size bombs get time enough that only their size can stop them, on a busy machine too.
    limits = FAST if code == "template_timeout" else Limits(timeout_ms=20_000, max_output_bytes=1024 * 1024)
    assert _code(source, limits=limits) == code


def test_bounds_come_from_settings(monkeypatch):
    monkeypatch.setenv("TRATO_TEMPLATE_MAX_OUTPUT_BYTES", "2048")
    from trato.core.settings import get_settings

    get_settings.cache_clear()
    try:
        assert Limits.from_settings().max_output_bytes == 2048
        with pytest.raises(TemplateError) as caught:
            render_source("{% for i in range(300) %}0123456789{% endfor %}", CONTEXT)
        assert caught.value.code == "template_too_large"
    finally:
        monkeypatch.delenv("TRATO_TEMPLATE_MAX_OUTPUT_BYTES")
        get_settings.cache_clear()


def test_content_blocks_are_inlined_and_unknown_ones_refused():
    blocks = {"footer": "— {{ company.name }}{% include 'blocks/legal' %}", "legal": " · Aviso legal"}
    assert render_source("Hola{% include 'blocks/footer' %}", CONTEXT, blocks=blocks) == (
        "Hola— Trato Demo · Aviso legal")
    assert templating.block_keys("{% include 'blocks/footer' %}{% include 'blocks/legal' %}") == {"footer", "legal"}
    assert _code("{% include 'blocks/nope' %}") == "unknown_block"
    assert _code("{% include name %}", dict(CONTEXT, name="blocks/footer")) == "template_include_not_allowed"
    looping = {"a": "{% include 'blocks/a' %}"}
    assert _code("{% include 'blocks/a' %}", blocks=looping) == "block_too_deep"


def test_compiled_templates_are_cached_per_key():
    first = templating.cached_template(("v1", "sms", "es", "text"), "Hola {{ customer.first_name }}")
    again = templating.cached_template(("v1", "sms", "es", "text"), "ignored: the key says it is compiled")
    assert first is again
    assert render(first, CONTEXT) == "Hola Ana"


@given(st.text(max_size=200))
def test_any_customer_text_renders_literally(value):
    out = render_source("[{{ customer.first_name }}]", dict(CONTEXT, customer={"first_name": value}))
    assert out == f"[{value}]"


TEMPLATE_PIECES = st.lists(st.sampled_from([
    "{{", "}}", "{%", "%}", "{#", "#}", "customer", ".first_name", "|money", "|date", "|upper", "(", ")", "[", "]",
    " for x in data.items ", " endfor ", " if ", " endif ", " set y = ", "'a'", "*", "~", "%", "**", "9",
    "__class__", "|attr('__class__')", ".format(1)", "range(", "data.amount", " ", "loop.index", "-", "/", "0",
]), max_size=30)


@given(st.one_of(st.text(max_size=200), TEMPLATE_PIECES.map("".join)))
def test_any_template_text_renders_or_fails_with_a_code(source):
    # Whatever an author types, the answer is output or a TemplateError: never another exception.
    try:
        render_source(source, CONTEXT, limits=Limits(timeout_ms=2000, max_output_bytes=64 * 1024))
    except TemplateError as exc:
        assert exc.code.startswith(("template_", "unknown_block", "block_too_deep"))


@pytest.mark.parametrize("source", ["{{ data.due|date('long') }}", "{{ data.due|datetime }}",
                                    "{{ data.amount|money }}", "{{ data.amount|number }}"])
def test_a_missing_variable_given_to_a_locale_filter_is_named(source: str) -> None:
    """A send without ``data.due`` says which variable is missing, not that "Undefined" is no date."""
    from trato.content.templating import TemplateError, render_source

    with pytest.raises(TemplateError) as caught:
        render_source(source, {"data": {}, "lang": "es"})
    assert caught.value.code == "template_undefined_variable"
    assert "'due'" in caught.value.message or "'amount'" in caught.value.message


def test_dict_values_read_as_attributes_and_dict_methods_stay_methods() -> None:
    context = {"customer": {"first_name": "Ana", "items": "tres", "get": "no"}}
    assert render_source("{{ customer.first_name }} {{ customer['items'] }} {{ customer['get'] }}",
                         context) == "Ana tres no"
    # ``.get`` and ``.items`` are the dict's methods, as in Jinja; a key that is not there is undefined.
    assert render_source("{{ customer.get('first_name') }} {{ customer.items()|list|length }}", context) == "Ana 3"
    with pytest.raises(TemplateError) as caught:
        render_source("{{ customer.last_name }}", context)
    assert caught.value.code == "template_undefined_variable"
    with pytest.raises(TemplateError) as caught:
        render_source("{{ customer.update({'first_name': 'Eve'}) }}", context)
    assert caught.value.code == "template_unsafe"
    assert context["customer"]["first_name"] == "Ana"


def test_globals_still_serve_templates_and_a_context_value_wins_over_one() -> None:
    source = "{{ range(3)|list|length }} {% set ns = namespace(n=1) %}{{ ns.n }} {{ cycler('a', 'b').next() }}"
    assert render_source(source, {}) == "3 1 a"
    assert render_source("{{ joiner }}", {"joiner": "mine"}) == "mine"
    template = compile_template("{{ range(2)|list }}")
    assert render(template, {}) == render(template, {}) == "[0, 1]"


def test_the_time_limit_counts_cpu_time_and_reads_that_clock_only_when_it_could_be_up(monkeypatch):
    """Ticks read the cheap wall clock; the thread's CPU clock is read when the wall clock says the
    deadline could have passed: a render kept waiting for a core goes on, one that used its CPU
    time stops."""
    from trato.content import sandbox

    wall, cpu, cpu_reads = [100.0], [5.0], []

    def cpu_clock() -> float:
        cpu_reads.append(cpu[0])
        return cpu[0]

    monkeypatch.setattr(sandbox, "wall_clock", lambda: wall[0])
    monkeypatch.setattr(sandbox, "clock", cpu_clock)
    budget = sandbox.Budget(5.0 + 0.5, Limits(timeout_ms=500))
    assert cpu_reads == [5.0]
    for _ in range(100):  # within the wall time left: the CPU clock is not read
        wall[0] += 0.004
        budget.tick()
    assert len(cpu_reads) == 1
    wall[0] += 0.2  # 0.6 s of wall time but only 0.3 s of CPU: the thread was kept waiting
    cpu[0] += 0.3
    budget.tick()
    assert len(cpu_reads) == 2
    wall[0] += 0.1  # re-armed for the 0.2 s of CPU time left
    budget.tick()
    assert len(cpu_reads) == 2
    wall[0] += 0.15
    cpu[0] += 0.25
    with pytest.raises(sandbox.OverBudget) as caught:
        budget.tick()
    assert caught.value.code == "template_timeout"


@pytest.mark.parametrize("char, size", [("ñ", 2), ("€", 3), ("😀", 4), ("a", 1)])
def test_the_output_limit_counts_utf8_bytes_exactly(char, size):
    """Output is measured by an upper bound (4 bytes a character) until that nears the limit, then
    exactly: a message of exactly the limit renders, one byte more is refused."""
    limits = Limits(timeout_ms=20_000, max_output_bytes=12_000)
    fits = 12_000 // size
    source = "{% for i in range(n) %}" + char + "{% endfor %}"
    out = render_source(source, {"n": fits}, limits=limits)
    assert len(out.encode()) == fits * size
    with pytest.raises(TemplateError) as caught:
        render_source(source, {"n": fits + 1}, limits=limits)
    assert caught.value.code == "template_too_large"
