"""Program-search speed: batched (stacked, fused) sibling training vs one candidate at a time.

Prints seconds per candidate, candidates per second for both modes on the same run and the
same data (the two modes give identical scores; only the training loop differs), for
classic A* and for batched A* (``search.min_batch``: the next-best open nodes are expanded
together until a training batch holds that many candidates), and the
total time to solve the synthetic search for c_x and c_y (target: < 60 s on 2 CPU cores,
batched siblings >= 3x faster than one at a time).

    python benchmarks/bench_search.py [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from nsprog.data import synthetic_dataset
from nsprog.dsl import load_dsl
from nsprog.features.pipeline import FeaturePipeline
from nsprog.search import ProgramSearch, SearchSettings
from nsprog.utils import limit_threads


def run(dsl_name: str, label: str, fused: bool, max_depth: int, device: str, splits, **settings) -> ProgramSearch:
    dsl = load_dsl(dsl_name)
    pipe = FeaturePipeline.for_dsl(dsl)
    xtr, xva = pipe.fit_transform(splits["train"]), pipe.transform(splits["val"])
    settings = SearchSettings(**{"strategy": "astar", "max_depth": max_depth, "fused": fused, **settings})
    return ProgramSearch(dsl, settings, seed=0, device=device).fit(
        xtr.to(device), splits["train"].label_column(label), xva.to(device), splits["val"].label_column(label)
    )


def basketball_splits():
    """Offense / defense windows of the SportVU sample (None when data/samples has no SportVU sample: python data/fetch_samples.py --only sportvu)."""
    from pathlib import Path

    from nsprog.config import from_dict
    from nsprog.data.sources import DataConfig, load_splits

    path = Path("data/samples/sportvu/0021500400.csv")
    if not path.exists():
        return None
    cfg = from_dict(DataConfig, {"source": "tracking", "path": str(path),
                                 "windows": {"window_seconds": 8.0, "layout": "team"}})
    return load_splits(cfg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each mode per scenario; the fastest counts")
    ap.add_argument("--min-batch", type=int, default=8,
                    help="the batched-A* variant's search.min_batch (the deeper searches are also run with it)")
    args = ap.parse_args()
    with limit_threads(args.threads):  # torch and BLAS
        _run(args)


def _run(args) -> None:
    splits = synthetic_dataset(seed=0)  # paper sizes: 10k / 2k / 2k
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {args.device}")

    print("\n1. synthetic search (DSL 'synthetic', max depth 2, A*, paper Table 5 epochs/batch)")
    t0 = time.perf_counter()
    for label in ("c_x", "c_y"):
        est = run("synthetic", label, True, 2, args.device, splits)
        print(f"   {label}: {est.program_.key()}  val F1 {est.val_f1_:.4f}  {est.n_candidates_} candidates  {est.seconds_:.1f} s")
    total = time.perf_counter() - t0
    print(f"   total time to solve both searches: {total:.1f} s (target < 60 s)")

    print(f"\n2. batched siblings vs one at a time (same searches, same data, identical scores; fastest of {args.repeats})")
    scenarios = [("synthetic", "c_x", 2, splits, {}), ("synthetic_displacement", "c_x", 3, splits, {})]
    bball = basketball_splits()
    if bball is not None:
        scenarios.append(("team", "label", 3, bball, {"batch_size": 128, "lr": 2e-3, "neural_epochs": 8,
                                                      "symbolic_epochs": 8, "max_units": 12, "min_units": 4}))
    else:
        print("   (basketball scenario skipped: data/samples/sportvu is absent)")
    variants = [(name, label, depth, data, extra) for name, label, depth, data, extra in scenarios]
    variants += [(name, label, depth, data, {**extra, "min_batch": args.min_batch})
                 for name, label, depth, data, extra in scenarios[1:]]  # depth 2 has no batch to fill
    for dsl_name, label, depth, data, extra in variants:
        res = {}
        for _ in range(args.repeats):  # the faster of the repeats: first-call costs are in neither mode's rate
            for fused in (True, False):
                est = run(dsl_name, label, fused, depth, args.device, data, **extra)
                if fused not in res or est.seconds_ < res[fused].seconds_:
                    res[fused] = est
        b, s = res[True], res[False]
        same = "same program" if b.program_ == s.program_ else f"DIFFERENT programs ({s.program_.key()})"
        cps_b = b.n_candidates_ / b.seconds_
        cps_s = s.n_candidates_ / s.seconds_
        what = "SportVU offense/defense" if dsl_name == "team" else label
        how = f"batched A* (min_batch {extra['min_batch']})" if extra.get("min_batch", 1) > 1 else "A*"
        print(f"   DSL {dsl_name} ({what}), depth {depth}, {how}: {b.n_candidates_} candidates, "
              f"best {b.program_.key()}; {same}")
        print(f"      batched:        {b.seconds_:7.1f} s  {b.seconds_ / b.n_candidates_:6.3f} s/candidate  {cps_b:6.2f} candidates/s")
        print(f"      one at a time:  {s.seconds_:7.1f} s  {s.seconds_ / s.n_candidates_:6.3f} s/candidate  {cps_s:6.2f} candidates/s")
        print(f"      speed-up: {cps_b / cps_s:.2f}x (target >= 3x)")


if __name__ == "__main__":
    main()
