"""``nsprog data``: write the synthetic dataset, inspect dataset files."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nsprog.commands.common import add_quiet
from nsprog.data import load_dataset, save_dataset, synthetic_dataset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="create, convert and inspect trajectory datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    s = dsub.add_parser("synthetic", help="write the paper's synthetic 2-D trajectory dataset (appendix C)")
    s.add_argument("--out", required=True, help="output HDF5 file, e.g. synthetic.h5")
    s.add_argument("--n-train", type=int, default=10_000)
    s.add_argument("--n-val", type=int, default=2_000)
    s.add_argument("--n-test", type=int, default=2_000)
    s.add_argument("--length", type=int, default=25, help="positions per trajectory")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--reject-ambiguous", action="store_true",
        help="resample trajectories ending on the wrong side of 10 for their class (the reference's data)",
    )
    s.add_argument("--force", action="store_true", help="overwrite an existing file")
    add_quiet(s)
    s.set_defaults(func=_synthetic)

    i = dsub.add_parser("info", help="summarise an nsprog dataset file")
    i.add_argument("path")
    add_quiet(i)
    i.set_defaults(func=_info)


def _synthetic(args) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} exists; choose another --out or pass --force to overwrite it")
    splits = synthetic_dataset(args.n_train, args.n_val, args.n_test, args.length, args.seed, args.reject_ambiguous)
    save_dataset(out, splits, attrs={"source": "synthetic", "seed": args.seed})
    if not args.quiet:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
        print(f"wrote {out} ({sizes}; {args.length} positions; reject_ambiguous={args.reject_ambiguous})")
    return 0


def _info(args) -> int:
    splits = load_dataset(args.path)
    print(f"{args.path}")
    for name, t in splits.items():
        print(f"  {name}: {t!r}")
        if t.labels is not None:
            counts = np.bincount(t.labels[t.labels >= 0])
            names = t.label_names or [str(i) for i in range(len(counts))]
            print("    labels: " + ", ".join(f"{names[i]}={c}" for i, c in enumerate(counts)))
        if t.metadata:
            keys = ", ".join(f"{k}={v}" for k, v in t.metadata.items() if not isinstance(v, (dict, list)))
            print(f"    metadata: {keys}")
    return 0
