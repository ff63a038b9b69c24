"""`nsprog safety run / table / verify / list` end to end (tiny budgets), and bad input."""

import json

import pytest
import torch
import yaml

from nsprog.cli import main

FAST = ["--set", "verify.test_trajectories=100", "--set", "verify.empirical_samples=100", "--set", "train.eval_every=4",
        "--set", "train.warmup=2", "--set", "train.val_trajectories=20", "--set", "train.val_verifier_components=4",
        "--quiet"]


@pytest.mark.parametrize("bench", ["thermostat", "aircraft", "racetrack", "cartpole"])
@pytest.mark.parametrize("mode", ["only_data", "diffai", "dse"])
def test_run_every_benchmark_and_mode(tmp_path, bench, mode):
    out = tmp_path / "run"
    vc = "3" if bench == "cartpole" else "50"
    assert main(["safety", "run", "--benchmark", bench, "--mode", mode, "--steps", "4", "--train-size", "5",
                 "--verifier-components", vc, "--out", str(out), "--no-plot", *FAST]) == 0
    m = json.loads((out / "metrics.json").read_text())
    for key in ("provably_safe", "empirical_unsafe", "test_data_loss", "wall_seconds", "steps_per_second"):
        assert key in m
    assert m["verifier_pieces"] == int(vc) ** (4 if bench == "cartpole" else 1) and m["steps"] == 4
    params = torch.load(out / "params.pt", weights_only=True)
    assert params["benchmark"] == bench and params["mode"] == mode
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["benchmark"] == bench and cfg["mode"] == mode


@pytest.mark.parametrize("mode", ["diffai", "dse"])
def test_per_term_optimizer_runs(tmp_path, mode):
    out = tmp_path / "run"
    assert main(["safety", "run", "--benchmark", "thermostat", "--mode", mode, "--steps", "6", "--train-size", "5",
                 "--verifier-components", "20", "--out", str(out), "--no-plot", "--set", "train.optimizer=per_term",
                 *FAST]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == 6


def test_run_writes_plot_and_verify_command_rechecks(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["safety", "run", "--benchmark", "thermostat", "--mode", "dse", "--steps", "4", "--train-size", "5",
                 "--verifier-components", "40", "--out", str(out), *FAST]) == 0
    assert (out / "trajectories.png").stat().st_size > 1000 and (out / "history.csv").is_file()
    m = json.loads((out / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["safety", "verify", str(out), "--verifier-components", "40"]) == 0
    printed = dict(line.split(None, 1) for line in capsys.readouterr().out.strip().splitlines())
    assert float(printed["provably_safe"]) == pytest.approx(m["provably_safe"], abs=1e-4)


@pytest.mark.parametrize("args, message", [
    (["--benchmark", "thermo"], "benchmark: expected one of 'thermostat', 'aircraft', 'racetrack', 'cartpole'"),
    (["--mode", "dsee"], "mode: expected one of 'only_data', 'diffai', 'dse'"),
    (["--benchmark", "cartpole", "--verifier-components", "10000"], "verifier components = 10000 per input dimension"),
    (["--train-size", "0"], "train_size: expected a value >= 1; got 0"),
    (["--steps", "5", "--epochs", "2"], "either --steps or --epochs"),
])
def test_bad_input_is_an_error_naming_the_item(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(["safety", "run", "--out", str(out), "--quiet", *args]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing ran


def test_table_is_resumable(tmp_path, capsys):
    cfg = {
        "out": str(tmp_path / "table"), "benchmarks": ["thermostat"], "modes": ["only_data", "dse"], "train_sizes": [5],
        "seeds": [0, 1],
        "train": {"steps": 3, "eval_every": 3, "warmup": 1, "val_trajectories": 10, "val_verifier_components": 4},
        "verify": {"components": 20, "test_trajectories": 50, "empirical_samples": 50},
    }
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["safety", "table", str(path), "--quiet"]) == 0
    out = tmp_path / "table"
    assert (out / "results.csv").read_text().count("\n") == 5 and (out / "table.png").is_file()
    text = (out / "table.md").read_text()
    assert "## thermostat" in text and "Issue #11 targets" in text
    val = (out / "validation.md").read_text()
    assert "| thermostat | 5 | dse | 2 |" in val and "| thermostat | 5 | only_data | 2 |" in val
    assert "1.00 [1.00, 1.00]" in val  # only_data's validation loss over itself
    metrics = out / "runs/thermostat/dse/n5/seed1/metrics.json"
    before = metrics.stat().st_mtime_ns
    metrics_other = out / "runs/thermostat/only_data/n5/seed0/metrics.json"
    metrics_other.unlink()
    assert main(["safety", "table", str(path)]) == 0
    assert "1 cell(s) run, 3 skipped" in capsys.readouterr().out
    assert metrics.stat().st_mtime_ns == before and metrics_other.is_file()
    cfg["modes"] = ["dsee"]
    path.write_text(yaml.safe_dump(cfg))
    assert main(["safety", "table", str(path)]) == 1
    assert "modes[0]: expected one of" in capsys.readouterr().err


def test_table_with_one_mode_writes_its_plot(tmp_path):
    """A table of a single mode (e.g. only the data-only baseline) still plots (no dodge between modes)."""
    cfg = {
        "out": str(tmp_path / "table"), "benchmarks": ["thermostat"], "modes": ["only_data"], "train_sizes": [3, 5],
        "seeds": [0],
        "train": {"steps": 2, "eval_every": 2, "val_trajectories": 10, "val_verifier_components": 4},
        "verify": {"components": 20, "test_trajectories": 50, "empirical_samples": 50},
    }
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["safety", "table", str(path), "--quiet"]) == 0
    assert (tmp_path / "table" / "table.png").stat().st_size > 1000


def test_list_prints_programs(capsys):
    assert main(["safety", "list", "--programs"]) == 0
    out = capsys.readouterr().out
    assert "thermostat:" in out and "if isOn <= 0.5:" in out and "cartpole:" in out
