"""Figures of a fit (seaborn, PNG): trajectories, the neural latent in 2-D, program outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from sklearn.decomposition import PCA

from nsprog.data.trajectories import Trajectories
from nsprog.figures import new_figure, save_figure

__all__ = ["plot_trajectories", "plot_latent", "plot_program_values"]


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path, dpi=110)


def plot_trajectories(traj: Trajectories, path, n: int = 50, boundaries: tuple[float, float] | None = (10.0, 10.0),
                      seed: int = 0) -> Path:
    """``n`` windows drawn in the plane of the first two state dims: start green, end blue,
    colour = class, dashed class boundaries (for the synthetic set: x = 10 and y = 10)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(traj), size=min(n, len(traj)), replace=False)
    fig, axs = new_figure(1, 1, figsize=(5.5, 5))
    ax = axs[0][0]
    palette = sns.color_palette("tab10")
    names = traj.label_names or ()
    for i in idx:
        xy = traj.states[i, :, :2]
        lab = int(traj.labels[i]) if traj.labels is not None else 0
        ax.plot(xy[:, 0], xy[:, 1], color=palette[lab % 10], lw=0.8, alpha=0.7)
        ax.scatter(*xy[0], color="green", s=10, zorder=3)
        ax.scatter(*xy[-1], color="blue", s=10, zorder=3)
    if boundaries is not None:
        ax.axvline(boundaries[0], color="k", ls="--", lw=0.8)
        ax.axhline(boundaries[1], color="k", ls="--", lw=0.8)
    handles = [Line2D([], [], color=palette[k % 10], label=names[k] if k < len(names) else str(k))
               for k in sorted(set(int(v) for v in (traj.labels[idx] if traj.labels is not None else [0])))]
    handles += [Line2D([], [], color="green", marker="o", ls="", label="start"),
                Line2D([], [], color="blue", marker="o", ls="", label="end")]
    ax.legend(handles=handles, fontsize=7, loc="best")
    names_xy = traj.feature_names or ("dim 0", "dim 1")
    ax.set(xlabel=names_xy[0], ylabel=names_xy[1], title=f"{len(idx)} training trajectories")
    return _save(fig, path)


def plot_latent(z: np.ndarray, colours: Mapping[str, np.ndarray], path, title: str = "neural latent") -> Path:
    """The latent reduced to 2-D by PCA (or shown as is when it has <= 2 dims), one panel per colouring."""
    z = np.asarray(z, dtype=float)
    if z.shape[1] == 0:
        fig, axs = new_figure(1, 1, figsize=(4, 3))
        ax = axs[0][0]
        ax.text(0.5, 0.5, "no neural latent (every dimension is a program)", ha="center", va="center")
        ax.set_axis_off()
        return _save(fig, path)
    if z.shape[1] > 2:
        xy, axes = PCA(n_components=2, random_state=0).fit_transform(z), ("PC 1", "PC 2")
    elif z.shape[1] == 2:
        xy, axes = z, ("z 1", "z 2")
    else:
        xy, axes = np.column_stack([z[:, 0], np.random.default_rng(0).normal(0, 0.05, len(z))]), ("z 1", "jitter")
    fig, axs = new_figure(1, len(colours), figsize=(4.6 * len(colours), 4.2))
    for ax, (name, c) in zip(axs[0], colours.items()):
        sns.scatterplot(x=xy[:, 0], y=xy[:, 1], hue=np.asarray(c).astype(str), s=6, linewidth=0, ax=ax, palette="tab10")
        ax.set(xlabel=axes[0], ylabel=axes[1], title=f"{title}: coloured by {name}")
        ax.legend(title=name, fontsize=7, markerscale=2)
    return _save(fig, path)


def plot_program_values(values: np.ndarray, names: list[str], clusters: np.ndarray, path) -> Path:
    """Distribution of each program's output (logit) per cluster."""
    k = values.shape[1]
    fig, axs = new_figure(1, max(k, 1), figsize=(4.6 * max(k, 1), 3.6))
    for j in range(k):
        ax = axs[0][j]
        sns.histplot(x=values[:, j], hue=np.asarray(clusters).astype(str), bins=60, element="step", ax=ax,
                     palette="tab10", stat="count", common_norm=False)
        ax.axvline(0, color="k", ls="--", lw=0.8)
        ax.set(xlabel="program output (logit; bit = 1 right of the dashed line)", title=names[j])
    return _save(fig, path)


