"""The VAE phase of a round: the neurosymbolic TVAE trained with the program architecture
fixed, on :func:`nsprog.training.run_epochs`, with the capacity schedules of the paper."""

from __future__ import annotations

import logging

from nsprog.encoder.state import AlgorithmState, FitContext
from nsprog.models.latent import capacity
from nsprog.models.nstvae import LossWeights
from nsprog.optim import make_adam
from nsprog.training import TrainingError, run_epochs

__all__ = ["TrainingError", "train_epochs", "loss_weights"]

log = logging.getLogger("nsprog")


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
    Raises :class:`~nsprog.training.TrainingError` on the first non-finite loss.
    """
    vae = ctx.cfg.vae
    model = ctx.model
    model.train()
    noise = ctx.streams.generator("noise", state.round, attempt, device=ctx.device)
    params = [p for p in model.parameters() if p.requires_grad]
    adv_ids = {id(p) for p in (model.adversary.parameters() if model.adversary is not None else [])}
    groups = [{"params": [p for p in params if id(p) not in adv_ids], "lr": vae.lr},
              {"params": [p for p in params if id(p) in adv_ids], "lr": vae.lr * vae.adversary_lr_scale}]
    optimizer = make_adam([g for g in groups if g["params"]], vae.lr)
    j = model.n_programs - 1
    trainable = j if j >= 0 and any(p.requires_grad for p in model.programs[j].parameters()) else None

    def loss_fn(batch):
        loss, terms = model.training_loss(batch["states"], batch["feats"], loss_weights(ctx, state, trainable), noise)
        state.step += 1
        state.program_step += 1
        if not vae.decorrelation_weight:
            del terms["decor"]
        terms[f"{vae.disc_capacity_term}_disc"] = terms.pop("disc")
        return loss, terms

    with model.fixed_hard_bits():
        last = run_epochs({"states": ctx.states["train"], "feats": ctx.feats["train"]}, loss_fn, optimizer, epochs,
                          vae.batch_size, ctx.streams.generator("batches", state.round, attempt), label, ctx.progress,
                          vae.grad_clip, hint="the last checkpoint on disk is from the previous round. Lower vae.lr "
                                              "or set vae.grad_clip (e.g. 10)")
    log.info("%s: %s", label, ", ".join(f"{k} {v:.4f}" for k, v in last.items()))
    model.eval()
    return last
