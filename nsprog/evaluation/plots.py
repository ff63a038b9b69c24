"""Figures of a fit (PNG, drawn without pyplot): training trajectories, the neural latent,
the programs' outputs and example windows of each cluster.

Every figure has a title that says what it shows, labelled axes with units, one
colour-blind-safe palette (seaborn's ``colorblind``) and the same colour for the same class
value in every panel and figure: the sorted values of a column take the palette's colours in
order, so class 0 is always blue and class 1 always orange.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Arc, Circle, Rectangle
from sklearn.decomposition import PCA

from nsprog.data.trajectories import Trajectories
from nsprog.figures import new_figure, save_figure

__all__ = ["plot_trajectories", "plot_latent", "plot_program_values", "plot_cluster_examples", "plot_fit",
           "class_colours"]

PALETTE = sns.color_palette("colorblind")
_CORNERS = {"tl", "tr", "bl", "br", "corner_tl", "corner_tr", "corner_bl", "corner_br", "topleft", "topright",
            "bottomleft", "bottomright"}
#: body keypoints joined into a spine line, nose to tail, by name (the first match of each group)
_SPINE = (("nose", "snout"), ("headcentre", "head_centre", "head"), ("neck",), ("bodycentre", "body_centre", "centre",
          "center", "centroid"), ("tailbase", "tail_base"), ("tailcentre", "tail_centre", "tail_mid"),
          ("tailtip", "tail_end", "tail_tip"))


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path, dpi=120)


def class_colours(values: np.ndarray) -> dict:
    """Sorted unique values of a column -> palette colour (the same value, the same colour)."""
    return {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(sorted(np.unique(values).tolist()))}


def _value_names(values, names: Sequence[str] | None) -> dict:
    """Display name of each value of a label column (its class name where the data have one)."""
    return {v: (f"{names[v]} ({v})" if names is not None and isinstance(v, (int, np.integer)) and 0 <= v < len(names)
                else str(v)) for v in sorted(np.unique(values).tolist())}


def plot_trajectories(traj: Trajectories, path, n: int = 50, boundaries: tuple[float, float] | None = (10.0, 10.0),
                      seed: int = 0) -> Path:
    """``n`` windows in the plane of the first two state dims, coloured by class, with the
    class boundaries (for the synthetic set: x = 10 and y = 10) dashed."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(traj), size=min(n, len(traj)), replace=False)
    fig, axs = new_figure(1, 1, figsize=(6.2, 5.6))
    ax = axs[0][0]
    labels = traj.labels if traj.labels is not None else np.zeros(len(traj), dtype=int)
    colours = class_colours(labels)
    names = _value_names(labels, traj.label_names)
    for i in idx:
        xy = traj.states[i, :, :2]
        c = colours[labels[i].item()]
        ax.plot(xy[:, 0], xy[:, 1], color=c, lw=0.8, alpha=0.75)
        ax.scatter(*xy[0], facecolor="white", edgecolor="0.2", s=14, zorder=3, linewidth=0.8)
        ax.scatter(*xy[-1], color=c, edgecolor="0.2", s=16, zorder=3, linewidth=0.5)
    if boundaries is not None:
        ax.axvline(boundaries[0], color="0.3", ls="--", lw=0.8)
        ax.axhline(boundaries[1], color="0.3", ls="--", lw=0.8)
    handles = [Line2D([], [], color=colours[v], lw=2, label=names[v]) for v in colours]
    handles += [Line2D([], [], marker="o", ls="", markerfacecolor="white", markeredgecolor="0.2", label="start"),
                Line2D([], [], marker="o", ls="", color="0.5", markeredgecolor="0.2", label="end")]
    ax.legend(handles=handles, title="class" if traj.labels is not None else None, fontsize=8, loc="best",
              framealpha=0.9)
    xy_names = traj.feature_names or ("x", "y")
    units = traj.metadata.get("units", "arbitrary units")
    ax.set(xlabel=f"{xy_names[0]} ({units})", ylabel=f"{xy_names[1]} ({units})")
    ax.set_aspect("equal", adjustable="datalim")
    title = f"{len(idx)} training trajectories, coloured by class"
    if boundaries is not None:
        title += f"\n(dashed: x = {boundaries[0]:g} and y = {boundaries[1]:g}, the class boundaries)"
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_latent(z: np.ndarray, colours: Mapping[str, np.ndarray], path, n_programs: int = 0,
                names: Mapping[str, Sequence[str] | None] | None = None) -> Path:
    """The neural latent (PCA to 2-D when it has more than 2 dims), one panel per column it is
    coloured by; every panel shares the axes, and a value has the same colour in every panel."""
    z = np.asarray(z, dtype=float)
    names = names or {}
    if z.shape[1] == 0:
        fig, axs = new_figure(1, 1, figsize=(5, 2.5))
        axs[0][0].text(0.5, 0.5, "no neural latent: every latent dimension is a program", ha="center", va="center")
        axs[0][0].set_axis_off()
        return _save(fig, path)
    if z.shape[1] > 2:
        pca = PCA(n_components=2, random_state=0).fit(z)
        xy = pca.transform(z)
        share = pca.explained_variance_ratio_
        axes = (f"PC 1 ({100 * share[0]:.0f}% of the variance)", f"PC 2 ({100 * share[1]:.0f}%)")
    elif z.shape[1] == 2:
        xy, axes = z, ("neural latent dim 1", "neural latent dim 2")
    else:
        jitter = np.random.default_rng(0).normal(0, 0.05 * (z.std() + 1e-12), len(z))
        xy, axes = np.column_stack([z[:, 0], jitter]), ("neural latent dim 1", "jitter (no meaning)")
    k = len(colours)
    fig, axs = new_figure(1, k, figsize=(4.4 * k, 4.6), sharex=True, sharey=True)
    for ax, (col, values) in zip(axs[0], colours.items()):
        values = np.asarray(values)
        cmap = class_colours(values)
        labels = _value_names(values, names.get(col))
        for v, c in cmap.items():
            m = values == v
            ax.scatter(xy[m, 0], xy[m, 1], s=5, color=c, linewidth=0, alpha=0.7, label=labels[v])
        ax.set(xlabel=axes[0], ylabel=axes[1] if ax is axs[0][0] else "")
        ax.set_title(f"coloured by {col}", fontsize=10)
        ax.legend(title=col, fontsize=8, markerscale=2.5, framealpha=0.9)
    what = (f"with {n_programs} program(s): a factor that a program holds should be gone from the neural latent "
            "(mixed colours in its panel);\na factor that no program holds stays (separated colours)") if n_programs \
        else "with no programs, the neural latent holds every factor: separated colours are expected"
    fig.suptitle(f"Neural latent (posterior means) of the test windows\n{what}", fontsize=10)
    return _save(fig, path)


