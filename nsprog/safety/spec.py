"""Safety specifications: per-step safe intervals over recorded variables.

The *unsafe value* of an interval ``[l, r]`` against a safe interval ``[a, b]`` is

- 0 when ``[l, r]`` lies inside ``[a, b]``;
- ``max(l - b, a - r) + 1`` when they are disjoint (distance plus one);
- ``1 - (min(r, b) - max(l, a)) / (r - l)`` when they overlap (the share outside).

A *distance* constraint (``absolute=True``) checks the interval of ``|value|``.
DSE combines a path's unsafe values by summing over recorded steps (and constraints);
DiffAI+ takes the maximum over steps per constraint (summed over constraints).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from nsprog.safety.box import Box
from nsprog.safety.ir import Program

__all__ = ["Constraint", "Spec", "SpecError", "unsafe_value"]


class SpecError(ValueError):
    """A specification that does not fit its program."""


def unsafe_value(l: torch.Tensor, r: torch.Tensor, a, b, eps: float = 1e-6) -> torch.Tensor:
    """Elementwise unsafe value of ``[l, r]`` against ``[a, b]`` (see the module docstring)."""
    inside = (l >= a) & (r <= b)
    disjoint = (r < a) | (l > b)
    dist = torch.maximum(l - b, a - r) + 1.0
    share = 1.0 - (torch.minimum(r, b) - torch.maximum(l, a)) / (r - l).clamp_min(eps)
    zero = torch.zeros_like(l)
    return torch.where(inside, zero, torch.where(disjoint, dist, share))


@dataclass(frozen=True)
class Constraint:
    """``var`` must lie in ``[lo[t], hi[t]]`` at every recorded step ``t``.

    ``lo`` / ``hi`` are one number for all steps or one per recorded step (use ``inf`` for an
    open side). ``absolute=True`` constrains ``|var|`` (a "distance" target).
    """

    var: str
    lo: float | tuple = float("-inf")
    hi: float | tuple = float("inf")
    absolute: bool = False
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or (f"|{self.var}|" if self.absolute else self.var)


class Spec:
    """A list of constraints bound to a program (checked against what it records)."""

    def __init__(self, program: Program, constraints: Sequence[Constraint]):
        self.program = program
        self.constraints = tuple(constraints)
        if not self.constraints:
            raise SpecError(f"the spec of program {program.name!r} has no constraints")
        counts = program.record_counts
        problems = []
        self._bounds: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._cache: dict = {}
        for c in self.constraints:
            if c.var not in counts:
                recorded = ", ".join(sorted(counts)) or "(nothing)"
                problems.append(
                    f"constraint on {c.var!r}: program {program.name!r} does not record that variable; "
                    f"it records: {recorded}"
                )
                continue
            t = counts[c.var]
            lo = self._per_step(c, "lo", c.lo, t, problems)
            hi = self._per_step(c, "hi", c.hi, t, problems)
            if lo is None or hi is None:
                continue
            if bool(torch.isnan(lo).any() | torch.isnan(hi).any()):
                problems.append(f"constraint on {c.label}: NaN in its bounds")
            elif bool((lo > hi).any()):
                i = int(torch.nonzero(lo > hi)[0])
                problems.append(
                    f"constraint on {c.label}: empty safe interval at step {i} (lo={float(lo[i]):g} > hi={float(hi[i]):g})"
                )
            self._bounds.append((lo, hi))
        if problems:
            raise SpecError("invalid spec:\n" + "\n".join(f"  - {p}" for p in problems))

    @staticmethod
    def _per_step(c: Constraint, side: str, v, t: int, problems: list) -> torch.Tensor | None:
        if isinstance(v, (int, float)):
            return torch.full((t,), float(v), dtype=torch.float64)
        v = torch.as_tensor(v, dtype=torch.float64)
        if v.shape != (t,):
            problems.append(
                f"constraint on {c.label}: {side} has {v.numel()} per-step values but {c.var!r} is recorded {t} times"
            )
            return None
        return v

    # ------------------------------------------------------------------ helpers
    def _intervals(self, records: dict, c: Constraint) -> tuple[torch.Tensor, torch.Tensor]:
        if c.var not in records:
            raise SpecError(f"the trace has no records of {c.var!r}; recorded: {', '.join(sorted(records))}")
        v = records[c.var]
        if not isinstance(v, Box):
            return (v.abs(), v.abs()) if c.absolute else (v, v)
        if c.absolute:
            v = v.abs()
        return v.t[0], v.t[1]

    def _bounds_like(self, i: int, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (i, ref.dtype, ref.device)
        got = self._cache.get(key)
        if got is None:
            a, b = self._bounds[i]
            got = self._cache[key] = (a.to(ref), b.to(ref))
        return got

    def unsafe_values(self, records: dict) -> list[torch.Tensor]:
        """Per constraint, the unsafe value of every recorded step: tensors ``[B, T]``."""
        out = []
        for i, c in enumerate(self.constraints):
            l, r = self._intervals(records, c)
            a, b = self._bounds_like(i, l)
            out.append(unsafe_value(l, r, a, b))
        return out

    def path_penalty(self, records: dict) -> torch.Tensor:
        """DSE: sum over constraints and recorded steps, per path ``[B]``."""
        vals = self.unsafe_values(records)
        return torch.stack([v.sum(-1) for v in vals], 0).sum(0)

    def join_penalty(self, records: dict) -> torch.Tensor:
        """DiffAI+: per constraint the max over steps, summed over constraints, per box ``[B]``."""
        vals = self.unsafe_values(records)
        return torch.stack([v.amax(-1) for v in vals], 0).sum(0)

    def satisfied(self, records: dict, tol: float = 1e-6) -> torch.Tensor:
        """Per item ``[B]``: every recorded interval lies inside its safe interval (within ``tol``)."""
        ok = None
        for i, c in enumerate(self.constraints):
            l, r = self._intervals(records, c)
            a, b = self._bounds_like(i, l)
            inside = ((l >= a - tol) & (r <= b + tol)).all(-1)
            ok = inside if ok is None else ok & inside
        return ok

    def tightened(self, margin: float) -> "Spec":
        """The spec with every finite bound moved ``margin`` into the safe interval (a training target
        with a safety margin; the verifier keeps the original spec). Bounds that cannot bind are left
        alone: a lower bound <= 0 on an absolute value, and infinite bounds."""
        if margin < 0:
            raise SpecError(f"the safety margin must be >= 0; got {margin}")
        if margin == 0:
            return self
        cons = []
        for c, (lo, hi) in zip(self.constraints, self._bounds):
            keep_lo = ~torch.isfinite(lo) | ((lo <= 0) if c.absolute else torch.zeros_like(lo, dtype=torch.bool))
            new_lo = torch.where(keep_lo, lo, lo + margin)
            new_hi = torch.where(torch.isfinite(hi), hi - margin, hi)
            bad = new_lo > new_hi
            if bool(bad.any()):
                i = int(torch.nonzero(bad)[0])
                raise SpecError(
                    f"a safety margin of {margin:g} empties the safe interval of {c.label} at step {i} "
                    f"([{float(lo[i]):g}, {float(hi[i]):g}])"
                )
            cons.append(Constraint(c.var, tuple(new_lo.tolist()), tuple(new_hi.tolist()), c.absolute, c.name))
        return Spec(self.program, cons)

    def bounds(self, var: str) -> list[tuple[torch.Tensor, torch.Tensor, Constraint]]:
        """The per-step bounds of every constraint over ``var`` (for plots)."""
        return [(a, b, c) for c, (a, b) in zip(self.constraints, self._bounds) if c.var == var]
