"""What a table costs: the same table config run in-process (one cell after another) and with a
local pool of worker processes (``--jobs N``), each into a fresh folder, in one run; prints the
wall time of each, the sum of the cells' own wall times, and whether both gave the same numbers.

    python benchmarks/bench_table.py experiments/configs/table_openfield.yaml --seeds 1 --jobs 2

Run it on an otherwise idle machine (under ``flock /tmp/nsprog-heavy.lock`` on a shared one):
the pool's gain is bounded by the free cores and by its longest cell.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from nsprog.tables import load_table_config, run_table

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (default 1)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes of the pool run (default 2)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
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