def _short(text: str, width: int = 48, lines: int = 3) -> str:
    wrapped = textwrap.wrap(text, width)
    return "\n".join(wrapped[:lines]) + (" ..." if len(wrapped) > lines else "")


def plot_program_values(values: np.ndarray, programs: Sequence[str], colour_by: np.ndarray, colour_name: str, path,
                        value_names: Sequence[str] | None = None) -> Path:
    """Each program's output (logit) on the test windows, one panel per program, split by
    ``colour_by`` (the true label where the data have one; a program's own bit would split
    its output at 0 by construction)."""
    k = values.shape[1]
    colour_by = np.asarray(colour_by)
    cmap = class_colours(colour_by)
    labels = _value_names(colour_by, value_names)
    fig, axs = new_figure(1, max(k, 1), figsize=(5.0 * max(k, 1), 4.2))
    for j in range(k):
        ax = axs[0][j]
        v = values[:, j]
        bins = np.histogram_bin_edges(v, bins=50)
        for val, c in cmap.items():
            m = colour_by == val
            ax.hist(v[m], bins=bins, histtype="stepfilled", alpha=0.3, color=c, label=labels[val])
            ax.hist(v[m], bins=bins, histtype="step", lw=1.2, color=c)
        ax.axvline(0, color="0.2", ls="--", lw=0.9)
        ax.set(xlabel="program output (logit); bit = 1 right of the dashed line", ylabel="test windows")
        ax.set_title(f"program {j + 1}: {_short(programs[j])}", fontsize=9)
        ax.legend(title=colour_name, fontsize=8, framealpha=0.9)
    fig.suptitle(f"Program outputs on the test windows, by {colour_name}", fontsize=10)
    return _save(fig, path)


