"""``trebalink train``: argument parsing and printing; the work is :func:`trebalink.run.train_into_run`."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from nsprog.commands.common import add_run_options, cli_overrides


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train TREBA embeddings supervised by a task set (expert, learned or random); DDP under torchrun",
        description="Fits the task set on the training split (thresholds recorded in tasks.yaml), labels every "
        "window once (labels.h5), trains the label approximators (stage 1) and the embedding (stage 2), and "
        "writes best.pt (lowest validation loss), last.pt (every epoch; --resume), history.json and metrics.json. "
        "Several GPUs or nodes: torchrun --nproc_per_node N -m trebalink train CONFIG --out DIR. "
        "Example: trebalink train experiments/configs/treba_synthetic.yaml --out runs/treba_syn",
    )
    add_run_options(p)
    p.add_argument("--tasks", default=None,
                   help="the supervision: expert:NAME, random:K[:C], none or a task-set YAML (overrides the config)")
    p.add_argument("--force-tasks", action="store_true",
                   help="keep tasks that take one class on the training split (dropped with a warning otherwise)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default=None,
                   help="autocast on CUDA (overrides train.precision)")
    p.add_argument("--resume", metavar="DIR", default=None,
                   help="continue the run in DIR from its last finished epoch (with DIR's own config)")
    p.add_argument("--stop-after", type=int, default=None, metavar="EPOCHS",
                   help="stop after this many epochs (of both stages) in this call; continue later with --resume")
    p.set_defaults(func=run)


def run(args) -> int:
    from nsprog.config import load_config
    from trebalink.run import TrebaRunConfig, train_into_run

    if int(os.environ.get("RANK", "0")) != 0:  # other ranks of a torchrun job stay quiet
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("nsprog").setLevel(logging.WARNING)
    overrides = cli_overrides(args)
    if args.tasks is not None:
        overrides.append(f"tasks={args.tasks}")
    if args.precision is not None:
        overrides.append(f"train.precision={args.precision}")
    if args.force_tasks:
        overrides.append("force_tasks=true")
    if args.stop_after is not None and args.stop_after < 1:
        raise ValueError(f"--stop-after must be >= 1 epoch; got {args.stop_after}")
    if args.resume:
        if args.config or args.out:
            raise ValueError("--resume DIR continues the run in DIR with DIR's own config.yaml; do not give a config "
                             "file or --out with it")
        folder = Path(args.resume)
        if not (folder / "config.yaml").is_file():
            raise FileNotFoundError(f"--resume {folder}: no config.yaml there (not a trebalink train folder)")
        cfg = load_config(TrebaRunConfig, folder / "config.yaml", overrides)
        res = train_into_run(cfg, resume=folder, progress=not args.quiet, stop_after=args.stop_after)
    else:
        cfg = load_config(TrebaRunConfig, args.config, overrides)
        res = train_into_run(cfg, out=args.out, force=args.force, progress=not args.quiet, stop_after=args.stop_after)
    if int(os.environ.get("RANK", "0")) == 0 and not args.quiet:
        m = res.metrics
        if m:
            wps = m.get("windows_per_second", {})
            speed = [f"stage {k[-1]} {wps[k]:.0f} windows/s" if wps.get(k) else f"stage {k[-1]} not run"
                     for k in ("stage1", "stage2")]
            print(f"best stage-2 epoch {m.get('best_epoch')} (validation loss {m.get('best_val_loss', float('nan')):.4g});"
                  f" {', '.join(speed)}")
            if m.get("approximators"):
                print(f"label approximators: validation accuracy {m['approximators']['val_accuracy']:.3f}")
            for col, r in (m.get("readout") or {}).items():
                print(f"linear read-out of test {col!r} from the embedding: {r['accuracy']:.3f} "
                      f"(majority class {r['majority']:.3f}, {r['n']} windows)")
        state = "finished" if res.finished else "stopped (continue with --resume)"
        print(f"{state}: results in {res.path}")
    return 0
