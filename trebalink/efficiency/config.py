"""What a data-efficiency experiment is: the data (and its train / test folds), the label
column and the behaviours scored, the input representation, the conditions compared, the
nsprog fits and TREBA trainings they need, the label fractions, the repeats and the
classifiers. Read from YAML by :func:`load_classify_config`::

    name: efficiency_synthetic
    seed: 0                            # data, nsprog fits and TREBA trainings
    data: {source: synthetic, n_train: 2000, n_val: 500, n_test: 1000}
    labels: label                      # the label column; one behaviour per class by default
    input: {kind: pose, frames: all}   # what every classifier sees besides the embedding
    fits:                              # nsprog fits whose programs become tasks or features
      learned1: {config: synthetic_1prog.yaml, set: {vae.epochs: 5}}
    treba: {config: treba_synthetic.yaml}   # the TREBA model and training of every condition
    conditions:
      - {name: input, kind: input}
      - {name: treba_none, tasks: none}
      - {name: treba_expert, tasks: "expert:synthetic"}
      - {name: treba_learned1, tasks: "fit:learned1"}
      - {name: programs1, kind: programs, fit: learned1}

``fits.*.config`` and ``treba.config`` are read relative to the config's folder when it is
loaded; the resolved sections are kept in the config (``fits.*.resolved``, ``treba``), so
its hash covers every setting a step uses. Each fold's data replaces a fit config's data, so
programs, embeddings and classifiers all see the same training windows.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nsprog.config import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from nsprog.data.sources import DataConfig
from nsprog.executors import ExecutorSettings
from nsprog.runs import device_problems
from nsprog.settings import Settings, param
from nsprog.tables.config import FoldSpec
from trebalink.efficiency.sampling import FRACTIONS, check_fractions

__all__ = ["InputSettings", "SamplingSettings", "MLPSettings", "ProbeSettings", "FitSpec", "ConditionSpec",
           "ClassifyConfig", "load_classify_config", "resolve_files", "short_hash", "CONDITION_KINDS",
           "CLASSIFIERS", "core_dict"]

#: condition kind -> what its features are
CONDITION_KINDS = {
    "input": "the input representation alone (no embedding)",
    "treba": "a TREBA embedding trained with a task set (none, random, expert, learned programs), with the input",
    "programs": "the bits of a fit's learned programs (no TREBA), alone unless with_input",
    "file": "embeddings from a `trebalink embed` file (splits/<split>/embeddings), with the input",
}
#: classifier name -> its row label
CLASSIFIERS = {"mlp": "MLP", "logreg": "logistic-regression probe"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def short_hash(obj) -> str:
    """A 12-character hash of plain data (sorted keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class InputSettings(Settings):
    """The input representation each classifier sees (alone, or beside an embedding)."""

    kind: Literal["pose", "features", "none"] = "pose"  # raw states, a DSL's domain features, or nothing
    frames: Literal["centre", "all", "mean"] = "centre"  # the window's centre frame, every frame flattened, or the mean
    dsl: str | None = None  # kind features: the DSL whose features (standardised on the training split) are used

    def _extra_checks(self) -> list[str]:
        if self.kind == "features" and not self.dsl:
            return ["dsl: input.kind 'features' needs the DSL whose features to use, e.g. dsl: openfield"]
        if self.kind != "features" and self.dsl:
            return [f"dsl: only input.kind 'features' reads a DSL; this input is {self.kind!r}"]
        return []


@dataclass
class SamplingSettings(Settings):
    """How the labelled training items of each fraction are drawn (see trebalink.efficiency.sampling)."""

    n_chunks: int = param(100, ge=1)  # contiguous chunks of the training items; 1% = 1 chunk at 100
    samplings: int = param(3, ge=1)  # chunk orders drawn per fraction (x seeds = repeats)


@dataclass
class MLPSettings(Settings):
    """The per-behaviour MLPs (trebalink.efficiency.classifiers.BehaviourMLP)."""

    hidden: list[int] = field(default_factory=lambda: [64, 32])
    small_hidden: list[int] = field(default_factory=lambda: [32])  # the network for fractions below small_below
    small_below: float = param(10.0, ge=0, le=100)  # percent of the training items
    dropout: float = param(0.3, ge=0, lt=1)
    lr: float = param(1e-3, gt=0)
    weight_decay: float = param(1e-4, ge=0)
    batch_size: int = param(256, ge=2)
    max_epochs: int = param(100, ge=1)
    patience: int = param(10, ge=1)
    min_steps: int = param(5, ge=1)  # optimiser steps per validation round at least (tiny samples)
    class_weight: Literal["balanced", "none"] = "balanced"

    def _extra_checks(self) -> list[str]:
        return [f"{k}: expected a list of widths >= 1; got {getattr(self, k)}" for k in ("hidden", "small_hidden")
                if not getattr(self, k) or any(h < 1 for h in getattr(self, k))]

    def estimator_params(self, fraction: float) -> dict:
        hidden = self.small_hidden if fraction < self.small_below else self.hidden
        return {"hidden": tuple(hidden), "dropout": self.dropout, "lr": self.lr, "weight_decay": self.weight_decay,
                "batch_size": self.batch_size, "max_epochs": self.max_epochs, "patience": self.patience,
                "min_steps": self.min_steps, "class_weight": None if self.class_weight == "none" else "balanced"}


@dataclass
class ProbeSettings(Settings):
    """The per-behaviour logistic regressions (trebalink.efficiency.classifiers.LinearProbe)."""

    C: float = param(1.0, gt=0)
    class_weight: Literal["balanced", "none"] = "balanced"
    max_iter: int = param(1000, ge=10)

    def estimator_params(self) -> dict:
        return {"C": self.C, "class_weight": None if self.class_weight == "none" else "balanced",
                "max_iter": self.max_iter}


@dataclass
class FitSpec(Settings):
    """An nsprog fit whose programs conditions use: a fit config with overrides (learned here,
    once per fold, on the fold's training windows) or an existing fit run folder."""

    config: str | None = None  # an `nsprog fit` config, relative to the classify config's folder
    run: str | None = None  # or an existing fit folder (programs.json), used for every fold
    set: dict = field(default_factory=dict)  # dotted overrides of the fit config, e.g. {vae.epochs: 5}
    resolved: dict = field(default_factory=dict)  # the fit config with `set` applied (filled when loaded)

    def _extra_checks(self) -> list[str]:
        if (self.config is None) == (self.run is None):
            return ["config: give exactly one of config (an nsprog fit config to learn the programs) or run (an "
                    "existing fit folder)"]
        if self.run is not None and self.set:
            return ["set: overrides apply to a fit config; an existing run folder is used as it is"]
        return []


@dataclass
class ConditionSpec(Settings):
    """One curve of the figure: which features the classifiers get."""

    name: str = ""
    kind: Literal["input", "treba", "programs", "file"] = "treba"
    tasks: str | None = None  # treba: expert:NAME, random:K[:C], none, a task-set YAML, or fit:NAME
    classes: int = param(2, ge=2)  # tasks fit:NAME: 2 = each program's bit, >= 3 quantile classes of its logit
    fit: str | None = None  # programs: the fit whose program bits are the features
    run: str | None = None  # treba: an existing `trebalink train` folder instead of training one
    path: str | None = None  # file: a `trebalink embed` HDF5 file of the same data
    with_input: bool | None = None  # beside the input representation (default: yes, except programs)
    label: str | None = None  # the name in tables and the figure (default: name)

    def _extra_checks(self) -> list[str]:
        problems = []
        if not _NAME.match(self.name or ""):
            problems.append(f"name: expected a name of letters, digits, _ . + - (it names files); got {self.name!r}")
        need = {"treba": ("tasks", "run"), "programs": ("fit",), "file": ("path",), "input": ()}[self.kind]
        given = [k for k in ("tasks", "fit", "run", "path") if getattr(self, k) is not None]
        if self.kind == "treba" and (self.tasks is None) == (self.run is None):
            problems.append("tasks: a treba condition needs exactly one of tasks (trained here) or run (an existing "
                            "trebalink train folder)")
        elif self.kind in ("programs", "file") and getattr(self, need[0]) is None:
            problems.append(f"{need[0]}: a {self.kind} condition needs {need[0]}")
        extra = [k for k in given if k not in need]
        problems += [f"{k}: does not apply to a condition of kind {self.kind!r}" for k in extra]
        if self.kind == "input" and self.with_input is False:
            problems.append("with_input: an input condition is the input; it cannot leave it out")
        return problems

    @property
    def uses_input(self) -> bool:
        if self.kind == "input":
            return True
        return self.with_input if self.with_input is not None else self.kind != "programs"

    @property
    def display(self) -> str:
        return self.label or self.name

    @property
    def fit_name(self) -> str | None:
        """The fit this condition needs (programs: ``fit``; treba with ``tasks: fit:NAME``)."""
        if self.kind == "programs":
            return self.fit
        if self.kind == "treba" and self.tasks and self.tasks.startswith("fit:"):
            return self.tasks[4:]
        return None


@dataclass
class ClassifyConfig(Settings):
    """Config of ``trebalink classify``."""

    name: str = "classify"
    seed: int = param(0, ge=0)  # the data, the nsprog fits and the TREBA trainings
    device: str = "cpu"  # for the fits and TREBA trainings (auto, cpu, cuda[:N])
    threads: int = param(1, ge=1)  # torch and BLAS threads in every job
    data: DataConfig = field(default_factory=DataConfig)
    folds: list[FoldSpec] = field(default_factory=list)  # none: one fold, the data as it is
    labels: str = "label"  # the label column the behaviours come from
    behaviours: dict[str, list] = field(default_factory=dict)  # name -> classes; default: each class but 'none'
    input: InputSettings = field(default_factory=InputSettings)
    fractions: list[float] = field(default_factory=lambda: list(FRACTIONS))  # percent of the training items
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # classifier seeds (x samplings = repeats)
    classifiers: list[Literal["mlp", "logreg"]] = field(default_factory=lambda: ["mlp", "logreg"])
    mlp: MLPSettings = field(default_factory=MLPSettings)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    fits: dict[str, FitSpec] = field(default_factory=dict)
    treba: dict = field(default_factory=dict)  # trebalink train sections (model, augment, train, ...) for every condition
    conditions: list[ConditionSpec] = field(default_factory=list)
    cluster: bool = True  # k-means of each condition's embedding against the labels (purity, NMI, RI, ARI)
    figure_metric: Literal["error", "map", "macro_f1"] = "error"  # error = 1 - MAP, as the paper's Figure 5
    cache: str | None = None  # where fit and TREBA run folders are kept (default OUT/steps); shareable
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)

    def _extra_checks(self) -> list[str]:
        problems = []
        try:
            check_fractions(self.fractions)
        except ValueError as exc:
            problems.append(str(exc))
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            problems.append(f"seeds: expected distinct seeds >= 0; got {self.seeds}")
        if not self.classifiers or len(set(self.classifiers)) != len(self.classifiers):
            problems.append(f"classifiers: expected a list of distinct names from {', '.join(CLASSIFIERS)}; got "
                            f"{self.classifiers}")
        if not self.conditions:
            problems.append("conditions: expected at least one condition, e.g. conditions: [{name: input, kind: input}]")
        names = [c.name for c in self.conditions]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            problems.append(f"conditions: names must be distinct; {', '.join(dup)} given twice")
        for i, c in enumerate(self.conditions):
            fit = c.fit_name
            if fit is not None and fit not in self.fits:
                field_ = "fit" if c.kind == "programs" else "tasks"
                problems.append(f"conditions[{i}].{field_}: condition {c.name!r} names fit {fit!r}, which is not in "
                                f"fits (defined: {', '.join(self.fits) or 'none'})")
            if c.kind == "input" and self.input.kind == "none":
                problems.append(f"conditions[{i}]: condition {c.name!r} is the input alone, but input.kind is 'none'")
        for name, classes in self.behaviours.items():
            if not _NAME.match(name):
                problems.append(f"behaviours.{name}: behaviour names are letters, digits, _ . + -")
            if not classes:
                problems.append(f"behaviours.{name}: expected a list of the label classes that make it, e.g. "
                                f"[Supported, Unsupported]")
        fold_names = [f.name for f in self.folds]
        if len(set(fold_names)) != len(fold_names) or any(not _NAME.match(n) for n in fold_names):
            problems.append(f"folds: expected distinct fold names of letters, digits, _ . + -; got {fold_names}")
        for i, f in enumerate(self.folds):
            try:
                self.fold_data(f.name)
            except ConfigError as exc:
                problems += [f"folds[{i}].data.{p}" for p in exc.problems]
        if self.treba:
            from trebalink.run import TrebaRunConfig

            bad = sorted(set(self.treba) & {"name", "seed", "data", "tasks", "device", "threads", "dsl"})
            problems += [f"treba.{k}: set by the classify config (seed, device, threads, data) or by each condition "
                         "(tasks); remove it here" for k in bad]
            if not bad:
                try:
                    from_dict(TrebaRunConfig, {k: v for k, v in self.treba.items() if k != "config"})
                except ConfigError as exc:
                    problems += [f"treba.{p}" for p in exc.problems]
        problems += device_problems(self.device)
        return problems

    # ------------------------------------------------------------------ per fold
    def fold_names(self) -> list[str]:
        return [f.name for f in self.folds] or ["all"]

    def fold_data(self, fold: str) -> DataConfig:
        for f in self.folds:
            if f.name == fold:
                return from_dict(DataConfig, _merge(to_dict(self.data), f.data), source=f"folds[{fold!r}].data")
        return self.data

    def condition(self, name: str) -> ConditionSpec:
        for c in self.conditions:
            if c.name == name:
                return c
        raise KeyError(f"no condition {name!r}; conditions: {', '.join(c.name for c in self.conditions)}")


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