def _court(ax, field: dict) -> None:
    """Field outline and markings: a basketball half of the court in feet (NBA markings at
    the attacked basket), a soccer pitch in metres, otherwise the outline and the target."""
    length, width = field.get("length"), field.get("width")
    name = field.get("name")
    line = dict(fill=False, lw=0.8, color="0.45")
    if length and width:
        ax.add_patch(Rectangle((0, 0), length, width, **line))
        ax.plot([length / 2, length / 2], [0, width], color="0.45", lw=0.8)
    if name == "basketball" and length and width:
        cy = width / 2
        ax.add_patch(Circle((length / 2, cy), 6, **line))
        for x0, side in ((0.0, 1), (length, -1)):
            hoop = x0 + side * 5.25
            ax.add_patch(Rectangle((min(x0, x0 + side * 19), cy - 8), 19, 16, **line))  # the key
            ax.add_patch(Arc((x0 + side * 19, cy), 12, 12, theta1=-90 if side > 0 else 90,
                             theta2=90 if side > 0 else 270, lw=0.8, color="0.45"))
            ax.add_patch(Arc((hoop, cy), 47.5, 47.5, theta1=-68 if side > 0 else 112, theta2=68 if side > 0 else 248,
                             lw=0.8, color="0.45"))  # three-point arc
            ax.plot([x0, x0 + side * 14], [cy - 22, cy - 22], color="0.45", lw=0.8)
            ax.plot([x0, x0 + side * 14], [cy + 22, cy + 22], color="0.45", lw=0.8)
            ax.add_patch(Circle((hoop, cy), 0.75, **line))
    elif name == "soccer" and length and width:
        cy = width / 2
        ax.add_patch(Circle((length / 2, cy), 9.15, **line))
        for x0, side in ((0.0, 1), (length, -1)):
            ax.add_patch(Rectangle((min(x0, x0 + side * 16.5), cy - 20.16), 16.5, 40.32, **line))
            ax.add_patch(Rectangle((min(x0, x0 + side * 5.5), cy - 9.16), 5.5, 18.32, **line))


def _draw_team(ax, states: np.ndarray, layout: dict) -> None:
    s = states.reshape(states.shape[0], -1, 3)
    for p in range(s.shape[1]):
        present = s[:, p, 2] > 0.5
        if not present.any():
            continue
        c = PALETTE[p % len(PALETTE)]
        ax.plot(s[present, p, 0], s[present, p, 1], lw=1.0, color=c, alpha=0.9)
        first, last = np.flatnonzero(present)[[0, -1]]
        ax.scatter(s[first, p, 0], s[first, p, 1], s=12, facecolor="white", edgecolor=c, zorder=3, linewidth=0.9)
        ax.scatter(s[last, p, 0], s[last, p, 1], s=14, color=c, zorder=3)


def _spine(keypoints: Sequence[str]) -> list[int]:
    lower = [k.lower() for k in keypoints]
    order = []
    for group in _SPINE:
        hit = next((lower.index(g) for g in group if g in lower), None)
        if hit is not None and hit not in order:
            order.append(hit)
    return order


