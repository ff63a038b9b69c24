"""``nsprog safety table``: benchmarks x modes x training sizes x seeds, resumable.

Each cell is one :func:`~nsprog.safety.run.run_safety` run in
``OUT/runs/<benchmark>/<mode>/n<size>/seed<seed>/``; a cell whose ``metrics.json`` exists is
skipped, so an interrupted table continues where it stopped. The summary step reads every
``metrics.json`` and writes ``results.csv`` (one row per run), ``table.md`` (median and
min-max spread over seeds, plus the issue's targets), ``validation.md`` (validation scores only:
what settings are chosen by) and ``table.png``.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np

from nsprog.config import apply_overrides, dump_config, from_dict, to_dict
from nsprog.safety.config import SafetyRunConfig, SafetyTableConfig
from nsprog.utils import atomic_write, limit_threads, read_json

__all__ = ["run_table", "cell_dir", "summarise", "validation_summary"]

log = logging.getLogger("nsprog.safety")


def cell_dir(out: str | Path, benchmark: str, mode: str, size: int, seed: int) -> Path:
    return Path(out) / "runs" / benchmark / mode / f"n{size}" / f"seed{seed}"


def cell_config(cfg: SafetyTableConfig, benchmark: str, mode: str, size: int, seed: int) -> SafetyRunConfig:
    base = {
        "benchmark": benchmark, "mode": mode, "seed": seed, "train_size": size, "threads": cfg.threads,
        "device": cfg.device, "plot": seed == cfg.seeds[0], "train": to_dict(cfg.train), "verify": to_dict(cfg.verify),
    }
    data = apply_overrides(base, cfg.overrides.get(benchmark, []))
    return from_dict(SafetyRunConfig, data, f"table cell {benchmark}/{mode}/n{size}/seed{seed}")


def run_table(cfg: SafetyTableConfig, progress: bool = False, command: str | None = None) -> dict:
    """Run every missing cell, then summarise; returns counts of cells run and skipped."""
    with limit_threads(cfg.threads):
        return _run_table(cfg, progress, command)


def _run_table(cfg: SafetyTableConfig, progress: bool, command: str | None) -> dict:
    from nsprog.safety.run import run_safety

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "table_config.yaml", lambda p: p.write_text(dump_config(cfg), encoding="utf-8"))
    cells = [(b, m, n, s) for b in cfg.benchmarks for n in cfg.train_sizes for m in cfg.modes for s in cfg.seeds]
    # validate every cell's config before running anything
    configs = {c: cell_config(cfg, *c) for c in cells}
    done = skipped = 0
    t0 = time.perf_counter()
    for i, c in enumerate(cells, 1):
        path = cell_dir(out, *c)
        if (path / "metrics.json").is_file():
            skipped += 1
            continue
        log.info("[%d/%d] %s/%s n=%d seed %d", i, len(cells), *c)
        _, metrics = run_safety(configs[c], out=path, force=True, progress=progress)
        done += 1
        log.info("[%d/%d] done: provably safe %.4f, test data loss %.4g (%.0f s elapsed)", i, len(cells),
                 metrics["provably_safe"], metrics["test_data_loss"], time.perf_counter() - t0)
    command = command or " ".join(["nsprog"] + sys.argv[1:])
    atomic_write(out / "command.txt", lambda p: p.write_text(command + "\n", encoding="utf-8"))
    summarise(out, command=command)
    return {"cells": len(cells), "run": done, "skipped": skipped, "seconds": time.perf_counter() - t0}


def _collect(out: Path):
    import pandas as pd

    rows = []
    for f in sorted((out / "runs").glob("*/*/n*/seed*/metrics.json")):
        rows.append(read_json(f, "metrics file"))
    if not rows:
        raise FileNotFoundError(f"no finished cells (metrics.json) under {out / 'runs'}")
    return pd.DataFrame(rows)


def _fmt(v: float, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    if abs(v) >= 100 or (abs(v) < 1e-3 and v != 0):
        return f"{v:.3g}"
    return f"{v:.{digits}f}"


def summarise(out: str | Path, command: str | None = None) -> Path:
    """Write ``results.csv``, ``table.md`` and ``table.png`` from the finished cells under ``out``."""
    from nsprog.safety.plots import plot_table

    out = Path(out)
    if command is None and (out / "command.txt").is_file():
        command = (out / "command.txt").read_text(encoding="utf-8").strip()
    df = _collect(out)
    order = {"only_data": 0, "diffai": 1, "dse": 2}
    df = df.sort_values(["benchmark", "train_size", "mode", "seed"], key=lambda s: s.map(order) if s.name == "mode" else s)
    cols = ["benchmark", "mode", "train_size", "seed", "provably_safe", "empirical_unsafe", "test_data_loss",
            "train_data_loss", "val_provably_safe", "val_data_loss", "best_step", "steps", "steps_per_second",
            "verifier_pieces", "verify_seconds", "verifier_pieces_per_second", "train_seconds", "wall_seconds"]
    df = df[[c for c in cols if c in df.columns]]
    atomic_write(out / "results.csv", lambda p: df.to_csv(p, index=False, float_format="%.6g"))

    lines = ["# nsprog safety: results table", ""]
    if command:
        lines += ["Made by:", "", "```", command, "```", ""]
    lines += [
        "Median over seeds, with the [min, max] spread. `safe`: provably safe share of the input box "
        "(join verifier; pieces listed per benchmark); `emp. unsafe`: share of 10,000 sampled inputs whose "
        "concrete run is unsafe; `data loss`: MSE on 20,000 held-out trajectories; `ratio`: median of "
        "data loss / the same seed's only_data data loss; `steps/s`: optimiser steps per second.",
        "",
    ]
    targets = []
    for bench in dict.fromkeys(df["benchmark"]):
        sub = df[df["benchmark"] == bench]
        pieces = int(sub["verifier_pieces"].iloc[0])
        lines += [f"## {bench} ({pieces:,} verifier pieces)", "",
                  "| mode | n | seeds | safe (median [min, max]) | emp. unsafe | data loss (median [min, max]) | ratio | steps/s |",
                  "|---|---:|---:|---|---:|---|---:|---:|"]
        for size in sorted(set(sub["train_size"])):
            ref = sub[(sub["train_size"] == size) & (sub["mode"] == "only_data")].set_index("seed")["test_data_loss"]
            stats = {}
            for mode in sorted(set(sub["mode"]), key=lambda m: order.get(m, 9)):
                g = sub[(sub["train_size"] == size) & (sub["mode"] == mode)]
                if g.empty:
                    continue
                ratio = (g.set_index("seed")["test_data_loss"] / ref).dropna()
                st = {
                    "safe": g["provably_safe"].median(), "safe_min": g["provably_safe"].min(),
                    "safe_max": g["provably_safe"].max(), "loss": g["test_data_loss"].median(),
                    "ratio": ratio.median() if len(ratio) else float("nan"),
                }
                stats[mode] = st
                lines.append(
                    f"| {mode} | {size} | {len(g)} | {_fmt(st['safe'])} [{_fmt(st['safe_min'])}, {_fmt(st['safe_max'])}] "
                    f"| {_fmt(g['empirical_unsafe'].median())} | {_fmt(st['loss'], 4)} "
                    f"[{_fmt(g['test_data_loss'].min(), 4)}, {_fmt(g['test_data_loss'].max(), 4)}] "
                    f"| {_fmt(st['ratio'], 2)} | {_fmt(g['steps_per_second'].median(), 1)} |"
                )
            if bench in ("thermostat", "aircraft") and "dse" in stats:
                d = stats["dse"]
                a = stats.get("diffai", {}).get("safe", float("nan"))
                targets.append(
                    f"| {bench} | {size} | {_fmt(d['safe'])} | {_fmt(a)} | "
                    f"{'yes' if d['safe'] >= 0.9 else 'no'} | {'yes' if not np.isnan(a) and d['safe'] >= a else 'no'} | "
                    f"{_fmt(d['ratio'], 2)} | {'yes' if d['ratio'] <= 2 else 'no'} |"
                )
        lines.append("")
    if targets:
        lines += ["## Issue #11 targets (medians over seeds)", "",
                  "| benchmark | n | DSE safe | DiffAI+ safe | DSE >= 0.9 | DSE >= DiffAI+ | DSE loss / only_data | within 2x |",
                  "|---|---:|---:|---:|---|---|---:|---|", *targets, ""]
    atomic_write(out / "table.md", lambda p: p.write_text("\n".join(lines), encoding="utf-8"))
    atomic_write(out / "validation.md", lambda p: p.write_text(validation_summary(df, command), encoding="utf-8"))
    plot_table(df, out / "table.png")
    return out / "table.md"


def validation_summary(df, command: str | None = None) -> str:
    """Markdown of the *validation* scores only (the selected checkpoint's validation provably-safe
    share and validation data loss, as a ratio to the same seed's ``only_data`` run): what settings
    are chosen by, without looking at the test verifier or the test trajectories."""
    order = {"only_data": 0, "diffai": 1, "dse": 2}
    lines = ["# nsprog safety: validation scores", ""]
    if command:
        lines += ["Made by:", "", "```", command, "```", ""]
    lines += ["Median over seeds [min, max] of the selected checkpoint's validation provably-safe share "
              "(validation verifier) and of its validation data loss divided by the same seed's only_data "
              "validation data loss (`val ratio`). No test numbers.", "",
              "| benchmark | n | mode | seeds | val safe | val ratio |", "|---|---:|---|---:|---|---|"]
    for bench in dict.fromkeys(df["benchmark"]):
        sub = df[df["benchmark"] == bench]
        for size in sorted(set(sub["train_size"])):
            g0 = sub[sub["train_size"] == size]
            ref = g0[g0["mode"] == "only_data"].set_index("seed")["val_data_loss"]
            for mode in sorted(set(g0["mode"]), key=lambda m: order.get(m, 9)):
                g = g0[g0["mode"] == mode]
                ratio = (g.set_index("seed")["val_data_loss"] / ref).dropna()
                rtxt = "-" if ratio.empty else f"{_fmt(ratio.median(), 2)} [{_fmt(ratio.min(), 2)}, {_fmt(ratio.max(), 2)}]"
                vs = g["val_provably_safe"]
                lines.append(f"| {bench} | {size} | {mode} | {len(g)} | {_fmt(vs.median())} [{_fmt(vs.min())}, "
                             f"{_fmt(vs.max())}] | {rtxt} |")
    return "\n".join(lines) + "\n"
