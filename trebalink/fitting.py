"""One TREBA fit as library calls: prepare (tasks fitted and applied once, normalisation and
augmentation fitted on the training split), then train (:class:`trebalink.train.TrainLoop`).

:func:`prepare` is the step that reads the data: the task set is fitted on the training
windows (quantile thresholds resolved and recorded, tasks constant there dropped unless
``force``), every window of every split is labelled once, vectorised, and the results can
be cached (:func:`save_labels` / :func:`load_labels`, an HDF5 file in the run folder that the
other ranks of a distributed run read instead of labelling again). :func:`fit_treba` trains a
model from a :class:`Prepared` and returns a :class:`~trebalink.checkpoint.TrainedTreba`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch

from nsprog.data.trajectories import Trajectories
from nsprog.seeds import SeedStreams
from nsprog.utils import atomic_write, limit_threads
from trebalink.augment import AugmentSettings, Augmenter
from trebalink.checkpoint import TrainedTreba, best_record
from trebalink.distributed import Dist
from trebalink.labelling import bind_tasks, fit_tasks
from trebalink.model import ModelSettings, TrebaNet
from trebalink.programs import task_set
from trebalink.tasks import TaskError, TaskSet
from trebalink.train import LAST, Normalise, TrainingData, TrainLoop, TrainSettings

__all__ = ["Prepared", "prepare", "fit_treba", "save_labels", "load_labels", "LABELS", "TASKS", "windows_digest"]

log = logging.getLogger("nsprog")

LABELS = "labels.h5"
TASKS = "tasks.yaml"
LABELS_FORMAT = "trebalink-labels"


@dataclass
class Prepared:
    """Everything fixed before training: the fitted task set, every split's task values and
    classes, the normalisation and the augmentation."""

    tasks: TaskSet
    values: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    normalise: Normalise
    augmenter: Augmenter
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def windows_digest(traj: Trajectories) -> str:
    """A short fingerprint of windows (shape and sums), to check that processes read the same data."""
    s = traj.states.astype(np.float64)
    return f"{tuple(traj.states.shape)}:{s.sum():.6e}:{(s * s).sum():.6e}"


def prepare(splits: dict[str, Trajectories], tasks: str | TaskSet, augment: AugmentSettings, seed: int = 0,
            force: bool = False, domain: str | None = None, domain_params: dict | None = None) -> Prepared:
    """Fit the task set on ``splits["train"]`` and label every split (see the module docstring)."""
    train = splits["train"]
    ts = task_set(tasks, seed=seed, domain=domain, domain_params=domain_params)
    fitted = fit_tasks(ts, train, force=force)
    if ts.tasks and not fitted.tasks.tasks:
        raise TaskError(f"{ts.source or 'tasks'}: every task was dropped as constant on the {len(train)} training "
                        f"windows ({'; '.join(fitted.notes)}); check the thresholds against the data's units")
    bound = bind_tasks(fitted.tasks, train)
    values, labels = {"train": fitted.values}, {"train": fitted.labels}
    for name, traj in splits.items():
        if name != "train":
            values[name], labels[name] = bound.label_windows(traj)
    augmenter = Augmenter.fit(augment, train)
    return Prepared(fitted.tasks, values, labels, Normalise.fit(train, augmenter.kind), augmenter, fitted.dropped,
                    fitted.notes)


def save_labels(path: str | Path, prepared: Prepared, splits: dict[str, Trajectories]) -> Path:
    """Write every split's task classes and values (HDF5, atomically)."""
    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = LABELS_FORMAT
            f.attrs["tasks"] = json.dumps(prepared.tasks.names)
            for name, traj in splits.items():
                g = f.create_group(name)
                g.create_dataset("labels", data=prepared.labels[name].astype(np.int16))
                g.create_dataset("values", data=prepared.values[name].astype(np.float32))
                g.attrs["digest"] = windows_digest(traj)

    return atomic_write(path, write)


