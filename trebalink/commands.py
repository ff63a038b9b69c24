"""``trebalink label``: apply learned programs to windows as labelling tasks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np

from nsprog.data.io import load_split
from nsprog.programs import ProgramSet
from nsprog.utils import atomic_write, write_json_atomic
from trebalink.tasks import ABSTAIN, label_matrix, summarize, tasks_from_programs


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
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} exists; choose another --out or pass --force")
    pset = ProgramSet.load(args.run_dir)
    traj = load_split(args.data, args.split)
    tasks = tasks_from_programs(pset)
    L = label_matrix(tasks, traj)
    certified = np.ones_like(L, dtype=bool)
    if args.certify_eps is not None:
        from nsprog.safety.certify import certify

        res = certify(pset, traj, args.certify_eps)
        certified = res.certified
        if args.uncertified == "drop":
            L = np.where(certified, L, ABSTAIN)
    names = [t.name for t in tasks]

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            f.create_dataset("labels", data=L)
            f.create_dataset("certified", data=certified)
            f.attrs["tasks"] = json.dumps(names)
            f.attrs["descriptions"] = json.dumps([t.description for t in tasks])
            f.attrs["certify_eps"] = -1.0 if args.certify_eps is None else float(args.certify_eps)
            f.attrs["abstain"] = ABSTAIN

    atomic_write(out, write)
    summary = summarize(L, names)
    write_json_atomic(out.with_suffix(".summary.json"), {"tasks": summary, "n_windows": len(traj),
                                                         "certified_fraction": certified.mean(0).tolist()})
    if not args.quiet:
        print(f"{len(traj)} windows x {len(tasks)} task(s) -> {out}")
        for s, c in zip(summary, certified.mean(0)):
            print(f"  {s['task']}: coverage {s['coverage']:.3f}, classes {s['class_balance']}, overlaps "
                  f"{s['overlaps']:.3f}, conflicts {s['conflicts']:.3f}, certified {c:.3f}")
    return 0
