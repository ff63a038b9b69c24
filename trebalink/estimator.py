"""TREBA behind a scikit-learn style estimator: ``TrebaEncoder(tasks=...).fit(windows).transform(windows)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from nsprog.base import Estimator
from nsprog.config import from_dict
from nsprog.data.splits import split_by_time, split_random
from nsprog.data.trajectories import Trajectories
from nsprog.utils import limit_threads, resolve_device
from trebalink.augment import AugmentSettings
from trebalink.checkpoint import TrainedTreba, read_model
from trebalink.fitting import fit_treba, prepare
from trebalink.labelling import bind_tasks
from trebalink.model import ModelSettings
from trebalink.tasks import TaskSet
from trebalink.train import TrainSettings

__all__ = ["TrebaEncoder"]

_SECTIONS = {"model": ModelSettings, "augment": AugmentSettings, "train": TrainSettings}


class TrebaEncoder(Estimator):
    """Trajectory embeddings trained with programmatic supervision (TREBA).

    Parameters
    ----------
    tasks : str or TaskSet, default="expert:mouse"
        The supervision: ``expert:<mouse|openfield|basketball|synthetic>``, ``random:K[:C]``,
        ``none``, a task-set YAML path or a :class:`~trebalink.tasks.TaskSet` (for instance
        from :func:`trebalink.programs.learned.export_tasks`).
    model, augment, train : settings objects or dicts, optional
        :class:`~trebalink.model.ModelSettings`, :class:`~trebalink.augment.AugmentSettings`,
        :class:`~trebalink.train.TrainSettings`; a dict sets some keys and keeps the rest.
    seed : int, default=0
    device : str, default="cpu"
        ``cpu``, ``cuda[:N]`` or ``auto``.
    threads : int or None, default=1
        Torch / BLAS threads while fitting and embedding (restored afterwards); None leaves them.
    progress : bool, default=True
    force_tasks : bool, default=False
        Keep tasks that are constant on the training windows (dropped with a warning otherwise).

    Attributes (after ``fit``)
    --------------------------
    model_ : TrainedTreba (network, normalisation, fitted task set, augmentation, data layout)
    tasks_ : the fitted TaskSet (quantile thresholds resolved)
    history_ : per-epoch losses of both stages
    best_epoch_ : the stage-2 epoch whose model was kept (lowest validation loss)
    """

    _fitted_attributes = ("model_", "tasks_", "history_", "best_epoch_")

    def __init__(self, tasks: str | TaskSet = "expert:mouse", model: ModelSettings | dict | None = None,
                 augment: AugmentSettings | dict | None = None, train: TrainSettings | dict | None = None,
                 seed: int = 0, device: str = "cpu", threads: int | None = 1, progress: bool = True,
                 force_tasks: bool = False):
        self.tasks = tasks
        self.model = model
        self.augment = augment
        self.train = train
        self.seed = seed
        self.device = device
        self.threads = threads
        self.progress = progress
        self.force_tasks = force_tasks

    def settings(self) -> tuple[ModelSettings, AugmentSettings, TrainSettings]:
        """The validated settings these parameters describe."""
        out = []
        for name, cls in _SECTIONS.items():
            value = getattr(self, name)
            if value is None:
                value = cls()
            elif isinstance(value, dict):
                value = from_dict(cls, value, source=f"{type(self).__name__}({name}=...)")
            elif not isinstance(value, cls):
                raise TypeError(f"{name} must be a {cls.__name__} or a dict; got {type(value).__name__}")
            out.append(value)
        return tuple(out)  # type: ignore[return-value]

    def fit(self, X: Trajectories, val: Trajectories | None = None, *, folder: str | Path | None = None,
            resume: bool = False) -> "TrebaEncoder":
        """Fit on windows ``X`` (validation windows ``val``: the best model is chosen on them;
        when None, 10% of ``X`` is held out, by time for windows cut from recordings). With
        ``folder``, checkpoints go there and ``resume=True`` continues an interrupted fit."""
        self._clear_fitted()
        if not isinstance(X, Trajectories):
            raise TypeError(f"X must be nsprog Trajectories windows; got {type(X).__name__}")
        model, augment, train = self.settings()
        if val is None:
            parts = (split_by_time(X, {"train": 0.9, "val": 0.1}) if X.starts is not None and X.groups is not None
                     else split_random(X, {"train": 0.9, "val": 0.1}, seed=self.seed))
            X, val = parts["train"], parts["val"]
        device = resolve_device(self.device)
        with limit_threads(self.threads):
            prepared = prepare({"train": X, "val": val}, self.tasks, augment, self.seed, self.force_tasks)
            trained, state = fit_treba(X, val, prepared, model, train, self.seed, device, self.progress, folder,
                                       resume)
        self._set_fitted(model_=trained, tasks_=trained.tasks, history_=list(state["history"]),
                         best_epoch_=int(state.get("best_epoch", -1)))
        return self

    def transform(self, X: Trajectories, batch_size: int = 1024) -> np.ndarray:
        """The embedding of every window: posterior means ``[N, z_dim]``."""
        self._check_fitted()
        if not isinstance(X, Trajectories):
            raise TypeError(f"X must be nsprog Trajectories windows; got {type(X).__name__}")
        self.model_.check(X, "X")
        device = next(self.model_.net.parameters()).device
        bound = bind_tasks(self.model_.tasks, X) if self.model_.net.cfg.condition_on_tasks else None
        with limit_threads(self.threads):
            return self.model_.embed_states(torch.from_numpy(X.states), device, batch_size, bound)

    def task_labels(self, X: Trajectories) -> np.ndarray:
        """The fitted tasks' classes ``[N, K]`` for windows ``X`` (-1 = abstain)."""
        self._check_fitted()
        return bind_tasks(self.tasks_, X).label_windows(X)[1]

    def save(self, path: str | Path) -> Path:
        """Write the model (``best.pt`` in a folder, or the given ``.pt`` file)."""
        from nsprog.utils import torch_save_atomic

        self._check_fitted()
        path = Path(path)
        if path.suffix != ".pt":
            path = path / "best.pt"
        return torch_save_atomic(self.model_.to_record(), path)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", **params: Any) -> "TrebaEncoder":
        """The model in a ``trebalink train`` run folder (``best.pt``) or a saved file."""
        trained: TrainedTreba = read_model(path, device)
        est = cls(tasks=trained.tasks, model=trained.net.cfg, device=str(device), **params)
        est._set_fitted(model_=trained, tasks_=trained.tasks, history_=[], best_epoch_=trained.epoch)
        return est
