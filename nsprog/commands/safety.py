"""``nsprog safety``: safe neurosymbolic learning (DSE, DiffAI+, data only) on four benchmarks.

Subcommands: ``run`` (train + verify one benchmark in one mode), ``table`` (the resumable
results table), ``verify`` (re-verify a finished run) and ``list`` (the benchmarks).
"""

from __future__ import annotations

import argparse
import math

from nsprog.commands.common import add_quiet, add_run_options, cli_overrides
from nsprog.progress import fmt
from nsprog.safety.config import BENCHMARK_NAMES, MODES, SafetyRunConfig, SafetyTableConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("safety", help="safe learning of programs with neural modules (DSE, DiffAI+)")
    ssub = p.add_subparsers(dest="safety_command", metavar="SAFETY_COMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    r = ssub.add_parser("run", help="train one benchmark in one mode, then verify it",
                        description="Train, verify and measure one benchmark; writes metrics.json, params.pt, "
                                    "history.csv and trajectories.png into the run folder.")
    add_run_options(r)
    r.add_argument("--benchmark", help=f"one of: {', '.join(BENCHMARK_NAMES)}")
    r.add_argument("--mode", help=f"one of: {', '.join(MODES)}")
    r.add_argument("--train-size", type=int, help="training trajectories from the ground-truth program")
    r.add_argument("--components", type=int, help="training components (DiffAI+ boxes / DSE components)")
    r.add_argument("--paths", type=int, help="DSE paths per component")
    r.add_argument("--verifier-components", type=int,
                   help="verifier pieces per input dimension (default: 10000; cartpole 20)")
    r.add_argument("--steps", type=int, help="optimiser steps (the same budget for every mode)")
    r.add_argument("--epochs", type=float,
                   help="alternative to --steps: passes over the training pairs at train.data_batch pairs per step")
    r.add_argument("--no-plot", action="store_true", help="skip trajectories.png")
    r.set_defaults(func=_run)

    t = ssub.add_parser("table", help="benchmarks x modes x training sizes x seeds (resumable)",
                        description="Run every missing cell of the table, then write results.csv, table.md and "
                                    "table.png. Cells whose metrics.json exists are skipped.")
    t.add_argument("config", help="YAML table config, e.g. experiments/configs/safety_table.yaml")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value with a dotted key, e.g. --set train.steps=500")
    t.add_argument("--out", default=None, help="output folder (overrides the config's out)")
    t.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: the config's, 1)")
    t.add_argument("--summary-only", action="store_true", help="only rebuild table.md / results.csv / table.png")
    add_quiet(t)
    t.set_defaults(func=_table)

    v = ssub.add_parser("verify", help="re-verify the trained networks of a finished run")
    v.add_argument("run_dir", help="a run folder (or its params.pt)")
    v.add_argument("--verifier-components", type=int, default=None, help="pieces per input dimension")
    v.add_argument("--threads", type=int, default=1)
    add_quiet(v)
    v.set_defaults(func=_verify)

    ls = ssub.add_parser("list", help="list the benchmarks (and print their programs)")
    ls.add_argument("--programs", action="store_true", help="print each benchmark's program")
    add_quiet(ls)
    ls.set_defaults(func=_list)


def _run(args) -> int:
    from nsprog.config import load_config
    from nsprog.safety.benchmarks import get_benchmark
    from nsprog.safety.data import generate_data
    from nsprog.safety.run import run_safety

    over = cli_overrides(args)
    for opt, key in (("benchmark", "benchmark"), ("mode", "mode"), ("train_size", "train_size"),
                     ("components", "train.components"), ("paths", "train.paths"),
                     ("verifier_components", "verify.components"), ("steps", "train.steps")):
        val = getattr(args, opt)
        if val is not None:
            over.append(f"{key}={val}")
    if args.no_plot:
        over.append("plot=false")
    if args.epochs is not None and args.steps is not None:
        raise ValueError("give either --steps or --epochs, not both")
    cfg = load_config(SafetyRunConfig, args.config, over)
    if args.epochs is not None:
        if args.epochs <= 0:
            raise ValueError(f"--epochs must be > 0; got {args.epochs}")
        pairs = generate_data(get_benchmark(cfg.benchmark), cfg.train_size, seed=cfg.seed).n_pairs
        cfg.train.steps = max(1, math.ceil(args.epochs * math.ceil(pairs / cfg.train.data_batch)))
    path, metrics = run_safety(cfg, out=args.out, force=args.force, progress=not (args.quiet or args.silent))
    if not args.silent:
        keys = ("provably_safe", "verifier_pieces", "empirical_unsafe", "test_data_loss", "steps",
                "steps_per_second", "verify_seconds", "wall_seconds")
        for k in keys:
            print(f"  {k:<18} {fmt(metrics[k])}")
        print(f"run folder: {path}")
    return 0


def _table(args) -> int:
    from nsprog.config import load_config
    from nsprog.safety.table import run_table, summarise

    over = list(args.overrides)
    if args.out is not None:
        over.append(f"out={args.out}")
    if args.threads is not None:
        over.append(f"threads={args.threads}")
    cfg = load_config(SafetyTableConfig, args.config, over)
    if args.summary_only:
        path = summarise(cfg.out, command=None)
        print(f"wrote {path}")
        return 0
    res = run_table(cfg, progress=not (args.quiet or args.silent))
    if not args.silent:
        print(f"{res['run']} cell(s) run, {res['skipped']} skipped (already done) in {res['seconds']:.0f} s; "
              f"see {cfg.out}/table.md")
    return 0


def _verify(args) -> int:
    from nsprog.safety.run import load_params
    from nsprog.safety.verify import verify
    from nsprog.utils import limit_threads

    bench, modules, obj = load_params(args.run_dir)
    n = args.verifier_components or bench.defaults["verifier_components"]
    with limit_threads(args.threads):
        res = verify(bench, modules, n, progress=not (args.quiet or args.silent))
    for k, v in {"benchmark": bench.name, "mode": obj.get("mode"), **res.summary()}.items():
        print(f"  {k:<22} {fmt(v)}")
    return 0


def _list(args) -> int:
    from nsprog.safety.benchmarks import BENCHMARKS, get_benchmark

    for name in BENCHMARKS:
        b = get_benchmark(name)
        box = ", ".join(f"{v} in [{lo:g}, {hi:g}]" for v, lo, hi in zip(b.program.inputs, b.input_lo.tolist(),
                                                                          b.input_hi.tolist()))
        print(f"{name}: {b.description}\n  inputs: {box}; modules: {', '.join(b.program.modules)}; "
              f"verifier pieces per dimension: {b.defaults['verifier_components']}")
        if args.programs:
            print("  " + b.program.pretty().replace("\n", "\n  "))
    return 0
