"""``trebalink classify`` as a library call: check everything that can fail first, then run
the steps that are not complete (nsprog fits, TREBA trainings with their embeddings), build
the features, run the cells that have not finished through the executor seam, and write the
report.

The output folder holds ``classify.json`` (the config's hash, each condition's hash and a
record of every invocation), ``classify_config.yaml``, ``command.txt``, ``steps/`` (the fit
and TREBA run folders, unless ``cache`` puts them elsewhere), ``features/<fold>/`` (labels,
input and each condition's embedding), ``cells/...json`` (one finished cell each, written
by the cell), ``cluster.csv`` and the report: ``results.csv``, ``table.md`` and
``figure.png``. A rerun reads finished steps and cells back; conditions, fractions, seeds,
samplings and classifiers may be added between runs, but a folder written with other data,
labels, behaviours, input, classifier settings, fits or TREBA settings, or with another
definition under a condition's name, is refused (``force=True`` starts afresh, keeping the
step folders, which are keyed by their content).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from nsprog._version import __version__
from nsprog.config import dump_config, to_dict
from nsprog.data.sources import load_splits
from nsprog.executors import make_executor, run_jobs
from nsprog.utils import atomic_write, write_json_atomic
from trebalink.efficiency.cells import Cell, cell_key, condition_hash, evaluable_behaviours, plan_cells, read_cell, run_cell
from trebalink.efficiency.config import ClassifyConfig, core_dict, resolve_files, short_hash
from trebalink.efficiency.report import write_cluster_metrics, write_report
from trebalink.efficiency.sampling import check_fractions
from trebalink.efficiency.steps import (
    SPLITS, FoldData, behaviour_table, build_features, export_learned_tasks, fit_complete, fit_folder,
    fit_run_config, label_matrix, run_fit_job, run_treba_job, steps_root, treba_folder_done, treba_run_config,
)

__all__ = ["ClassifyRun", "run_classify", "plan_cells", "cell_arguments", "check_inputs", "classify_status",
           "MANIFEST"]

log = logging.getLogger("nsprog")

MANIFEST = "classify.json"


@dataclass
class ClassifyRun:
    """What one invocation did."""

    out: Path
    config_hash: str
    cells: int = 0
    run: int = 0
    skipped: int = 0
    steps_run: int = 0
    steps_reused: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # step or cell id -> error
    seconds: float = 0.0
    table_md: Path | None = None


def _flatten(d, prefix: str = "") -> dict:
    out = {}
    if isinstance(d, dict) and d:
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    else:
        out[prefix] = d
    return out


def check_out_folder(out: Path, cfg: ClassifyConfig, force: bool) -> dict | None:
    """The manifest of earlier runs of this config in ``out`` (None for a fresh folder).
    Raises ``FileExistsError`` naming what differs when ``out`` holds another experiment,
    unless ``force`` clears it (its step folders are kept: they are keyed by content)."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return None
    manifest = out / MANIFEST
    if not manifest.is_file():
        if not force:
            raise FileExistsError(f"--out {out} is not empty and holds no classify run (no {MANIFEST}); choose a new "
                                  "folder, or pass --force to replace its contents")
        _clear(out)
        return None
    saved = json.loads(manifest.read_text(encoding="utf-8"))
    core = core_dict(cfg)
    problems = []
    if saved.get("core_hash") != short_hash(core):
        now, then = _flatten(core), _flatten(saved.get("core", {}))
        diff = sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
        shown = ", ".join(diff[:12]) + (f" and {len(diff) - 12} more" if len(diff) > 12 else "")
        problems.append(f"keys that differ: {shown or 'unknown'}")
    for c in cfg.conditions:
        old = saved.get("conditions", {}).get(c.name)
        if old is not None and old != condition_hash(cfg, c):
            problems.append(f"condition {c.name!r} was defined otherwise there")
    if not problems:
        return saved
    if force:
        _clear(out)
        return None
    raise FileExistsError(f"--out {out} holds a classify run made with a different config ({'; '.join(problems)}); "
                          "refusing to mix their results. Use another --out, or --force to start it afresh (step "
                          "folders are kept)")


def _clear(out: Path) -> None:
    for p in out.iterdir():
        if p.name == "steps":
            continue
        shutil.rmtree(p) if p.is_dir() else p.unlink()


# ---------------------------------------------------------------------------- inputs
_SPLIT_CACHE: dict = {}


def fold_splits(cfg: ClassifyConfig, fold: str) -> dict:
    key = (json.dumps(to_dict(cfg.fold_data(fold)), sort_keys=True, default=str), cfg.seed)
    if key not in _SPLIT_CACHE:
        _SPLIT_CACHE.clear()
        _SPLIT_CACHE[key] = load_splits(cfg.fold_data(fold), cfg.seed)
    return _SPLIT_CACHE[key]


