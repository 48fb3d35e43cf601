"""The bounds of a template render, on top of Jinja's sandbox: time and output size.

Every ``{% for %}`` loop (see :func:`bounded_iter`), call, filter and piece of output checks the
deadline; ``*``, ``+``, ``~``, ``%``, ``**``, ``str.format`` padding, ``join`` and the numeric
arguments of sizing filters and ``str`` methods are checked *before* Python allocates the
result, so a bomb fails at once instead of exhausting memory. The budget of the render in
progress is a context variable set by :func:`trato.content.templating.render`.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any, Final

from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from trato.core.settings import get_settings

MAX_EXPONENT_BITS: Final = 4096


@dataclass(frozen=True)
class Limits:
    timeout_ms: int = 200
    max_output_bytes: int = 1024 * 1024

    @classmethod
    def from_settings(cls) -> Limits:
        settings = get_settings()
        return cls(settings.template_timeout_ms, settings.template_max_output_bytes)


class OverBudget(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# A render's time is the CPU time of the thread running it: a template cannot wait for anything,
# so CPU time is what it costs, and a loaded machine that leaves the thread waiting for a core
# does not make a good template fail (wall time did, now and then, on a busy 2-core machine).
clock = time.thread_time
wall_clock = time.perf_counter


class Budget:
    """A render's bounds. The deadline is in the thread's CPU time (see ``clock``), but reading that
    clock is a system call (~0.6 µs here, against ~0.05 µs for the wall clock) and a render ticks
    dozens of times: ticks read the wall clock, and the CPU clock only once the wall clock says the
    time could be up. A thread cannot use more CPU time than wall time passes, so a render is never
    stopped later than it would have been, and a render kept waiting for a core is not stopped early."""

    __slots__ = ("deadline", "limits", "_wall_deadline")

    def __init__(self, deadline: float, limits: Limits, *, started: float | None = None) -> None:
        self.deadline = deadline
        self.limits = limits
        # CPU time left now, as wall time from now: the earliest the deadline can be reached.
        left = deadline - (clock() if started is None else started)
        self._wall_deadline = wall_clock() + left

    def tick(self) -> None:
        if wall_clock() > self._wall_deadline:
            self._check_cpu()

    def _check_cpu(self) -> None:
        left = self.deadline - clock()
        if left < 0:
            raise OverBudget("template_timeout", f"the template ran longer than {self.limits.timeout_ms} ms")
        self._wall_deadline = wall_clock() + left

    def fits(self, size: int, what: str) -> None:
        if size > self.limits.max_output_bytes:
            raise OverBudget(
                "template_too_large", f"{what} would exceed {self.limits.max_output_bytes} bytes of output"
            )


BUDGET: ContextVar[Budget | None] = ContextVar("trato_template_budget", default=None)
# Outside a render (compile-time constant folding) a generous budget still refuses bombs.
IDLE = Budget(float("inf"), Limits())


def current() -> Budget:
    return BUDGET.get() or IDLE


def _size(value: Any) -> int:
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, list | tuple):
        return sum(len(item) if isinstance(item, str | bytes) else 1 for item in value)
    return 0


_WIDTH = re.compile(r"\d+")
_PERCENT_WIDTH = re.compile(r"%[-#0 +]*(\d*)(?:\.(\d+))?")


def _check_numbers(args: Iterable[Any], budget: Budget) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > budget.limits.max_output_bytes:
            budget.fits(abs(arg), f"an argument of {arg}")


def _check_format_spec(text: str, budget: Budget) -> None:
    """Padding and precision in ``str.format`` fields: ``{:>999999999}`` is refused up front."""
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return  # Python raises the format error itself
    for _literal, _field, spec, _conversion in fields:
        for number in _WIDTH.findall(spec or ""):
            budget.fits(int(number), "a format width")


def _check_percent(text: str, right: Any, budget: Budget) -> None:
    for width, precision in _PERCENT_WIDTH.findall(text):
        for number in (width, precision):
            if number:
                budget.fits(int(number), "a format width")
    _check_numbers(right if isinstance(right, tuple) else (right,), budget)


_DICT_ATTRIBUTES: Final = frozenset(dir(dict))


class TratoSandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox with trato's time and size bounds (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # ``customer.first_name`` on a plain dict: Jinja tries the attribute first and, a dict having
        # none of that name, takes the key. Same result without raising and catching AttributeError
        # for every variable of every message (names that are dict attributes still go the long way).
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = current()
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
                    raise OverBudget("template_too_large", "a power this large is not computed in a template")
        elif operator == "%" and isinstance(left, str):
            _check_percent(left, right, budget)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = current()
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


def bounded_iter(value: Any) -> Iterator[Any]:
    """What every ``{% for %}`` iterates over: the deadline is checked every 64 items."""
    budget = current()
    for index, item in enumerate(value):
        if not index & 63:
            budget.tick()
        yield item


def sized(value: Any) -> Any:
    current().fits(_size(value), "joining text")
    return value


# Filters whose numeric arguments set the size of their result (``"x"|center(10**9)``).
_SIZING_FILTERS: Final = frozenset({"center", "indent", "wordwrap", "truncate", "batch", "slice"})


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A built-in filter with its result measured (and its sizing arguments bounded first)."""
    first_argument = 2 if hasattr(func, "jinja_pass_arg") else 1  # after the context and the value
    sizing = name in _SIZING_FILTERS

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.tick()
        if sizing:
            _check_numbers(args[first_argument:], budget)
            _check_numbers(kwargs.values(), budget)
        result = func(*args, **kwargs)
        if isinstance(result, str | list | tuple):
            budget.fits(_size(result), "a filter's result")
        return result

    return guarded


def bounded_join(value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    budget = current()
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


def bounded_format(value: str, *args: Any, **kwargs: Any) -> str:
    text = str(value)
    _check_percent(text, args or tuple(kwargs.values()), current())
    return text % (kwargs or args)
