"""The table's figure (seaborn, drawn on :func:`nsprog.figures.new_figure`, never pyplot):
one row of panels per cluster count, one panel per metric; a bar per model at its median,
each run (seed, fold) a point on it; ceilings hatched in grey below a dashed line. Colours
from seaborn's colour-blind-safe palette."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nsprog.figures import new_figure, save_figure

__all__ = ["plot_table"]

_METRICS = {"purity": "purity", "nmi": "NMI", "ri": "Rand index (RI)", "ari": "adjusted Rand index (ARI)"}
_MARKERS = ["o", "^", "s", "D", "v", "P"]  # one per train/test fold
_GROUPS = {"baseline": "baselines", "programs": "programs (ours)", "ceiling": "ceilings (not compared)"}


def _colours() -> dict[str, tuple]:
    import seaborn as sns

    pal = sns.color_palette("colorblind")
    return {"baseline": pal[0], "programs": pal[1], "ceiling": pal[7]}


def _group(model: str) -> str:
    return "ceiling" if model in ("oracle", "supervised_program") else "programs" if model == "programs" else "baseline"


def plot_table(df, path: str | Path, title: str = "") -> Path:
    """Bars of the median per model, points per run, for each cluster count and metric."""
    import seaborn as sns
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    colours = _colours()
    folds = list(dict.fromkeys(df["fold"]))[:len(_MARKERS)]
    ks = sorted(set(df["clusters"]))
    sections = []
    for k in ks:
        sub = df[((df["clusters"] == k) & (df["model"] != "supervised_program")) | (df["model"] == "supervised_program")]
        if (sub["model"] != "supervised_program").any():
            sections.append((k, sub))
    n_rows = max(1, max(sub["row"].nunique() for _, sub in sections))
    fig, axes = new_figure(len(sections), len(_METRICS), figsize=(3.2 * len(_METRICS), 0.32 * n_rows * len(sections) + 1.2))
    for i, (k, sub) in enumerate(sections):
        order = list(dict.fromkeys(sub["row"]))
        groups = {r: _group(sub.loc[sub["row"] == r, "model"].iloc[0]) for r in order}
        order = [r for r in order if groups[r] != "ceiling"] + [r for r in order if groups[r] == "ceiling"]
        palette = {r: colours[groups[r]] for r in order}
        n_compared = sum(groups[r] != "ceiling" for r in order)
        for j, (metric, name) in enumerate(_METRICS.items()):
            ax = axes[i, j]
            sns.barplot(data=sub, y="row", x=metric, hue="row", order=order, hue_order=order, palette=palette,
                        estimator=np.median, errorbar=None, orient="h", legend=False, ax=ax)
            for fold, marker in zip(folds, _MARKERS):
                sns.stripplot(data=sub[sub["fold"] == fold], y="row", x=metric, order=order, color="black", size=3,
                              marker=marker, orient="h", ax=ax)
            for r, bars in zip(order, ax.containers):
                if groups[r] == "ceiling":
                    for bar in bars:
                        bar.set_hatch("//")
                        bar.set_edgecolor("white")
            if n_compared < len(order):
                ax.axhline(n_compared - 0.5, color="0.3", lw=0.8, ls="--")
            ax.set_xlabel(name)
            ax.set_ylabel(f"{k} clusters" if j == 0 else "")
            if j:
                ax.set_yticklabels([])
            lo = min(0.0, float(sub[metric].min()))
            ax.set_xlim(lo - 0.02 * (lo < 0), 1.0)
            ax.grid(axis="x", color="0.9", lw=0.6)
            ax.set_axisbelow(True)
    present = dict.fromkeys(_group(m) for m in df["model"])
    handles = [Patch(facecolor=colours[g], hatch="//" if g == "ceiling" else None, edgecolor="white", label=_GROUPS[g])
               for g in _GROUPS if g in present]
    if len(folds) > 1:
        handles += [Line2D([], [], ls="", marker=m, color="black", markersize=4, label=f"one seed, fold {f}")
                    for f, m in zip(folds, _MARKERS)]
    else:
        handles.append(Line2D([], [], ls="", marker="o", color="black", markersize=3, label="one run (seed)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False,
               title="bar = median over runs")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
