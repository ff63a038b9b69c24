"""``nsprog fit``, ``nsprog show`` and ``nsprog evaluate``: argument parsing and printing.

The work is done by :mod:`nsprog.fit_run` (fit into a run folder), :mod:`nsprog.encoder`
(the saved encoder) and :mod:`nsprog.evaluation` (scores)."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path

from nsprog.commands.common import add_quiet, add_run_options, cli_overrides, output_file

log = logging.getLogger("nsprog")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit",
        help="learn a neurosymbolic encoder (k programs + a neural latent) on trajectories",
        description="Runs Algorithms 1 and 2 and writes programs.txt/.json, checkpoint.pt, metrics.json "
        "(cluster metrics against the test labels, beside the oracle's where the dataset has one) and plots/. "
        "Example: nsprog fit experiments/configs/synthetic_2prog.yaml --set vae.epochs=3 --out runs/short",
    )
    add_run_options(p)
    p.add_argument("--resume", metavar="DIR", default=None,
                   help="continue an interrupted fit in DIR from its last completed round (with DIR's own config)")
    p.add_argument("--preset", default=None,
                   help="named settings for a kind of data (default, quick, basketball, openfield, calms21); "
                   "the config file and --set override them")
    p.add_argument("--quick", action="store_true",
                   help="the 'quick' preset on 5k synthetic training windows (20 epochs per round at lr 1e-3); "
                   "applied before the config file and --set")
    p.set_defaults(func=run_fit)

    s = sub.add_parser("show", help="print the programs and metrics of a fitted run folder or saved encoder")
    s.add_argument("run_dir")
    add_quiet(s)
    s.set_defaults(func=run_show)

    e = sub.add_parser("evaluate", help="score a fitted encoder on another dataset file")
    e.add_argument("run_dir")
    e.add_argument("--data", required=True, help="nsprog HDF5 dataset file")
    e.add_argument("--split", default="test", help="split to score (default test; 'all' for every split)")
    e.add_argument("--labels", default=None, help="label column (default: the fit's eval.labels)")
    e.add_argument("--out", default=None, help="JSON file for the scores (default RUN_DIR/evaluations/<data>.json)")
    e.add_argument("--force", action="store_true", help="replace --out if it exists")
    add_quiet(e)
    e.set_defaults(func=run_evaluate)


def _base_overrides(args) -> list[str]:
    from nsprog.encoder.presets import preset_dict
    from nsprog.fit_run import QUICK_DATA

    name = args.preset or ("quick" if args.quick else None)
    out: list[str] = []
    if name is not None:
        out += _flatten(preset_dict(name))
    return out + (QUICK_DATA if args.quick else [])


def _flatten(d: dict, prefix: str = "") -> list[str]:
    items = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        items += _flatten(v, key + ".") if isinstance(v, dict) else [f"{key}={json.dumps(v)}"]
    return items


def run_fit(args) -> int:
    from nsprog.commands.common import Interrupted
    from nsprog.config import load_config
    from nsprog.fit_run import FitRunConfig, fit_into_run, prepare_fit
    from nsprog.runs import Run, attach_log, check_out_folder, start_run

    if args.resume:
        if args.config or args.out or args.preset or args.quick:
            raise ValueError("--resume DIR continues the fit in DIR with DIR's own config.yaml; do not give a config "
                             "file, --out, --preset or --quick with it")
        rdir = Path(args.resume)
        if not (rdir / "config.yaml").is_file():
            raise FileNotFoundError(f"--resume {rdir}: no config.yaml there (not an nsprog fit folder)")
        cfg = load_config(FitRunConfig, rdir / "config.yaml", cli_overrides(args))
        prepared = prepare_fit(cfg)
        run = Run(path=rdir, name=cfg.name, seed=cfg.seed, _handler=attach_log(rdir))
    else:
        cfg = load_config(FitRunConfig, args.config, cli_overrides(args), base=_base_overrides(args))
        check_out_folder(args.out, args.force)
        prepared = prepare_fit(cfg)  # every check before the run folder is made
        run = start_run(cfg.name + ("_quick" if args.quick else ""), cfg, cfg.seed, out=args.out, force=args.force)
    try:
        with run:
            est, metrics = fit_into_run(cfg, run, prepared, resume=bool(args.resume), progress=_progress(args))
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; {run.path} keeps every finished round. Continue with: "
                          f"nsprog fit --resume {run.path}") from None
    if not args.silent:  # the results and the run folder are printed even with --quiet
        print(est.program_set().to_text() if est.programs_ else "(no programs)", end="")
        print_metrics(metrics)
        print(f"results in {run.path}")
    return 0


def _progress(args) -> bool:
    return not (args.quiet or args.silent)


def print_metrics(m: dict) -> None:
    def row(name, d):
        return (f"  {name:<8} purity {d['purity']:.3f}  NMI {d['nmi']:.3f}  RI {d['ri']:.3f}  ARI {d['ari']:.3f}  "
                f"({d['n_clusters']} clusters)")

    print(f"cluster metrics on {m['n_test']} test windows:")
    print(row("model", m["model"]))
    if "oracle" in m:
        print(row("oracle", m["oracle"]))
    for j, p in enumerate(m.get("programs", [])):
        agree = ", ".join(f"{k.split('_', 1)[1]} {v:.3f}" for k, v in p.items() if k.startswith("agreement_"))
        print(f"  program {j + 1}: {p['structure']}  minority share {p['balance']:.3f}"
              + (f"  agreement: {agree}" if agree else ""))
    if m.get("neural_latent_readout"):
        print("  linear read-out of the neural latent: "
              + ", ".join(f"{k} {v:.3f}" for k, v in m["neural_latent_readout"].items()))
    if m.get("neural_latent_knn_readout"):
        print("  k-NN read-out of the neural latent:   "
              + ", ".join(f"{k} {v:.3f}" for k, v in m["neural_latent_knn_readout"].items()))


def run_show(args) -> int:  # noqa: ARG001 - show always prints (what it is for)
    d = Path(args.run_dir)
    if not d.exists():
        raise FileNotFoundError(f"{d} does not exist")
    if (d / "programs.txt").is_file():
        print((d / "programs.txt").read_text(), end="")
    elif (d / "checkpoint.pt").is_file():
        from nsprog.encoder import NeurosymbolicEncoder

        est = NeurosymbolicEncoder.load(d)
        print(est.program_set().to_text() if est.programs_ else "(no programs: a plain trajectory VAE)\n", end="")
    else:
        raise FileNotFoundError(f"{d} has neither programs.txt nor checkpoint.pt (not an nsprog fit, search or "
                                "saved-encoder folder)")
    mpath = d / "metrics.json"
    if mpath.is_file():
        from nsprog.utils import read_json

        m = read_json(mpath, "metrics file")
        if "model" in m:
            print_metrics(m)
        elif "labels" in m:
            for col, v in m["labels"].items():
                print(f"{col}: test accuracy {v['test_accuracy']:.4f}, weighted F1 {v['test_weighted_f1']:.4f}")
    return 0


def run_evaluate(args) -> int:
    from nsprog.config import from_dict, load_yaml
    from nsprog.data.io import load_split
    from nsprog.encoder import NeurosymbolicEncoder
    from nsprog.evaluation.scoring import EvalSettings, score_encoder
    from nsprog.utils import write_json_atomic

    d = Path(args.run_dir)
    eval_cfg = EvalSettings()
    if (d / "config.yaml").is_file():  # a run folder of nsprog fit: its eval settings; a saved encoder: defaults
        data = load_yaml(d / "config.yaml").get("eval") or {}
        eval_cfg = from_dict(EvalSettings, data, source=str(d / "config.yaml"))
    out = output_file(args.out, d / "evaluations" / f"{Path(args.data).stem}.json", args.force)
    est = NeurosymbolicEncoder.load(d)
    test = load_split(args.data, args.split)
    ev = EvalSettings(**{**asdict(eval_cfg), **({"labels": args.labels} if args.labels else {})})
    metrics = score_encoder(est, test, ev)
    metrics["data"] = str(args.data)
    write_json_atomic(out, metrics)
    if not args.silent:
        print_metrics(metrics)
        print(f"scores written to {out}")
    return 0
