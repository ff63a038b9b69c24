"""Plots: learned trajectories against the safe region, and the results table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nsprog.figures import new_figure, save_figure
from nsprog.safety.benchmarks import Benchmark
from nsprog.safety.box import grid_pieces
from nsprog.safety.interpret import run_program
from nsprog.safety.verify import as_dtype

__all__ = ["plot_trajectories", "plot_table"]


def plot_trajectories(bench: Benchmark, modules: dict, path: str | Path, n: int = 40, n_boxes: int = 12,
                      seed: int = 0, title: str | None = None, verifier_components: int | None = None) -> Path:
    """Concrete trajectories of ``n`` uniform inputs (red when unsafe), the join intervals of
    ``n_boxes`` verifier pieces spread over the input box (shaded blue), and the safe region
    of every plotted variable."""
    mods = as_dtype(modules, torch.float64)
    gen = torch.Generator().manual_seed(seed)
    x0 = bench.input_box.to(torch.float64).sample(n, generator=gen)
    per_dim = verifier_components or bench.defaults["verifier_components"]
    total = per_dim ** bench.n_inputs
    if bench.n_inputs == 1:
        idx = torch.linspace(0, total - 1, min(n_boxes, total)).round().long()
    else:
        idx = torch.randperm(total, generator=gen)[:n_boxes] if total < 2**62 else torch.randint(0, total, (n_boxes,))
    lo, hi = bench.input_lo.double(), bench.input_hi.double()
    with torch.no_grad():
        conc = run_program(bench.program, mods, x0, "concrete")
        ok = bench.spec.satisfied(conc.records).numpy()
        pieces = grid_pieces(lo, hi, per_dim, idx)
        sym = run_program(bench.program, mods, pieces, "join")
    import seaborn as sns
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    pal = sns.color_palette("colorblind")
    safe_c, unsafe_c, band_c = pal[2], pal[3], pal[0]
    vars_ = list(bench.plot_vars)
    fig, axes = new_figure(1, len(vars_), figsize=(5.4 * len(vars_), 4.2))
    for ax, var in zip(axes[0], vars_):
        y = conc.records[var].numpy()
        steps = np.arange(y.shape[1])
        box = sym.records[var]
        blo, bhi = box.lo.numpy(), box.hi.numpy()
        ymin = min(np.nanmin(y), np.nanmin(blo[np.isfinite(blo)]) if np.isfinite(blo).any() else np.nanmin(y))
        ymax = max(np.nanmax(y), np.nanmax(bhi[np.isfinite(bhi)]) if np.isfinite(bhi).any() else np.nanmax(y))
        for a, b, c in bench.spec.bounds(var):  # show the finite safe bounds
            for v in (a.numpy(), b.numpy()):
                fin = v[np.isfinite(v)]
                if fin.size and not c.absolute:
                    ymin, ymax = min(ymin, fin.min()), max(ymax, fin.max())
        pad = 0.05 * (ymax - ymin + 1e-9)
        ymin, ymax = ymin - pad, ymax + pad
        for a, b, c in bench.spec.bounds(var):
            a, b = a.numpy(), b.numpy()
            if c.absolute:  # unsafe band (-a, a)
                ax.fill_between(steps, -a, a, step="mid", color=unsafe_c, alpha=0.15, lw=0)
            else:
                ax.fill_between(steps, np.clip(a, ymin, ymax), np.clip(b, ymin, ymax), step="mid", color=safe_c,
                                alpha=0.15, lw=0)
        for i in range(blo.shape[0]):
            ax.fill_between(steps, np.clip(blo[i], ymin, ymax), np.clip(bhi[i], ymin, ymax), color=band_c,
                            alpha=0.10, lw=0)
        for i in np.argsort(~ok):  # unsafe runs drawn last, on top
            ax.plot(steps, y[i], color="0.55" if ok[i] else unsafe_c, lw=0.8 if ok[i] else 1.1, alpha=0.8)
        ax.set_ylim(ymin, ymax)
        ax.set_xlabel("recorded step (loop iteration)")
        ax.set_ylabel(f"{var} (the benchmark's units)")
        absolute = any(c.absolute for _, _, c in bench.spec.bounds(var))
        handles = [Patch(color=unsafe_c if absolute else safe_c, alpha=0.3,
                         label="unsafe region" if absolute else "safe region"),
                   Patch(color=band_c, alpha=0.3, label=f"verifier intervals of {len(idx)} input pieces"),
                   Line2D([], [], color="0.55", label=f"safe concrete runs ({int(ok.sum())} of {len(ok)})"),
                   Line2D([], [], color=unsafe_c, label=f"unsafe concrete runs ({int((~ok).sum())})")]
        ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.9)
    fig.suptitle((title or f"{bench.name}: learned trajectories and the safe region") + "\na piece is provably safe "
                 "when its whole interval band stays in the safe region", fontsize=10)
    return save_figure(fig, path, dpi=110)


def plot_table(df, path: str | Path) -> Path:
    """Provably-safe share and test data loss against training size, per benchmark and mode
    (median over seeds, bars from min to max)."""
    import seaborn as sns

    df = df.assign(train_size=df["train_size"].astype(str))  # categorical x axis, in the table's order
    benches = list(dict.fromkeys(df["benchmark"]))
    fig, axes = new_figure(2, len(benches), figsize=(4.2 * len(benches), 6.6))
    dodge = 0.3 if df["mode"].nunique() > 1 else False  # seaborn divides by (modes - 1)
    for j, b in enumerate(benches):
        sub = df[df["benchmark"] == b]
        for i, (metric, label) in enumerate((("provably_safe", "provably safe share"),
                                             ("test_data_loss", "test data loss (MSE)"))):
            ax = axes[i][j]
            sns.pointplot(data=sub, x="train_size", y=metric, hue="mode", estimator=np.median,
                          errorbar=("pi", 100), dodge=dodge, ax=ax, markersize=4, linewidth=1.2, capsize=0.1,
                          palette="colorblind", hue_order=[m for m in ("only_data", "diffai", "dse")
                                                           if m in set(df["mode"])])
            ax.set_title(b if i == 0 else "")
            ax.set_xlabel("training trajectories")
            ax.set_ylabel(label)
            if metric == "test_data_loss":
                ax.set_yscale("log")
            else:
                ax.set_ylim(-0.03, 1.03)
            leg = ax.get_legend()
            if i == 0 and j == 0 and leg is not None:
                fig.legend(leg.legend_handles, [t.get_text() for t in leg.get_texts()], title="training mode",
                           loc="outside upper right", fontsize=8, ncol=3)
            if leg is not None:
                leg.remove()
    fig.suptitle("nsprog safety per benchmark: provably safe share (top) and test data loss (bottom) against the "
                 "number of training trajectories\nmedian over seeds; bars from the lowest to the highest seed",
                 fontsize=10)
    return save_figure(fig, path, dpi=110)
