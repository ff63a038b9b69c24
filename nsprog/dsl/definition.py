"""A DSL is data: its feature columns, named feature subsets (affine library functions),
the productions allowed per type signature and optional structural costs.

Written in YAML (or built in Python with :meth:`DSL.from_dict`) without touching library
code; validated once on construction, so a misspelt production or feature fails before
any search starts. Shipped definitions live in ``nsprog/dsl/definitions/<name>.yaml``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

__all__ = ["DSL", "DSLError", "BUILTIN_PRODUCTIONS", "SIGNATURE_KEYS", "dsls_for", "load_dsl", "shipped_dsls"]

SIGNATURE_KEYS = ("list->atom", "list->list", "atom->atom")

#: built-in combinators and the signatures (input kind -> output kind) they can fill
BUILTIN_PRODUCTIONS: dict[str, tuple[str, ...]] = {
    "MapAverage": ("list->atom",),
    "Map": ("list->list",),
    "MapPrefixes": ("list->list",),
    "RunningAverage": ("list->list",),
    "ITE": SIGNATURE_KEYS,
    "Add": SIGNATURE_KEYS,
    "Multiply": SIGNATURE_KEYS,
}

DEFINITIONS_DIR = Path(__file__).with_name("definitions")

_KEYS = {
    "name", "description", "domain", "domain_params", "features", "library", "productions",
    "costs", "ite_beta", "running_window",
}


class DSLError(ValueError):
    """A DSL definition is invalid; the message lists every problem."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = problems
        where = f" {source}" if source else ""
        super().__init__(f"invalid DSL{where}:\n" + "\n".join(f"  - {p}" for p in problems))


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class DSL:
    """A validated domain-specific language for programs over feature sequences."""

    name: str
    features: tuple[str, ...]
    library: Mapping[str, tuple[str, ...]]
    productions: Mapping[str, tuple[str, ...]]
    domain: str | None = None
    domain_params: Mapping[str, Any] = field(default_factory=dict)
    costs: Mapping[str, float] = field(default_factory=dict)
    ite_beta: float = 1.0
    running_window: int = 5
    description: str = ""

    @property
    def n_features(self) -> int:
        return len(self.features)

    def production_names(self, kinds: str) -> tuple[str, ...]:
        return tuple(self.productions.get(kinds, ()))

    def feature_indices(self, names) -> tuple[int, ...]:
        return tuple(self.features.index(n) for n in names)

    def check_windows(self, traj) -> None:
        """Raise a ``ValueError`` naming what is missing when the windows ``traj`` do not fit this
        DSL's feature domain, and which shipped DSLs would fit them."""
        from nsprog.features.pipeline import FeaturePipeline

        try:
            FeaturePipeline.for_dsl(self).check(traj)
        except ValueError as exc:
            fits = dsls_for(traj)
            hint = f"; shipped DSLs that fit these windows: {', '.join(fits)} (e.g. dsl: {fits[0]})" if fits else ""
            raise ValueError(f"{exc}{hint}") from None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "domain": self.domain,
            "domain_params": dict(self.domain_params),
            "features": list(self.features),
            "library": {k: list(v) for k, v in self.library.items()},
            "productions": {k: list(v) for k, v in self.productions.items()},
            "costs": dict(self.costs),
            "ite_beta": self.ite_beta,
            "running_window": self.running_window,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str | None = None, check_domain: bool = True) -> "DSL":
        """Validate and build a DSL; every problem is reported in one :class:`DSLError`."""
        problems: list[str] = []
        if not isinstance(d, Mapping):
            raise DSLError([f"expected a mapping; got {type(d).__name__}"], source)
        for k in d:
            if k not in _KEYS:
                problems.append(f"unknown key {k!r}{_suggest(str(k), _KEYS)}; allowed: {', '.join(sorted(_KEYS))}")
        name = d.get("name")
        if not isinstance(name, str) or not name:
            problems.append("'name' is required (a non-empty string)")
        features = d.get("features")
        if not isinstance(features, (list, tuple)) or not features or not all(isinstance(f, str) for f in features):
            problems.append("'features' is required: a non-empty list of feature names (the feature tensor's columns)")
            features = []
        features = tuple(features)
        dup = sorted({f for f in features if features.count(f) > 1})
        if dup:
            problems.append(f"features lists {dup} more than once")

        library_raw = d.get("library") or {}
        library: dict[str, tuple[str, ...]] = {}
        if not isinstance(library_raw, Mapping):
            problems.append("'library' must map a library-function name to a list of feature names")
            library_raw = {}
        for lname, feats in library_raw.items():
            if lname in BUILTIN_PRODUCTIONS:
                problems.append(f"library function {lname!r} clashes with a built-in production name")
            if isinstance(feats, str):
                feats = [feats]
            if not isinstance(feats, (list, tuple)) or not feats:
                problems.append(f"library[{lname!r}] must be a non-empty list of feature names")
                continue
            for f in feats:
                if f not in features:
                    problems.append(
                        f"library[{lname!r}] names unknown feature {f!r}{_suggest(str(f), features)}; "
                        f"features: {', '.join(features)}"
                    )
            library[str(lname)] = tuple(str(f) for f in feats)

        prods_raw = d.get("productions") or {}
        productions: dict[str, tuple[str, ...]] = {}
        if not isinstance(prods_raw, Mapping) or not prods_raw:
            problems.append(
                "'productions' is required: a mapping from a signature "
                f"({', '.join(SIGNATURE_KEYS)}) to a list of production names"
            )
            prods_raw = {}
        valid_names = list(BUILTIN_PRODUCTIONS) + list(library)
        for kinds, names in prods_raw.items():
            if kinds not in SIGNATURE_KEYS:
                problems.append(f"productions: unknown signature {kinds!r}; expected one of {', '.join(SIGNATURE_KEYS)}")
                continue
            if not isinstance(names, (list, tuple)):
                problems.append(f"productions[{kinds!r}] must be a list of production names")
                continue
            for p in names:
                if p in BUILTIN_PRODUCTIONS:
                    if kinds not in BUILTIN_PRODUCTIONS[p]:
                        problems.append(
                            f"production {p!r} cannot fill {kinds}; it has signature "
                            f"{' or '.join(BUILTIN_PRODUCTIONS[p])}"
                        )
                elif p in library:
                    if kinds != "atom->atom":
                        problems.append(f"library function {p!r} is atom->atom and cannot be listed under {kinds}")
                else:
                    problems.append(
                        f"productions[{kinds!r}] names unknown production {p!r}{_suggest(str(p), valid_names)}; "
                        f"valid: {', '.join(valid_names)}"
                    )
            productions[kinds] = tuple(str(p) for p in names)

        costs_raw = d.get("costs") or {}
        costs = {}
        for p, c in dict(costs_raw).items():
            if p not in valid_names:
                problems.append(f"costs names unknown production {p!r}; valid: {', '.join(valid_names)}")
            elif not isinstance(c, (int, float)) or c < 0:
                problems.append(f"costs[{p!r}] must be a number >= 0; got {c!r}")
            else:
                costs[str(p)] = float(c)
        ite_beta = d.get("ite_beta", 1.0)
        if not isinstance(ite_beta, (int, float)) or ite_beta <= 0:
            problems.append(f"ite_beta must be a number > 0; got {ite_beta!r}")
        window = d.get("running_window", 5)
        if not isinstance(window, int) or window < 1:
            problems.append(f"running_window must be an integer >= 1; got {window!r}")

        domain = d.get("domain")
        domain_params = dict(d.get("domain_params") or {})
        if domain is not None and check_domain:
            from nsprog.features.registry import DOMAINS, get_domain

            if domain not in DOMAINS:
                problems.append(f"unknown domain {domain!r}; available: {', '.join(sorted(DOMAINS))}")
            else:
                available = get_domain(domain, **domain_params).feature_names
                for f in features:
                    if f not in available:
                        problems.append(
                            f"feature {f!r} is not provided by domain {domain!r}{_suggest(f, available)}; "
                            f"available: {', '.join(available)}"
                        )
        if problems:
            raise DSLError(problems, source)
        return cls(
            name=name,
            features=features,
            library=library,
            productions=productions,
            domain=domain,
            domain_params=domain_params,
            costs=costs,
            ite_beta=float(ite_beta),
            running_window=int(window),
            description=str(d.get("description", "")),
        )


