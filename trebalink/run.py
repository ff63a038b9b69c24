"""``trebalink train`` as a library call: the run config and one training run in a run folder,
on one process or under ``torchrun``.

A run folder holds ``config.yaml``, ``run.json`` and ``log.txt`` (:func:`nsprog.runs.start_run`),
``tasks.yaml`` (the fitted task set, thresholds recorded), ``labels.h5`` (every split's task
classes and values, computed once), ``tasks_analysis.json`` (coverage, balance, overlaps,
conflicts, agreement with the data's labels), ``last.pt`` (resume), ``best.pt`` (the model with
the lowest stage-2 validation loss), ``history.json`` and ``metrics.json``. A finished folder
is reusable: :func:`load_run` returns its model as a fitted :class:`~trebalink.estimator.TrebaEncoder`,
and training it again with ``resume`` returns at once.

Under ``torchrun`` every process runs :func:`train_into_run`; rank 0 loads the data, fits and
applies the tasks, creates the folder and writes the label cache, then the others load the
same data, read the cache (checked against their windows) and all train together. A failure
on rank 0 before training is broadcast, so every process stops with the same message.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nsprog.data.convert import suggest_domain
from nsprog.data.sources import load_splits
from nsprog.runs import Run, RunBase, attach_log, start_run
from nsprog.settings import param
from nsprog.utils import resolve_device, write_json_atomic
from trebalink.analysis import analyze, gold_columns
from trebalink.augment import AugmentSettings, Augmenter
from trebalink.distributed import Dist, DistributedError
from trebalink.fitting import LABELS, TASKS, Prepared, fit_treba, load_labels, prepare, save_labels
from trebalink.model import ModelSettings
from trebalink.tasks import TaskSet
from trebalink.train import BEST, LAST, TrainSettings

__all__ = ["TrebaRunConfig", "train_into_run", "load_run", "RunResult"]

log = logging.getLogger("nsprog")


@dataclass
class TrebaRunConfig(RunBase):
    """Config of ``trebalink train``: the run fields (name, seed, device, threads, data), the
    supervision, the model, the augmentations and the optimisation. ``dsl`` (a run field of
    nsprog) is not used here."""

    name: str = "treba"
    device: str = "auto"
    tasks: str = "expert:mouse"  # expert:NAME, random:K[:C], none, or a task-set YAML file
    force_tasks: bool = False  # keep tasks that are constant on the training split
    domain_params: dict = field(default_factory=dict)  # e.g. {keypoints: calms21} for the expert sets
    readout: bool = True  # metrics.json: linear read-out of the test split's labels from the embedding
    readout_max: int = param(5000, ge=10)  # at most this many test windows in the read-out
    model: ModelSettings = field(default_factory=ModelSettings)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    train: TrainSettings = field(default_factory=TrainSettings)


@dataclass
class RunResult:
    path: Path
    metrics: dict
    finished: bool


def _prepared_from_folder(folder: Path, splits: dict, cfg: TrebaRunConfig) -> Prepared:
    from trebalink.train import Normalise

    tasks = TaskSet.load(folder / TASKS)
    values, labels = load_labels(folder / LABELS, tasks, splits)
    augmenter = Augmenter.fit(cfg.augment, splits["train"])
    return Prepared(tasks, values, labels, Normalise.fit(splits["train"], augmenter.kind), augmenter)


def _write_prepared(run_path: Path, prepared: Prepared, splits: dict) -> dict:
    prepared.tasks.save(run_path / TASKS)
    save_labels(run_path / LABELS, prepared, splits)
    report = {}
    for name in ("train", "val", "test"):
        if name in splits:
            report[name] = analyze(prepared.tasks, prepared.values[name], prepared.labels[name],
                                   gold_columns(splits[name])).to_dict()
    report["dropped"] = prepared.dropped
    report["notes"] = prepared.notes
    write_json_atomic(run_path / "tasks_analysis.json", report)
    return report


def _readout(model, test, cfg: TrebaRunConfig, device) -> dict:
    from nsprog.evaluation.readouts import linear_readout

    gold = {k: v for k, v in gold_columns(test).items()}
    if not gold:
        return {}
    rows = np.arange(len(test))
    if len(rows) > cfg.readout_max:
        rows = np.sort(np.random.default_rng(cfg.seed).choice(rows, cfg.readout_max, replace=False))
    z = model.embed_states(torch.from_numpy(test.states[rows]), device)
    out = {}
    for col, y in gold.items():
        y = y[rows]
        ok = y >= 0
        counts = np.bincount(y[ok]) if ok.any() else np.zeros(0)
        if ok.sum() < 10 or (counts > 0).sum() < 2 or counts[counts > 0].min() < 5:
            continue
        out[col] = {"accuracy": linear_readout(z[ok], y[ok]), "majority": float(counts.max() / ok.sum()),
                    "n": int(ok.sum())}
    return out


def train_into_run(cfg: TrebaRunConfig, out: str | Path | None = None, force: bool = False,
                   resume: str | Path | None = None, progress: bool = True,
                   stop_after: int | None = None) -> RunResult:
    """Train into a fresh run folder (``out``, or ``runs/<name>/<timestamp>``), or continue the
    one at ``resume`` (whose own ``config.yaml`` the caller loaded into ``cfg``)."""
    device = resolve_device(cfg.device)
    dist = Dist.from_env(device.type)
    try:
        return _train(cfg, out, force, resume, progress, stop_after, dist, dist.device(device))
    finally:
        dist.close()


def _train(cfg, out, force, resume, progress, stop_after, dist: Dist, device) -> RunResult:
    if cfg.train.batch_size % dist.world:
        raise ValueError(f"train.batch_size: {cfg.train.batch_size} is not divisible by the world size {dist.world} "
                         f"(torchrun processes); use a multiple of {dist.world}")
    if cfg.train.precision != "fp32" and device.type != "cuda":
        raise ValueError(f"train.precision: {cfg.train.precision} (autocast) needs a CUDA device; this run is on "
                         f"{device}. Use precision: fp32 on CPU")
    folder = Path(resume) if resume is not None else None
    run: Run | None = None
    status: tuple = ("ok", None)
    splits = prepared = None
    if dist.main:
        try:
            if folder is not None and (folder / LAST).is_file():
                last = torch.load(folder / LAST, map_location="cpu", weights_only=True)
                if last.get("finished"):
                    status = ("finished", str(folder))
            if status[0] != "finished":
                splits = load_splits(cfg.data, cfg.seed)
                domain = suggest_domain(splits["train"])
                if folder is not None and (folder / TASKS).is_file() and (folder / LABELS).is_file():
                    prepared = _prepared_from_folder(folder, splits, cfg)
                else:
                    prepared = prepare(splits, cfg.tasks, cfg.augment, cfg.seed, cfg.force_tasks, domain,
                                       cfg.domain_params or None)
                if folder is None:
                    run = start_run(cfg.name, cfg, cfg.seed, out=out, force=force,
                                    extra={"world_size": dist.world, "device": str(device)})
                    folder = run.path
                else:
                    run = Run(path=folder, name=cfg.name, seed=cfg.seed, _handler=attach_log(folder))
                if not (folder / LABELS).is_file():
                    report = _write_prepared(folder, prepared, splits)
                    if progress:
                        log.info("tasks on the training split:\n%s", _analysis_text(report["train"]))
                status = ("ok", str(folder))
        except Exception as exc:  # noqa: BLE001 - reported to the other ranks, then re-raised here
            if not dist.active:
                raise
            status = ("error", f"{type(exc).__name__}: {exc}")
            dist.broadcast(status)
            raise
    status = dist.broadcast(status)
    if status[0] == "error":
        raise DistributedError(f"rank 0 failed before training: {status[1]}")
    folder = Path(status[1])
    if status[0] == "finished":
        metrics = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else {}
        log.info("%s is a finished run; nothing to do", folder)
        return RunResult(folder, metrics, True)
    if not dist.main:
        splits = load_splits(cfg.data, cfg.seed)
        prepared = _prepared_from_folder(folder, splits, cfg)
    try:
        t0 = time.perf_counter()
        trained, state = fit_treba(splits["train"], splits["val"], prepared, cfg.model, cfg.train, cfg.seed, device,
                                   progress and dist.main, folder, resume is not None, stop_after, dist,
                                   cfg.threads or None)
        seconds = time.perf_counter() - t0
        metrics = {}
        if dist.main:
            write_json_atomic(folder / "history.json", state["history"])
            metrics = _metrics(cfg, trained, state, splits, seconds, dist, device)
            write_json_atomic(folder / "metrics.json", metrics)
        return RunResult(folder, metrics, bool(state.get("finished")))
    finally:
        if run is not None:
            run.close()


def _analysis_text(d: dict) -> str:
    lines = []
    for t in d["tasks"]:
        bal = "/".join(f"{v:.2f}" for v in t.get("class_balance", []))
        lines.append(f"  {t['task']}: coverage {t['coverage']:.3f}, classes {bal}")
    return "\n".join(lines)


def _metrics(cfg, trained, state, splits, seconds, dist: Dist, device) -> dict:
    hist = state["history"]
    s1 = [h for h in hist if h["stage"] == 1]
    s2 = [h for h in hist if h["stage"] == 2]
    sec, win = state["seconds"], state["windows"]
    m = {
        "finished": bool(state.get("finished")),
        "best_epoch": int(state.get("best_epoch", -1)),
        "best_val_loss": float(state.get("best_val", float("nan"))),
        "epochs_done": {"stage1": len(s1), "stage2": len(s2)},
        "tasks": trained.tasks.names,
        "n_windows": {k: len(v) for k, v in splits.items()},
        "world_size": dist.world,
        "rank_checksums": state.get("rank_checksums"),
        "device": str(device),
        "seconds_this_call": seconds,
        "train_seconds": sec,
        "windows_per_second": {k: (win[k] / sec[k] if sec[k] else None) for k in ("stage1", "stage2")},
    }
    if s1:
        best1 = min(s1, key=lambda h: h["val_loss"])
        m["approximators"] = {"best_epoch": best1["epoch"], "val_accuracy": best1.get("val_approx_acc")}
    if state.get("finished") and cfg.readout and "test" in splits:
        try:
            m["readout"] = _readout(trained, splits["test"], cfg, device)
        except ValueError as exc:  # e.g. a label column with a single class in the sampled windows
            log.warning("read-out skipped: %s", exc)
    return m


def load_run(folder: str | Path, device: str = "cpu"):
    """The model of a ``trebalink train`` run folder as a fitted :class:`~trebalink.estimator.TrebaEncoder`."""
    from trebalink.estimator import TrebaEncoder

    folder = Path(folder)
    if not (folder / BEST).is_file():
        raise FileNotFoundError(f"{folder} has no {BEST} (not a trebalink train folder, or no stage-2 epoch finished "
                                "yet; continue it with `trebalink train --resume`)")
    return TrebaEncoder.load(folder, device=device)
