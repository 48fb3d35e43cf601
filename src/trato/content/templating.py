"""Personalisation: Jinja2 templates that run in a sandbox, with bounds on time and output.

Nothing a template author writes can reach Python: templates run in a
:class:`~jinja2.sandbox.SandboxedEnvironment` (no ``_``-attributes, no ``__class__`` or
``__subclasses__``, ``str.format`` sandboxed), with :class:`~jinja2.StrictUndefined` so a
missing value fails instead of printing nothing. On top of Jinja's sandbox this module bounds
what a template can cost:

- **time**: every ``{% for %}`` loop, every call and every piece of output checks a deadline
  (``TRATO_TEMPLATE_TIMEOUT_MS``, default 200 ms) → ``template_timeout``;
- **size**: output is counted as it is produced (``TRATO_TEMPLATE_MAX_OUTPUT_BYTES``, default
  1 MB) → ``template_too_large``; ``*``, ``+``, ``~``, ``%``, ``**``, ``str.format`` padding and
  numeric arguments to filters and methods are checked *before* Python allocates the result, so
  ``"x" * 10**10`` or ``"{:>999999999}".format(1)`` fail at once instead of exhausting memory.

Which variables a template uses is known before it is ever sent: :func:`unknown_variables`
reads the template's syntax tree (``jinja2.meta``) and names every top-level name outside
:data:`CONTEXT_NAMES`. Content blocks are inlined at compile time from the pinned block texts
a version gives (``{% include "blocks/footer" %}``); ``extends``/``import`` are refused.

Compiled templates are cached per (version, channel, language, field): versions never change.
"""

from __future__ import annotations

import re
import string
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any, Final

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from jinja2 import DictLoader, StrictUndefined, Template, TemplateSyntaxError, meta, nodes, pass_context
from jinja2.exceptions import SecurityError, TemplateError as JinjaTemplateError, TemplateNotFound, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from trato.content.errors import TemplateError
from trato.core.clock import parse_timestamp
from trato.core.i18n import zone
from trato.core.settings import get_settings

CONTEXT_NAMES: Final[frozenset[str]] = frozenset(
    {"customer", "identities", "computed", "data", "company", "links", "lang", "locale", "timezone", "now"}
)
"""Top-level names a template may use; everything else is an unknown variable."""

BLOCK_PREFIX: Final = "blocks/"
MAX_BLOCK_DEPTH: Final = 4
MAX_EXPONENT_BITS: Final = 4096
_BOUNDED_ITER = "trato_bounded"
_BOUNDED_SIZE = "trato_sized"


@dataclass(frozen=True)
class Limits:
    timeout_ms: int = 200
    max_output_bytes: int = 1024 * 1024

    @classmethod
    def from_settings(cls) -> Limits:
        settings = get_settings()
        return cls(settings.template_timeout_ms, settings.template_max_output_bytes)


class _OverBudget(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class _Budget:
    deadline: float
    limits: Limits

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise _OverBudget("template_timeout", f"the template ran longer than {self.limits.timeout_ms} ms")

    def fits(self, size: int, what: str) -> None:
        if size > self.limits.max_output_bytes:
            raise _OverBudget(
                "template_too_large", f"{what} would exceed {self.limits.max_output_bytes} bytes of output"
            )


_budget: ContextVar[_Budget | None] = ContextVar("trato_template_budget", default=None)
# Outside a render (compile-time constant folding) a generous budget still refuses bombs.
_IDLE = _Budget(float("inf"), Limits())


def _current() -> _Budget:
    return _budget.get() or _IDLE


def _size(value: Any) -> int:
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, list | tuple):
        return sum(len(item) if isinstance(item, str | bytes) else 1 for item in value)
    return 0


_WIDTH = re.compile(r"\d+")
_PERCENT_WIDTH = re.compile(r"%[-#0 +]*(\d*)(?:\.(\d+))?")


def _check_numbers(args: Iterable[Any], budget: _Budget) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > budget.limits.max_output_bytes:
            budget.fits(abs(arg), f"an argument of {arg}")


def _check_format_spec(text: str, budget: _Budget) -> None:
    """Padding and precision in ``str.format`` fields: ``{:>999999999}`` is refused up front."""
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return  # Python raises the format error itself
    for _literal, _field, spec, _conversion in fields:
        for number in _WIDTH.findall(spec or ""):
            budget.fits(int(number), "a format width")


def _check_percent(text: str, right: Any, budget: _Budget) -> None:
    for width, precision in _PERCENT_WIDTH.findall(text):
        for number in (width, precision):
            if number:
                budget.fits(int(number), "a format width")
    _check_numbers(right if isinstance(right, tuple) else (right,), budget)


