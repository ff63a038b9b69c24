"""The table harness (``nsprog table``): resumes without recomputing, gives the same table on
every backend, refuses bad input before any training, and the shipped configs load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from nsprog.cli import main
from nsprog.config import ConfigError
from nsprog.tables import MODELS, load_table_config, run_table
from nsprog.tables.config import ModelName

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"
METRIC_COLUMNS = ["fold", "model", "row", "clusters", "seed", "purity", "nmi", "ri", "ari", "clusters_found", "n_eval"]


def _tiny(tmp_path: Path, **changes) -> Path:
    cfg = {
        "name": "tiny",
        "seeds": [0, 1],
        "data": {"source": "synthetic", "n_train": 160, "n_val": 64, "n_test": 96},
        "dsl": "synthetic",
        "n_clusters": [2, 4],
        "models": ["random", "tvae", {"model": "oracle", "n_programs": 2}],
        "baselines": {"common": {"epochs": 1, "lr": 1e-3}},
    }
    cfg.update(changes)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def count_fits(monkeypatch):
    """Counts the baselines' fits (the cells' training) in this process."""
    from nsprog.baselines.base import TrajectoryBaseline

    calls = []
    original = TrajectoryBaseline.fit

    def counting(self, train, y=None):
        calls.append(type(self).__name__)
        return original(self, train, y)

    monkeypatch.setattr(TrajectoryBaseline, "fit", counting)
    return calls


def test_the_harness_resumes_without_recomputing(tmp_path, count_fits):
    out = tmp_path / "out"
    cfg = load_table_config(_tiny(tmp_path))
    res = run_table(cfg, out)
    assert (res.cells, res.run, res.skipped, res.failed) == (2 * (2 + 1 + 1), 8, 0, {})
    assert count_fits == ["TVAE", "TVAE"]
    first = pd.read_csv(out / "results.csv")

    res = run_table(cfg, out)  # everything finished: read back, nothing trained
    assert (res.run, res.skipped) == (0, 8) and count_fits == ["TVAE", "TVAE"]
    (out / "cells" / "all" / "tvae" / "seed1.json").unlink()  # as if killed while this cell ran
    res = run_table(cfg, out)
    assert (res.run, res.skipped) == (1, 7) and count_fits == ["TVAE"] * 3
    pd.testing.assert_frame_equal(first[METRIC_COLUMNS], pd.read_csv(out / "results.csv")[METRIC_COLUMNS])

    res = run_table(cfg, out, seeds=[0, 1, 2])  # more seeds: only the new seed's cells run
    assert (res.run, res.skipped) == (4, 8) and count_fits == ["TVAE"] * 4


def test_a_killed_run_keeps_its_finished_cells(tmp_path, count_fits):
    out = tmp_path / "out"
    cfg = load_table_config(_tiny(tmp_path, seeds=[0]))

    def stop_after_tvae(cell_id, outcome, done, total):
        if "tvae" in cell_id:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_table(cfg, out, on_cell=stop_after_tvae)
    assert count_fits == ["TVAE"] and (out / "cells" / "all" / "tvae" / "seed0.json").is_file()
    killed = json.loads((out / "table.json").read_text())["invocations"][0]
    assert killed["cells_run"] == 3  # random at 2 and 4 clusters, then tvae: on record although killed
    res = run_table(cfg, out)
    assert count_fits == ["TVAE"] and res.skipped == 3 and res.run == 1  # only the oracle was left


def test_report_files_and_layout(tmp_path):
    out = tmp_path / "out"
    assert main(["table", str(_tiny(tmp_path, seeds=[0])), "--out", str(out), "--quiet"]) == 0
    df = pd.read_csv(out / "results.csv")
    assert {"wall_seconds", "config_hash", "purity", "nmi", "ri", "ari"} <= set(df.columns)
    assert (df["wall_seconds"] >= 0).all() and df["config_hash"].nunique() == 1
    assert sorted(df.loc[df["model"] == "tvae", "clusters"]) == [2, 4]  # one fit, K-means at each count
    md = (out / "table.md").read_text()
    assert "### 2 clusters" in md and "### 4 clusters" in md and "| *ceilings (not compared)* |" in md
    assert "| *Oracle (2 programs)* |" in md and "**" in md
    assert "nsprog table" in (out / "command.txt").read_text() and "commit" in (out / "command.txt").read_text()
    assert (out / "table.png").stat().st_size > 1000
    info = json.loads((out / "table.json").read_text())
    assert info["invocations"][0]["cells_run"] == 4


def _metrics(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "results.csv")[METRIC_COLUMNS]


def test_the_distributed_backend_gives_the_same_table_as_in_process(tmp_path):
    pytest.importorskip("submitit")
    path = _tiny(tmp_path, seeds=[0], models=["random", "tvae", "vq_tvae"], n_clusters=[2])
    assert main(["table", str(path), "--out", str(tmp_path / "inline"), "--quiet"]) == 0
    assert main(["table", str(path), "--out", str(tmp_path / "submitit"), "--backend", "submitit", "--jobs", "3",
                 "--set", "executor.submitit.cluster=local", "--quiet"]) == 0
    pd.testing.assert_frame_equal(_metrics(tmp_path / "inline"), _metrics(tmp_path / "submitit"))
    info = json.loads((tmp_path / "submitit" / "table.json").read_text())
    assert info["invocations"][0]["backend"] == "submitit"


def test_a_process_pool_gives_the_same_table_as_in_process(tmp_path):
    path = _tiny(tmp_path, seeds=[0], models=["tvae", "jointvae"], n_clusters=[2])
    assert main(["table", str(path), "--out", str(tmp_path / "inline"), "--quiet"]) == 0
    assert main(["table", str(path), "--out", str(tmp_path / "pool"), "--jobs", "2", "--quiet"]) == 0
    pd.testing.assert_frame_equal(_metrics(tmp_path / "inline"), _metrics(tmp_path / "pool"))


# ---------------------------------------------------------------------------- bad input, before any training
def test_an_unknown_model_fails_before_training_and_lists_the_valid_ones(tmp_path, count_fits, capsys):
    path = _tiny(tmp_path, models=["random", "tvea"])
    assert main(["table", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "models[1].model: expected one of 'random', 'tvae', 'tvae_kmeans', 'jointvae'" in err
    assert "got 'tvea' (did you mean 'tvae'?)" in err and str(path) in err
    assert count_fits == [] and not (tmp_path / "out").exists()


def test_a_missing_label_column_fails_before_training(tmp_path, count_fits, capsys):
    assert main(["table", str(_tiny(tmp_path, labels="c_z")), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "no label column 'c_z'" in err and "c_x, c_y" in err
    assert count_fits == [] and not (tmp_path / "out" / "cells").exists()


def test_a_missing_backend_names_the_extra_before_training(tmp_path, count_fits, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "submitit", None)
    assert main(["table", str(_tiny(tmp_path)), "--out", str(tmp_path / "out"), "--backend", "submitit"]) == 1
    err = capsys.readouterr().err
    assert "backend 'submitit'" in err and 'pip install -e ".[cluster]"' in err
    assert count_fits == []


def test_a_folder_of_another_config_is_refused_and_force_starts_fresh(tmp_path, count_fits, capsys):
    out = tmp_path / "out"
    assert main(["table", str(_tiny(tmp_path, seeds=[0])), "--out", str(out), "--quiet"]) == 0
    assert count_fits == ["TVAE"]
    changed = ["table", str(_tiny(tmp_path, seeds=[0])), "--out", str(out), "--set", "baselines.tvae.epochs=2"]
    assert main(changed + ["--quiet"]) == 1
    err = capsys.readouterr().err
    assert "different config" in err and "baselines.tvae.epochs" in err and "--force" in err
    assert count_fits == ["TVAE"]
    assert main(changed + ["--force", "--quiet"]) == 0
    assert count_fits == ["TVAE", "TVAE"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["table", str(_tiny(tmp_path)), "--out", str(tmp_path / "other")]) == 1
    assert "holds no table" in capsys.readouterr().err and (tmp_path / "other" / "notes.txt").exists()


def test_the_oracle_on_data_without_one_fails_before_training(tmp_path, capsys):
    path = _tiny(tmp_path, labels="c_x", models=[{"model": "oracle", "n_programs": 1}])
    assert main(["table", str(path), "--out", str(tmp_path / "out")]) == 1
    assert "'oracle' needs the synthetic generator's windows" in capsys.readouterr().err


def test_clusterings_of_different_lengths_name_the_model(tmp_path, monkeypatch):
    from nsprog.baselines import RandomAssignment

    monkeypatch.setattr(RandomAssignment, "predict", lambda self, traj: np.zeros(len(traj) - 1, dtype=np.int64))
    res = run_table(load_table_config(_tiny(tmp_path, seeds=[0], models=["random"], n_clusters=[2])), tmp_path / "o")
    (err,) = res.failed.values()
    assert "model 'Random assignment'" in err and "has 95 entries but the evaluation windows number 96" in err


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="models\\[0\\].features: only the neural baselines"):
        load_table_config(_tiny(tmp_path, models=[{"model": "random", "features": True}]))
    with pytest.raises(ConfigError, match="baselines.common.capacity: unknown key"):
        load_table_config(_tiny(tmp_path, baselines={"common": {"capacity": 3}}))
    with pytest.raises(ConfigError, match="models\\[0\\].config: fit config not found"):
        load_table_config(_tiny(tmp_path, models=[{"model": "programs", "n_programs": 1, "config": "nope.yaml"}]))
    with pytest.raises(ConfigError, match="models\\[0\\].encoder.vae.epoch: unknown key"):
        load_table_config(_tiny(tmp_path, models=[{"model": "programs", "n_programs": 1, "encoder": {"vae": {"epoch": 1}}}]))
    with pytest.raises(ConfigError, match="the same model is listed twice \\(tvae\\)"):
        load_table_config(_tiny(tmp_path, models=["tvae", "tvae"]))


def test_models_table_matches_the_config_choices():
    from typing import get_args

    from nsprog.baselines import BASELINES

    assert set(MODELS) == set(get_args(ModelName))
    assert set(BASELINES) < set(MODELS)


# ---------------------------------------------------------------------------- shipped configs
@pytest.mark.parametrize("path", sorted(CONFIGS.glob("table_*.yaml")) + sorted(CONFIGS.glob("select_*.yaml")),
                         ids=lambda p: p.stem)
def test_shipped_table_configs_load(path):
    cfg = load_table_config(path)
    for m in cfg.models:
        if m.model == "programs" and m.config:
            fit = yaml.safe_load((path.parent / m.config).read_text())
            assert m.encoder["vae"] == {k: fit["vae"][k] for k in m.encoder["vae"]}  # the fit config, read in


def _data_paths(cfg) -> list[str]:
    return [p for fold in cfg.fold_names() for d in [cfg.fold_data(fold)]
            for p in (d.path, d.test_path, d.annotations, d.test_annotations) if p]


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("table_*.yaml")) + sorted(CONFIGS.glob("select_*.yaml")),
                         ids=lambda p: p.stem)
def test_shipped_table_configs_read_the_samples_folder(path):
    """Real-data tables read data/samples/ (python data/fetch_samples.py), never ../shared."""
    for p in _data_paths(load_table_config(path)):
        assert p.startswith("data/samples/") or "calms21" in p, (path.name, p)


@pytest.mark.parametrize("name, folds", [("table_openfield", 2), ("table_basketball", 1)])
def test_real_data_table_inputs_pass_their_checks(samples, name, folds):
    from nsprog.tables import check_table_inputs

    cfg = load_table_config(CONFIGS / f"{name}.yaml")
    assert len(cfg.fold_names()) == folds
    check_table_inputs(cfg, [0])


def _calms21_json(path: Path, n_seq: int = 4, n_frames: int = 90, seed: int = 0) -> Path:
    """A small file in the CalMS21 task 1 layout: {group: {sequence: {keypoints (T, mice, xy, 7),
    scores, annotations, metadata.vocab}}}."""
    rng = np.random.default_rng(seed)
    offsets = np.array([[0, 0], [-8, -6], [8, -6], [0, -15], [-10, -30], [10, -30], [0, -45]], float)
    group = {}
    for s in range(n_seq):
        centre = np.cumsum(rng.normal(0, 3, size=(n_frames, 2, 2)), axis=0) + [[300, 300], [700, 300]]
        kp = centre[:, :, None, :] + offsets[None, None] + rng.normal(0, 1, size=(n_frames, 2, 7, 2))
        group[f"task1/seq{s}"] = {
            "keypoints": kp.transpose(0, 1, 3, 2).tolist(), "scores": np.ones((n_frames, 2, 7)).tolist(),
            "annotations": rng.integers(0, 4, n_frames).tolist(),
            "metadata": {"vocab": {"attack": 0, "investigation": 1, "mount": 2, "other": 3}},
        }
    path.write_text(json.dumps({"annotator-id_0": group}))
    return path


@pytest.mark.parametrize("dsl", [1, 2, 3])
def test_calms21_table_configs_run_on_a_calms21_format_file(dsl, tmp_path):
    data = _calms21_json(tmp_path / "calms21.json")
    raw = yaml.safe_load((CONFIGS / f"table_calms21_dsl{dsl}.yaml").read_text())
    tiny = {"vae": {"epochs": 1, "h_dim": 8, "rnn_dim": 8, "batch_size": 64},
            "search": {"neural_epochs": 1, "symbolic_epochs": 1, "max_depth": 2}, "learner": {"min_distill_f1": 0.0}}
    kind = [m if isinstance(m, str) else m["model"] for m in raw["models"]]
    keep = [raw["models"][kind.index("tvae")], raw["models"][kind.index("programs")]]  # one baseline, one program row
    for m in keep:
        if isinstance(m, dict) and m["model"] == "programs":
            m["n_programs"] = 1
            m["encoder"] = tiny
    raw["models"] = keep + ["supervised_program"]
    raw["seeds"] = [0]
    raw["n_clusters"] = [2]
    (tmp_path / "cfg").mkdir()
    for m in keep:  # the fit configs named by the table config, beside the copy
        if isinstance(m, dict) and m.get("config"):
            (tmp_path / "cfg" / m["config"]).write_text((CONFIGS / m["config"]).read_text())
    path = tmp_path / "cfg" / "table.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    code = main(["table", str(path), "--out", str(out), "--quiet", "--set", f"data.path={data}",
                 "--set", "data.test_path=null", "--set", "data.split.train=0.5", "--set", "data.split.val=0.25",
                 "--set", "data.split.test=0.25", "--set", "baselines.tvae.epochs=1", "--set", "baselines.tvae.h_dim=8",
                 "--set", "baselines.tvae.rnn_dim=8", "--set", "baselines.tvae.z_dim=4",
                 "--set", "ceiling.neural_epochs=1", "--set", "ceiling.symbolic_epochs=1", "--set", "ceiling.max_depth=2",
                 "--set", "device=cpu"])
    assert code == 0
    df = pd.read_csv(out / "results.csv")
    assert set(df["model"]) == {"tvae", "programs", "supervised_program"}
    assert (df["n_eval"] > 0).all()


def test_a_file_without_the_label_column_names_the_file_before_training(tmp_path, count_fits, capsys):
    data = _calms21_json(tmp_path / "calms21.json")
    out = tmp_path / "out"
    code = main(["table", str(CONFIGS / "table_calms21_dsl1.yaml"), "--out", str(out), "--set", f"data.path={data}",
                 "--set", "data.test_path=null", "--set", "labels=chase", "--set", "models=[tvae]"])
    err = capsys.readouterr().err
    assert code == 1 and "no label column 'chase'" in err and str(data) in err
    assert count_fits == [] and not (out / "cells").exists()


def test_a_pool_gets_the_slow_cells_of_each_seed_first(tmp_path):
    from nsprog.tables import plan_cells
    from nsprog.tables.cells import longest_first

    models = ["random", "tvae", {"model": "programs", "n_programs": 1}, {"model": "programs", "n_programs": 2},
              "supervised_program"]
    cfg = load_table_config(_tiny(tmp_path, models=models, labels="c_x"))
    ordered = [c.id for c in longest_first(cfg, plan_cells(cfg))]
    assert ordered == [
        "all/programs2/seed0", "all/programs1/seed0", "all/tvae/seed0", "all/supervised_program/seed0",
        "all/random@k2/seed0", "all/random@k4/seed0",
        "all/programs2/seed1", "all/programs1/seed1", "all/tvae/seed1", "all/supervised_program/seed1",
        "all/random@k2/seed1", "all/random@k4/seed1",
    ]
    assert sorted(ordered) == sorted(c.id for c in plan_cells(cfg))
