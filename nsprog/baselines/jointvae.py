"""JointVAE on trajectories (Dupont 2018; the paper's equations (9)-(10)): a continuous
Gaussian latent ``z`` and a categorical latent ``c`` with ``n_clusters`` categories, decoded
together. Each KL is held to its own capacity, both rising linearly over ``capacity_iters``
steps:

    loss = NLL(x | z, c) + gamma * |KL(q(z|x) || N(0, I)) - C_z| + gamma * |KL(q(c|x) || U) - C_c|

``c`` is a relaxed (Gumbel-softmax, temperature ``tau``) sample in training and the one-hot
argmax otherwise; ``C_c`` never exceeds ``ln(n_clusters)``, the most a categorical can carry.
The clusters are the categories (``predict`` = argmax of ``q(c|x)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nsprog.baselines.base import BaselineVAE, TrajectoryBaseline, TVAESettings, gaussian_sample
from nsprog.models.latent import capacity, gaussian_kl
from nsprog.settings import param

__all__ = ["JointVAE", "JointVAESettings", "categorical_kl", "jointvae_capacity_terms"]


@dataclass
class JointVAESettings(TVAESettings):
    gamma: float = param(10.0, ge=0)  # weight of both capacity terms (Table 7: 100 CalMS21, 10 basketball)
    cont_capacity: float = param(4.0, ge=0)  # nats for z (Table 7: 10 / 4)
    disc_capacity: float = param(0.6, ge=0)  # nats for c (Table 7: 0.69 / 0.6), capped at ln(n_clusters)
    capacity_iters: int = param(20_000, ge=0)  # steps over which both capacities rise from 0
    tau: float = param(0.67, gt=0)  # Gumbel-softmax temperature (JointVAE's default)


def categorical_kl(logits: torch.Tensor) -> torch.Tensor:
    """KL(Categorical(softmax(logits)) || Uniform(K)), mean over the batch."""
    logq = F.log_softmax(logits, dim=-1)
    return (logq.exp() * (logq + math.log(logits.shape[-1]))).sum(-1).mean()


def jointvae_capacity_terms(mu: torch.Tensor, logvar: torch.Tensor, logits: torch.Tensor, step: int,
                            s: JointVAESettings) -> tuple[torch.Tensor, torch.Tensor]:
    """``(gamma * |KL_z - C_z|, gamma * |KL_c - C_c|)`` at optimiser step ``step``."""
    c_z = capacity(step, s.cont_capacity, s.capacity_iters)
    c_c = min(capacity(step, s.disc_capacity, s.capacity_iters), math.log(logits.shape[-1]))
    return s.gamma * (gaussian_kl(mu, logvar) - c_z).abs(), s.gamma * (categorical_kl(logits) - c_c).abs()


class _JointModel(BaselineVAE):
    def __init__(self, state_dim: int, in_dim: int, s: JointVAESettings, n_categories: int):
        super().__init__(state_dim, in_dim, s.z_dim, s.z_dim + n_categories, s)
        self.categories = nn.Linear(s.h_dim, n_categories)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        enc = self.encoder
        h = enc.hidden(x)
        return enc.mu(h), enc.logvar(h).clamp(-enc.logvar_clamp, enc.logvar_clamp), self.categories(h)


class JointVAE(TrajectoryBaseline):
    """JointVAE baseline; ``n_clusters`` is the number of categories (see
    :class:`~nsprog.baselines.base.TrajectoryBaseline` for the other parameters).
    ``transform`` returns the continuous means followed by the category probabilities."""

    settings_class = JointVAESettings
    discrete = True

    def _build(self, state_dim, in_dim, s):
        return _JointModel(state_dim, in_dim, s, int(self.n_clusters))

    def _loss(self, model, batch, st):
        mu, logvar, logits = model.encode(batch["inputs"])
        z = gaussian_sample(mu, logvar, st.noise)
        u = torch.rand(logits.shape, generator=st.noise, device=logits.device, dtype=logits.dtype)
        gumbel = -torch.log((-torch.log(u.clamp_min(1e-10))).clamp_min(1e-10))
        c = F.softmax((logits + gumbel) / st.settings.tau, dim=-1)
        recon = model.reconstruction(batch["states"], torch.cat([z, c], dim=-1))
        cont, disc = jointvae_capacity_terms(mu, logvar, logits, st.step, st.settings)
        return recon + cont + disc, {"recon": recon, "cont_capacity_term": cont, "disc_capacity_term": disc}

    def _means(self, model, x):
        mu, _, logits = model.encode(x)
        return torch.cat([mu, F.softmax(logits, dim=-1)], dim=-1)

    def _codes(self, model, x):
        return model.encode(x)[2].argmax(-1)
