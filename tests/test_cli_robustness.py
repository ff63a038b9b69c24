"""The command line under bad input, faults and redirection: every user or environment error
is one line with exit code 1, nothing earlier is lost, output written to files is readable,
and a fit resumed from any round boundary equals the uninterrupted fit."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from nsprog.cli import main

TINY = ["--set", "data.n_train=240", "--set", "data.n_val=120", "--set", "data.n_test=120", "--set", "vae.epochs=1",
        "--set", "search.neural_epochs=1", "--set", "search.symbolic_epochs=1", "--set", "learner.min_distill_f1=0",
        "--set", "eval.plots=false"]


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``nsprog`` in a fresh process with its output redirected (not a terminal)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "nsprog", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def test_output_into_files_is_plain_lines_and_quiet_still_prints_results(tmp_path):
    run = _cli("fit", "--out", str(tmp_path / "a"), "--set", "n_programs=1", *TINY)
    assert run.returncode == 0, run.stderr
    for text in (run.stdout, run.stderr):
        assert "\r" not in text
        assert max(map(len, text.splitlines()), default=0) <= 300
    assert "epoch 1/1" in run.stderr  # one log line per epoch instead of a bar
    assert "cluster metrics" in run.stdout and f"results in {tmp_path / 'a'}" in run.stdout
    quiet = _cli("fit", "--out", str(tmp_path / "b"), "--set", "n_programs=1", "--quiet", *TINY)
    assert quiet.returncode == 0, quiet.stderr
    assert "epoch" not in quiet.stderr and "cluster metrics" in quiet.stdout and "results in" in quiet.stdout
    silent = _cli("data", "synthetic", "--out", str(tmp_path / "s.h5"), "--n-train", "20", "--silent")
    assert silent.returncode == 0 and silent.stdout == "" and silent.stderr == ""


def test_written_files_get_the_permissions_of_a_plain_open(tmp_path):
    from nsprog.utils import atomic_write, write_json_atomic

    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "a.json", {"x": 1})
        atomic_write(tmp_path / "b.txt", lambda p: p.write_text("x"))
        plain = tmp_path / "c.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    want = stat.S_IMODE(plain.stat().st_mode)
    assert want == 0o644
    for name in ("a.json", "b.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == want, name


@pytest.mark.parametrize("args, message", [
    (["--set", "dsl=synthetc"], "synthetc"),
    (["--device", "cuda:7"], "CUDA is not available"),
    (["--threads", "-2"], "threads: expected a value >= 0; got -2"),
    (["--set", "n_programs=5"], "n_programs: 5 programs need vae.z_dim >= 5"),
    (["--set", "eval.labels=nope"], "no label column 'nope'"),
    (["--set", "vae.grad_clip=-1"], "vae.grad_clip: expected a value > 0 or null; got -1"),
    (["--set", "data.path=x.h5"], "data.path: is set, but data.source is 'synthetic'"),
])
def test_bad_settings_fail_before_the_disk_is_touched(tmp_path, capsys, args, message):
    if "cuda" in " ".join(args):
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    old = tmp_path / "run"
    old.mkdir()
    (old / "metrics.json").write_text("{}")  # a finished earlier run, to be kept
    assert main(["fit", "--out", str(old), "--force", *TINY, *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in old.iterdir()) == ["metrics.json"]
    assert main(["fit", "--out", str(tmp_path / "new"), *TINY, *args]) == 1
    assert not (tmp_path / "new").exists()


def test_a_failure_during_the_fit_is_logged_and_frees_the_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--out", str(out), "--set", "n_programs=1", "--set", "vae.lr=1e6", *TINY]) == 1
    err = capsys.readouterr().err
    assert "non-finite loss in program 1, round 1, epoch 1, batch" in err and "Traceback" not in err
    assert not out.exists()  # the corrected rerun needs no --force
    log = (tmp_path / "run.failed" / "log.txt").read_text()
    assert "non-finite loss in program 1, round 1" in log
    old = tmp_path / "kept"
    old.mkdir()
    (old / "programs.txt").write_text("an earlier run")
    assert main(["fit", "--out", str(old), "--force", "--set", "n_programs=1", "--set", "vae.lr=1e6", *TINY]) == 1
    assert (old / "programs.txt").read_text() == "an earlier run"  # --force replaces only after success


def test_an_interrupt_keeps_the_run_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    from nsprog.encoder import algorithm, fitting

    calls = {"n": 0}
    original = algorithm.run_round

    def stop_in_round_2(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*a, **kw)

    monkeypatch.setattr(fitting, "run_round", stop_in_round_2)
    out = tmp_path / "run"
    assert main(["fit", "--out", str(out), *TINY]) == 130
    err = capsys.readouterr().err
    assert f"nsprog fit --resume {out}" in err
    assert "interrupted" in (out / "log.txt").read_text()
    monkeypatch.setattr(fitting, "run_round", original)
    assert main(["fit", "--resume", str(out), "--quiet"]) == 0


def test_output_files_are_not_replaced_without_force(tmp_path, capsys):
    from nsprog.data import save_dataset, synthetic_dataset
    from nsprog.encoder import NeurosymbolicEncoder

    data = synthetic_dataset(120, 60, 60, seed=2)
    enc = NeurosymbolicEncoder(n_programs=1, vae={"epochs": 1}, search={"neural_epochs": 1, "symbolic_epochs": 1},
                               learner={"min_distill_f1": 0.0}, progress=False).fit(data["train"], data["val"])
    enc.save(tmp_path / "enc")
    h5 = save_dataset(tmp_path / "d.h5", data)
    target = tmp_path / "scores.json"
    target.write_text("precious")
    for cmd in (["evaluate", str(tmp_path / "enc"), "--data", str(h5), "--split", "test"],
                ["certify", str(tmp_path / "enc"), "--data", str(h5), "--split", "test"]):
        assert main([*cmd, "--out", str(target)]) == 1
        assert "--out exists" in capsys.readouterr().err and target.read_text() == "precious"
        assert main([*cmd, "--out", str(tmp_path)]) == 1
        assert "--out is a folder" in capsys.readouterr().err
        assert main([*cmd, "--out", str(target), "--force", "--quiet"]) == 0
        assert json.loads(target.read_text())
        target.write_text("precious")
    assert main(["data", "synthetic", "--out", str(h5)]) == 1
    assert "--out exists" in capsys.readouterr().err


def test_damaged_files_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["fit", "--out", str(tmp_path / "run"), "--set", "n_programs=1", "--quiet", *TINY]) == 0
    ck = tmp_path / "run" / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[:1000])
    capsys.readouterr()
    assert main(["fit", "--resume", str(tmp_path / "run"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "is not a readable nsprog checkpoint" in err and "weights_only" not in err and "Traceback" not in err
    params = tmp_path / "params.pt"
    params.write_bytes(b"\x00" * 10)
    assert main(["safety", "verify", str(params)]) == 1
    assert "is not a readable nsprog safety parameters file" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("vae:\n  epochs: 3\n  epochs: 4\n")
    assert main(["fit", str(cfg)]) == 1
    assert "key 'epochs' is given twice (lines 2 and 3)" in capsys.readouterr().err
    assert main(["show", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err


def _comparable(metrics: dict) -> dict:
    """metrics.json without timings."""
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if "seconds" not in k}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    return strip(metrics)


def test_a_fit_resumed_at_any_round_boundary_equals_the_uninterrupted_fit(tmp_path, monkeypatch):
    from nsprog.encoder import algorithm, fitting

    full = tmp_path / "full"
    assert main(["fit", "--out", str(full), "--quiet", *TINY]) == 0
    from nsprog.encoder.checkpoint import read_checkpoint

    rounds = read_checkpoint(full)["state"]["round"]
    assert rounds >= 4  # 2 programs, 2 rounds each
    original = algorithm.run_round
    for k in range(1, rounds):
        calls = {"n": 0}

        def stop_after_k(*a, _k=k, **kw):
            calls["n"] += 1
            if calls["n"] > _k:
                raise KeyboardInterrupt
            return original(*a, **kw)

        monkeypatch.setattr(fitting, "run_round", stop_after_k)
        cut = tmp_path / f"cut{k}"
        assert main(["fit", "--out", str(cut), "--quiet", *TINY]) == 130
        monkeypatch.setattr(fitting, "run_round", original)
        assert main(["fit", "--resume", str(cut), "--quiet"]) == 0
        assert (cut / "programs.txt").read_text() == (full / "programs.txt").read_text(), k
        a, b = (json.loads((d / "metrics.json").read_text()) for d in (cut, full))
        assert _comparable(a) == _comparable(b), k
