"""Team-sport windows: fixed-duration windows split into an offense and a defense group.

A team recording (e.g. SportVU) holds one keypoint per individual (its position), the
team of each individual as its group and a per-frame ``offense`` column (index into
``Recording.group_names``). :func:`team_windows` cuts windows of a fixed duration and,
for every window, writes **two** windows of the same frames: the offense's players
(label 1) and the defense's players (label 0), which doubles the data.

States layout (``metadata["layout"]``, ``kind = "team"``): ``[N, T+1, S*3]`` with
``(x, y, present)`` per player slot, ``S = slots`` (default: players per team). A slot
whose player is absent has ``x = y = 0`` and ``present = 0``; feature reducers must use
the presence channel (missing players are masked, never averaged in as zeros). A player
fills a slot only when tracked in every frame of the window.

Orientation: windows are rotated by 180 degrees about the field centre
(``x -> length - x``, ``y -> width - y``; ``flip="mirror"`` only mirrors x) so that the
offense always attacks the side of the field where ``field.target`` lies (for basketball
the left basket at (5.25, 25)). The attacked side comes from, in order (``orientation=
"auto"``): a per-frame ``attack_direction`` column (+1 towards ``x = length``, -1 towards
0); else, per period (``frame_data["period"]``), the side where each team's players stand
on average while it is on offense; else the side of the window's mean player position.

Field geometry lives in :class:`FieldSpec`; :data:`FIELD_PRESETS` holds basketball
(94 x 50 ft, basket (5.25, 25), 5 players) and soccer (105 x 68 m, goal (0, 34), 11
players). Nothing in this module assumes a particular sport.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from typing import Sequence

import numpy as np

from nsprog.data.recording import NoWindowsError, Recording
from nsprog.data.trajectories import Trajectories
from nsprog.data.windows import window_starts

__all__ = ["FieldSpec", "FIELD_PRESETS", "get_field", "team_windows", "recordings_to_team_windows", "ORIENTATIONS"]

log = logging.getLogger("nsprog")
ORIENTATIONS = ("auto", "column", "period", "window", "none")


@dataclass(frozen=True)
class FieldSpec:
    """Geometry of a playing field.

    ``target`` is the location the offense attacks *after* orientation (basket, goal);
    ``players_per_team`` is the number of player slots per group; ``fps`` the sampling rate
    used when a recording does not know its own; ``units`` the length unit.
    """

    name: str
    length: float
    width: float
    target: tuple[float, float]
    players_per_team: int
    fps: float | None = None
    units: str = "units"

    def __post_init__(self) -> None:
        problems = []
        if not (self.length > 0 and self.width > 0):
            problems.append(f"length and width must be > 0; got {self.length} x {self.width}")
        if len(self.target) != 2:
            problems.append(f"target must be (x, y); got {self.target!r}")
        if int(self.players_per_team) < 1:
            problems.append(f"players_per_team must be >= 1; got {self.players_per_team}")
        if self.fps is not None and not self.fps > 0:
            problems.append(f"fps must be > 0 or None; got {self.fps}")
        if problems:
            raise ValueError(f"field {self.name!r}: " + "; ".join(problems))
        object.__setattr__(self, "target", (float(self.target[0]), float(self.target[1])))
        object.__setattr__(self, "players_per_team", int(self.players_per_team))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["target"] = list(self.target)
        return d


FIELD_PRESETS: dict[str, FieldSpec] = {
    "basketball": FieldSpec("basketball", 94.0, 50.0, (5.25, 25.0), 5, None, "ft"),
    "soccer": FieldSpec("soccer", 105.0, 68.0, (0.0, 34.0), 11, None, "m"),
}


def get_field(preset: str | FieldSpec | None = "basketball", **overrides) -> FieldSpec:
    """A preset (by name) with some fields replaced, e.g. ``get_field("soccer", players_per_team=7)``.

    ``preset=None`` builds a custom field from ``overrides`` alone (length, width, target,
    players_per_team required).
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(preset, FieldSpec):
        return replace(preset, **overrides)
    if preset is None:
        need = [k for k in ("length", "width", "target", "players_per_team") if k not in overrides]
        if need:
            raise ValueError(f"a custom field needs {', '.join(need)} (or a preset: {', '.join(FIELD_PRESETS)})")
        return FieldSpec(name=overrides.pop("name", "custom"), **overrides)
    if preset not in FIELD_PRESETS:
        raise KeyError(f"unknown field preset {preset!r}; available: {', '.join(FIELD_PRESETS)}")
    return replace(FIELD_PRESETS[preset], **overrides)


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    ok = np.isfinite(a)
    n = ok.sum(axis=axis)
    tot = np.where(ok, a, 0.0).sum(axis=axis)
    return np.where(n > 0, tot / np.maximum(n, 1), np.nan)


