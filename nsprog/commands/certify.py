"""``nsprog certify RUN_DIR --data FILE --eps EPS``: certified robustness of learned programs."""

from __future__ import annotations

import argparse
from pathlib import Path

from nsprog.commands.common import add_quiet, output_file
from nsprog.data.io import load_split
from nsprog.programs import ProgramSet
from nsprog.utils import write_json_atomic


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "certify",
        help="fraction of windows whose program bits provably survive feature perturbations of size eps",
        description="Interval (box) semantics of the encoder DSL: every feature input moves by up to eps in its "
        "own units; a window's bit is certified when the program's output bounds do not straddle the threshold.",
    )
    p.add_argument("run_dir", help="a fit or search run folder (with programs.json)")
    p.add_argument("--data", required=True, help="nsprog HDF5 dataset file")
    p.add_argument("--split", default="test", help="split to certify (default test; 'all' for every split)")
    p.add_argument("--eps", type=float, default=1.0, help="perturbation size in each feature's own units (default 1.0)")
    p.add_argument("--eps-feature", action="append", default=[], metavar="NAME=EPS",
                   help="a different eps for one feature (repeatable); features not named use --eps")
    p.add_argument("--check", type=int, default=0, metavar="N",
                   help="also sample N random perturbations in each of the --check-windows certified windows nearest the "
                   "threshold and count bit flips (0 expected)")
    p.add_argument("--check-windows", type=int, default=50)
    p.add_argument("--out", default=None, help="JSON report (default RUN_DIR/certify/<data>-eps<EPS>.json)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from nsprog.safety.certify import brute_force_check, certify, closest_certified

    out = output_file(args.out, Path(args.run_dir) / "certify" / f"{Path(args.data).stem}-eps{args.eps:g}.json",
                      args.force)
    pset = ProgramSet.load(args.run_dir)
    traj = load_split(args.data, args.split)
    eps: float | dict = args.eps
    if args.eps_feature:
        eps = {f: args.eps for f in pset.pipeline.features}
        for item in args.eps_feature:
            if "=" not in item:
                raise ValueError(f"--eps-feature expects NAME=EPS; got {item!r}")
            k, v = item.split("=", 1)
            if k not in eps:
                raise KeyError(f"--eps-feature names unknown feature {k!r}; features: {', '.join(pset.pipeline.features)}")
            eps[k] = float(v)
    res = certify(pset, traj, eps)
    report = res.summary()
    report.update(data=str(args.data), split=args.split, programs={n: pset.describe(n)["text"] for n in res.names})
    if args.check:
        idx = closest_certified(res, args.check_windows)  # the certified windows nearest the threshold
        report["brute_force"] = brute_force_check(pset, traj, res, args.check, windows=idx)
    write_json_atomic(out, report)
    if not args.silent:
        print(f"{report['n_windows']} windows of {args.data} ({args.split}), eps {args.eps:g} per feature unit")
        for n, frac in report["certified_fraction"].items():
            print(f"  {n}: {100 * frac:.1f}% certified   {report['programs'][n]}")
        print(f"  all bits (the cluster) certified: {100 * report['cluster_certified_fraction']:.1f}%")
        if args.check:
            bf = report["brute_force"]
            print(f"  brute force: {bf['windows_checked']} certified windows x {bf['samples_per_window']} samples, "
                  f"flips {bf['flips']}")
        print(f"report written to {out}")
    return 0
