"""``nsprog table CONFIG``: the cluster-metric tables (the paper's Tables 1-3), resumable;
parses and prints only (the harness is :mod:`nsprog.tables`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from nsprog.commands.common import add_executor_options, add_quiet, command_line, executor_overrides


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "table",
        help="baselines vs programs: a cluster-metric table (paper Tables 1-3), one cell per model x seed",
        description="Runs every listed model x seed (x fold, x cluster count) of a table config on one dataset, "
                    "scores all of them on the same evaluation windows, and writes results.csv, table.md and "
                    "table.png to --out. Finished cells are read back on a rerun, not recomputed.",
    )
    p.add_argument("config", help="YAML table config, e.g. experiments/configs/table_synthetic.yaml")
    p.add_argument("--seeds", type=int, default=None, metavar="N", help="run seeds 0..N-1 (default: the config's)")
    p.add_argument("--out", default=None, help="output folder (default runs/tables/<name>); a rerun into the same "
                                               "folder resumes")
    add_executor_options(p, "cells run at once (a local process pool unless --backend says otherwise)")
    p.add_argument("--force", action="store_true", help="start --out afresh when it holds another config's table")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value with a dotted key, e.g. --set baselines.tvae.epochs=5 (repeatable)")
    p.add_argument("--list", action="store_true", help="list the cells and which have finished; train nothing")
    add_quiet(p)
    p.set_defaults(func=run)


def _command(args) -> str:
    """The command line as given (for command.txt and table.md)."""
    return command_line(["nsprog", "table", args.config], args,
                        {"--seeds": "seeds", "--out": "out", "--jobs": "jobs", "--backend": "backend"})


def run(args) -> int:
    import sys

    from nsprog.tables import load_table_config, run_table, table_status

    cfg = load_table_config(args.config, executor_overrides(args))
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1; got {args.seeds}")
    seeds = list(range(args.seeds)) if args.seeds is not None else None
    out = Path(args.out) if args.out else Path("runs") / "tables" / cfg.name
    if args.list:
        status = table_status(cfg, out, seeds)
        for cell, done in status:
            print(f"{'done   ' if done else 'pending'} {cell.id}")
        print(f"{sum(d for _, d in status)} of {len(status)} cells finished in {out}")
        return 0

    def on_cell(cell_id, outcome, done, total):
        if args.quiet or isinstance(outcome, BaseException):
            return
        first = outcome["rows"][0]
        print(f"[{done}/{total}] {cell_id}: NMI {first['nmi']:.3f}, purity {first['purity']:.3f} "
              f"({first['clusters']} clusters, {outcome['wall_seconds']:.0f} s)", flush=True)

    res = run_table(cfg, out, seeds, force=args.force, command=_command(args), on_cell=on_cell)
    if not args.quiet:
        print(res.table_md.read_text(encoding="utf-8"))
    print(f"{res.run} cell(s) run, {res.skipped} read back, {len(res.failed)} failed, {res.seconds:.0f} s; "
          f"results in {out}")
    for cell_id, err in res.failed.items():
        print(f"failed: {cell_id}: {err}", file=sys.stderr)
    return 1 if res.failed else 0
