"""The cells of a table: one model x seed (x fold, x cluster count where the model trains
with it), each an independent job that loads its data, fits, clusters the evaluation
windows, scores them and writes its own result file atomically.

Which cells a model needs:

* ``tvae``, ``beta_tvae``: one fit per seed; its posterior means are clustered by K-means at
  every cluster count of the table (the training does not depend on it);
* ``tvae_kmeans``, ``jointvae``, ``vq_tvae``, ``random``: one cell per cluster count (its
  K-means indicator, categories, codebook or draw has that many clusters);
* ``programs`` / ``oracle`` with ``n_programs = k``: one cell, ``2^k`` clusters;
* ``supervised_program``: one cell, its predicted classes as clusters.

:func:`run_cell` is a module-level function of plain data, so any executor backend can run
it in another process or on another machine; it sets its own threads and seeds, so the
numbers do not depend on where it ran.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nsprog._version import __version__
from nsprog.config import from_dict, to_dict
from nsprog.data.sources import DataConfig, load_splits
from nsprog.data.trajectories import Trajectories
from nsprog.evaluation.ceiling import labelled_mask
from nsprog.evaluation.metrics import cluster_metrics
from nsprog.tables.config import CONTINUOUS_BASELINES, NEURAL_BASELINES, ModelSpec, TableConfig, row_key, row_label
from nsprog.utils import limit_threads, write_json_atomic

__all__ = ["Cell", "plan_cells", "longest_first", "run_cell", "cell_arguments", "cell_path", "read_cell", "load_cell_data", "eval_split"]

log = logging.getLogger("nsprog")


@dataclass(frozen=True)
class Cell:
    """One job of the table."""

    fold: str
    key: str  # row_key of the model entry
    model_index: int  # position of the entry in cfg.models
    seed: int
    clusters: int | None = None  # the cluster count a per-k model trains with; None: not per-k

    @property
    def id(self) -> str:
        return f"{self.fold}/{self.key}{f'@k{self.clusters}' if self.clusters else ''}/seed{self.seed}"


_PER_K = ("random", "tvae_kmeans", "jointvae", "vq_tvae")


def plan_cells(cfg: TableConfig, seeds: list[int] | None = None) -> list[Cell]:
    """Every cell of the table, seed by seed (the first seed's full table is done first)."""
    seeds = cfg.seeds if seeds is None else seeds
    ks = cfg.cluster_counts()
    cells = []
    for seed in seeds:
        for fold in cfg.fold_names():
            for i, m in enumerate(cfg.models):
                key = row_key(m)
                if m.model in _PER_K:
                    cells += [Cell(fold, key, i, seed, k) for k in ks]
                else:
                    cells.append(Cell(fold, key, i, seed))
    return cells


def longest_first(cfg: TableConfig, cells: list[Cell]) -> list[Cell]:
    """``cells`` seed by seed as planned, but within a seed the slow ones first: the program
    fits (most programs first), then the neural baselines and the supervised search, then the
    rest. A pool of workers then does not end with one long fit running alone; each cell's
    numbers do not depend on the order."""
    seeds = list(dict.fromkeys(c.seed for c in cells))
    position = {c: i for i, c in enumerate(cells)}
    models = cfg.models
    return sorted(cells, key=lambda c: (seeds.index(c.seed), slowness_rank(models[c.model_index].model,
                                                                            models[c.model_index].n_programs), position[c]))


def slowness_rank(model: str, n_programs: int | None) -> tuple[int, int]:
    """Sort key of a cell's expected cost, slowest first (see :func:`longest_first`)."""
    if model == "programs":
        return (0, -(n_programs or 0))
    return (1, 0) if model in NEURAL_BASELINES + ("supervised_program",) else (2, 0)


def cell_path(out: str | Path, cell: Cell) -> Path:
    return Path(out) / "cells" / cell.fold / (cell.key + (f"@k{cell.clusters}" if cell.clusters else "")) / \
        f"seed{cell.seed}.json"


def read_cell(out: str | Path, cell: Cell) -> dict | None:
    """A finished cell's record, or None when the cell has not finished."""
    p = cell_path(out, cell)
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None  # cannot happen with atomic writes; recompute rather than trust it


# ---------------------------------------------------------------------------- data
_CACHE: OrderedDict = OrderedDict()


def load_cell_data(data: DataConfig, seed: int) -> dict[str, Trajectories]:
    """The splits of ``data`` at ``seed`` (the data seed is ``data.data_seed`` or the cell's
    seed), kept for the next cells in the same process."""
    key = (json.dumps(to_dict(data), sort_keys=True, default=str), seed)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    splits = load_splits(data, seed)
    _CACHE[key] = splits
    while len(_CACHE) > 2:
        _CACHE.popitem(last=False)
    return splits


def eval_split(cfg: TableConfig) -> str:
    return "val" if cfg.score_on == "val" else "test"


def _where(data: DataConfig, split: str) -> str:
    if data.source == "synthetic":
        return f"the synthetic {split} windows"
    path = data.test_path if split == "test" and data.test_path else data.path
    return f"the {split} windows of {path}"


def _score(labels_all: np.ndarray, mask: np.ndarray, clusters: np.ndarray, what: str) -> dict:
    clusters = np.asarray(clusters).ravel()
    if clusters.shape[0] != labels_all.shape[0]:
        raise ValueError(f"{what}: the clustering has {clusters.shape[0]} entries but the evaluation windows number "
                         f"{labels_all.shape[0]}; expected one cluster id per window")
    m = cluster_metrics(labels_all[mask], clusters[mask])
    return {"purity": m["purity"], "nmi": m["nmi"], "ri": m["ri"], "ari": m["ari"],
            "clusters_found": m["n_clusters"], "n_eval": m["n"]}


# ---------------------------------------------------------------------------- the job
def run_cell(config: dict, cell: dict, out: str, config_hash: str) -> dict:
    """Run one cell (plain-data arguments, for any backend), write its record to
    ``OUT/cells/...json`` atomically and return it."""
    cfg = from_dict(TableConfig, config, "table config")
    c = Cell(**cell)
    spec = cfg.models[c.model_index]
    t0 = time.perf_counter()
    with limit_threads(cfg.threads):
        data = cfg.fold_data(c.fold)
        splits = load_cell_data(data, c.seed)
        t_data = time.perf_counter()
        rows, info = _run_model(cfg, spec, c, splits, data)
    t1 = time.perf_counter()
    record = {
        "cell": c.id, "config_hash": config_hash, "table": cfg.name, "fold": c.fold, "model": spec.model,
        "key": c.key, "row": row_label(spec), "features": spec.features, "n_programs": spec.n_programs,
        "seed": c.seed, "score_on": cfg.score_on, "rows": rows, "info": info,
        "fit_seconds": round(t1 - t_data, 3), "data_seconds": round(t_data - t0, 3), "wall_seconds": round(t1 - t0, 3),
        "nsprog_version": __version__, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json_atomic(cell_path(out, c), record)
    return record


def _run_model(cfg: TableConfig, spec: ModelSpec, c: Cell, splits: dict, data: DataConfig) -> tuple[list[dict], dict]:
    split = eval_split(cfg)
    train, val, ev = splits["train"], splits["val"], splits[split]
    labels_all = np.asarray(ev.label_column(cfg.labels))
    mask = labelled_mask(ev, cfg.labels)
    what = f"model {row_label(spec)!r} on {_where(data, split)}"
    info: dict = {}
    if spec.model == "random":
        from nsprog.baselines import RandomAssignment

        ids = RandomAssignment(n_clusters=c.clusters, seed=c.seed).fit(train).predict(ev)
        return [dict(clusters=c.clusters, **_score(labels_all, mask, ids, what))], info
    if spec.model == "oracle":
        from nsprog.evaluation.oracle import oracle_program_clusters

        ids = oracle_program_clusters(ev, spec.n_programs)
        return [dict(clusters=2 ** spec.n_programs, **_score(labels_all, mask, ids, what))], info
    if spec.model == "supervised_program":
        from nsprog.evaluation.ceiling import supervised_ceiling

        m = supervised_ceiling(train, val, ev, cfg.dsl, cfg.labels, cfg.ceiling, seed=c.seed, device=cfg.device,
                               threads=None)
        info = {"program": m["program"], "val_weighted_f1": m["val_weighted_f1"], "candidates": m["candidates"]}
        row = {"clusters": int(len(np.unique(np.asarray(train.label_column(cfg.labels))[labelled_mask(train, cfg.labels)]))),
               "purity": m["purity"], "nmi": m["nmi"], "ri": m["ri"], "ari": m["ari"], "clusters_found": m["n_clusters"],
               "n_eval": m["n"]}
        return [row], info
    if spec.model == "programs":
        from nsprog.encoder import NeurosymbolicEncoder

        enc = spec.encoder
        est = NeurosymbolicEncoder(dsl=cfg.dsl, n_programs=spec.n_programs, vae=enc.get("vae"), search=enc.get("search"),
                                   learner=enc.get("learner"), seed=c.seed, device=cfg.device, threads=None,
                                   progress=False)
        est.fit(train, val)
        ids = est.predict(ev)
        info = {"programs": [p.key() for p in est.programs_], "programs_text": est.program_set().to_text()}
        return [dict(clusters=2 ** spec.n_programs, **_score(labels_all, mask, ids, what))], info
    from nsprog.baselines import BASELINES, kmeans_on_means

    cls = BASELINES[spec.model]
    settings = cfg.baseline_settings(spec)
    ks = cfg.cluster_counts() if spec.model in CONTINUOUS_BASELINES else [c.clusters]
    est = cls(settings=settings, n_clusters=ks[0], feature_dsl=cfg.dsl if spec.features else None, seed=c.seed,
              device=cfg.device, threads=None, progress=False)
    est.fit(train)
    info = {"last_epoch": est.history_[-1] if est.history_ else {}, "steps": est.n_steps_}
    if spec.model in CONTINUOUS_BASELINES:
        z_train, z_eval = est.transform(train), est.transform(ev)
        rows = [dict(clusters=k, **_score(labels_all, mask, kmeans_on_means(z_train, z_eval, k, c.seed), what))
                for k in ks]
        return rows, info
    return [dict(clusters=c.clusters, **_score(labels_all, mask, est.predict(ev), what))], info


def cell_arguments(cfg: TableConfig, cell: Cell, out: str | Path, config_hash: str) -> tuple:
    """The arguments of :func:`run_cell` for ``cell`` (plain data)."""
    return (to_dict(cfg), asdict(cell), str(out), config_hash)
