"""Team-sport features over offense / defense windows, with players masked by presence.

Windows come from :func:`nsprog.data.teams.team_windows`: states ``[N, T+1, S*3]`` hold
``(x, y, present)`` per player slot, oriented so that the group's offense attacks the
field's target (basket, goal). Per-player quantities are reduced over the players
*present* in each frame:

* ``avg_<q>``: mean over present players;
* ``max_<q>``: smooth max ``logsumexp(k v) / k`` over present players (``k = sharpness``,
  default 100: within ``log(S) / k`` of the true max);
* ``min_<q>``: smooth min ``-logsumexp(-k v) / k``.

Absent players never enter a reducer (they are set to ``-inf`` inside the logsumexp and
to weight 0 in the mean), so a missing player is masked, not counted as a player at 0.

Per-player quantities ``<q>``:

* ``speed``: displacement per frame times fps (units/s; units/frame when fps is unknown);
  frame 0 repeats frame 1; a player counts only when present at both frames.
* ``accel``: norm of the second difference times fps^2; edges repeat their neighbour.
* ``x``, ``y``: position; ``final_x``, ``final_y``: position at the window's last frame
  (broadcast over frames).
* ``dist_target``: distance to the target the offense attacks (for the defense: the
  target it defends).
* ``displacement``: distance between the first and last position (broadcast).

Field size, target, players per team and sampling rate come from the windows' layout
(written by ``team_windows``) and can be overridden by the domain's parameters; the
``preset`` (default basketball) fills in whatever neither gives. ``prepare`` checks that
every window has at least ``min_players`` present players in every frame and names the
first window and frame that do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from nsprog.data.teams import FIELD_PRESETS, get_field
from nsprog.data.trajectories import Trajectories
from nsprog.features.base import Domain, Feature

__all__ = ["TeamContext", "team_domain", "QUANTITIES", "REDUCERS", "masked_mean", "smooth_max", "smooth_min"]

QUANTITIES = ("speed", "accel", "x", "y", "final_x", "final_y", "dist_target", "displacement")
REDUCERS = ("avg", "max", "min")


@dataclass
class TeamContext:
    slots: int
    fps: float | None
    target: tuple[float, float]
    sharpness: float
    min_players: int
    units: str


def masked_mean(v: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Mean of ``v [..., S]`` over entries where ``m`` is True (0 where none is)."""
    w = m.to(v.dtype)
    return (v * w).sum(-1) / w.sum(-1).clamp_min(1.0)


def smooth_max(v: torch.Tensor, m: torch.Tensor, k: float) -> torch.Tensor:
    """``logsumexp(k v) / k`` over entries where ``m`` is True (0 where none is)."""
    z = torch.where(m, v * k, torch.full_like(v, -math.inf))
    out = torch.logsumexp(z, dim=-1) / k
    return torch.where(m.any(-1), out, torch.zeros_like(out))


def smooth_min(v: torch.Tensor, m: torch.Tensor, k: float) -> torch.Tensor:
    """``-logsumexp(-k v) / k`` over entries where ``m`` is True (0 where none is)."""
    return -smooth_max(-v, m, k)


def _split(s: torch.Tensor, ctx: TeamContext) -> tuple[torch.Tensor, torch.Tensor]:
    n, t, d = s.shape
    if d != ctx.slots * 3:
        raise ValueError(f"states have {d} dims; the team layout has {ctx.slots} slots x (x, y, present)")
    v = s.reshape(n, t, ctx.slots, 3)
    return v[..., :2], v[..., 2] > 0.5


