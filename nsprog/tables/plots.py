"""The table's figure (seaborn, drawn on :func:`nsprog.figures.new_figure`, never pyplot):
one row of panels per cluster count, one panel per metric; a bar per model at its median,
each run (seed, fold) a point on it; ceilings in grey."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nsprog.figures import new_figure, save_figure

__all__ = ["plot_table"]

_METRICS = {"purity": "Purity", "nmi": "NMI", "ri": "RI", "ari": "ARI"}
_COLOURS = {"baseline": "#4C72B0", "programs": "#DD8452", "ceiling": "#9a9a9a"}


def _group(model: str) -> str:
    return "ceiling" if model in ("oracle", "supervised_program") else "programs" if model == "programs" else "baseline"


def plot_table(df, path: str | Path, title: str = "") -> Path:
    """Bars of the median per model, points per run, for each cluster count and metric."""
    import seaborn as sns

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
        palette = {r: _COLOURS[_group(sub.loc[sub["row"] == r, "model"].iloc[0])] for r in order}
        for j, (metric, name) in enumerate(_METRICS.items()):
            ax = axes[i, j]
            sns.barplot(data=sub, y="row", x=metric, hue="row", order=order, hue_order=order, palette=palette,
                        estimator=np.median, errorbar=None, orient="h", legend=False, ax=ax)
            sns.stripplot(data=sub, y="row", x=metric, order=order, color="black", size=3, orient="h", ax=ax)
            ax.set_xlabel(name)
            ax.set_ylabel(f"{k} clusters" if j == 0 else "")
            if j:
                ax.set_yticklabels([])
            lo = min(0.0, float(sub[metric].min()))
            ax.set_xlim(lo, 1.0)
    if title:
        fig.suptitle(f"{title}: median per model (bars), each run (points); grey = ceilings")
    return save_figure(fig, path)
