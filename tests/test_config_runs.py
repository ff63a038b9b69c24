import json
from dataclasses import dataclass, field

import pytest
import torch
import yaml

from nsprog.config import ConfigError, apply_overrides, from_dict, load_config
from nsprog.runs import start_run
from nsprog.utils import resolve_device, seed_everything


@dataclass
class Train:
    epochs: int = 10
    lr: float = 1e-3


@dataclass
class Cfg:
    name: str = "x"
    seed: int = 0
    train: Train = field(default_factory=Train)


def test_unknown_key_is_an_error_naming_allowed_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"train": {"epoch": 3}, "sed": 1}))
    with pytest.raises(ConfigError) as info:
        load_config(Cfg, p)
    msg = str(info.value)
    assert "train.epoch: unknown key (did you mean 'epochs'?)" in msg
    assert "allowed keys of train: epochs, lr" in msg
    assert "sed: unknown key (did you mean 'seed'?)" in msg
    assert "2 problems" in msg


def test_types_are_checked_and_overrides_apply(tmp_path):
    with pytest.raises(ConfigError, match="train.epochs: expected an integer; got 'ten'"):
        from_dict(Cfg, {"train": {"epochs": "ten"}})
    cfg = load_config(Cfg, None, ["train.epochs=3", "train.lr=2e-4", "name=run1"])
    assert cfg.train.epochs == 3 and cfg.train.lr == pytest.approx(2e-4) and cfg.name == "run1"
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides({}, ["train.epochs"])


def test_run_folder_is_fresh_and_refuses_to_overwrite(tmp_path):
    cfg = Cfg()
    run = start_run("demo", cfg, seed=5, root=tmp_path)
    run.write_json("metrics.json", {"a": 1})
    run.close()
    assert (run.path / "config.yaml").is_file() and (run.path / "log.txt").is_file()
    info = json.loads((run.path / "run.json").read_text())
    assert info["seed"] == 5 and "nsprog_version" in info
    run2 = start_run("demo", cfg, seed=5, root=tmp_path)
    run2.close()
    assert run2.path != run.path
    with pytest.raises(FileExistsError, match="is not empty"):
        start_run("demo", cfg, seed=5, out=run.path)
    run3 = start_run("demo", cfg, seed=6, out=run.path, force=True)
    run3.close()
    assert json.loads((run.path / "run.json").read_text())["seed"] == 6


def test_seed_and_device():
    seed_everything(3)
    a = torch.rand(3)
    seed_everything(3)
    assert torch.equal(a, torch.rand(3))
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_a_partial_section_keeps_the_section_defaults_of_its_config():
    """Overriding one key of a section whose default is customised (``nsprog fit --quick`` sets
    vae.epochs) must keep that section's other defaults, not fall back to the bare dataclass's."""
    from nsprog.fit_run import FitRunConfig

    full = load_config(FitRunConfig, None, [])
    partial = load_config(FitRunConfig, None, ["vae.epochs=3", "search.max_depth=3"])
    assert partial.vae.epochs == 3 and partial.search.max_depth == 3
    for name in ("cont_capacity", "gamma_disc", "adversary_lr_scale", "frozen_bits", "decorrelation_weight",
                 "adversary_input"):
        assert getattr(partial.vae, name) == getattr(full.vae, name), name
    assert partial.search.strategy == full.search.strategy == "greedy"
    assert full.vae.cont_capacity == 1.0 and full.vae.decorrelation_weight == 10.0