def _where(cfg: ClassifyConfig, fold: str) -> str:
    d = cfg.fold_data(fold)
    src = "the synthetic windows" if d.source == "synthetic" else f"{d.path}" + (f" (test: {d.test_path})"
                                                                                   if d.test_path else "")
    return f"fold {fold!r} ({src})"


def check_inputs(cfg: ClassifyConfig) -> dict[str, FoldData]:
    """Everything that can fail before any training: each fold's data loads into train / val /
    test, has the label column and the behaviours' classes; every task set, fit folder, TREBA
    folder and embeddings file a condition names exists; the fits' configs are valid."""
    from trebalink.programs import task_set

    check_fractions(cfg.fractions)
    problems = []
    for i, c in enumerate(cfg.conditions):
        if c.kind == "treba" and c.tasks is not None and not c.tasks.startswith("fit:"):
            try:
                task_set(c.tasks)
            except (ValueError, OSError) as exc:
                problems.append(f"conditions[{i}].tasks: condition {c.name!r}: {exc}")
        if c.kind == "treba" and c.run is not None and not (Path(c.run) / "best.pt").is_file():
            problems.append(f"conditions[{i}].run: condition {c.name!r}: {c.run} is not a finished trebalink train "
                            "folder (no best.pt)")
        if c.kind == "file" and not Path(c.path).is_file():
            problems.append(f"conditions[{i}].path: condition {c.name!r}: embeddings file not found: {c.path}")
    for name, spec in cfg.fits.items():
        if spec.run is not None and not (Path(spec.run) / "programs.json").is_file() and not Path(spec.run).is_file():
            problems.append(f"fits.{name}.run: {spec.run} is not an nsprog fit folder (no programs.json)")
    if problems:
        raise ValueError("; ".join(problems))
    folds = {}
    for fold in cfg.fold_names():
        for name, spec in cfg.fits.items():
            if spec.run is None:
                fit_run_config(cfg, name, fold)  # raises a ConfigError naming the field
        splits = fold_splits(cfg, fold)
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            raise ValueError(f"data: {_where(cfg, fold)} gives no {', '.join(missing)} split; set data.split (train, "
                             "val, test) or data.test_path")
        where = _where(cfg, fold)
        behaviours, classes = behaviour_table(cfg, splits, where)
        fd = FoldData(fold, splits, behaviours, classes)
        ys = {s: label_matrix(cfg, splits[s], behaviours, classes) for s in ("train", "test")}
        notes = evaluable_behaviours(ys["train"], ys["test"], behaviours)
        fd.evaluable = [b for b, why in notes.items() if not why]
        fd.notes = {b: why for b, why in notes.items() if why}
        for b, why in fd.notes.items():
            log.warning("%s: behaviour %r cannot be scored (%s in the %s split); its rows are marked %r", where, b,
                        why, "test" if why == "no test positives" else "training", why)
        folds[fold] = fd
    return folds


# ---------------------------------------------------------------------------- cells
def cell_arguments(cfg: ClassifyConfig, cell: Cell, out: str | Path, folds: dict[str, FoldData] | None = None) -> tuple:
    """The argument of :func:`~trebalink.efficiency.cells.run_cell` (plain data)."""
    cond = cfg.condition(cell.condition)
    behaviours = folds[cell.fold].behaviours if folds else None
    if behaviours is None:
        from trebalink.efficiency.steps import load_arrays

        behaviours = [str(b) for b in load_arrays(Path(out) / "features" / cell.fold / "labels.npz")["behaviours"]]
    repeat = cell.sampling * len(cfg.seeds) + cfg.seeds.index(cell.seed)
    return ({"cell": asdict(cell), "key": cell_key(cfg, cell), "out": str(out), "uses_input": cond.uses_input,
             "behaviours": list(behaviours), "threads": cfg.threads, "data_seed": cfg.seed,
             "n_chunks": cfg.sampling.n_chunks, "repeat": repeat, "mlp": cfg.mlp.estimator_params(cell.fraction),
             "probe": cfg.probe.estimator_params()},)


def classify_status(cfg: ClassifyConfig, out: str | Path) -> list[tuple[Cell, bool]]:
    return [(c, read_cell(out, c, cell_key(cfg, c)) is not None) for c in plan_cells(cfg)]


# ---------------------------------------------------------------------------- the run
def _git_commit() -> str:
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def _note(on_event, kind: str, text: str) -> None:
    log.info("%s", text)
    if on_event is not None:
        on_event(kind, text)


