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


from nsprog.optim import make_adam
from nsprog.progress import Progress, fmt
from nsprog.safety.benchmarks import Benchmark, components_per_dim
from nsprog.safety.box import Box
from nsprog.safety.config import MODES, TrainConfig
from nsprog.safety.data import PairData, data_loss
from nsprog.safety.interpret import run_program
from nsprog.safety.verify import verify

__all__ = ["TrainResult", "TrainingError", "train", "training_boxes", "safety_loss", "dse_surrogate",
           "dse_surrogate_rtg", "make_optimizer", "Stepper"]

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


def _loo(adv: torch.Tensor, n_comp: int, n_paths: int) -> torch.Tensor:
    """``adv`` (last dimension: ``n_comp * n_paths`` paths, those of a component consecutive) minus,
    per path, the mean of the other paths of its component."""
    grid = adv.reshape(*adv.shape[:-1], n_comp, n_paths)
    base = (grid.sum(-1, keepdim=True) - grid) / (n_paths - 1)
    return (grid - base).reshape(adv.shape)


def dse_surrogate(pen: torch.Tensor, logp: torch.Tensor, n_comp: int, n_paths: int, baseline: str = "loo") -> torch.Tensor:
    """DSE's score-function surrogate ``mean(P + logp * stopgrad(P - b))`` over ``n_comp * n_paths`` paths
    (the paths of a component are consecutive). Its gradient is an unbiased estimate of the gradient of
    the expected path penalty; ``b`` is 0 (``baseline="none"``) or, for ``"loo"``, the mean penalty of
    the other paths of the same component (which keeps the estimate unbiased and lowers its variance).
    """
    if baseline not in ("none", "loo"):
        raise ValueError(f"baseline must be 'none' or 'loo'; got {baseline!r}")
    adv = pen.detach()
    if baseline == "loo" and n_paths > 1:
        adv = _loo(adv, n_comp, n_paths)
    return (pen + logp * adv).mean()


def dse_surrogate_rtg(spec, trace, n_comp: int, n_paths: int, baseline: str = "loo") -> torch.Tensor:
    """DSE's surrogate with *reward to go*: ``mean(P + sum_g logq_g * stopgrad(R_g - b_g))``.

    ``logq_g`` is a path's log-probability of its choice at guard ``g`` and ``R_g`` the part of its
    penalty recorded *after* that guard (a choice cannot change earlier records); ``b_g`` is 0 or
    the leave-one-out mean of ``R_g`` over the other paths of the component. Dropping the earlier
    records' penalties from each choice's weight removes terms whose expected contribution to the
    gradient is zero, so the estimate stays unbiased with less variance than :func:`dse_surrogate`.
    """
    if baseline not in ("none", "loo"):
        raise ValueError(f"baseline must be 'none' or 'loo'; got {baseline!r}")
    logq, counts = trace.choices
    vals = spec.unsafe_values(trace.records)
    pen = torch.stack([v.sum(-1) for v in vals], 0).sum(0)
    if logq.shape[0] == 0:
        return pen.mean()
    rtg = None
    for c, v in zip(spec.constraints, vals):
        v = v.detach()
        # suffix sums: tail[:, s] = penalty of this constraint's records s, s + 1, ...; tail[:, T] = 0
        tail = torch.cat([v.flip(-1).cumsum(-1).flip(-1), torch.zeros_like(v[:, :1])], -1)
        part = tail[:, counts[c.var]].T  # [G, B]
        rtg = part if rtg is None else rtg + part
    if baseline == "loo" and n_paths > 1:
        rtg = _loo(rtg, n_comp, n_paths)
    return (pen + (logq * rtg).sum(0)).mean()


def training_spec(bench: Benchmark, cfg: TrainConfig):
    """The spec the safety losses train against: the benchmark's, tightened by the safety margin
    (``cfg.margin``, else the benchmark default ``train_margin``, else 0)."""
    margin = cfg.margin if cfg.margin is not None else bench.defaults.get("train_margin", 0.0)
    return bench.spec.tightened(margin)


def safety_loss(bench: Benchmark, modules: dict, mode: str, comps: Box, n_paths: int, cfg: TrainConfig,
                generator: torch.Generator | None, spec=None) -> tuple[torch.Tensor, float]:
    """(differentiable safety objective, mean penalty for logging) for ``diffai`` or ``dse``;
    ``spec`` defaults to :func:`training_spec`."""
    spec = spec if spec is not None else training_spec(bench, cfg)
    boxes, n_comp = step_boxes(comps, n_paths, components_per_step(bench, mode, cfg), generator)
    if mode == "diffai":
        trace = run_program(bench.program, modules, boxes, "join")
        pen = spec.join_penalty(trace.records)
        return pen.mean(), float(pen.detach().mean())
    trace = run_program(bench.program, modules, boxes, "sample", generator=generator, entropy=cfg.entropy > 0)
    if cfg.estimator == "rtg":
        surrogate = dse_surrogate_rtg(spec, trace, n_comp, n_paths, cfg.baseline)
        pen = spec.path_penalty(trace.records)
    else:
        pen = spec.path_penalty(trace.records)
        surrogate = dse_surrogate(pen, trace.logp, n_comp, n_paths, cfg.baseline)
    if cfg.entropy > 0:
        surrogate = surrogate - cfg.entropy * trace.entropy.mean()
    return surrogate, float(pen.detach().mean())


def make_optimizer(params: list, lr: float, weight_decay: float = 0.0, beta2: float = 0.999) -> torch.optim.Adam:
    """Adam with this module's betas and weight decay, fused where available (:func:`nsprog.optim.make_adam`)."""
    return make_adam(params, lr, weight_decay=weight_decay, betas=(0.9, beta2))


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


