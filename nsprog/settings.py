"""Settings dataclasses that check themselves: constraints as data.

Every settings class derives from :class:`Settings`. Its fields' type hints say what a
value may be (``Literal`` choices, ``int``, ``float``, ``bool``, ``X | None``, lists,
nested settings) and :func:`param` adds numeric bounds. The check runs when an object is
built, from Python and from YAML alike, and reports every problem at once in one form:
``field: expected ...; got ... (did you mean ...?)``.

    @dataclass
    class MySettings(Settings):
        mode: Literal["a", "b"] = "a"
        lr: float = param(1e-3, gt=0)
        epochs: int = param(10, ge=1)
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
from dataclasses import MISSING, field
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

__all__ = ["Settings", "ConfigError", "param", "check_settings", "literal_problem", "describe_type"]


class ConfigError(ValueError):
    """A config or settings object is invalid; ``problems`` lists every issue (``field: what is wrong``)."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        if len(self.problems) == 1:
            super().__init__(f"invalid config{where}: {self.problems[0]}")
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            super().__init__(f"invalid config{where} ({len(self.problems)} problems):\n{lines}")


@dataclasses.dataclass(frozen=True)
class Bounds:
    """Numeric bounds of a field; ``None`` means unbounded on that side."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def describe(self) -> str:
        parts = []
        if self.ge is not None:
            parts.append(f">= {self.ge:g}")
        if self.gt is not None:
            parts.append(f"> {self.gt:g}")
        if self.le is not None:
            parts.append(f"<= {self.le:g}")
        if self.lt is not None:
            parts.append(f"< {self.lt:g}")
        return " and ".join(parts)

    def holds(self, v: float) -> bool:
        return ((self.ge is None or v >= self.ge) and (self.gt is None or v > self.gt)
                and (self.le is None or v <= self.le) and (self.lt is None or v < self.lt))


def param(default: Any = MISSING, *, default_factory: Any = MISSING, ge: float | None = None,
          gt: float | None = None, le: float | None = None, lt: float | None = None, allow_inf: bool = False):
    """A dataclass field with numeric bounds (checked on construction; NaN is never allowed,
    infinity only with ``allow_inf``)."""
    meta = {"bounds": Bounds(ge, gt, le, lt), "allow_inf": allow_inf}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def describe_type(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(describe_type(a) for a in get_args(tp))
    if origin in (list, tuple):
        (arg,) = get_args(tp)[:1] or (Any,)
        return f"a list of {describe_type(arg)}"
    if origin is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} fields"
    return getattr(tp, "__name__", str(tp))


def literal_problem(key: str, allowed: tuple, value: Any) -> str:
    """The one message form for a value outside a set of choices."""
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, [str(a) for a in allowed], n=1, cutoff=0.5)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
    return f"{key}: expected one of {', '.join(repr(a) for a in allowed)}; got {value!r}{hint}"


def _type_problem(key: str, value: Any, tp: Any) -> str | None:
    """None when ``value`` fits ``tp``, else the message."""
    origin = get_origin(tp)
    if tp is Any:
        return None
    if origin is Literal:
        allowed = get_args(tp)
        return None if value in allowed else literal_problem(key, allowed, value)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        candidates = [a for a in args if a is not type(None)]
        msgs = [_type_problem(key, value, a) for a in candidates]
        if any(m is None for m in msgs):
            return None
        if len(candidates) == 1:
            m = msgs[0]
            return m if type(None) not in args else m.replace("; got", " or null; got", 1)
        return f"{key}: expected {describe_type(tp)}; got {value!r}"
    if dataclasses.is_dataclass(tp):
        return None if isinstance(value, tp) else f"{key}: expected {describe_type(tp)}; got {value!r}"
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return f"{key}: expected {describe_type(tp)}; got {value!r}"
        (arg,) = get_args(tp)[:1] or (Any,)
        for i, v in enumerate(value):
            m = _type_problem(f"{key}[{i}]", v, arg)
            if m:
                return m
        return None
    if origin is dict:
        return None if isinstance(value, dict) else f"{key}: expected a mapping; got {value!r}"
    if tp is bool:
        return None if isinstance(value, bool) else f"{key}: expected true or false; got {value!r}"
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"{key}: expected an integer; got {value!r}"
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"{key}: expected a number; got {value!r}"
    if tp is str:
        return None if isinstance(value, str) else f"{key}: expected a string; got {value!r}"
    return None


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict:
    return get_type_hints(cls)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_settings(obj: Any) -> list[str]:
    """Every problem of a settings dataclass instance, ``field: message`` each."""
    problems: list[str] = []
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        if not f.init or f.name.startswith("_"):
            continue
        value = getattr(obj, f.name)
        msg = _type_problem(f.name, value, hints.get(f.name, Any))
        if msg:
            problems.append(msg)
            continue
        if _is_number(value):
            if isinstance(value, float) and math.isnan(value):
                problems.append(f"{f.name}: expected a number; got nan")
                continue
            if isinstance(value, float) and math.isinf(value) and not f.metadata.get("allow_inf", False):
                problems.append(f"{f.name}: expected a finite number; got {value!r}")
                continue
            bounds: Bounds | None = f.metadata.get("bounds")
            if bounds is not None and not bounds.holds(value):
                tp = hints.get(f.name, Any)
                nullable = get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp)
                problems.append(f"{f.name}: expected a value {bounds.describe()}{' or null' if nullable else ''}; "
                                f"got {value!r}")
    return problems


class Settings:
    """Mixin for settings dataclasses: every field is checked when the object is built.

    Subclasses with further rules (relations between fields) override :meth:`_extra_checks`
    and return messages in the same ``field: ...`` form.
    """

    def __post_init__(self) -> None:
        problems = check_settings(self)
        if not problems:
            problems = list(self._extra_checks())
        if problems:
            raise ConfigError(problems, type(self).__name__)

    def _extra_checks(self) -> list[str]:
        return []