def _quantity(name: str, s: torch.Tensor, ctx: TeamContext) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-player values ``[N, T+1, S]`` and their presence mask."""
    p, m = _split(s, ctx)
    rate = ctx.fps or 1.0
    if name == "x":
        return p[..., 0], m
    if name == "y":
        return p[..., 1], m
    if name in ("final_x", "final_y"):
        d = 0 if name == "final_x" else 1
        return p[:, -1:, :, d].expand_as(m), m[:, -1:].expand_as(m)
    if name == "dist_target":
        tx, ty = ctx.target
        return torch.sqrt((p[..., 0] - tx) ** 2 + (p[..., 1] - ty) ** 2), m
    if name == "displacement":
        d = p[:, -1] - p[:, 0]
        val = torch.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2)[:, None].expand_as(m)
        return val, (m[:, -1] & m[:, 0])[:, None].expand_as(m)
    if name == "speed":
        d = p[:, 1:] - p[:, :-1]
        v = torch.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2) * rate
        mm = m[:, 1:] & m[:, :-1]
        return torch.cat([v[:, :1], v], 1), torch.cat([mm[:, :1], mm], 1)
    if name == "accel":
        if p.shape[1] < 3:
            return torch.zeros_like(m, dtype=p.dtype), m
        d = p[:, 2:] - 2 * p[:, 1:-1] + p[:, :-2]
        a = torch.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2) * rate * rate
        mm = m[:, 2:] & m[:, 1:-1] & m[:, :-2]
        return torch.cat([a[:, :1], a, a[:, -1:]], 1), torch.cat([mm[:, :1], mm, mm[:, -1:]], 1)
    raise KeyError(f"unknown per-player quantity {name!r}; available: {', '.join(QUANTITIES)}")


def _feature(reducer: str, q: str):
    def fn(s: torch.Tensor, ctx: TeamContext) -> torch.Tensor:
        v, m = _quantity(q, s, ctx)
        if reducer == "avg":
            return masked_mean(v, m)
        if reducer == "max":
            return smooth_max(v, m, ctx.sharpness)
        return smooth_min(v, m, ctx.sharpness)

    return fn


def team_domain(
    preset: str = "basketball",
    field_length: float | None = None,
    field_width: float | None = None,
    target: Sequence[float] | None = None,
    players_per_team: int | None = None,
    fps: float | None = None,
    min_players: int | None = None,
    sharpness: float = 100.0,
) -> Domain:
    """Team features; explicit parameters override the windows' layout, which overrides ``preset``."""
    if preset not in FIELD_PRESETS:
        raise KeyError(f"unknown field preset {preset!r}; available: {', '.join(FIELD_PRESETS)}")
    if not sharpness > 0:
        raise ValueError(f"sharpness must be > 0; got {sharpness}")
    units = FIELD_PRESETS[preset].units

    def prepare(traj: Trajectories) -> TeamContext:
        layout = traj.metadata.get("layout") or {}
        if layout.get("kind") != "team":
            raise ValueError(
                "the 'team' domain needs team windows (metadata['layout']['kind'] == 'team', from "
                f"nsprog.data.teams.team_windows); these windows have layout {layout or 'none'}"
            )
        lf = layout.get("field") or {}
        base = get_field(
            preset,
            length=lf.get("length"), width=lf.get("width"),
            target=tuple(lf["target"]) if lf.get("target") is not None else None,
            players_per_team=lf.get("players_per_team"), units=lf.get("units"),
        )
        spec = get_field(
            base, length=field_length, width=field_width, target=None if target is None else tuple(target),
            players_per_team=players_per_team,
        )
        slots = int(layout.get("slots", spec.players_per_team))
        if traj.state_dim != slots * 3:
            raise ValueError(f"windows have {traj.state_dim} state dims; the team layout has {slots} slots x 3")
        rate = fps if fps is not None else (layout.get("fps") or spec.fps)
        need = spec.players_per_team if min_players is None else int(min_players)
        need = min(need, slots)
        present = torch.from_numpy(traj.states[:, :, 2::3] > 0.5).sum(-1)  # [N, T+1]
        short = present < need
        if bool(short.any()):
            w, f = (int(x) for x in torch.nonzero(short)[0])
            raise ValueError(
                f"window {w}, frame {f}: field 'players present' is {int(present[w, f])}; the team domain needs "
                f"at least {need} (min_players); {int(short.any(1).sum())} windows fall short. Cut windows with "
                "team_windows(min_players=...) or lower min_players"
            )
        return TeamContext(slots, rate, spec.target, float(sharpness), need, spec.units or units)

    feats = []
    unit_of = {"speed": "/s", "accel": "/s^2", "x": "", "y": "", "final_x": "", "final_y": "", "dist_target": "",
               "displacement": ""}
    reducer_text = {"avg": "mean", "max": "smooth max", "min": "smooth min"}
    for q in QUANTITIES:
        for r in REDUCERS:
            text = f"{reducer_text[r]} of per-player {q} over the players present"
            feats.append(Feature(f"{r}_{q}", _feature(r, q), text, f"{units}{unit_of[q]}"))
    return Domain(
        name="team",
        features={f.name: f for f in feats},
        prepare=prepare,
        params={
            "preset": preset, "field_length": field_length, "field_width": field_width,
            "target": None if target is None else list(target), "players_per_team": players_per_team, "fps": fps,
            "min_players": min_players, "sharpness": sharpness,
        },
        description="team-sport offense/defense window features reduced over the players present",
    )
