"""JSON form of programs, round-tripping structure and parameters, with validation.

A node is ``{"node": NAME, "sig": ["list", 4, "atom", 1], "children": [...], "params":
{...}}`` plus ``library``/``features`` for affine functions, ``window`` for running averages
and ``beta`` for ITE. Loading checks that every child has the type its production gives it,
that affine features exist in the DSL, and (with ``require_params``) that every parameter
is present.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from nsprog.dsl.ast import NODE_TYPES, ITE, Affine, Hole, Node, RunningAverage
from nsprog.dsl.definition import BUILTIN_PRODUCTIONS, DSL
from nsprog.dsl.grammar import expand
from nsprog.dsl.types import Sig, Type

__all__ = ["ProgramFormatError", "program_to_json", "program_from_json"]


class ProgramFormatError(ValueError):
    """A stored program is malformed; the message names the node path and the field."""


def program_to_json(node: Node) -> dict:
    d: dict[str, Any] = {
        "node": node.production,
        "sig": [node.sig.inp.kind, node.sig.inp.dim, node.sig.out.kind, node.sig.out.dim],
    }
    if isinstance(node, Affine):
        d["library"] = node.library
        d["features"] = list(node.features)
    if isinstance(node, RunningAverage):
        d["window"] = node.window
    if isinstance(node, ITE):
        d["beta"] = node.beta
    if node.children:
        d["children"] = [program_to_json(c) for c in node.children]
    if node.params is not None:
        d["params"] = {k: np.asarray(v).tolist() for k, v in node.params.items()}
    return d


def _sig(raw, where) -> Sig:
    try:
        ik, idim, ok, odim = raw
        return Sig(Type(ik, int(idim)), Type(ok, int(odim)))
    except (TypeError, ValueError) as exc:
        raise ProgramFormatError(f"{where}: field 'sig' must be [in_kind, in_dim, out_kind, out_dim]; got {raw!r} ({exc})")


def program_from_json(
    d: Mapping, dsl: DSL | None = None, require_params: bool = False, where: str = "program"
) -> Node:
    """Rebuild a program, validating types, features and (optionally) parameters."""
    if not isinstance(d, Mapping):
        raise ProgramFormatError(f"{where}: expected an object; got {type(d).__name__}")
    name = d.get("node")
    if name not in NODE_TYPES:
        raise ProgramFormatError(f"{where}: unknown node {name!r}; expected one of {', '.join(NODE_TYPES)}")
    if "sig" not in d:
        raise ProgramFormatError(f"{where}: field 'sig' is missing")
    sig = _sig(d["sig"], where)
    if name in BUILTIN_PRODUCTIONS and sig.kinds not in BUILTIN_PRODUCTIONS[name]:
        raise ProgramFormatError(
            f"{where}: type mismatch: {name} has signature {' or '.join(BUILTIN_PRODUCTIONS[name])}, not {sig.kinds}"
        )
    raw_kids = d.get("children", [])
    kids = tuple(
        program_from_json(c, dsl, require_params, f"{where}.{name}[{i}]") for i, c in enumerate(raw_kids)
    )
    params = d.get("params")
    if params is not None and not isinstance(params, Mapping):
        raise ProgramFormatError(f"{where}: field 'params' must be an object of arrays")
    cls = NODE_TYPES[name]
    if cls is Affine:
        if sig.kinds != "atom->atom":
            raise ProgramFormatError(f"{where}: type mismatch: an affine library function is atom->atom, not {sig.kinds}")
        feats = d.get("features")
        if not isinstance(feats, list) or not feats:
            raise ProgramFormatError(f"{where}: affine field 'features' must be a non-empty list of feature names")
        if dsl is not None:
            unknown = [f for f in feats if f not in dsl.features]
            if unknown:
                raise ProgramFormatError(
                    f"{where}: affine {d.get('library')!r} uses feature(s) {unknown} that DSL {dsl.name!r} lacks; "
                    f"features: {', '.join(dsl.features)}"
                )
        node: Node = Affine(sig, library=str(d.get("library", "")), features=tuple(feats), params=params)
        if params is not None or require_params:
            _check_affine_params(node, params, where)
    else:
        fields = {"window": int(d.get("window", 5))} if cls is RunningAverage else {}
        if cls is ITE:
            fields["beta"] = float(d.get("beta", 1.0))
        expected = len(cls.child_names)
        if len(kids) != expected:
            raise ProgramFormatError(f"{where}: {name} takes {expected} children; got {len(kids)}")
        node = cls(sig, **dict(zip(cls.child_names, kids)), **fields, params=params)
        if cls is Hole and require_params and params is None:
            raise ProgramFormatError(f"{where}: neural hole {sig} has no stored parameters")
        if cls is not Hole:
            template = expand(name, sig, _template_dsl(dsl, node))
            for i, (got, want) in enumerate(zip(kids, template.children)):
                if got.sig != want.sig:
                    raise ProgramFormatError(
                        f"{where}.{name}[{i}]: type mismatch: expected {want.sig}, got {got.sig}"
                    )
    if dsl is not None and where == "program" and sig.inp.dim != dsl.n_features:
        raise ProgramFormatError(
            f"{where}: input has {sig.inp.dim} features but DSL {dsl.name!r} has {dsl.n_features}"
        )
    return node


def _check_affine_params(node: Affine, params, where) -> None:
    if params is None:
        raise ProgramFormatError(f"{where}: affine {node.library!r} is missing its parameters ('weight', 'bias')")
    for key, shape in (("weight", (len(node.features), node.sig.out.dim)), ("bias", (node.sig.out.dim,))):
        if key not in params:
            raise ProgramFormatError(f"{where}: affine {node.library!r} is missing parameter {key!r}")
        got = np.asarray(params[key]).shape
        if got != shape:
            raise ProgramFormatError(f"{where}: affine {node.library!r} parameter {key!r} has shape {got}; expected {shape}")


def _template_dsl(dsl: DSL | None, node: Node) -> DSL:
    # expand() only reads ite_beta / running_window / library, which do not affect child types
    if dsl is not None:
        return dsl
    return DSL(name="_", features=("_",) * max(node.sig.inp.dim, 1), library={}, productions={})
