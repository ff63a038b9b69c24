"""Beta-TVAE with a rising capacity (Burgess et al.'s objective, the paper's equation (12)):
reconstruction NLL plus ``gamma * |KL - C_t|``, where ``C_t`` rises linearly from 0 to
``capacity`` over ``capacity_iters`` optimiser steps; clustered by K-means on its means."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nsprog.baselines.base import TrajectoryBaseline, TVAESettings, gaussian_sample
from nsprog.models.latent import capacity, gaussian_kl
from nsprog.settings import param

__all__ = ["BetaTVAE", "BetaTVAESettings", "beta_capacity_term"]


@dataclass
class BetaTVAESettings(TVAESettings):
    gamma: float = param(10.0, ge=0)  # weight of |KL - C| (Table 7: 100 CalMS21, 10 basketball)
    capacity: float = param(5.0, ge=0)  # nats the KL is driven to at the end (Table 7: 20 / 5)
    capacity_iters: int = param(20_000, ge=0)  # steps over which C rises from 0 (Table 7: 10k / 20k)


def beta_capacity_term(mu: torch.Tensor, logvar: torch.Tensor, step: int, s: BetaTVAESettings) -> tuple[torch.Tensor, float]:
    """``(gamma * |KL(q(z|x) || N(0, I)) - C_step|, C_step)``, the KL summed over dims and averaged over the batch."""
    c = capacity(step, s.capacity, s.capacity_iters)
    return s.gamma * (gaussian_kl(mu, logvar) - c).abs(), c


class BetaTVAE(TrajectoryBaseline):
    """Beta-TVAE baseline (see :class:`~nsprog.baselines.base.TrajectoryBaseline` for the parameters)."""

    settings_class = BetaTVAESettings

    def _loss(self, model, batch, st):
        mu, logvar = model.encoder(batch["inputs"])
        recon = model.reconstruction(batch["states"], gaussian_sample(mu, logvar, st.noise))
        term, c = beta_capacity_term(mu, logvar, st.step, st.settings)
        return recon + term, {"recon": recon, "capacity_term": term, "kl": gaussian_kl(mu, logvar).detach()}
