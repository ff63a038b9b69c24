"""VQ-TVAE (van den Oord et al. 2017; the paper's equation (11)): the encoder's output ``z_e``
is replaced by its nearest codebook vector ``e`` (``n_clusters`` codes), the decoder reads
``z_q = z_e + sg[e - z_e]`` (straight-through: the value of ``e``, the gradient of ``z_e``),
and the loss is

    NLL(x | z_q) + ||sg[z_e] - e||^2 + commitment * ||z_e - sg[e]||^2.

The clusters are the codes. The codebook starts at the encoder outputs of ``n_clusters``
random training windows, and (``restart_dead_codes``, on by default) after every epoch a code
that no training window uses restarts at the encoder output of a random window: without
this, codes the encoder has moved away from never receive a gradient again and the model
collapses onto a few codes (a standard remedy for VQ-VAE codebook collapse).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nsprog.baselines.base import BaselineVAE, TrajectoryBaseline, TVAESettings
from nsprog.settings import param

__all__ = ["VQTVAE", "VQTVAESettings", "nearest_code", "vq_losses"]


@dataclass
class VQTVAESettings(TVAESettings):
    commitment: float = param(0.25, ge=0)  # beta of the commitment term (the VQ-VAE paper's value; the paper gives none)
    restart_dead_codes: bool = True  # after each epoch, codes no training window uses restart at random windows' z_e


def nearest_code(z_e: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook row (Euclidean) for each row of ``z_e [B, d]``; ties go to the lower index."""
    d = z_e.pow(2).sum(-1, keepdim=True) - 2 * z_e @ codebook.T + codebook.pow(2).sum(-1)[None, :]
    return d.argmin(-1)


def vq_losses(z_e: torch.Tensor, codebook: torch.Tensor, commitment: float):
    """``(z_q straight-through, codes, codebook term, commitment term)``; the terms are squared
    distances summed over dims and averaged over the batch, the commitment one times ``commitment``."""
    codes = nearest_code(z_e.detach(), codebook)
    e = codebook[codes]
    codebook_term = (z_e.detach() - e).pow(2).sum(-1).mean()
    commit_term = commitment * (z_e - e.detach()).pow(2).sum(-1).mean()
    return z_e + (e - z_e).detach(), codes, codebook_term, commit_term


class _VQModel(BaselineVAE):
    def __init__(self, state_dim: int, in_dim: int, s: VQTVAESettings, n_codes: int):
        super().__init__(state_dim, in_dim, s.z_dim, s.z_dim, s)
        self.codebook = nn.Parameter(torch.empty(n_codes, s.z_dim).uniform_(-1.0 / n_codes, 1.0 / n_codes))


class VQTVAE(TrajectoryBaseline):
    """VQ-TVAE baseline; ``n_clusters`` is the codebook size (see
    :class:`~nsprog.baselines.base.TrajectoryBaseline` for the other parameters).
    ``transform`` returns the encoder outputs ``z_e``."""

    settings_class = VQTVAESettings
    discrete = True

    def _build(self, state_dim, in_dim, s):
        return _VQModel(state_dim, in_dim, s, int(self.n_clusters))

    def _before_training(self, model, tensors, st) -> None:
        x = tensors["inputs"]
        k = int(self.n_clusters)
        if x.shape[0] < k:
            raise ValueError(f"VQTVAE: {x.shape[0]} training windows cannot start {k} codes; "
                             f"use at least n_clusters = {k} windows")
        pick = torch.randperm(x.shape[0], generator=st.streams.generator("codebook_init"))[:k].to(x.device)
        with torch.no_grad():
            model.codebook.copy_(model.encoder(x[pick])[0])

    def _epoch_end(self, model, tensors, st, epoch) -> None:
        if not st.settings.restart_dead_codes:
            return
        x = tensors["inputs"]
        with torch.no_grad():
            z_e = torch.from_numpy(self._means_of(model, x)).to(x.device)
            used = torch.bincount(nearest_code(z_e, model.codebook), minlength=model.codebook.shape[0]) > 0
            dead = torch.nonzero(~used).flatten()
            if dead.numel():
                pick = torch.randint(0, x.shape[0], (dead.numel(),), generator=st.streams.generator("restart", epoch))
                model.codebook[dead] = z_e[pick.to(x.device)]
                st.cache["restarted"] = st.cache.get("restarted", 0) + int(dead.numel())

    def _loss(self, model, batch, st):
        z_e = model.encoder(batch["inputs"])[0]
        z_q, _, cb, commit = vq_losses(z_e, model.codebook, st.settings.commitment)
        recon = model.reconstruction(batch["states"], z_q)
        return recon + cb + commit, {"recon": recon, "codebook": cb, "commitment": commit}

    def _codes(self, model, x):
        return nearest_code(model.encoder(x)[0], model.codebook)
