"""The interval (box) abstract domain, batched and device-agnostic.

A :class:`Box` holds elementwise lower and upper bounds ``lo <= hi`` of any (broadcast-equal)
shape. Every operation is *sound*: for every concrete value inside the input box(es), the
concrete result lies inside the output box (up to floating-point rounding; no outward
rounding is done, which is why the verifier allows a tolerance). Operations stay
differentiable with respect to the bounds, so boxes can carry safety losses.

Conventions
-----------
- Arithmetic (``+ - *``, ``square``, ``abs``, monotone activations, ``clamp``) is elementwise.
- :meth:`Box.affine` and :func:`propagate` treat the *last* dimension as features.
- A guard ``x <= t`` meets a box with :meth:`Box.meet_le`; ``x > t`` with :meth:`Box.meet_gt`
  (closed at ``t``, a sound over-approximation of the open half-line). Both return the
  clipped box and a boolean *feasible* mask: where the meet is empty the returned box is the
  degenerate point ``[t, t]`` (a placeholder that callers must mask out).
- :meth:`Box.split` cuts a box into a regular grid of components.

Examples
--------
>>> b = Box(torch.tensor([-1.0, 2.0]), torch.tensor([3.0, 4.0]))
>>> b.square().lo.tolist(), b.square().hi.tolist()
([0.0, 4.0], [9.0, 16.0])
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

__all__ = ["Box", "BoxError", "Normalize", "propagate", "grid_pieces", "count_pieces"]

Number = float | int


class BoxError(ValueError):
    """An invalid box: NaN bounds, lo > hi (empty or inverted), or mismatched shapes."""


def _first_index(mask: torch.Tensor) -> tuple[int, ...]:
    idx = torch.nonzero(mask, as_tuple=False)[0]
    return tuple(int(i) for i in idx)


def check_bounds(lo: torch.Tensor, hi: torch.Tensor, name: str = "box") -> None:
    """Raise :class:`BoxError` naming the first bad entry when bounds are NaN or inverted."""
    if lo.shape != hi.shape:
        raise BoxError(f"{name}: lo has shape {tuple(lo.shape)} but hi has shape {tuple(hi.shape)}; expected equal")
    for side, t in (("lo", lo), ("hi", hi)):
        nan = torch.isnan(t)
        if bool(nan.any()):
            raise BoxError(f"{name}: NaN in {side} at index {_first_index(nan)}; boxes need finite or infinite bounds")
    bad = lo > hi
    if bool(bad.any()):
        i = _first_index(bad)
        raise BoxError(
            f"{name} is empty or inverted: lo > hi at index {i} (lo={float(lo[i]):g}, hi={float(hi[i]):g}); "
            "expected lo <= hi everywhere"
        )


class Box:
    """Elementwise interval ``[lo, hi]`` (batched: any shape, broadcast between operands).

    The bounds are stored stacked in one tensor ``t`` of shape ``[2, *shape]`` (``t[0]`` the
    lower, ``t[1]`` the upper bounds), so most operations are one kernel for both bounds.

    Parameters
    ----------
    lo, hi : tensor or number
        Lower and upper bounds; broadcast to a common shape. ``hi`` defaults to ``lo`` (a point).
    name : str, default="box"
        Used in error messages.
    check : bool, default=True
        Validate the bounds (no NaN, lo <= hi). Internal operations skip the check.
    """

    __slots__ = ("t",)

    def __init__(self, lo, hi=None, *, name: str = "box", check: bool = True):
        lo = torch.as_tensor(lo)
        hi = lo if hi is None else torch.as_tensor(hi, device=lo.device)
        if not lo.is_floating_point():
            lo = lo.to(torch.get_default_dtype())
        if not hi.is_floating_point():
            hi = hi.to(lo.dtype)
        if hi.dtype != lo.dtype:
            dtype = torch.promote_types(lo.dtype, hi.dtype)
            lo, hi = lo.to(dtype), hi.to(dtype)
        if lo.shape != hi.shape:
            try:
                lo, hi = torch.broadcast_tensors(lo, hi)
            except RuntimeError as exc:
                raise BoxError(
                    f"{name}: lo shape {tuple(lo.shape)} and hi shape {tuple(hi.shape)} do not broadcast"
                ) from exc
        if check:
            check_bounds(lo, hi, name)
        self.t = torch.stack([lo, hi])

    # ------------------------------------------------------------------ construction
    @classmethod
    def _raw(cls, lo: torch.Tensor, hi: torch.Tensor) -> "Box":
        """Unchecked constructor for internal use (bounds are already sound)."""
        return cls._from_t(torch.stack([lo, hi]))

    @classmethod
    def _from_t(cls, t: torch.Tensor) -> "Box":
        """Unchecked constructor from stacked bounds ``[2, *shape]``."""
        b = object.__new__(cls)
        b.t = t
        return b

    @classmethod
    def point(cls, x) -> "Box":
        """The degenerate box ``[x, x]``."""
        x = torch.as_tensor(x)
        if not x.is_floating_point():
            x = x.to(torch.get_default_dtype())
        return cls(x, x)

    @classmethod
    def hull_of_points(cls, x: torch.Tensor, dim: int = 0) -> "Box":
        """Smallest box containing the points of ``x`` along ``dim``."""
        return cls(x.amin(dim), x.amax(dim))

    @staticmethod
    def where(mask: torch.Tensor, a: "Box", b: "Box") -> "Box":
        """Elementwise choice: ``a`` where ``mask`` else ``b``."""
        return Box._from_t(torch.where(mask, a.t, b.t))

    @staticmethod
    def stack(boxes: Sequence["Box"], dim: int = -1) -> "Box":
        d = dim + 1 if dim >= 0 else dim
        return Box._from_t(torch.stack([b.t for b in boxes], d))

    @staticmethod
    def cat(boxes: Sequence["Box"], dim: int = -1) -> "Box":
        d = dim + 1 if dim >= 0 else dim
        return Box._from_t(torch.cat([b.t for b in boxes], d))

    # ------------------------------------------------------------------ properties
    @property
    def lo(self) -> torch.Tensor:
        return self.t[0]

    @property
    def hi(self) -> torch.Tensor:
        return self.t[1]

    @property
    def shape(self) -> torch.Size:
        return self.t.shape[1:]

    @property
    def dtype(self) -> torch.dtype:
        return self.t.dtype

    @property
    def device(self) -> torch.device:
        return self.t.device

    @property
    def center(self) -> torch.Tensor:
        return (self.t[0] + self.t[1]) * 0.5

    @property
    def radius(self) -> torch.Tensor:
        return (self.t[1] - self.t[0]) * 0.5

    @property
    def width(self) -> torch.Tensor:
        return self.t[1] - self.t[0]

    def is_empty(self) -> torch.Tensor:
        """Boolean mask of entries with lo > hi (only produced by unchecked internal code)."""
        return self.t[0] > self.t[1]

    def __len__(self) -> int:
        return self.t.shape[1]

    def __getitem__(self, idx) -> "Box":
        if not isinstance(idx, tuple):
            idx = (idx,)
        return Box._from_t(self.t[(slice(None), *idx)])

    def __repr__(self) -> str:
        return f"Box(shape={tuple(self.shape)}, lo={self.lo!r}, hi={self.hi!r})"

    def to(self, *args, **kwargs) -> "Box":
        return Box._from_t(self.t.to(*args, **kwargs))

    def detach(self) -> "Box":
        return Box._from_t(self.t.detach())

    def reshape(self, *shape) -> "Box":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
            shape = tuple(shape[0])
        return Box._from_t(self.t.reshape(2, *shape))

    def expand(self, *shape) -> "Box":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
            shape = tuple(shape[0])
        return Box._from_t(self.t.expand(2, *shape))

    def repeat_interleave(self, n: int, dim: int = 0) -> "Box":
        return Box._from_t(self.t.repeat_interleave(n, dim + 1 if dim >= 0 else dim))

    def unbind(self, dim: int = -1) -> list["Box"]:
        d = dim + 1 if dim >= 0 else dim
        return [Box._from_t(t) for t in self.t.unbind(d)]

    # ------------------------------------------------------------------ arithmetic
    def __neg__(self) -> "Box":
        return Box._from_t(-self.t.flip(0))

    def __add__(self, other) -> "Box":
        if isinstance(other, Box):
            return Box._from_t(self.t + other.t)
        return Box._from_t(self.t + other)

    __radd__ = __add__

    def __sub__(self, other) -> "Box":
        if isinstance(other, Box):
            return Box._from_t(self.t - other.t.flip(0))
        return Box._from_t(self.t - other)

    def __rsub__(self, other) -> "Box":
        return Box._from_t(other - self.t.flip(0))

    def scale(self, c: Number, ct: torch.Tensor | None = None) -> "Box":
        """Multiplication by the number ``c`` (``ct``: the same number as a 0-dim tensor, optional)."""
        f = c if ct is None else ct
        return Box._from_t(self.t * f) if c >= 0 else Box._from_t((self.t * f).flip(0))

    def __mul__(self, other) -> "Box":
        if isinstance(other, Box):
            p = (self.t.unsqueeze(1) * other.t.unsqueeze(0)).flatten(0, 1)
            return Box._from_t(torch.stack([p.amin(0), p.amax(0)]))
        if isinstance(other, (int, float)):
            return self.scale(other)
        p = self.t * other
        return Box._from_t(torch.stack([torch.minimum(p[0], p[1]), torch.maximum(p[0], p[1])]))

    __rmul__ = __mul__

    def __truediv__(self, other: Number) -> "Box":
        if not isinstance(other, (int, float)):
            raise TypeError("Box division is only defined by a nonzero number")
        if other == 0:
            raise ZeroDivisionError("Box divided by zero")
        return self.scale(1.0 / other)

    def _even(self, a: torch.Tensor) -> "Box":
        """Image of an even function increasing in |x| given ``a = f(t)`` elementwise (square, abs)."""
        straddle = (self.t[0] <= 0) & (self.t[1] >= 0)
        lo = torch.where(straddle, torch.zeros_like(a[0]), a.amin(0))
        return Box._from_t(torch.stack([lo, a.amax(0)]))

    def square(self) -> "Box":
        """Exact image of ``x ** 2``: 0 is the minimum when the box straddles 0."""
        return self._even(self.t * self.t)

    def abs(self) -> "Box":
        return self._even(self.t.abs())

    def monotone(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "Box":
        """Image under a nondecreasing elementwise function."""
        return Box._from_t(fn(self.t))

    def relu(self) -> "Box":
        return Box._from_t(torch.relu(self.t))

    def sigmoid(self) -> "Box":
        return Box._from_t(torch.sigmoid(self.t))

    def tanh(self) -> "Box":
        return Box._from_t(torch.tanh(self.t))

    def clamp(self, min: Number | None = None, max: Number | None = None) -> "Box":  # noqa: A002
        return Box._from_t(self.t.clamp(min=min, max=max))

    def minimum(self, other) -> "Box":
        """Elementwise ``min(x, other)`` for a Box, tensor or number."""
        if isinstance(other, (int, float)):
            return self.clamp(max=other)
        o = other.t if isinstance(other, Box) else other
        return Box._from_t(torch.minimum(self.t, o))

    def maximum(self, other) -> "Box":
        """Elementwise ``max(x, other)`` for a Box, tensor or number."""
        if isinstance(other, (int, float)):
            return self.clamp(min=other)
        o = other.t if isinstance(other, Box) else other
        return Box._from_t(torch.maximum(self.t, o))

    def affine(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> "Box":
        """Image under ``x @ weight.T + bias`` over the last dimension (exact for one box)."""
        c = self.center @ weight.T
        r = self.radius @ weight.abs().T
        if bias is not None:
            c = c + bias
        return Box._from_t(torch.stack([c - r, c + r]))

    # ------------------------------------------------------------------ lattice
    def meet_le(self, t) -> tuple["Box", torch.Tensor]:
        """Meet with the guard ``x <= t``: returns (clipped box, feasible mask)."""
        return Box._from_t(self.t.clamp(max=t)), self.t[0] <= t

    def meet_gt(self, t) -> tuple["Box", torch.Tensor]:
        """Meet with the guard ``x > t`` (closed at t): returns (clipped box, feasible mask)."""
        return Box._from_t(self.t.clamp(min=t)), self.t[1] > t

    def hull(self, other: "Box") -> "Box":
        """Join: the smallest box containing both."""
        return Box._from_t(torch.stack([torch.minimum(self.t[0], other.t[0]), torch.maximum(self.t[1], other.t[1])]))

    def contains(self, other, tol: float = 0.0) -> torch.Tensor:
        """Elementwise: is ``other`` (a Box or a tensor of points) inside this box (within ``tol``)?"""
        if isinstance(other, Box):
            return (other.lo >= self.lo - tol) & (other.hi <= self.hi + tol)
        other = torch.as_tensor(other, dtype=self.dtype, device=self.device)
        return (other >= self.lo - tol) & (other <= self.hi + tol)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` points drawn uniformly from the box: shape ``[n, *self.shape]``."""
        u = torch.rand((n, *self.shape), generator=generator, dtype=self.dtype, device=self.device)
        return torch.minimum(self.lo + u * (self.hi - self.lo), self.hi)

    def split(self, n: int | Sequence[int]) -> "Box":
        """Cut a box of shape ``[k]`` into a grid of ``prod(n)`` components, shape ``[prod(n), k]``.

        ``n`` is the number of equal pieces per dimension (one int for all, or one per
        dimension). Components are listed in C order (the last dimension varies fastest).
        """
        if self.t.dim() != 2:
            raise BoxError(f"split expects a single box of shape [k]; got shape {tuple(self.shape)}")
        total = count_pieces(self.shape[0], n)
        return grid_pieces(self.lo, self.hi, n, torch.arange(total, device=self.device))

    # ------------------------------------------------------------------ networks
    def through(self, module: nn.Module) -> "Box":
        """Interval propagation through ``module`` (see :func:`propagate`)."""
        return propagate(module, self)


