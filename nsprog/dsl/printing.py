"""Human-readable program text in the paper's style, and plain-language explanations.

``pretty(p)``         mapaverage(fun xt. FinalXAffine[2.31]; -0.05(xt)) x
``pretty_binary(p)``  1[> 0.05](mapaverage(fun xt. FinalXAffine[2.31](xt)) x)
``explain(p, scaler)`` mean over the window of final_x > 10.02   (raw feature units)
"""

from __future__ import annotations

import numpy as np

from nsprog.dsl.ast import ITE, Add, Affine, Hole, Map, MapAverage, MapPrefixes, Multiply, Node, RunningAverage

__all__ = ["pretty", "pretty_binary", "explain", "describe", "rule"]


def _num(v: float, decimals: int) -> str:
    text = f"{float(v):.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _affine(node: Affine, var: str, decimals: int, bias: bool = True) -> str:
    name = f"{node.library}Affine"
    if node.params is None:
        return f"{name}({var})"
    w = np.asarray(node.params["weight"])
    b = np.asarray(node.params["bias"])
    ws = ", ".join(_num(v, decimals) for v in w.ravel())
    if not bias:
        return f"{name}[{ws}]({var})"
    bs = ", ".join(_num(v, decimals) for v in b.ravel())
    return f"{name}[{ws}]; {bs}({var})"


def pretty(node: Node, decimals: int = 2, var: str = "x") -> str:
    """Paper-style text of a program; learned numbers are shown where present."""
    if isinstance(node, Hole):
        return f"<nn {node.sig}>"
    if isinstance(node, Affine):
        return _affine(node, var, decimals)
    if isinstance(node, MapAverage):
        return f"mapaverage(fun xt. {pretty(node.fn, decimals, 'xt')}) {var}"
    if isinstance(node, Map):
        return f"map(fun xt. {pretty(node.fn, decimals, 'xt')}) {var}"
    if isinstance(node, MapPrefixes):
        return f"mapprefixes(fun xs. {pretty(node.fn, decimals, 'xs')}) {var}"
    if isinstance(node, RunningAverage):
        return f"runningaverage{node.window}(fun xt. {pretty(node.fn, decimals, 'xt')}) {var}"
    if isinstance(node, ITE):
        c, t, e = (pretty(k, decimals, var) for k in node.children)
        return f"if {c} then {t} else {e}"
    if isinstance(node, (Add, Multiply)):
        a, b = (pretty(k, decimals, var) for k in node.children)
        return f"{node.production.lower()}({a}, {b})"
    raise TypeError(f"cannot print node {node.production}")


def pretty_binary(node: Node, decimals: int = 2) -> str:
    """A binary program as ``1[> threshold](...)``; the bias of a top-level averaged affine
    map is folded into the threshold, otherwise the threshold on the logit is 0."""
    if isinstance(node, MapAverage) and isinstance(node.fn, Affine) and node.fn.params is not None:
        thr = -float(np.asarray(node.fn.params["bias"]).ravel()[0])
        body = f"mapaverage(fun xt. {_affine(node.fn, 'xt', decimals, bias=False)}) x"
        return f"1[> {_num(thr, decimals)}]({body})"
    return f"1[> {_num(0.0, decimals)}]({pretty(node, decimals)})"


def explain(node: Node, names, mean=None, std=None, decimals: int = 3) -> str | None:
    """Plain-language rule for affine programs (optionally averaged over the window), in
    raw feature units when the standardisation ``mean``/``std`` are given; None otherwise."""
    averaged = isinstance(node, MapAverage)
    inner = node.fn if averaged else node
    if not isinstance(inner, Affine) or inner.params is None or node.sig.out.dim != 1:
        return None
    w = np.asarray(inner.params["weight"]).ravel().astype(float)
    b = float(np.asarray(inner.params["bias"]).ravel()[0])
    idx = [list(names).index(f) for f in inner.features]
    m = np.zeros(len(idx)) if mean is None else np.asarray(mean, float)[idx]
    s = np.ones(len(idx)) if std is None else np.asarray(std, float)[idx]
    # w . (f - m) / s + b > 0  <=>  sum (w/s) f > sum (w m / s) - b
    coef = w / s
    thr = float(np.sum(w * m / s) - b)
    prefix = "mean over the window of " if averaged else ""
    if len(idx) == 1:
        if abs(coef[0]) < 1e-12:
            return f"constant ({'always' if -thr > 0 else 'never'} 1)"
        op = ">" if coef[0] > 0 else "<"
        return f"{prefix}{inner.features[0]} {op} {_num(thr / coef[0], decimals)}"
    terms = " + ".join(f"{_num(c, decimals)} * {f}" for c, f in zip(coef, inner.features))
    return f"{prefix}({terms}) > {_num(thr, decimals)}"


def _raw_affine(node: Affine, names, mean, std, decimals: int) -> str:
    """``w . (f - m) / s + b`` of one affine output as ``a * f1 + ... + c`` in raw feature units."""
    w = np.asarray(node.params["weight"], float)
    w = w.reshape(-1, len(node.features))[0]
    b = float(np.asarray(node.params["bias"]).ravel()[0])
    idx = [list(names).index(f) for f in node.features]
    m = np.zeros(len(idx)) if mean is None else np.asarray(mean, float)[idx]
    s = np.ones(len(idx)) if std is None else np.asarray(std, float)[idx]
    coef = w / s
    const = b - float(np.sum(w * m / s))
    terms = [f"{_num(c, decimals)} * {f}" for c, f in zip(coef, node.features)]
    return " + ".join(terms + [_num(const, decimals)]).replace("+ -", "- ")


def describe(node: Node, names, mean=None, std=None, decimals: int = 3) -> str:
    """Plain-language reading of any complete program with one output (raw feature units
    where the standardisation is given); a neural hole reads as ``a neural network``."""
    def go(n: Node) -> str:
        if isinstance(n, Hole):
            return "a neural network"
        if isinstance(n, Affine):
            if n.params is None:
                return f"an affine function of {', '.join(n.features)}"
            return f"({_raw_affine(n, names, mean, std, decimals)})"
        if isinstance(n, MapAverage):
            return f"the mean over the window of {go(n.fn)}"
        if isinstance(n, Map):
            return f"{go(n.fn)} at each frame"
        if isinstance(n, RunningAverage):
            return f"the running mean over {n.window} frames of {go(n.fn)}"
        if isinstance(n, MapPrefixes):
            return f"{go(n.fn)} over the window so far"
        if isinstance(n, ITE):
            c, t, e = (go(k) for k in n.children)
            return f"(if {c} > 0 then {t}, otherwise {e}; blended smoothly near 0)"
        if isinstance(n, Add):
            a, b = (go(k) for k in n.children)
            return f"({a} + {b})"
        if isinstance(n, Multiply):
            a, b = (go(k) for k in n.children)
            return f"({a} times {b})"
        raise TypeError(f"cannot describe node {n.production}")

    return go(node)


def rule(node: Node, names, mean=None, std=None, decimals: int = 3) -> str:
    """The plain-language rule of a binary program: :func:`explain` where it applies (a
    threshold on one averaged affine map), else ``1 when <description> > 0``."""
    simple = explain(node, names, mean, std, decimals)
    if simple is not None:
        return simple
    return f"1 when {describe(node, names, mean, std, decimals)} > 0"
