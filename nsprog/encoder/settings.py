"""What defines a fit: the algorithm's options and the whole encoder config.

One set of defaults: ``EncoderConfig()`` (and therefore ``NeurosymbolicEncoder()``) is
exactly what ``nsprog fit`` runs without a config file. Per-dataset settings are the named
presets of :mod:`nsprog.encoder.presets`, shared by Python and the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from nsprog.models.nstvae import VAESettings
from nsprog.search.synthesis import SearchSettings
from nsprog.settings import Settings, param

__all__ = ["LearnerSettings", "DistillSettings", "EncoderConfig"]


@dataclass
class LearnerSettings(Settings):
    """Options of Algorithms 1 and 2."""

    warm_start: bool = True  # keep VAE and distilled program parameters between rounds
    min_balance: float = param(0.05, ge=0, le=0.5)  # a program whose minority class is rarer than this is collapsed
    collapse_retries: int = param(1, ge=0)  # retries of a round whose program collapsed (fresh program, new seed)
    val_fraction: float = param(0.1, gt=0, lt=1)  # validation share carved from train when no validation set is given
    max_recode_programs: int = param(3, ge=0)  # distillation also targets the bit XOR subsets of up to this many earlier programs
    min_distill_f1: float = param(0.75, ge=0, le=1)  # a complete program reproducing its neural parent worse than this is rejected...
    distill_retries: int = param(1, ge=0)  # ...and the program is learned again from a fresh neural hole (this many times)
    init_from_neural: bool = True  # programs 2..k, collapsed programs and restarts start from the neural latent's 2-means split
    release_epochs: int = param(0, ge=0)  # VAE epochs after the last program, every program frozen (see README)


@dataclass
class DistillSettings(SearchSettings):
    """The program search used for distillation: :class:`SearchSettings` with the paper's
    one-step ``greedy`` strategy as the default (``nsprog search`` defaults to A*)."""

    strategy: Literal["greedy", "astar", "ids_bb", "mc"] = "greedy"


@dataclass
class EncoderConfig(Settings):
    """Everything that defines a fit (saved in every checkpoint)."""

    dsl: str = "synthetic"
    n_programs: int = param(2, ge=0)
    vae: VAESettings = field(default_factory=VAESettings)
    search: SearchSettings = field(default_factory=DistillSettings)
    learner: LearnerSettings = field(default_factory=LearnerSettings)

    def _extra_checks(self) -> list[str]:
        problems = []
        if self.n_programs > self.vae.z_dim:
            problems.append(f"n_programs: {self.n_programs} programs need vae.z_dim >= {self.n_programs}; "
                            f"got vae.z_dim = {self.vae.z_dim}")
        if not self.learner.warm_start and not self.vae.final_epochs:
            problems.append("learner.warm_start: false re-initialises the program after every distillation, which "
                            "throws the distilled parameters away; set vae.final_epochs > 0 so each completed "
                            "program is trained again")
        return problems