def dsls_for(traj) -> list[str]:
    """Shipped DSLs whose feature domain accepts the windows ``traj`` (for error messages)."""
    from nsprog.features.registry import get_domain

    fits = []
    for name in shipped_dsls():
        try:
            dsl = load_dsl(name)
            get_domain(dsl.domain, **dict(dsl.domain_params)).prepare(traj)
        except Exception:  # noqa: BLE001 - only probing which DSLs fit
            continue
        fits.append(name)
    return fits


def shipped_dsls() -> list[str]:
    return sorted(p.stem for p in DEFINITIONS_DIR.glob("*.yaml"))


def load_dsl(spec: str | Path | Mapping | DSL) -> DSL:
    """A DSL from a shipped name (``synthetic``), a YAML path, a mapping or a DSL."""
    if isinstance(spec, DSL):
        return spec
    if isinstance(spec, Mapping):
        return DSL.from_dict(spec)
    path = Path(spec)
    if not path.suffix and not path.exists():
        path = DEFINITIONS_DIR / f"{spec}.yaml"
        if not path.exists():
            raise KeyError(f"unknown DSL {str(spec)!r}; shipped DSLs: {', '.join(shipped_dsls())}, or give a YAML path")
    if not path.is_file():
        raise FileNotFoundError(f"DSL file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DSLError([f"not valid YAML: {exc}"], str(path)) from exc
    return DSL.from_dict(data, source=str(path))
