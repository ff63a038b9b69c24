"""Figure 3 on the synthetic dataset: 0, 1 and 2 programs at the paper's settings, 3 seeds,
on the appendix's data and on the reference's (reject_ambiguous), with the oracle beside.

    python experiments/synthetic_figure3.py [--seeds 0 1 2] [--jobs 2] [--out experiments/results/synthetic]
    python experiments/synthetic_figure3.py --rescore     # re-score finished runs with the current code
    python experiments/synthetic_figure3.py --replot      # redraw their figures with the current code

Each run is an ordinary ``nsprog fit`` into OUT/<config>[-reject]-seed<k>/ (a finished run
is skipped, so the script resumes). At the end it writes OUT/summary.md (median and spread
over seeds of the program clusters' purity / NMI / RI against the 4 classes, next to the
oracle's on the same test sets, and each program's agreement with c_x / c_y) and copies
the neural-latent plots of seed 0 to OUT/figure3_*.png.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

RUNS = [  # (config, reject_ambiguous)
    ("synthetic_2prog", False),
    ("synthetic_2prog", True),
    ("synthetic_1prog", False),
    ("synthetic_0prog", False),
]


def run_one(config: str, reject: bool, seed: int, out: Path) -> Path:
    folder = out / f"{config}{'-reject' if reject else ''}-seed{seed}"
    if (folder / "metrics.json").is_file():
        return folder
    cmd = [sys.executable, "-m", "nsprog", "fit", f"experiments/configs/{config}.yaml", "--seed", str(seed),
           "--out", str(folder), "--force", "--quiet", "--set", f"data.reject_ambiguous={str(reject).lower()}"]
    print("running:", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)
    return folder


def rescore(folder: Path) -> None:
    """Recompute a finished run's test scores with the current scoring code (the fitted model and
    its regenerated test split are unchanged; fit time and round history are kept)."""
    from nsprog.config import load_config
    from nsprog.data.sources import load_splits
    from nsprog.encoder import NeurosymbolicEncoder
    from nsprog.evaluation import score_encoder
    from nsprog.fit_run import FitRunConfig
    from nsprog.utils import write_json_atomic

    cfg = load_config(FitRunConfig, folder / "config.yaml", [])
    test = load_splits(cfg.data, cfg.seed)["test"]
    old = json.loads((folder / "metrics.json").read_text())
    new = score_encoder(NeurosymbolicEncoder.load(folder), test, cfg.eval)
    write_json_atomic(folder / "metrics.json", {**old, **new})


def replot(folder: Path) -> None:
    """Redraw a finished run's figures with the current plotting code (the model is unchanged)."""
    from nsprog.config import load_config
    from nsprog.data.sources import load_splits
    from nsprog.encoder import NeurosymbolicEncoder
    from nsprog.evaluation.plots import plot_fit
    from nsprog.fit_run import FitRunConfig

    cfg = load_config(FitRunConfig, folder / "config.yaml", [])
    plot_fit(NeurosymbolicEncoder.load(folder), load_splits(cfg.data, cfg.seed), cfg.eval, folder / "plots")


def fmt(values) -> str:
    v = np.asarray(values, float)
    return f"{np.median(v):.3f} ± {v.std():.3f}"


def summarize(out: Path, seeds: list[int]) -> str:
    lines = ["| run | seeds | model purity | model NMI | model RI | oracle purity | oracle NMI | oracle RI | programs (seed 0) "
             "| each program's agreement with its factor (worst program) | neural latent linear read-out of c_x / c_y "
             "| neural latent k-NN read-out of c_x / c_y | fit time (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for config, reject in RUNS:
        ms = []
        for s in seeds:
            f = out / f"{config}{'-reject' if reject else ''}-seed{s}" / "metrics.json"
            if f.is_file():
                ms.append(json.loads(f.read_text()))
        if not ms:
            continue
        name = config + (" (reject_ambiguous)" if reject else "")
        orc = [m["oracle"] for m in ms if "oracle" in m]
        progs = "; ".join(p["structure"] for p in ms[0].get("programs", [])) or "k-means (4) of the neural latent"
        # each program is matched to the factor it agrees with best; the worst program of a run counts
        agree = fmt([min(max(p["agreement_c_x"], p["agreement_c_y"]) for p in m["programs"]) for m in ms]) \
            if ms[0].get("programs") else "-"
        readout = " / ".join(fmt([m["neural_latent_readout"][f] for m in ms]) for f in ("c_x", "c_y")) \
            if all("neural_latent_readout" in m for m in ms) else "-"
        knn = " / ".join(fmt([m["neural_latent_knn_readout"][f] for m in ms]) for f in ("c_x", "c_y")) \
            if all("neural_latent_knn_readout" in m for m in ms) else "-"
        lines.append(
            f"| {name} | {len(ms)} | {fmt([m['model']['purity'] for m in ms])} | {fmt([m['model']['nmi'] for m in ms])} | "
            f"{fmt([m['model']['ri'] for m in ms])} | {fmt([o['purity'] for o in orc])} | {fmt([o['nmi'] for o in orc])} | "
            f"{fmt([o['ri'] for o in orc])} | {progs} | {agree} | {readout} | {knn} | {fmt([m['fit_seconds'] for m in ms])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (each uses one thread)")
    ap.add_argument("--out", default="experiments/results/synthetic")
    ap.add_argument("--rescore", action="store_true",
                    help="recompute the test scores of finished runs with the current code instead of fitting")
    ap.add_argument("--replot", action="store_true", help="redraw the figures of finished runs instead of fitting")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(c, r, s) for s in args.seeds for c, r in RUNS]
    if args.rescore or args.replot:
        for c, r, s in jobs:
            folder = out / f"{c}{'-reject' if r else ''}-seed{s}"
            if (folder / "metrics.json").is_file():
                print("rescoring" if args.rescore else "replotting", folder, flush=True)
                (rescore if args.rescore else replot)(folder)
    else:
        with ThreadPoolExecutor(args.jobs) as pool:
            for f in [pool.submit(run_one, c, r, s, out) for c, r, s in jobs]:
                f.result()
    table = summarize(out, args.seeds)
    (out / "summary.md").write_text(
        "Synthetic dataset (paper appendix C), paper settings; median ± std over seeds; test split of 2,000 "
        "trajectories per seed; oracle = 1[final x > 10], 1[final y > 10] on the same windows.\n\n" + table
    )
    for config, reject in RUNS:
        src = out / f"{config}{'-reject' if reject else ''}-seed{args.seeds[0]}" / "plots" / "neural_latent.png"
        if src.is_file() and not reject:
            shutil.copy(src, out / f"figure3_{config}_neural_latent.png")
    src = out / f"synthetic_2prog-seed{args.seeds[0]}" / "plots" / "trajectories.png"
    if src.is_file():
        shutil.copy(src, out / "figure3_trajectories.png")
    print(table)


if __name__ == "__main__":
    main()
