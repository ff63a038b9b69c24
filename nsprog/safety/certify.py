"""Certified program bounds: interval semantics for the encoder DSL.

Every feature input of a program may move by up to ``eps`` in the feature's own units
(pixels, feet, ...): the raw feature tensor becomes a box ``[f - eps, f + eps]`` per frame,
which the training standardisation maps to a box of program inputs. The program is then
evaluated on boxes (affine maps exactly, ``Add``/``Multiply`` by interval arithmetic,
averages and running averages as monotone linear maps, the smoothed ``ITE`` through its
sigmoid gate), giving sound bounds on each program's logit. A window's cluster bit is
*certified* when the bounds do not straddle the threshold 0: no perturbation inside the box
can flip it. Window-level features (e.g. the final position, broadcast over the frames) are
perturbed independently per frame, a sound over-approximation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch

from nsprog.data.trajectories import Trajectories
from nsprog.dsl.ast import ITE, Add, Affine, Hole, Map, MapAverage, MapPrefixes, Multiply, Node, RunningAverage
from nsprog.dsl.definition import DSL
from nsprog.programs import ProgramSet
from nsprog.safety.box import Box

__all__ = ["interval_program", "feature_box", "certify", "CertifyResult", "brute_force_check", "closest_certified"]


def _mean(b: Box, dim: int) -> Box:
    return Box._raw(b.lo.mean(dim), b.hi.mean(dim))


def _prefix_means(b: Box) -> Box:
    steps = torch.arange(1, b.shape[-2] + 1, dtype=b.dtype, device=b.device)[:, None]
    return Box._raw(b.lo.cumsum(-2) / steps, b.hi.cumsum(-2) / steps)


def _running(b: Box, window: int) -> Box:
    def run(v):
        t = v.shape[-2]
        c = torch.nn.functional.pad(v.cumsum(dim=-2), (0, 0, 1, 0))
        hi = torch.arange(1, t + 1, device=v.device)
        lo = (hi - window).clamp_min(0)
        return (c[..., hi, :] - c[..., lo, :]) / (hi - lo).to(v.dtype)[:, None]

    return Box._raw(run(b.lo), run(b.hi))


def _eval(node: Node, dsl: DSL, x: Box, mode: str) -> Box:
    if isinstance(node, Hole):
        raise ValueError(f"certification needs complete programs; this one still has a neural hole ({node.sig})")
    if isinstance(node, Affine):
        if mode != "atom":
            raise ValueError(f"an affine library function cannot be evaluated in mode {mode!r}")
        idx = list(dsl.feature_indices(node.features))
        w = torch.tensor(np.array(node.params["weight"]), dtype=x.dtype)  # [s, d]
        b = torch.tensor(np.array(node.params["bias"]), dtype=x.dtype)
        return Box._raw(x.lo[..., idx], x.hi[..., idx]).affine(w.T, b)
    if isinstance(node, MapAverage):
        v = _eval(node.fn, dsl, x, "atom")  # [N, T, d]
        return _mean(v, -2) if mode == "seq" else _prefix_means(v)
    if isinstance(node, Map):
        return _eval(node.fn, dsl, x, "atom")
    if isinstance(node, MapPrefixes):
        return _eval(node.fn, dsl, x, "prefixes")
    if isinstance(node, RunningAverage):
        return _running(_eval(node.fn, dsl, x, "atom"), node.window)
    if isinstance(node, ITE):
        cond, then, orelse = (_eval(k, dsl, x, mode) for k in node.children)
        gate = cond.scale(node.beta).sigmoid()
        return gate * then + (1.0 - gate) * orelse
    if isinstance(node, (Add, Multiply)):
        a, b = (_eval(k, dsl, x, mode) for k in node.children)
        return a + b if isinstance(node, Add) else a * b
    raise TypeError(f"no interval semantics for node {node.production}")


def interval_program(program: Node, dsl: DSL, x: Box) -> Box:
    """Sound bounds on ``program``'s output for every input inside ``x`` (standardised features,
    ``[N, T, F]`` for list programs, ``[N, F]`` for atom programs)."""
    mode = {"list->atom": "seq", "list->list": "lst", "atom->atom": "atom"}[program.sig.kinds]
    return _eval(program, dsl, x, mode)


def _eps_vector(pset: ProgramSet, eps: float | Mapping[str, float]) -> torch.Tensor:
    names = list(pset.pipeline.features)
    if isinstance(eps, Mapping):
        unknown = sorted(set(eps) - set(names))
        if unknown:
            raise KeyError(f"eps names unknown feature(s) {unknown}; the programs read {', '.join(names)}")
        vals = [float(eps.get(n, 0.0)) for n in names]
    else:
        vals = [float(eps)] * len(names)
    if any(v < 0 or not np.isfinite(v) for v in vals):
        raise ValueError(f"eps must be finite and >= 0; got {vals}")
    return torch.tensor(vals)


def feature_box(pset: ProgramSet, traj: Trajectories, eps: float | Mapping[str, float]) -> tuple[torch.Tensor, Box]:
    """``(standardised features [N, T, F], box of standardised inputs)`` for raw perturbations <= eps."""
    sc = getattr(pset.pipeline, "scaler_", None)
    raw = pset.pipeline.raw(traj)
    e = _eps_vector(pset, eps)
    mean = torch.as_tensor(sc.mean)
    std = torch.as_tensor(sc.std)
    x = (raw - mean) / std
    r = e / std
    return x, Box(x - r, x + r, name="perturbation box")


@dataclass
class CertifyResult:
    names: list[str]
    bits: np.ndarray  # [N, k] the programs' bits on the unperturbed windows
    certified: np.ndarray  # [N, k] bool
    bounds: np.ndarray  # [N, k, 2] logit bounds
    eps: dict = field(default_factory=dict)

    def summary(self) -> dict:
        per = {n: float(self.certified[:, j].mean()) for j, n in enumerate(self.names)}
        return {
            "n_windows": int(self.certified.shape[0]),
            "certified_fraction": per,
            "cluster_certified_fraction": float(self.certified.all(1).mean()) if self.names else 1.0,
            "eps": self.eps,
        }


def certify(pset: ProgramSet, traj: Trajectories, eps: float | Mapping[str, float]) -> CertifyResult:
    """Which windows' program bits provably survive every feature perturbation of size <= eps."""
    x, box = feature_box(pset, traj, eps)
    names, bits, cert, bounds = [], [], [], []
    for name, prog in pset.programs.items():
        if prog.sig.out.dim != 1:
            raise ValueError(f"program {name!r} is not binary (output {prog.sig.out}); certify binary programs")
        with torch.no_grad():
            out = interval_program(prog, pset.dsl, box)
            val = pset.decision_function_features(x)[name]
        lo, hi = out.lo[:, 0].numpy(), out.hi[:, 0].numpy()
        b = (val > 0).astype(np.int64)
        names.append(name)
        bits.append(b)
        cert.append((lo > 0) | (hi <= 0))
        bounds.append(np.stack([lo, hi], -1))
    eps_dict = dict(zip(pset.pipeline.features, _eps_vector(pset, eps).tolist()))
    if not names:
        n = len(traj)
        return CertifyResult([], np.zeros((n, 0), int), np.zeros((n, 0), bool), np.zeros((n, 0, 2)), eps_dict)
    return CertifyResult(names, np.stack(bits, 1), np.stack(cert, 1), np.stack(bounds, 1), eps_dict)


