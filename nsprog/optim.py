"""Optimiser construction shared by the program search and the encoder learner."""

from __future__ import annotations

import torch

__all__ = ["make_adam"]


def make_adam(params, lr: float, **kw) -> torch.optim.Adam:
    """Adam with the fused single-kernel step where this torch build supports it (CPU and CUDA in
    torch >= 2.4), else the multi-tensor step; both compute the same update."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True, **kw)
