"""``nsprog search CONFIG``: supervised program synthesis on a labelled dataset."""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, dataclass, field

from sklearn.metrics import accuracy_score, f1_score

from nsprog.commands.common import add_run_options, cli_overrides
from nsprog.config import load_config
from nsprog.data.sources import load_splits
from nsprog.dsl.definition import load_dsl
from nsprog.features.pipeline import FeaturePipeline
from nsprog.programs import ProgramSet
from nsprog.runs import RunBase, check_out_folder, start_run
from nsprog.search.synthesis import ProgramSearch, SearchSettings
from nsprog.utils import limit_threads, resolve_device

log = logging.getLogger("nsprog")


@dataclass
class SearchRunConfig(RunBase):
    """Config of ``nsprog search``: data, DSL, label columns and search settings."""

    name: str = "search"
    labels: list[str] = field(default_factory=lambda: ["label"])
    search: SearchSettings = field(default_factory=SearchSettings)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="supervised program synthesis: find the DSL program that best predicts each label column",
        description="Runs NEAR-style program search for each label column in the config and writes "
        "programs.json, programs.txt and metrics.json (test accuracy and weighted F1) to a fresh run folder.",
    )
    add_run_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = load_config(SearchRunConfig, args.config, cli_overrides(args))
    return run_search(cfg, out=args.out, force=args.force, progress=not (args.quiet or args.silent),
                      show=not args.silent)


def run_search(cfg: SearchRunConfig, out=None, force: bool = False, progress: bool = True, show: bool = True) -> int:
    with limit_threads(cfg.threads):
        return _run_search(cfg, out, force, progress, show)


def _run_search(cfg: SearchRunConfig, out, force: bool, progress: bool, show: bool) -> int:
    check_out_folder(out, force)
    device = resolve_device(cfg.device)
    dsl = load_dsl(cfg.dsl)
    splits = load_splits(cfg.data, cfg.seed)
    for col in cfg.labels:  # fail before any work if a label column is missing
        for split in ("train", "val", "test"):
            splits[split].label_column(col)
    pipe = FeaturePipeline.for_dsl(dsl)
    dsl.check_windows(splits["train"])
    with start_run(cfg.name, cfg, cfg.seed, out=out, force=force) as run:
        x = {"train": pipe.fit_transform(splits["train"])}
        x["val"] = pipe.transform(splits["val"])
        x["test"] = pipe.transform(splits["test"])
        programs, classes, info, metrics = {}, {}, {}, {}
        for col in cfg.labels:
            y = {k: splits[k].label_column(col) for k in ("train", "val", "test")}
            log.info("searching a program for %r (%d train / %d val windows, strategy %s)",
                     col, len(y["train"]), len(y["val"]), cfg.search.strategy)
            est = ProgramSearch(dsl, cfg.search, seed=cfg.seed, device=str(device), progress=progress, threads=None)
            est.fit(x["train"], y["train"], x["val"], y["val"])
            pred = est.predict(x["test"])
            metrics[col] = {
                "test_accuracy": float(accuracy_score(y["test"], pred)),
                "test_weighted_f1": float(f1_score(y["test"], pred, average="weighted")),
                "val_weighted_f1": est.val_f1_,
                "structure": est.program_.key(),
                "candidates_trained": est.n_candidates_,
                "seconds": est.seconds_,
            }
            programs[col], classes[col] = est.program_, est.classes_.tolist()
            info[col] = {"val_weighted_f1": est.val_f1_, "history": est.history_}
        pset = ProgramSet(dsl, pipe, programs, classes, info)
        pset.save(run.path / "programs.json")
        run.write_text("programs.txt", pset.to_text())
        run.write_json("metrics.json", {"labels": metrics, "settings": asdict(cfg.search)})
    if show:
        print(pset.to_text(), end="")
        for col, m in metrics.items():
            print(f"{col}: test accuracy {m['test_accuracy']:.4f}, weighted F1 {m['test_weighted_f1']:.4f} "
                  f"({m['candidates_trained']} candidates, {m['seconds']:.1f} s)")
        print(f"results in {run.path}")
    return 0