def load_labels(path: str | Path, tasks: TaskSet, splits: dict[str, Trajectories]) -> tuple[dict, dict]:
    """``(values, labels)`` per split from a cache written by :func:`save_labels`, checked
    against the task names and the windows (an error names the file and what differs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"task label cache not found: {path}")
    values, labels = {}, {}
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != LABELS_FORMAT:
            raise ValueError(f"{path} is not a trebalink label cache (attribute 'format')")
        names = json.loads(f.attrs["tasks"])
        if names != tasks.names:
            raise ValueError(f"{path}: field 'tasks' lists {names}; the run's task set has {tasks.names}")
        for name, traj in splits.items():
            if name not in f:
                raise ValueError(f"{path} has no split {name!r}; it has {list(f)}")
            g = f[name]
            if g.attrs.get("digest") != windows_digest(traj):
                raise ValueError(f"{path}: split {name!r} was labelled on other windows (field digest "
                                 f"{g.attrs.get('digest')!r}; this process loaded {windows_digest(traj)!r}); every "
                                 "process must read the same data files with the same config")
            labels[name] = g["labels"][()].astype(np.int64)
            values[name] = g["values"][()]
    return values, labels


def _trained(net: TrebaNet, prepared: Prepared, train: Trajectories, seed: int) -> TrainedTreba:
    return TrainedTreba(net, prepared.normalise, prepared.tasks, prepared.augmenter, train.n_frames,
                        list(train.feature_names) if train.feature_names else None,
                        dict(train.metadata.get("layout") or {}), seed,
                        window_options=train.metadata.get("window_options"))


def fit_treba(train: Trajectories, val: Trajectories, prepared: Prepared, model: ModelSettings,
              settings: TrainSettings, seed: int = 0, device: str | torch.device = "cpu", progress: bool = True,
              folder: str | Path | None = None, resume: bool = False, stop_after: int | None = None,
              dist: Dist | None = None, threads: int | None = None) -> tuple[TrainedTreba, dict]:
    """Train a TREBA model on prepared windows; returns the best model (lowest stage-2
    validation loss) and the final training state (history, timings, ``finished``).

    With ``folder``, ``last.pt`` (every epoch) and ``best.pt`` (every improvement) are written
    there (by rank 0) and ``resume=True`` continues from ``last.pt``. ``stop_after`` stops after
    that many epochs of this call, leaving a resumable run (for time-limited jobs).
    """
    dist = dist or Dist()
    device = torch.device(device)
    folder = None if folder is None else Path(folder)
    if settings.precision != "fp32" and device.type != "cuda":
        raise ValueError(f"train.precision: {settings.precision} (autocast) needs a CUDA device; this run is on "
                         f"{device}. Use precision: fp32 on CPU")
    if len(prepared.tasks) and model.condition_on_tasks:
        log.warning("model.condition_on_tasks is on (replication option): the encoder reads the task classes, so "
                    "every task must be computed whenever a window is embedded")
    resume_state = None
    if resume:
        if folder is None or not (folder / LAST).is_file():
            log.info("no %s in %s: training from the start", LAST, folder)
        else:
            resume_state = torch.load(folder / LAST, map_location="cpu", weights_only=True)
    with SeedStreams(seed).torch_rng("model"):
        net = TrebaNet(train.state_dim, prepared.tasks.n_classes, model)
    net.to(device)
    template = _trained(net, prepared, train, seed)
    data = TrainingData(torch.from_numpy(train.states), torch.from_numpy(prepared.labels["train"]),
                        torch.from_numpy(val.states), torch.from_numpy(prepared.labels["val"]))
    bound = bind_tasks(prepared.tasks, train)
    loop = TrainLoop(net, data, settings, bound, prepared.augmenter, template.normalise, seed, device, dist,
                     progress, folder, lambda n, st: best_record(template, st))
    with limit_threads(threads):
        state = loop.run(resume_state, stop_after)
    if state.get("best_state") is not None and state["stage"] == 2:
        net.load_state_dict(state["best_state"])
    template.epoch = int(state.get("best_epoch", -1))
    template.val_loss = float(state.get("best_val", float("nan")))
    net.eval()
    return template, state
