"""The report of a data-efficiency run: ``results.csv`` (one row per fold x condition x
classifier x fraction x repeat, with every behaviour's scores and the cost in seconds),
``table.md`` (mean ± std over the repeats per condition and fraction, which condition wins
where, the one-class flags, the cluster metrics and the steps), ``figure.png`` (the paper's
Figure 5) and ``cluster.csv``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from nsprog.utils import atomic_write
from trebalink.efficiency.cells import cell_key, plan_cells, read_cell
from trebalink.efficiency.config import CLASSIFIERS, ClassifyConfig
from trebalink.efficiency.steps import FoldData, load_arrays

__all__ = ["collect_results", "write_report", "write_cluster_metrics", "METRICS", "render_metric_table"]

#: row metric -> (column title, higher is better)
METRICS = {"map": ("MAP", True), "macro_f1": ("macro F1", True), "error_rate": ("error rate", False)}
_BEHAVIOUR_KEYS = ("status", "positives", "ap", "f1", "error", "pred_share", "true_share")


def collect_results(cfg: ClassifyConfig, out: str | Path, folds: dict[str, FoldData] | None = None):
    """A DataFrame with one row per finished cell (the columns of ``results.csv``)."""
    import pandas as pd


    order = {c.name: i for i, c in enumerate(cfg.conditions)}
    rows = []
    for cell in plan_cells(cfg):
        rec = read_cell(out, cell, cell_key(cfg, cell))
        if rec is None:
            continue
        cond = cfg.condition(cell.condition)
        row = {"fold": cell.fold, "condition": cell.condition, "label": cond.display, "kind": cond.kind,
               "with_input": cond.uses_input, "classifier": cell.classifier, "fraction": cell.fraction,
               "sampling": cell.sampling, "seed": cell.seed,
               "repeat": cell.sampling * len(cfg.seeds) + cfg.seeds.index(cell.seed),  # position in this config "n_train": rec["n_train"],
               "n_val": rec["n_val"], "n_test": rec["n_test"], "map": rec["map"], "macro_f1": rec["macro_f1"],
               "error_rate": rec["error_rate"], "status": rec["status"], "one_class": ";".join(rec["one_class"])}
        for b, entry in rec["behaviours"].items():
            for k in _BEHAVIOUR_KEYS:
                row[f"{k}[{b}]"] = entry.get(k)
        row.update(seconds=rec["seconds"], wall_seconds=rec["wall_seconds"], key=rec["key"],
                   _order=order[cell.condition], _clf=cfg.classifiers.index(cell.classifier))
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        df = df.sort_values(["_order", "_clf", "fold", "fraction", "repeat"], kind="stable").reset_index(drop=True)
        for m in METRICS:
            df[m] = df[m].astype(float)
    return df


def _fmt(v) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.3f}"


def _stats(values: np.ndarray, planned: int) -> dict:
    v = values[np.isfinite(values)]
    return {"mean": float(v.mean()) if len(v) else np.nan, "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "n": len(v), "planned": planned}


def render_metric_table(df, cfg: ClassifyConfig, metric: str, classifier: str, fractions: list[float],
                        planned: int) -> list[str]:
    """Rows: conditions; columns: fractions; cells ``mean ± std`` (``(k/n)`` when only k of the
    n repeats could be scored; ``⚑k`` when k repeats predicted one class for > 95% of the test
    items). The best mean of each column is bold."""
    sub = df[df["classifier"] == classifier]
    title, higher = METRICS[metric]
    stats = {}
    for c in cfg.conditions:
        for f in fractions:
            g = sub[(sub["condition"] == c.name) & (sub["fraction"] == f)]
            s = _stats(g[metric].to_numpy(dtype=float), planned)
            s["flags"] = int((g["one_class"].astype(str) != "").sum()) if len(g) else 0
            s["rows"] = len(g)
            stats[(c.name, f)] = s
    best = {}
    for f in fractions:
        means = [stats[(c.name, f)]["mean"] for c in cfg.conditions if np.isfinite(stats[(c.name, f)]["mean"])]
        best[f] = (max(means) if higher else min(means)) if means else np.nan
    lines = [f"| condition | " + " | ".join(f"{f:g}%" for f in fractions) + " |",
             "|---|" + "---:|" * len(fractions)]
    for c in cfg.conditions:
        cells = []
        for f in fractions:
            s = stats[(c.name, f)]
            if not s["rows"]:
                cells.append("(not run)")
                continue
            if not s["n"]:
                cells.append(f"- (0/{s['planned']})")
                continue
            text = _fmt(s["mean"]) + (f" ± {_fmt(s['std'])}" if s["n"] > 1 else "")
            if np.isclose(s["mean"], best[f]):
                text = f"**{text}**"
            if s["n"] < s["planned"]:
                text += f" ({s['n']}/{s['planned']})"
            if s["flags"]:
                text += f" ⚑{s['flags']}"
            cells.append(text)
        lines.append(f"| {c.display} | " + " | ".join(cells) + " |")
    return lines


def _winners(df, cfg: ClassifyConfig, classifier: str, fractions: list[float]) -> list[str]:
    """Per fraction: the best condition by mean MAP, the runner-up, and whether the gap is
    larger than the larger of their standard deviations; then learned vs expert vs random."""
    sub = df[df["classifier"] == classifier]
    lines = []
    for f in fractions:
        g = sub[sub["fraction"] == f]
        means = []
        for c in cfg.conditions:
            v = g.loc[g["condition"] == c.name, "map"].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if len(v):
                means.append((float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, c.display, len(v)))
        if not means:
            lines.append(f"- {f:g}%: no condition could be scored")
            continue
        means.sort(key=lambda t: -t[0])
        top = means[0]
        if len(means) == 1:
            lines.append(f"- {f:g}%: only {top[2]} scored (MAP {top[0]:.3f})")
            continue
        second = means[1]
        gap = top[0] - second[0]
        if gap < 0.0005:
            verdict = "tied at the table's precision"
        elif gap > max(top[1], second[1]):
            verdict = f"the gap ({gap:.3f}) is larger than either std"
        else:
            verdict = f"the gap ({gap:.3f}) is within one std: no clear winner"
        lines.append(f"- {f:g}%: **{top[2]}** (MAP {top[0]:.3f} ± {top[1]:.3f}) ahead of {second[2]} "
                     f"({second[0]:.3f} ± {second[1]:.3f}); {verdict}")
    return lines


def _family_lines(df, cfg: ClassifyConfig, classifier: str, fractions: list[float]) -> list[str]:
    """Learned-program TREBA against expert and random tasks, fraction by fraction."""
    fam = {"learned": [c for c in cfg.conditions if c.kind == "treba" and (c.tasks or "").startswith("fit:")],
           "expert": [c for c in cfg.conditions if c.kind == "treba" and (c.tasks or "").startswith("expert:")],
           "random": [c for c in cfg.conditions if c.kind == "treba" and (c.tasks or "").startswith("random:")],
           "no tasks": [c for c in cfg.conditions if c.kind == "treba" and c.tasks == "none"]}
    if not fam["learned"] or not (fam["expert"] or fam["random"]):
        return []
    sub = df[df["classifier"] == classifier]

    def best(conds, f):
        vals = []
        for c in conds:
            v = sub.loc[(sub["condition"] == c.name) & (sub["fraction"] == f), "map"].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if len(v):
                vals.append((float(v.mean()), c.display))
        return max(vals) if vals else None

    lines = ["| fraction | best learned | expert | random | no tasks | learned - expert | learned - random |",
             "|---:|---|---|---|---|---:|---:|"]
    for f in fractions:
        b = {k: best(v, f) for k, v in fam.items()}
        cell = {k: (f"{v[0]:.3f} ({v[1]})" if v else "-") for k, v in b.items()}
        d_exp = f"{b['learned'][0] - b['expert'][0]:+.3f}" if b["learned"] and b["expert"] else "-"
        d_rnd = f"{b['learned'][0] - b['random'][0]:+.3f}" if b["learned"] and b["random"] else "-"
        lines.append(f"| {f:g}% | {cell['learned']} | {cell['expert']} | {cell['random']} | {cell['no tasks']} | "
                     f"{d_exp} | {d_rnd} |")
    return lines


def write_cluster_metrics(cfg: ClassifyConfig, out: str | Path, folds: dict[str, FoldData], broken: dict) -> Path:
    """``cluster.csv``: k-means (fitted on the training items, k = the label column's classes)
    of each condition's embedding (the input for the input condition), scored against the
    test items' labels by purity, NMI, RI and ARI."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from nsprog.baselines import kmeans_on_means
    from nsprog.evaluation.metrics import cluster_metrics

    rows = []
    for fold in folds:
        root = Path(out) / "features" / fold
        labels = load_arrays(root / "labels.npz")
        inp = load_arrays(root / "input.npz")
        yte = labels["test_label"]  # class ids are only comparable within a split (each file has its vocabulary)
        k = int(len(np.unique(yte[yte >= 0])))
        for c in cfg.conditions:
            if (fold, c.name) in broken or k < 2:
                continue
            z = inp if c.kind == "input" else load_arrays(root / f"{c.name}.npz")
            if z["train"].shape[1] == 0:
                continue
            with warnings.catch_warnings():  # fewer distinct points than k (program bits): n_clusters shows it
                warnings.simplefilter("ignore", ConvergenceWarning)
                ids = kmeans_on_means(z["train"], z["test"], k, cfg.seed)
            ok = yte >= 0
            m = cluster_metrics(yte[ok], ids[ok])
            rows.append({"fold": fold, "condition": c.name, "label": c.display, "k": k, "dims": z["train"].shape[1],
                         **{key: m[key] for key in ("purity", "nmi", "ri", "ari", "n_clusters", "n")}})

    def write(p: Path) -> None:
        cols = ["fold", "condition", "label", "k", "dims", "purity", "nmi", "ri", "ari", "n_clusters", "n"]
        with open(p, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})

    return atomic_write(Path(out) / "cluster.csv", write)