def _per_dim(k: int, n: int | Sequence[int]) -> list[int]:
    if isinstance(n, int):
        ns = [n] * k
    else:
        ns = [int(v) for v in n]
        if len(ns) != k:
            raise BoxError(f"split: got {len(ns)} piece counts for a box with {k} dimensions")
    for v in ns:
        if v < 1:
            raise BoxError(f"split: pieces per dimension must be >= 1; got {v}")
    return ns


def count_pieces(k: int, n: int | Sequence[int]) -> int:
    """Number of grid components (exact Python integer) for ``n`` pieces per dimension."""
    return math.prod(_per_dim(k, n))


def grid_pieces(lo: torch.Tensor, hi: torch.Tensor, n: int | Sequence[int], index: torch.Tensor) -> Box:
    """The grid components with flat indices ``index`` (C order) of the box ``[lo, hi]`` (shape [k]).

    Lets a verifier walk millions of components in chunks without materialising them all.
    Piece bounds are computed as ``lo + (hi - lo) * i / n`` so neighbouring pieces share
    their boundary exactly and the union of all pieces is the whole box.
    """
    k = lo.shape[0]
    ns = _per_dim(k, n)
    index = index.to(torch.int64)
    los, his = [], []
    rem = index
    digits = []
    for nd in reversed(ns):
        digits.append(rem % nd)
        rem = rem // nd
    digits.reverse()
    for d in range(k):
        i = digits[d].to(lo.dtype)
        span = hi[d] - lo[d]
        los.append(lo[d] + span * (i / ns[d]))
        his.append(torch.where(digits[d] == ns[d] - 1, hi[d].expand_as(i), lo[d] + span * ((i + 1) / ns[d])))
    return Box._raw(torch.stack(los, -1), torch.stack(his, -1))


