"""Where a run's windows come from: the built-in synthetic generator, an nsprog HDF5 file, or
raw tracking files (DeepLabCut, SLEAP, CalMS21, SportVU, ...) cut into windows on the fly;
split into train / val / test without leakage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from nsprog.data.convert import WindowOptions, load_windows
from nsprog.data.io import load_dataset
from nsprog.data.splits import split_by_group, split_by_time, split_random
from nsprog.data.synthetic import synthetic_dataset
from nsprog.data.trajectories import Trajectories
from nsprog.settings import Settings, param

__all__ = ["SplitConfig", "DataConfig", "load_splits"]


@dataclass
class SplitConfig(Settings):
    """How to split a file that has no train/val/test splits of its own."""

    method: Literal["time", "group", "random"] = "time"
    train: float = param(0.7, gt=0, lt=1)
    val: float = param(0.15, ge=0, lt=1)
    test: float = param(0.15, ge=0, lt=1)

    def _extra_checks(self) -> list[str]:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            return [f"train: train + val + test must be 1; got {self.train} + {self.val} + {self.test} = {total:g}"]
        return []


@dataclass
class DataConfig(Settings):
    """``source: synthetic`` generates the paper's dataset; ``source: file`` reads the nsprog
    HDF5 file ``path``; ``source: tracking`` reads tracking file(s) at ``path`` (file, folder
    or glob) with ``format``/``loader``/``annotations`` and cuts windows as ``windows`` says.

    ``test_path`` (optional) replaces the test split with all windows of another file of the
    same kind (e.g. another game), so a model trained on one recording is scored on another;
    ``test_annotations`` labels that file (``annotations`` labels ``path`` only). With
    ``test_path``, ``split.test`` may be 0: ``path`` is then split into train and val only.
    """

    source: Literal["synthetic", "file", "tracking"] = "synthetic"
    path: str | None = None
    test_path: str | None = None
    format: str = "auto"
    annotations: str | None = None
    test_annotations: str | None = None
    loader: dict = field(default_factory=dict)
    windows: WindowOptions | None = None
    n_train: int = param(10_000, ge=1)
    n_val: int = param(2_000, ge=1)
    n_test: int = param(2_000, ge=1)
    length: int = param(25, ge=2)
    reject_ambiguous: bool = False
    data_seed: int | None = param(None, ge=0)
    split: SplitConfig = field(default_factory=SplitConfig)

    def _extra_checks(self) -> list[str]:
        """A setting the chosen source would ignore is an error, not a silent no-op."""
        problems = []
        defaults = DataConfig.__dataclass_fields__
        synthetic_only = [k for k in ("n_train", "n_val", "n_test", "length", "reject_ambiguous")
                          if getattr(self, k) != defaults[k].default]
        if self.source == "synthetic":
            set_keys = [k for k in ("path", "test_path", "annotations", "windows") if getattr(self, k) is not None]
            set_keys += ["loader"] * bool(self.loader) + ["format"] * (self.format != "auto")
            problems += [f"{k}: is set, but data.source is 'synthetic', which generates its windows and reads no "
                         "file; set data.source to 'file' (an nsprog HDF5 dataset) or 'tracking' (tracking files)"
                         for k in set_keys]
        else:
            problems += [f"{k}: applies to data.source 'synthetic' only; this config reads {self.source!r} data"
                         for k in synthetic_only]
        if self.source == "file":
            set_keys = [k for k in ("annotations", "windows") if getattr(self, k) is not None]
            set_keys += ["loader"] * bool(self.loader) + ["format"] * (self.format != "auto")
            problems += [f"{k}: applies to data.source 'tracking' only; an nsprog HDF5 file (data.source 'file') "
                         "already holds windows" for k in set_keys]
        return problems


def _split(t: Trajectories, cfg: SplitConfig, seed: int) -> dict[str, Trajectories]:
    fractions = {k: v for k, v in (("train", cfg.train), ("val", cfg.val), ("test", cfg.test)) if v > 0}
    if cfg.method == "time":
        return split_by_time(t, fractions)
    if cfg.method == "group":
        return split_by_group(t, fractions, seed)
    return split_random(t, fractions, seed)


def _tracking(cfg: DataConfig, path: str, annotations: str | None) -> Trajectories:
    if cfg.windows is None:
        raise ValueError("data.windows is required when data.source is 'tracking' (e.g. windows: {window: 21})")
    return load_windows(path, cfg.windows, format=cfg.format, annotations=annotations, **cfg.loader)


def _check_split_fractions(cfg: DataConfig) -> None:
    s = cfg.split
    if s.val == 0:
        raise ValueError("data.split.val is 0: every run needs validation windows; give split.val > 0")
    if s.test == 0 and not cfg.test_path:
        raise ValueError("data.split.test is 0 but data.test_path is not set: give split.test > 0, or a test_path "
                         "whose windows are the test split")
    if cfg.test_annotations and not cfg.test_path:
        raise ValueError("data.test_annotations is set but data.test_path is not: test_annotations labels the "
                         "test_path file")


def load_splits(cfg: DataConfig, seed: int = 0) -> dict[str, Trajectories]:
    """``{"train", "val", "test"}`` windows for a run."""
    data_seed = seed if cfg.data_seed is None else cfg.data_seed
    if cfg.source == "synthetic":
        splits = synthetic_dataset(cfg.n_train, cfg.n_val, cfg.n_test, cfg.length, data_seed, cfg.reject_ambiguous)
    elif not cfg.path:
        what = "an nsprog HDF5 file" if cfg.source == "file" else "a tracking file, folder or glob"
        raise ValueError(f"data.path is required when data.source is {cfg.source!r} ({what}); set it with --set data.path=...")
    elif cfg.source == "tracking":
        _check_split_fractions(cfg)
        splits = _split(_tracking(cfg, cfg.path, cfg.annotations), cfg.split, data_seed)
    else:
        loaded = load_dataset(cfg.path)
        if {"train", "val", "test"} <= set(loaded):
            splits = {k: loaded[k] for k in ("train", "val", "test")}
        elif {"train", "val"} <= set(loaded) and cfg.test_path:
            splits = {"train": loaded["train"], "val": loaded["val"]}
        else:
            _check_split_fractions(cfg)
            whole = Trajectories.concatenate(list(loaded.values())) if len(loaded) > 1 else next(iter(loaded.values()))
            splits = _split(whole, cfg.split, data_seed)
    if cfg.test_path:
        if cfg.source == "tracking":
            splits["test"] = _tracking(cfg, cfg.test_path, cfg.test_annotations)
        else:
            other = load_dataset(cfg.test_path)
            splits["test"] = other.get("test") or Trajectories.concatenate(list(other.values()))
    return splits
