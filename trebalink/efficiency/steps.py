"""The steps before the classifiers, each a job of plain data that any executor backend can
run and that reuses its run folder when the folder is complete:

* :func:`run_fit_job`: an nsprog fit (``nsprog fit``) on a fold's training windows;
  complete when ``programs.json`` and ``metrics.json`` exist, resumed from its last round
  when only ``checkpoint.pt`` does;
* :func:`run_treba_job`: a TREBA training (``trebalink train``) with one task set, then the
  embedding of every window of the fold's splits (``embeddings.npz``); complete when
  ``embeddings.npz`` exists, resumed from ``last.pt`` otherwise.

Step folders live under the cache (``OUT/steps`` by default), named by a hash of everything
that defines them (``fit-<name>-<hash>``, ``treba-<hash>``): a condition whose TREBA run
already exists, in this output or another sharing the cache, is not retrained.

The features the cells read are built here too (:func:`build_features`): per fold, the
behaviour labels, the input representation and each condition's embedding, checked against
the windows they belong to.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nsprog.config import apply_overrides, from_dict, to_dict
from nsprog.data.trajectories import Trajectories
from nsprog.utils import atomic_write, limit_threads
from trebalink.efficiency.config import ClassifyConfig, ConditionSpec, short_hash

__all__ = ["FoldData", "fit_run_config", "fit_folder", "fit_complete", "run_fit_job", "treba_run_config",
           "treba_folder", "run_treba_job", "EMBEDDINGS", "behaviour_table", "build_features", "save_arrays",
           "load_arrays", "SPLITS", "steps_root"]

log = logging.getLogger("nsprog")

EMBEDDINGS = "embeddings.npz"
SPLITS = ("train", "val", "test")


def steps_root(cfg: ClassifyConfig, out: str | Path) -> Path:
    return Path(cfg.cache) if cfg.cache else Path(out) / "steps"


def save_arrays(path: str | Path, arrays: dict) -> Path:
    """An ``.npz`` of numpy arrays and strings, written atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, write)


