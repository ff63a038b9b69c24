"""One seam for running independent jobs: in this process, in a local process pool, or on a
cluster through submitit (SLURM; its local executor on one machine).

Every backend is an object with ``submit(fn, *args, **kwargs)`` returning a handle with
``.result()`` and ``.done()``, plus ``shutdown()`` and ``workers`` (how many jobs may run
at once). ``concurrent.futures`` executors qualify as they are; submitit's jobs qualify too.
:func:`run_jobs` submits a list of jobs keeping at most ``workers`` in flight and yields each
result as its job finishes, whatever the backend. Callers (the program search's candidate
training, the table harness's cells, the data-efficiency sweeps) write::

    from nsprog.executors import ExecutorSettings, make_executor, run_jobs

    executor = make_executor(ExecutorSettings(backend="process", workers=2))
    try:
        for key, outcome in run_jobs(executor, {"cell-a": (fn, args), "cell-b": (fn, args)}):
            ...  # outcome is the job's return value, or the exception it raised
    finally:
        executor.shutdown()

A job must be a module-level function with picklable arguments (the process and submitit
backends send it to another interpreter) and must not depend on the calling process's
state: set threads and seeds inside the job, so that every backend gives the same numbers.

Pointing the ``submitit`` backend at a SLURM cluster: install the extra
(``pip install -e ".[cluster]"``) on the login node, put the output folder on a file system
the compute nodes share, and set ``cluster: slurm`` (or leave ``auto``, which picks SLURM
where ``sbatch`` exists) with the partition, time limit and resources in
:class:`SubmititSettings`; see README "Tables" for a config example.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping

from nsprog.settings import Settings, param

__all__ = [
    "BACKENDS", "ExecutorSettings", "SubmititSettings", "InlineExecutor", "SubmititExecutor",
    "MissingBackendError", "make_executor", "run_jobs",
]

#: backend name -> what it is (listed in error messages and ``--help``)
BACKENDS = {
    "inline": "each job in this process, one after the other (the default)",
    "process": "a pool of local worker processes (--jobs N)",
    "submitit": "SLURM jobs on a cluster through submitit, or its local executor (extra: pip install -e \".[cluster]\")",
}


class MissingBackendError(ImportError, ValueError):
    """An executor backend whose package is not installed; the message names the extra."""


@dataclass
class SubmititSettings(Settings):
    """Where and how submitit runs jobs (ignored by the other backends)."""

    cluster: Literal["auto", "slurm", "local", "debug"] = "auto"  # auto: SLURM where sbatch exists, else local
    folder: str | None = None  # job logs and pickles; default OUT/submitit (must be shared with the nodes)
    partition: str | None = None  # SLURM partition
    timeout_min: int = param(240, ge=1)  # time limit of each job in minutes
    cpus_per_task: int = param(1, ge=1)
    mem_gb: float = param(4.0, gt=0)
    gpus_per_node: int = param(0, ge=0)
    additional: dict = field(default_factory=dict)  # further slurm_* options, e.g. {"account": "mylab"}
    poll_seconds: float = param(2.0, gt=0)  # how often finished jobs are looked for


@dataclass
class ExecutorSettings(Settings):
    """Which backend runs the jobs and how many run at once."""

    backend: Literal["inline", "process", "submitit"] = "inline"
    workers: int = param(1, ge=1)  # jobs in flight at once (process pool size; queued jobs on submitit)
    submitit: SubmititSettings = field(default_factory=SubmititSettings)


class InlineExecutor:
    """Runs each job immediately in this process (the default)."""

    workers = 1
    backend = "inline"

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            if isinstance(exc, KeyboardInterrupt):
                raise
            fut.set_exception(exc)
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


class _ProcessExecutor(ProcessPoolExecutor):
    backend = "process"

    def __init__(self, workers: int):
        import multiprocessing as mp

        super().__init__(max_workers=workers, mp_context=mp.get_context("spawn"))
        self.workers = workers


class SubmititExecutor:
    """submitit's ``AutoExecutor`` behind the seam: each ``submit`` is one SLURM (or local) job."""

    backend = "submitit"

    def __init__(self, settings: SubmititSettings, workers: int, folder: str | Path | None = None):
        submitit = _import_submitit()
        self.settings = settings
        self.workers = workers
        self.folder = Path(settings.folder or folder or "submitit")
        cluster = None if settings.cluster == "auto" else settings.cluster
        self._ex = submitit.AutoExecutor(folder=str(self.folder), cluster=cluster)
        params: dict[str, Any] = {"timeout_min": settings.timeout_min, "cpus_per_task": settings.cpus_per_task,
                                  "mem_gb": settings.mem_gb}
        if settings.gpus_per_node:
            params["gpus_per_node"] = settings.gpus_per_node
        if self._ex.cluster == "slurm":
            if settings.partition:
                params["slurm_partition"] = settings.partition
            params.update({f"slurm_{k}" if not k.startswith("slurm_") else k: v
                           for k, v in settings.additional.items()})
        self._ex.update_parameters(**params)

    @property
    def cluster(self) -> str:
        return self._ex.cluster

    def submit(self, fn: Callable, *args: Any, **kwargs: Any):
        return self._ex.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Nothing to release: submitted jobs belong to the cluster (they finish and write their
        results even when this process stops)."""


def _import_submitit():
    try:
        import submitit
    except ImportError:
        raise MissingBackendError(
            "executor backend 'submitit' needs the submitit package, which is not installed; install the "
            "cluster extra: pip install -e \".[cluster]\" (or pip install submitit)"
        ) from None
    return submitit


def make_executor(kind: str | ExecutorSettings = "inline", workers: int = 1, folder: str | Path | None = None):
    """An executor for ``kind`` (a backend name or :class:`ExecutorSettings`).

    ``folder`` is the default place for submitit's job files. A backend whose package is
    missing raises :class:`MissingBackendError` naming the extra to install."""
    settings = kind if isinstance(kind, ExecutorSettings) else None
    name = settings.backend if settings is not None else kind
    workers = settings.workers if settings is not None else workers
    if name == "inline":
        return InlineExecutor()
    if name == "process":
        return _ProcessExecutor(workers)
    if name == "submitit":
        return SubmititExecutor(settings.submitit if settings is not None else SubmititSettings(), workers, folder)
    valid = ", ".join(f"{k!r} ({v})" for k, v in BACKENDS.items())
    raise ValueError(f"executor backend must be one of {valid}; got {name!r}")


def run_jobs(executor, jobs: Mapping[Any, tuple[Callable, tuple]] | Iterable[tuple[Any, tuple[Callable, tuple]]],
             poll_seconds: float = 0.5) -> Iterator[tuple[Any, Any]]:
    """Run ``jobs`` (key -> ``(fn, args)``) on ``executor`` with at most ``executor.workers``
    in flight; yield ``(key, outcome)`` as each finishes, where ``outcome`` is the return value
    or the exception the job raised. Stopping the iteration early leaves queued jobs unsubmitted."""
    pending = list(jobs.items() if isinstance(jobs, Mapping) else jobs)
    pending.reverse()
    limit = max(1, int(getattr(executor, "workers", 1)))
    poll = float(getattr(getattr(executor, "settings", None), "poll_seconds", poll_seconds))
    running: dict[Any, Any] = {}
    while pending or running:
        while pending and len(running) < limit:
            key, (fn, args) = pending.pop()
            running[key] = executor.submit(fn, *args)
        finished = [k for k, h in running.items() if h.done()]
        if not finished:
            futures = [h for h in running.values() if isinstance(h, Future)]
            if len(futures) == len(running):
                from concurrent.futures import FIRST_COMPLETED, wait

                wait(futures, return_when=FIRST_COMPLETED)
            else:
                time.sleep(poll)
            continue
        for key in finished:
            handle = running.pop(key)
            try:
                outcome = handle.result()
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                outcome = exc
            yield key, outcome
