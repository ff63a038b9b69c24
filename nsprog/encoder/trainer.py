"""The VAE epoch loop of a fit: batches, capacity schedules, the non-finite-loss guard and
progress. Each call trains with the program architecture fixed for a number of epochs and
returns the last epoch's mean losses."""

from __future__ import annotations

import logging
import math

import torch

from nsprog.encoder.state import AlgorithmState, FitContext
from nsprog.models.latent import capacity
from nsprog.models.nstvae import LossWeights
from nsprog.optim import make_adam
from nsprog.progress import Progress

__all__ = ["TrainingError", "train_epochs", "loss_weights"]

log = logging.getLogger("nsprog")

_TERMS = ("loss", "recon", "kl_cont", "kl_disc", "adv", "decor")


class TrainingError(FloatingPointError):
    """Training produced a non-finite loss; the message names the round, epoch, batch and term."""


def loss_weights(ctx: FitContext, state: AlgorithmState, trainable: int | None) -> LossWeights:
    """The loss coefficients at the current step: both capacities rise linearly over
    ``vae.capacity_iters`` steps counted from when the current program was added."""
    vae = ctx.cfg.vae
    return LossWeights(
        cont_coef=vae.beta if vae.cont_capacity is None else vae.gamma_cont,
        cont_capacity=None if vae.cont_capacity is None
        else capacity(state.program_step, vae.cont_capacity, vae.capacity_iters),
        disc_coef=vae.gamma_disc,
        disc_capacity=capacity(state.program_step, vae.disc_capacity, vae.capacity_iters),
        disc_index=trainable,
        disc_term=vae.disc_capacity_term,
        adversary_weight=vae.adversary_weight,
    )


def train_epochs(ctx: FitContext, state: AlgorithmState, epochs: int, label: str, attempt: int = 0) -> dict:
    """Train the VAE (and the current program, if trainable) for ``epochs`` epochs.

    Batches and noise come from the ``batches`` and ``noise`` streams at (round, attempt),
    so a resumed fit repeats them exactly. Advances ``state.step`` and ``state.program_step``.
    Raises :class:`TrainingError` on the first non-finite loss.
    """
    vae = ctx.cfg.vae
    model = ctx.model
    model.train()
    noise = ctx.streams.generator("noise", state.round, attempt, device=ctx.device)
    order = ctx.streams.generator("batches", state.round, attempt)
    params = [p for p in model.parameters() if p.requires_grad]
    adv_ids = {id(p) for p in (model.adversary.parameters() if model.adversary is not None else [])}
    groups = [{"params": [p for p in params if id(p) not in adv_ids], "lr": vae.lr},
              {"params": [p for p in params if id(p) in adv_ids], "lr": vae.lr * vae.adversary_lr_scale}]
    opt = make_adam([g for g in groups if g["params"]], vae.lr)
    j = model.n_programs - 1
    trainable = j if j >= 0 and any(p.requires_grad for p in model.programs[j].parameters()) else None
    x_all, f_all = ctx.states["train"], ctx.feats["train"]
    n = x_all.shape[0]
    bar = Progress(range(epochs), label, enabled=ctx.progress)
    last: dict = {}
    try:
        for epoch in bar:
            perm = torch.randperm(n, generator=order).to(ctx.device)
            xs, fs = x_all[perm], f_all[perm]
            sums = torch.zeros(len(_TERMS), device=ctx.device)
            n_batches = 0
            for b, lo in enumerate(range(0, n, vae.batch_size)):
                w = loss_weights(ctx, state, trainable)
                loss, terms = model.training_loss(xs[lo : lo + vae.batch_size], fs[lo : lo + vae.batch_size], w, noise)
                if not torch.isfinite(loss):
                    _non_finite(label, epoch, b, {k: v.detach() for k, v in terms.items()}, vae.disc_capacity_term)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if vae.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, vae.grad_clip)
                opt.step()
                state.step += 1
                state.program_step += 1
                sums += torch.stack([loss, terms["recon"], terms["kl_cont"], terms["disc"], terms["adv"],
                                     terms["decor"]]).detach()
                n_batches += 1
            last = dict(zip(_TERMS, (sums / max(n_batches, 1)).tolist()))
            if not vae.decorrelation_weight:
                del last["decor"]
            bar.report(epoch, last)
    finally:
        bar.close()
    log.info("%s: %s", label, ", ".join(f"{k} {v:.4f}" for k, v in last.items()))
    model.eval()
    return last


def _non_finite(label: str, epoch: int, batch: int, terms: dict, disc_term: str) -> None:
    values = {(f"{disc_term}_disc" if k == "disc" else k): float(v) for k, v in terms.items()}
    bad = [k for k, v in values.items() if not math.isfinite(v)] or ["total"]
    shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
    raise TrainingError(
        f"non-finite loss in {label}, epoch {epoch + 1}, batch {batch + 1}: term(s) {', '.join(bad)} ({shown}); "
        "the last checkpoint on disk is from the previous round. Lower vae.lr or set vae.grad_clip (e.g. 10)."
    )