def run_classify(cfg: ClassifyConfig, out: str | Path, force: bool = False, executor=None, command: str | None = None,
                 on_event: Callable[[str, str], None] | None = None, config_folder: str | Path = ".") -> ClassifyRun:
    """Run every step and cell of ``cfg`` that has not finished into ``out`` and write the report.

    ``executor`` replaces the one ``cfg.executor`` describes (see :mod:`nsprog.executors`);
    ``on_event(kind, text)`` hears of each finished step and cell."""
    out = Path(out)
    if any(s.config and not s.resolved for s in cfg.fits.values()) or cfg.treba.get("config"):
        cfg = resolve_files(cfg, config_folder)
    saved = check_out_folder(out, cfg, force)
    core = core_dict(cfg)
    result = ClassifyRun(out=out, config_hash=short_hash(core))
    own = executor is None
    if own:
        executor = make_executor(cfg.executor, folder=out / "submitit")  # a missing backend fails here
    try:
        folds = check_inputs(cfg)
        out.mkdir(parents=True, exist_ok=True)
        info = saved or {"name": cfg.name, "core_hash": result.config_hash, "core": core, "conditions": {},
                         "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "nsprog_version": __version__,
                         "invocations": []}
        info["conditions"].update({c.name: condition_hash(cfg, c) for c in cfg.conditions})
        record = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": 0.0, "command": command or " ".join(
                  ["trebalink"] + sys.argv[1:]), "commit": _git_commit(),
                  "backend": getattr(executor, "backend", type(executor).__name__),
                  "workers": int(getattr(executor, "workers", 1)), "steps_run": 0, "cells_run": 0,
                  "cells_read_back": 0, "failed": 0}
        info["invocations"].append(record)
        atomic_write(out / "classify_config.yaml", lambda p: p.write_text(dump_config(cfg), encoding="utf-8"))
        write_json_atomic(out / MANIFEST, info)
        t0 = time.perf_counter()
        broken = _run_steps(cfg, out, folds, executor, result, on_event)
        _run_cells(cfg, out, folds, executor, result, broken, on_event, info, record, t0)
        result.seconds = time.perf_counter() - t0
        record.update(seconds=round(result.seconds, 1), steps_run=result.steps_run, cells_run=result.run,
                      cells_read_back=result.skipped, failed=len(result.failed))
        write_json_atomic(out / MANIFEST, info)
        atomic_write(out / "command.txt", lambda p: p.write_text(command_text(info), encoding="utf-8"))
    except BaseException:
        if own:
            executor.shutdown(wait=False, cancel_futures=True)
            own = False
        raise
    finally:
        if own:
            executor.shutdown()
    result.table_md = write_report(cfg, out, folds, provenance=command_text(info))
    return result


def command_text(info: dict) -> str:
    """Every invocation that computed something (and the last), with its commit."""
    calls = info["invocations"]
    shown = [c for c in calls if c.get("cells_run") or c.get("steps_run")] or calls[-1:]
    if calls and calls[-1] not in shown:
        shown.append(calls[-1])
    lines = []
    for c in shown:
        lines += [f"# {c['started']}: {c.get('steps_run', 0)} step(s) and {c.get('cells_run', 0)} cell(s) run, "
                  f"{c.get('cells_read_back', 0)} cell(s) read back, backend {c['backend']} x {c['workers']}, "
                  f"{c['seconds']:.0f} s, commit {c['commit']}", c["command"]]
    return "\n".join(lines) + "\n"


