"""The optimiser shared by the program search, the encoder and the safety module."""

from __future__ import annotations

import logging

import torch

__all__ = ["make_adam"]

log = logging.getLogger("nsprog")


def make_adam(params, lr: float, **kw) -> torch.optim.Adam:
    """``torch.optim.Adam`` with its fused single-kernel step where this torch build and
    device support it (CPU and CUDA from torch 2.4), else its multi-tensor step; both compute
    the same update. ``params``: tensors, or parameter groups (dicts) with their own ``lr``."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError) as exc:
        log.debug("fused Adam unavailable here (%s); using the multi-tensor step", exc)
        return torch.optim.Adam(params, lr=lr, foreach=True, **kw)
