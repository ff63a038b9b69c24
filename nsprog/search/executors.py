"""Executors for candidate training: anything with ``submit(fn, *args, **kwargs)`` returning
an object with ``.result()`` (``concurrent.futures`` executors qualify; joblib, Ray, Dask
or submitit can be wrapped the same way)."""

from __future__ import annotations

from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable

__all__ = ["InlineExecutor", "make_executor"]


class InlineExecutor:
    """Runs each job immediately in this process (the default)."""

    workers = 1

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            fut.set_exception(exc)
        return fut

    def shutdown(self, wait: bool = True) -> None:
        pass


def make_executor(kind: str = "inline", workers: int = 1):
    """``inline`` (default) or ``process`` (a pool of ``workers`` processes)."""
    if kind == "inline":
        return InlineExecutor()
    if kind == "process":
        import multiprocessing as mp

        ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
        ex.workers = workers  # type: ignore[attr-defined]
        return ex
    raise ValueError(f"executor must be 'inline' or 'process'; got {kind!r}")
