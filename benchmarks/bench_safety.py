"""Speed of nsprog.safety: optimiser steps per second and verifier pieces per second.

Prints, per benchmark and mode, the optimiser steps per second of training (with the
table's default settings, and for DSE also with the reference's thermostat setting of
1 component x 30 paths) and the join verifier's throughput; then the 10,000-piece
thermostat verification time and (with --full-run) the wall time of one default
thermostat DSE run. Targets (issue #11, 2 CPU cores): DSE steps >= 50x the reference's
~1 step/s (30 paths, thermostat), 10,000-piece thermostat verification < 10 s, one
default thermostat DSE run < 5 minutes.

    flock /tmp/nsprog-heavy.lock python benchmarks/bench_safety.py --threads 1 [--full-run]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

from nsprog.safety.benchmarks import BENCHMARKS, get_benchmark
from nsprog.safety.config import TrainConfig
from nsprog.safety.data import generate_data
from nsprog.safety.train import Stepper, components_per_step, training_boxes
from nsprog.safety.verify import verify
from nsprog.utils import limit_threads, seed_everything


def steps_per_second(bench, mode: str, cfg: TrainConfig, seconds: float = 3.0, seed: int = 0) -> tuple[float, float, int]:
    """Full optimiser steps (data + safety loss, backward, clip, Adam: the training step of
    :class:`nsprog.safety.train.Stepper`, without warm-up) per second of wall time and of this
    process's CPU time (the latter is less sensitive to other jobs on a shared machine);
    returns (wall rate, CPU rate, boxes per step)."""
    seed_everything(seed)
    cfg = dataclasses.replace(cfg, warmup=0)
    mods = bench.make_modules()
    data = generate_data(bench, 100, seed=seed)
    stepper = Stepper(bench, mode, cfg, mods, data, torch.Generator().manual_seed(seed))
    for i in range(1, 6):
        stepper.step(i)
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        n += 1
        stepper.step(5 + n)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    per_step = 0
    if mode != "only_data":
        _, n_comp, n_paths = training_boxes(bench, mode, cfg)
        per_step = (components_per_step(bench, mode, cfg) or n_comp) * n_paths
    return n / wall, n / max(cpu, 1e-9), per_step


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0, help="seeds the networks, data and branch draws")
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time per cell")
    ap.add_argument("--full-run", action="store_true", help="also time one default thermostat DSE run (CLI)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    with limit_threads(args.threads):  # torch and BLAS
        _run(args)


def _run(args) -> None:
    out = {"threads": torch.get_num_threads(), "torch": torch.__version__, "steps": [], "verifier": []}
    default = TrainConfig()
    ref = TrainConfig(components=1, paths=30, components_per_step=0, baseline="none")
    print(f"nsprog.safety speed, {torch.get_num_threads()} thread(s), torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (other jobs slow the wall-clock rates)")
    print(f"{'benchmark':<11} {'mode':<10} {'setting':<22} {'boxes/step':>10} {'steps/s':>9} {'steps/cpu-s':>12}")
    for name in BENCHMARKS:
        b = get_benchmark(name)
        cells = [("only_data", default, "table default"), ("diffai", default, "table default"),
                 ("dse", default, "table default")]
        if name == "thermostat":
            cells.append(("dse", ref, "reference 1 comp x 30"))
            cells.append(("diffai", TrainConfig(components=10, components_per_step=0), "reference 10 comps"))
        for mode, cfg, label in cells:
            rate, cpu_rate, boxes = steps_per_second(b, mode, cfg, args.seconds, args.seed)
            out["steps"].append({"benchmark": name, "mode": mode, "setting": label, "boxes_per_step": boxes,
                                 "steps_per_second": rate, "steps_per_cpu_second": cpu_rate})
            print(f"{name:<11} {mode:<10} {label:<22} {boxes:>10} {rate:>9.1f} {cpu_rate:>12.1f}")
    print(f"\n{'benchmark':<11} {'pieces':>8} {'seconds':>8} {'pieces/s':>10}  (join verifier, float64)")
    for name in BENCHMARKS:
        b = get_benchmark(name)
        seed_everything(args.seed)
        mods = b.make_modules()
        res = verify(b, mods, b.defaults["verifier_components"])
        out["verifier"].append({"benchmark": name, **res.summary()})
        print(f"{name:<11} {res.pieces:>8} {res.seconds:>8.2f} {res.pieces_per_second:>10.0f}")
    th = next(v for v in out["verifier"] if v["benchmark"] == "thermostat")
    dse_ref = next(s for s in out["steps"] if s["setting"].startswith("reference 1"))
    print(f"\ntargets: thermostat DSE (1 x 30 paths) {dse_ref['steps_per_second']:.1f} steps/s, "
          f"{dse_ref['steps_per_cpu_second']:.1f} per CPU second "
          f"(>= 50, i.e. 50x the reference's ~1/s: {'met' if dse_ref['steps_per_second'] >= 50 else 'missed'} "
          f"by wall time); "
          f"10,000-piece thermostat verification {th['seconds']:.2f} s (< 10 s: {'met' if th['seconds'] < 10 else 'missed'})")
    if args.full_run:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "nsprog", "safety", "run", "--benchmark", "thermostat", "--mode",
                            "dse", "--threads", str(args.threads), "--seed", str(args.seed), "--out", f"{tmp}/run", "--quiet"], check=True)
            wall = time.perf_counter() - t0
            m = json.load(open(f"{tmp}/run/metrics.json"))
        out["full_run"] = {"wall_seconds": wall, "provably_safe": m["provably_safe"], "steps": m["steps"]}
        print(f"one default thermostat DSE run ({m['steps']} steps, then verification): {wall:.1f} s wall "
              f"(< 300 s: {'met' if wall < 300 else 'missed'}); provably safe {m['provably_safe']:.4f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
