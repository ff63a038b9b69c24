"""The minibatch epoch loop every model in nsprog trains with (the neurosymbolic encoder, the
baselines, trebalink's models): shuffled batches from a seeded generator, one optimiser step
per batch, optional gradient clipping, a guard that stops at the first non-finite loss and
names the term, and progress (a bar on a terminal, a log line per epoch elsewhere)."""

from __future__ import annotations

import logging
import math
from typing import Callable, Mapping

import torch

from nsprog.progress import Progress

__all__ = ["TrainingError", "run_epochs"]

log = logging.getLogger("nsprog")

LossFn = Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, Mapping[str, torch.Tensor]]]


class TrainingError(FloatingPointError):
    """Training produced a non-finite loss; the message names where and which term."""


def run_epochs(tensors: Mapping[str, torch.Tensor], loss_fn: LossFn, optimizer: torch.optim.Optimizer, epochs: int,
               batch_size: int, order: torch.Generator, label: str, progress: bool = True,
               grad_clip: float | None = None, hint: str = "lower the learning rate or set a gradient clip",
               on_epoch_end: Callable[[int, dict], None] | None = None) -> dict:
    """Train for ``epochs`` epochs over the rows of ``tensors`` (all with the same first size).

    Each epoch draws a permutation from ``order`` (a CPU generator: the same seed gives the
    same batches), and ``loss_fn(batch)`` returns ``(loss, terms)`` for a dict of row slices;
    ``terms`` are scalar tensors reported per epoch (their graph is not kept). Returns the
    last epoch's mean loss and terms. Raises :class:`TrainingError` on a non-finite loss.
    ``on_epoch_end(epoch, means)``, when given, runs after each epoch with that epoch's mean
    loss and terms (per-epoch records, state refreshed once an epoch such as the K-means
    baseline's cluster indicator).
    """
    names = list(tensors)
    n = tensors[names[0]].shape[0]
    if any(t.shape[0] != n for t in tensors.values()):
        raise ValueError(f"run_epochs: tensors of different lengths {[tuple(t.shape) for t in tensors.values()]}")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    device = tensors[names[0]].device
    bar = Progress(range(epochs), label, enabled=progress)
    last: dict = {}
    try:
        for epoch in bar:
            perm = torch.randperm(n, generator=order).to(device)
            shuffled = {k: t[perm] for k, t in tensors.items()}
            sums: torch.Tensor | None = None
            keys: list[str] = []
            n_batches = 0
            for b, lo in enumerate(range(0, n, batch_size)):
                loss, terms = loss_fn({k: t[lo : lo + batch_size] for k, t in shuffled.items()})
                if not torch.isfinite(loss):
                    _non_finite(label, epoch, b, terms, hint)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, grad_clip)
                optimizer.step()
                keys = list(terms)
                row = torch.stack([loss, *terms.values()]).detach()
                sums = row if sums is None else sums + row
                n_batches += 1
            last = dict(zip(["loss", *keys], (sums / max(n_batches, 1)).tolist())) if sums is not None else {}
            bar.report(epoch, last)
            if on_epoch_end is not None:
                on_epoch_end(epoch, last)
    finally:
        bar.close()
    return last


def _non_finite(label: str, epoch: int, batch: int, terms: Mapping[str, torch.Tensor], hint: str) -> None:
    values = {k: float(v.detach()) for k, v in terms.items()}
    bad = [k for k, v in values.items() if not math.isfinite(v)] or ["total"]
    shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
    raise TrainingError(f"non-finite loss in {label}, epoch {epoch + 1}, batch {batch + 1}: term(s) {', '.join(bad)} "
                        f"({shown}); {hint}")
