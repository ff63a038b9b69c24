"""``nsprog fit`` as a library call: the run config, and one fit into a run folder (load the
data, fit with a checkpoint per round, save the encoder, score it, draw its figures).

The command line (:mod:`nsprog.commands.fit`) only parses arguments and prints; experiments
and benchmarks call :func:`fit_into_run` or build the same :class:`FitRunConfig`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from nsprog.config import ConfigError
from nsprog.data.sources import load_splits
from nsprog.encoder import DistillSettings, EncoderConfig, LearnerSettings, NeurosymbolicEncoder
from nsprog.evaluation.scoring import EvalSettings, score_encoder, usable_factors
from nsprog.models.nstvae import VAESettings
from nsprog.runs import Run, RunBase
from nsprog.search.synthesis import SearchSettings
from nsprog.settings import param
from nsprog.utils import resolve_device

__all__ = ["FitRunConfig", "PreparedFit", "prepare_fit", "fit_into_run", "QUICK_DATA"]

log = logging.getLogger("nsprog")

#: ``nsprog fit --quick``: the ``quick`` preset on 5k / 1k / 2k synthetic windows
QUICK_DATA = ["data.n_train=5000", "data.n_val=1000", "data.n_test=2000"]


@dataclass
class FitRunConfig(RunBase):
    """Config of ``nsprog fit``: the run fields, the encoder's sections (same defaults as
    :class:`~nsprog.encoder.EncoderConfig`) and how the fit is scored."""

    name: str = "fit"
    n_programs: int = param(2, ge=0)
    vae: VAESettings = field(default_factory=VAESettings)
    search: SearchSettings = field(default_factory=DistillSettings)
    learner: LearnerSettings = field(default_factory=LearnerSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)

    def _extra_checks(self) -> list[str]:
        problems = super()._extra_checks()
        try:
            self.encoder_config()
        except ConfigError as exc:
            problems += exc.problems
        return problems

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(dsl=self.dsl, n_programs=self.n_programs, vae=self.vae, search=self.search,
                             learner=self.learner)

    def encoder(self, progress: bool = True, device: str | None = None) -> NeurosymbolicEncoder:
        """The estimator this config describes."""
        return NeurosymbolicEncoder(self.dsl, self.n_programs, self.vae, self.search, self.learner, seed=self.seed,
                                    device=device or self.device, threads=self.threads or None, progress=progress)


@dataclass
class PreparedFit:
    """Everything a fit needs, checked before any file is written."""

    splits: dict
    device: object
    dsl: object


def prepare_fit(cfg: FitRunConfig) -> PreparedFit:
    """Load the data and run every check that can fail before training (device, DSL, label
    and factor columns, the DSL against the windows), so a bad input never touches the disk."""
    from nsprog.dsl.definition import load_dsl
    from nsprog.encoder.fitting import check_fit_inputs

    device = resolve_device(cfg.device)
    dsl = load_dsl(cfg.dsl)
    splits = load_splits(cfg.data, cfg.seed)
    splits["test"].label_column(cfg.eval.labels)
    usable_factors(splits["test"], cfg.eval.factors)
    check_fit_inputs(cfg.encoder_config(), dsl, splits["train"])
    return PreparedFit(splits, device, dsl)


def fit_into_run(cfg: FitRunConfig, run: Run, prepared: PreparedFit | None = None, resume: bool = False,
                 progress: bool = True) -> tuple[NeurosymbolicEncoder, dict]:
    """Fit into ``run.path``: ``checkpoint.pt`` after every round, then ``programs.txt`` /
    ``programs.json``, ``metrics.json`` and ``plots/``. Returns the encoder and its metrics."""
    prep = prepared or prepare_fit(cfg)
    splits = prep.splits
    est = cfg.encoder(progress=progress, device=str(prep.device))
    t0 = time.perf_counter()
    est.fit(splits["train"], splits["val"], checkpoint_dir=run.path, resume=resume)
    seconds = time.perf_counter() - t0
    est.save(run.path)
    metrics = score_encoder(est, splits["test"], cfg.eval)
    metrics.update(fit_seconds=seconds, vae_steps=est.n_steps_, rounds=est.history_, data=cfg.data.source,
                   reject_ambiguous=cfg.data.reject_ambiguous if cfg.data.source == "synthetic" else None)
    run.write_json("metrics.json", metrics)
    if cfg.eval.plots:
        from nsprog.evaluation.plots import plot_fit

        plot_fit(est, splits, cfg.eval, Path(run.path) / "plots")
    return est, metrics
