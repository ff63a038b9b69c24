"""What a table is: one dataset (optionally several train/test folds), the models to compare,
their settings, how the clusters are scored, and the backend that runs the cells.

A table config is YAML read by :func:`load_table_config`:

    name: synthetic
    data: {source: synthetic, n_train: 10000, n_val: 2000, n_test: 2000}
    dsl: synthetic
    labels: label              # the label column every model is scored against
    n_clusters: [2, 4]         # cluster counts of the programmatic models compared with
    models:
      - random
      - tvae
      - {model: tvae, features: true}
      - {model: programs, n_programs: 2, config: synthetic_2prog.yaml}
      - {model: oracle, n_programs: 2}
    baselines:
      common: {z_dim: 4, epochs: 50}   # applied to every baseline section below
      beta_tvae: {gamma: 10, capacity: 5}

``config:`` of a ``programs`` entry names an ``nsprog fit`` config (relative to the table
config's folder); its ``n_programs``, ``vae``, ``search`` and ``learner`` sections are read
into the entry's ``encoder`` at load time (keys given in ``encoder:`` win), so the table's
resolved config, and its hash, hold every setting a cell uses. The table's ``data`` and
``dsl`` are used for every model.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nsprog.baselines.beta_tvae import BetaTVAESettings
from nsprog.baselines.jointvae import JointVAESettings
from nsprog.baselines.kmeans_tvae import KMeansTVAESettings
from nsprog.baselines.base import TVAESettings
from nsprog.baselines.tvae import PlainTVAESettings
from nsprog.baselines.vq_tvae import VQTVAESettings
from nsprog.config import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from nsprog.data.sources import DataConfig
from nsprog.executors import ExecutorSettings
from nsprog.runs import device_problems
from nsprog.search.synthesis import SearchSettings
from nsprog.settings import Settings, param

__all__ = ["MODELS", "ModelName", "ModelSpec", "FoldSpec", "BaselineSections", "TableConfig", "load_table_config",
           "config_hash", "row_key", "row_label", "NEURAL_BASELINES", "CONTINUOUS_BASELINES"]

ModelName = Literal["random", "tvae", "tvae_kmeans", "jointvae", "vq_tvae", "beta_tvae", "programs", "oracle",
                    "supervised_program"]

#: model name -> (its row in the paper's tables, what it is)
MODELS: dict[str, tuple[str, str]] = {  # a test keeps it equal to ModelName
    "random": ("Random assignment", "uniformly random clusters"),
    "tvae": ("TVAE", "trajectory VAE, K-means on its posterior means"),
    "tvae_kmeans": ("TVAE + K-means loss", "TVAE trained with the relaxed K-means loss, K-means on its means"),
    "jointvae": ("JointVAE", "continuous + categorical latents with capacities; clusters = categories"),
    "vq_tvae": ("VQ-TVAE", "vector-quantised TVAE; clusters = codes"),
    "beta_tvae": ("Beta-TVAE", "TVAE with a rising KL capacity, K-means on its means"),
    "programs": ("Ours", "the neurosymbolic encoder; clusters = its programs' 2^k codes"),
    "oracle": ("Oracle", "the synthetic generator's own threshold programs (synthetic data only)"),
    "supervised_program": ("Supervised program", "a program searched on the label itself (nsprog search): "
                           "the best this DSL does"),
}

NEURAL_BASELINES = ("tvae", "tvae_kmeans", "jointvae", "vq_tvae", "beta_tvae")
CONTINUOUS_BASELINES = ("tvae", "beta_tvae")  # one fit scored at every cluster count (tvae_kmeans trains with k)
CEILINGS = ("oracle", "supervised_program")


@dataclass
class ModelSpec(Settings):
    """One row family of the table."""

    model: ModelName = "tvae"
    features: bool = False  # append the DSL's features to the encoder's input (Table 3's "w/ features")
    n_programs: int | None = param(None, ge=1)  # programs and oracle: how many programs
    config: str | None = None  # programs: an `nsprog fit` config, relative to the table config's folder
    encoder: dict = field(default_factory=dict)  # programs: resolved vae / search / learner sections
    settings: dict = field(default_factory=dict)  # baselines: keys replacing the baselines section's (needs label)
    label: str | None = None  # the row's name in table.md (default: the paper's name)

    def _extra_checks(self) -> list[str]:
        problems = []
        if self.features and self.model not in NEURAL_BASELINES:
            problems.append(f"features: only the neural baselines ({', '.join(NEURAL_BASELINES)}) take the DSL's "
                            f"features as input; model {self.model!r} does not")
        if self.model in ("programs", "oracle") and self.n_programs is None:
            problems.append(f"n_programs: model {self.model!r} needs n_programs (e.g. n_programs: 2)")
        if self.model not in ("programs", "oracle") and self.n_programs is not None:
            problems.append(f"n_programs: only 'programs' and 'oracle' take n_programs; model {self.model!r} does not")
        if self.model == "oracle" and self.n_programs not in (None, 1, 2):
            problems.append(f"n_programs: the synthetic oracle has 1 or 2 programs; got {self.n_programs}")
        if self.model != "programs" and (self.config or self.encoder):
            problems.append(f"config: only 'programs' entries take a fit config or encoder sections; model "
                            f"{self.model!r} does not")
        if self.settings and self.model not in NEURAL_BASELINES:
            problems.append(f"settings: only the neural baselines ({', '.join(NEURAL_BASELINES)}) take settings; "
                            f"model {self.model!r} does not")
        if self.settings and not self.label:
            problems.append(f"label: an entry of {self.model!r} with its own settings needs a label naming its row "
                            "(e.g. label: 'Beta-TVAE (C = 1)')")
        return problems


@dataclass
class FoldSpec(Settings):
    """One train/test arrangement: ``data`` keys replace the table's (e.g. train on one video,
    test on another, then the swap as a second fold)."""

    name: str = "fold"
    data: dict = field(default_factory=dict)


@dataclass
class BaselineSections(Settings):
    """Settings of each neural baseline (see nsprog.baselines for every field)."""

    tvae: PlainTVAESettings = field(default_factory=PlainTVAESettings)
    tvae_kmeans: KMeansTVAESettings = field(default_factory=KMeansTVAESettings)
    jointvae: JointVAESettings = field(default_factory=JointVAESettings)
    vq_tvae: VQTVAESettings = field(default_factory=VQTVAESettings)
    beta_tvae: BetaTVAESettings = field(default_factory=BetaTVAESettings)


@dataclass
class TableConfig(Settings):
    """Config of ``nsprog table``."""

    name: str = "table"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # --seeds N runs 0..N-1
    device: str = "cpu"
    threads: int = param(1, ge=1)  # torch and BLAS threads inside each cell
    data: DataConfig = field(default_factory=DataConfig)
    folds: list[FoldSpec] = field(default_factory=list)  # none: one fold, the table's data as it is
    dsl: str = "synthetic"
    labels: str = "label"  # the label column every model is scored against
    score_on: Literal["test", "val"] = "test"  # val: for choosing hyperparameters without the test split
    n_clusters: list[int] | None = None  # cluster counts for the baselines; None: 2^k of the program rows
    models: list[ModelSpec] = field(default_factory=list)
    baselines: BaselineSections = field(default_factory=BaselineSections)
    ceiling: SearchSettings = field(default_factory=SearchSettings)  # the supervised-program search
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)

    def _extra_checks(self) -> list[str]:
        problems = []
        if not self.models:
            problems.append("models: expected at least one model, e.g. models: [random, tvae]")
        if not self.seeds:
            problems.append("seeds: expected at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            problems.append(f"seeds: expected distinct seeds; got {self.seeds}")
        if any(s < 0 for s in self.seeds):
            problems.append(f"seeds: expected seeds >= 0; got {self.seeds}")
        if self.n_clusters is not None and (not self.n_clusters or any(k < 2 for k in self.n_clusters)):
            problems.append(f"n_clusters: expected a list of cluster counts >= 2; got {self.n_clusters}")
        if self.n_clusters is None and not self.program_counts():
            problems.append("n_clusters: no program rows to take the cluster counts from; give n_clusters: [2, 4]")
        keys = [row_key(m) for m in self.models]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            problems.append(f"models: the same model is listed twice ({', '.join(dup)})")
        names = [f.name for f in self.folds]
        if len(set(names)) != len(names):
            problems.append(f"folds: expected distinct fold names; got {names}")
        for i, m in enumerate(self.models):
            if m.settings and m.model in NEURAL_BASELINES:
                try:
                    self.baseline_settings(m)
                except ConfigError as exc:
                    problems += [f"models[{i}].settings.{p}" for p in exc.problems]
        for i, f in enumerate(self.folds):
            try:
                self.fold_data(f.name)
            except ConfigError as exc:
                problems += [f"folds[{i}].data.{p}" for p in exc.problems]
        problems += device_problems(self.device)
        return problems

    def program_counts(self) -> list[int]:
        return sorted({m.n_programs for m in self.models if m.model in ("programs", "oracle") and m.n_programs})

    def cluster_counts(self) -> list[int]:
        """The cluster counts baselines are scored at."""
        if self.n_clusters is not None:
            return sorted(set(self.n_clusters))
        return sorted({2 ** n for n in self.program_counts()})

    def baseline_settings(self, m: ModelSpec):
        """The settings of a baseline entry: its section of ``baselines`` with the entry's own keys."""
        section = getattr(self.baselines, m.model)
        if not m.settings:
            return section
        return from_dict(type(section), _deep_merge(to_dict(section), m.settings), f"settings of {row_label(m)!r}")

    def fold_names(self) -> list[str]:
        return [f.name for f in self.folds] or ["all"]

    def fold_data(self, fold: str) -> DataConfig:
        """The data section of fold ``fold`` (the table's, with the fold's keys replaced)."""
        for f in self.folds:
            if f.name == fold:
                merged = _deep_merge(to_dict(self.data), f.data)
                return from_dict(DataConfig, merged, source=f"folds[{fold!r}].data")
        return self.data


