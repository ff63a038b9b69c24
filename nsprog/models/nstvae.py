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

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from nsprog.models.latent import (
    bernoulli_kl, bernoulli_mi, gaussian_kl, gaussian_nll, grad_reverse, gumbel_sigmoid_st, squared_correlation,
    standardize_batch, whitening_matrix,
)
from nsprog.models.tvae import ActionDecoder, TrajectoryEncoder

__all__ = ["VAESettings", "LossWeights", "NeurosymbolicTVAE"]


@dataclass
class VAESettings:
    """VAE hyperparameters (the paper's Table 6 plus capacity and adversary options)."""

    z_dim: int = 4
    h_dim: int = 16
    rnn_dim: int = 16
    adv_dim: int = 8
    decoder: Literal["gru", "mlp", "linear"] = "linear"
    # bits of frozen (earlier) programs during training: Gumbel samples like the trainable
    # program's ("sample"), or the program's deterministic output ("hard")
    frozen_bits: Literal["sample", "hard"] = "sample"
    disc_capacity: float = 0.6  # nats per binary program (at most ln 2)
    disc_capacity_term: Literal["kl", "mi"] = "kl"  # what the discrete capacity constrains (see README)
    cont_capacity: float | None = None  # None: plain KL (times beta) for the neural latent
    capacity_iters: int = 10_000  # optimiser steps over which capacities rise linearly from 0
    gamma_disc: float = 10.0
    gamma_cont: float = 10.0
    beta: float = 1.0
    adversary_weight: float = 1.0
    adversary_on_programs: bool = False  # also reverse the adversary's gradient into the programs (see README)
    # the neural latent the adversary reads: its mean, a sample, the mean standardised per unit over
    # the batch, or whitened over the batch (ZCA; the encoder cannot hide a factor from the
    # adversary by shrinking it, not even along a thin direction across units)
    adversary_input: Literal["mean", "sample", "standardized", "whitened"] = "mean"
    adversary_lr_scale: float = 1.0  # the adversary's learning rate is lr times this (a faster adversary)
    # weight of sum_jk corr(neural mean j, program probability k)^2 over the batch: removes the
    # programs' factors from every linear read-out of the neural latent (0 = off)
    decorrelation_weight: float = 0.0
    tau: float = 0.5
    lr: float = 2e-4
    batch_size: int = 32
    epochs: int = 50  # VAE epochs per round (before each distillation step)
    final_epochs: int = 0  # epochs after the last program is complete (Algorithm 1, line 7)
    logvar_clamp: float = 16.0
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        if self.z_dim < 1:
            raise ValueError(f"z_dim must be >= 1; got {self.z_dim}")
        if not (0 <= self.disc_capacity <= 0.6931472):
            raise ValueError(f"disc_capacity must be in [0, ln 2 = 0.693]; got {self.disc_capacity}")
        for name in ("lr", "tau"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0; got {getattr(self, name)}")
        for name in ("batch_size", "epochs", "h_dim", "rnn_dim", "adv_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.final_epochs < 0 or self.capacity_iters < 0:
            raise ValueError("final_epochs and capacity_iters must be >= 0")
        for name in ("adversary_lr_scale", "decorrelation_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")


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

    def set_program(self, j: int, module: nn.Module) -> None:
        self.programs[j] = module

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

    def training_loss(self, states: torch.Tensor, feats: torch.Tensor, w: LossWeights,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """One batch's training loss and its terms (``recon``, ``kl_cont``, ``disc``, ``adv``).

        On CPU with the linear decoder the whole head after the encoder and the programs runs
        as one autograd node (:mod:`nsprog.models.fused_loss`); elsewhere it is composed from
        :meth:`forward`. Both draw the same noise from ``generator`` and give the same loss
        and gradients (the tests compare them).
        """
        from nsprog.models.fused_loss import fused_loss_supported, fused_training_loss

        if fused_loss_supported(self, states):
            return fused_training_loss(self, states, feats, w, generator)
        out = self(states, feats, generator)
        cont = _abs_dev(out["kl_cont"], w.cont_capacity, w.cont_coef)
        if w.disc_index is None:
            disc_value = out["recon"].new_zeros(())
            disc = disc_value
        else:
            disc_value = out["mi_disc" if w.disc_term == "mi" else "kl_disc"][w.disc_index]
            disc = _abs_dev(disc_value, w.disc_capacity, w.disc_coef)
        loss = out["recon"] + cont + disc + w.adversary_weight * out["adv"] + self.cfg.decorrelation_weight * out["decor"]
        terms = {"recon": out["recon"], "kl_cont": out["kl_cont"], "disc": disc_value, "adv": out["adv"],
                 "decor": out["decor"]}
        return loss, {k: v.detach() for k, v in terms.items()}

    def forward(self, states: torch.Tensor, feats: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        mu, logvar = self.encoder(states)
        if self.training:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            zn = mu + eps * torch.exp(0.5 * logvar)
        else:
            zn = mu
        logits = self.program_logits(feats)
        if self.training:
            bits = gumbel_sigmoid_st(logits, self.cfg.tau, generator)
            hard = self.hard_bit_columns()
            if hard:
                bits = bits.clone()
                bits[:, hard] = (logits[:, hard] > 0).to(bits.dtype)
        else:
            bits = (logits > 0).to(logits.dtype)
        a, mu_a, logvar_a = self.decoder(states, self.assemble(zn, bits))
        out = {
            "recon": gaussian_nll(a, mu_a, logvar_a),
            "kl_cont": gaussian_kl(mu, logvar),
            "kl_disc": bernoulli_kl(logits),
            "mi_disc": bernoulli_mi(logits),
            "logits": logits,
            "mu": mu,
        }
        if self.adversary is not None:
            src = zn if self.cfg.adversary_input == "sample" else mu
            if self.cfg.adversary_input == "standardized":
                src = standardize_batch(src)
            elif self.cfg.adversary_input == "whitened":
                src = (src - src.mean(0).detach()) @ whitening_matrix(src)
            pred = self.adversary(grad_reverse(src))
            probs = torch.sigmoid(logits)
            target = grad_reverse(probs) if self.cfg.adversary_on_programs else probs.detach()
            out["adv"] = -(target * F.logsigmoid(pred) + (1 - target) * F.logsigmoid(-pred)).mean()
        else:
            out["adv"] = mu.new_zeros(())
        if self.cfg.decorrelation_weight and self.n_programs and self.neural_dim:
            out["decor"] = squared_correlation(mu, torch.sigmoid(logits).detach())
        else:
            out["decor"] = mu.new_zeros(())
        return out
