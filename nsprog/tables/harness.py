"""``nsprog table`` as a library call: check everything that can fail before any training,
run the cells that have not finished through the executor seam, and write the report.

The output folder holds ``table.json`` (the config hash, versions and a record of every
invocation), ``table_config.yaml`` (the resolved config), ``command.txt`` (the command and
the commit), ``cells/<fold>/<model>/seed<N>.json`` (one finished cell each, written by the
cell itself), and the report: ``results.csv``, ``table.md`` and ``table.png``. A rerun reads
finished cells back instead of recomputing them, so a killed run loses at most the cells
that were in progress; a folder written by a different config is refused (``force=True``
starts it afresh).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nsprog._version import __version__
from nsprog.config import dump_config, from_dict, to_dict
from nsprog.executors import make_executor, run_jobs
from nsprog.tables.cells import (
    Cell, cell_arguments, eval_split, load_cell_data, longest_first, plan_cells, read_cell, run_cell,
)
from nsprog.tables.config import TableConfig, config_hash, hashed_dict
from nsprog.utils import atomic_write, write_json_atomic

__all__ = ["TableRun", "run_table", "check_table_inputs", "check_out_folder", "table_status"]

log = logging.getLogger("nsprog")


@dataclass
class TableRun:
    """What one invocation did."""

    out: Path
    config_hash: str
    cells: int
    run: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # cell id -> error
    seconds: float = 0.0
    table_md: Path | None = None


def _flatten(d, prefix: str = "") -> dict:
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(d, list) and d and all(isinstance(v, dict) for v in d):
        for i, v in enumerate(d):
            out.update(_flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = d
    return out


def check_out_folder(out: Path, cfg: TableConfig, force: bool) -> bool:
    """Make ``out`` ready for this config. Returns True when earlier cells of the same config
    are there to resume. Raises ``FileExistsError`` naming the differing keys when ``out`` was
    written by another config (or is not a table folder), unless ``force`` clears it."""
    h = config_hash(cfg)
    manifest = out / "table.json"
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return False
    if not manifest.is_file():
        if not force:
            raise FileExistsError(f"--out {out} is not empty and holds no table (no table.json); choose a new folder, "
                                  "or pass --force to replace its contents")
        shutil.rmtree(out)
        return False
    saved = json.loads(manifest.read_text(encoding="utf-8"))
    if saved.get("config_hash") == h:
        return True
    if force:
        shutil.rmtree(out)
        return False
    now = _flatten(hashed_dict(cfg))
    then = _flatten(saved.get("hashed_config", {}))
    diff = sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
    shown = ", ".join(diff[:12]) + (f" and {len(diff) - 12} more" if len(diff) > 12 else "")
    raise FileExistsError(
        f"--out {out} holds a table made with a different config (hash {saved.get('config_hash')}, this config "
        f"{h}; keys that differ: {shown or 'unknown'}); refusing to mix their cells. Use another --out, or "
        f"--force to start {out} afresh"
    )


def check_table_inputs(cfg: TableConfig, seeds: list[int]) -> None:
    """Everything that can fail before training: each fold's data loads, has the label column
    that is scored (in the evaluation windows, and in the training windows for the supervised
    ceiling), fits the DSL's feature domain where features or programs are used, and is
    synthetic where the oracle is asked for."""
    from nsprog.dsl.definition import load_dsl
    from nsprog.evaluation.oracle import has_oracle

    models = {m.model for m in cfg.models}
    needs_dsl = any(m.features for m in cfg.models) or models & {"programs", "supervised_program"}
    dsl = load_dsl(cfg.dsl) if needs_dsl else None
    split = eval_split(cfg)
    for fold in cfg.fold_names():
        data = cfg.fold_data(fold)
        splits = load_cell_data(data, seeds[0])
        where = {"train": data.path, "val": data.path, "test": data.test_path or data.path}
        need = [split] + (["train", "val"] if "supervised_program" in models else [])
        for part in dict.fromkeys(need):
            t = splits[part]
            src = "the synthetic generator" if data.source == "synthetic" else where[part]
            if cfg.labels in (None, "label", "labels"):
                if t.labels is None:
                    raise ValueError(f"labels: the {part} windows from {src} have no label column {cfg.labels!r} "
                                     f"(label columns there: {', '.join(sorted(t.factors)) or 'none'}); "
                                     f"set labels: to one of them, or give annotations")
            elif cfg.labels not in t.factors:
                raise ValueError(f"labels: the {part} windows from {src} have no label column {cfg.labels!r} "
                                 f"(available: {', '.join((['label'] if t.labels is not None else []) + sorted(t.factors)) or 'none'})")
        if dsl is not None:
            dsl.check_windows(splits["train"])
        if "oracle" in models and not has_oracle(splits[split], cfg.labels):
            raise ValueError(f"models: 'oracle' needs the synthetic generator's windows scored against 'label' "
                             f"(the generator's programs are known only there); fold {fold!r} has data.source "
                             f"{data.source!r} and labels {cfg.labels!r}")


def _git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def table_status(cfg: TableConfig, out: str | Path, seeds: list[int] | None = None) -> list[tuple[Cell, bool]]:
    """Every planned cell and whether it has finished (a record with this config's hash)."""
    h = config_hash(cfg)
    out = Path(out)
    status = []
    for c in plan_cells(cfg, seeds):
        rec = read_cell(out, c)
        status.append((c, rec is not None and rec.get("config_hash") == h))
    return status


def _command_text(info: dict) -> str:
    """Every invocation that ran cells (the last one too), with its commit: what made the table."""
    calls = info["invocations"]
    shown = [c for c in calls if c["cells_run"]] or calls[-1:]
    if calls and calls[-1] not in shown:
        shown.append(calls[-1])
    lines = []
    for c in shown:
        lines += [f"# {c['started']}: {c['cells_run']} cell(s) run, {c['cells_read_back']} read back, "
                  f"backend {c['backend']} x {c['workers']}, {c['seconds']:.0f} s, commit {c['commit']}", c["command"]]
    return "\n".join(lines) + "\n"


def _abandon(executor) -> None:
    executor.shutdown(wait=False, cancel_futures=True)


def run_table(cfg: TableConfig, out: str | Path, seeds: list[int] | None = None, force: bool = False,
              command: str | None = None, on_cell: Callable[[str, dict | Exception, int, int], None] | None = None,
              executor=None) -> TableRun:
    """Run every unfinished cell of ``cfg`` into ``out`` and write the report.

    ``seeds`` replaces ``cfg.seeds``; ``executor`` replaces the one ``cfg.executor`` describes
    (anything with ``submit``/``shutdown``/``workers``, see :mod:`nsprog.executors`);
    ``on_cell(cell_id, record_or_error, done, total)`` is called as each cell finishes."""
    out = Path(out)
    seeds = list(cfg.seeds if seeds is None else seeds)
    cfg = from_dict(TableConfig, {**to_dict(cfg), "seeds": seeds}, "table config")
    h = config_hash(cfg)
    resuming = check_out_folder(out, cfg, force)
    own_executor = executor is None
    if own_executor:
        executor = make_executor(cfg.executor, folder=out / "submitit")  # a missing backend fails here
    try:
        check_table_inputs(cfg, seeds)
        out.mkdir(parents=True, exist_ok=True)
        command = command or " ".join(["nsprog"] + sys.argv[1:])
        commit = _git_commit()
        manifest = out / "table.json"
        info = json.loads(manifest.read_text(encoding="utf-8")) if resuming else {
            "name": cfg.name, "config_hash": h, "hashed_config": hashed_dict(cfg), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "nsprog_version": __version__, "invocations": []}
        atomic_write(out / "table_config.yaml", lambda p: p.write_text(dump_config(cfg), encoding="utf-8"))
        write_json_atomic(manifest, info)

        status = table_status(cfg, out, seeds)
        todo = [c for c, done in status if not done]
        result = TableRun(out=out, config_hash=h, cells=len(status), skipped=len(status) - len(todo))
        if result.skipped:
            log.info("%s: %d of %d cells already finished (read back, not recomputed)", out, result.skipped, len(status))
        t0 = time.perf_counter()
        if int(getattr(executor, "workers", 1)) > 1:
            todo = longest_first(cfg, todo)
        jobs = [(c.id, (run_cell, cell_arguments(cfg, c, out, h))) for c in todo]
        record = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": 0.0,
                  "backend": getattr(executor, "backend", type(executor).__name__),
                  "workers": int(getattr(executor, "workers", 1)), "cells_run": 0, "cells_read_back": result.skipped,
                  "cells_failed": 0, "seeds": seeds, "command": command, "commit": commit}
        info["invocations"].append(record)  # kept up to date, so a killed run is on record with what it finished
        write_json_atomic(manifest, info)
        n_done = result.skipped
        for cell_id, outcome in run_jobs(executor, jobs):
            n_done += 1
            if isinstance(outcome, BaseException):
                result.failed[cell_id] = f"{type(outcome).__name__}: {outcome}"
                log.error("[%d/%d] %s failed: %s", n_done, len(status), cell_id, outcome)
            else:
                result.run += 1
            record.update(seconds=round(time.perf_counter() - t0, 1), cells_run=result.run,
                          cells_failed=len(result.failed))
            write_json_atomic(manifest, info)
            if on_cell is not None:
                on_cell(cell_id, outcome, n_done, len(status))
        result.seconds = time.perf_counter() - t0
        record["seconds"] = round(result.seconds, 1)
        write_json_atomic(manifest, info)
        atomic_write(out / "command.txt", lambda p: p.write_text(_command_text(info), encoding="utf-8"))
    except BaseException:
        if own_executor:  # interrupted or failed: drop queued jobs, do not wait for running ones
            _abandon(executor)
            own_executor = False
        raise
    finally:
        if own_executor:
            executor.shutdown()
    from nsprog.tables.report import write_report

    result.table_md = write_report(cfg, out, seeds, provenance=_command_text(info))
    return result