def brute_force_check(pset: ProgramSet, traj: Trajectories, result: CertifyResult, n_samples: int = 10_000,
                      windows: np.ndarray | None = None, seed: int = 0, batch: int = 2_000) -> dict:
    """Sample perturbations inside the box (uniform, plus its all-low and all-high corners) for
    certified windows and count bit flips (must be 0). Without ``windows``, every certified
    window is checked; :func:`closest_certified` picks the ones nearest to the threshold."""
    x, box = feature_box(pset, traj, result.eps)
    gen = torch.Generator().manual_seed(seed)
    idx = np.flatnonzero(result.certified.all(1)) if windows is None else np.asarray(windows)
    flips = {n: 0 for n in result.names}
    checked = 0
    for w in idx:
        b = box[int(w)]
        for lo in range(0, n_samples, batch):
            m = min(batch, n_samples - lo)
            pts = b.sample(m, gen)
            if lo == 0:
                pts[0], pts[-1] = b.lo, b.hi
            vals = pset.decision_function_features(pts)
            for j, n in enumerate(result.names):
                flips[n] += int(((vals[n] > 0).astype(np.int64) != result.bits[w, j]).sum())
        checked += 1
    return {"windows_checked": checked, "samples_per_window": n_samples, "flips": flips}


def closest_certified(result: CertifyResult, n: int) -> np.ndarray:
    """The ``n`` fully certified windows whose logit bounds come nearest to the threshold 0
    (the hardest cases for a sampling check)."""
    ok = np.flatnonzero(result.certified.all(1))
    if not len(ok):
        return ok
    margin = np.abs(result.bounds[ok]).min(axis=2).min(axis=1)
    return ok[np.argsort(margin)[:n]]
