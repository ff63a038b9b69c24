"""TREBA's loss terms as plain functions of tensors.

* :func:`supervised_contrastive` (Khosla et al. 2020, as TREBA uses it): for anchors ``i``
  with positives ``P(i)`` (other items of the same class),
  ``L = mean_i -1/|P(i)| sum_{p in P(i)} log( exp(s_ip / tau) / sum_{a != i} exp(s_ia / tau) )``
  with ``s`` the dot products of L2-normalised features. Items labelled ``-1`` (abstain) take
  no part; anchors without any positive are left out of the mean (the reference divided by
  zero there).
* :func:`free_bits_kl`: KL of a diagonal Gaussian posterior to N(0, I), each dimension of
  each window floored at ``floor`` nats (free bits), summed over dimensions, mean over windows.
* :func:`task_cross_entropy`: per-task cross-entropy of ``[K, B, C]`` logits against ``[B, K]``
  classes, abstains ignored, summed over windows and divided by the batch size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["supervised_contrastive", "free_bits_kl", "task_cross_entropy"]


def supervised_contrastive(features: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised-contrastive loss of L2-normalised ``features [M, d]`` with ``labels [M]``."""
    keep = labels >= 0
    if not bool(keep.all()):
        features, labels = features[keep], labels[keep]
    m = features.shape[0]
    if m < 2:
        return features.sum() * 0.0
    sim = features @ features.T / temperature
    not_self = ~torch.eye(m, dtype=torch.bool, device=features.device)
    logits = sim - sim.max(dim=1, keepdim=True).values.detach()  # shift-invariant, for stability
    denom = torch.logsumexp(logits.masked_fill(~not_self, float("-inf")), dim=1, keepdim=True)
    log_prob = logits - denom
    pos = (labels[:, None] == labels[None, :]) & not_self
    n_pos = pos.sum(1)
    has = n_pos > 0
    if not bool(has.any()):
        return features.sum() * 0.0
    mean_pos = (log_prob * pos).sum(1)[has] / n_pos[has]
    return -mean_pos.mean()


def free_bits_kl(mu: torch.Tensor, logvar: torch.Tensor, floor: float) -> torch.Tensor:
    """``mean_b sum_d max(KL_bd, floor)`` for ``N(mu, exp(logvar))`` against ``N(0, 1)``."""
    mu, logvar = mu.float(), logvar.float()
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
    if floor > 0:
        kl = kl.clamp_min(floor)
    return kl.sum(-1).mean()


def task_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ce [K], correct [K], counted [K])``: per task, the cross-entropy summed over the
    labelled windows and divided by the batch size (so a mean per window, abstains counting
    zero), the number of windows whose arg-max class is right, and the number labelled."""
    k, b, c = logits.shape
    target = labels.T  # [K, B]
    ce = F.cross_entropy(logits.reshape(k * b, c), target.reshape(-1).clamp_min(0), reduction="none").view(k, b)
    valid = target >= 0
    ce = torch.where(valid, ce, torch.zeros_like(ce)).sum(1) / max(b, 1)
    correct = ((logits.argmax(-1) == target) & valid).sum(1)
    return ce, correct, valid.sum(1)