class TratoSandbox(SandboxedEnvironment):
    """Jinja's sandbox with trato's time and size bounds (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = _current()
        budget.tick()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(times, int) and _size(seq):
                    budget.fits(_size(seq) * max(times, 0), "repeating text")
        elif operator == "+":
            budget.fits(_size(left) + _size(right), "joining text")
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0:
                if max(abs(left), 2).bit_length() * right > MAX_EXPONENT_BITS:
                    raise _OverBudget("template_too_large", "a power this large is not computed in a template")
        elif operator == "%" and isinstance(left, str):
            _check_percent(left, right, budget)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = _current()
        budget.tick()
        target = getattr(__obj, "__wrapped__", __obj)
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str | bytes | list | tuple):  # "x".center(10**9), "x".zfill(...)
            _check_numbers(args, budget)
            _check_numbers(kwargs.values(), budget)
        if isinstance(owner, str):
            name = getattr(target, "__name__", "")
            if name in ("format", "format_map"):
                _check_format_spec(owner, budget)
            elif name == "join" and args:
                budget.fits(_size(list(args[0])) + len(owner) * max(len(args[0]) - 1, 0)
                            if isinstance(args[0], list | tuple) else 0, "joining text")
        result = super().call(__context, __obj, *args, **kwargs)
        budget.fits(_size(result), "a value")
        return result


def _bounded_iter(value: Any) -> Iterator[Any]:
    """What every ``{% for %}`` iterates over: the deadline is checked every 64 items."""
    budget = _current()
    for index, item in enumerate(value):
        if not index & 63:
            budget.tick()
        yield item


def _sized(value: Any) -> Any:
    _current().fits(_size(value), "joining text")
    return value


# Filters whose numeric arguments set the size of their result (``"x"|center(10**9)``).
_SIZING_FILTERS: Final = frozenset({"center", "indent", "wordwrap", "truncate", "batch", "slice"})


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A built-in filter with its result measured (and its sizing arguments bounded first)."""
    first_argument = 2 if hasattr(func, "jinja_pass_arg") else 1  # after the context and the value
    sizing = name in _SIZING_FILTERS

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = _current()
        budget.tick()
        if sizing:
            _check_numbers(args[first_argument:], budget)
            _check_numbers(kwargs.values(), budget)
        result = func(*args, **kwargs)
        if isinstance(result, str | list | tuple):
            budget.fits(_size(result), "a filter's result")
        return result

    return guarded


def _bounded_join(value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    budget = _current()
    parts: list[str] = []
    total = 0
    for index, item in enumerate(value):
        if attribute is not None:
            item = item[attribute] if isinstance(item, Mapping) else getattr(item, str(attribute))
        text = str(item)
        total += len(text) + (len(d) if index else 0)
        budget.fits(total, "joining text")
        parts.append(text)
    return d.join(parts)


def _bounded_format(value: str, *args: Any, **kwargs: Any) -> str:
    text = str(value)
    _check_percent(text, args or tuple(kwargs.values()), _current())
    return text % (kwargs or args)


# -- locale-aware filters (Babel) ------------------------------------------------------------------


def _locale(context: Context) -> Locale:
    tag = str(context.get("locale") or context.get("lang") or "es").replace("-", "_")
    try:
        return Locale.parse(tag)
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale.parse("es")


def _moment(value: Any, what: str) -> datetime | date:
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        return date.fromisoformat(value.strip())
    parsed = parse_timestamp(value)
    if parsed is None:
        raise ValueError(f"{what}: {value!r} is not a date or time (use ISO 8601, e.g. 2026-03-01)")
    return parsed


@pass_context
def _date_filter(context: Context, value: Any, format: str = "medium") -> str:  # noqa: A002
    moment = _moment(value, "date")
    if isinstance(moment, datetime):
        moment = moment.astimezone(zone(context.get("timezone"), "UTC")).date()
    return format_date(moment, format, locale=_locale(context))


@pass_context
def _datetime_filter(context: Context, value: Any, format: str = "medium") -> str:  # noqa: A002
    moment = _moment(value, "datetime")
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    return format_datetime(moment, format, tzinfo=zone(context.get("timezone"), "UTC"), locale=_locale(context))


def _decimal(value: Any, what: str) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{what}: {value!r} is not a number") from None


@pass_context
def _money_filter(context: Context, value: Any, currency: str | None = None) -> str:
    """An amount in the currency's units (``49.9``) as money in the customer's locale."""
    company = context.get("company") or {}
    code = currency or (company.get("currency") if isinstance(company, Mapping) else None) or "EUR"
    return format_currency(_decimal(value, "money"), str(code), locale=_locale(context))


@pass_context
def _number_filter(context: Context, value: Any, decimals: int | None = None) -> str:
    number = _decimal(value, "number")
    pattern = None if decimals is None else "#,##0" + ("." + "0" * max(0, min(int(decimals), 10)) if decimals else "")
    return format_decimal(number, format=pattern, locale=_locale(context))


def _environment(autoescape: bool) -> TratoSandbox:
    env = TratoSandbox(
        autoescape=autoescape, undefined=StrictUndefined, loader=DictLoader({}), auto_reload=False,
        keep_trailing_newline=True, cache_size=0,
    )
    for name, func in list(env.filters.items()):
        env.filters[name] = _guard_filter(name, func)
    env.filters.update(
        join=_bounded_join, format=_bounded_format,
        date=_date_filter, datetime=_datetime_filter, money=_money_filter, number=_number_filter,
        **{_BOUNDED_ITER: _bounded_iter, _BOUNDED_SIZE: _sized},
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
    except _OverBudget as exc:  # a constant bomb folded at compile time
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


def render(template: Template, context: Mapping[str, Any], *, limits: Limits | None = None) -> str:
    """Render within the time and output bounds; every failure is a TemplateError with a code."""
    limits = limits or Limits.from_settings()
    _warm(context)
    budget = _Budget(time.monotonic() + limits.timeout_ms / 1000, limits)
    token = _budget.set(budget)
    parts: list[str] = []
    total = 0
    try:
        for chunk in template.generate(context):
            total += len(chunk) if chunk.isascii() else len(chunk.encode())
            budget.fits(total, "the output")
            budget.tick()
            parts.append(chunk)
    except _OverBudget as exc:
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
        _budget.reset(token)
    return "".join(parts)


def render_source(source: str, context: Mapping[str, Any], *, autoescape: bool = False,
                  blocks: Mapping[str, str] | None = None, limits: Limits | None = None) -> str:
    """Compile (uncached) and render once: for previews of unsaved text and for tests."""
    return render(compile_template(source, blocks=blocks, autoescape=autoescape), context, limits=limits)
