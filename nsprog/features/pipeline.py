"""Windows -> standardised feature tensor ``[N, T+1, F]``, fitted on the training split only."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from nsprog.base import Estimator
from nsprog.data.trajectories import Trajectories
from nsprog.features.base import Domain, FeatureScaler
from nsprog.features.registry import get_domain

__all__ = ["FeaturePipeline"]


class FeaturePipeline(Estimator):
    """Computes the named features of a domain and standardises them with training statistics.

    Parameters
    ----------
    domain : str, default="synthetic"
        A feature domain (:data:`nsprog.features.DOMAINS`).
    features : sequence of str
        The features to compute, in column order.
    domain_params : mapping, optional
        The domain's parameters (keypoint mapping, field size, ...).

    Attributes (after ``fit``)
    --------------------------
    scaler_ : FeatureScaler
    """

    _fitted_attributes = ("scaler_",)

    def __init__(self, domain: str = "synthetic", features: Sequence[str] = (),
                 domain_params: Mapping[str, Any] | None = None):
        self.domain = domain
        self.features = features
        self.domain_params = domain_params

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.features)

    def _domain(self) -> Domain:
        dom = get_domain(self.domain, **dict(self.domain_params or {}))
        dom.check_names(self.names)
        return dom

    def check(self, traj: Trajectories) -> None:
        """Raise a ``ValueError`` naming what is missing when ``traj`` does not fit the domain
        (:meth:`nsprog.dsl.DSL.check_windows` adds which shipped DSLs would fit)."""
        if not isinstance(traj, Trajectories):
            raise TypeError(f"expected nsprog Trajectories windows (nsprog.data.Trajectories); got "
                            f"{type(traj).__name__}")
        try:
            self._domain().prepare(traj)
        except (ValueError, KeyError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise ValueError(f"the windows do not fit feature domain {self.domain!r}: {msg}") from None

    def raw(self, traj: Trajectories) -> torch.Tensor:
        """Unstandardised features ``[N, T+1, F]``."""
        return self._domain().compute(traj, self.names)

    def fit(self, X: Trajectories, y=None) -> "FeaturePipeline":
        """Fit the standardisation on the training windows ``X``."""
        self.fit_transform(X)
        return self

    def transform(self, X: Trajectories) -> torch.Tensor:
        self._check_fitted()
        return self.scaler_.transform(self.raw(X))

    def fit_transform(self, X: Trajectories, y=None) -> torch.Tensor:
        self._clear_fitted()
        raw = self.raw(X)
        scaler = FeatureScaler.fit(raw, self.names)
        self._set_fitted(scaler_=scaler)
        return scaler.transform(raw)

    def to_dict(self) -> dict:
        return {
            "domain": self.domain,
            "features": list(self.names),
            "domain_params": dict(self.domain_params or {}),
            "scaler": self.scaler_.to_dict() if hasattr(self, "scaler_") else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "FeaturePipeline":
        missing = {"domain", "features"} - set(d)
        if missing:
            raise KeyError(f"feature pipeline record is missing {sorted(missing)}")
        pipe = cls(d["domain"], tuple(d["features"]), dict(d.get("domain_params") or {}))
        pipe._domain()  # unknown domain or feature: fail here, naming it
        if d.get("scaler"):
            pipe._set_fitted(scaler_=FeatureScaler.from_dict(d["scaler"]))
        return pipe

    @classmethod
    def for_dsl(cls, dsl) -> "FeaturePipeline":
        if dsl.domain is None:
            raise ValueError(f"DSL {dsl.name!r} names no feature domain; set 'domain:' in its definition")
        pipe = cls(dsl.domain, tuple(dsl.features), dict(dsl.domain_params))
        pipe._domain()
        return pipe

    @staticmethod
    def check_width(x: torch.Tensor, names: Sequence[str]) -> None:
        if x.shape[-1] != len(names):
            raise ValueError(f"features have {x.shape[-1]} columns; the DSL expects {len(names)} ({', '.join(names)})")
