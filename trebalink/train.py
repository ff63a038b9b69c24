"""TREBA's two training stages, on one device or many (DDP), resumable at every epoch.

Stage 1 trains the label approximators on real windows (skipped without tasks or with
``consistency_weight: 0``); the approximators with the lowest validation loss are kept and
frozen. Stage 2 trains the embedding (:class:`~trebalink.model.Stage2Objective`); the model with
the lowest validation loss is written to ``best.pt``. ``last.pt`` after every epoch holds
everything a resumed run needs (weights, optimiser and scaler states, the best so far, the
history), so a run resumed from any epoch repeats the uninterrupted run exactly on CPU:
batch orders come from ``DistributedSampler`` seeded per stage and shuffled per epoch, and
every random draw (augmentations, latent samples, rollout noise) from a generator on the
training device seeded by (seed, stage, epoch, batch) and drawn for the whole global batch,
each process keeping the rows of its own windows (so CPU and GPU runs draw different
numbers, each reproducibly). Under ``torchrun`` the same code trains with
``DistributedDataParallel``: one process per GPU (or CPU, with gloo), rank 0 writes the
checkpoints and logs, the supervised-contrastive loss sees the global batch, and a run with
``W`` processes and global batch ``B`` takes the same steps as one process with batch ``B``
(when the number of training windows is a multiple of ``W``; otherwise the sampler repeats a
few windows to even out the ranks).

Non-finite gradients stop training with an error naming the stage, epoch, batch and the
loss terms (checked on the gradient norm, which every rank shares, so all ranks stop
together; with ``precision: fp16`` the gradient scaler skips such steps instead).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
from torch.utils.data.distributed import DistributedSampler

from nsprog.optim import make_adam
from nsprog.progress import Progress
from nsprog.seeds import SeedStreams
from nsprog.settings import Settings, param
from nsprog.training import TrainingError
from nsprog.utils import torch_save_atomic
from trebalink.augment import Augmenter
from trebalink.distributed import Dist
from trebalink.model import Stage1Objective, Stage2Objective, TrebaNet
from trebalink.tasks import BoundTasks

__all__ = ["TrainSettings", "TrainingData", "TrainLoop", "TrainingError", "LAST", "BEST"]

log = logging.getLogger("nsprog")

LAST = "last.pt"
BEST = "best.pt"
CHECKPOINT_FORMAT = "trebalink-treba-state"


@dataclass
class TrainSettings(Settings):
    """Optimisation (defaults: the reference mouse configuration)."""

    batch_size: int = param(128, ge=1)  # global batch (split evenly over DDP processes)
    lr: float = param(2e-4, gt=0)
    stage1_epochs: int = param(100, ge=0)  # label approximators
    stage2_epochs: int = param(300, ge=0)  # embedding
    grad_clip: float | None = param(10.0, gt=0)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast on CUDA
    native_gru: bool = False  # nsprog's native CPU GRU kernel (slower than torch's at 256 units; see bench_treba)


@dataclass
class TrainingData:
    """Raw windows and their task classes (CPU tensors)."""

    train_states: torch.Tensor
    train_labels: torch.Tensor
    val_states: torch.Tensor
    val_labels: torch.Tensor


@dataclass
class Normalise:
    """``(x - mean) / std`` per state dimension, with statistics of the training split.

    :meth:`fit` keeps positions rotation-equivariant: for keypoint windows every x coordinate
    shares one mean, every y coordinate another, and all share one scale (the positions'
    standard deviation); team windows likewise for the players' x and y (the presence channel
    is left as it is); other windows are standardised per dimension. A per-dimension scale
    would blow up the augmented copies: a nearly fixed keypoint (an arena corner) has a tiny
    standard deviation, and a rotation moves it by hundreds of them.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.device, x.dtype)) / self.std.to(x.device, x.dtype)

    @classmethod
    def fit(cls, train, kind: str) -> "Normalise":
        s = train.states.astype(np.float64)
        d = s.shape[-1]
        if kind == "keypoints" and d % 2 == 0:
            xy = s.reshape(-1, 2)
            mean = np.tile(xy.mean(0), d // 2)
            std = np.full(d, max(float(np.sqrt(xy.var(0).mean())), 1e-6))
        elif kind == "team" and d % 3 == 0:
            v = s.reshape(-1, d // 3, 3)
            present = v[..., 2] > 0.5
            xy = v[..., :2][present] if present.any() else v[..., :2].reshape(-1, 2)
            mean = np.tile([*xy.mean(0), 0.0], d // 3)
            std = np.tile([max(float(np.sqrt(xy.var(0).mean())), 1e-6)] * 2 + [1.0], d // 3)
        else:
            flat = s.reshape(-1, d)
            mean, std = flat.mean(0), np.maximum(flat.std(0), 1e-6)
        return cls(torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32))


def _set_trainable(params, flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


@dataclass
class TrainLoop:
    """Everything one training run needs; :meth:`run` trains (or resumes) to the end or to
    ``stop_after`` epochs and returns the final state (history, best epoch, timings)."""

    net: TrebaNet
    data: TrainingData
    settings: TrainSettings
    tasks: BoundTasks
    augmenter: Augmenter
    normalise: Normalise
    seed: int
    device: torch.device
    dist: Dist = field(default_factory=Dist)
    progress: bool = True
    folder: Path | None = None  # where last.pt / best.pt go (rank 0); None: nothing written
    best_record: Callable[[TrebaNet, dict], dict] | None = None  # builds best.pt's contents

    def __post_init__(self) -> None:
        self.streams = SeedStreams(self.seed)
        if self.settings.batch_size % self.dist.world:
            raise ValueError(f"train.batch_size {self.settings.batch_size} is not divisible by the {self.dist.world} "
                             "processes of this run; choose a batch size that is a multiple of the world size")
        self.local_batch = self.settings.batch_size // self.dist.world
        self.z_dim = self.net.cfg.z_dim
        if self.device.type == "cuda":  # the windows live on the GPU: batches are gathered there
            d = self.data
            self.data = TrainingData(*(t.to(self.device) for t in (d.train_states, d.train_labels, d.val_states,
                                                                   d.val_labels)))

    # ------------------------------------------------------------------ helpers
    def _autocast(self):
        prec = self.settings.precision
        if prec == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if prec == "bf16" else torch.float16)

    def _order(self, n: int, stage: int, epoch: int, shuffle: bool) -> torch.Tensor:
        sampler = DistributedSampler(range(n), num_replicas=self.dist.world, rank=self.dist.rank, shuffle=shuffle,
                                     seed=self.streams.seed_for("batches", stage) % 2**62, drop_last=False)
        sampler.set_epoch(epoch)
        return torch.tensor(list(iter(sampler)), dtype=torch.long)

    def _noise(self, gen: torch.Generator, n: int, frames: int) -> dict[str, torch.Tensor]:
        d, dev = self.net.state_dim, gen.device
        out = {"aug": self.augmenter.draw(n, gen),
               "z": torch.randn(n, self.z_dim, generator=gen, device=dev),
               "z_aug": torch.randn(n, self.z_dim, generator=gen, device=dev)}
        if self.net.has_approximators:
            out["z_rollout"] = torch.randn(n, self.z_dim, generator=gen, device=dev)
            out["actions"] = torch.randn(n, frames - 1, d, generator=gen, device=dev)
        return out

    def _rows(self, draws: dict, n_global: int) -> dict:
        """This process's rows of draws made for the whole global batch."""
        if not self.dist.active:
            return draws
        rows = torch.arange(self.dist.rank, n_global, self.dist.world, device=self.device)
        return {k: (self._rows(v, n_global) if isinstance(v, dict) else v[rows]) for k, v in draws.items()}

    def _batches(self, order: torch.Tensor):
        """(local indices, global batch size, batch number) for each step of an epoch."""
        n_global = len(order) * self.dist.world
        for j, lo in enumerate(range(0, len(order), self.local_batch)):
            idx = order[lo : lo + self.local_batch]
            yield idx, min(self.settings.batch_size, n_global - j * self.settings.batch_size), j

    def _step_inputs(self, states, labels, idx):
        idx = idx.to(states.device)
        return states[idx].to(self.device), labels[idx].to(self.device)

    def _stage2_inputs(self, states, labels, idx, n_global, gen: torch.Generator):
        x_raw, y = self._step_inputs(states, labels, idx)
        noise = self._rows(self._noise(gen, n_global, states.shape[1]), n_global)
        aug = noise.pop("aug")
        x_aug_raw = self.augmenter.apply(x_raw, aug)
        y_aug = self.tasks.labels(x_aug_raw) if len(self.tasks) else y
        return self.normalise(x_raw), self.normalise(x_aug_raw), y, y_aug, idx.to(self.device), noise

    def _check_finite(self, norm: torch.Tensor, stage: int, epoch: int, batch: int, terms: dict) -> None:
        if torch.isfinite(norm):
            return
        values = {k: float(v) for k, v in terms.items()}
        bad = [k for k, v in values.items() if not math.isfinite(v)] or ["gradient"]
        shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        raise TrainingError(f"non-finite loss in stage {stage}, epoch {epoch + 1}, batch {batch + 1}: term(s) "
                            f"{', '.join(bad)} ({shown}); lower train.lr, keep train.grad_clip set, or use "
                            "precision: fp32. The last checkpoint on disk is from the previous epoch")

    def _optimise(self, opt, scaler, params, loss, stage, epoch, batch, terms) -> None:
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss.backward()
        clip = self.settings.grad_clip if self.settings.grad_clip else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, clip)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
            return
        self._check_finite(norm, stage, epoch, batch, terms)
        opt.step()

    def _mean_terms(self, sums: dict[str, torch.Tensor], count: int) -> dict[str, float]:
        if not sums:
            return {}
        keys = list(sums)
        vec = self.dist.sum(torch.stack([sums[k].float().cpu() for k in keys])) / (count * self.dist.world)
        return dict(zip(keys, vec.tolist()))

    # ------------------------------------------------------------------ epochs
    def _train_epoch(self, stage: int, epoch: int, module, opt, scaler, params) -> tuple[dict, int]:
        data = self.data
        order = self._order(len(data.train_states), stage, epoch, shuffle=True)
        sums: dict[str, torch.Tensor] = {}
        steps = windows = 0
        for idx, n_global, j in self._batches(order):
            # inputs, augmentations and task labels in full precision; only the model under autocast
            if stage == 1:
                x_raw, y = self._step_inputs(data.train_states, data.train_labels, idx)
                with self._autocast():
                    loss, terms = module(self.normalise(x_raw), y, float(n_global))
            else:
                gen = self.streams.generator("noise", 2, epoch, j, device=self.device)
                x, xa, y, ya, index, noise = self._stage2_inputs(data.train_states, data.train_labels, idx, n_global,
                                                                 gen)
                with self._autocast():
                    loss, terms = module(x, xa, y, ya, index, noise, float(n_global))
            terms = {"loss": loss.detach() / n_global, **terms}
            self._optimise(opt, scaler, params, loss, stage, epoch, j, terms)
            for k, v in terms.items():
                sums[k] = sums[k] + v.detach().float() if k in sums else v.detach().float()
            steps += 1
            windows += n_global
        return self._mean_terms(sums, steps), windows

    @torch.no_grad()
    def _validate(self, stage: int, module) -> dict[str, float]:
        data = self.data
        order = self._order(len(data.val_states), stage, 0, shuffle=False)
        weights = self.net.cfg
        total = torch.zeros((), dtype=torch.float64)
        counted = 0
        sums: dict[str, torch.Tensor] = {}
        steps = 0
        for idx, n_global, j in self._batches(order):
            if stage == 1:
                x_raw, y = self._step_inputs(data.val_states, data.val_labels, idx)
                with self._autocast():
                    _, terms = module(self.normalise(x_raw), y, 1.0)
                per_window = terms["approx_ce"]
                batch_obj = self.dist.sum(per_window.double().cpu() * len(idx))
            else:
                gen = self.streams.generator("validation", 2, j, device=self.device)  # the same draws every epoch
                x, xa, y, ya, index, noise = self._stage2_inputs(data.val_states, data.val_labels, idx, n_global, gen)
                with self._autocast():
                    loss, terms = module(x, xa, y, ya, index, noise, 1.0)
                con = terms.get("contrastive", torch.zeros((), device=loss.device)).double().cpu()
                per_window = loss.detach().double().cpu() - weights.contrastive_weight * con
                batch_obj = self.dist.sum(per_window * len(idx)) + weights.contrastive_weight * con
            total += batch_obj
            counted += n_global
            for k, v in terms.items():
                sums[k] = sums[k] + v.detach().float() if k in sums else v.detach().float()
            steps += 1
        out = {f"val_{k}": v for k, v in self._mean_terms(sums, max(steps, 1)).items()}
        out["val_loss"] = float(total / max(counted, 1))
        return out

    # ------------------------------------------------------------------ checkpoints
    def _save_last(self, state: dict, opt, scaler) -> None:
        if self.folder is None or not self.dist.main:
            return
        ck = {"format": CHECKPOINT_FORMAT, "version": 1, "net": {k: v.detach().cpu().clone() for k, v in
                                                               self.net.state_dict().items()},
              "optimizer": opt.state_dict() if opt is not None else None,
              "scaler": scaler.state_dict() if scaler is not None else None, **state}
        torch_save_atomic(ck, self.folder / LAST)

    def _save_best(self, state: dict) -> None:
        if self.folder is None or not self.dist.main or self.best_record is None:
            return
        torch_save_atomic(self.best_record(self.net, state), self.folder / BEST)

    @staticmethod
    def initial_state() -> dict:
        return {"stage": 1, "epoch": 0, "best_val": math.inf, "best_epoch": -1, "best_state": None, "history": [],
                "seconds": {"stage1": 0.0, "stage2": 0.0}, "windows": {"stage1": 0, "stage2": 0}, "finished": False}

    def _copy(self, params_of: str) -> dict:
        sd = self.net.state_dict()
        keep = (lambda k: k.startswith("approximator_")) if params_of == "approximators" else (lambda k: True)
        return {k: v.detach().cpu().clone() for k, v in sd.items() if keep(k)}

    # ------------------------------------------------------------------ the run
    def run(self, resume: dict | None = None, stop_after: int | None = None) -> dict:
        """Train from the start, or from ``resume`` (the contents of ``last.pt``); stop after
        ``stop_after`` epochs of this call (the run stays resumable). Returns the state."""
        native = contextlib.nullcontext()
        if not self.settings.native_gru:
            from nsprog.gru_kernel import native_kernels

            native = native_kernels(False)
        with native:
            return self._run(resume, stop_after)

    def _run(self, resume: dict | None, stop_after: int | None) -> dict:
        net, s = self.net, self.settings
        state = self.initial_state() if resume is None else {k: v for k, v in resume.items()
                                                             if k not in ("net", "optimizer", "scaler", "format",
                                                                          "version")}
        if resume is not None:
            try:
                net.load_state_dict(resume["net"])
            except RuntimeError as exc:
                where = self.folder / LAST if self.folder is not None else "the resume state"
                raise ValueError(f"{where} does not fit this model (were model settings or the task set changed "
                                 f"with --set on resume?): {str(exc).splitlines()[0]}") from None
        budget = [math.inf if stop_after is None else int(stop_after)]
        use_stage1 = net.has_approximators and s.stage1_epochs > 0
        if net.has_approximators and s.stage1_epochs == 0:
            log.warning("train.stage1_epochs is 0: the label approximators stay untrained, so the consistency loss "
                        "only adds noise; set model.consistency_weight: 0 or train stage 1")
        if state["stage"] == 1:
            if use_stage1:
                if not self._stage(1, s.stage1_epochs, state, resume, budget):
                    return state
            state.update(stage=2, epoch=0, best_val=math.inf, best_epoch=-1, best_state=None)
            resume = None
            self._save_last(state, None, None)
        if not self._stage(2, s.stage2_epochs, state, resume if state["stage"] == 2 else None, budget):
            return state
        state["finished"] = True
        if state["best_epoch"] < 0:  # no stage-2 epoch (stage2_epochs: 0): the current weights
            self._save_best(state)
        self._save_last(state, None, None)
        return state

    def _stage(self, stage: int, epochs: int, state: dict, resume: dict | None, budget: list) -> bool:
        """Run the epochs of one stage left in ``state``; False when stopped by the budget."""
        net, s = self.net, self.settings
        approx = net.approximator_parameters()
        if stage == 1:
            _set_trainable(net.embedding_parameters(), False)
            _set_trainable(approx, True)
            params, objective = approx, Stage1Objective(net)
        else:
            _set_trainable(approx, False)
            _set_trainable(net.embedding_parameters(), True)
            params = net.embedding_parameters()
            objective = Stage2Objective(net, gather=self.dist.gather)
        module = self.dist.wrap(objective, self.device)
        opt = make_adam(params, s.lr)
        scaler = None
        if s.precision == "fp16":
            scaler = torch.amp.GradScaler(self.device.type)
        if resume is not None and resume.get("optimizer") is not None and resume["stage"] == stage:
            opt.load_state_dict(resume["optimizer"])
            if scaler is not None and resume.get("scaler"):
                scaler.load_state_dict(resume["scaler"])
        label = "stage 1 (label approximators)" if stage == 1 else "stage 2 (embedding)"
        bar = Progress(range(state["epoch"], epochs), label, enabled=self.progress and self.dist.main, total=epochs)
        key = f"stage{stage}"
        try:
            for epoch in bar:
                if budget[0] <= 0:
                    return False
                objective.train()
                t0 = time.perf_counter()
                terms, windows = self._train_epoch(stage, epoch, module, opt, scaler, params)
                seconds = time.perf_counter() - t0
                state["seconds"][key] += seconds
                state["windows"][key] += windows
                objective.eval()
                val = self._validate(stage, objective)
                record = {"stage": stage, "epoch": epoch + 1, **terms, **val, "seconds": seconds}
                state["history"].append(record)
                improved = val["val_loss"] < state["best_val"]
                if improved:
                    state.update(best_val=val["val_loss"], best_epoch=epoch + 1,
                                 best_state=self._copy("approximators" if stage == 1 else "all"))
                state["epoch"] = epoch + 1
                if stage == 2 and improved:
                    self._save_best(state)
                self._save_last(state, opt, scaler)
                shown = {k: v for k, v in record.items() if k not in ("stage", "epoch", "seconds")}
                bar.report(epoch, shown)
                budget[0] -= 1
        finally:
            bar.close()
        self._check_sync(stage, state)
        if stage == 1 and state["best_state"] is not None:
            net.load_state_dict(state["best_state"], strict=False)  # the best approximators, frozen for stage 2
        return True

    def _check_sync(self, stage: int, state: dict) -> None:
        """Every rank must hold the same weights after a stage (DDP keeps them equal); record
        each rank's checksum and stop if they differ."""
        if not self.dist.active:
            return
        from trebalink.distributed import DistributedError

        with torch.no_grad():
            sums = [float(p.detach().double().sum().cpu()) for p in self.net.parameters()]
        checks = self.dist.all_gather_objects(sums)
        state.setdefault("rank_checksums", {})[f"stage{stage}"] = [sum(abs(v) for v in c) for c in checks]
        if any(c != checks[0] for c in checks[1:]):
            raise DistributedError(f"stage {stage}: the processes' weights differ after training (checksums "
                                   f"{state['rank_checksums'][f'stage{stage}']}); DDP lost synchronisation")
