"""The report of a table: ``results.csv`` (one row per model, seed, fold and cluster count),
``table.md`` (median and std over runs, laid out like the paper's Table 1: one section per
cluster count, the models in the config's order, the best median of each column in bold,
ceilings set apart below) and ``table.png``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nsprog.tables.cells import eval_split, plan_cells, read_cell
from nsprog.tables.config import TableConfig, config_hash, row_key
from nsprog.utils import atomic_write

__all__ = ["collect_results", "write_report", "render_table", "METRICS"]

METRICS = {"purity": "Purity", "nmi": "NMI", "ri": "RI", "ari": "ARI"}
COLUMNS = ["table", "fold", "model", "row", "features", "n_programs", "clusters", "seed", "purity", "nmi", "ri", "ari",
           "clusters_found", "n_eval", "fit_seconds", "wall_seconds", "config_hash", "program"]


def collect_results(cfg: TableConfig, out: str | Path, seeds: list[int] | None = None):
    """A DataFrame with one row per finished cell and cluster count (``COLUMNS``)."""
    import pandas as pd

    h = config_hash(cfg)
    order = {row_key(m): i for i, m in enumerate(cfg.models)}
    rows = []
    for c in plan_cells(cfg, seeds):
        rec = read_cell(out, c)
        if rec is None or rec.get("config_hash") != h:
            continue
        info = rec.get("info") or {}
        program = "; ".join(info["programs"]) if "programs" in info else info.get("program", "")
        for r in rec["rows"]:
            rows.append({
                "table": rec["table"], "fold": rec["fold"], "model": rec["model"], "row": rec["row"],
                "features": rec["features"], "n_programs": rec["n_programs"], "clusters": r["clusters"],
                "seed": rec["seed"], **{m: r[m] for m in METRICS}, "clusters_found": r["clusters_found"],
                "n_eval": r["n_eval"], "fit_seconds": rec["fit_seconds"], "wall_seconds": rec["wall_seconds"],
                "config_hash": rec["config_hash"], "program": program, "_order": order.get(rec["key"], 99),
            })
    df = pd.DataFrame(rows, columns=COLUMNS + ["_order"])
    if len(df):
        df = df.sort_values(["_order", "clusters", "fold", "seed"], kind="stable").reset_index(drop=True)
    return df


def _fmt(v: float) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.3f}"


def _cell(s: dict, metric: str) -> str:
    """``median ± std`` (the median alone for a single run)."""
    med, std = s[metric]
    return _fmt(med) if s["runs"] < 2 else f"{_fmt(med)} ± {_fmt(std)}"


def _section_rows(df, k: int):
    """The rows compared at ``k`` clusters: models clustered into k, plus every ceiling."""
    inside = df[(df["clusters"] == k) & (df["model"] != "supervised_program")]
    ceil = df[df["model"] == "supervised_program"]
    return inside, ceil


def _stats(g) -> dict:
    out = {}
    for m in METRICS:
        v = g[m].to_numpy(dtype=float)
        out[m] = (float(np.median(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
    out["runs"] = len(g)
    out["seconds"] = float(np.median(g["fit_seconds"]))
    found = g["clusters_found"].to_numpy()
    out["found"] = f"{int(found.min())}" if found.min() == found.max() else f"{int(found.min())}-{int(found.max())}"
    return out


def render_table(df, title: str | None = None) -> list[str]:
    """Markdown sections (one per cluster count) for the rows of ``df``."""
    lines: list[str] = []
    for k in sorted(set(df["clusters"])) if len(df) else []:
        inside, ceil = _section_rows(df, k)
        if inside.empty:
            continue
        progs = sorted({int(n) for n in inside.loc[inside["model"] == "programs", "n_programs"]})
        compared = f" (compared with {', '.join(f'{n} program' + ('s' if n > 1 else '') for n in progs)})" if progs else ""
        lines += [f"### {k} clusters{compared}" + (f" - {title}" if title else ""), ""]
        body = [(row, g["model"].iloc[0], _stats(g)) for row, g in inside.groupby("row", sort=False)]
        ceilings = [(row, g["model"].iloc[0], _stats(g)) for row, g in
                    list(inside[inside["model"] == "oracle"].groupby("row", sort=False)) + list(ceil.groupby("row", sort=False))]
        body = [b for b in body if b[1] != "oracle"]
        best = {m: max((s[m][0] for _, _, s in body), default=np.nan) for m in METRICS}
        lines += ["| model | " + " | ".join(METRICS.values()) + " | runs | clusters found | fit s (median) |",
                  "|---|" + "---:|" * len(METRICS) + "---:|---:|---:|"]
        for row, _, s in body:
            cells = []
            for m in METRICS:
                text = _cell(s, m)
                cells.append(f"**{text}**" if np.isclose(s[m][0], best[m]) else text)
            lines.append(f"| {row} | " + " | ".join(cells) + f" | {s['runs']} | {s['found']} | {s['seconds']:.1f} |")
        if ceilings:
            lines.append("| *ceilings (not compared)* |" + " |" * (len(METRICS) + 3))
            for row, _, s in ceilings:
                cells = [f"*{_cell(s, m)}*" for m in METRICS]
                lines.append(f"| *{row}* | " + " | ".join(cells) + f" | {s['runs']} | {s['found']} | {s['seconds']:.1f} |")
        lines.append("")
    return lines


def write_report(cfg: TableConfig, out: str | Path, seeds: list[int] | None = None, provenance: str | None = None) -> Path:
    """Write ``results.csv``, ``table.md`` and ``table.png`` from the finished cells;
    ``provenance`` (the commands and commits that ran them) heads ``table.md``."""
    out = Path(out)
    df = collect_results(cfg, out, seeds)
    csv = df.drop(columns=["_order"])
    atomic_write(out / "results.csv", lambda p: csv.to_csv(p, index=False, float_format="%.6g"))
    finished = _finished_records(cfg, out, seeds)
    planned = len(plan_cells(cfg, seeds))
    folds = cfg.fold_names()
    split = eval_split(cfg)
    lines = [f"# {cfg.name}: cluster metrics against `{cfg.labels}` ({split} windows)", ""]
    if provenance:
        lines += ["Made by (each command that computed cells, with its commit):", "", "```", provenance.rstrip(), "```",
                  ""]
    seeds_used = sorted(int(s) for s in set(df["seed"])) if len(df) else []
    lines += [
        f"Config hash `{config_hash(cfg)}`; DSL `{cfg.dsl}`; seeds {seeds_used}"
        + (f"; folds {', '.join(folds)} (medians over folds x seeds)" if len(folds) > 1 else "") + ".",
        "Each cell: median ± standard deviation over runs (the value alone for one run). **Bold**: the best median of the column among the "
        "compared models; the ceilings below each section (the generator's own programs, a program searched on "
        "the label itself) are not compared. Continuous-latent baselines are clustered by K-means (fitted on the "
        "training windows' posterior means) into the section's number of clusters; discrete ones by their codes.",
        "",
    ]
    if len(finished) < planned:
        lines += [f"**Incomplete: {planned - len(finished)} of {planned} cells have not finished**; rerun the "
                  "command to complete the table (finished cells are kept).", ""]
    lines += render_table(df)
    if len(folds) > 1 and len(df):
        lines += ["## Per fold", ""]
        for fold in folds:
            lines += render_table(df[df["fold"] == fold], title=f"fold {fold}")
    sub = df[df["model"].isin(["programs", "supervised_program"])].drop_duplicates(["fold", "row", "seed"])
    if len(sub):
        lines += ["## Programs", "", "| model | fold | seed | program(s) |", "|---|---|---:|---|"]
        lines += [f"| {r['row']} | {r['fold']} | {r['seed']} | `{r['program']}` |" for _, r in sub.iterrows()]
        lines.append("")
    if finished:
        total = sum(float(r["wall_seconds"]) for r in finished)
        lines += [f"Cells: {len(finished)}, {total:.0f} s of cell wall time in all (the sum over cells; "
                  "`results.csv` has each cell's).", ""]
    atomic_write(out / "table.md", lambda p: p.write_text("\n".join(lines), encoding="utf-8"))
    if len(df):
        from nsprog.tables.plots import plot_table

        plot_table(df, out / "table.png", title=figure_title(cfg, split, df))
    return out / "table.md"


_SPLIT_NAMES = {"train": "training", "val": "validation", "test": "test"}


def figure_title(cfg: TableConfig, split: str, df) -> str:
    """What the figure shows: the data, the label scored, the windows and how many runs."""
    label = "the label" if cfg.labels in (None, "label", "labels") else f"the label {cfg.labels!r}"
    folds = df["fold"].nunique()
    seeds = df["seed"].nunique()
    runs = f"{seeds} seed{'s' if seeds > 1 else ''}" + (f" x {folds} train/test folds" if folds > 1 else "")
    return (f"{cfg.name}: agreement of each model's clusters with {label} on the {_SPLIT_NAMES.get(split, split)} windows "
            f"(higher is better; {runs})")


def _finished_records(cfg: TableConfig, out: Path, seeds) -> list[dict]:
    h = config_hash(cfg)
    recs = [read_cell(out, c) for c in plan_cells(cfg, seeds)]
    return [r for r in recs if r is not None and r.get("config_hash") == h]
