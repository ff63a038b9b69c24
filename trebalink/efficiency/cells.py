"""The cells of a data-efficiency run: one classifier (MLP or probe) x condition x label
fraction x repeat (sampling x seed) x fold. Each cell is an independent job of plain data:
it reads the fold's features, draws the nested training sample, trains one classifier per
behaviour, scores the test items and writes its own record atomically. It sets its own
threads and seeds, so its numbers do not depend on the backend that ran it.

A behaviour is scored only when the sample holds positive and negative items of it and the
test items hold a positive; otherwise its entry says why (``no positives``, ``no negatives``,
``no test positives``) and carries no score. A row's MAP, macro F1 and error are the means
over the fold's evaluable behaviours, and are left empty when any of them is unscored in
that row (its ``status`` names them), so rows are never averaged over different behaviours.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nsprog._version import __version__
from nsprog.config import to_dict
from nsprog.utils import limit_threads, write_json_atomic
from trebalink.efficiency.config import ClassifyConfig, ConditionSpec, core_dict, short_hash
from trebalink.efficiency.metrics import behaviour_scores
from trebalink.efficiency.sampling import check_fractions, nested_sample
from trebalink.efficiency.steps import load_arrays

__all__ = ["Cell", "plan_cells", "cell_key", "condition_hash", "cell_path", "read_cell", "run_cell", "evaluable_behaviours"]

log = logging.getLogger("nsprog")


@dataclass(frozen=True)
class Cell:
    """One job: a classifier trained on one sample of one condition's features."""

    fold: str
    condition: str
    fraction: float
    sampling: int
    seed: int
    classifier: str

    @property
    def id(self) -> str:
        return f"{self.fold}/{self.condition}/{self.fraction:g}%/s{self.sampling}-seed{self.seed}/{self.classifier}"


def plan_cells(cfg: ClassifyConfig) -> list[Cell]:
    """Every cell, in an order that fills the figure early: fraction by fraction for the first
    repeat of every condition, then the next repeats."""
    cells = []
    for sampling in range(cfg.sampling.samplings):
        for seed in cfg.seeds:
            for fold in cfg.fold_names():
                for frac in check_fractions(cfg.fractions):
                    for c in cfg.conditions:
                        for clf in cfg.classifiers:
                            cells.append(Cell(fold, c.name, frac, sampling, seed, clf))
    return cells


def cell_key(cfg: ClassifyConfig, cell: Cell) -> str:
    """What a finished cell's record must carry to be read back rather than recomputed."""
    return short_hash({"core": short_hash(core_dict(cfg)), "condition": condition_hash(cfg, cfg.condition(cell.condition)),
                       "cell": asdict(cell)})


def condition_hash(cfg: ClassifyConfig, cond: ConditionSpec) -> str:
    """The hash of one condition's settings (a changed condition invalidates only its own cells)."""
    return short_hash(to_dict(cond))


def cell_path(out: str | Path, cell: Cell) -> Path:
    return (Path(out) / "cells" / cell.fold / cell.condition / f"f{cell.fraction:g}" /
            f"s{cell.sampling}-seed{cell.seed}-{cell.classifier}.json")


def read_cell(out: str | Path, cell: Cell, key: str | None = None) -> dict | None:
    """A finished cell's record (with ``key`` when given), else None."""
    p = cell_path(out, cell)
    if not p.is_file():
        return None
    try:
        rec = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return rec if key is None or rec.get("key") == key else None


_CACHE: OrderedDict = OrderedDict()


def _features(out: str, fold: str, condition: str, uses_input: bool) -> tuple[dict, dict]:
    """``(X, Y)`` per split for a condition (kept for the next cells of this process)."""
    k = (out, fold, condition, uses_input)
    if k in _CACHE:
        _CACHE.move_to_end(k)
        return _CACHE[k]
    root = Path(out) / "features" / fold
    labels = load_arrays(root / "labels.npz")
    parts = [load_arrays(root / "input.npz")] if uses_input else []
    emb = root / f"{condition}.npz"
    if emb.is_file():
        parts.append(load_arrays(emb))
    X = {s: np.concatenate([p[s] for p in parts], axis=1).astype(np.float32) for s in ("train", "val", "test")}
    Y = {s: labels[f"{s}_y"] for s in ("train", "val", "test")}
    _CACHE[k] = (X, Y)
    while len(_CACHE) > 4:
        _CACHE.popitem(last=False)
    return X, Y


