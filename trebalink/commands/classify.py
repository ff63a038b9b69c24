"""``trebalink classify CONFIG``: the data-efficiency experiments (the paper's Figure 5),
resumable; parses and prints only (the work is :mod:`trebalink.efficiency`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from nsprog.commands.common import add_executor_options, add_quiet, command_line, executor_overrides


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classify",
        help="behaviour classifiers with 1-100%% of the labels on each condition's features (paper Figure 5)",
        description="Learns the programs a config names (nsprog fit), trains a TREBA embedding per condition (no "
                    "tasks, random, expert, learned programs), then trains one classifier per behaviour (an MLP and "
                    "a logistic-regression probe) on nested contiguous samples of the training labels, 9 repeats "
                    "per fraction, and writes results.csv, table.md and figure.png to --out. Finished steps and "
                    "cells are read back on a rerun. "
                    "Example: trebalink classify experiments/configs/efficiency_synthetic.yaml --out runs/eff_syn",
    )
    p.add_argument("config", help="YAML classify config, e.g. experiments/configs/efficiency_synthetic.yaml")
    p.add_argument("--out", default=None, help="output folder (default runs/classify/<name>); a rerun into the same "
                                               "folder resumes")
    add_executor_options(p, "jobs (fits, TREBA trainings, cells) at once: a local process pool unless --backend "
                            "says otherwise")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="keep the fit and TREBA run folders in DIR (shared between outputs; default OUT/steps)")
    p.add_argument("--force", action="store_true",
                   help="start --out afresh when it holds another config's run (step folders are kept)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value with a dotted key, e.g. --set mlp.max_epochs=50 (repeatable)")
    p.add_argument("--list", action="store_true", help="list the cells and which have finished; run nothing")
    add_quiet(p)
    p.set_defaults(func=run)


def _overrides(args) -> list[str]:
    over = executor_overrides(args)
    if args.cache is not None:
        over.append(f"cache={args.cache}")
    return over


def _command(args) -> str:
    """The command line as given (for command.txt and table.md)."""
    return command_line(["trebalink", "classify", args.config], args,
                        {"--out": "out", "--jobs": "jobs", "--backend": "backend", "--cache": "cache"})


def run(args) -> int:
    import sys

    from trebalink.efficiency.config import load_classify_config
    from trebalink.efficiency.harness import classify_status, run_classify

    cfg = load_classify_config(args.config, _overrides(args))
    out = Path(args.out) if args.out else Path("runs") / "classify" / cfg.name
    if args.list:
        status = classify_status(cfg, out)
        for cell, done in status:
            print(f"{'done   ' if done else 'pending'} {cell.id}")
        print(f"{sum(d for _, d in status)} of {len(status)} cells finished in {out}")
        return 0
    res = run_classify(cfg, out, force=args.force, command=_command(args), config_folder=Path(args.config).parent)
    if not args.silent:
        if not args.quiet:
            print(res.table_md.read_text(encoding="utf-8"))
        print(f"{res.steps_run} step(s) run, {res.steps_reused} reused; {res.run} cell(s) run, {res.skipped} read "
              f"back, {len(res.failed)} failed; {res.seconds:.0f} s; results in {out} (table.md, figure.png, "
              "results.csv)")
    for key, err in list(res.failed.items())[:20]:
        print(f"failed: {key}: {err}", file=sys.stderr)
    if len(res.failed) > 20:
        print(f"... and {len(res.failed) - 20} more failures (see {out / 'classify.json'})", file=sys.stderr)
    return 1 if res.failed else 0
