"""Neural modules of the benchmark programs and a fast interval propagation for them.

:func:`make_mlp` builds the networks of DESIGN.md section 12 (input -> 64 -> 64 -> output,
ReLU, ReLU, then an optional sigmoid), with a fixed input :class:`~nsprog.safety.box.Normalize`.

:class:`IntervalMLP` is the hot-path version of :func:`~nsprog.safety.box.propagate`: bounds
travel as one ``[B, 2k]`` tensor with interleaved lower and upper bounds and each Linear layer
is one matrix product with a block matrix made of ``W+ = max(W, 0)`` and ``W- = min(W, 0)``,
which is exactly the centre/radius rule ``c W +- r |W|`` written as a single kernel.
A Normalize layer in front of a Linear layer is folded into it. Build one per optimiser step
(the block matrices are functions of the current weights and carry their gradients).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from nsprog.safety.box import _MONOTONE, Normalize

__all__ = ["make_mlp", "IntervalMLP"]


def make_mlp(
    n_in: int,
    n_out: int,
    hidden: Sequence[int] = (64, 64),
    out_act: str | None = "sigmoid",
    center: Sequence[float] | None = None,
    scale: Sequence[float] | None = None,
) -> nn.Sequential:
    """``[Normalize] -> Linear -> ReLU -> ... -> Linear -> [Sigmoid]``."""
    layers: list[nn.Module] = []
    if center is not None or scale is not None:
        layers.append(Normalize(center if center is not None else [0.0] * n_in, scale if scale is not None else [1.0] * n_in))
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_out))
    if out_act == "sigmoid":
        layers.append(nn.Sigmoid())
    elif out_act == "tanh":
        layers.append(nn.Tanh())
    elif out_act not in (None, "none"):
        raise ValueError(f"make_mlp: out_act must be 'sigmoid', 'tanh' or None; got {out_act!r}")
    return nn.Sequential(*layers)


_ACT_FNS = {nn.ReLU: torch.relu, nn.Sigmoid: torch.sigmoid, nn.Tanh: torch.tanh, nn.Identity: None}


def _block(w: torch.Tensor) -> torch.Tensor:
    """The ``[2 n_in, 2 n_out]`` block matrix of ``x @ w.T`` for *interleaved* bounds.

    Interleaved means features ordered ``(lo_1, hi_1, lo_2, hi_2, ...)``; then
    ``lo'_j = sum_i lo_i W+_ji + hi_i W-_ji`` and ``hi'_j = sum_i lo_i W-_ji + hi_i W+_ji``.
    """
    wp = w.clamp(min=0).T  # [in, out]
    wn = w.T - wp
    # [in, 2 (lo/hi of the input), out, 2 (lo/hi of the output)]
    blk = torch.stack([torch.stack([wp, wn], -1), torch.stack([wn, wp], -1)], 1)
    return blk.reshape(2 * w.shape[1], 2 * w.shape[0])


def _interleave(v: torch.Tensor) -> torch.Tensor:
    """``[n] -> [2 n]``: every entry twice (the same value for a feature's lower and upper bound)."""
    return v.unsqueeze(-1).expand(*v.shape, 2).reshape(*v.shape[:-1], 2 * v.shape[-1])


def _matmul(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ b (+ bias)`` for 2-D operands.

    A narrow result (at most 8 columns, more rows: an output layer) is computed as
    ``(b^T a^T)^T``: the BLAS products behind ``mm`` are several times slower for a long thin
    result than for its transpose, and under autograd the weight gradient of the transposed
    product then also comes out in the fast orientation (``[m, 128]`` rather than ``[128, m]``).
    """
    m, n = a.shape[-2], b.shape[-1]
    if n <= 8 and m > n:
        at, bt = a.T, b.T
        out = bt @ at if bias is None else torch.addmm(bias.unsqueeze(-1), bt, at)
        return out.T
    return a @ b if bias is None else torch.addmm(bias, a, b)


class IntervalMLP:
    """Interval propagation through a Sequential of Normalize / Linear / monotone layers.

    Bounds travel *interleaved*: one ``[B, 2k]`` tensor with the features ordered
    ``(lo_1, hi_1, ..., lo_k, hi_k)``, which is the memory order of ``k`` boxes stored as
    ``[2, B]`` each once they are concatenated and transposed, so a program's variables go in
    and out of a network without copies. :meth:`run` takes and returns that layout;
    :meth:`call_boxes` takes and returns boxes ``[2, B]`` (one per input / output); calling the
    object takes and returns the ``[lo | hi]`` layout (all lower bounds, then all upper bounds).
    """

    def __init__(self, module: nn.Module):
        self.module = module
        layers = list(module) if isinstance(module, nn.Sequential) else [module]
        # ("affine", block, interleaved bias or None) | ("act", fn) | ("norm", interleaved center, scale)
        self.layers: list[tuple] = []
        pending: Normalize | None = None
        for layer in layers:
            if isinstance(layer, Normalize):
                if pending is not None:
                    self._add_normalize(pending)
                pending = layer
                continue
            if isinstance(layer, nn.Linear):
                w, b = layer.weight, layer.bias
                if pending is not None:  # fold (x - c) / s into the layer
                    w = w * (1.0 / pending.scale)
                    shift = w @ pending.center
                    b = (b - shift) if b is not None else -shift
                    pending = None
                self.layers.append(("affine", _block(w), None if b is None else _interleave(b)))
                continue
            if pending is not None:
                self._add_normalize(pending)
                pending = None
            if isinstance(layer, nn.LeakyReLU) and layer.negative_slope >= 0:
                fn = layer
            elif type(layer) in _ACT_FNS:
                fn = _ACT_FNS[type(layer)]
            elif isinstance(layer, _MONOTONE):
                fn = layer
            else:
                raise TypeError(
                    f"IntervalMLP: no interval semantics for layer {type(layer).__name__}; supported: Linear, "
                    "Normalize and monotone activations"
                )
            if fn is not None:
                self.layers.append(("act", fn))
        if pending is not None:
            self._add_normalize(pending)

    def _add_normalize(self, norm: Normalize) -> None:
        self.layers.append(("norm", _interleave(norm.center), _interleave(norm.scale)))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """Interleaved bounds ``[B, 2k] -> [B, 2m]``."""
        for layer in self.layers:
            kind = layer[0]
            if kind == "affine":
                x = _matmul(x, layer[1], layer[2])
            elif kind == "act":
                x = layer[1](x)
            else:
                x = (x - layer[1]) / layer[2]
        return x

    def __call__(self, lohi: torch.Tensor) -> torch.Tensor:
        """``[lo | hi]`` bounds ``[B, 2k] -> [B, 2m]``."""
        b, k2 = lohi.shape
        y = self.run(lohi.view(b, 2, k2 // 2).transpose(1, 2).reshape(b, k2))
        m2 = y.shape[1]
        return y.view(b, m2 // 2, 2).transpose(1, 2).reshape(b, m2)

    def call_boxes(self, inputs: list) -> list:
        """Boxes ``[2, B]`` of the inputs -> boxes ``[2, B]`` of the outputs."""
        x = inputs[0].T if len(inputs) == 1 else torch.cat(inputs, 0).T
        y = self.run(x).T  # [2m, B]: rows (lo_1, hi_1, lo_2, ...)
        return [y] if y.shape[0] == 2 else list(y.unflatten(0, (-1, 2)).unbind(0))
