"""From tracking files to split ``Trajectories``: the library side of ``nsprog data convert``.

:func:`load_windows` reads a file / folder / glob with :func:`~nsprog.data.loaders.load_recordings`
and cuts windows, either keypoint windows (``layout="pose"``, via
:meth:`Recording.to_trajectories`) or offense / defense team windows (``layout="team"``,
via :func:`~nsprog.data.teams.team_windows`). ``layout="auto"`` picks ``team`` for the
player-tracking formats (SportVU) and ``pose`` otherwise. :func:`split_windows` then makes
time-block (or group) splits in which overlapping windows never straddle two splits.
Experiment configs can call these directly with the same options as the CLI.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal, Sequence

from nsprog.data.loaders import FORMATS, load_recordings
from nsprog.data.recording import Recording, recordings_to_trajectories
from nsprog.data.splits import split_by_group, split_by_time
from nsprog.data.teams import get_field, recordings_to_team_windows
from nsprog.data.trajectories import Trajectories
from nsprog.settings import Settings, param

__all__ = ["WindowOptions", "load_windows", "recordings_to_windows", "split_windows", "parse_fractions", "suggest_domain"]

log = logging.getLogger("nsprog")
LAYOUTS = ("auto", "pose", "team")


@dataclass
class WindowOptions(Settings):
    """How recordings become windows (every field has the CLI option of the same name)."""

    window: int | None = param(None, ge=2)
    """window length in frames (or give window_seconds)"""
    window_seconds: float | None = param(None, gt=0)
    stride: int = param(1, ge=1)
    reduce: Literal["centre", "majority", "last"] = "centre"
    """per-frame labels -> window label: centre, majority or last"""
    layout: Literal["auto", "pose", "team"] = "auto"
    """pose (keypoints), team (offense/defense groups) or auto (team for SportVU formats)"""
    # pose windows
    individuals: list | None = None
    keypoints: list | None = None
    min_confidence: float | None = None
    zero_as_missing: bool = True
    max_gap: int = param(5, ge=0)
    labels_from_flags: list[str] | None = None
    # team windows
    field: str = "basketball"
    field_length: float | None = param(None, gt=0)
    field_width: float | None = param(None, gt=0)
    target: tuple[float, float] | None = None
    players_per_team: int | None = param(None, ge=1)
    slots: int | None = param(None, ge=1)
    min_players: int | None = param(None, ge=0)
    teams: list[str] | None = None
    orientation: Literal["auto", "column", "period", "window", "none"] = "auto"
    flip: Literal["rotate", "mirror"] = "rotate"
    mixed_possession: Literal["drop", "majority"] = "drop"

    def _extra_checks(self) -> list[str]:
        if (self.window is None) == (self.window_seconds is None):
            return ["window: give exactly one of window (frames) or window_seconds"]
        return []

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def suggest_domain(traj: Trajectories) -> str:
    """The feature domain that fits these windows: team, mouse (2+ animals) or openfield (1)."""
    layout = traj.metadata.get("layout") or {}
    if layout.get("kind") == "team":
        return "team"
    return "mouse" if len(layout.get("individuals", [])) >= 2 else "openfield"


def _frames(opts: WindowOptions, fps: float | None, where: str) -> int:
    if opts.window is not None:
        return int(opts.window)
    if not fps:
        raise ValueError(f"{where}: window_seconds needs a frame rate; the recording has none (pass fps=)")
    return max(int(round(opts.window_seconds * fps)), 2)


def recordings_to_windows(recs: Sequence[Recording], opts: WindowOptions, kind: str = "pose") -> Trajectories:
    """Windows of several recordings (recording ``i`` is group ``i``); ``kind`` is pose or team."""
    layout = kind if opts.layout == "auto" else opts.layout
    if layout == "team":
        fld = get_field(
            opts.field, length=opts.field_length, width=opts.field_width,
            target=None if opts.target is None else tuple(opts.target), players_per_team=opts.players_per_team,
        )
        fps = recs[0].fps or fld.fps
        traj = recordings_to_team_windows(
            recs, fld, length=_frames(opts, fps, recs[0].source), stride=opts.stride, teams=opts.teams,
            slots=opts.slots, min_players=opts.min_players, orientation=opts.orientation, flip=opts.flip,
            mixed_possession=opts.mixed_possession,
        )
    else:
        if opts.labels_from_flags:
            recs = [r.labels_from_flags(opts.labels_from_flags) for r in recs]
        traj = recordings_to_trajectories(
            recs, _frames(opts, recs[0].fps, recs[0].source), stride=opts.stride, reduce=opts.reduce,
            individuals=opts.individuals, keypoints=opts.keypoints, min_confidence=opts.min_confidence,
            zero_as_missing=opts.zero_as_missing, max_gap=opts.max_gap,
        )
    meta = dict(traj.metadata)
    meta["window_options"] = opts.to_dict()
    meta["domain"] = suggest_domain(traj)
    return replace(traj, metadata=meta)


def load_windows(
    path: str | Path,
    opts: WindowOptions,
    format: str = "auto",
    annotations: str | Path | None = None,
    **loader_options,
) -> Trajectories:
    """Read ``path`` (file, folder or glob) and cut windows as ``opts`` says."""
    recs = load_recordings(path, format=format, annotations=annotations, **loader_options)
    kinds = {FORMATS[r.format].kind if r.format in FORMATS else "pose" for r in recs}
    if len(kinds) > 1:
        raise ValueError(f"{path} mixes player-tracking and pose files ({sorted(kinds)}); convert them separately")
    traj = recordings_to_windows(recs, opts, kind=kinds.pop())
    meta = dict(traj.metadata)
    meta["input"] = str(path)
    meta["loader"] = {"format": recs[0].format, "options": {k: v for k, v in loader_options.items()},
                      "annotations": None if annotations is None else str(annotations)}
    return replace(traj, metadata=meta)


def parse_fractions(text: str | Sequence[float] | None, what: str = "--split-time") -> dict[str, float] | None:
    """``"0.7,0.15,0.15"`` -> {train: 0.7, val: 0.15, test: 0.15}; two values -> train / test."""
    if text is None:
        return None
    if isinstance(text, str):
        try:
            vals = [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"{what} expects comma-separated fractions such as 0.7,0.15,0.15; got {text!r}") from None
    else:
        vals = [float(v) for v in text]
    names = {1: ["all"], 2: ["train", "test"], 3: ["train", "val", "test"]}.get(len(vals))
    if names is None:
        raise ValueError(f"{what} expects 2 (train, test) or 3 (train, val, test) fractions; got {len(vals)}")
    return dict(zip(names, vals))


def split_windows(
    traj: Trajectories,
    split_time: str | Sequence[float] | None = None,
    split_group: str | Sequence[float] | None = None,
    seed: int = 0,
) -> dict[str, Trajectories]:
    """Time-block splits (per recording, in order) or whole-recording splits; ``{"all": traj}`` without either."""
    if split_time is not None and split_group is not None:
        raise ValueError("choose one of split_time and split_group")
    if split_time is not None:
        return split_by_time(traj, parse_fractions(split_time, "--split-time"))
    if split_group is not None:
        return split_by_group(traj, parse_fractions(split_group, "--split-group"), seed=seed)
    return {"all": traj}
