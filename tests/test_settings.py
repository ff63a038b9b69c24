"""Constraints as data: every settings class checks every field when it is built, from Python
and from YAML alike, and names the field, what it expected, what it got and the closest valid
choice."""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil
from typing import Literal, get_args, get_origin

import pytest

import nsprog
from nsprog.config import ConfigError, from_dict, load_config
from nsprog.settings import Settings, _hints


def _all_settings_classes() -> list[type]:
    for m in pkgutil.walk_packages(nsprog.__path__, "nsprog."):
        if m.name != "nsprog.learner" and not m.name.endswith("__main__"):
            importlib.import_module(m.name)
    seen, todo = [], list(Settings.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.append(cls)
            todo += cls.__subclasses__()
    return sorted(seen, key=lambda c: c.__name__)


CLASSES = _all_settings_classes()


def _literal_fields(cls):
    """(field, choices, in_list) for fields of Literal, Optional[Literal] or list[Literal] type."""
    out = []
    for f in dataclasses.fields(cls):
        tp = _hints(cls)[f.name]
        in_list = get_origin(tp) is list
        args = get_args(tp) if get_origin(tp) is Literal else ()
        if not args:  # Literal inside Optional or list
            inner = [a for a in get_args(tp) if get_origin(a) is Literal]
            args = get_args(inner[0]) if inner else ()
        if args and all(isinstance(a, str) for a in args):
            out.append((f.name, args, in_list))
    return out


def _float_fields(cls):
    return [f.name for f in dataclasses.fields(cls) if _hints(cls)[f.name] in (float, float | None)]


def test_the_project_has_its_settings_classes():
    names = {c.__name__ for c in CLASSES}
    assert {"VAESettings", "SearchSettings", "DistillSettings", "LearnerSettings", "EncoderConfig", "EvalSettings",
            "TrainSettings", "DataConfig", "SplitConfig", "WindowOptions", "FitRunConfig", "RunBase"} <= names


@pytest.mark.parametrize("cls", [c for c in CLASSES if _literal_fields(c)], ids=lambda c: c.__name__)
def test_a_misspelt_option_names_the_field_and_the_closest_choice(cls):
    for name, allowed, in_list in _literal_fields(cls):
        wrong = allowed[-1][:-1] + "x" + allowed[-1][-1]  # one letter changed
        with pytest.raises(ConfigError) as err:
            cls(**{name: [wrong] if in_list else wrong})
        msg = str(err.value)
        key = f"{name}[0]" if in_list else name
        assert f"{key}: expected one of" in msg and repr(wrong) in msg and cls.__name__ in msg, msg
        assert f"did you mean {allowed[-1]!r}" in msg, msg


@pytest.mark.parametrize("cls", [c for c in CLASSES if _float_fields(c)], ids=lambda c: c.__name__)
def test_nan_is_never_a_valid_number(cls):
    for name in _float_fields(cls):
        with pytest.raises(ConfigError, match=f"{name}: expected a number; got nan"):
            cls(**{name: math.nan})


@pytest.mark.parametrize("kwargs, message", [
    ({"grad_clip": -1.0}, "grad_clip: expected a value > 0 or null; got -1.0"),
    ({"lr": math.inf}, "lr: expected a finite number; got inf"),
    ({"adversary_input": "whiten"}, "adversary_input: expected one of 'mean', 'sample', 'standardized', 'whitened'; "
                                     "got 'whiten' (did you mean 'whitened'?)"),
    ({"epochs": 2.5}, "epochs: expected an integer; got 2.5"),
    ({"adversary_on_programs": "yes"}, "adversary_on_programs: expected true or false; got 'yes'"),
    ({"gamma_disc": -0.1}, "gamma_disc: expected a value >= 0; got -0.1"),
])
def test_vae_settings_reject_bad_values_with_one_message_form(kwargs, message):
    from nsprog.models.nstvae import VAESettings

    with pytest.raises(ConfigError) as err:
        VAESettings(**kwargs)
    assert message in str(err.value)


def test_learner_and_search_ranges():
    from nsprog.encoder import LearnerSettings
    from nsprog.search import SearchSettings

    for kwargs, message in [({"min_balance": math.nan}, "min_balance: expected a number; got nan"),
                            ({"min_distill_f1": 7}, "min_distill_f1: expected a value >= 0 and <= 1; got 7"),
                            ({"val_fraction": 1.0}, "val_fraction: expected a value > 0 and < 1; got 1.0"),
                            ({"collapse_retries": -1}, "collapse_retries: expected a value >= 0; got -1")]:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            LearnerSettings(**kwargs)
    with pytest.raises(ConfigError, match="min_units: expected a value <= max_units"):
        SearchSettings(max_units=4, min_units=8)


def test_every_problem_is_reported_at_once():
    from nsprog.models.nstvae import VAESettings

    with pytest.raises(ConfigError) as err:
        VAESettings(lr=-1.0, decoder="lstm", batch_size=0)
    assert len(err.value.problems) == 3


def test_yaml_and_python_give_the_same_message():
    from nsprog.fit_run import FitRunConfig
    from nsprog.models.nstvae import VAESettings

    with pytest.raises(ConfigError) as py:
        VAESettings(adversary_input="whiten")
    with pytest.raises(ConfigError) as yml:
        from_dict(FitRunConfig, {"vae": {"adversary_input": "whiten"}})
    assert yml.value.problems == ["vae." + py.value.problems[0]]
    with pytest.raises(ConfigError, match=r"vae.grad_clip: expected a value > 0 or null; got -1"):
        load_config(FitRunConfig, None, ["vae.grad_clip=-1"])
    with pytest.raises(ConfigError, match=r"learner.min_balance: expected a number; got nan"):
        load_config(FitRunConfig, None, ["learner.min_balance=.nan"])
    with pytest.raises(ConfigError, match=r"n_programs: 5 programs need vae.z_dim >= 5"):
        load_config(FitRunConfig, None, ["n_programs=5"])


def test_the_encoder_checks_its_settings_before_any_work():
    from nsprog.data import synthetic_dataset
    from nsprog.encoder import NeurosymbolicEncoder

    data = synthetic_dataset(40, 20, 20)
    with pytest.raises(ConfigError, match="decoder: expected one of 'gru', 'mlp', 'linear'; got 'grue'"):
        NeurosymbolicEncoder(vae={"decoder": "grue"}).fit(data["train"], data["val"])
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        NeurosymbolicEncoder(vae={"epoch": 3}).fit(data["train"], data["val"])


def test_device_names_are_checked_in_one_place():
    from nsprog.runs import RunBase, device_problems

    assert device_problems("cuda:1") == [] and device_problems("auto") == []
    assert device_problems("gpu") == ["device: expected auto, cpu, cuda, cuda:N or mps; got 'gpu'"]
    with pytest.raises(ConfigError, match="device: expected auto, cpu, cuda, cuda:N or mps; got 'gpu'"):
        RunBase(device="gpu")