def load_arrays(path: str | Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _digest(traj: Trajectories) -> str:
    from trebalink.fitting import windows_digest

    return windows_digest(traj)


# ---------------------------------------------------------------------------- fits
def fit_run_config(cfg: ClassifyConfig, name: str, fold: str):
    """The ``nsprog fit`` config of fit ``name`` on fold ``fold``: its resolved sections, the
    fold's data (with the fit's own ``data.*`` overrides), the classify config's seed, device
    and threads."""
    from nsprog.fit_run import FitRunConfig

    spec = cfg.fits[name]
    resolved = dict(spec.resolved)
    data_over = resolved.pop("data_overrides", {}) or {}
    data = apply_overrides(to_dict(cfg.fold_data(fold)), [f"{k}={json.dumps(v)}" for k, v in data_over.items()])
    d = {**resolved, "name": f"fit_{name}", "seed": cfg.seed, "device": cfg.device, "threads": cfg.threads,
         "data": data}
    return from_dict(FitRunConfig, d, f"fits.{name} (fold {fold})")


def fit_folder(cfg: ClassifyConfig, out: str | Path, name: str, fold: str) -> Path:
    spec = cfg.fits[name]
    if spec.run is not None:
        return Path(spec.run)
    fc = to_dict(fit_run_config(cfg, name, fold))
    fc.pop("name")
    return steps_root(cfg, out) / fold / f"fit-{name}-{short_hash(fc)}"


def fit_complete(folder: Path) -> bool:
    return (folder / "programs.json").is_file() and (folder / "metrics.json").is_file()


def run_fit_job(config: dict, folder: str) -> dict:
    """Fit into ``folder`` (or reuse it when complete; resume it from ``checkpoint.pt``)."""
    from nsprog.fit_run import FitRunConfig, fit_into_run, prepare_fit
    from nsprog.programs import ProgramSet
    from nsprog.runs import Run, attach_log, start_run

    cfg = from_dict(FitRunConfig, config, "fit config")
    path = Path(folder)
    if fit_complete(path):
        return {"folder": str(path), "reused": True, "programs": ProgramSet.load(path).to_text()}
    with limit_threads(cfg.threads or None):
        prepared = prepare_fit(cfg)
        resume = (path / "checkpoint.pt").is_file() and (path / "config.yaml").is_file()
        if resume:
            run = Run(path=path, name=cfg.name, seed=cfg.seed, _handler=attach_log(path))
        else:
            run = start_run(cfg.name, cfg, cfg.seed, out=path, force=path.exists())
        with run:
            est, metrics = fit_into_run(cfg, run, prepared, resume=resume, progress=False)
    return {"folder": str(path), "reused": False, "seconds": float(metrics.get("fit_seconds", 0.0)),
            "programs": est.program_set().to_text() if est.programs_ else ""}


# ---------------------------------------------------------------------------- TREBA
def tasks_identity(cfg: ClassifyConfig, cond: ConditionSpec, out: str | Path, fold: str):
    """``(spec, identity)``: the task spec a TREBA run trains with (exported programs become a
    YAML file beside the fit) and what identifies its content for the cache key."""
    tasks = cond.tasks
    if tasks.startswith("fit:"):
        name = tasks[4:]
        folder = fit_folder(cfg, out, name, fold)
        path = steps_root(cfg, out) / fold / f"tasks-{folder.name}-c{cond.classes}.yaml"
        ident = {"fit": folder.name if cfg.fits[name].run is None else _file_hash(folder / "programs.json"),
                 "classes": cond.classes}
        return str(path), ident
    path = Path(tasks)
    if path.suffix.lower() in (".yaml", ".yml"):
        return tasks, {"file": _file_hash(path)}
    return tasks, {"spec": tasks}


def _file_hash(path: Path) -> str:
    import hashlib

    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return f"missing:{path}"


def treba_run_config(cfg: ClassifyConfig, cond: ConditionSpec, out: str | Path, fold: str):
    """``(TrebaRunConfig, folder)`` of a TREBA condition on fold ``fold``."""
    from trebalink.run import TrebaRunConfig

    spec, ident = tasks_identity(cfg, cond, out, fold)
    d = {**{k: v for k, v in cfg.treba.items() if k != "config"}, "name": f"treba_{cond.name}", "seed": cfg.seed,
         "device": cfg.device, "threads": cfg.threads, "data": to_dict(cfg.fold_data(fold)), "tasks": spec}
    tcfg = from_dict(TrebaRunConfig, d, f"treba (condition {cond.name!r}, fold {fold})")
    key = to_dict(tcfg)
    key.pop("name")
    key["tasks"] = ident
    return tcfg, steps_root(cfg, out) / fold / f"treba-{short_hash(key)}"


def export_learned_tasks(fit_dir: Path, classes: int, path: Path) -> Path:
    """Write the task set of a fit's programs (``trebalink export``) unless it is there."""
    from trebalink.programs.learned import export_tasks

    if not path.is_file():
        export_tasks(fit_dir, classes).save(path)
    return path


def treba_folder_done(folder: Path) -> bool:
    return (folder / EMBEDDINGS).is_file()


def run_treba_job(config: dict, folder: str) -> dict:
    """Train TREBA into ``folder`` (resumed from ``last.pt``; reused when complete) and embed
    every window of the splits into ``embeddings.npz``."""
    from nsprog.data.sources import load_splits
    from trebalink.checkpoint import read_model
    from trebalink.embed import embed_windows
    from trebalink.run import TrebaRunConfig, train_into_run
    from trebalink.train import LAST

    cfg = from_dict(TrebaRunConfig, config, "trebalink train config")
    path = Path(folder)
    if treba_folder_done(path):
        return {"folder": str(path), "reused": True}
    with limit_threads(cfg.threads or None):
        if (path / LAST).is_file():
            res = train_into_run(cfg, resume=path, progress=False)
        else:
            res = train_into_run(cfg, out=path, force=path.exists(), progress=False)
        if not res.finished:
            raise RuntimeError(f"{path}: the TREBA training stopped before its last epoch")
        splits = load_splits(cfg.data, cfg.seed)
        model = read_model(path)
        arrays = {}
        for name in SPLITS:
            arrays[name] = embed_windows(model, splits[name], "cpu", where=f"split {name}")
            arrays[f"{name}_digest"] = _digest(splits[name])
        save_arrays(path / EMBEDDINGS, arrays)
    m = res.metrics or {}
    sec = m.get("train_seconds") or {}
    return {"folder": str(path), "reused": False, "seconds": float(sum(sec.values())) if isinstance(sec, dict) else sec,
            "tasks": m.get("tasks"),
            "best_epoch": m.get("best_epoch")}


# ---------------------------------------------------------------------------- labels and features
@dataclass
class FoldData:
    """A fold's windows and what the cells need from them."""

    name: str
    splits: dict[str, Trajectories]
    behaviours: list[str]
    classes: dict[str, list]  # behaviour -> class names (or ids) of the label column
    evaluable: list[str] = field(default_factory=list)  # positives and negatives in train, positives in test
    notes: dict[str, str] = field(default_factory=dict)  # behaviour -> why it is not evaluable


def _split_names(cfg: ClassifyConfig, traj: Trajectories) -> list[str] | None:
    """The class names of the label column in one split (each file has its own vocabulary:
    an annotation table names only the behaviours it contains)."""
    if cfg.labels not in ("label", "labels") or not traj.label_names:
        return None
    return list(traj.label_names)


def behaviour_table(cfg: ClassifyConfig, splits: dict[str, Trajectories], where: str) -> tuple[list[str], dict]:
    """``(behaviours, classes)``: each behaviour's classes of the label column, by name (matched
    in every split's own vocabulary) or id: the config's behaviours, or one per class except a
    background class named ``none``. Errors name the field, the file and the valid choices."""
    names, present = {}, set()
    for s in SPLITS:
        t = splits[s]
        try:
            col = np.asarray(t.label_column(cfg.labels))
        except KeyError as exc:
            raise ValueError(f"labels: {where}, {s} split: {exc.args[0]}") from None
        names[s] = _split_names(cfg, t)
        for v in np.unique(col[col >= 0]):
            present.add(names[s][int(v)] if names[s] is not None and int(v) < len(names[s]) else int(v))
    known = sorted(present, key=str)
    if cfg.behaviours:
        classes = {}
        for b, wanted in cfg.behaviours.items():
            out = []
            for w in wanted:
                key = int(w) if isinstance(w, int) or (isinstance(w, str) and w.lstrip("-").isdigit()) else str(w)
                if key not in present:
                    have = ", ".join(str(k) for k in known)
                    raise ValueError(f"behaviours.{b}: class {w!r} does not occur in the label column {cfg.labels!r} "
                                     f"of {where} (its classes: {have})")
                out.append(key)
            classes[b] = out
        return list(cfg.behaviours), classes
    behaviours, classes = [], {}
    for c in known:
        if c == "none":
            continue
        key = "".join(ch if ch.isalnum() or ch in "_.+-" else "_" for ch in str(c)) or "class"
        key = key if not isinstance(c, int) else f"class{c}"
        behaviours.append(key)
        classes[key] = [c]
    if not behaviours:
        raise ValueError(f"labels: the label column {cfg.labels!r} of {where} has no class but the background; give "
                         "behaviours: explicitly")
    return behaviours, classes


def label_matrix(cfg: ClassifyConfig, traj: Trajectories, behaviours: list[str], classes: dict) -> np.ndarray:
    """``[N, B]`` int8: 1 where the item's class is one of the behaviour's, 0 elsewhere, -1 for
    unlabelled items (class < 0). Class names are looked up in this split's vocabulary."""
    column = np.asarray(traj.label_column(cfg.labels))
    names = _split_names(cfg, traj)
    cols = []
    for b in behaviours:
        ids = []
        for c in classes[b]:
            if isinstance(c, str):
                if names is not None and c in names:
                    ids.append(names.index(c))
            else:
                ids.append(int(c))
        cols.append(np.isin(column, ids))
    y = np.stack(cols, axis=1).astype(np.int8)
    y[column < 0] = -1
    return y


def input_features(cfg: ClassifyConfig, splits: dict[str, Trajectories]) -> dict[str, np.ndarray]:
    """The input representation of every window: raw states or the DSL's standardised domain
    features, at the centre frame, every frame flattened, or the mean over frames."""
    inp = cfg.input
    if inp.kind == "none":
        return {s: np.zeros((len(splits[s]), 0), np.float32) for s in SPLITS}
    if inp.kind == "pose":
        seqs = {s: np.asarray(splits[s].states, np.float32) for s in SPLITS}
    else:
        from nsprog.dsl.definition import load_dsl
        from nsprog.features.pipeline import FeaturePipeline

        pipe = FeaturePipeline.for_dsl(load_dsl(inp.dsl))
        try:
            pipe.check(splits["train"])
        except ValueError as exc:
            raise ValueError(f"input.dsl: {exc}") from None
        pipe.fit(splits["train"])
        seqs = {s: pipe.transform(splits[s]).numpy().astype(np.float32) for s in SPLITS}
    out = {}
    for s, x in seqs.items():
        if inp.frames == "centre":
            out[s] = x[:, x.shape[1] // 2]
        elif inp.frames == "mean":
            out[s] = x.mean(1)
        else:
            out[s] = x.reshape(len(x), -1)
        out[s] = np.ascontiguousarray(out[s], dtype=np.float32)
    return out


def _check_rows(arr: np.ndarray, traj: Trajectories, split: str, source: str) -> None:
    if arr.ndim != 2 or arr.shape[0] != len(traj):
        raise ValueError(f"{source}: split {split!r} has {arr.shape[0] if arr.ndim else 0} embeddings (shape "
                         f"{arr.shape}) but the labels have {len(traj)} windows; embed the same data with the same "
                         "windows (trebalink embed RUN --data ...)")


def condition_embeddings(cfg: ClassifyConfig, cond: ConditionSpec, out: str | Path, fold: FoldData) -> dict | None:
    """``{split: [N, d]}`` of a condition (None for the input alone)."""
    if cond.kind == "input":
        return None
    if cond.kind == "programs":
        from nsprog.programs import ProgramSet

        folder = fit_folder(cfg, out, cond.fit, fold.name)
        pset = ProgramSet.load(folder)
        if not pset.programs:
            raise ValueError(f"condition {cond.name!r}: fit {cond.fit!r} ({folder}) learned no programs")
        res = {}
        for s in SPLITS:
            bits = pset.predict(fold.splits[s])
            res[s] = np.stack([np.asarray(bits[k], np.float32) for k in pset.programs], axis=1)
        return res
    if cond.kind == "file":
        return _file_embeddings(Path(cond.path), fold)
    if cond.run is not None:
        from trebalink.checkpoint import read_model
        from trebalink.embed import embed_windows

        model = read_model(cond.run)
        return {s: embed_windows(model, fold.splits[s], "cpu", where=f"{cond.run}: split {s}") for s in SPLITS}
    _, folder = treba_run_config(cfg, cond, out, fold.name)
    arrays = load_arrays(folder / EMBEDDINGS)
    res = {}
    for s in SPLITS:
        _check_rows(arrays[s], fold.splits[s], s, str(folder / EMBEDDINGS))
        if str(arrays[f"{s}_digest"]) != _digest(fold.splits[s]):
            raise ValueError(f"{folder / EMBEDDINGS}: split {s!r} was embedded from other windows than the fold's "
                             "(the data changed since); delete that folder to retrain")
        res[s] = arrays[s].astype(np.float32)
    return res


def _file_embeddings(path: Path, fold: FoldData) -> dict:
    import h5py

    if not path.is_file():
        raise FileNotFoundError(f"{path}: embeddings file not found")
    res = {}
    with h5py.File(path, "r") as f:
        if "splits" not in f:
            raise ValueError(f"{path}: not a window embeddings file of `trebalink embed` (no 'splits' group; embed "
                             "the same nsprog dataset file, not tracking files)")
        for s in SPLITS:
            if s not in f["splits"]:
                raise ValueError(f"{path}: no split {s!r} (has {', '.join(f['splits'])})")
            z = np.asarray(f["splits"][s]["embeddings"], np.float32)
            _check_rows(z, fold.splits[s], s, str(path))
            res[s] = z
    return res


def build_features(cfg: ClassifyConfig, out: str | Path, fold: FoldData, conditions: list[ConditionSpec]) -> dict:
    """Write ``OUT/features/<fold>/``: ``labels.npz`` (behaviour matrices and label columns),
    ``input.npz`` and one ``<condition>.npz`` per condition (kept when present: the output
    folder's manifest guarantees an unchanged definition). Returns condition -> error for
    conditions whose features could not be built."""
    root = Path(out) / "features" / fold.name
    if not (root / "labels.npz").is_file():
        arrays = {}
        for s in SPLITS:
            arrays[f"{s}_y"] = label_matrix(cfg, fold.splits[s], fold.behaviours, fold.classes)
            arrays[f"{s}_label"] = np.asarray(fold.splits[s].label_column(cfg.labels))
        arrays["behaviours"] = np.asarray(fold.behaviours)
        save_arrays(root / "labels.npz", arrays)
    if not (root / "input.npz").is_file():
        save_arrays(root / "input.npz", input_features(cfg, fold.splits))
    failed = {}
    for cond in conditions:
        path = root / f"{cond.name}.npz"
        if path.is_file() or cond.kind == "input":
            continue
        try:
            emb = condition_embeddings(cfg, cond, out, fold)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            failed[cond.name] = f"{type(exc).__name__}: {exc}"
            continue
        save_arrays(path, emb)
    return failed