def _draw_team(ax, states: np.ndarray, layout: dict) -> None:
    field = layout.get("field") or {}
    length, width = field.get("length"), field.get("width")
    if length and width:
        ax.add_patch(Rectangle((0, 0), length, width, fill=False, lw=0.8, color="0.4"))
    target = layout.get("target") or field.get("target")
    if target is not None:
        ax.scatter(*target, marker="*", s=90, color="crimson", zorder=4)
    s = states.reshape(states.shape[0], -1, 3)
    for p in range(s.shape[1]):
        present = s[:, p, 2] > 0.5
        if present.any():
            ax.plot(s[present, p, 0], s[present, p, 1], lw=0.9, alpha=0.8)
            last = np.flatnonzero(present)[-1]
            ax.scatter(s[last, p, 0], s[last, p, 1], s=12, zorder=3)
    ax.set_aspect("equal")


def _draw_pose(ax, states: np.ndarray, layout: dict) -> None:
    inds = layout.get("individuals") or ["0"]
    kps = layout.get("keypoints") or []
    k = max(len(kps), 1)
    s = states.reshape(states.shape[0], len(inds), k, 2)
    centre = s.shape[0] // 2
    palette = sns.color_palette("tab10")
    for i in range(len(inds)):
        pts = s[centre, i]
        ax.plot(pts[:, 0], pts[:, 1], "-o", ms=2.5, lw=0.8, color=palette[i % 10], label=str(inds[i]))
        track = s[:, i].mean(axis=1)
        ax.plot(track[:, 0], track[:, 1], lw=0.6, ls=":", color=palette[i % 10])
    ax.set_aspect("equal")
    ax.invert_yaxis()  # image coordinates


def plot_cluster_examples(traj: Trajectories, clusters: np.ndarray, path, per_cluster: int = 4, seed: int = 0) -> Path:
    """A few windows of every cluster: player tracks on the field for team windows (target
    starred), keypoints at the centre frame (and each animal's path, dotted) for pose windows,
    the path in the plane of the first two state dims otherwise."""
    layout = traj.metadata.get("layout") or {}
    ids = np.unique(clusters)
    rng = np.random.default_rng(seed)
    fig, axs = new_figure(len(ids), per_cluster, figsize=(2.6 * per_cluster, 2.4 * len(ids)))
    for r, c in enumerate(ids):
        members = np.flatnonzero(clusters == c)
        pick = rng.choice(members, size=min(per_cluster, len(members)), replace=False)
        for col in range(per_cluster):
            ax = axs[r][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(pick):
                ax.set_axis_off()
                continue
            st = traj.states[pick[col]]
            if layout.get("kind") == "team":
                _draw_team(ax, st, layout)
            elif layout.get("kind") == "keypoints":
                _draw_pose(ax, st, layout)
            else:
                ax.plot(st[:, 0], st[:, 1], lw=1)
                ax.scatter(*st[0, :2], color="green", s=8)
                ax.scatter(*st[-1, :2], color="blue", s=8)
            if col == 0:
                ax.set_ylabel(f"cluster {c}\n({len(members)} windows)", fontsize=8)
    return _save(fig, path)


def plot_fit(est, splits: dict, cfg, folder: Path) -> None:
    """The figures of a fitted encoder (``nsprog fit``'s ``plots/``): training trajectories
    (synthetic data), the neural latent, the programs' outputs and example windows per cluster."""
    from nsprog.evaluation.scoring import usable_factors

    test = splits["test"]
    folder = Path(folder)
    if test.metadata.get("domain") == "synthetic":
        plot_trajectories(splits["train"], folder / "trajectories.png", boundaries=(10.0, 10.0))
    factors = usable_factors(test, cfg.factors)
    colours = {c: test.label_column(c) for c in (factors or [cfg.labels])}
    plot_latent(est.transform(test), colours, folder / "neural_latent.png",
                title=f"neural latent, {len(est.programs_)} program(s)")
    if est.programs_:
        logits = est.program_logits(test)
        clusters = est.predict(test)
        plot_program_values(logits, [p.key() for p in est.programs_], clusters, folder / "programs.png")
        plot_cluster_examples(test, clusters, folder / "cluster_examples.png")