def _attack_right_by_period(rec: Recording, pos: np.ndarray, team_idx: dict[int, np.ndarray], offense: np.ndarray,
                            length: float) -> np.ndarray:
    """Per frame: +1 if the team on offense attacks towards x = length in this period, -1 if not, 0 unknown."""
    period = np.asarray(rec.frame_data.get("period", np.zeros(rec.n_frames)))
    out = np.zeros(rec.n_frames, dtype=np.int64)
    x = pos[:, :, 0]  # [T, I]
    for g, members in team_idx.items():
        mean_x = _nanmean(x[:, members], axis=1)  # [T]
        on = (offense == g) & np.isfinite(mean_x)
        for p in np.unique(period):
            sel = on & (period == p)
            if sel.any():
                out[(offense == g) & (period == p)] = 1 if mean_x[sel].mean() > length / 2 else -1
    return out


def team_windows(
    rec: Recording,
    field: FieldSpec,
    length: int | None = None,
    seconds: float | None = None,
    stride: int = 1,
    group: int = 0,
    teams: Sequence[str] | None = None,
    slots: int | None = None,
    min_players: int | None = None,
    orientation: str = "auto",
    flip: str = "rotate",
    mixed_possession: str = "drop",
) -> Trajectories:
    """Offense / defense windows of one team recording (see the module docstring).

    Parameters
    ----------
    rec : Recording
        One keypoint per individual, teams as groups, ``frame_data["offense"]``.
    field : FieldSpec
        Field size, attacked target after orientation, players per team, fallback fps.
    length, seconds : window length in frames, or in seconds (needs an fps)
    stride : frames between window starts
    teams : the two group names that are teams (default: every group except ``ball``)
    slots : player slots per group (default ``field.players_per_team``)
    min_players : windows where a group has fewer players tracked in every frame are
        skipped and logged (default ``field.players_per_team``)
    orientation : auto | column | period | window | none (see the module docstring)
    flip : "rotate" (180 degrees, default) or "mirror" (x only)
    mixed_possession : "drop" windows in which the offense changes (default) or label
        them by the "majority" offense
    """
    src = rec.source or rec.name
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {', '.join(ORIENTATIONS)}; got {orientation!r}")
    if flip not in ("rotate", "mirror"):
        raise ValueError(f"flip must be 'rotate' or 'mirror'; got {flip!r}")
    if mixed_possession not in ("drop", "majority"):
        raise ValueError(f"mixed_possession must be 'drop' or 'majority'; got {mixed_possession!r}")
    fps = rec.fps or field.fps
    if (length is None) == (seconds is None):
        raise ValueError("give exactly one of length (frames) or seconds")
    if seconds is not None:
        if not fps:
            raise ValueError(f"{src}: seconds={seconds} needs a frame rate; the recording and the field have none")
        length = max(int(round(seconds * fps)), 2)
    slots = int(slots or field.players_per_team)
    min_players = field.players_per_team if min_players is None else int(min_players)
    if min_players > slots:
        raise ValueError(f"min_players={min_players} exceeds slots={slots}")
    if "offense" not in rec.frame_data:
        raise ValueError(
            f"{src}: field 'offense' (per-frame index of the team on offense) is missing from frame_data "
            f"(has {sorted(rec.frame_data) or 'nothing'}); team windows need it"
        )
    gnames = list(rec.group_names)
    team_names = list(teams) if teams is not None else [g for g in gnames if g.lower() != "ball"]
    unknown = [t for t in team_names if t not in gnames]
    if unknown or len(team_names) != 2:
        raise ValueError(
            f"{src}: team windows need exactly two teams; got {team_names} (groups in the file: {gnames}); "
            "choose them with teams="
        )
    gidx = [gnames.index(t) for t in team_names]
    groups_arr = np.asarray(rec.individual_groups)
    members = {g: np.flatnonzero(groups_arr == gnames[g]) for g in gidx}
    if rec.n_keypoints != 1:
        log.info("%s: %d keypoints per individual; team windows use the first (%s)", src, rec.n_keypoints, rec.keypoint_names[0])
    pos = rec.position[:, :, 0, :]  # [T, I, 2]
    offense = np.asarray(rec.frame_data["offense"]).astype(np.int64)
    T = rec.n_frames

    starts = window_starts(T, length, stride)
    total = len(starts)
    if total == 0:
        raise NoWindowsError(f"{src}: no window of {length} frames fits in {T} frames")
    reasons: dict[str, int] = {}

    def drop(mask: np.ndarray, why: str) -> None:
        nonlocal starts
        n = int((~mask).sum())
        if n:
            reasons[why] = reasons.get(why, 0) + n
        starts = starts[mask]

    bad = np.concatenate([[0], np.cumsum(~rec.valid)])
    drop((bad[starts + length] - bad[starts]) == 0, "invalid frames")
    if "segment" in rec.frame_data:
        seg = np.asarray(rec.frame_data["segment"])
        drop(seg[starts] == seg[starts + length - 1], "segment breaks")
    win = starts[:, None] + np.arange(length)[None, :]
    off_win = offense[win]
    if mixed_possession == "drop":
        const = (off_win == off_win[:, :1]).all(axis=1) & (off_win[:, 0] >= 0)
        drop(const, "offense changes or is unknown")
        off = offense[starts]
    else:
        ok = (off_win >= 0).any(axis=1)
        drop(ok, "offense unknown")
        win = starts[:, None] + np.arange(length)[None, :]
        off_win = offense[win]
        counts = np.stack([(off_win == g).sum(axis=1) for g in gidx], axis=1)
        off = np.asarray(gidx)[counts.argmax(axis=1)]
    in_teams = np.isin(off, gidx)
    drop(in_teams, "offense is not one of the two teams")
    off = off[in_teams]

    # players tracked in every frame of a window
    finite = np.isfinite(pos).all(axis=-1)  # [T, I]
    cum = np.concatenate([np.zeros((1, finite.shape[1]), np.int64), np.cumsum(finite, axis=0)])
    full = (cum[starts + length] - cum[starts]) == length  # [W, I]
    chosen, present = {}, {}
    for g in gidx:
        m = members[g]
        fm = full[:, m]
        order = np.argsort(~fm, axis=1, kind="stable")[:, :slots]  # present players first, file order
        idx = m[order] if len(m) else np.zeros((len(starts), 0), np.int64)
        pres = np.take_along_axis(fm, order, axis=1) if len(m) else np.zeros((len(starts), 0), bool)
        if idx.shape[1] < slots:  # fewer team members than slots in the whole file
            padn = slots - idx.shape[1]
            idx = np.concatenate([idx, np.zeros((len(starts), padn), np.int64)], axis=1)
            pres = np.concatenate([pres, np.zeros((len(starts), padn), bool)], axis=1)
        extra = fm.sum(axis=1) > slots
        if extra.any():
            log.info("%s: %d windows have more than %d players of team %s tracked; the first %d in file order are kept",
                     src, int(extra.sum()), slots, gnames[g], slots)
        chosen[g], present[g] = idx, pres
    enough = np.ones(len(starts), dtype=bool)
    for g in gidx:
        n_g = present[g].sum(axis=1)
        short = np.flatnonzero(n_g < min_players)
        for w in short[:5]:
            log.info(
                "%s: window at frame %d: field 'players of team %s' has %d tracked in every frame; expected %d. Skipped",
                src, int(starts[w]), gnames[g], int(n_g[w]), min_players,
            )
        enough &= n_g >= min_players
    n_short = int((~enough).sum())
    if n_short:
        log.warning("%s: %d windows skipped for too few players (first at frame %d; details at log level INFO)",
                    src, n_short, int(starts[np.flatnonzero(~enough)[0]]))
    keep = enough
    starts, off = starts[keep], off[keep]
    if n_short:
        reasons["too few players"] = n_short
    for g in gidx:
        chosen[g], present[g] = chosen[g][keep], present[g][keep]
    W = len(starts)
    if W == 0:
        raise NoWindowsError(
            f"{src}: none of the {total} windows of {length} frames is usable ({', '.join(f'{k}: {v}' for k, v in reasons.items())})"
        )

    # orientation: does the offense attack towards x = field length?
    mode = orientation
    if mode == "auto":
        mode = "column" if "attack_direction" in rec.frame_data else ("period" if "period" in rec.frame_data else "window")
    win = starts[:, None] + np.arange(length)[None, :]
    if mode == "column":
        if "attack_direction" not in rec.frame_data:
            raise ValueError(f"{src}: orientation='column' needs frame_data['attack_direction'] (+1 / -1 per frame)")
        attack_right = np.asarray(rec.frame_data["attack_direction"])[win].sum(axis=1) > 0
    elif mode == "period":
        direction = _attack_right_by_period(rec, pos, members, offense, field.length)
        attack_right = direction[win].sum(axis=1) > 0
    elif mode == "window":
        allx = np.concatenate([pos[win][:, :, members[g], 0] for g in gidx], axis=2)
        attack_right = _nanmean(allx.reshape(W, -1), axis=1) > field.length / 2
    else:
        attack_right = np.zeros(W, dtype=bool)
    target_left = field.target[0] < field.length / 2
    do_flip = (attack_right == target_left) if mode != "none" else np.zeros(W, dtype=bool)

    def block(g: int) -> np.ndarray:
        xy = pos[win[:, :, None], chosen[g][:, None, :]]  # [W, L, S, 2]
        pres = present[g][:, None, :].repeat(length, axis=1)  # [W, L, S]
        xy = xy.copy()
        f = do_flip[:, None, None]
        xy[..., 0] = np.where(f, field.length - xy[..., 0], xy[..., 0])
        if flip == "rotate":
            xy[..., 1] = np.where(f, field.width - xy[..., 1], xy[..., 1])
        xy = np.where(pres[..., None], xy, 0.0)
        return np.concatenate([xy, pres[..., None].astype(np.float32)], axis=-1).reshape(W, length, slots * 3)

    other = {gidx[0]: gidx[1], gidx[1]: gidx[0]}
    off_states = np.empty((W, length, slots * 3), np.float32)
    def_states = np.empty_like(off_states)
    team_of_off = np.zeros(W, np.int64)
    blocks = {g: block(g) for g in gidx}
    for g in gidx:
        sel = off == g
        off_states[sel] = blocks[g][sel]
        def_states[sel] = blocks[other[g]][sel]
        team_of_off[sel] = gidx.index(g)
    states = np.stack([off_states, def_states], axis=1).reshape(2 * W, length, slots * 3)
    labels = np.tile(np.array([1, 0], np.int64), W)
    team_col = np.stack([team_of_off, 1 - team_of_off], axis=1).reshape(-1)
    dropped = total - W
    log.info(
        "%s: %d team windows of %d frames (stride %d) -> %d offense + %d defense; %d of %d dropped (%s)",
        src, W, length, stride, W, W, dropped, total, ", ".join(f"{k}: {v}" for k, v in reasons.items()) or "none",
    )
    layout = {
        "kind": "team",
        "slots": slots,
        "channels": ["x", "y", "present"],
        "order": ["slot", "channel"],
        "field": field.to_dict(),
        "target": list(field.target),
        "units": field.units,
        "fps": fps,
        "teams": team_names,
        "orientation": mode,
        "flip": flip,
        "min_players": min_players,
    }
    return Trajectories(
        states=states,
        labels=labels,
        label_names=("defense", "offense"),
        factors={
            "offense": labels,
            "team": team_col,
            "possession": np.repeat(np.arange(W), 2),
            "flipped": np.repeat(do_flip.astype(np.int64), 2),
        },
        groups=np.full(2 * W, group, dtype=np.int64),
        starts=np.repeat(starts, 2),
        feature_names=[f"slot{j}/{c}" for j in range(slots) for c in ("x", "y", "present")],
        metadata={
            "source": rec.source,
            "recording": rec.name,
            "format": rec.format,
            "fps": fps,
            "layout": layout,
            "window_length": int(length),
            "stride": int(stride),
            "windows_dropped": {k: int(v) for k, v in reasons.items()},
            "possession": rec.metadata.get("possession"),
        },
    )


def recordings_to_team_windows(recordings: Sequence[Recording], field: FieldSpec, **kwargs) -> Trajectories:
    """Team windows of several recordings (recording ``i`` gets group id ``i``); see :func:`team_windows`."""
    recordings = list(recordings)
    parts, skipped = [], []
    for gi, rec in enumerate(recordings):
        try:
            parts.append(team_windows(rec, field, group=gi, **kwargs))
        except NoWindowsError as exc:
            if len(recordings) == 1:
                raise
            log.warning("skipping %s", exc)
            skipped.append(rec.name)
    if not parts:
        raise NoWindowsError(f"no recording yielded a usable team window (skipped: {', '.join(skipped)})")
    if len(parts) == 1:
        return parts[0]
    out = Trajectories.concatenate(parts)
    meta = dict(parts[0].metadata)
    meta["recordings"] = [
        {"group": int(p.groups[0]), "name": p.metadata.get("recording"), "source": p.metadata.get("source"),
         "windows": len(p)} for p in parts
    ]
    return replace(out, metadata=meta)
