"""Windows -> standardised feature tensor ``[N, T+1, F]``, fitted on the training split only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

from nsprog.data.trajectories import Trajectories
from nsprog.features.registry import FeatureScaler, get_domain

__all__ = ["FeaturePipeline"]


@dataclass
class FeaturePipeline:
    """Computes the named features of a domain and standardises them with training statistics."""

    domain: str
    features: tuple[str, ...]
    domain_params: Mapping[str, Any] = field(default_factory=dict)
    scaler_: FeatureScaler | None = None

    def __post_init__(self) -> None:
        self.features = tuple(self.features)
        self._domain = get_domain(self.domain, **dict(self.domain_params))
        self._domain.check_names(self.features)

    def raw(self, traj: Trajectories) -> torch.Tensor:
        """Unstandardised features ``[N, T+1, F]``."""
        return self._domain.compute(traj, self.features)

    def fit(self, train: Trajectories) -> "FeaturePipeline":
        self.scaler_ = FeatureScaler.fit(self.raw(train), self.features)
        return self

    def transform(self, traj: Trajectories) -> torch.Tensor:
        if self.scaler_ is None:
            raise RuntimeError("FeaturePipeline is not fitted; call fit(train_windows) first")
        return self.scaler_.transform(self.raw(traj))

    def fit_transform(self, train: Trajectories) -> torch.Tensor:
        raw = self.raw(train)
        self.scaler_ = FeatureScaler.fit(raw, self.features)
        return self.scaler_.transform(raw)

    def to_dict(self) -> dict:
        return {
            "domain": self.domain,
            "features": list(self.features),
            "domain_params": dict(self.domain_params),
            "scaler": None if self.scaler_ is None else self.scaler_.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "FeaturePipeline":
        missing = {"domain", "features"} - set(d)
        if missing:
            raise KeyError(f"feature pipeline record is missing {sorted(missing)}")
        pipe = cls(d["domain"], tuple(d["features"]), dict(d.get("domain_params") or {}))
        if d.get("scaler"):
            pipe.scaler_ = FeatureScaler.from_dict(d["scaler"])
        return pipe

    @classmethod
    def for_dsl(cls, dsl) -> "FeaturePipeline":
        if dsl.domain is None:
            raise ValueError(f"DSL {dsl.name!r} names no feature domain; set 'domain:' in its definition")
        return cls(dsl.domain, tuple(dsl.features), dict(dsl.domain_params))

    @staticmethod
    def check_width(x: torch.Tensor, names: Sequence[str]) -> None:
        if x.shape[-1] != len(names):
            raise ValueError(f"features have {x.shape[-1]} columns; the DSL expects {len(names)} ({', '.join(names)})")
