"""Optimisers shared by the program search and the encoder learner."""

from __future__ import annotations

import torch

__all__ = ["make_adam", "LeanAdam"]


def make_adam(params, lr: float, **kw) -> torch.optim.Adam:
    """Adam with the fused single-kernel step where this torch build supports it (CPU and CUDA in
    torch >= 2.4), else the multi-tensor step; both compute the same update."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True, **kw)


class LeanAdam:
    """``torch.optim.Adam`` (default betas and eps, no weight decay) with the per-step Python
    work cut down to a few library calls.

    The VAE step of the small synthetic model is bound by per-call overhead, and
    ``torch.optim.Adam.step`` spends most of its time in Python bookkeeping (grouping tensors
    by device and dtype, hooks, state look-ups) around its single fused kernel. This class keeps
    its state in flat lists and calls the same fused kernel directly, once per group of
    parameters sharing a learning rate. Where this torch build has no fused kernel for the
    device it falls back to ``torch.optim.Adam``. The tests check both give the same update.

    ``groups``: a list of ``(parameters, lr)``.
    """

    def __init__(self, groups, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.groups = [([p for p in params if p.requires_grad], float(lr)) for params, lr in groups]
        self.groups = [(ps, lr) for ps, lr in self.groups if ps]
        self.betas, self.eps = betas, float(eps)
        params = [p for ps, _ in self.groups for p in ps]
        self._fallback = None
        if not hasattr(torch, "_fused_adam_") or any(p.device.type not in ("cpu", "cuda") for p in params):
            self._fallback = torch.optim.Adam([{"params": ps, "lr": lr} for ps, lr in self.groups], betas=betas, eps=eps)
            return
        self.state = [
            ([torch.zeros_like(p) for p in ps], [torch.zeros_like(p) for p in ps],
             [torch.zeros((), dtype=torch.float32, device=p.device) for p in ps])
            for ps, _ in self.groups
        ]

    def zero_grad(self) -> None:
        for ps, _ in self.groups:
            for p in ps:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        if self._fallback is not None:
            self._fallback.step()
            return
        for (ps, lr), (m, v, steps) in zip(self.groups, self.state):
            idx = [i for i, p in enumerate(ps) if p.grad is not None]
            if len(idx) < len(ps):  # parameters without a gradient are skipped, as torch.optim does
                if not idx:
                    continue
                ps, m, v, steps = ([lst[i] for i in idx] for lst in (ps, m, v, steps))
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(ps, [p.grad for p in ps], m, v, [], steps, lr=lr, beta1=self.betas[0],
                               beta2=self.betas[1], weight_decay=0.0, eps=self.eps, amsgrad=False, maximize=False)
