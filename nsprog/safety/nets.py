"""Neural modules of the benchmark programs and a fast interval propagation for them.

:func:`make_mlp` builds the networks of DESIGN.md section 12 (input -> 64 -> 64 -> output,
ReLU, ReLU, then an optional sigmoid), with a fixed input :class:`~nsprog.safety.box.Normalize`.

:class:`IntervalMLP` is the hot-path version of :func:`~nsprog.safety.box.propagate`: bounds
travel as one ``[B, 2k]`` tensor ``[lo | hi]`` and each Linear layer is one matrix product
with the block matrix ``[[W+, W-], [W-, W+]]`` (``W+ = max(W, 0)``, ``W- = min(W, 0)``),
which is exactly the centre/radius rule ``c W +- r |W|`` written as a single kernel.
A Normalize layer in front of a Linear layer is folded into it. Build one per optimiser
step (the block matrices are functions of the current weights and carry their gradients).
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


def _block(w: torch.Tensor) -> torch.Tensor:
    wp = w.clamp(min=0)
    wn = w - wp
    wt_p, wt_n = wp.T, wn.T
    return torch.cat([torch.cat([wt_p, wt_n], 1), torch.cat([wt_n, wt_p], 1)], 0)


class IntervalMLP:
    """Interval propagation through a Sequential of Normalize / Linear / monotone layers.

    Call with ``lohi`` of shape ``[B, 2k]`` (lower bounds then upper bounds); returns
    ``[B, 2m]``. Also callable on concrete inputs through :attr:`module`.
    """

    def __init__(self, module: nn.Module):
        self.module = module
        layers = list(module) if isinstance(module, nn.Sequential) else [module]
        self.ops: list[Callable[[torch.Tensor], torch.Tensor]] = []
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
                    inv = 1.0 / pending.scale
                    w = w * inv
                    shift = w @ pending.center
                    b = (b - shift) if b is not None else -shift
                    pending = None
                blk = _block(w)
                if b is not None:
                    bb = torch.cat([b, b])
                    self.ops.append(lambda x, blk=blk, bb=bb: torch.addmm(bb, x, blk))
                else:
                    self.ops.append(lambda x, blk=blk: x @ blk)
                continue
            if pending is not None:
                self._add_normalize(pending)
                pending = None
            if isinstance(layer, nn.LeakyReLU) and layer.negative_slope >= 0:
                self.ops.append(layer)
            elif isinstance(layer, _MONOTONE):
                self.ops.append(layer)
            else:
                raise TypeError(
                    f"IntervalMLP: no interval semantics for layer {type(layer).__name__}; supported: Linear, "
                    "Normalize and monotone activations"
                )
        if pending is not None:
            self._add_normalize(pending)

    def _add_normalize(self, norm: Normalize) -> None:
        c = torch.cat([norm.center, norm.center])
        s = torch.cat([norm.scale, norm.scale])
        self.ops.append(lambda x, c=c, s=s: (x - c) / s)

    def __call__(self, lohi: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            lohi = op(lohi)
        return lohi
