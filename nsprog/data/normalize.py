"""Per-dimension standardisation fitted on the training split only and saved with a run."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from nsprog.data.trajectories import Trajectories

__all__ = ["Normalizer"]


@dataclass(frozen=True)
class Normalizer:
    """``(x - mean) / std`` per state dimension; ``std`` is floored at ``eps`` for constant dims."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, train: Trajectories, eps: float = 1e-6) -> "Normalizer":
        flat = train.states.reshape(-1, train.state_dim).astype(np.float64)
        return cls(mean=flat.mean(0).astype(np.float32), std=np.maximum(flat.std(0), eps).astype(np.float32))

    def _check(self, traj: Trajectories) -> None:
        if traj.state_dim != len(self.mean):
            raise ValueError(
                f"trajectories have {traj.state_dim} state dims; this normalizer was fitted on {len(self.mean)}"
            )

    def transform(self, traj: Trajectories) -> Trajectories:
        self._check(traj)
        return replace(traj, states=(traj.states - self.mean) / self.std)

    def inverse(self, states: np.ndarray) -> np.ndarray:
        return np.asarray(states) * self.std + self.mean

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        missing = {"mean", "std"} - set(d)
        if missing:
            raise KeyError(f"normalizer record is missing {sorted(missing)}; expected keys 'mean' and 'std'")
        return cls(mean=np.asarray(d["mean"], np.float32), std=np.asarray(d["std"], np.float32))
