"""The saved TREBA model (``best.pt``) and what it takes to use it on new data.

``best.pt`` holds plain tensors, numbers and strings only (read with
``torch.load(weights_only=True)``): the model settings, the weights, the training split's
per-dimension normalisation, the fitted task set (thresholds recorded), the fitted
augmentation, and the layout of the windows it was trained on (frames, state names,
keypoint layout), so an embedding needs nothing else. :class:`TrainedTreba` checks new data
against that layout (input dimension, frames, keypoints and the task set) before embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nsprog._version import __version__
from nsprog.config import ConfigError, from_dict, to_dict
from nsprog.data.trajectories import Trajectories
from nsprog.seeds import SeedStreams
from trebalink.augment import Augmenter
from trebalink.labelling import bind_tasks
from trebalink.model import ModelSettings, TrebaNet
from trebalink.tasks import TaskError, TaskSet
from trebalink.train import BEST, Normalise

__all__ = ["FORMAT", "CheckpointError", "TrainedTreba", "best_record", "read_model"]

FORMAT = "trebalink-treba"
VERSION = 1


class CheckpointError(ValueError):
    """A file is not a usable TREBA model; the message names the file and why."""


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


@dataclass
class TrainedTreba:
    """A trained model with everything needed to embed new windows."""

    net: TrebaNet
    normalise: Normalise
    tasks: TaskSet
    augmenter: Augmenter
    n_frames: int
    feature_names: list[str] | None
    layout: dict
    seed: int
    epoch: int = -1
    val_loss: float = float("nan")
    source: str = ""
    window_options: dict | None = None  # how the training windows were cut from recordings (when known)

    @property
    def state_dim(self) -> int:
        return self.net.state_dim

    @property
    def z_dim(self) -> int:
        return self.net.cfg.z_dim

    def to_record(self, extra: dict | None = None) -> dict:
        rec = {
            "format": FORMAT, "version": VERSION, "nsprog_version": __version__, "torch_version": str(torch.__version__),
            "model": to_dict(self.net.cfg), "state_dim": self.net.state_dim, "n_classes": list(self.net.n_classes),
            "net": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
            "normalizer": {"mean": self.normalise.mean.tolist(), "std": self.normalise.std.tolist()},
            "tasks": self.tasks.to_dict(), "augmenter": self.augmenter.to_dict(),
            "data": {"n_frames": self.n_frames, "feature_names": self.feature_names, "layout": self.layout,
                     "window_options": self.window_options},
            "seed": int(self.seed), "epoch": int(self.epoch), "val_loss": float(self.val_loss),
        }
        rec.update(extra or {})
        return _plain(rec)

    # ------------------------------------------------------------------ checks against new data
    def check(self, traj: Trajectories, where: str = "data") -> None:
        """Raise a ``ValueError`` naming the file and field when ``traj`` does not fit this model."""
        if traj.state_dim != self.state_dim:
            raise ValueError(f"{where}: windows have {traj.state_dim} state dims (field states); the model at "
                             f"{self.source or 'this checkpoint'} was trained on {self.state_dim}")
        if traj.n_frames != self.n_frames:
            raise ValueError(f"{where}: windows have {traj.n_frames} frames (field states); the model was trained on "
                             f"windows of {self.n_frames}")
        self.check_layout(traj.metadata.get("layout") or {}, traj.feature_names, where)
        try:
            bind_tasks(self.tasks, traj)
        except TaskError as exc:
            raise ValueError(f"{where}: the model's task set does not fit these windows: {exc}") from None

    def check_layout(self, layout: dict, feature_names, where: str) -> None:
        mine = self.layout or {}
        for key in ("kind", "individuals", "keypoints", "slots"):
            if key in mine and key in layout and mine[key] != layout[key]:
                raise ValueError(f"{where}: layout field {key!r} is {layout[key]!r}; the model was trained on "
                                 f"{mine[key]!r} (select the same {key} when cutting the windows)")
        if self.feature_names and feature_names and list(feature_names) != list(self.feature_names):
            first = next(i for i, (a, b) in enumerate(zip(feature_names, self.feature_names)) if a != b) \
                if len(feature_names) == len(self.feature_names) else 0
            raise ValueError(f"{where}: state dim {first} is {list(feature_names)[first]!r} (field feature_names); the "
                             f"model expects {self.feature_names[first]!r} there")

    # ------------------------------------------------------------------ embedding
    @torch.no_grad()
    def embed_states(self, states: torch.Tensor, device: torch.device, batch_size: int = 1024,
                     bound=None) -> np.ndarray:
        """Posterior means ``[N, z]`` of raw windows ``states [N, T+1, D]`` (CPU tensor), in
        batches; ``bound`` (the bound task set) is needed only by task-conditioned encoders."""
        net = self.net.to(device).eval()
        out = []
        for lo in range(0, states.shape[0], batch_size):
            x = states[lo : lo + batch_size].to(device)
            y = bound.labels(x) if (net.cfg.condition_on_tasks and bound is not None and len(bound)) else None
            out.append(net.embed(self.normalise(x), y).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, self.z_dim), np.float32)


def best_record(trained: TrainedTreba, state: dict) -> dict:
    return trained.to_record({"epoch": int(state.get("best_epoch", -1)), "val_loss": float(state.get("best_val",
                                                                                                      float("nan")))})


def read_model(path: str | Path, device: str | torch.device = "cpu") -> TrainedTreba:
    """The model in a run folder (its ``best.pt``) or in a ``.pt`` file written by training."""
    path = Path(path)
    if path.is_dir():
        path = path / BEST
    if not path.is_file():
        raise FileNotFoundError(f"no TREBA model at {path}" + ("" if path.parent.exists() else
                                                                f" ({path.parent} does not exist)")
                                + "; train one with `trebalink train` (best.pt appears after the first stage-2 epoch)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the file cannot be used
        raise CheckpointError(f"{path} is not a readable TREBA model ({type(exc).__name__}): the file is corrupt or "
                              "truncated, or holds objects other than tensors and numbers") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a TREBA model (no \"format\": {FORMAT!r} in it)")
    if int(ck.get("version", 0)) > VERSION:
        raise CheckpointError(f"{path} has version {ck.get('version')}, newer than this trebalink reads ({VERSION})")
    try:
        cfg = from_dict(ModelSettings, ck["model"], source=f"{path}: model")
        tasks = TaskSet.from_dict(ck["tasks"], source=f"{path}: tasks")
        with SeedStreams(int(ck["seed"])).torch_rng("restore"):  # weights are overwritten; keeps the caller's RNG
            net = TrebaNet(int(ck["state_dim"]), list(ck["n_classes"]), cfg)
        net.load_state_dict(ck["net"])
        norm = Normalise(torch.tensor(ck["normalizer"]["mean"], dtype=torch.float32),
                         torch.tensor(ck["normalizer"]["std"], dtype=torch.float32))
        data = ck["data"]
        trained = TrainedTreba(net, norm, tasks, Augmenter.from_dict(ck["augmenter"]), int(data["n_frames"]),
                               data.get("feature_names"), dict(data.get("layout") or {}), int(ck["seed"]),
                               int(ck.get("epoch", -1)), float(ck.get("val_loss", float("nan"))), str(path),
                               data.get("window_options"))
    except (ConfigError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is damaged or from another version: {exc}") from None
    net.to(device).eval()
    return trained