def _draw_pose(ax, states: np.ndarray, layout: dict) -> None:
    inds = layout.get("individuals") or ["0"]
    kps = layout.get("keypoints") or []
    k = max(len(kps), 1)
    s = states.reshape(states.shape[0], len(inds), k, 2)
    corner = [i for i, n in enumerate(kps) if n.lower() in _CORNERS]
    arena = corner + ([i for i, n in enumerate(kps) if n.lower() in ("centre", "center", "arena_centre")]
                      if len(corner) == 4 else [])  # with four corners, a bare "centre" is the arena's
    body = [i for i in range(k) if i not in arena]
    for i in arena:
        if i not in corner:
            p = s[:, 0, i].mean(0)
            ax.scatter(*p, marker="+", s=30, color="0.45")
    if len(corner) == 4:
        pts = s[:, 0, corner].mean(0)
        hull = pts[np.argsort(np.arctan2(pts[:, 1] - pts[:, 1].mean(), pts[:, 0] - pts[:, 0].mean()))]
        ax.fill(hull[:, 0], hull[:, 1], fill=False, lw=0.8, color="0.45")
    spine = [i for i in _spine(kps) if i in body]
    centre = s.shape[0] // 2
    for a in range(len(inds)):
        c = PALETTE[a % len(PALETTE)]
        track = s[:, a, body].mean(axis=1)
        ax.plot(track[:, 0], track[:, 1], lw=0.8, ls=":", color=c)
        ax.scatter(*track[0], s=12, facecolor="white", edgecolor=c, zorder=3, linewidth=0.9)
        ax.scatter(*track[-1], s=14, color=c, zorder=3)
        pts = s[centre, a]
        ax.scatter(pts[body, 0], pts[body, 1], s=5, color=c, zorder=4)
        if len(spine) > 1:
            ax.plot(pts[spine, 0], pts[spine, 1], lw=1.4, color=c, zorder=4)


def _limits(traj: Trajectories, picks: np.ndarray, layout: dict) -> tuple[tuple, tuple, str]:
    """Shared axis limits and the unit, so that every panel has the same scale."""
    kind = layout.get("kind")
    if kind == "team":
        field = layout.get("field") or {}
        if field.get("length") and field.get("width"):
            pad = 2.0
            return (-pad, field["length"] + pad), (-pad, field["width"] + pad), layout.get("units", "")
    st = traj.states[picks]
    if kind == "keypoints":
        pts = st.reshape(len(picks), st.shape[1], -1, 2).reshape(-1, 2)
    elif kind == "team":
        s = st.reshape(len(picks), st.shape[1], -1, 3)
        pts = s[s[..., 2] > 0.5][:, :2]
    else:
        pts = st[..., :2].reshape(-1, 2)
    lo, hi = pts.min(0), pts.max(0)
    pad = 0.05 * (hi - lo).max()
    unit = layout.get("units") or ("px" if kind == "keypoints" else traj.metadata.get("units", "arbitrary units"))
    return (lo[0] - pad, hi[0] + pad), (lo[1] - pad, hi[1] + pad), unit


