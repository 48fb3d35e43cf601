"""Personalisation: Jinja2 templates that run in a sandbox, with bounds on time and output.

Nothing a template author writes can reach Python: templates run in a
:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` (no ``_``-attributes, no ``__class__`` or
``__subclasses__``, ``str.format`` sandboxed, no ``append``/``update``/``pop`` on the context's
lists and dicts — one customer's render can never change what the next one sees), with :class:`~jinja2.StrictUndefined` so a
missing value fails instead of printing nothing. On top of Jinja's sandbox this module bounds
what a template can cost:

- **time**: every ``{% for %}`` loop, every call and every piece of output checks a deadline
  (``TRATO_TEMPLATE_TIMEOUT_MS``, default 200 ms of the rendering thread's CPU time) →
  ``template_timeout``;
- **size**: output is counted as it is produced (``TRATO_TEMPLATE_MAX_OUTPUT_BYTES``, default
  1 MB) → ``template_too_large``; ``*``, ``+``, ``~``, ``%``, ``**``, ``str.format`` padding and
  numeric arguments to filters and methods are checked *before* Python allocates the result, so
  ``"x" * 10**10`` or ``"{:>999999999}".format(1)`` fail at once instead of exhausting memory.

Which variables a template uses is known before it is ever sent: :func:`unknown_variables`
reads the template's syntax tree (``jinja2.meta``) and names every top-level name outside
:data:`CONTEXT_NAMES`. Content blocks are inlined at compile time from the pinned block texts
a version gives (``{% include "blocks/footer" %}``); ``extends``/``import`` are refused.

Compiled templates are cached per (version, channel, language, field): versions never change.
The bounds live in :mod:`trato.content.sandbox`, the Babel filters in :mod:`trato.content.locale_filters`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from itertools import islice
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from babel.numbers import format_currency, format_decimal
from jinja2 import DictLoader, StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.runtime import Context, new_context
from jinja2.exceptions import SecurityError, TemplateError as JinjaTemplateError, TemplateNotFound, UndefinedError

from trato.content import locale_filters
from trato.content.errors import TemplateError
from trato.content.sandbox import (
    BUDGET, Budget, Limits, OverBudget, TratoSandbox, bounded_format, bounded_iter, bounded_join, guard_filter, sized,
)
from trato.content.sandbox import clock as sandbox_clock
from trato.core.i18n import zone

__all__ = [
    "CONTEXT_NAMES", "Limits", "block_keys", "cached_compiled", "cached_template", "compile_template",
    "parse_with_blocks", "render", "render_source", "unknown_variables",
]

CONTEXT_NAMES: Final[frozenset[str]] = frozenset(
    {"customer", "identities", "computed", "data", "company", "links", "lang", "locale", "timezone", "now"}
)
"""Top-level names a template may use; everything else is an unknown variable."""

BLOCK_PREFIX: Final = "blocks/"
MAX_BLOCK_DEPTH: Final = 4
_BOUNDED_ITER = "trato_bounded"
_BOUNDED_SIZE = "trato_sized"


def _environment(autoescape: bool) -> TratoSandbox:
    env = TratoSandbox(
        autoescape=autoescape, undefined=StrictUndefined, loader=DictLoader({}), auto_reload=False,
        keep_trailing_newline=True, cache_size=0,
    )
    for name, func in list(env.filters.items()):
        env.filters[name] = guard_filter(name, func)
    env.filters.update(
        join=bounded_join, format=bounded_format,
        date=locale_filters.date_filter, datetime=locale_filters.datetime_filter,
        money=locale_filters.money_filter, number=locale_filters.number_filter,
        **{_BOUNDED_ITER: bounded_iter, _BOUNDED_SIZE: sized},
    )
    env.globals.pop("lipsum", None)
    return env


HTML_ENV: Final = _environment(autoescape=True)
TEXT_ENV: Final = _environment(autoescape=False)
_ALLOWED_GLOBALS = frozenset(HTML_ENV.globals)


# -- compiling ---------------------------------------------------------------------------------------


def _syntax_error(exc: TemplateSyntaxError, where: str) -> TemplateError:
    return TemplateError(
        f"{where}line {exc.lineno}: {exc.message}", code="template_syntax",
        details={"line": exc.lineno, "where": where.strip(": ") or None},
    )


def _parse(env: TratoSandbox, source: str, where: str = "") -> nodes.Template:
    try:
        return env.parse(source)
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc, where) from None


def _block_key(node: nodes.Include) -> str:
    name = node.template.value if isinstance(node.template, nodes.Const) else None
    if not isinstance(name, str) or not name.startswith(BLOCK_PREFIX):
        raise TemplateError(
            f'line {node.lineno}: include only content blocks, by name: {{% include "{BLOCK_PREFIX}footer" %}}',
            code="template_include_not_allowed", details={"line": node.lineno},
        )
    return name[len(BLOCK_PREFIX):]


def block_keys(source: str) -> set[str]:
    """The content blocks a template includes (``{% include "blocks/KEY" %}``)."""
    ast = _parse(TEXT_ENV, source)
    return {_block_key(node) for node in ast.find_all(nodes.Include)}


def _inline(env: TratoSandbox, node: nodes.Node, blocks: Mapping[str, str], depth: int) -> None:
    for field in node.fields:
        value = getattr(node, field, None)
        if isinstance(value, list):
            replaced: list[Any] = []
            for item in value:
                if isinstance(item, nodes.Include):
                    replaced.extend(_expand(env, item, blocks, depth))
                else:
                    if isinstance(item, nodes.Node):
                        _inline(env, item, blocks, depth)
                    replaced.append(item)
            setattr(node, field, replaced)
        elif isinstance(value, nodes.Node):
            _inline(env, value, blocks, depth)


def _expand(env: TratoSandbox, include: nodes.Include, blocks: Mapping[str, str], depth: int) -> list[nodes.Node]:
    key = _block_key(include)
    if key not in blocks:
        raise TemplateError(f"line {include.lineno}: there is no content block {key!r}", code="unknown_block",
                            details={"block": key})
    if depth >= MAX_BLOCK_DEPTH:
        raise TemplateError(f"content block {key!r} includes blocks more than {MAX_BLOCK_DEPTH} deep",
                            code="block_too_deep", details={"block": key})
    body = _parse(env, blocks[key], f"block {key}: ")
    _refuse_loading(body)
    _inline(env, body, blocks, depth + 1)
    return list(body.body)


def _refuse_loading(ast: nodes.Template) -> None:
    for node in ast.find_all((nodes.Extends, nodes.Import, nodes.FromImport)):
        raise TemplateError(
            f"line {node.lineno}: templates cannot extend or import others; include content blocks instead",
            code="template_include_not_allowed", details={"line": node.lineno},
        )


def _bound(ast: nodes.Template) -> None:
    """Route every loop's items and every ``~`` through the bounds."""
    for loop in ast.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, _BOUNDED_ITER, [], [], None, None, lineno=loop.lineno)
    for parent in list(ast.find_all(nodes.Node)):
        for field in parent.fields:
            value = getattr(parent, field, None)
            if isinstance(value, nodes.Concat):
                setattr(parent, field, nodes.Filter(value, _BOUNDED_SIZE, [], [], None, None, lineno=value.lineno))
            elif isinstance(value, list):
                setattr(parent, field, [
                    nodes.Filter(v, _BOUNDED_SIZE, [], [], None, None, lineno=v.lineno) if isinstance(v, nodes.Concat)
                    else v for v in value
                ])


