"""Speed of a neurosymbolic-encoder fit, the accelerated path beside the plain one, and the
README's Python example beside ``nsprog fit --quick``, all in one run.

1. **Plain vs accelerated.** The 2-program synthetic fit at the paper's settings (batch 32, 50
   VAE epochs per round, 4 rounds = 200 epochs), once with the accelerators (native GRU
   kernels) and once plain (``torch.nn.GRU``, the composed loss and ``torch.optim.Adam`` with
   its fused step: ``NeurosymbolicEncoder(accelerate=False)``). Each fit runs in a fresh
   process; the table gives wall time, ms per VAE step, distillation time, the programs and
   the test scores of both, and the speed-up.
2. **Two routes, one model.** The README's "In Python" example (its code block, read from
   README.md and run as it is) and ``nsprog fit --quick`` in fresh processes: wall time of each
   and whether they learned the same programs.

    python benchmarks/bench_fit.py                      # both parts (about 15 minutes on 2 cores)
    python benchmarks/bench_fit.py --epochs 5           # part 1 with 5 epochs per round (per-step figures alike)
    python benchmarks/bench_fit.py --plain              # the plain path alone
    python benchmarks/bench_fit.py --accelerated        # the accelerated path alone
    python benchmarks/bench_fit.py --routes             # part 2 alone
    python benchmarks/bench_fit.py --device cuda        # part 1 on a GPU

Target on 2 CPU cores: the paper-settings fit in under 5 minutes (the public reference took
1,254 s); an accelerator is kept only where it buys >= 1.5x.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_fit(config: str, epochs: int | None, device: str, seed: int, accelerate: bool) -> dict:
    """Run in a child process: one fit, its timings and scores as a dict."""
    import math
    import resource

    from nsprog.config import load_config
    from nsprog.data.sources import load_splits
    from nsprog.evaluation import cluster_metrics
    from nsprog.fit_run import FitRunConfig
    from nsprog.native import native_status

    overrides = [f"device={device}", f"seed={seed}", "threads=1"] + ([f"vae.epochs={epochs}"] if epochs else [])
    cfg = load_config(FitRunConfig, config, overrides)
    splits = load_splits(cfg.data, cfg.seed)
    est = cfg.encoder(progress=False)
    est.set_params(accelerate=accelerate)
    t0, c0 = time.perf_counter(), time.process_time()
    est.fit(splits["train"], splits["val"])
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    distill = sum(h.get("distill_seconds", 0.0) for h in est.history_)
    m = cluster_metrics(splits["test"].labels, est.predict(splits["test"]))
    return {
        "accelerate": accelerate, "wall": total, "cpu": cpu, "steps": est.n_steps_,
        "epochs": est.n_steps_ / math.ceil(len(splits["train"]) / cfg.vae.batch_size),
        "distill": distill, "ms_per_step": 1e3 * (total - distill) / max(est.n_steps_, 1),
        "programs": [p.key() for p in est.programs_], "nmi": m["nmi"], "purity": m["purity"],
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "kernel": native_status() if accelerate else "torch.nn.GRU (plain)",
    }


def _child(args, accelerate: bool) -> dict:
    cmd = [sys.executable, __file__, "--_child", "1" if accelerate else "0", "--config", args.config,
           "--device", args.device, "--seed", str(args.seed)] + (["--epochs", str(args.epochs)] if args.epochs else [])
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"fit failed ({'accelerated' if accelerate else 'plain'}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def part_speed(args) -> None:
    modes = [m for m, on in (("accelerated", not args.plain), ("plain", not args.accelerated)) if on]
    print(f"== plain vs accelerated: {args.config}, {args.epochs or 'config'} epochs per round, device {args.device}, "
          f"1 thread; each fit in a fresh process, one after the other; load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs", flush=True)
    res = {}
    for mode in modes:
        res[mode] = _child(args, mode == "accelerated")
        r = res[mode]
        print(f"{mode:<12} {r['wall']:7.1f} s wall ({r['cpu']:.1f} s CPU), {r['ms_per_step']:.2f} ms per VAE step "
              f"({r['steps']} steps, {r['epochs']:.0f} epochs), distillation {r['distill']:.1f} s, peak "
              f"{r['rss_mb']:.0f} MB; programs {r['programs']}, test NMI {r['nmi']:.3f}, purity {r['purity']:.3f}; "
              f"{r['kernel']}", flush=True)
    if len(res) == 2:
        a, p = res["accelerated"], res["plain"]
        print(f"speed-up of the accelerated path: {p['wall'] / a['wall']:.2f}x whole fit, "
              f"{p['ms_per_step'] / a['ms_per_step']:.2f}x per VAE step (keep an accelerator only at >= 1.5x); "
              f"same programs: {a['programs'] == p['programs']}")
    print("target: < 300 s for the paper-settings fit on 2 CPU cores (public reference: 1,254 s)")


def readme_example() -> str:
    """The code block under the README's "## In Python" heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## In Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    if match is None:
        raise SystemExit("README.md has no ```python block under '## In Python'")
    return match.group(1)


def part_routes(args) -> None:
    print("== the README's Python example and nsprog fit --quick (fresh processes, one after the other)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        py = subprocess.run([sys.executable, "-c", readme_example()], capture_output=True, text=True, cwd=tmp)
        t_py = time.perf_counter() - t0
        if py.returncode:
            raise SystemExit(f"the README example failed:\n{py.stderr[-3000:]}")
        t0 = time.perf_counter()
        cli = subprocess.run([sys.executable, "-m", "nsprog", "fit", "--quick", "--out", str(Path(tmp) / "cli"),
                              "--quiet"], capture_output=True, text=True, cwd=ROOT)
        t_cli = time.perf_counter() - t0
        if cli.returncode:
            raise SystemExit(f"nsprog fit --quick failed:\n{cli.stderr[-3000:]}")
        cli_programs = (Path(tmp) / "cli" / "programs.txt").read_text()
        cli_metrics = json.loads((Path(tmp) / "cli" / "metrics.json").read_text())["model"]
    same = all(line in py.stdout for line in cli_programs.splitlines() if line.startswith("[program"))
    ratio = max(t_py, t_cli) / min(t_py, t_cli)
    print(f"README Python example: {t_py:6.1f} s wall")
    print(f"nsprog fit --quick:    {t_cli:6.1f} s wall (also scores read-outs and draws its figures)")
    print(f"ratio {ratio:.2f} (target: within 1.20); same programs: {same}; CLI test NMI {cli_metrics['nmi']:.3f}")
    print("programs (CLI):\n" + cli_programs.rstrip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="experiments/configs/synthetic_2prog.yaml")
    ap.add_argument("--epochs", type=int, default=None, help="VAE epochs per round (default: the config's 50)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plain", action="store_true", help="only the plain path")
    ap.add_argument("--accelerated", action="store_true", help="only the accelerated path")
    ap.add_argument("--routes", action="store_true", help="only the README example against nsprog fit --quick")
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child is not None:
        print(json.dumps(one_fit(args.config, args.epochs, args.device, args.seed, args._child == "1")))
        return
    only_routes = args.routes and not (args.plain or args.accelerated)
    if not only_routes:
        part_speed(args)
    if args.routes or not (args.plain or args.accelerated):
        part_routes(args)


if __name__ == "__main__":
    main()
