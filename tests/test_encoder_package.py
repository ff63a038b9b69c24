"""The encoder package: presets shared with the shipped configs, the one checkpoint format
(read by resume, load, show and evaluate), its error messages and the reading of
checkpoints written by nsprog 0.1."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from nsprog.config import load_config, to_dict
from nsprog.data import save_dataset, synthetic_dataset
from nsprog.encoder import NeurosymbolicEncoder, preset_config
from nsprog.encoder.checkpoint import CheckpointError, read_checkpoint
from nsprog.fit_run import FitRunConfig


@pytest.fixture(scope="module")
def tiny():
    return synthetic_dataset(200, 100, 100, seed=7)


@pytest.fixture(scope="module")
def fitted(tiny):
    est = NeurosymbolicEncoder(n_programs=2, vae={"epochs": 1, "capacity_iters": 20},
                               search={"neural_epochs": 1, "symbolic_epochs": 1, "patience": 1},
                               learner={"min_distill_f1": 0.0}, seed=1, progress=False)
    return est.fit(tiny["train"], tiny["val"])


@pytest.mark.parametrize("preset, config", [("default", "synthetic_2prog"), ("basketball", "basketball_1prog"),
                                            ("openfield", "openfield_1prog"), ("calms21", "calms21_dsl1_1prog")])
def test_presets_equal_the_model_sections_of_the_shipped_configs(preset, config):
    cfg = load_config(FitRunConfig, f"experiments/configs/{config}.yaml", [])
    p = preset_config(preset)
    for section in ("vae", "search", "learner"):
        assert to_dict(getattr(p, section)) == to_dict(getattr(cfg, section)), section
    assert p.dsl == cfg.dsl


def test_defaults_are_one_set():
    from nsprog.encoder import EncoderConfig

    cli = load_config(FitRunConfig, None, [])
    assert to_dict(NeurosymbolicEncoder().config()) == to_dict(cli.encoder_config()) == to_dict(EncoderConfig())
    quick = NeurosymbolicEncoder.from_preset("quick", n_programs=1, seed=3)
    assert quick.vae.epochs == 20 and quick.vae.lr == 1e-3 and quick.n_programs == 1 and quick.seed == 3
    with pytest.raises(ValueError, match="unknown preset 'quik' \\(did you mean 'quick'\\?\\)"):
        NeurosymbolicEncoder.from_preset("quik")


def test_a_saved_encoder_is_read_by_load_show_and_evaluate(fitted, tiny, tmp_path, capsys):
    from nsprog.cli import main

    folder = fitted.save(tmp_path / "my_encoder")
    back = NeurosymbolicEncoder.load(folder)
    np.testing.assert_array_equal(back.predict(tiny["test"]), fitted.predict(tiny["test"]))
    np.testing.assert_allclose(back.transform(tiny["test"]), fitted.transform(tiny["test"]), atol=1e-6)
    capsys.readouterr()
    assert main(["show", str(folder)]) == 0
    assert "[program_1]" in capsys.readouterr().out
    data = save_dataset(tmp_path / "other.h5", synthetic_dataset(20, 20, 60, seed=9))
    assert main(["evaluate", str(folder), "--data", str(data), "--quiet"]) == 0
    scores = json.loads(next((folder / "evaluations").glob("other*.json")).read_text())
    assert scores["n_test"] == 60 and "oracle" in scores


def test_checkpoint_errors_name_the_file_and_never_echo_torchs_unsafe_advice(fitted, tmp_path):
    fitted.save(tmp_path / "ok")
    good = (tmp_path / "ok" / "checkpoint.pt").read_bytes()
    cases = {
        "truncated.pt": good[: len(good) // 2],
        "text.pt": b"not a checkpoint at all",
        "pickle.pt": pickle.dumps({"format": "nsprog-encoder", "evil": object}),
    }
    for name, payload in cases.items():
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(CheckpointError) as err:
            read_checkpoint(tmp_path / name)
        msg = str(err.value)
        assert str(tmp_path / name) in msg and "not a readable nsprog checkpoint" in msg
        assert "weights_only" not in msg and "trust" not in msg
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="is not an nsprog encoder checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
    torch.save({"format": "nsprog-encoder", "version": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="version 99, newer than this nsprog"):
        read_checkpoint(tmp_path / "future.pt")
    with pytest.raises(FileNotFoundError, match="no nsprog checkpoint at"):
        read_checkpoint(tmp_path / "nope" / "checkpoint.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_checkpoint(tmp_path / "nope" / "checkpoint.pt")


def test_checkpoints_of_nsprog_0_1_are_read(fitted, tiny, tmp_path):
    """A version-1 checkpoint (the algorithm state in loose fields) loads into the same model."""
    fitted.save(tmp_path / "v2")
    ck = torch.load(tmp_path / "v2" / "checkpoint.pt", weights_only=True)
    state = ck.pop("state")
    v1 = {**ck, "version": 1, "programs_done": state["done"], "current": state["current"], "round": state["round"],
          "step": state["step"], "program_step": state["program_step"]}
    (tmp_path / "v1").mkdir()
    torch.save(v1, tmp_path / "v1" / "checkpoint.pt")
    old = NeurosymbolicEncoder.load(tmp_path / "v1")
    np.testing.assert_array_equal(old.predict(tiny["test"]), fitted.predict(tiny["test"]))
    np.testing.assert_allclose(old.transform(tiny["test"]), fitted.transform(tiny["test"]), atol=1e-5)
    assert old.state_.phase == "done" and len(old.programs_) == 2
