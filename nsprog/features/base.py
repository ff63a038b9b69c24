"""Base types of the feature layer: a named feature function, a domain (a table of
features over one kind of window layout) and the training-set standardisation.

Each feature function receives the states of all windows as a torch tensor ``[N, T+1, D]``
and a context prepared once from the windows' layout (keypoint indices and the like), and
returns ``[N, T+1]``: one value per frame (window-level quantities such as the final
position are broadcast over the frames). ``Domain.compute`` stacks the requested features
into ``[N, T+1, F]``; :class:`FeatureScaler` standardises them with statistics from the
training split only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from nsprog.data.trajectories import Trajectories

__all__ = ["Feature", "Domain", "FeatureScaler", "FeatureFn"]

FeatureFn = Callable[[torch.Tensor, Any], torch.Tensor]


@dataclass(frozen=True)
class Feature:
    """One named feature: ``fn(states [N, T+1, D], context) -> [N, T+1]``."""

    name: str
    fn: FeatureFn
    description: str = ""
    units: str = ""


@dataclass
class Domain:
    """A named table of features over one kind of state layout.

    ``prepare(traj)`` validates the layout and returns the context passed to every feature
    function (e.g. keypoint indices); it must raise a ``ValueError`` naming what is missing.
    ``params`` records the domain's parameters (field size, keypoint mapping, ...).
    """

    name: str
    features: dict[str, Feature]
    prepare: Callable[[Trajectories], Any] = lambda traj: None
    params: dict = field(default_factory=dict)
    description: str = ""

    @property
    def feature_names(self) -> list[str]:
        return list(self.features)

    def check_names(self, names: Sequence[str]) -> list[str]:
        names = list(names)
        unknown = [n for n in names if n not in self.features]
        if unknown:
            raise KeyError(
                f"domain {self.name!r} has no feature(s) {unknown}; available: {', '.join(self.features)}"
            )
        return names

    def compute(
        self,
        traj: Trajectories,
        names: Sequence[str] | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 65536,
    ) -> torch.Tensor:
        """Features ``[N, T+1, F]`` (float32) for the windows in ``traj``, in the order of ``names``."""
        names = self.check_names(names if names is not None else self.feature_names)
        ctx = self.prepare(traj)
        n = len(traj)
        out = torch.empty((n, traj.n_frames, len(names)), dtype=torch.float32)
        states_all = torch.from_numpy(traj.states)
        for lo in range(0, n, batch_size):
            states = states_all[lo : lo + batch_size].to(device)
            cols = []
            for name in names:
                v = self.features[name].fn(states, ctx)
                if v.shape != states.shape[:2]:
                    raise RuntimeError(
                        f"feature {name!r} of domain {self.name!r} returned shape {tuple(v.shape)}; "
                        f"expected {tuple(states.shape[:2])}"
                    )
                cols.append(v.to(torch.float32))
            out[lo : lo + batch_size] = torch.stack(cols, dim=-1).cpu()
        if not torch.isfinite(out).all():
            bad = torch.nonzero(~torch.isfinite(out))[0].tolist()
            raise ValueError(
                f"feature {names[bad[2]]!r} of domain {self.name!r} is not finite at window {bad[0]}, frame {bad[1]}; "
                "repair missing keypoints before computing features"
            )
        return out


@dataclass(frozen=True)
class FeatureScaler:
    """Per-feature standardisation ``(f - mean) / std`` fitted on training features only."""

    names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, features: torch.Tensor, names: Sequence[str], eps: float = 1e-6) -> "FeatureScaler":
        if features.ndim != 3 or features.shape[-1] != len(names):
            raise ValueError(f"features have shape {tuple(features.shape)}; expected (N, T+1, {len(names)})")
        flat = features.reshape(-1, features.shape[-1]).double()
        return cls(
            names=tuple(names),
            mean=flat.mean(0).float().numpy(),
            std=flat.std(0, unbiased=False).clamp_min(eps).float().numpy(),
        )

    def transform(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[-1] != len(self.names):
            raise ValueError(
                f"features have {features.shape[-1]} columns; this scaler was fitted on {len(self.names)} "
                f"({', '.join(self.names)})"
            )
        mean = torch.as_tensor(self.mean, device=features.device)
        std = torch.as_tensor(self.std, device=features.device)
        return (features - mean) / std

    def to_dict(self) -> dict:
        return {"names": list(self.names), "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping) -> "FeatureScaler":
        missing = {"names", "mean", "std"} - set(d)
        if missing:
            raise KeyError(f"feature scaler record is missing {sorted(missing)}")
        return cls(tuple(d["names"]), np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))