def parse_with_blocks(source: str, *, blocks: Mapping[str, str], autoescape: bool = False) -> nodes.Template:
    """The template's syntax tree with its content blocks inlined (raises TemplateError)."""
    env = HTML_ENV if autoescape else TEXT_ENV
    ast = _parse(env, source)
    _refuse_loading(ast)
    _inline(env, ast, blocks, 0)
    return ast


def compile_template(source: str, *, blocks: Mapping[str, str] | None = None, autoescape: bool = False) -> Template:
    """A sandboxed, bounded template; ``autoescape`` for HTML (customer values are escaped)."""
    env = HTML_ENV if autoescape else TEXT_ENV
    ast = parse_with_blocks(source, blocks=blocks or {}, autoescape=autoescape)
    _bound(ast)
    try:
        return env.from_string(ast)
    except TemplateSyntaxError as exc:  # e.g. an unknown filter, found when generating code
        raise _syntax_error(exc, "") from None
    except OverBudget as exc:  # a constant bomb folded at compile time
        raise TemplateError(str(exc), code=exc.code) from None


def unknown_variables(source: str, *, blocks: Mapping[str, str] | None = None) -> set[str]:
    """Top-level names the template uses that no render context provides (validation time)."""
    ast = parse_with_blocks(source, blocks=blocks or {})
    return set(meta.find_undeclared_variables(ast)) - CONTEXT_NAMES - _ALLOWED_GLOBALS


_cache: OrderedDict[Hashable, Template] = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE: Final = 4096


