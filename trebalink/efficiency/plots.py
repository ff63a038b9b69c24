"""The data-efficiency figure (the paper's Figure 5), drawn with seaborn on
:func:`nsprog.figures.new_figure` (never pyplot): the test error (1 - MAP), MAP or macro F1
against the label fraction on a log axis, the mean over repeats as a line and one standard
deviation as a band, one colour per condition (the same condition has the same colour in
every figure: :func:`condition_colours`), a panel per classifier and fold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import seaborn as sns
from matplotlib.ticker import FuncFormatter

from nsprog.figures import new_figure, save_figure
from trebalink.efficiency.config import CLASSIFIERS, ClassifyConfig

__all__ = ["plot_efficiency", "condition_colours", "condition_marker", "CANONICAL_COLOURS", "CANONICAL_MARKERS"]

PALETTE = sns.color_palette("colorblind")
#: the standard condition names and their palette index (input grey, expert blue, learned warm colours)
CANONICAL_COLOURS = {"input": 7, "treba_none": 5, "treba_random": 8, "treba_expert": 0, "treba_learned1": 1,
                     "treba_learned2": 2, "treba_learned3": 3, "programs": 4}
_SPARE = (6, 9)


def condition_colours(names: list[str]) -> dict[str, tuple]:
    """Condition name -> colour: the standard names (and ``programs*``) always take the same
    colour; other names take the spare colours in order."""
    out, spare = {}, 0
    for n in names:
        key = n if n in CANONICAL_COLOURS else ("programs" if n.startswith("programs") else None)
        if key is not None:
            out[n] = PALETTE[CANONICAL_COLOURS[key]]
        else:
            out[n] = PALETTE[_SPARE[spare % len(_SPARE)]] if spare < len(_SPARE) else \
                sns.color_palette("husl", 12)[spare % 12]
            spare += 1
    return out


#: the standard condition names' markers (learned programs: triangles; the expert: a square)
CANONICAL_MARKERS = {"input": "X", "treba_none": "o", "treba_random": "D", "treba_expert": "s",
                     "treba_learned1": "^", "treba_learned2": "v", "treba_learned3": "<", "programs": "P"}
_SPARE_MARKERS = ("*", "h", "p", ">", "d")


def condition_marker(name: str, index: int) -> str:
    """The marker of a condition: fixed for the standard names, a spare one otherwise."""
    key = name if name in CANONICAL_MARKERS else ("programs" if name.startswith("programs") else None)
    return CANONICAL_MARKERS[key] if key is not None else _SPARE_MARKERS[index % len(_SPARE_MARKERS)]


def plot_efficiency(df, cfg: ClassifyConfig, path: str | Path) -> Path:
    """Mean line and std band per condition against the label fraction (log axis)."""
    metric = cfg.figure_metric
    data = df.copy()
    if metric == "error":
        data["value"] = 1.0 - data["map"]
        ylabel = "test error, 1 - MAP (log scale)"
    else:
        data["value"] = data[metric]
        ylabel = {"map": "test MAP", "macro_f1": "test macro F1"}[metric]
    data = data[np.isfinite(data["value"].astype(float))]
    present = set(df["fold"])
    folds = [f for f in cfg.fold_names() if f in present]  # the config's order
    panels = [(f, c) for f in folds for c in cfg.classifiers] if len(folds) > 1 else [(None, c) for c in cfg.classifiers]
    ncols = len(cfg.classifiers)
    nrows = max(1, len(panels) // ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(5.0 * ncols + 2.6, 4.0 * nrows + 0.8), sharey=True)
    colours = condition_colours([c.name for c in cfg.conditions])
    labels = {c.name: c.display for c in cfg.conditions}
    palette = {labels[n]: col for n, col in colours.items()}
    order = [c.display for c in cfg.conditions]
    markers = {c.display: condition_marker(c.name, i) for i, c in enumerate(cfg.conditions)}  # told apart without colour
    for i, (fold, clf) in enumerate(panels):
        ax = axes[i // ncols, i % ncols]
        sub = data[(data["classifier"] == clf) & ((data["fold"] == fold) if fold is not None else True)]
        if len(sub):
            shown = [o for o in order if o in set(sub["label"])]
            sns.lineplot(data=sub, x="fraction", y="value", hue="label", hue_order=shown, palette=palette,
                         style="label", style_order=shown, markers={o: markers[o] for o in shown}, dashes=False,
                         estimator="mean", errorbar="sd", markersize=5, linewidth=1.4, ax=ax, legend=(i == 0))
        ax.set_xscale("log")
        if metric == "error" and len(sub) and (sub["value"] > 0).all():
            ax.set_yscale("log")
            plain = FuncFormatter(lambda v, _: f"{v:g}")  # 0.02, not 2 x 10^-2
            ax.yaxis.set_major_formatter(plain)
            ax.tick_params(axis="y", which="minor", labelsize=7)
        fr = sorted(set(df["fraction"]))
        ax.set_xticks(fr)
        ax.set_xticklabels([f"{f:g}" for f in fr], fontsize=8)
        ax.minorticks_off() if metric != "error" else None
        ax.set_xlabel("labelled training items (% of the training split, log scale)")
        ax.set_ylabel(ylabel if i % ncols == 0 else "")
        where = f"fold {fold}, " if fold is not None else ""
        ax.set_title(f"{where}{CLASSIFIERS[clf]}", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    if metric == "error" and axes[0, 0].get_yscale() == "log":
        lo, hi = axes[0, 0].get_ylim()
        digits = "123456789" if hi / max(lo, 1e-12) < 4 else "1235"  # within half a decade: label every tick
        for ax in axes.ravel():
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[-1] in digits else ""))
    handles, names = axes[0, 0].get_legend_handles_labels()
    if axes[0, 0].get_legend() is not None:
        axes[0, 0].get_legend().remove()
    if handles:  # beside the panels, where it hides no curve
        fig.legend(handles, names, loc="outside right center", title="features", fontsize=8, title_fontsize=8)
    n_rep = cfg.sampling.samplings * len(cfg.seeds)
    empty = [f for f in sorted(set(df["fraction"])) if not (data["fraction"] == f).any()]
    if empty:
        fig.supxlabel(f"no point at {', '.join(f'{f:g}%' for f in empty)}: no sample of that size held positive and "
                      "negative items of every scorable behaviour ('no positives' / 'no negatives' rows in results.csv)", fontsize=8)
    fig.suptitle(f"{cfg.name}: behaviour classification against the share of labelled training items\n"
                 f"line: mean over {n_rep} repeats ({cfg.sampling.samplings} samplings x {len(cfg.seeds)} seeds); "
                 "band: one standard deviation", fontsize=10)
    return save_figure(fig, path)
