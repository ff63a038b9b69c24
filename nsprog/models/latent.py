"""Latent-variable pieces: Gaussian and Bernoulli KL terms, the straight-through Gumbel
relaxation of a binary latent, capacity schedules and gradient reversal."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "gaussian_kl",
    "bernoulli_kl",
    "bernoulli_mi",
    "gumbel_sigmoid_st",
    "capacity",
    "grad_reverse",
    "gaussian_nll",
    "standardize_batch",
    "STANDARDIZE_EPS",
    "LN2",
    "squared_correlation",
    "whitening_matrix",
]

LN2 = math.log(2.0)
STANDARDIZE_EPS = 1e-12  # tiny: the encoder must not be able to hide a dimension below it


def standardize_batch(x: torch.Tensor) -> torch.Tensor:
    """``x [B, d]`` centred and scaled to unit variance per column over the batch (population
    variance), differentiable through the batch statistics."""
    centred = x - x.mean(0)
    return centred / (centred.pow(2).mean(0) + STANDARDIZE_EPS).sqrt()


def whitening_matrix(x: torch.Tensor) -> torch.Tensor:
    """``W [d, d]`` with ``(x - mean) @ W`` white over the batch (ZCA), from detached batch
    statistics: a constant for the gradient, so no direction can hide by shrinking."""
    x = x.detach()
    xc = x - x.mean(0)
    cov = xc.T @ xc / x.shape[0]
    cov.diagonal().add_(STANDARDIZE_EPS)
    try:
        vals, vecs = torch.linalg.eigh(cov)
    except torch.linalg.LinAlgError:  # a non-finite batch: let the loss turn NaN, so the trainer's guard names it
        return torch.full_like(cov, float("nan"))
    return (vecs * vals.clamp_min(STANDARDIZE_EPS).rsqrt()) @ vecs.T


def squared_correlation(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum over column pairs of the squared Pearson correlation between ``x [B, d]`` and
    ``y [B, m]`` over the batch; scale-free, so a column cannot hide by shrinking."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    b = x.shape[0]
    sx = (xc.pow(2).mean(0) + STANDARDIZE_EPS).sqrt()
    sy = (yc.pow(2).mean(0) + STANDARDIZE_EPS).sqrt()
    r = (xc.T @ yc) / b / sx[:, None] / sy[None, :]
    return r.pow(2).sum()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over dims, mean over the batch."""
    if mu.shape[-1] == 0:
        return mu.new_zeros(())
    return (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(-1).mean()


def bernoulli_kl(logit: torch.Tensor) -> torch.Tensor:
    """KL(Bernoulli(sigmoid(logit)) || Bernoulli(0.5)) per program, mean over the batch.

    ``logit`` has shape ``[B, k]``; returns ``[k]``. Computed from log-sigmoids, so it stays
    finite for saturated logits; it lies in [0, ln 2].
    """
    q = torch.sigmoid(logit)
    kl = q * F.logsigmoid(logit) + (1 - q) * F.logsigmoid(-logit) + LN2
    return kl.mean(0)


def _entropy(logit: torch.Tensor) -> torch.Tensor:
    q = torch.sigmoid(logit)
    return -(q * F.logsigmoid(logit) + (1 - q) * F.logsigmoid(-logit))


def bernoulli_mi(logit: torch.Tensor) -> torch.Tensor:
    """Batch estimate of the mutual information I(x; b) between windows and each bit:
    H(mean_x q) - mean_x H(q). ``logit [B, k] -> [k]``, in [0, ln 2].

    E_x KL(q(b|x) || Bernoulli(1/2)) = I(x; b) + KL(q_mean || 1/2): a bit that is confidently
    the *same* for every window has KL = ln 2 but carries no information; its MI is 0.
    """
    q_mean = torch.sigmoid(logit).mean(0).clamp(1e-6, 1 - 1e-6)
    h_mean = -(q_mean * torch.log(q_mean) + (1 - q_mean) * torch.log1p(-q_mean))
    return h_mean - _entropy(logit).mean(0)


def gumbel_sigmoid_st(logit: torch.Tensor, tau: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """A hard 0/1 sample whose gradient is that of the relaxed sample
    ``sigmoid((logit + logistic noise) / tau)`` (straight-through Gumbel)."""
    u = torch.rand(logit.shape, generator=generator, device=logit.device, dtype=logit.dtype)
    soft = torch.sigmoid((logit + torch.logit(u, eps=1e-6)) / tau)  # logistic noise: log(u) - log(1 - u)
    hard = (soft > 0.5).to(soft.dtype)
    return hard + (soft - soft.detach())


def capacity(step: int, max_capacity: float, iters: int, min_capacity: float = 0.0) -> float:
    """Capacity C_t rising linearly from ``min_capacity`` at step 0 to ``max_capacity`` at ``iters``."""
    if iters <= 0:
        return float(max_capacity)
    frac = min(1.0, max(0.0, step / iters))
    return float(min_capacity + (max_capacity - min_capacity) * frac)


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.weight * grad, None


def grad_reverse(x: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """Identity forward; multiplies the gradient by ``-weight`` backward."""
    return _GradReverse.apply(x, float(weight))


def gaussian_nll(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of ``x`` under N(mu, exp(logvar)), summed over time and dims,
    mean over the batch."""
    nll = 0.5 * ((x - mu).pow(2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi))
    return nll.flatten(1).sum(1).mean()