def cached_template(
    key: Hashable, source: str, *, blocks: Mapping[str, str] | None = None, autoescape: bool = False
) -> Template:
    """The compiled template for ``key`` (a version's (id, channel, language, field)): compiled once."""
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    template = compile_template(source, blocks=blocks, autoescape=autoescape)
    with _cache_lock:
        _cache[key] = template
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return template


def cached_compiled(
    key: Hashable, produce: Callable[[], str], *, blocks: Mapping[str, str] | None = None, autoescape: bool = True
) -> Template:
    """Like :func:`cached_template`, for a source that is itself costly to make (MJML → HTML):
    ``produce`` runs only when ``key`` is not compiled yet."""
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    return cached_template(key, produce(), blocks=blocks, autoescape=autoescape)


# -- rendering ------------------------------------------------------------------------------------


_warm_locales: set[str] = set()


def _warm(context: Mapping[str, Any]) -> None:
    """Load a locale's Babel data before the clock starts: the first load takes longer than a render."""
    tag = str(context.get("locale") or context.get("lang") or "es")
    if tag in _warm_locales:
        return
    try:
        locale = Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        locale = Locale.parse("es")
    format_datetime(datetime(2026, 1, 1), "full", tzinfo=zone(str(context.get("timezone") or "UTC"), "UTC"),
                    locale=locale)
    format_currency(Decimal(1), "EUR", locale=locale)
    format_decimal(Decimal(1), locale=locale)
    _warm_locales.add(tag)


def _new_context(template: Template, context: Mapping[str, Any]) -> Context:
    """What ``template.new_context(context)`` makes, without walking the template's globals (a
    ChainMap, read key by key twice per render) every time: they are copied once per template."""
    found = template.__dict__.get("_trato_globals")
    if found is None:
        found = template.__dict__["_trato_globals"] = dict(template.globals)
    return new_context(template.environment, template.name, template.blocks, {**found, **context}, shared=True)


def render(template: Template, context: Mapping[str, Any], *, limits: Limits | None = None) -> str:
    """Render within the time and output bounds; every failure is a TemplateError with a code."""
    limits = limits or Limits.from_settings()
    _warm(context)
    started = sandbox_clock()
    budget = Budget(started + limits.timeout_ms / 1000, limits, started=started)
    token = BUDGET.set(budget)
    parts: list[str] = []
    most = limits.max_output_bytes
    total = 0  # the output's size in UTF-8: an upper bound (4 bytes a character) until it nears the limit
    exact = False
    try:
        # The hot loop of every send: output is taken 32 pieces at a time (joined in C), then
        # measured and the clock read; loops check the clock themselves as they go.
        pieces = template.root_render_func(_new_context(template, context))
        while batch := list(islice(pieces, 32)):
            text = "".join(batch)
            if text.isascii():
                total += len(text)
            elif exact:
                total += len(text.encode())
            else:  # encoding every message's text only to measure it cost more than the rest of this loop
                total += 4 * len(text)
            if total > most and not exact:
                exact = True  # near the limit: measured exactly from here on
                total = sum(len(p.encode()) for p in parts) + len(text.encode())
            if total > most:
                budget.fits(total, "the output")
            budget.tick()
            parts.append(text)
    except OverBudget as exc:
        raise TemplateError(str(exc), code=exc.code, details={"limits": vars(limits)}) from None
    except UndefinedError as exc:
        raise TemplateError(f"a variable has no value: {exc.message}", code="template_undefined_variable",
                            details={"reason": exc.message}) from None
    except SecurityError as exc:
        raise TemplateError(f"not allowed in a template: {exc.message}", code="template_unsafe",
                            details={"reason": exc.message}) from None
    except TemplateNotFound as exc:
        raise TemplateError(f"templates cannot load {exc.name!r}", code="template_include_not_allowed") from None
    except (JinjaTemplateError, ArithmeticError, ValueError, TypeError, LookupError, RecursionError,
            AttributeError, OverflowError, MemoryError) as exc:
        raise TemplateError(f"the template failed: {type(exc).__name__}: {exc}"[:500], code="template_failed",
                            details={"reason": type(exc).__name__}) from None
    finally:
        BUDGET.reset(token)
    return "".join(parts)


def render_source(source: str, context: Mapping[str, Any], *, autoescape: bool = False,
                  blocks: Mapping[str, str] | None = None, limits: Limits | None = None) -> str:
    """Compile (uncached) and render once: for previews of unsaved text and for tests."""
    return render(compile_template(source, blocks=blocks, autoescape=autoescape), context, limits=limits)
