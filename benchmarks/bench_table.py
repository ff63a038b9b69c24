"""What a table costs: the same table config run in-process (one cell after another) and with a
local pool of worker processes (``--jobs N``), each into a fresh folder, in one run; prints the
wall time of each, the sum of the cells' own wall times, and whether both gave the same numbers.

    python benchmarks/bench_table.py experiments/configs/table_openfield.yaml --seeds 1 --jobs 2

Run it on an otherwise idle machine (under ``flock /tmp/nsprog-heavy.lock`` on a shared one):
the pool's gain is bounded by the free cores and by its longest cell.

Where no idle cores are to be had, ``--estimate FOLDER`` reads the finished cells of a table
that ran (their own wall times) and prints what the same cells take one after another
(``--jobs 1``) and on N workers (``--jobs N``: in the order a pool gets them, the slow cells of
each seed first, each to the first free worker), assuming a free core per worker. It is an estimate, not
a measurement: it leaves out the pool's start-up and any slow-down from sharing memory
bandwidth.

    python benchmarks/bench_table.py --estimate experiments/results/table_openfield --jobs 2
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from nsprog.tables import load_table_config, run_table
from nsprog.tables.cells import slowness_rank

METRICS = ["fold", "model", "row", "clusters", "seed", "purity", "nmi", "ri", "ari"]


def _run(cfg, out: Path, seeds, backend: str, workers: int) -> tuple[float, pd.DataFrame]:
    from nsprog.config import from_dict, to_dict
    from nsprog.tables import TableConfig

    d = to_dict(cfg)
    d["executor"] = {"backend": backend, "workers": workers}
    cfg = from_dict(TableConfig, d, "bench")
    t0 = time.perf_counter()
    res = run_table(cfg, out, seeds, command=f"bench_table ({backend} x {workers})")
    wall = time.perf_counter() - t0
    if res.failed:
        raise SystemExit(f"{len(res.failed)} cell(s) failed: {res.failed}")
    return wall, pd.read_csv(out / "results.csv")


def schedule(seconds: list[float], workers: int) -> float:
    """Wall time of running jobs of these durations, in this order, on ``workers`` workers that
    each take the next job when free."""
    free = [0.0] * workers
    for s in seconds:
        heapq.heappush(free, heapq.heappop(free) + s)
    return max(free)


def estimate(folder: Path, jobs: int) -> None:
    cells = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((folder / "cells").rglob("*.json"))]
    if not cells:
        raise SystemExit(f"{folder}: no finished cells (cells/**/*.json); run the table first")
    cells.sort(key=lambda c: c["finished"])  # the order they ran in: the plan's, on one worker
    seeds = list(dict.fromkeys(c["seed"] for c in cells))
    pool_order = sorted(cells, key=lambda c: (seeds.index(c["seed"]), slowness_rank(c["model"], c.get("n_programs"))))
    seconds = [float(c["wall_seconds"]) for c in pool_order]  # as a pool hands them out (longest_first)
    longest = max(cells, key=lambda c: c["wall_seconds"])
    one = sum(seconds)
    print(f"{folder}: {len(cells)} cells (ESTIMATE from each cell's own wall time, not a measurement)")
    print(f"  --jobs 1 (one core): {one:8.0f} s = {one / 60:.0f} min (the sum of the cells)")
    for n in sorted({2, jobs}):
        wall = schedule(seconds, n)
        print(f"  --jobs {n} ({n} free cores): {wall:8.0f} s = {wall / 60:.0f} min, {one / wall:.2f}x "
              f"(ideal {n}x; the longest cell, {longest['cell']}, takes {longest['wall_seconds']:.0f} s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", nargs="?", help="table config to run twice (in-process and as a pool)")
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (default 1)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes of the pool run (default 2)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--estimate", metavar="FOLDER", type=Path,
                   help="estimate from a finished table's cells instead of running one")
    args = p.parse_args()
    if args.estimate is not None:
        return estimate(args.estimate, args.jobs)
    if args.config is None:
        p.error("give a table config to run, or --estimate FOLDER")
    cfg = load_table_config(args.config, args.overrides)
    seeds = list(range(args.seeds))
    print(f"{args.config}: {os.cpu_count()} CPUs, seeds {seeds}")
    with tempfile.TemporaryDirectory(prefix="bench_table_") as tmp:
        wall_1, df_1 = _run(cfg, Path(tmp) / "inline", seeds, "inline", 1)
        wall_n, df_n = _run(cfg, Path(tmp) / "pool", seeds, "process", args.jobs)
    cells = len(df_1.drop_duplicates(["fold", "row", "seed", "clusters"]))
    same = df_1[METRICS].reset_index(drop=True).equals(df_n[METRICS].reset_index(drop=True))
    print(f"in-process (--jobs 1): {wall_1:8.1f} s wall for {cells} scored rows; cells' own wall time "
          f"{df_1.drop_duplicates(['fold', 'model', 'row', 'seed', 'fit_seconds'])['wall_seconds'].sum():.1f} s")
    print(f"process pool (--jobs {args.jobs}): {wall_n:8.1f} s wall; speed-up {wall_1 / wall_n:.2f}x")
    print(f"identical metrics: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
