"""Run folders: one fresh directory per run with its config, seed, version and log.

``runs/<name>/<timestamp>/`` by default, or an explicit ``--out DIR`` that must be empty
unless ``force=True``; earlier results are never overwritten silently.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import platform
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nsprog._version import __version__
from nsprog.config import dump_config
from nsprog.data.sources import DataConfig
from nsprog.settings import Settings, param
from nsprog.utils import atomic_write, write_json_atomic

__all__ = ["Run", "RunBase", "device_problems", "start_run", "check_out_folder", "attach_log", "logger"]

logger = logging.getLogger("nsprog")


@dataclass
class RunBase(Settings):
    """Fields every run config has: name, seed, device, threads, data and DSL."""

    name: str = "run"
    seed: int = param(0, ge=0)
    device: str = "cpu"  # auto, cpu, cuda[:N] or mps
    threads: int = param(1, ge=0)  # torch and BLAS threads (0: leave the machine's setting)
    data: DataConfig = field(default_factory=DataConfig)
    dsl: str = "synthetic"

    def _extra_checks(self) -> list[str]:
        return device_problems(self.device)


def device_problems(device: str) -> list[str]:
    """The problem with a ``device`` setting (auto, cpu, cuda, cuda:N or mps), if any."""
    if str(device).split(":")[0] not in ("auto", "cpu", "cuda", "mps"):
        return [f"device: expected auto, cpu, cuda, cuda:N or mps; got {device!r}"]
    return []


@dataclass
class Run:
    """An open run folder. ``write_json`` / ``write_text`` write atomically.

    Used as a context manager, it settles the folder when the body ends: on success the
    contents it replaced (``force``) are deleted; when interrupted everything is kept (a fit
    resumes from it); on a failure the error is logged to ``log.txt``, the failed run's files
    move to ``<folder>.failed`` and the replaced contents, if any, come back, so the folder
    is free (or as before) for the corrected rerun.
    """

    path: Path
    name: str
    seed: int
    _handler: logging.Handler | None = None
    replaced: Path | None = None  # where the contents this run replaces wait until it succeeds
    created: bool = False  # the folder did not exist (or was empty) before this run
    existed: bool = False  # the folder existed (empty, or with the replaced contents) before this run
    failed_to: Path | None = None  # set when a failure moved the run's files away

    def file(self, name: str) -> Path:
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_json(self, name: str, obj: Any) -> Path:
        return write_json_atomic(self.path / name, obj)

    def write_text(self, name: str, text: str) -> Path:
        return atomic_write(self.path / name, lambda p: p.write_text(text, encoding="utf-8"))

    def close(self) -> None:
        if self._handler is not None:
            logger.removeHandler(self._handler)
            self._handler.close()
            self._handler = None

    def succeed(self) -> None:
        self.close()
        if self.replaced is not None and self.replaced.exists():
            shutil.rmtree(self.replaced, ignore_errors=True)
            self.replaced = None

    def interrupted(self) -> None:
        logger.error("interrupted; %s keeps what was finished", self.path)
        self.close()

    def fail(self, exc: BaseException) -> None:
        logger.error("failed: %s", str(exc).replace("\n", " | ") or type(exc).__name__)
        self.close()
        if not (self.created or self.replaced is not None):
            return  # a resumed run: its folder holds an earlier run's work, which stays
        target = self.path.with_name(self.path.name + ".failed")
        try:
            if target.exists():
                shutil.rmtree(target)
            if self.path.exists():
                os.replace(self.path, target)
                self.failed_to = target
                logger.warning("the failed run's files (log.txt with the error) are in %s; %s is %s", target,
                               self.path, "as it was" if self.replaced is not None else "free for the corrected rerun")
            if self.replaced is not None:
                os.replace(self.replaced, self.path)
                self.replaced = None
            elif self.existed:
                self.path.mkdir(exist_ok=True)  # it was an empty folder: leave it empty
        except OSError as err:  # a full or read-only disk: leave things where they are
            logger.warning("could not tidy %s after the failure: %s", self.path, err)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.succeed()
        elif isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "Interrupted":
            self.interrupted()
        else:
            self.fail(exc)


def _fresh_dir(root: Path, name: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = root / name / stamp
    path, i = base, 1
    while path.exists():
        path = base.with_name(f"{stamp}-{i}")
        i += 1
    return path


def check_out_folder(out: str | Path | None, force: bool = False) -> None:
    """Fail before any work when ``--out`` cannot be used: a file, or a non-empty folder
    without ``force``."""
    if out is None:
        return
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"--out {path} exists and is not a folder")
    if path.exists() and any(path.iterdir()) and not force:
        raise FileExistsError(f"--out {path} is not empty; choose a new folder, or pass --force to replace its "
                              "contents (they are kept until the new run has succeeded)")


def start_run(
    name: str,
    config: Any,
    seed: int,
    out: str | Path | None = None,
    force: bool = False,
    root: str | Path = "runs",
    extra: dict | None = None,
) -> Run:
    """Create the run folder and write ``config.yaml``, ``run.json`` and ``log.txt``.

    ``out`` must not exist or be empty; with ``force=True`` an existing folder's contents
    are moved aside and deleted only when the new run succeeds (use the returned
    :class:`Run` as a context manager). Call :func:`check_out_folder` and every other check
    before this, so a bad input never touches the disk.
    """
    check_out_folder(out, force)
    replaced = None
    if out is not None:
        path = Path(out)
        existed = path.exists()
        created = not existed or not any(path.iterdir())
        if not created:
            replaced = path.with_name(f".{path.name}.replaced-{_dt.datetime.now():%Y%m%d-%H%M%S}")
            os.replace(path, replaced)
    else:
        path = _fresh_dir(Path(root), name)
        created, existed = True, False
    run = Run(path=path, name=name, seed=int(seed), replaced=replaced, created=created, existed=existed)
    try:
        path.mkdir(parents=True, exist_ok=True)
        atomic_write(path / "config.yaml", lambda p: p.write_text(dump_config(config), encoding="utf-8"))
        info = {
            "name": name,
            "seed": int(seed),
            "nsprog_version": __version__,
            "torch_version": str(torch.__version__),
            "python": platform.python_version(),
            "command": " ".join(sys.argv),
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
        }
        info.update(extra or {})
        write_json_atomic(path / "run.json", info)
        run._handler = attach_log(path)
    except BaseException as exc:
        run.fail(exc)
        raise
    logger.info("run folder %s (seed %d, nsprog %s)", path, seed, __version__)
    return run


def attach_log(folder: str | Path) -> logging.Handler:
    """Append the ``nsprog`` logger's INFO records to ``folder/log.txt``; detach with
    :meth:`Run.close`."""
    handler = logging.FileHandler(Path(folder) / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler
