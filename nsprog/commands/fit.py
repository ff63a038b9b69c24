"""``nsprog fit``, ``nsprog show`` and ``nsprog evaluate``: learn, inspect and score encoders."""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nsprog.commands.common import RunBase, add_quiet, add_run_options, cli_overrides
from nsprog.config import from_dict, load_config, load_yaml
from nsprog.data.io import load_split
from nsprog.data.sources import load_splits
from nsprog.data.synthetic import oracle_clusters
from nsprog.data.trajectories import Trajectories
from nsprog.learner import LearnerSettings, NeurosymbolicEncoder
from nsprog.metrics import cluster_metrics
from nsprog.models.nstvae import VAESettings
from nsprog.runs import Run, start_run
from nsprog.search.synthesis import SearchSettings
from nsprog.utils import resolve_device, seed_everything, set_threads, write_json_atomic

log = logging.getLogger("nsprog")


@dataclass
class EvalSettings:
    """How a fit is scored and illustrated."""

    labels: str = "label"  # label column the clusters are scored against
    # further binary columns: per-program agreement and the neural latent's linear read-out are
    # reported (columns the test windows lack are skipped with a warning)
    factors: list[str] = field(default_factory=lambda: ["c_x", "c_y"])
    kmeans_clusters: int | None = None  # 0-program fits: K-means clusters of the neural latent
    plots: bool = True


@dataclass
class FitRunConfig(RunBase):
    """Config of ``nsprog fit``."""

    name: str = "fit"
    n_programs: int = 2
    vae: VAESettings = field(default_factory=lambda: VAESettings(
        cont_capacity=1.0, gamma_disc=1.0, adversary_lr_scale=10.0, frozen_bits="hard", decorrelation_weight=10.0,
        adversary_input="whitened"))
    search: SearchSettings = field(default_factory=lambda: SearchSettings(strategy="greedy"))
    learner: LearnerSettings = field(default_factory=LearnerSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit",
        help="learn a neurosymbolic encoder (k programs + a neural latent) on trajectories",
        description="Runs Algorithms 1 and 2 and writes programs.txt/.json, checkpoint.pt, metrics.json "
        "(cluster metrics against the test labels, beside the oracle's where the dataset has one) and plots/.",
    )
    add_run_options(p)
    p.add_argument("--resume", metavar="DIR", default=None,
                   help="continue an interrupted fit in DIR from its last completed round")
    p.add_argument("--quick", action="store_true",
                   help="a smaller, faster variant (5k training windows, 20 epochs per round at lr 1e-3): "
                   "about 1.5 minutes on 2 CPU cores; applied before --set overrides")
    p.set_defaults(func=run_fit)

    s = sub.add_parser("show", help="print the programs and metrics of a fitted run folder")
    s.add_argument("run_dir")
    add_quiet(s)
    s.set_defaults(func=run_show)

    e = sub.add_parser("evaluate", help="score a fitted encoder on another dataset file")
    e.add_argument("run_dir")
    e.add_argument("--data", required=True, help="nsprog HDF5 dataset file")
    e.add_argument("--split", default="test", help="split to score (default test; 'all' for every split)")
    e.add_argument("--labels", default=None, help="label column (default: the fit's eval.labels)")
    e.add_argument("--out", default=None, help="JSON file for the scores (default RUN_DIR/evaluations/<data>.json)")
    add_quiet(e)
    e.set_defaults(func=run_evaluate)


# ---------------------------------------------------------------------------- fit
#: ``--quick``: fewer windows and epochs, a larger learning rate (same number of rounds and programs)
QUICK = [
    "data.n_train=5000", "data.n_val=1000", "data.n_test=2000",
    "vae.epochs=20", "vae.lr=0.001", "vae.capacity_iters=5000",
]


def run_fit(args) -> int:
    if args.resume:
        rdir = Path(args.resume)
        if not (rdir / "config.yaml").is_file():
            raise FileNotFoundError(f"--resume {rdir}: no config.yaml there (not an nsprog fit folder)")
        cfg = load_config(FitRunConfig, rdir / "config.yaml", cli_overrides(args))
        run = Run(path=rdir, name=cfg.name, seed=cfg.seed)
        run._handler = _attach_log(rdir)
        return fit_and_report(cfg, run, quiet=args.quiet, resume=True)
    overrides = (QUICK if args.quick else []) + cli_overrides(args)
    cfg = load_config(FitRunConfig, args.config, overrides)
    run = start_run(cfg.name + ("_quick" if args.quick else ""), cfg, cfg.seed, out=args.out, force=args.force)
    return fit_and_report(cfg, run, quiet=args.quiet, resume=False)


