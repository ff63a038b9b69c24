"""TVAE: the trajectory VAE of the paper's equation (7), reconstruction NLL plus
``beta`` times the KL of a Gaussian posterior to N(0, I); clustered by K-means on its
posterior means."""

from __future__ import annotations

from dataclasses import dataclass

from nsprog.baselines.base import TrajectoryBaseline, TVAESettings, gaussian_sample
from nsprog.models.latent import gaussian_kl
from nsprog.settings import param

__all__ = ["TVAE", "PlainTVAESettings"]


@dataclass
class PlainTVAESettings(TVAESettings):
    beta: float = param(1.0, ge=0)  # weight of the KL term (1: the plain VAE objective)


class TVAE(TrajectoryBaseline):
    """Trajectory VAE baseline (see :class:`~nsprog.baselines.base.TrajectoryBaseline` for the parameters)."""

    settings_class = PlainTVAESettings

    def _loss(self, model, batch, st):
        mu, logvar = model.encoder(batch["inputs"])
        recon = model.reconstruction(batch["states"], gaussian_sample(mu, logvar, st.noise))
        kl = gaussian_kl(mu, logvar)
        return recon + st.settings.beta * kl, {"recon": recon, "kl": kl}