def _run_steps(cfg: ClassifyConfig, out: Path, folds: dict[str, FoldData], executor, result: ClassifyRun,
               on_event) -> dict[tuple[str, str], str]:
    """Fits, then TREBA trainings, then features. Returns ``(fold, condition) -> error`` for
    conditions that cannot be scored because a step failed."""
    broken: dict[tuple[str, str], str] = {}
    # 1. nsprog fits
    jobs, fit_ids = [], {}
    for fold in folds:
        for name in dict.fromkeys(c.fit_name for c in cfg.conditions if c.fit_name):
            spec = cfg.fits[name]
            folder = fit_folder(cfg, out, name, fold)
            fit_ids[(fold, name)] = folder
            if spec.run is None and not fit_complete(folder):
                jobs.append((f"fit {fold}/{name}", (run_fit_job, (to_dict(fit_run_config(cfg, name, fold)), str(folder)))))
            else:
                result.steps_reused += 1
    failed_fits = set()
    for key, outcome in run_jobs(executor, jobs):
        if isinstance(outcome, BaseException):
            result.failed[key] = f"{type(outcome).__name__}: {outcome}"
            failed_fits.add(tuple(key.split(" ", 1)[1].split("/", 1)))
            _note(on_event, "step", f"[{key}] failed: {outcome}")
        else:
            result.steps_run += 1
            _note(on_event, "step", f"[{key}] done in {outcome.get('seconds', 0):.0f} s -> {outcome['folder']}")
    # 2. TREBA trainings (one per distinct folder)
    jobs, seen = [], set()
    for fold in folds:
        for c in cfg.conditions:
            if c.kind != "treba" or c.run is not None:
                continue
            if c.fit_name and (fold, c.fit_name) in failed_fits:
                broken[(fold, c.name)] = f"fit {c.fit_name!r} failed"
                continue
            if c.fit_name:
                spec, _ = _tasks_path(cfg, c, out, fold)
                export_learned_tasks(fit_ids[(fold, c.fit_name)], c.classes, Path(spec))
            tcfg, folder = treba_run_config(cfg, c, out, fold)
            if treba_folder_done(folder):
                result.steps_reused += 1
                continue
            if folder in seen:
                continue
            seen.add(folder)
            jobs.append((f"treba {fold}/{c.name}", (run_treba_job, (to_dict(tcfg), str(folder)))))
    failed_treba = {}
    for key, outcome in run_jobs(executor, jobs):
        if isinstance(outcome, BaseException):
            result.failed[key] = f"{type(outcome).__name__}: {outcome}"
            failed_treba[key.split(" ", 1)[1]] = str(outcome)
            _note(on_event, "step", f"[{key}] failed: {outcome}")
        else:
            result.steps_run += 1
            _note(on_event, "step", f"[{key}] done in {outcome.get('seconds') or 0:.0f} s -> {outcome['folder']}")
    for fold in folds:
        for c in cfg.conditions:
            if c.kind == "programs" and (fold, c.fit) in failed_fits:
                broken[(fold, c.name)] = f"fit {c.fit!r} failed"
            if f"{fold}/{c.name}" in failed_treba:
                broken[(fold, c.name)] = "its TREBA training failed"
    # 3. features (in this process: cheap, and the cells of every backend read them)
    for fold, fd in folds.items():
        todo = [c for c in cfg.conditions if (fold, c.name) not in broken]
        for name, err in build_features(cfg, out, fd, todo).items():
            broken[(fold, name)] = err
            result.failed[f"features {fold}/{name}"] = err
            _note(on_event, "step", f"[features {fold}/{name}] failed: {err}")
    # broken TREBA folders that share a folder with a failed one
    for fold in folds:
        for c in cfg.conditions:
            if (fold, c.name) not in broken and c.kind != "input" and not (
                    Path(out) / "features" / fold / f"{c.name}.npz").is_file():
                broken[(fold, c.name)] = "its features are missing (a step failed)"
    if cfg.cluster:
        write_cluster_metrics(cfg, out, folds, broken)
    return broken


def _tasks_path(cfg, c, out, fold):
    from trebalink.efficiency.steps import tasks_identity

    return tasks_identity(cfg, c, out, fold)


def _run_cells(cfg: ClassifyConfig, out: Path, folds, executor, result: ClassifyRun, broken: dict, on_event,
               info: dict, record: dict, t0: float) -> None:
    status = classify_status(cfg, out)
    result.cells = len(status)
    todo = []
    for c, done in status:
        if done:
            result.skipped += 1
        elif (c.fold, c.condition) in broken:
            result.failed[c.id] = broken[(c.fold, c.condition)]
        else:
            todo.append(c)
    if result.skipped:
        _note(on_event, "cells", f"{out}: {result.skipped} of {len(status)} cells already finished (read back, not "
                                 "recomputed)")
    jobs = [(c.id, (run_cell, cell_arguments(cfg, c, out, folds))) for c in todo]
    n_done = result.skipped
    for cell_id, outcome in run_jobs(executor, jobs):
        n_done += 1
        if isinstance(outcome, BaseException):
            result.failed[cell_id] = f"{type(outcome).__name__}: {outcome}"
            _note(on_event, "cell", f"[{n_done}/{len(status)}] {cell_id} failed: {outcome}")
        else:
            result.run += 1
            m = outcome["map"]
            _note(on_event, "cell", f"[{n_done}/{len(status)}] {cell_id}: MAP "
                                    f"{'-' if m is None else f'{m:.3f}'} ({outcome['status']}, {outcome['n_train']} "
                                    f"items, {outcome['seconds']:.1f} s)")
        if result.run % 20 == 0:
            record.update(seconds=round(time.perf_counter() - t0, 1), steps_run=result.steps_run,
                          cells_run=result.run, cells_read_back=result.skipped, failed=len(result.failed))
            write_json_atomic(out / MANIFEST, info)
