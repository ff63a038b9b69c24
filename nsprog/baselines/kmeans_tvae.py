"""TVAE + K-means loss (the paper's equation (8)): the TVAE objective plus ``weight`` times the
spectrally relaxed K-means objective of the latent means,

    L_kmeans = Tr(Z^T Z) - Tr(A^T Z^T Z A),

with ``Z`` the ``d x N`` matrix of the training windows' posterior means and ``A`` (``N x k``,
orthonormal columns) the cluster indicator, refreshed every ``update_every`` epochs (and
once before training) from the top-k singular vectors of ``Z``, i.e. the top-k eigenvectors
of ``Z^T Z`` (equivalently of ``sqrt(Z^T Z)``), as in the implementation the paper follows.

Between refreshes ``A`` is held fixed and the loss is applied per window: with the fixed
"centroid" matrix ``C = Z A`` (``d x k``), window i contributes ``||z_i - C a_i||^2``, where
``a_i`` is row i of ``A``. At a refresh this sum over windows equals ``L_kmeans``, and its
gradient in each ``z_i`` equals that of ``L_kmeans`` (``I - A A^T`` is a projector), so
minibatches give unbiased steps on the paper's objective (scaled by ``1/N``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nsprog.baselines.base import TrajectoryBaseline, gaussian_sample
from nsprog.baselines.tvae import PlainTVAESettings
from nsprog.models.latent import gaussian_kl
from nsprog.settings import param

__all__ = ["KMeansTVAE", "KMeansTVAESettings", "kmeans_loss", "cluster_indicator"]


@dataclass
class KMeansTVAESettings(PlainTVAESettings):
    kmeans_weight: float = param(1.0, ge=0)  # weight of the K-means term (the paper gives none)
    update_every: int = param(1, ge=1)  # epochs between refreshes of the cluster indicator A


def kmeans_loss(z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``Tr(Z^T Z) - Tr(A^T Z^T Z A)`` for means ``z [N, d]`` (the paper's ``Z`` transposed) and
    an indicator ``a [N, k]``."""
    return z.pow(2).sum() - (z.T @ a).pow(2).sum()


def cluster_indicator(z: torch.Tensor, k: int) -> torch.Tensor:
    """``A [N, k]``: the top-k left singular vectors of ``z [N, d]`` (top-k eigenvectors of the
    Gram matrix ``z z^T``), which minimise :func:`kmeans_loss` over orthonormal ``A``. With
    ``k > d`` only ``d`` directions carry variance; the rest are the next singular vectors."""
    u, _, _ = torch.linalg.svd(z.detach().double(), full_matrices=False)
    k_eff = min(int(k), u.shape[1])
    return u[:, :k_eff].to(z.dtype)


class KMeansTVAE(TrajectoryBaseline):
    """TVAE + K-means loss baseline (see :class:`~nsprog.baselines.base.TrajectoryBaseline` for
    the parameters; ``n_clusters`` is also the ``k`` of the indicator)."""

    settings_class = KMeansTVAESettings

    def _refresh(self, model, tensors, st) -> None:
        z = torch.from_numpy(self._means_of(model, tensors["inputs"])).to(tensors["inputs"].device)
        a = cluster_indicator(z, st.n_clusters)
        st.cache["indicator"] = a
        st.cache["centroids"] = z.T @ a  # C = Z A, [d, k]

    def _before_training(self, model, tensors, st) -> None:
        self._refresh(model, tensors, st)

    def _epoch_end(self, model, tensors, st, epoch) -> None:
        if (epoch + 1) % st.settings.update_every == 0:
            self._refresh(model, tensors, st)

    def _loss(self, model, batch, st):
        mu, logvar = model.encoder(batch["inputs"])
        recon = model.reconstruction(batch["states"], gaussian_sample(mu, logvar, st.noise))
        kl = gaussian_kl(mu, logvar)
        a = st.cache["indicator"][batch["index"]]
        km = (mu - a @ st.cache["centroids"].T).pow(2).sum(-1).mean()
        s = st.settings
        return recon + s.beta * kl + s.kmeans_weight * km, {"recon": recon, "kl": kl, "kmeans": km}