def _attach_log(path: Path):
    handler = logging.FileHandler(path / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    return handler


def _agreement(bits: np.ndarray, factor: np.ndarray) -> float:
    """Share of windows where a binary program agrees with a binary factor (up to relabelling)."""
    same = float(np.mean(bits == factor))
    return max(same, 1.0 - same)


def linear_readout(z: np.ndarray, factor: np.ndarray) -> float:
    """How much of a factor a linear classifier finds in a latent: 5-fold cross-validated
    accuracy (0.5 = nothing, for a balanced binary factor). The latent is standardised first:
    neural latents can live on a scale of 0.01, where an L2-regularised read-out underfits."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return float(cross_val_score(clf, z, factor, cv=5).mean())


def knn_readout(z: np.ndarray, factor: np.ndarray, k: int = 25) -> float:
    """Like :func:`linear_readout` with a k-nearest-neighbour classifier on the whitened latent:
    it also finds a factor stored non-linearly (strands, folds) that a linear read-out misses."""
    from sklearn.decomposition import PCA
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline

    clf = make_pipeline(PCA(whiten=True), KNeighborsClassifier(min(k, max(1, len(factor) // 5))))
    return float(cross_val_score(clf, z, factor, cv=5).mean())


def score(est: NeurosymbolicEncoder, test: Trajectories, cfg: EvalSettings, n_clusters: int | None = None) -> dict:
    """Cluster metrics on ``test`` (programs, or K-means of the neural latent for 0 programs),
    the oracle's on the same windows, and per-program agreement with each factor."""
    labels = test.label_column(cfg.labels)
    out: dict = {"n_test": len(test)}
    z = est.transform(test)
    if est.programs_:
        clusters = est.predict(test)
        out["model"] = cluster_metrics(labels, clusters)
        bits = (est.program_proba(test) > 0.5).astype(int)
        out["programs"] = []
        for j, p in enumerate(est.programs_):
            entry = {"structure": p.key(), "balance": float(min(bits[:, j].mean(), 1 - bits[:, j].mean()))}
            for f in cfg.factors:
                entry[f"agreement_{f}"] = _agreement(bits[:, j], test.label_column(f))
            out["programs"].append(entry)
    else:
        from sklearn.cluster import KMeans

        k = n_clusters or cfg.kmeans_clusters or len(np.unique(labels))
        clusters = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(z)
        out["model"] = dict(cluster_metrics(labels, clusters), method=f"k-means ({k}) on the neural latent")
    if cfg.factors and z.shape[1]:
        out["neural_latent_readout"] = {f: linear_readout(z, test.label_column(f)) for f in cfg.factors}
        out["neural_latent_knn_readout"] = {f: knn_readout(z, test.label_column(f)) for f in cfg.factors}
    if test.metadata.get("domain") == "synthetic" and cfg.labels in ("label", "labels"):
        out["oracle"] = dict(cluster_metrics(labels, oracle_clusters(test)),
                             program="1[final x > 10], 1[final y > 10]")
    return out


def fit_and_report(cfg: FitRunConfig, run: Run, quiet: bool, resume: bool) -> int:
    try:
        set_threads(cfg.threads)
        seed_everything(cfg.seed)
        device = resolve_device(cfg.device)
        splits = load_splits(cfg.data, cfg.seed)
        splits["test"].label_column(cfg.eval.labels)
        missing = [f for f in cfg.eval.factors if f not in splits["test"].factors]
        if missing:
            log.warning("eval.factors %s are not columns of the test windows (they have %s); skipped",
                        missing, sorted(splits["test"].factors) or "none")
            cfg.eval.factors = [f for f in cfg.eval.factors if f not in missing]
        est = NeurosymbolicEncoder(cfg.dsl, cfg.n_programs, cfg.vae, cfg.search, cfg.learner, seed=cfg.seed,
                                   device=str(device), threads=cfg.threads, progress=not quiet)
        t0 = time.perf_counter()
        est.fit(splits["train"], splits["val"], checkpoint_dir=run.path, resume=resume)
        seconds = time.perf_counter() - t0
        est.save(run.path)
        pset = est.program_set()
        run.write_text("programs.txt", pset.to_text() if est.programs_ else "(no programs: a plain TVAE)\n")
        metrics = score(est, splits["test"], cfg.eval)
        metrics.update(fit_seconds=seconds, vae_steps=est.step_, rounds=est.history_, data=cfg.data.source,
                       reject_ambiguous=cfg.data.reject_ambiguous if cfg.data.source == "synthetic" else None)
        run.write_json("metrics.json", metrics)
        if cfg.eval.plots:
            make_plots(est, splits, cfg, run.path / "plots")
        if not quiet:
            print(pset.to_text() if est.programs_ else "(no programs)", end="")
            _print_metrics(metrics)
            print(f"results in {run.path}")
    finally:
        run.close()
    return 0


def _print_metrics(m: dict) -> None:
    def row(name, d):
        return f"  {name:<8} purity {d['purity']:.3f}  NMI {d['nmi']:.3f}  RI {d['ri']:.3f}  ARI {d['ari']:.3f}  ({d['n_clusters']} clusters)"

    print(f"cluster metrics on {m['n_test']} test windows:")
    print(row("model", m["model"]))
    if "oracle" in m:
        print(row("oracle", m["oracle"]))
    for j, p in enumerate(m.get("programs", [])):
        agree = ", ".join(f"{k.split('_', 1)[1]} {v:.3f}" for k, v in p.items() if k.startswith("agreement_"))
        print(f"  program {j + 1}: {p['structure']}  minority share {p['balance']:.3f}" + (f"  agreement: {agree}" if agree else ""))
    if m.get("neural_latent_readout"):
        print("  linear read-out of the neural latent: " + ", ".join(f"{k} {v:.3f}" for k, v in m["neural_latent_readout"].items()))
    if m.get("neural_latent_knn_readout"):
        print("  k-NN read-out of the neural latent:   " + ", ".join(f"{k} {v:.3f}" for k, v in m["neural_latent_knn_readout"].items()))


def make_plots(est: NeurosymbolicEncoder, splits: dict, cfg: FitRunConfig, folder: Path) -> None:
    from nsprog import plots

    test = splits["test"]
    if test.metadata.get("domain") == "synthetic":
        plots.plot_trajectories(splits["train"], folder / "trajectories.png", boundaries=(10.0, 10.0))
    colours = {c: test.label_column(c) for c in (cfg.eval.factors or [cfg.eval.labels])}
    plots.plot_latent(est.transform(test), colours, folder / "neural_latent.png",
                      title=f"neural latent, {len(est.programs_)} program(s)")
    if est.programs_:
        p = np.clip(est.program_proba(test), 1e-7, 1 - 1e-7)
        logits = np.log(p) - np.log1p(-p)
        clusters = est.predict(test)
        plots.plot_program_values(logits, [p.key() for p in est.programs_], clusters, folder / "programs.png")
        plots.plot_cluster_examples(test, clusters, folder / "cluster_examples.png")


# ---------------------------------------------------------------------------- show / evaluate
def run_show(args) -> int:
    d = Path(args.run_dir)
    if not (d / "programs.txt").is_file():
        raise FileNotFoundError(f"{d} has no programs.txt (not a finished nsprog fit or search folder)")
    print((d / "programs.txt").read_text(), end="")
    mpath = d / "metrics.json"
    if mpath.is_file():
        m = json.loads(mpath.read_text())
        if "model" in m:
            _print_metrics(m)
        elif "labels" in m:
            for col, v in m["labels"].items():
                print(f"{col}: test accuracy {v['test_accuracy']:.4f}, weighted F1 {v['test_weighted_f1']:.4f}")
    return 0


def run_evaluate(args) -> int:
    d = Path(args.run_dir)
    cfg = from_dict(FitRunConfig, load_yaml(d / "config.yaml"), source=str(d / "config.yaml"))
    est = NeurosymbolicEncoder.load(d)
    test = load_split(args.data, args.split)
    ev = EvalSettings(**{**asdict(cfg.eval), **({"labels": args.labels} if args.labels else {})})
    ev.factors = [f for f in ev.factors if f in test.factors]
    metrics = score(est, test, ev)
    metrics["data"] = str(args.data)
    out = Path(args.out) if args.out else _fresh(d / "evaluations" / f"{Path(args.data).stem}.json")
    write_json_atomic(out, metrics)
    if not args.quiet:
        _print_metrics(metrics)
        print(f"scores written to {out}")
    return 0


def _fresh(path: Path) -> Path:
    if not path.exists():
        return path
    i = 1
    while path.with_name(f"{path.stem}-{i}{path.suffix}").exists():
        i += 1
    return path.with_name(f"{path.stem}-{i}{path.suffix}")