def _cluster_lines(out: Path) -> list[str]:
    path = out / "cluster.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return []
    lines = ["## Cluster metrics of the embeddings", "",
             "K-means on each condition's embedding alone (the input for the input condition; the program bits "
             "for a programs condition), fitted on the training items with k = the number of label classes of the "
             "test items, "
             "scored against the test items' labels (the yardstick of the programs in `nsprog table`).", "",
             "| fold | condition | dims | k (found) | purity | NMI | RI | ARI |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        found = f" ({r['n_clusters']})" if r["n_clusters"] != r["k"] else ""
        lines.append(f"| {r['fold']} | {r['label']} | {r['dims']} | {r['k']}{found} | {float(r['purity']):.3f} | "
                     f"{float(r['nmi']):.3f} | {float(r['ri']):.3f} | {float(r['ari']):.3f} |")
    return lines + [""]


def _step_lines(cfg: ClassifyConfig, out: Path, folds: dict[str, FoldData]) -> list[str]:
    from trebalink.efficiency.steps import fit_folder, treba_run_config

    lines = ["## Steps", ""]
    fits = [n for n in dict.fromkeys(c.fit_name for c in cfg.conditions if c.fit_name)]
    if fits:
        lines += ["Programs learned (`nsprog fit`, one per fold on its training windows):", ""]
        for fold in folds:
            for name in fits:
                folder = fit_folder(cfg, out, name, fold)
                text = (folder / "programs.txt").read_text(encoding="utf-8").strip() if (folder / "programs.txt").is_file() \
                    else "(not available)"
                sec = ""
                if (folder / "metrics.json").is_file():
                    sec = f", {json.loads((folder / 'metrics.json').read_text()).get('fit_seconds', 0):.0f} s"
                lines += [f"- fold {fold}, fit `{name}` ({folder.name}{sec}):", "", "```", text, "```", ""]
    rows = []
    for fold in folds:
        for c in cfg.conditions:
            if c.kind != "treba" or c.run is not None:
                continue
            _, folder = treba_run_config(cfg, c, out, fold)
            m = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else {}
            acc = (m.get("approximators") or {}).get("val_accuracy")
            rows.append(f"| {fold} | {c.display} | `{c.tasks}` | {len(m.get('tasks') or [])} | "
                        f"{m.get('best_epoch', '-')} | {'-' if acc is None else f'{acc:.3f}'} | "
                        f"{sum((m.get('train_seconds') or {}).values()):.0f} | {folder.name} |")
    if rows:
        lines += ["TREBA trainings (`trebalink train`; a folder shared by conditions with the same cache key is "
                  "trained once):", "",
                  "| fold | condition | tasks | tasks kept | best epoch | approximators' val. accuracy | train s | "
                  "folder |", "|---|---|---|---:|---:|---:|---:|---|"] + rows + [""]
    return lines


def write_report(cfg: ClassifyConfig, out: str | Path, folds: dict[str, FoldData], provenance: str | None = None) -> Path:
    """Write ``results.csv``, ``table.md`` and ``figure.png`` from the finished cells."""
    from trebalink.efficiency.sampling import check_fractions

    out = Path(out)
    df = collect_results(cfg, out, folds)
    csv_df = df.drop(columns=[c for c in ("_order", "_clf") if c in df.columns])
    atomic_write(out / "results.csv", lambda p: csv_df.to_csv(p, index=False, float_format="%.6g"))
    fractions = check_fractions(cfg.fractions)
    repeats = cfg.sampling.samplings * len(cfg.seeds)
    planned = len(plan_cells(cfg))
    fold_names = list(folds)
    lines = [f"# {cfg.name}: behaviour classification with few labels (label column `{cfg.labels}`)", ""]
    if provenance:
        lines += ["Made by (each command that computed steps or cells, with its commit):", "", "```",
                  provenance.rstrip(), "```", ""]
    lines += [f"{repeats} repeats per cell ({cfg.sampling.samplings} samplings of contiguous chunks x seeds "
              f"{cfg.seeds}); label fractions are percentages of the training items, drawn as whole chunks of "
              f"{cfg.sampling.n_chunks} (nested: each fraction a prefix of the next); early stopping on the "
              f"validation items; scores on the test items. Input: `{cfg.input.kind}`"
              + (f" ({cfg.input.frames} frames)" if cfg.input.kind != "none" else "")
              + (f", DSL `{cfg.input.dsl}`" if cfg.input.dsl else "") + ".", ""]
    lines += ["| fold | train / val / test items | behaviours (test prevalence) | not scorable |", "|---|---|---|---|"]
    for fold, fd in folds.items():
        lab = load_arrays(out / "features" / fold / "labels.npz") if (out / "features" / fold / "labels.npz").is_file() \
            else None
        prev = []
        for i, b in enumerate(fd.behaviours):
            if lab is not None:
                y = lab["test_y"][:, i]
                prev.append(f"{b} ({(y[y >= 0] == 1).mean():.3f})")
            else:
                prev.append(b)
        notes = ", ".join(f"{b}: {why}" for b, why in fd.notes.items()) or "-"
        lines.append(f"| {fold} | {len(fd.splits['train'])} / {len(fd.splits['val'])} / {len(fd.splits['test'])} | "
                     f"{', '.join(prev)} | {notes} |")
    lines.append("")
    done = len(df)
    if done < planned:
        lines += [f"**Incomplete: {planned - done} of {planned} cells have not finished** (rerun the command to "
                  "complete them; finished cells are kept).", ""]
    if len(df):
        flagged = df[df["one_class"].astype(str) != ""]
        lines += ["Each entry: mean ± std over the repeats in which every scorable behaviour had positive and "
                  f"negative training items; `(k/{repeats * len(fold_names)})` when only k could be scored (the rest "
                  "had no positive of a behaviour in their sample, reported as `no positives` in results.csv); "
                  "`⚑k`: in k repeats the classifier gave one class to more than 95% of the test items for some "
                  "behaviour (see the flags below). **Bold**: the best mean of the column."
                  + (f" Folds {', '.join(fold_names)}: means over folds x repeats." if len(fold_names) > 1 else ""),
                  ""]
        for clf in cfg.classifiers:
            for metric in ("map", "macro_f1"):
                lines += [f"## {METRICS[metric][0]}, {CLASSIFIERS[clf]}", ""]
                lines += render_metric_table(df, cfg, metric, clf, fractions, repeats * len(fold_names)) + [""]
        if len(fold_names) > 1:
            for fold in fold_names:
                for clf in cfg.classifiers:
                    lines += [f"### MAP, {CLASSIFIERS[clf]}, fold {fold}", ""]
                    lines += render_metric_table(df[df["fold"] == fold], cfg, "map", clf, fractions, repeats) + [""]
        names = [b for fd in folds.values() for b in fd.evaluable]
        names = list(dict.fromkeys(names))
        if len(names) > 1:
            for b in names:
                col = f"ap[{b}]"
                if col not in df.columns:
                    continue
                lines += [f"### Average precision of `{b}`, {CLASSIFIERS[cfg.classifiers[0]]}", ""]
                lines += render_metric_table(df.assign(map=df[col].astype(float)), cfg, "map", cfg.classifiers[0],
                                             fractions, repeats * len(fold_names)) + [""]
        lines += [f"## Which condition wins ({CLASSIFIERS[cfg.classifiers[0]]}, MAP)", ""]
        lines += _winners(df, cfg, cfg.classifiers[0], fractions) + [""]
        fam = _family_lines(df, cfg, cfg.classifiers[0], fractions)
        if fam:
            lines += ["Learned programs against expert and random tasks (best mean MAP of each family of TREBA "
                      "conditions):", ""] + fam + [""]
        if len(flagged):
            lines += ["## One-class flags", "", "| condition | classifier | fraction | repeats | behaviour: predicted "
                      "class share (test share of that class) |", "|---|---|---:|---:|---|"]
            for (cond, clf, frac), g in flagged.groupby(["condition", "classifier", "fraction"], sort=False):
                ex = g.iloc[0]
                detail = ", ".join(f"{b}: {float(ex[f'pred_share[{b}]']):.3f} ({float(ex[f'true_share[{b}]']):.3f})"
                                   for b in str(ex["one_class"]).split(";") if b)
                lines.append(f"| {cfg.condition(cond).display} | {clf} | {frac:g}% | {len(g)} | {detail} (repeat "
                             f"{int(ex['repeat'])}) |")
            lines.append("")
    lines += _cluster_lines(out)
    lines += _step_lines(cfg, out, folds)
    if len(df):
        cost = df.groupby("label", sort=False)["seconds"].sum()
        lines += ["## Cost", "", f"Cells: {len(df)} finished, {df['wall_seconds'].sum():.0f} s of cell wall time "
                  "(classifier training and scoring: " + ", ".join(f"{k} {v:.0f} s" for k, v in cost.items()) + ").",
                  ""]
    atomic_write(out / "table.md", lambda p: p.write_text("\n".join(lines), encoding="utf-8"))
    if len(df):
        from trebalink.efficiency.plots import plot_efficiency

        plot_efficiency(df, cfg, out / "figure.png")
    return out / "table.md"
