"""Productions as tree builders, and the minimum depth each signature needs to complete."""

from __future__ import annotations

from nsprog.dsl.ast import ITE, Add, Affine, Hole, Map, MapAverage, MapPrefixes, Multiply, Node, RunningAverage
from nsprog.dsl.definition import DSL, SIGNATURE_KEYS
from nsprog.dsl.types import ATOM, Sig, Type

__all__ = ["expand", "n_new_holes", "child_kinds", "min_depths", "production_cost"]


def expand(production: str, sig: Sig, dsl: DSL) -> Node:
    """The node for ``production`` at signature ``sig``, with holes for its arguments."""
    atom_fn = Sig(Type(ATOM, sig.inp.dim), Type(ATOM, sig.out.dim))
    if production == "MapAverage":
        return MapAverage(sig, fn=Hole(atom_fn))
    if production == "Map":
        return Map(sig, fn=Hole(atom_fn))
    if production == "MapPrefixes":
        return MapPrefixes(sig, fn=Hole(Sig(sig.inp, Type(ATOM, sig.out.dim))))
    if production == "RunningAverage":
        return RunningAverage(sig, fn=Hole(atom_fn), window=dsl.running_window)
    if production == "ITE":
        return ITE(sig, cond=Hole(Sig(sig.inp, Type(ATOM, 1))), then=Hole(sig), orelse=Hole(sig), beta=dsl.ite_beta)
    if production == "Add":
        return Add(sig, a=Hole(sig), b=Hole(sig))
    if production == "Multiply":
        return Multiply(sig, a=Hole(sig), b=Hole(sig))
    if production in dsl.library:
        return Affine(sig, library=production, features=dsl.library[production])
    raise KeyError(f"DSL {dsl.name!r} has no production {production!r}")


def child_kinds(production: str, kinds: str, dsl: DSL) -> tuple[str, ...]:
    """Signature keys of the holes that ``production`` introduces at ``kinds``."""
    inp = kinds.split("->")[0]
    return {
        "MapAverage": ("atom->atom",),
        "Map": ("atom->atom",),
        "RunningAverage": ("atom->atom",),
        "MapPrefixes": ("list->atom",),
        "ITE": (f"{inp}->atom", kinds, kinds),
        "Add": (kinds, kinds),
        "Multiply": (kinds, kinds),
    }.get(production, ())


def n_new_holes(production: str, kinds: str, dsl: DSL) -> int:
    return len(child_kinds(production, kinds, dsl))


def production_cost(production: str, kinds: str, dsl: DSL, penalty: float) -> float:
    """Structural cost of one edge: ``penalty`` x holes introduced, unless the DSL overrides it."""
    if production in dsl.costs:
        return dsl.costs[production]
    return penalty * n_new_holes(production, kinds, dsl)


def min_depths(dsl: DSL) -> dict[str, float]:
    """Fewest levels a complete subtree of each signature needs (inf if it can never complete)."""
    inf = float("inf")
    best = {k: inf for k in SIGNATURE_KEYS}
    changed = True
    while changed:
        changed = False
        for kinds in SIGNATURE_KEYS:
            for p in dsl.production_names(kinds):
                kids = child_kinds(p, kinds, dsl)
                d = 1 + max((best[k] for k in kids), default=0)
                if d < best[kinds]:
                    best[kinds] = d
                    changed = True
    return best
