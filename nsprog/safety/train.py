"""Training in the three modes ``only_data``, ``diffai`` (DiffAI+) and ``dse``.

Every mode runs the same fixed budget of Adam steps (``TrainConfig.steps``); one step is

- ``only_data``: ``loss = data``;
- ``diffai``: ``loss = data + lam * safety`` with safety = mean over training components of
  the join-semantics penalty (max over recorded steps);
- ``dse``: ``loss = data + lam * surrogate`` where the surrogate over sampled symbolic paths is
  ``mean(P + logp * stopgrad(P - b))``: ``P`` the path penalty (sum over recorded steps), ``logp``
  the path's log-probability and ``b`` an optional leave-one-out baseline (the mean penalty of
  the other paths of the same component; ``baseline="none"`` is the reference's estimator).

(The reference divides ``data + lam * safety`` by ``lam``; Adam is invariant to that scale, but
its L2 weight decay and ``eps`` are not, so dividing would regularise the safety modes ``lam``
times more strongly than ``only_data``. Here every mode optimises on the data loss's scale.)
``data`` is the pooled MSE of the networks on a minibatch of (input, output) pairs of the
training trajectories; gradients are clipped to norm ``clip``. With ``optimizer="joint"`` (the
reference) one Adam steps on the summed gradient; with ``"per_term"`` the data and the safety
gradient are clipped separately and each has its own Adam moments (see the safety README for
why: DSE's score-function gradient otherwise stalls the data fit). Every ``eval_every`` steps the
networks are scored on a *validation* verifier (its own, coarser grid of pieces) and on
validation trajectories, and the checkpoint to keep is chosen from those scores only (never
from the test verifier or test data): ``only_data`` keeps the lowest validation data loss,
``diffai``/``dse`` the lowest validation data loss among the checkpoints whose validation
provably-safe share is within ``select_tolerance`` (0.01) of the best one.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from nsprog.safety.benchmarks import Benchmark, components_per_dim
from nsprog.safety.box import Box
from nsprog.safety.config import MODES, TrainConfig
from nsprog.safety.data import PairData, data_loss
from nsprog.safety.interpret import run_program
from nsprog.safety.verify import verify

__all__ = ["TrainResult", "TrainingError", "train", "training_boxes", "safety_loss", "dse_surrogate"]

log = logging.getLogger("nsprog.safety")


class TrainingError(RuntimeError):
    """Training diverged (a non-finite loss or parameter)."""


@dataclass
class TrainResult:
    modules: dict
    history: list = field(default_factory=list)
    best_step: int = 0
    steps: int = 0
    seconds: float = 0.0
    steps_per_second: float = 0.0
    selected_by: str = "last"


def training_boxes(bench: Benchmark, mode: str, cfg: TrainConfig) -> tuple[Box | None, int, int]:
    """The training components of ``mode``: (component boxes ``[C, k]``, C, paths per component P)."""
    if mode == "only_data":
        return None, 0, 0
    key = "dse_components" if mode == "dse" else "diffai_components"
    total = cfg.components if cfg.components is not None else bench.defaults[key]
    per_dim = components_per_dim(total, bench.n_inputs)
    comps = bench.input_box.split(per_dim)
    paths = 1 if mode == "diffai" else (cfg.paths if cfg.paths is not None else bench.defaults["dse_paths"])
    return comps, comps.shape[0], paths


def components_per_step(bench: Benchmark, mode: str, cfg: TrainConfig) -> int | None:
    """Components drawn per step (None: all)."""
    n = cfg.components_per_step
    if n is None:
        n = bench.defaults[f"{mode}_components_per_step"]
    return None if n == 0 else n


def step_boxes(comps: Box, n_paths: int, per_step: int | None, generator: torch.Generator | None) -> tuple[Box, int]:
    """The boxes of one step: ``per_step`` components drawn without replacement (all when None),
    each repeated ``n_paths`` times (consecutive rows); returns (boxes, components used)."""
    c = comps.shape[0]
    if per_step is not None and per_step < c:
        idx = torch.randperm(c, generator=generator)[:per_step]
        comps = comps[idx]
        c = per_step
    if n_paths > 1:
        comps = comps.repeat_interleave(n_paths, 0)
    return comps, c


def dse_surrogate(pen: torch.Tensor, logp: torch.Tensor, n_comp: int, n_paths: int, baseline: str = "loo") -> torch.Tensor:
    """DSE's score-function surrogate ``mean(P + logp * stopgrad(P - b))`` over ``n_comp * n_paths`` paths
    (the paths of a component are consecutive). Its gradient is an unbiased estimate of the gradient of
    the expected path penalty; ``b`` is 0 (``baseline="none"``) or, for ``"loo"``, the mean penalty of
    the other paths of the same component (which keeps the estimate unbiased and lowers its variance).
    """
    adv = pen.detach()
    if baseline == "loo" and n_paths > 1:
        grid = adv.view(n_comp, n_paths)
        base = (grid.sum(1, keepdim=True) - grid) / (n_paths - 1)
        adv = (grid - base).reshape(-1)
    elif baseline not in ("none", "loo"):
        raise ValueError(f"baseline must be 'none' or 'loo'; got {baseline!r}")
    return (pen + logp * adv).mean()


def safety_loss(bench: Benchmark, modules: dict, mode: str, comps: Box, n_paths: int, cfg: TrainConfig,
                generator: torch.Generator | None) -> tuple[torch.Tensor, float]:
    """(differentiable safety objective, mean penalty for logging) for ``diffai`` or ``dse``."""
    boxes, n_comp = step_boxes(comps, n_paths, components_per_step(bench, mode, cfg), generator)
    if mode == "diffai":
        trace = run_program(bench.program, modules, boxes, "join")
        pen = bench.spec.join_penalty(trace.records)
        return pen.mean(), float(pen.detach().mean())
    trace = run_program(bench.program, modules, boxes, "sample", generator=generator, entropy=cfg.entropy > 0)
    pen = bench.spec.path_penalty(trace.records)
    surrogate = dse_surrogate(pen, trace.logp, n_comp, n_paths, cfg.baseline)
    if cfg.entropy > 0:
        surrogate = surrogate - cfg.entropy * trace.entropy.mean()
    return surrogate, float(pen.detach().mean())


def _params(modules: dict) -> list:
    return [p for m in modules.values() for p in m.parameters()]


def _state(modules: dict) -> dict:
    return {k: {n: t.detach().clone() for n, t in m.state_dict().items()} for k, m in modules.items()}


def _nonfinite(modules: dict) -> list[str]:
    bad = []
    for k, m in modules.items():
        for n, p in m.named_parameters():
            if not torch.isfinite(p).all() or (p.grad is not None and not torch.isfinite(p.grad).all()):
                bad.append(f"{k}.{n}")
    return bad


def _select(checkpoints: list[tuple], select: str, tol: float) -> tuple[int, dict]:
    """Pick a checkpoint from validation scores only: ``val_safe`` keeps the lowest validation
    data loss among checkpoints whose validation safe share is within ``tol`` of the best."""
    if select == "last":
        c = checkpoints[-1]
    elif select == "val_data":
        c = min(checkpoints, key=lambda c: c[2])
    else:
        best = max(c[1] for c in checkpoints)
        c = min((c for c in checkpoints if c[1] >= best - tol - 1e-12), key=lambda c: c[2])
    return c[0], c[3]


def train(bench: Benchmark, mode: str, cfg: TrainConfig, train_data: PairData, val_data: PairData, seed: int,
          modules: dict | None = None, progress: bool = False) -> TrainResult:
    """Train ``bench``'s networks in ``mode`` for ``cfg.steps`` optimiser steps.

    The caller seeds the process (:func:`nsprog.utils.seed_everything`); ``seed`` also seeds
    this function's own generator (data minibatches and DSE branch draws).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    if modules is None:
        modules = bench.make_modules()
    params = _params(modules)
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, cfg.adam_beta2))
    opt_s = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, cfg.adam_beta2))  # optimizer="per_term" only
    gen = torch.Generator().manual_seed(int(seed) + 17)
    comps, _, n_paths = training_boxes(bench, mode, cfg)
    val_n = cfg.val_verifier_components or bench.defaults["val_verifier_components"]
    select = cfg.select
    if select == "auto":
        select = "val_data" if mode == "only_data" else "val_safe"

    history: list[dict] = []
    checkpoints: list[tuple] = []  # (step, val_safe, val_data, state)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, desc=f"{bench.name}/{mode}", leave=False)
    t0 = time.perf_counter()
    train_time = 0.0
    last = {"loss": math.nan, "data": math.nan, "safety": math.nan}
    for step in range(1, cfg.steps + 1):
        ts = time.perf_counter()
        if cfg.lr_schedule == "cosine":
            frac = (step - 1) / max(cfg.steps - 1, 1)
            for g in opt.param_groups + opt_s.param_groups:
                g["lr"] = cfg.lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * frac)))
        dl = data_loss(modules, train_data, batch=cfg.data_batch, generator=gen)
        safety_step = mode != "only_data" and step > cfg.warmup
        if safety_step:
            sl, pen = safety_loss(bench, modules, mode, comps, n_paths, cfg, gen)
            loss = dl + cfg.lam * sl
        else:
            loss, pen = dl, math.nan
        if not torch.isfinite(loss.detach()):
            raise TrainingError(
                f"{bench.name}/{mode}: the loss became {float(loss.detach())} at step {step}; non-finite parameters or "
                f"gradients: {', '.join(_nonfinite(modules)) or 'none'}. Lower train.lr or train.lam"
            )
        opt.zero_grad(set_to_none=True)
        if not safety_step or cfg.optimizer == "joint" or not sl.requires_grad:
            loss.backward()
            nn.utils.clip_grad_norm_(params, cfg.clip)
            opt.step()
        else:
            # per_term: the data and the safety gradient are clipped separately and each has its own
            # Adam moments, so a noisy, heavy-tailed safety gradient (DSE's score-function term of a
            # narrow straddling box) does not inflate the data term's second moments and stall the fit
            dl.backward()
            nn.utils.clip_grad_norm_(params, cfg.clip)
            g_data = [p.grad for p in params]
            opt.zero_grad(set_to_none=True)
            (cfg.lam * sl).backward()
            nn.utils.clip_grad_norm_(params, cfg.clip)
            opt_s.step()
            for p, g in zip(params, g_data):
                p.grad = g
            opt.step()
        train_time += time.perf_counter() - ts
        last = {"loss": float(loss.detach()), "data": float(dl.detach()), "safety": pen}
        if bar is not None:
            bar.update(1)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            with torch.no_grad():
                vres = verify(bench, modules, val_n, dtype=torch.float32)
                vdata = float(data_loss(modules, val_data))
            row = {"step": step, **last, "val_safe": vres.provably_safe, "val_data": vdata,
                   "seconds": time.perf_counter() - t0}
            history.append(row)
            checkpoints.append((step, vres.provably_safe, vdata, _state(modules)))
            log.info("%s/%s step %d: loss %.4g data %.4g safety %.4g | val safe %.4f val data %.4g",
                     bench.name, mode, step, last["loss"], last["data"], pen, vres.provably_safe, vdata)
            if bar is not None:
                bar.set_postfix(val_safe=f"{vres.provably_safe:.3f}", val_data=f"{vdata:.3g}")
    if bar is not None:
        bar.close()
    best_step = 0
    if checkpoints:
        best_step, best_state = _select(checkpoints, select, cfg.select_tolerance)
        for k, m in modules.items():
            m.load_state_dict(best_state[k])
    seconds = time.perf_counter() - t0
    return TrainResult(modules=modules, history=history, best_step=best_step, steps=cfg.steps, seconds=seconds,
                       steps_per_second=cfg.steps / max(train_time, 1e-9), selected_by=select)