def plot_cluster_examples(traj: Trajectories, clusters: np.ndarray, path, per_cluster: int = 4, seed: int = 0,
                          cluster_names: Mapping[int, str] | None = None,
                          boundaries: tuple[float, float] | None = None) -> Path:
    """A few test windows of every cluster (one row per cluster), all panels on the same
    scale: player tracks on the field for team windows (the attacked target starred), the
    pose at the centre frame with each animal's path for pose windows, the path in the plane
    of the first two state dims otherwise. Open circles mark the start, dots the end."""
    layout = traj.metadata.get("layout") or {}
    kind = layout.get("kind")
    ids = np.unique(clusters)
    rng = np.random.default_rng(seed)
    picks = {c: rng.choice(np.flatnonzero(clusters == c), size=min(per_cluster, int((clusters == c).sum())),
                           replace=False) for c in ids}
    xlim, ylim, unit = _limits(traj, np.concatenate(list(picks.values())), layout)
    aspect = (ylim[1] - ylim[0]) / max(xlim[1] - xlim[0], 1e-9)
    panel_w = 3.0
    fig, axs = new_figure(len(ids), per_cluster, figsize=(panel_w * per_cluster + 0.8,
                                                           max(1.6, panel_w * aspect) * len(ids) + 1.2),
                          sharex=True, sharey=True)
    for r, c in enumerate(ids):
        for col in range(per_cluster):
            ax = axs[r][col]
            if col >= len(picks[c]):
                ax.set_axis_off()
                continue
            st = traj.states[picks[c][col]]
            if kind == "team":
                _court(ax, layout.get("field") or {})
                _draw_team(ax, st, layout)
                target = layout.get("target") or (layout.get("field") or {}).get("target")
                if target is not None:
                    ax.scatter(*target, marker="*", s=70, color="black", zorder=5)
            elif kind == "keypoints":
                _draw_pose(ax, st, layout)
            else:
                if boundaries is not None:
                    ax.axvline(boundaries[0], color="0.5", ls="--", lw=0.7)
                    ax.axhline(boundaries[1], color="0.5", ls="--", lw=0.7)
                ax.plot(st[:, 0], st[:, 1], lw=1, color=PALETTE[0])
                ax.scatter(*st[0, :2], s=12, facecolor="white", edgecolor=PALETTE[0], zorder=3)
                ax.scatter(*st[-1, :2], s=14, color=PALETTE[0], zorder=3)
            ax.set_xlim(*xlim)
            ax.set_ylim(*(ylim[::-1] if kind == "keypoints" else ylim))  # image coordinates: y grows downwards
            ax.set_aspect("equal")
            ax.tick_params(labelsize=7)
            if col == 0:
                name = (cluster_names or {}).get(int(c), f"cluster {c}")
                ax.set_ylabel(f"{name}\n({int((clusters == c).sum())} windows)\ny ({unit})", fontsize=8)
            if r == len(ids) - 1:
                ax.set_xlabel(f"x ({unit})", fontsize=8)
    handles = [Line2D([], [], marker="o", ls="", markerfacecolor="white", markeredgecolor="0.3", label="start"),
               Line2D([], [], marker="o", ls="", color="0.3", label="end")]
    what = {"team": "players' tracks (one colour per player; star: the attacked basket or goal)",
            "keypoints": "pose at the centre frame (dots, spine line) and each animal's path (dotted); "
                         "grey: the arena"}.get(
        kind, "paths in the plane of the first two state dims" + (
            f" (dashed: x = {boundaries[0]:g}, y = {boundaries[1]:g})" if boundaries is not None else ""))
    fig.legend(handles=handles, loc="outside upper right", fontsize=8, ncol=2)
    bits = " (a cluster's bits are its programs' outputs, program 1 first)" if cluster_names else ""
    fig.suptitle(f"Example test windows of each cluster (rows){bits}\non one scale: {what}", fontsize=10)
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
    columns = factors or [cfg.labels]
    colours = {c: test.label_column(c) for c in columns}
    plot_latent(est.transform(test), colours, folder / "neural_latent.png", n_programs=len(est.programs_),
                names={cfg.labels: test.label_names} if cfg.labels in columns else {})
    if est.programs_:
        clusters = est.predict(test)
        has_labels = cfg.labels in ("label", "labels") and test.labels is not None or cfg.labels in test.factors
        colour_by = test.label_column(cfg.labels) if has_labels else clusters
        plot_program_values(est.program_logits(test), [p.key() for p in est.programs_], colour_by,
                            cfg.labels if has_labels else "cluster", folder / "programs.png",
                            value_names=test.label_names if has_labels and cfg.labels in ("label", "labels") else None)
        k = len(est.programs_)
        names = {c: f"cluster {c}\nbits {format(c, f'0{k}b')}" for c in range(2**k)}
        plot_cluster_examples(test, clusters, folder / "cluster_examples.png", cluster_names=names,
                              boundaries=(10.0, 10.0) if test.metadata.get("domain") == "synthetic" else None)
