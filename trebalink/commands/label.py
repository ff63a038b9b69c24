"""``trebalink label``: apply learned programs to windows as labelling tasks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np

from nsprog.commands.common import add_quiet
from nsprog.data.io import load_split
from nsprog.utils import atomic_write, write_json_atomic


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "label",
        help="label windows with the programs of an nsprog run (one task per program)",
        description="Writes a label matrix (windows x tasks, -1 = abstain) to an HDF5 file and prints coverage, "
        "class balance, overlaps and conflicts. With --certify-eps, labels whose program bit is not certified "
        "robust to feature perturbations of that size are dropped (abstain) or flagged.",
    )
    p.add_argument("run_dir", help="nsprog fit or search run folder (or its programs.json)")
    p.add_argument("--data", required=True, help="nsprog HDF5 dataset file")
    p.add_argument("--split", default="all", help="split to label (default: all splits)")
    p.add_argument("--out", required=True, help="output HDF5 file for the label matrix")
    p.add_argument("--certify-eps", type=float, default=None,
                   help="certify each label against feature perturbations of this size (feature units)")
    p.add_argument("--uncertified", choices=("drop", "flag"), default="drop",
                   help="drop: uncertified labels become -1 (abstain); flag: keep them, mark them in 'certified'")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from trebalink.analysis import analyze, gold_columns
    from trebalink.labelling import bind_tasks
    from trebalink.programs.learned import export_tasks
    from trebalink.tasks import ABSTAIN

    out = Path(args.out)
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} exists; choose another --out or pass --force")
    tasks = export_tasks(args.run_dir, classes=2)
    traj = load_split(args.data, args.split)
    values, L = bind_tasks(tasks, traj).label_windows(traj)
    certified = None
    if args.certify_eps is not None:
        from nsprog.programs import ProgramSet
        from nsprog.safety.certify import certify

        certified = certify(ProgramSet.load(args.run_dir), traj, args.certify_eps).certified
        if args.uncertified == "drop":
            L = np.where(certified, L, ABSTAIN)
    names = tasks.names

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            f.create_dataset("labels", data=L)
            f.create_dataset("certified", data=np.ones_like(L, dtype=bool) if certified is None else certified)
            f.attrs["tasks"] = json.dumps(names)
            f.attrs["descriptions"] = json.dumps([t.description for t in tasks])
            f.attrs["certify_eps"] = -1.0 if args.certify_eps is None else float(args.certify_eps)
            f.attrs["abstain"] = ABSTAIN

    atomic_write(out, write)
    values = np.where(L == ABSTAIN, np.nan, values)
    report = analyze(tasks, values, L, gold_columns(traj))
    summary = {"analysis": report.to_dict(), "n_windows": len(traj),
               "certify_eps": args.certify_eps,
               "certified_fraction": None if certified is None else certified.mean(0).tolist()}
    write_json_atomic(out.with_suffix(".summary.json"), summary)
    if not args.silent:  # results are printed even with --quiet
        print(f"{len(traj)} windows x {len(tasks)} task(s) -> {out}")
        print(report.to_text(), end="")
        if certified is not None:
            kept = "dropped (-1)" if args.uncertified == "drop" else "kept and flagged"
            print(f"certified at eps {args.certify_eps} (uncertified labels {kept}): "
                  + ", ".join(f"{n} {c:.3f}" for n, c in zip(names, certified.mean(0))))
    return 0
