"""Named settings per kind of data, shared by Python and the command line.

    NeurosymbolicEncoder.from_preset("quick")              # Python
    nsprog fit --preset basketball CONFIG.yaml             # command line (config values win)

A preset is a partial :class:`~nsprog.encoder.settings.EncoderConfig`: the sections it
names replace the defaults key by key; everything else keeps the defaults. ``default`` is
``EncoderConfig()`` itself (the paper's synthetic settings). The real-data presets hold the
model sections of the configs under ``experiments/configs/`` (a test keeps them equal).
"""

from __future__ import annotations

import copy
from typing import Any

from nsprog.config import from_dict
from nsprog.encoder.settings import EncoderConfig

__all__ = ["PRESETS", "preset_config", "preset_dict", "list_presets"]

_TEAM_SEARCH = {"strategy": "greedy", "max_depth": 3, "penalty": 0.01, "frontier_size": 30, "neural_epochs": 8,
                "symbolic_epochs": 8, "lr": 0.002, "batch_size": 128, "max_units": 12, "min_units": 4}
_REAL_VAE = {"frozen_bits": "sample", "decorrelation_weight": 0.0, "adversary_input": "mean", "adversary_lr_scale": 1.0,
             "decoder": "gru", "z_dim": 8, "gamma_disc": 1.0, "gamma_cont": 10.0}

PRESETS: dict[str, dict[str, Any]] = {
    # the paper's synthetic settings (Tables 5 and 6): EncoderConfig() as it is
    "default": {},
    # nsprog fit --quick: the synthetic settings with 20 epochs per round at lr 1e-3
    "quick": {"vae": {"epochs": 20, "lr": 1e-3, "capacity_iters": 5000}},
    # SportVU offense / defense windows (experiments/configs/basketball_*prog.yaml)
    "basketball": {
        "dsl": "team",
        "vae": {**_REAL_VAE, "h_dim": 128, "rnn_dim": 128, "disc_capacity": 0.6, "cont_capacity": 4.0,
                "capacity_iters": 1000, "lr": 1e-3, "batch_size": 128, "epochs": 20},
        "search": _TEAM_SEARCH,
    },
    # one mouse in an open field (experiments/configs/openfield_1prog.yaml)
    "openfield": {
        "dsl": "openfield",
        "vae": {**_REAL_VAE, "h_dim": 64, "rnn_dim": 64, "disc_capacity": 0.6, "cont_capacity": 4.0,
                "capacity_iters": 500, "lr": 1e-3, "batch_size": 32, "epochs": 30},
        "search": {**_TEAM_SEARCH, "symbolic_epochs": 10, "batch_size": 32},
    },
    # two mice, CalMS21 task 1 with the paper's DSL 1 (experiments/configs/calms21_dsl1_1prog.yaml)
    "calms21": {
        "dsl": "mouse_dsl1",
        "vae": {**_REAL_VAE, "h_dim": 256, "rnn_dim": 256, "disc_capacity": 0.69, "cont_capacity": 10.0,
                "capacity_iters": 10000, "lr": 1e-4, "batch_size": 256, "epochs": 30},
        "search": {"strategy": "greedy", "max_depth": 5, "penalty": 0.01, "frontier_size": 8, "neural_epochs": 6,
                   "symbolic_epochs": 10, "lr": 1e-3, "batch_size": 256, "max_units": 10, "min_units": 4},
    },
}


def list_presets() -> list[str]:
    return list(PRESETS)


def preset_dict(name: str) -> dict[str, Any]:
    """The preset's sections (a copy), for merging under a config file."""
    if name not in PRESETS:
        import difflib

        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"preset: unknown preset {name!r}{hint}; available: {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])


def preset_config(name: str, **changes: Any) -> EncoderConfig:
    """The :class:`EncoderConfig` of a preset; ``changes`` set top-level fields (``n_programs=1``)
    or whole sections."""
    data = preset_dict(name)
    data.update(changes)
    from nsprog.config import to_dict

    data = {k: (to_dict(v) if hasattr(v, "__dataclass_fields__") else v) for k, v in data.items()}
    return from_dict(EncoderConfig, data, source=f"preset {name!r}")
