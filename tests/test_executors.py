"""The executor seam: every backend behind submit / run_jobs, clear errors for unknown and
missing backends."""

from __future__ import annotations

import sys
from concurrent.futures import Future

import pytest

from nsprog.config import ConfigError
from nsprog.executors import (
    ExecutorSettings, InlineExecutor, MissingBackendError, SubmititSettings, make_executor, run_jobs,
)


def _square(x):
    return x * x


def _fail(x):
    raise RuntimeError(f"job {x} failed")


def test_run_jobs_yields_every_result_and_hands_back_exceptions():
    ex = InlineExecutor()
    jobs = [(i, (_fail if i == 2 else _square, (i,))) for i in range(5)]
    out = dict(run_jobs(ex, jobs))
    assert {k: v for k, v in out.items() if k != 2} == {0: 0, 1: 1, 3: 9, 4: 16}
    assert isinstance(out[2], RuntimeError) and "job 2 failed" in str(out[2])


class _Deferred:
    """A fake backend whose jobs finish only when polled, counting how many are in flight."""

    def __init__(self, workers):
        self.workers = workers
        self.in_flight = 0
        self.peak = 0

    def submit(self, fn, *args):
        owner = self
        owner.in_flight += 1
        owner.peak = max(owner.peak, owner.in_flight)

        class Handle:
            polls = 0

            def done(self):
                self.polls += 1
                return self.polls > 1

            def result(self):
                owner.in_flight -= 1
                return fn(*args)

        return Handle()

    def shutdown(self, wait=True, cancel_futures=False):
        pass


def test_run_jobs_keeps_at_most_workers_jobs_in_flight():
    ex = _Deferred(workers=2)
    out = dict(run_jobs(ex, {i: (_square, (i,)) for i in range(7)}, poll_seconds=0.001))
    assert out == {i: i * i for i in range(7)}
    assert ex.peak == 2


def test_process_pool_runs_jobs_in_other_processes():
    ex = make_executor("process", workers=2)
    try:
        assert dict(run_jobs(ex, {i: (_square, (i,)) for i in range(4)})) == {0: 0, 1: 1, 2: 4, 3: 9}
        assert isinstance(ex.submit(_square, 3), Future) and ex.workers == 2
    finally:
        ex.shutdown()


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ValueError, match="must be one of 'inline'.*'process'.*'submitit'.*; got 'slurm'"):
        make_executor("slurm")
    with pytest.raises(ConfigError, match="backend: expected one of 'inline', 'process', 'submitit'; got 'dask'"):
        ExecutorSettings(backend="dask")


def test_a_backend_that_is_not_installed_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    with pytest.raises(MissingBackendError, match=r"pip install -e \"\.\[cluster\]\""):
        make_executor(ExecutorSettings(backend="submitit"))


def test_submitit_local_executor_runs_jobs(tmp_path):
    pytest.importorskip("submitit")
    ex = make_executor(ExecutorSettings(backend="submitit", workers=2, submitit=SubmititSettings(cluster="local")),
                       folder=tmp_path / "jobs")
    assert ex.cluster == "local"
    # jobs run in fresh interpreters: the function must be importable there (a library function)
    assert dict(run_jobs(ex, {i: (pow, (i, 2)) for i in range(3)})) == {0: 0, 1: 1, 2: 4}
