"""YAML configs mapped onto dataclasses, with strict key checking and dotted overrides.

Every problem in a config (unknown or misspelt keys, wrong types, values outside their
allowed set) is collected and raised once as a :class:`ConfigError` that names the key,
what was expected and what was found; nothing is ignored silently.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from nsprog.settings import ConfigError, describe_type, literal_problem

__all__ = [
    "ConfigError",
    "from_dict",
    "to_dict",
    "parse_overrides",
    "apply_overrides",
    "load_yaml",
    "load_config",
    "dump_config",
]

T = TypeVar("T")


def _convert(value: Any, tp: Any, key: str, problems: list[str]) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            problems.append(literal_problem(key, allowed, value))
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            trial: list[str] = []
            out = _convert(value, arg, key, trial)
            if not trial:
                return out
        problems.append(f"{key}: expected {describe_type(tp)}; got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(f"{key}: expected a mapping of {tp.__name__} fields; got {value!r}")
            return value
        return _from_dict(tp, value, key, problems)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            problems.append(f"{key}: expected a list; got {value!r}")
            return value
        (arg,) = get_args(tp)[:1] or (Any,)
        out = [_convert(v, arg, f"{key}[{i}]", problems) for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{key}: expected a mapping; got {value!r}")
            return value
        _, varg = get_args(tp) or (Any, Any)
        return {str(k): _convert(v, varg, f"{key}.{k}", problems) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(f"{key}: expected true or false; got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            problems.append(f"{key}: expected an integer; got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "2e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{key}: expected a number; got {value!r}")
            return value
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            problems.append(f"{key}: expected a string; got {value!r}")
        return value
    return value


def _deep_merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _from_dict(cls: type[T], data: dict, prefix: str, problems: list[str]) -> T:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                f"{full}: unknown key{hint}; allowed keys{' of ' + prefix if prefix else ''}: "
                + ", ".join(sorted(fields))
            )
            continue
        factory = fields[key].default_factory
        if isinstance(value, dict) and factory is not dataclasses.MISSING:
            base = factory()
            if dataclasses.is_dataclass(base):  # a partial section keeps the field's own defaults
                value = _deep_merge(to_dict(base), value)
        kwargs[key] = _convert(value, hints[key], full, problems)
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            full = f"{prefix}.{name}" if prefix else name
            problems.append(f"{full}: required key is missing (expected {describe_type(hints[name])})")
    if problems:
        # still build what we can so nested errors are all reported; caller raises
        try:
            return cls(**kwargs)
        except Exception:  # noqa: BLE001 - a partial object is only for error collection
            return None  # type: ignore[return-value]
    try:
        obj = cls(**kwargs)
    except ConfigError as exc:  # the class's own checks (nsprog.settings), re-keyed by section
        problems.extend(f"{prefix}.{p}" if prefix else p for p in exc.problems)
        return None  # type: ignore[return-value]
    except (TypeError, ValueError) as exc:
        problems.append(f"{prefix or cls.__name__}: {exc}")
        return None  # type: ignore[return-value]
    return obj


def from_dict(cls: type[T], data: dict | None, source: str | None = None) -> T:
    """Build dataclass ``cls`` from a plain mapping, raising one :class:`ConfigError` for all problems."""
    problems: list[str] = []
    obj = _from_dict(cls, data or {}, "", problems)
    if problems:
        raise ConfigError(problems, source)
    return obj


def to_dict(obj: Any) -> Any:
    """Convert a (nested) dataclass config into plain YAML-safe data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def parse_overrides(items: list[str] | None) -> list[tuple[list[str], Any]]:
    """Parse ``["train.epochs=3", "data.path=x.h5"]``; values are read as YAML scalars."""
    parsed = []
    problems = []
    for item in items or []:
        if "=" not in item:
            problems.append(f"override {item!r}: expected KEY=VALUE with a dotted key, e.g. train.epochs=3")
            continue
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            problems.append(f"override {item!r}: the key {key!r} is empty or has an empty part")
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        parsed.append((key.split("."), value))
    if problems:
        raise ConfigError(problems, "--set")
    return parsed


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """Return a copy of ``data`` with dotted ``KEY=VALUE`` overrides applied."""
    import copy

    out = copy.deepcopy(data or {})
    for parts, value in parse_overrides(overrides):
        node = out
        for part in parts[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            elif not isinstance(nxt, dict):
                raise ConfigError([f"override {'.'.join(parts)}: {part!r} is a value, not a section"], "--set")
            node = nxt
        node[parts[-1]] = value
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (YAML
    would silently keep the last value)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1});"
                    " keep one", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, naming the file in any error (duplicate keys included)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or " ".join(str(exc).split())
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError([f"not valid YAML: {what}{where}"], str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not a text file ({exc.reason} at byte {exc.start})"], str(path)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"the top level must be a mapping of sections; got {type(data).__name__}"], str(path))
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None,
                base: list[str] | None = None) -> T:
    """Load ``cls`` from a YAML file (or defaults when ``path`` is None) plus dotted overrides.

    ``base`` overrides (a preset's values) apply first: the file's values and then
    ``overrides`` win over them."""
    data = apply_overrides({}, base) if base else {}
    if path is not None:
        data = _deep_merge(data, load_yaml(path))
    data = apply_overrides(data, overrides)
    return from_dict(cls, data, str(path) if path is not None else ("--set" if overrides else "the defaults"))


def dump_config(obj: Any) -> str:
    """YAML text of a resolved config (every default filled in)."""
    return yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=False)


# typing helpers re-exported for config modules
Optional = typing.Optional