class Normalize(nn.Module):
    """``(x - center) / scale`` per feature, with fixed buffers (saved in the state dict).

    Input normalisation keeps network inputs near unit scale (raw temperatures near 60
    saturate sigmoids); ``scale`` must be positive so the map stays monotone.
    """

    def __init__(self, center: Sequence[float], scale: Sequence[float]):
        super().__init__()
        center_t = torch.as_tensor(center, dtype=torch.get_default_dtype())
        scale_t = torch.as_tensor(scale, dtype=torch.get_default_dtype())
        if bool((scale_t <= 0).any()):
            raise ValueError(f"Normalize: every scale must be > 0; got {scale_t.tolist()}")
        self.register_buffer("center", center_t)
        self.register_buffer("scale", scale_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.center) / self.scale


_MONOTONE = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Identity, nn.Hardtanh, nn.ReLU6, nn.Softplus, nn.ELU)


def propagate(module: nn.Module, box: Box) -> Box:
    """Interval propagation through ``nn.Sequential`` stacks of Linear, :class:`Normalize` and
    monotone activations (ReLU, Sigmoid, Tanh, Hardtanh, ReLU6, Softplus, ELU, LeakyReLU with
    a nonnegative slope, Identity). Features are the last dimension of ``box``.
    """
    if isinstance(module, nn.Sequential):
        for layer in module:
            box = propagate(layer, box)
        return box
    if isinstance(module, nn.Linear):
        return box.affine(module.weight, module.bias)
    if isinstance(module, Normalize):
        return Box._from_t((box.t - module.center) / module.scale)
    if isinstance(module, nn.LeakyReLU):
        if module.negative_slope < 0:
            raise TypeError(f"propagate: LeakyReLU with negative slope {module.negative_slope} is not monotone")
        return box.monotone(module)
    if isinstance(module, _MONOTONE):
        return box.monotone(module)
    raise TypeError(
        f"propagate: no interval semantics for layer {type(module).__name__}; supported: Sequential, Linear, "
        "Normalize, ReLU, Sigmoid, Tanh, Hardtanh, ReLU6, Softplus, ELU, LeakyReLU (slope >= 0), Identity"
    )
