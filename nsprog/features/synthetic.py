"""Features of the synthetic 2-D trajectories (states = (x, y) positions).

Window-level quantities (final position, displacement, average speed and acceleration)
are broadcast over the frames so that every feature has the shape ``[N, T+1]``.
"""

from __future__ import annotations

import torch

from nsprog.data.trajectories import Trajectories
from nsprog.features.base import Domain, Feature

__all__ = ["synthetic_domain"]


def _prepare(traj: Trajectories) -> None:
    if traj.state_dim != 2:
        names = ", ".join(traj.feature_names or ()) or "unnamed"
        raise ValueError(
            f"the synthetic domain expects 2 state dims (x, y); these windows have {traj.state_dim} ({names})"
        )


def _broadcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v[:, None].expand(like.shape[0], like.shape[1])


def _final(dim: int):
    return lambda s, ctx: _broadcast(s[:, -1, dim], s)


def _disp(dim: int):
    return lambda s, ctx: _broadcast(s[:, -1, dim] - s[:, 0, dim], s)


def _avg_speed(s: torch.Tensor, ctx) -> torch.Tensor:
    return _broadcast(torch.linalg.vector_norm(s.diff(dim=1), dim=-1).mean(1), s)


def _avg_accel(s: torch.Tensor, ctx) -> torch.Tensor:
    return _broadcast(torch.linalg.vector_norm(s.diff(n=2, dim=1), dim=-1).mean(1), s)


def _position(dim: int):
    return lambda s, ctx: s[:, :, dim]


def _speed(s: torch.Tensor, ctx) -> torch.Tensor:
    step = torch.linalg.vector_norm(s.diff(dim=1), dim=-1)
    return torch.cat([step[:, :1], step], dim=1)  # frame 0 repeats the first step


def synthetic_domain() -> Domain:
    feats = [
        Feature("final_x", _final(0), "x position at the last frame", "units"),
        Feature("final_y", _final(1), "y position at the last frame", "units"),
        Feature("avg_speed", _avg_speed, "mean step length over the window", "units/step"),
        Feature("avg_accel", _avg_accel, "mean norm of the second difference", "units/step^2"),
        Feature("disp_x", _disp(0), "final minus initial x", "units"),
        Feature("disp_y", _disp(1), "final minus initial y", "units"),
        Feature("x", _position(0), "x position per frame", "units"),
        Feature("y", _position(1), "y position per frame", "units"),
        Feature("speed", _speed, "step length per frame", "units/step"),
    ]
    return Domain(
        name="synthetic",
        features={f.name: f for f in feats},
        prepare=_prepare,
        description="2-D synthetic trajectories of the neurosymbolic-encoder paper (appendix C)",
    )
