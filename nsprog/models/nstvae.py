"""The neurosymbolic trajectory VAE: latent ``z = [z_neural, program bits]``.

The total latent size ``z_dim`` is fixed. Program ``j``'s Bernoulli latent occupies column
``z_dim - 1 - j``; adding a program turns the last neural column into its bit (the
encoder drops that unit, the decoder keeps its weights), so the neural latent shrinks as
programs are added and a warm start keeps everything already learned.

Each program is a :class:`~nsprog.dsl.semantics.StackedProgram` (K = 1) over precomputed,
standardised domain features; its output is the logit of its bit. Bits are sampled with a
straight-through Gumbel relaxation during training and thresholded at 0 otherwise.
An adversary predicts every program bit from the neural latent; a gradient-reversal layer
makes the encoder and programs maximise its loss in the same backward pass (one forward
per batch). Optionally (``decorrelation_weight``) the loss also penalises the squared batch
correlations between the neural means and the programs' probabilities, which no rescaling
of a neural unit can hide.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from nsprog.models.latent import (
    LN2, bernoulli_kl, bernoulli_mi, gaussian_kl, gaussian_nll, grad_reverse, gumbel_sigmoid_st, squared_correlation,
    standardize_batch, whitening_matrix,
)
from nsprog.models.tvae import ActionDecoder, TrajectoryEncoder
from nsprog.settings import Settings, param

__all__ = ["VAESettings", "LossWeights", "NeurosymbolicTVAE"]


@dataclass
class VAESettings(Settings):
    """VAE hyperparameters (the paper's Table 6 plus capacity and adversary options).

    The defaults are what ``nsprog fit`` uses without a config: the paper's synthetic
    settings plus the capacity and adversary options that keep the programs' factors out
    of the neural latent (README, "Config sections"). Per-dataset values live in the named
    presets (:mod:`nsprog.encoder.presets`) and the configs under ``experiments/configs``.
    """

    z_dim: int = param(4, ge=1)
    h_dim: int = param(16, ge=1)
    rnn_dim: int = param(16, ge=1)
    adv_dim: int = param(8, ge=1)
    decoder: Literal["gru", "mlp", "linear"] = "linear"
    # bits of frozen (earlier) programs during training: Gumbel samples like the trainable
    # program's ("sample"), or the program's deterministic output ("hard")
    frozen_bits: Literal["sample", "hard"] = "hard"
    disc_capacity: float = param(0.6, ge=0, le=LN2)  # nats per binary program (at most ln 2)
    disc_capacity_term: Literal["kl", "mi"] = "kl"  # what the discrete capacity constrains (see README)
    cont_capacity: float | None = param(1.0, ge=0)  # None: plain KL (times beta) for the neural latent
    capacity_iters: int = param(10_000, ge=0)  # optimiser steps over which capacities rise linearly from 0
    gamma_disc: float = param(1.0, ge=0)
    gamma_cont: float = param(10.0, ge=0)
    beta: float = param(1.0, ge=0)
    adversary_weight: float = param(1.0, ge=0)
    adversary_on_programs: bool = False  # also reverse the adversary's gradient into the programs (see README)
    # the neural latent the adversary reads: its mean, a sample, the mean standardised per unit over
    # the batch, or whitened over the batch (ZCA; the encoder cannot hide a factor from the
    # adversary by shrinking it, not even along a thin direction across units)
    adversary_input: Literal["mean", "sample", "standardized", "whitened"] = "whitened"
    adversary_lr_scale: float = param(10.0, ge=0)  # the adversary's learning rate is lr times this
    # weight of sum_jk corr(neural mean j, program probability k)^2 over the batch: removes the
    # programs' factors from every linear read-out of the neural latent (0 = off)
    decorrelation_weight: float = param(10.0, ge=0)
    tau: float = param(0.5, gt=0)
    lr: float = param(2e-4, gt=0)
    batch_size: int = param(32, ge=1)
    epochs: int = param(50, ge=1)  # VAE epochs per round (before each distillation step)
    final_epochs: int = param(0, ge=0)  # epochs after the last program is complete (Algorithm 1, line 7)
    logvar_clamp: float = param(16.0, gt=0)
    grad_clip: float | None = param(None, gt=0)  # gradient-norm clip (None: no clipping)


@dataclass(frozen=True)
class LossWeights:
    """The coefficients of one optimiser step's loss
    ``recon + cont + disc + adversary_weight * adv`` (capacities at the current step), plus
    ``VAESettings.decorrelation_weight * decor`` when that is set.

    ``cont = beta * KL`` when ``cont_capacity`` is None, else ``gamma_cont * |KL - cont_capacity|``;
    ``disc = gamma_disc * |D_j - disc_capacity|`` for the trainable program ``disc_index``
    (``D`` = KL to the Bernoulli(1/2) prior or the batch mutual information, by
    ``disc_term``), and 0 when no program is trainable (``disc_index`` None).
    """

    cont_coef: float
    cont_capacity: float | None
    disc_coef: float
    disc_capacity: float
    disc_index: int | None
    disc_term: str = "kl"
    adversary_weight: float = 1.0


def _abs_dev(value: torch.Tensor, target: float | None, coef: float) -> torch.Tensor:
    return coef * value if target is None else coef * (value - target).abs()


class NeurosymbolicTVAE(nn.Module):
    def __init__(self, state_dim: int, cfg: VAESettings):
        super().__init__()
        self.cfg = cfg
        self.state_dim = state_dim
        self.encoder = TrajectoryEncoder(state_dim, cfg.z_dim, cfg.rnn_dim, cfg.h_dim, cfg.logvar_clamp)
        self.decoder = ActionDecoder(state_dim, cfg.z_dim, cfg.decoder, cfg.rnn_dim, cfg.h_dim, cfg.logvar_clamp)
        self.programs = nn.ModuleList()
        self.adversary: nn.Module | None = None
        self._hard_mask: torch.Tensor | None = None  # see freeze_hard_bits

    @property
    def n_programs(self) -> int:
        return len(self.programs)

    @property
    def neural_dim(self) -> int:
        return self.cfg.z_dim - self.n_programs

    def _new_adversary(self) -> None:
        m, zn = self.n_programs, self.neural_dim
        if m == 0 or zn == 0:
            self.adversary = None
            return
        dev = next(self.encoder.parameters()).device
        self.adversary = nn.Sequential(
            nn.Linear(zn, self.cfg.adv_dim), nn.ReLU(), nn.Linear(self.cfg.adv_dim, self.cfg.adv_dim), nn.ReLU(),
            nn.Linear(self.cfg.adv_dim, m),
        ).to(dev)

    def add_program(self, module: nn.Module) -> None:
        """Append a program latent: its bit takes the place of the last neural dimension."""
        if self.neural_dim < 1:
            raise ValueError(
                f"z_dim = {self.cfg.z_dim} leaves no room for program {self.n_programs + 1}; "
                "increase vae.z_dim or reduce n_programs"
            )
        self.encoder.drop_last_latent()
        self.programs.append(module)
        self._new_adversary()
        self._hard_mask = None

    def set_program(self, j: int, module: nn.Module) -> None:
        self.programs[j] = module
        self._hard_mask = None

    def reset_vae(self) -> None:
        """Re-initialise encoder, decoder and adversary (the reference's behaviour between rounds)."""
        zn = self.neural_dim
        dev = next(self.encoder.parameters()).device
        self.encoder = TrajectoryEncoder(self.state_dim, zn, self.cfg.rnn_dim, self.cfg.h_dim, self.cfg.logvar_clamp).to(dev)
        self.decoder = ActionDecoder(self.state_dim, self.cfg.z_dim, self.cfg.decoder, self.cfg.rnn_dim,
                                     self.cfg.h_dim, self.cfg.logvar_clamp).to(dev)
        self._new_adversary()

    def hard_bit_columns(self) -> list[int]:
        """Programs whose training-time bit is their deterministic output (frozen programs, with
        ``frozen_bits: hard``), by program index."""
        if self.cfg.frozen_bits != "hard":
            return []
        return [j for j, p in enumerate(self.programs) if not any(q.requires_grad for q in p.parameters())]

    def program_logits(self, feats: torch.Tensor) -> torch.Tensor:
        """``[B, m]`` logits of the programs' bits."""
        if not self.n_programs:
            return feats.new_zeros(feats.shape[0], 0)
        return torch.cat([p(feats)[0] for p in self.programs], dim=-1)

    def assemble(self, zn: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        return torch.cat([zn, bits.flip(-1)], dim=-1)

    def _latents(self, states: torch.Tensor, feats: torch.Tensor, generator: torch.Generator | None):
        """Encoder and programs: ``(mu, logvar, z_neural, logits, bits)``; in training the neural
        latent is sampled and the bits are straight-through Gumbel samples (frozen programs'
        deterministic with ``frozen_bits: hard``), otherwise means and thresholded bits."""
        mu, logvar = self.encoder(states)
        logits = self.program_logits(feats)
        if not self.training:
            return mu, logvar, mu, logits, (logits > 0).to(logits.dtype)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        zn = mu + eps * torch.exp(0.5 * logvar)
        bits = gumbel_sigmoid_st(logits, self.cfg.tau, generator)
        mask = self._hard_mask if self._hard_mask is not None else self._make_hard_mask()
        if mask is not None:
            bits = torch.where(mask, (logits > 0).to(bits.dtype), bits)
        return mu, logvar, zn, logits, bits

    def _make_hard_mask(self) -> torch.Tensor | None:
        hard = self.hard_bit_columns()
        if not hard:
            return None
        mask = torch.zeros(self.n_programs, dtype=torch.bool, device=next(self.encoder.parameters()).device)
        mask[hard] = True
        return mask

    @contextlib.contextmanager
    def fixed_hard_bits(self):
        """Inside the body, which programs' training bits are deterministic (``frozen_bits:
        hard``) is looked up once, not at every step (the body must not freeze programs)."""
        self._hard_mask = self._make_hard_mask()
        try:
            yield
        finally:
            self._hard_mask = None

    def _adversary_loss(self, mu: torch.Tensor, zn: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """BCE of the adversary predicting every program's probability from the neural latent;
        the gradient reversal makes the encoder maximise it in the same backward pass."""
        if self.adversary is None:
            return mu.new_zeros(())
        src = zn if self.cfg.adversary_input == "sample" else mu
        if self.cfg.adversary_input == "standardized":
            src = standardize_batch(src)
        elif self.cfg.adversary_input == "whitened":
            src = (src - src.mean(0).detach()) @ whitening_matrix(src)
        pred = self.adversary(grad_reverse(src))
        probs = torch.sigmoid(logits)
        target = grad_reverse(probs) if self.cfg.adversary_on_programs else probs.detach()
        return -(target * F.logsigmoid(pred) + (1 - target) * F.logsigmoid(-pred)).mean()

    def _decorrelation(self, mu: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        if self.cfg.decorrelation_weight and self.n_programs and self.neural_dim:
            return squared_correlation(mu, torch.sigmoid(logits).detach())
        return mu.new_zeros(())

    def training_loss(self, states: torch.Tensor, feats: torch.Tensor, w: LossWeights,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """One batch's training loss and its terms ``recon``, ``kl_cont``, ``disc``, ``adv``,
        ``decor`` (still attached to the graph: detach before keeping them): ``recon + cont + disc + adversary_weight * adv + decorrelation_weight
        * decor`` (see :class:`LossWeights`). Only the terms the weights use are computed."""
        mu, logvar, zn, logits, bits = self._latents(states, feats, generator)
        a, mu_a, logvar_a = self.decoder(states, self.assemble(zn, bits))
        recon = gaussian_nll(a, mu_a, logvar_a)
        kl_cont = gaussian_kl(mu, logvar)
        loss = recon + _abs_dev(kl_cont, w.cont_capacity, w.cont_coef)
        if w.disc_index is None:
            disc = recon.new_zeros(())
        else:
            column = logits[:, w.disc_index : w.disc_index + 1]
            disc = (bernoulli_mi if w.disc_term == "mi" else bernoulli_kl)(column)[0]
            loss = loss + _abs_dev(disc, w.disc_capacity, w.disc_coef)
        adv = self._adversary_loss(mu, zn, logits)
        decor = self._decorrelation(mu, logits)
        loss = loss + w.adversary_weight * adv + self.cfg.decorrelation_weight * decor
        return loss, {"recon": recon, "kl_cont": kl_cont, "disc": disc, "adv": adv, "decor": decor}

    def forward(self, states: torch.Tensor, feats: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        """Every term for diagnostics: ``recon``, ``kl_cont``, ``kl_disc`` and ``mi_disc`` (per
        program), ``adv``, ``decor``, ``logits``, ``mu``."""
        mu, logvar, zn, logits, bits = self._latents(states, feats, generator)
        a, mu_a, logvar_a = self.decoder(states, self.assemble(zn, bits))
        return {
            "recon": gaussian_nll(a, mu_a, logvar_a),
            "kl_cont": gaussian_kl(mu, logvar),
            "kl_disc": bernoulli_kl(logits),
            "mi_disc": bernoulli_mi(logits),
            "adv": self._adversary_loss(mu, zn, logits),
            "decor": self._decorrelation(mu, logits),
            "logits": logits,
            "mu": mu,
        }
