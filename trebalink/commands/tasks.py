"""``trebalink tasks`` and ``trebalink export``: write task sets (expert, random or learned) and
summarise them on data."""

from __future__ import annotations

import argparse
from pathlib import Path

from nsprog.commands.common import add_quiet


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None,
                   help="nsprog HDF5 dataset: fit the set on its --split (quantile thresholds resolved and recorded, "
                        "constant tasks dropped) and print the analysis")
    p.add_argument("--split", default="train", help="split to fit and analyse (default train; 'all' for every split)")
    p.add_argument("--keep-constant", action="store_true",
                   help="keep tasks that take one class on the data (dropped with a warning otherwise)")
    p.add_argument("--analysis", default=None, metavar="FILE.json", help="also write the analysis as JSON")
    p.add_argument("--force", action="store_true", help="replace --out (and --analysis) if they exist")
    add_quiet(p)


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser(
        "tasks",
        help="write a shipped task set (expert or random) as YAML, optionally fitted and analysed on data",
        description="SPEC is expert:mouse (TREBA's 10 tasks), expert:openfield, expert:basketball, expert:synthetic, "
        "random:K[:C] (K seeded random projections in C quantile classes, the control) or a task-set YAML file. "
        "Example: trebalink tasks expert:synthetic --data synthetic.h5 --out tasks.yaml",
    )
    t.add_argument("spec", nargs="?", default=None, help="the task set (see above); omit with --list")
    t.add_argument("--out", default=None, help="YAML file to write")
    t.add_argument("--seed", type=int, default=0, help="seed of random task sets")
    t.add_argument("--list", action="store_true", help="list the task functions and shipped sets")
    _add_data_options(t)
    t.set_defaults(func=run_tasks)

    e = sub.add_parser(
        "export",
        help="turn a fitted nsprog encoder's programs into a task set (YAML)",
        description="One task per program of RUN_DIR (an nsprog fit folder or its programs.json). --classes 2: the "
        "program's bit (logit > 0); --classes 3 (or more): quantile classes of the logit, resolved on the training "
        "split by `trebalink train` (or now, with --data). The YAML carries the programs, so it needs nothing else. "
        "Example: trebalink export runs/fit/synthetic --out learned.yaml --classes 2",
    )
    e.add_argument("run_dir", help="nsprog fit run folder (or its programs.json)")
    e.add_argument("--out", required=True, help="YAML file to write")
    e.add_argument("--classes", type=int, default=2, help="2 (the program's bit, default) or more (quantile classes)")
    _add_data_options(e)
    e.set_defaults(func=run_export)


def _check_out(path: str | None, force: bool, what: str = "--out") -> Path | None:
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{what} {p} is a folder; give a file name such as {p / 'tasks.yaml'}")
    if p.exists() and not force:
        raise FileExistsError(f"{what} {p} exists; choose another file or pass --force to replace it")
    return p


def _fit_and_report(tasks, args):
    from nsprog.data.io import load_split
    from nsprog.utils import write_json_atomic
    from trebalink.analysis import analyze, gold_columns
    from trebalink.labelling import fit_tasks

    traj = load_split(args.data, args.split)
    fitted = fit_tasks(tasks, traj, force=args.keep_constant)
    report = analyze(fitted.tasks, fitted.values, fitted.labels, gold_columns(traj))
    if args.analysis:
        out = _check_out(args.analysis, args.force, "--analysis")
        write_json_atomic(out, {"data": str(args.data), "split": args.split, "dropped": fitted.dropped,
                                **report.to_dict()})
    if not args.silent:  # results are printed even with --quiet
        print(f"on {args.data} ({args.split}):")
        print(report.to_text(), end="")
        if fitted.dropped:
            print(f"dropped (constant on the data): {', '.join(fitted.dropped)}")
    return fitted.tasks


def _write(tasks, out: Path | None, args) -> None:
    if out is not None:
        tasks.save(out)
        if not args.silent:  # results are printed even with --quiet
            state = "fitted" if tasks.resolved else "unfitted (quantiles are resolved on the training split)"
            print(f"{len(tasks)} task(s), {state} -> {out}")


def run_tasks(args) -> int:
    from trebalink.programs import EXPERT_SETS, _functions, task_set

    if args.list:
        print("task functions (Task.fn):")
        for name, fn in sorted(_functions().items()):
            doms = ", ".join(fn.domains) if fn.domains else "any"
            print(f"  {name:<20} [{doms}] {fn.description}; args: {', '.join(fn.args) or 'none'}")
        print("task sets: " + ", ".join(f"expert:{n}" for n in EXPERT_SETS) + ", random:K[:C], none, FILE.yaml")
        return 0
    if not args.spec:
        raise ValueError("give a task set (expert:NAME, random:K[:C] or a YAML file), or --list")
    out = _check_out(args.out, args.force)
    tasks = task_set(args.spec, seed=args.seed)
    if args.data:
        tasks = _fit_and_report(tasks, args)
    elif out is None:
        raise ValueError("nothing to do: give --out FILE.yaml to write the set and/or --data FILE to analyse it")
    _write(tasks, out, args)
    return 0


def run_export(args) -> int:
    from trebalink.programs.learned import export_tasks

    out = _check_out(args.out, args.force)
    tasks = export_tasks(args.run_dir, classes=args.classes)
    if not args.silent:  # results are printed even with --quiet
        for t in tasks:
            print(f"[{t.name}] {t.provenance.get('program')}")
    if args.data:
        tasks = _fit_and_report(tasks, args)
    _write(tasks, out, args)
    return 0