def _deep_merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def row_key(m: ModelSpec) -> str:
    """A short identifier of a model entry: ``tvae``, ``tvae+features``, ``programs2``, ``oracle1``;
    an entry with its own settings adds its label (``beta_tvae~Beta-TVAE_C_1``)."""
    key = m.model + (str(m.n_programs) if m.n_programs else "") + ("+features" if m.features else "")
    if m.settings:
        key += "~" + re.sub(r"[^A-Za-z0-9.+-]+", "_", m.label or "").strip("_")
    return key


def row_label(m: ModelSpec) -> str:
    """The row's name in table.md: the paper's model names."""
    if m.label:
        return m.label
    name = MODELS[m.model][0]
    if m.model in ("programs", "oracle"):
        name += f" ({m.n_programs} program{'s' if m.n_programs != 1 else ''})"
    if m.model == "supervised_program":
        name += " (ceiling)"
    return name + (" (w/ features)" if m.features else "")


_ENCODER_KEYS = ("n_programs", "vae", "search", "learner")
_COMMON_KEYS = tuple(f.name for f in dataclasses.fields(TVAESettings))


def _expand(data: dict, folder: Path, source: str) -> dict:
    """Plain-data steps before validation: ``models`` given as bare names, ``baselines.common``
    spread into every baseline section, programs' fit configs read in."""
    data = copy.deepcopy(data)
    problems: list[str] = []
    models = data.get("models")
    if isinstance(models, list):
        data["models"] = [{"model": m} if isinstance(m, str) else m for m in models]
    base = data.get("baselines")
    if isinstance(base, dict) and "common" in base:
        common = base.pop("common") or {}
        if not isinstance(common, dict):
            problems.append(f"baselines.common: expected a mapping of settings shared by every baseline; got {common!r}")
            common = {}
        bad = [k for k in common if k not in _COMMON_KEYS]
        for k in bad:
            problems.append(f"baselines.common.{k}: unknown key; allowed keys of baselines.common: "
                            f"{', '.join(_COMMON_KEYS)}")
        for name in dataclasses.fields(BaselineSections):
            section = base.get(name.name) or {}
            if isinstance(section, dict):
                base[name.name] = _deep_merge({k: v for k, v in common.items() if k not in bad}, section)
    for i, m in enumerate(data.get("models") or []):
        if not isinstance(m, dict) or m.get("model") != "programs" or not m.get("config"):
            continue
        path = Path(m["config"])
        path = path if path.is_absolute() else folder / path
        if not path.is_file():
            problems.append(f"models[{i}].config: fit config not found: {path} (paths are relative to the table "
                            f"config's folder {folder})")
            continue
        fit = load_yaml(path)
        sections = {k: fit[k] for k in _ENCODER_KEYS if k in fit}
        sections.pop("n_programs", None)  # the entry's own n_programs decides
        m["encoder"] = _deep_merge(sections, m.get("encoder") or {})
    if problems:
        raise ConfigError(problems, source)
    return data