_TREBA_KEYS = ("model", "augment", "train", "domain_params", "force_tasks", "readout", "readout_max")


def resolve_files(cfg: ClassifyConfig, folder: str | Path = ".") -> ClassifyConfig:
    """Read the fit configs and the TREBA config that ``cfg`` names (relative to ``folder``)
    into it: ``fits.*.resolved`` and the ``treba`` sections. Problems name the field and file."""
    folder = Path(folder)
    problems: list[str] = []
    data = to_dict(cfg)
    for name, spec in data["fits"].items():
        if spec.get("config") and not spec.get("resolved"):
            path = Path(spec["config"])
            path = path if path.is_absolute() else folder / path
            if not path.is_file():
                problems.append(f"fits.{name}.config: nsprog fit config not found: {path} (paths are relative to the "
                                f"classify config's folder {folder})")
                continue
            fit = load_yaml(path)
            try:
                fit = apply_overrides(fit, [f"{k}={json.dumps(v)}" for k, v in (spec.get("set") or {}).items()])
            except ConfigError as exc:
                problems += [f"fits.{name}.set: {p}" for p in exc.problems]
                continue
            for k in ("name", "seed", "device", "threads", "data"):  # set per fold by the classify config
                fit.pop(k, None)
            # the fit's own data.* overrides (e.g. a larger stride) apply over each fold's data
            fit["data_overrides"] = {k[5:]: v for k, v in (spec.get("set") or {}).items() if k.startswith("data.")}
            spec["resolved"] = fit
    treba = data.get("treba") or {}
    if treba.get("config"):
        path = Path(treba["config"])
        path = path if path.is_absolute() else folder / path
        if not path.is_file():
            problems.append(f"treba.config: trebalink train config not found: {path} (paths are relative to the "
                            f"classify config's folder {folder})")
        else:
            base = {k: v for k, v in load_yaml(path).items() if k in _TREBA_KEYS}
            rest = {k: v for k, v in treba.items() if k != "config"}
            data["treba"] = _merge(base, rest)
    if problems:
        raise ConfigError(problems, str(folder))
    return from_dict(ClassifyConfig, data, "classify config")


def load_classify_config(path: str | Path, overrides: list[str] | None = None) -> ClassifyConfig:
    """Read a classify config (YAML) with dotted ``--set`` overrides, validate every field (all
    problems at once) and read in the fit and TREBA configs it names."""
    path = Path(path)
    data = apply_overrides(load_yaml(path), overrides)
    cfg = from_dict(ClassifyConfig, data, str(path))
    return resolve_files(cfg, path.parent)


#: fields that may change between invocations into one output folder (more conditions,
#: fractions, seeds, samplings or classifiers add cells; the backend and cache place change nothing)
_OPEN = ("name", "conditions", "fractions", "seeds", "classifiers", "executor", "cache")


def core_dict(cfg: ClassifyConfig) -> dict:
    """The part of the config every cell depends on (everything but the open fields and the
    number of samplings)."""
    d = to_dict(cfg)
    for k in _OPEN:
        d.pop(k, None)
    d["sampling"] = {"n_chunks": cfg.sampling.n_chunks}
    d["treba"] = {k: v for k, v in d["treba"].items() if k != "config"}
    for spec in d["fits"].values():
        spec.pop("config", None)
        spec.pop("set", None)
    return copy.deepcopy(d)
