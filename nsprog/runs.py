"""Run folders: one fresh directory per run with its config, seed, version and log.

``runs/<name>/<timestamp>/`` by default, or an explicit ``--out DIR`` that must be empty
unless ``force=True``; earlier results are never overwritten silently.
"""

from __future__ import annotations

import datetime as _dt
import logging
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

__all__ = ["Run", "RunBase", "start_run", "attach_log", "logger"]

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
        dev = self.device.split(":")[0]
        if dev not in ("auto", "cpu", "cuda", "mps"):
            return [f"device: expected auto, cpu, cuda, cuda:N or mps; got {self.device!r}"]
        return []


@dataclass
class Run:
    """An open run folder. ``write_json`` writes atomically; ``close`` detaches the log file."""

    path: Path
    name: str
    seed: int
    _handler: logging.Handler | None = None

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

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fresh_dir(root: Path, name: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = root / name / stamp
    path, i = base, 1
    while path.exists():
        path = base.with_name(f"{stamp}-{i}")
        i += 1
    return path


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
    are removed first (the user asked for it explicitly).
    """
    if out is not None:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"--out {path} exists and is not a folder")
        if path.exists() and any(path.iterdir()):
            if not force:
                raise FileExistsError(
                    f"--out {path} is not empty; choose a new folder, or pass --force to replace its contents"
                )
            shutil.rmtree(path)
    else:
        path = _fresh_dir(Path(root), name)
    path.mkdir(parents=True, exist_ok=True)

    atomic_write(path / "config.yaml", lambda p: p.write_text(dump_config(config), encoding="utf-8"))
    info = {
        "name": name,
        "seed": int(seed),
        "nsprog_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "command": " ".join(sys.argv),
        "started": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    info.update(extra or {})
    write_json_atomic(path / "run.json", info)

    handler = attach_log(path)
    logger.info("run folder %s (seed %d, nsprog %s)", path, seed, __version__)
    return Run(path=path, name=name, seed=int(seed), _handler=handler)


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