class Stepper:
    """The optimiser steps of one training run (used by :func:`train` and by the speed benchmark,
    so that ``benchmarks/bench_safety.py`` times exactly the training step).

    ``stepper.step(i)`` runs step ``i`` (1-based; it sets the learning rate of the schedule,
    computes the data loss and, for ``diffai``/``dse`` after the warm-up, the safety loss, then
    backward, clipping and Adam) and returns ``{"loss", "data", "safety"}`` (plain floats).
    """

    def __init__(self, bench: Benchmark, mode: str, cfg: TrainConfig, modules: dict, train_data: PairData,
                 generator: torch.Generator):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
        self.bench, self.mode, self.cfg, self.modules, self.data, self.gen = bench, mode, cfg, modules, train_data, generator
        self.params = _params(modules)
        self.opt = make_optimizer(self.params, cfg.lr, cfg.weight_decay, cfg.adam_beta2)
        # optimizer="per_term": the safety gradient's own Adam moments
        self.opt_s = (make_optimizer(self.params, cfg.safety_lr or cfg.lr, 0.0, cfg.adam_beta2)
                      if cfg.optimizer == "per_term" else None)
        self.comps, _, self.n_paths = training_boxes(bench, mode, cfg)
        self.spec = training_spec(bench, cfg) if mode != "only_data" else None

    def _set_lr(self, step: int) -> None:
        cfg = self.cfg
        if cfg.lr_schedule != "cosine":
            return
        frac = (step - 1) / max(cfg.steps - 1, 1)
        factor = 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * frac))
        for opt, lr in ((self.opt, cfg.lr), (self.opt_s, cfg.safety_lr or cfg.lr)):
            if opt is not None:
                for g in opt.param_groups:
                    g["lr"] = lr * factor

    def step(self, step: int) -> dict:
        cfg, params, mode = self.cfg, self.params, self.mode
        self._set_lr(step)
        dl = data_loss(self.modules, self.data, batch=cfg.data_batch, generator=self.gen)
        safety_step = mode != "only_data" and step > cfg.warmup
        if safety_step:
            sl, pen = safety_loss(self.bench, self.modules, mode, self.comps, self.n_paths, cfg, self.gen, self.spec)
            loss = dl + cfg.lam * sl
        else:
            sl, loss, pen = None, dl, math.nan
        if not torch.isfinite(loss.detach()):
            raise TrainingError(
                f"{self.bench.name}/{mode}: the loss became {float(loss.detach())} at step {step}; non-finite "
                f"parameters or gradients: {', '.join(_nonfinite(self.modules)) or 'none'}. Lower train.lr or train.lam"
            )
        self.opt.zero_grad(set_to_none=True)
        if not safety_step or self.opt_s is None or not sl.requires_grad:
            loss.backward()
            nn.utils.clip_grad_norm_(params, cfg.clip)
            self.opt.step()
        else:
            # per_term: the data and the safety gradient are clipped separately and each has its own
            # Adam moments, so a noisy, heavy-tailed safety gradient (DSE's score-function term of a
            # narrow straddling box) does not inflate the data term's second moments and stall the fit
            dl.backward()
            nn.utils.clip_grad_norm_(params, cfg.clip)
            g_data = [p.grad for p in params]
            self.opt.zero_grad(set_to_none=True)
            (cfg.lam * sl).backward()
            nn.utils.clip_grad_norm_(params, cfg.clip)
            self.opt_s.step()
            for p, g in zip(params, g_data):
                p.grad = g
            self.opt.step()
        return {"loss": float(loss.detach()), "data": float(dl.detach()), "safety": pen}


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
    gen = torch.Generator().manual_seed(int(seed) + 17)
    stepper = Stepper(bench, mode, cfg, modules, train_data, gen)
    val_n = cfg.val_verifier_components or bench.defaults["val_verifier_components"]
    select = cfg.select
    if select == "auto":
        select = "val_data" if mode == "only_data" else "val_safe"

    history: list[dict] = []
    checkpoints: list[tuple] = []  # (step, val_safe, val_data, state)
    bar = Progress(range(cfg.steps), f"{bench.name}/{mode}", enabled=progress, unit="step", log_lines=False)
    t0 = time.perf_counter()
    train_time = 0.0
    for step in range(1, cfg.steps + 1):
        ts = time.perf_counter()
        last = stepper.step(step)
        train_time += time.perf_counter() - ts
        bar.advance()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            with torch.no_grad():
                vres = verify(bench, modules, val_n, dtype=torch.float32)
                vdata = float(data_loss(modules, val_data))
            row = {"step": step, **last, "val_safe": vres.provably_safe, "val_data": vdata,
                   "seconds": time.perf_counter() - t0}
            history.append(row)
            checkpoints.append((step, vres.provably_safe, vdata, _state(modules)))
            log.info("%s/%s step %d: loss %s data %s safety %s | val safe %.4f val data %s", bench.name, mode, step,
                     fmt(last["loss"]), fmt(last["data"]),
                     fmt(last["safety"]) if step > cfg.warmup else "- (warm-up)", vres.provably_safe, fmt(vdata))
            bar.report(step - 1, {"val_safe": vres.provably_safe, "val_data": vdata})
    bar.close()
    best_step = 0
    if checkpoints:
        best_step, best_state = _select(checkpoints, select, cfg.select_tolerance)
        for k, m in modules.items():
            m.load_state_dict(best_state[k])
    seconds = time.perf_counter() - t0
    return TrainResult(modules=modules, history=history, best_step=best_step, steps=cfg.steps, seconds=seconds,
                       steps_per_second=cfg.steps / max(train_time, 1e-9), selected_by=select)