def evaluable_behaviours(y_train: np.ndarray, y_test: np.ndarray, names: list[str]) -> dict[str, str]:
    """Behaviour -> why it cannot be scored in this fold at any fraction ('' when it can)."""
    out = {}
    for b, name in enumerate(names):
        tr = y_train[:, b][y_train[:, b] >= 0]
        te = y_test[:, b][y_test[:, b] >= 0]
        if not tr.any():
            out[name] = "no positives"
        elif tr.all():
            out[name] = "no negatives"
        elif not te.any():
            out[name] = "no test positives"
        else:
            out[name] = ""
    return out


def run_cell(args: dict) -> dict:
    """Run one cell (``args``: plain data, see :func:`trebalink.efficiency.harness.cell_arguments`),
    write its record to ``OUT/cells/...json`` and return it."""
    from trebalink.efficiency.classifiers import BehaviourMLP, LinearProbe

    cell = Cell(**args["cell"])
    t0 = time.perf_counter()
    names = list(args["behaviours"])
    with limit_threads(args["threads"]):
        X, Y = _features(args["out"], cell.fold, cell.condition, args["uses_input"])
        fold_status = evaluable_behaviours(Y["train"], Y["test"], names)
        sample = nested_sample(len(Y["train"]), cell.fraction, cell.sampling, args["data_seed"], args["n_chunks"])
        labelled = sample[(Y["train"][sample] >= 0).all(1)]
        val_ok = (Y["val"] >= 0).all(1)
        test_ok = (Y["test"] >= 0).all(1)
        ys = Y["train"][labelled]
        status, positives = {}, {}
        for b, name in enumerate(names):
            positives[name] = int(ys[:, b].sum()) if len(ys) else 0
            if fold_status[name]:
                status[name] = fold_status[name]
            elif positives[name] == 0:
                status[name] = "no positives"
            elif positives[name] == len(ys):
                status[name] = "no negatives"
            else:
                status[name] = "ok"
        cols = [b for b, name in enumerate(names) if status[name] == "ok"]
        scores: dict[str, dict] = {}
        t_fit = time.perf_counter()
        if cols:
            picked = [names[b] for b in cols]
            if cell.classifier == "mlp":
                est = BehaviourMLP(**args["mlp"], seed=cell.seed, names=picked)
            else:
                est = LinearProbe(**args["probe"], seed=cell.seed, names=picked)
            est.fit(X["train"][labelled], ys[:, cols], X["val"][val_ok], Y["val"][val_ok][:, cols])
            proba = est.predict_proba(X["test"][test_ok])
            for name, sc in zip(picked, behaviour_scores(Y["test"][test_ok][:, cols], proba)):
                scores[name] = sc
        seconds = time.perf_counter() - t_fit
    evaluable = [n for n in names if not fold_status[n]]
    missing = [n for n in evaluable if status[n] != "ok"]

    def mean(key):
        if not evaluable or missing:
            return None
        return float(np.mean([scores[n][key] for n in evaluable]))

    behaviours = {}
    for name in names:
        entry = {"status": status[name], "positives": positives[name]}
        entry.update(scores.get(name, {}))
        behaviours[name] = entry
    row_status = "ok" if evaluable and not missing else (
        "; ".join(f"{status[n]}: {n}" for n in missing) if missing else "no evaluable behaviour")
    record = {
        "cell": cell.id, "key": args["key"], **asdict(cell), "repeat": args["repeat"],
        "n_train": int(len(labelled)), "n_val": int(val_ok.sum()), "n_test": int(test_ok.sum()),
        "map": mean("ap"), "macro_f1": mean("f1"), "error_rate": mean("error"), "status": row_status,
        "one_class": [n for n in evaluable if scores.get(n, {}).get("one_class")],
        "behaviours": behaviours, "seconds": round(seconds, 4), "wall_seconds": round(time.perf_counter() - t0, 4),
        "nsprog_version": __version__,
    }
    _check_finite(record)
    write_json_atomic(cell_path(args["out"], cell), record)
    return record


def _check_finite(record: dict) -> None:
    for k in ("map", "macro_f1", "error_rate"):
        v = record[k]
        if v is not None and not math.isfinite(v):
            raise FloatingPointError(f"cell {record['cell']}: {k} is {v}")
