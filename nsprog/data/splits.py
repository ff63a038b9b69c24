"""Train / validation / test splits that never let overlapping windows straddle a split.

* ``split_random``: independent windows (the synthetic set); refuses windows that carry
  ``starts`` from a shared recording, because those overlap.
* ``split_by_group``: whole groups (videos, games, animals) go to one split.
* ``split_by_time``: each group's frames are cut into contiguous blocks in split order;
  a window belongs to a block only if all its frames lie inside it, windows that cross a
  block boundary are dropped.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from nsprog.data.trajectories import Trajectories

__all__ = ["split_random", "split_by_group", "split_by_time", "check_fractions"]


def check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    """Validate split fractions (positive, summing to 1 within 1e-6); keep their order."""
    if not fractions:
        raise ValueError("fractions must name at least one split, e.g. {'train': 0.8, 'val': 0.1, 'test': 0.1}")
    out = {str(k): float(v) for k, v in fractions.items()}
    bad = [k for k, v in out.items() if not (v > 0)]
    if bad:
        raise ValueError(f"split fractions must be > 0; got {', '.join(f'{k}={out[k]}' for k in bad)}")
    total = sum(out.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1; got {total:.6g} from {out}")
    return out


def _counts(n: int, fractions: dict[str, float]) -> list[int]:
    edges = np.round(np.cumsum([0.0] + list(fractions.values())) * n).astype(int)
    edges[-1] = n
    return list(np.diff(edges))


def split_random(traj: Trajectories, fractions: Mapping[str, float], seed: int = 0) -> dict[str, Trajectories]:
    """Shuffle independent windows into splits."""
    fr = check_fractions(fractions)
    if traj.starts is not None and traj.groups is not None:
        raise ValueError(
            "split_random would put overlapping windows of one recording in different splits; "
            "use split_by_time or split_by_group for windows cut from recordings"
        )
    perm = np.random.default_rng(seed).permutation(len(traj))
    out, pos = {}, 0
    for name, count in zip(fr, _counts(len(traj), fr)):
        if count == 0:
            raise ValueError(f"split {name!r} would be empty with {len(traj)} windows and fractions {fr}")
        out[name] = traj.subset(np.sort(perm[pos : pos + count]))
        pos += count
    return out


def split_by_group(traj: Trajectories, fractions: Mapping[str, float], seed: int = 0) -> dict[str, Trajectories]:
    """Assign whole groups to splits (shuffled under ``seed``), sizes as close to ``fractions`` as groups allow."""
    fr = check_fractions(fractions)
    if traj.groups is None:
        raise ValueError("split_by_group needs group ids (Trajectories.groups); these windows have none")
    groups = np.unique(traj.groups)
    if len(groups) < len(fr):
        raise ValueError(f"split_by_group needs at least {len(fr)} groups for splits {list(fr)}; found {len(groups)}")
    order = np.random.default_rng(seed).permutation(groups)
    sizes = {g: int(np.sum(traj.groups == g)) for g in groups}
    targets = {k: v * len(traj) for k, v in fr.items()}
    assignment: dict[str, list] = {k: [] for k in fr}
    filled = {k: 0 for k in fr}
    for i, g in enumerate(order):
        # one group for every split first, then always the split furthest below its target
        name = list(fr)[i] if i < len(fr) else max(fr, key=lambda k: targets[k] - filled[k])
        assignment[name].append(g)
        filled[name] += sizes[g]
    return {k: traj.subset(np.isin(traj.groups, v)) for k, v in assignment.items() if v}


def split_by_time(traj: Trajectories, fractions: Mapping[str, float]) -> dict[str, Trajectories]:
    """Contiguous time blocks per group, in split order (e.g. train first, then val, then test).

    Every group's frame range ``[min start, max start + frames)`` is cut at the fraction
    boundaries; a window is kept in a split only if it lies wholly inside that split's block.
    """
    fr = check_fractions(fractions)
    if traj.starts is None:
        raise ValueError("split_by_time needs window start frames (Trajectories.starts); these windows have none")
    groups = traj.groups if traj.groups is not None else np.zeros(len(traj), dtype=np.int64)
    length = traj.n_frames
    masks = {k: np.zeros(len(traj), dtype=bool) for k in fr}
    cum = np.cumsum([0.0] + list(fr.values()))
    for g in np.unique(groups):
        sel = groups == g
        s = traj.starts[sel]
        lo, hi = int(s.min()), int(s.max()) + length
        edges = lo + np.round(cum * (hi - lo)).astype(np.int64)
        edges[-1] = hi
        for i, name in enumerate(fr):
            inside = (s >= edges[i]) & (s + length <= edges[i + 1])
            m = np.zeros(len(traj), dtype=bool)
            m[np.flatnonzero(sel)[inside]] = True
            masks[name] |= m
    out = {}
    for name, m in masks.items():
        if not m.any():
            raise ValueError(
                f"time-block split {name!r} holds no complete window of {length} frames; "
                "use longer recordings, shorter windows or a larger fraction"
            )
        out[name] = traj.subset(m)
    return out