def load_table_config(path: str | Path, overrides: list[str] | None = None) -> TableConfig:
    """Read a table config (YAML) with dotted ``--set`` overrides, expand it and validate every
    field (unknown models, keys and values are all reported at once), including each program
    entry's encoder sections."""
    path = Path(path)
    data = apply_overrides(load_yaml(path), overrides)
    data = _expand(data, path.parent, str(path))
    cfg = from_dict(TableConfig, data, str(path))
    check_encoders(cfg, str(path))
    return cfg


def check_encoders(cfg: TableConfig, source: str) -> None:
    """Validate each program entry's encoder sections as an EncoderConfig would."""
    from nsprog.encoder.settings import EncoderConfig

    problems = []
    for i, m in enumerate(cfg.models):
        if m.model != "programs":
            continue
        bad = sorted(set(m.encoder) - set(_ENCODER_KEYS[1:]))
        if bad:
            problems += [f"models[{i}].encoder.{k}: unknown section; allowed: vae, search, learner" for k in bad]
            continue
        try:
            from_dict(EncoderConfig, {"dsl": cfg.dsl, "n_programs": m.n_programs, **m.encoder}, f"models[{i}].encoder")
        except ConfigError as exc:
            problems += [f"models[{i}].encoder.{p}" for p in exc.problems]
    if problems:
        raise ConfigError(problems, source)


#: fields that do not change any cell's numbers (so they are left out of the config hash)
_UNHASHED = ("seeds", "executor")


def hashed_dict(cfg: TableConfig) -> dict:
    d = to_dict(cfg)
    for k in _UNHASHED:
        d.pop(k, None)
    return d


def config_hash(cfg: TableConfig) -> str:
    """A short hash of everything that defines the cells' numbers (not the seeds or the backend)."""
    text = json.dumps(hashed_dict(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
