"""trebalink classify: nested contiguous label samples, the metrics against scikit-learn, the
no-positive rule, the one-class flag, the classifiers, resume without recomputation, backend
independence, reproducibility, bad input, and a tiny end-to-end pipeline (synthetic, and a
CalMS21-layout file)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from nsprog.config import ConfigError
from nsprog.data.splits import split_by_time
from nsprog.data.trajectories import Trajectories
from trebalink.cli import main
from trebalink.efficiency.cells import Cell, cell_path, run_cell
from trebalink.efficiency.classifiers import BehaviourMLP, LinearProbe
from trebalink.efficiency.config import ClassifyConfig, ConditionSpec, load_classify_config
from trebalink.efficiency.harness import cell_arguments, run_classify
from trebalink.efficiency.metrics import average_precision, behaviour_scores, f1_positive
from trebalink.efficiency.sampling import FRACTIONS, check_fractions, chunk_edges, nested_sample
from trebalink.efficiency.steps import save_arrays

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "experiments" / "configs"


# ---------------------------------------------------------------------------- sampling
def _time_windows(n_frames=1200, length=9):
    starts = np.arange(0, n_frames - length + 1)
    states = np.random.default_rng(0).normal(size=(len(starts), length, 2)).astype(np.float32)
    traj = Trajectories(states=states, labels=np.zeros(len(starts), np.int64), groups=np.zeros(len(starts), np.int64),
                        starts=starts)
    return split_by_time(traj, {"train": 0.7, "val": 0.15, "test": 0.15})


def test_nested_samples_are_prefixes_of_contiguous_chunks_inside_the_training_split():
    splits = _time_windows()
    train = splits["train"]
    n, length = len(train), train.n_frames
    edges = chunk_edges(n, 100)
    other = np.concatenate([splits["val"].starts, splits["test"].starts])
    other_frames = set(np.concatenate([np.arange(s, s + length) for s in other]).tolist())
    for sampling in range(3):
        previous = None
        for f in FRACTIONS:
            idx = nested_sample(n, f, sampling, seed=5, n_chunks=100)
            assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < n
            chunk = np.searchsorted(edges, idx, side="right") - 1
            for c in np.unique(chunk):  # whole chunks only: each chunk present is complete and contiguous
                assert np.array_equal(idx[chunk == c], np.arange(edges[c], edges[c + 1]))
            assert len(np.unique(chunk)) == max(1, round(f))
            if previous is not None:
                assert set(previous) <= set(idx)  # nested: the smaller fraction is a prefix of the larger
            previous = idx
            frames = set(np.concatenate([np.arange(s, s + length) for s in train.starts[idx]]).tolist())
            assert not frames & other_frames  # no window of the sample shares a frame with validation or test
        assert len(previous) == n  # 100% is the whole training split
    a = nested_sample(n, 5, 0, seed=5)
    assert np.array_equal(a, nested_sample(n, 5, 0, seed=5))
    assert not np.array_equal(a, nested_sample(n, 5, 1, seed=5))


@pytest.mark.parametrize("bad", [[0, 50], [-1], [150], [10, 10], []])
def test_fractions_outside_0_100_are_refused_naming_the_field(bad):
    with pytest.raises(ValueError, match="fractions"):
        check_fractions(bad)
    with pytest.raises(ConfigError, match="fractions"):
        ClassifyConfig(fractions=bad, conditions=[ConditionSpec(name="input", kind="input")])


# ---------------------------------------------------------------------------- metrics
def test_average_precision_f1_and_map_equal_scikit_learn():
    from sklearn.metrics import average_precision_score, f1_score

    rng = np.random.default_rng(3)
    y = (rng.random((200, 3)) < [0.1, 0.4, 0.7]).astype(int)
    proba = np.round(np.clip(0.5 * y + rng.random((200, 3)) * 0.7, 0, 1), 1)  # rounded: many tied scores
    for b in range(3):
        assert average_precision(y[:, b], proba[:, b]) == pytest.approx(average_precision_score(y[:, b], proba[:, b]),
                                                                        abs=1e-12)
        pred = proba[:, b] > 0.5
        assert f1_positive(y[:, b], pred) == pytest.approx(f1_score(y[:, b], pred), abs=1e-12)
    scores = behaviour_scores(y, proba)
    assert np.mean([s["ap"] for s in scores]) == pytest.approx(average_precision_score(y, proba, average="macro"))
    assert np.mean([s["f1"] for s in scores]) == pytest.approx(f1_score(y, proba > 0.5, average="macro"))
    assert [s["f1"] for s in scores] == pytest.approx(list(f1_score(y, proba > 0.5, average=None)))
    assert [s["error"] for s in scores] == pytest.approx(list(((proba > 0.5) != y).mean(0)))
    assert f1_positive([0, 0], [0, 0]) == 0.0 and f1_score([0, 0], [0, 0], zero_division=0) == 0.0


def test_the_one_class_flag():
    y = np.array([[1], [0], [0], [1]] * 25)
    flat = behaviour_scores(y, np.full((100, 1), 0.2))[0]
    assert flat["one_class"] and flat["pred_share"] == 1.0 and flat["pred_class"] == 0 and flat["true_share"] == 0.5
    mixed = behaviour_scores(y, np.where(y > 0, 0.9, 0.1).astype(float))[0]
    assert not mixed["one_class"] and mixed["ap"] == 1.0 and mixed["f1"] == 1.0
    edge = np.r_[np.full(95, 0.1), np.full(5, 0.9)][:, None]
    assert not behaviour_scores(y, edge)[0]["one_class"]  # exactly 95%: not more than 95%
    assert behaviour_scores(y, np.r_[np.full(96, 0.1), np.full(4, 0.9)][:, None])[0]["one_class"]


# ---------------------------------------------------------------------------- classifiers
def _separable(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = np.stack([x[:, 0] > 0.8, x[:, 1] + x[:, 2] > 0], axis=1).astype(int)
    return x, y


def test_the_behaviour_mlp_learns_each_behaviour_and_leaves_the_global_rng_alone():
    import torch

    x, y = _separable()
    state = torch.random.get_rng_state()
    mlp = BehaviourMLP(hidden=(16,), max_epochs=40, patience=5, seed=1).fit(x[:200], y[:200], x[200:250], y[200:250])
    assert torch.equal(state, torch.random.get_rng_state())
    scores = behaviour_scores(y[250:], mlp.predict_proba(x[250:]))
    assert all(s["ap"] > 0.85 for s in scores)
    assert mlp.best_round_.shape == (2,) and (mlp.best_round_ >= 1).all()
    probe = LinearProbe().fit(x[:200], y[:200])
    assert all(s["ap"] > 0.85 for s in behaviour_scores(y[250:], probe.predict_proba(x[250:])))
    with pytest.raises(ValueError, match="behaviour 'b' has no positive training item"):
        BehaviourMLP(names=["a", "b"]).fit(x[:50], np.c_[y[:50, 0], np.zeros(50, int)])


def test_the_networks_of_different_behaviours_are_independent():
    """One behaviour's network is the same whether it is trained alone or beside another
    (own weights, loss, optimiser state and early stopping), up to its dropout draws: with
    dropout off, the predictions match."""
    x, y = _separable()
    both = BehaviourMLP(hidden=(8,), dropout=0.0, max_epochs=15, patience=3, seed=2).fit(x[:200], y[:200], x[200:],
                                                                                            y[200:])
    init_check = BehaviourMLP(hidden=(8,), dropout=0.0, max_epochs=15, patience=3, seed=2)
    # the stacked initialisation draws all behaviours' weights at once; compare the trained stack with a stack
    # whose second behaviour has other labels: the first behaviour's predictions must not change
    other = init_check.fit(x[:200], np.c_[y[:200, 0], 1 - y[:200, 1]], x[200:], np.c_[y[200:, 0], 1 - y[200:, 1]])
    np.testing.assert_allclose(both.predict_proba(x)[:, 0], other.predict_proba(x)[:, 0], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- cells on hand-made features
def _features(out: Path, y_train, y_val, y_test, x=None, behaviours=("a", "b"), fold="all"):
    root = out / "features" / fold
    rng = np.random.default_rng(0)
    arrays, inputs = {"behaviours": np.asarray(behaviours)}, {}
    for s, y in (("train", y_train), ("val", y_val), ("test", y_test)):
        arrays[f"{s}_y"] = np.asarray(y, np.int8)
        arrays[f"{s}_label"] = np.asarray(y, np.int64)[:, 0]
        inputs[s] = (x[s] if x is not None else (np.asarray(y, np.float32) + rng.normal(0, 0.3, np.shape(y))))
        inputs[s] = np.asarray(inputs[s], np.float32)
    save_arrays(root / "labels.npz", arrays)
    save_arrays(root / "input.npz", inputs)


def _cell_args(out, fraction, classifier="logreg", behaviours=("a", "b"), sampling=0, seed=0):
    cell = Cell("all", "input", float(fraction), sampling, seed, classifier)
    return {"cell": cell.__dict__, "key": "k", "out": str(out), "uses_input": True, "behaviours": list(behaviours),
            "threads": 1, "data_seed": 0, "n_chunks": 10, "repeat": 0,
            "mlp": {"hidden": (8,), "max_epochs": 5, "patience": 2}, "probe": {}}


def test_a_sample_without_positives_is_reported_not_scored(tmp_path):
    n = 200
    y_train = np.zeros((n, 2), int)
    y_train[:, 0] = np.arange(n) % 2
    y_train[150:160, 1] = 1  # behaviour b occurs in one bout, inside the 8th of the 10 chunks
    y_eval = np.c_[np.arange(100) % 2, (np.arange(100) % 3 == 0)].astype(int)
    _features(tmp_path, y_train, y_eval, y_eval)
    seen = set()
    for sampling in range(30):
        rec = run_cell(_cell_args(tmp_path, 10, sampling=sampling))
        b = rec["behaviours"]["b"]
        seen.add(b["status"])
        if b["status"] == "no positives":
            assert "ap" not in b and b["positives"] == 0
            assert rec["map"] is None and rec["macro_f1"] is None and rec["status"] == "no positives: b"
            assert rec["behaviours"]["a"]["status"] == "ok" and "ap" in rec["behaviours"]["a"]
        else:
            assert b["status"] == "ok" and rec["map"] is not None
    assert seen == {"no positives", "ok"}
    full = run_cell(_cell_args(tmp_path, 100))
    assert full["status"] == "ok" and full["behaviours"]["b"]["positives"] == 10
    saved = json.loads(cell_path(tmp_path, Cell("all", "input", 100.0, 0, 0, "logreg")).read_text())
    assert saved["map"] == full["map"]


def test_a_behaviour_absent_from_the_training_split_is_marked_in_every_row(tmp_path):
    y_train = np.c_[np.arange(200) % 2, np.zeros(200)].astype(int)
    y_eval = np.c_[np.arange(100) % 2, np.arange(100) % 5 == 0].astype(int)
    _features(tmp_path, y_train, y_eval, y_eval)
    for f in (10, 100):
        rec = run_cell(_cell_args(tmp_path, f, classifier="mlp"))
        assert rec["behaviours"]["b"]["status"] == "no positives" and "ap" not in rec["behaviours"]["b"]
        assert rec["status"] == "ok" and rec["map"] == pytest.approx(rec["behaviours"]["a"]["ap"])  # MAP over a only


def test_a_classifier_that_predicts_one_class_is_flagged(tmp_path):
    y = np.c_[np.arange(200) % 4 == 0, np.arange(200) % 2].astype(int)
    x = {s: np.zeros((200, 3), np.float32) for s in ("train", "val", "test")}  # nothing to learn from
    _features(tmp_path, y, y, y, x=x)
    rec = run_cell(_cell_args(tmp_path, 100))
    assert rec["one_class"] == ["a", "b"]
    assert rec["behaviours"]["a"]["pred_share"] == 1.0


# ---------------------------------------------------------------------------- a tiny pipeline
def _tiny_config(path: Path, **extra) -> Path:
    cfg = {
        "name": "tiny", "seed": 0,
        "data": {"source": "synthetic", "n_train": 240, "n_val": 80, "n_test": 160},
        "labels": "label", "input": {"kind": "pose", "frames": "centre"},
        "fractions": [25, 100], "sampling": {"n_chunks": 12, "samplings": 1}, "seeds": [0, 1],
        "mlp": {"hidden": [16], "small_hidden": [8], "small_below": 50, "max_epochs": 30, "patience": 3},
        "fits": {"learned1": {"config": str(CONFIGS / "synthetic_1prog.yaml"),
                              "set": {"vae.epochs": 2, "vae.capacity_iters": 40, "search.neural_epochs": 1,
                                      "search.symbolic_epochs": 2, "eval.plots": False,
                                      "learner.min_distill_f1": 0.0}}},
        "treba": {"model": {"z_dim": 4, "rnn_dim": 8, "h_dim": 8, "approximator_rnn_dim": 4, "approximator_h_dim": 8},
                  "train": {"batch_size": 60, "lr": 1e-3, "stage1_epochs": 1, "stage2_epochs": 2}},
        "conditions": [
            {"name": "input", "kind": "input"},
            {"name": "treba_none", "tasks": "none"},
            {"name": "treba_random", "tasks": "random:2"},
            {"name": "treba_expert", "tasks": "expert:synthetic"},
            {"name": "treba_learned1", "tasks": "fit:learned1"},
            {"name": "programs1", "kind": "programs", "fit": "learned1"},
        ],
    }
    cfg.update(extra)
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    config = _tiny_config(root / "tiny.yaml")
    cfg = load_classify_config(config)
    res = run_classify(cfg, root / "out", command="test")
    return root, config, cfg, res


def _metrics_frame(path: Path):
    import pandas as pd

    return pd.read_csv(path).drop(columns=["seconds", "wall_seconds"])


def test_the_tiny_pipeline_runs_end_to_end(tiny_run):
    import pandas as pd

    root, _, cfg, res = tiny_run
    out = root / "out"
    assert not res.failed and res.steps_run == 5 and res.run == res.cells == 6 * 2 * 2 * 2
    df = pd.read_csv(out / "results.csv")
    assert len(df) == res.cells and set(df["condition"]) == {c.name for c in cfg.conditions}
    assert {"map", "macro_f1", "error_rate", "seconds", "ap[x-_y-]", "f1[x+_y+]", "status[x-_y+]"} <= set(df.columns)
    assert df.loc[df["condition"] != "programs1", "map"].between(0.4, 1.0).all()  # chance: about 0.25
    table = (out / "table.md").read_text()
    for heading in ("## MAP, MLP", "## MAP, logistic-regression probe", "## macro F1, MLP", "## Which condition wins",
                    "## Cluster metrics of the embeddings", "## Steps", "Learned programs against expert"):
        assert heading in table
    assert (out / "figure.png").stat().st_size > 10_000
    assert len((out / "cluster.csv").read_text().splitlines()) == 1 + len(cfg.conditions)
    steps = sorted(p.name.split("-")[0] for p in (out / "steps" / "all").iterdir() if p.is_dir())
    assert steps == ["fit", "treba", "treba", "treba", "treba"]
    assert "trebalink" in (out / "command.txt").read_text() or "test" in (out / "command.txt").read_text()


def test_a_half_finished_run_resumes_without_recomputing(tiny_run, tmp_path):
    root, config, cfg, _ = tiny_run
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)
    cells = sorted((out / "cells").rglob("*.json"))
    removed = cells[::7]
    for p in removed:
        p.unlink()
    kept = {p: p.stat().st_mtime_ns for p in cells if p not in removed}
    res = run_classify(load_classify_config(config), out, command="test")
    assert res.run == len(removed) and res.skipped == len(cells) - len(removed)
    assert res.steps_run == 0 and res.steps_reused == 5
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # finished cells are not rewritten
    assert _metrics_frame(out / "results.csv").equals(_metrics_frame(root / "out" / "results.csv"))
    # more fractions and another seed: only the new cells run
    more = load_classify_config(config, ["fractions=[10,25,100]", "seeds=[0,1,2]"])
    res = run_classify(more, out, command="test")
    assert res.run == 6 * 2 * (3 * 3 - 2 * 2) and res.skipped == len(cells) and res.steps_run == 0


def test_another_config_in_the_same_folder_is_refused_and_nothing_is_lost(tiny_run, tmp_path):
    root, config, _, _ = tiny_run
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)
    before = {p: p.read_bytes() for p in (out / "cells").rglob("*.json")}
    with pytest.raises(FileExistsError, match="keys that differ: mlp.max_epochs"):
        run_classify(load_classify_config(config, ["mlp.max_epochs=9"]), out)
    other = _tiny_config(tmp_path / "other.yaml")
    data = yaml.safe_load(other.read_text())
    data["conditions"][2]["tasks"] = "random:3"
    other.write_text(yaml.safe_dump(data))
    with pytest.raises(FileExistsError, match="condition 'treba_random' was defined otherwise"):
        run_classify(load_classify_config(other), out)
    assert {p: p.read_bytes() for p in (out / "cells").rglob("*.json")} == before


def test_backends_give_the_same_numbers(tiny_run, tmp_path):
    from nsprog.executors import make_executor

    root, config, _, _ = tiny_run
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)
    shutil.rmtree(out / "cells")
    ex = make_executor("process", workers=2)
    try:
        res = run_classify(load_classify_config(config), out, executor=ex, command="test")
    finally:
        ex.shutdown()
    assert res.run == res.cells and not res.failed
    assert _metrics_frame(out / "results.csv").equals(_metrics_frame(root / "out" / "results.csv"))


def test_backend_submitit_gives_the_same_numbers(tiny_run, tmp_path):
    pytest.importorskip("submitit")
    from nsprog.executors import ExecutorSettings, SubmititSettings, make_executor

    root, config, _, _ = tiny_run
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)
    shutil.rmtree(out / "cells")
    cfg = load_classify_config(config, ["conditions=[{name: treba_expert, tasks: 'expert:synthetic'}]",
                                        "fractions=[25]", "seeds=[1]"])
    ex = make_executor(ExecutorSettings(backend="submitit", workers=2, submitit=SubmititSettings(
                           cluster="local", poll_seconds=0.2)),
                       folder=tmp_path / "submitit")
    res = run_classify(cfg, out, executor=ex, command="test")
    assert res.run == 2 and not res.failed
    import pandas as pd

    mine = _metrics_frame(out / "results.csv").drop(columns=["repeat"]).reset_index(drop=True)  # its place in seeds
    ref = _metrics_frame(root / "out" / "results.csv").drop(columns=["repeat"])
    ref = ref[(ref["condition"] == "treba_expert") & (ref["fraction"] == 25) & (ref["seed"] == 1)]
    pd.testing.assert_frame_equal(mine, ref.reset_index(drop=True))


def test_rerunning_the_pipeline_with_the_same_seed_reproduces_results_csv(tiny_run, tmp_path):
    root, config, _, _ = tiny_run
    res = run_classify(load_classify_config(config), tmp_path / "again", command="test")
    assert res.steps_run == 5  # everything retrained from scratch (no shared cache)
    assert _metrics_frame(tmp_path / "again" / "results.csv").equals(_metrics_frame(root / "out" / "results.csv"))


# ---------------------------------------------------------------------------- bad input
def test_bad_inputs_get_errors_naming_the_field_or_file(tiny_run, tmp_path, capsys):
    root, config, _, _ = tiny_run
    out = tmp_path / "out"
    assert main(["classify", str(config), "--out", str(out), "--set", "fractions=[0,50]", "--quiet"]) == 1
    assert "fractions: every fraction must be a percentage in (0, 100]" in capsys.readouterr().err
    assert main(["classify", str(config), "--out", str(out), "--set", "labels=nope", "--quiet"]) == 1
    assert "labels: fold 'all'" in (err := capsys.readouterr().err) and "no label column 'nope'" in err
    assert "available: label, c_x, c_y" in err
    assert main(["classify", str(config), "--out", str(out), "--set", "behaviours={a: [nope]}", "--quiet"]) == 1
    assert "behaviours.a: class 'nope' does not occur" in capsys.readouterr().err
    bad = yaml.safe_load(Path(config).read_text())
    bad["conditions"] = [{"name": "x", "tasks": str(tmp_path / "missing_tasks.yaml")}]
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(bad))
    assert main(["classify", str(p), "--out", str(out), "--quiet"]) == 1
    assert "conditions[0].tasks: condition 'x'" in (err := capsys.readouterr().err) and "missing_tasks.yaml" in err
    bad["conditions"] = [{"name": "x", "kind": "programs", "fit": "nofit"}]
    p.write_text(yaml.safe_dump(bad))
    assert main(["classify", str(p), "--out", str(out), "--quiet"]) == 1
    assert "conditions[0].fit: condition 'x' names fit 'nofit', which is not in fits" in capsys.readouterr().err
    bad["fits"] = {"gone": {"run": str(tmp_path / "no_such_run")}}
    bad["conditions"] = [{"name": "x", "kind": "programs", "fit": "gone"}]
    p.write_text(yaml.safe_dump(bad))
    assert main(["classify", str(p), "--out", str(out), "--quiet"]) == 1
    assert "fits.gone.run:" in (err := capsys.readouterr().err) and "no_such_run" in err
    assert not out.exists()  # nothing was written for a refused config


def test_embeddings_of_another_length_are_refused_naming_the_file(tiny_run, tmp_path, capsys):
    import h5py

    root, config, _, _ = tiny_run
    emb = tmp_path / "emb.h5"
    with h5py.File(emb, "w") as f:
        for s, n in (("train", 240), ("val", 80), ("test", 150)):
            f.create_dataset(f"splits/{s}/embeddings", data=np.zeros((n, 3), np.float32))
    data = yaml.safe_load(Path(config).read_text())
    data["conditions"] = [{"name": "input", "kind": "input"}, {"name": "mine", "kind": "file", "path": str(emb)}]
    data["fits"] = {}
    p = tmp_path / "file.yaml"
    p.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    assert main(["classify", str(p), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{emb}: split 'test' has 150 embeddings" in err and "the labels have 160 windows" in err
    done = sorted((out / "cells" / "all").iterdir())
    assert [d.name for d in done] == ["input"]  # the other condition's cells ran and are kept


# ---------------------------------------------------------------------------- CalMS21 layout
def _calms21_json(path, n_seq=3, n_frames=150, seed=0):
    rng = np.random.default_rng(seed)
    data = {"annotator-id_0": {}}
    offsets = np.array([[0, 0], [-8, -6], [8, -6], [0, -15], [-10, -30], [10, -30], [0, -45]], float)
    for s in range(n_seq):
        centre = np.cumsum(rng.normal(0, 3, size=(n_frames, 2, 2)), axis=0) + [[300, 300], [700, 300]]
        kp = centre[:, :, None, :] + offsets[None, None] + rng.normal(0, 1, size=(n_frames, 2, 7, 2))
        bouts = np.repeat(rng.integers(0, 4, n_frames // 10), 10)
        data["annotator-id_0"][f"task1/seq{s}"] = {
            "keypoints": kp.transpose(0, 1, 3, 2).tolist(),
            "scores": np.ones((n_frames, 2, 7)).tolist(),
            "annotations": bouts.tolist(),
            "metadata": {"vocab": {"attack": 0, "investigation": 1, "mount": 2, "other": 3}},
        }
    path.write_text(json.dumps(data))
    return path


def test_the_calms21_pipeline_runs_on_a_file_in_the_calms21_layout(tmp_path):
    train = _calms21_json(tmp_path / "calms21_task1_train.json", n_seq=4)
    test = _calms21_json(tmp_path / "calms21_task1_test.json", n_seq=1, seed=1)
    out = tmp_path / "out"
    tiny_fit = ("{eval.plots: false, data.windows.stride: 5, vae.epochs: 1, vae.h_dim: 8, vae.rnn_dim: 8, "
                "vae.batch_size: 64, vae.capacity_iters: 20, search.neural_epochs: 1, search.symbolic_epochs: 1, "
                "search.max_depth: 2, learner.min_distill_f1: 0.0")
    code = main(["classify", str(CONFIGS / "efficiency_calms21.yaml"), "--out", str(out), "--quiet",
                 "--set", f"data.path={train}", "--set", f"data.test_path={test}", "--set", "device=cpu",
                 "--set", "data.split.train=0.75", "--set", "data.split.val=0.25",
                 "--set", "data.windows.stride=3", "--set", "fractions=[50,100]", "--set", "sampling.samplings=1",
                 "--set", "seeds=[0]", "--set", "sampling.n_chunks=10",
                 "--set", "mlp={hidden: [8], small_hidden: [8], max_epochs: 3, patience: 1}",
                 "--set", "treba.model={z_dim: 4, rnn_dim: 8, h_dim: 8, approximator_rnn_dim: 4, approximator_h_dim: 8}",
                 "--set", "treba.train={batch_size: 32, lr: 0.001, stage1_epochs: 1, stage2_epochs: 1}",
                 "--set", f"fits.learned1.set={tiny_fit}}}",
                 "--set", f"fits.learned2.set={tiny_fit}, n_programs: 2}}",
                 "--set", f"fits.learned3.set={tiny_fit}, n_programs: 3}}"])
    assert code == 0
    import pandas as pd

    df = pd.read_csv(out / "results.csv")
    assert len(df) == 8 * 2 * 2 and {"ap[attack]", "ap[investigation]", "ap[mount]"} <= set(df.columns)
    assert (out / "figure.png").is_file()
