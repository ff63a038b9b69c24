"""The state of a fit, as plain objects: where Algorithms 1 and 2 stand (saved in every
checkpoint and restored as it is) and the context every step of a fit reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from nsprog.dsl.ast import Node
from nsprog.dsl.definition import DSL
from nsprog.dsl.semantics import StackedProgram
from nsprog.dsl.types import ATOM, LIST, Sig, Type
from nsprog.encoder.settings import EncoderConfig
from nsprog.models.nstvae import NeurosymbolicTVAE
from nsprog.seeds import SeedStreams

if TYPE_CHECKING:
    from nsprog.data.normalize import Normalizer
    from nsprog.features.pipeline import FeaturePipeline

__all__ = ["Phase", "AlgorithmState", "FitContext", "FittedParts", "balance", "start_signature"]

#: ``learn``: Algorithm 1 rounds (VAE training, then distillation into a child program) for
#: program ``state.program``; ``final``: one more VAE round with that program complete and still
#: trainable (``vae.final_epochs``); ``release``: VAE epochs with every program frozen
#: (``learner.release_epochs``); ``plain``: a 0-program fit (a plain trajectory VAE); ``done``.
Phase = Literal["learn", "final", "release", "plain", "done"]


@dataclass
class AlgorithmState:
    """Where a fit stands. Every decision of the algorithm reads this object, never the logs."""

    phase: Phase = "learn"
    program: int = 0  # index of the program being learned (= number of programs finished)
    round: int = 0  # rounds completed (a round = one VAE phase, plus a distillation in ``learn``)
    current: Node | None = None  # the program being learned, None before it has started
    done: list[Node] = field(default_factory=list)  # finished programs, frozen, in learning order
    restarts: dict[int, int] = field(default_factory=dict)  # distillation restarts used, per program index
    step: int = 0  # optimiser steps in all
    program_step: int = 0  # optimiser steps since the current program was added (capacity schedules)

    @classmethod
    def initial(cls, n_programs: int) -> "AlgorithmState":
        return cls(phase="learn" if n_programs else "plain")


@dataclass
class FitContext:
    """What every step of a fit reads: the config, the DSL, the model, the data tensors on
    the device (``states`` and ``feats`` keyed ``train`` / ``val``) and the seed streams."""

    cfg: EncoderConfig
    dsl: DSL
    model: NeurosymbolicTVAE
    states: dict[str, torch.Tensor]
    feats: dict[str, torch.Tensor]
    device: torch.device
    streams: SeedStreams
    progress: bool = True

    @property
    def start(self) -> Sig:
        return start_signature(self.dsl)

    def compile(self, program: Node, seed_keys: tuple[int, ...]) -> StackedProgram:
        """A program as a trainable module; parameters it lacks are initialised from the
        ``program`` stream at ``seed_keys``."""
        s = self.cfg.search
        seed = self.streams.seed_for("program", *seed_keys)
        return StackedProgram([program], self.dsl, s.max_units, s.min_units, seed).to(self.device)

    def logits(self, feats: torch.Tensor, batch: int = 8192) -> torch.Tensor:
        """``[N, k]`` logits of the model's programs, in evaluation mode."""
        self.model.eval()
        with torch.no_grad():
            return torch.cat([self.model.program_logits(feats[lo : lo + batch]) for lo in range(0, feats.shape[0], batch)])

    def bits(self, j: int, split: str) -> np.ndarray:
        return (self.logits(self.feats[split])[:, j] > 0).cpu().numpy().astype(np.int64)

    def neural_means(self, split: str, batch: int = 8192) -> np.ndarray:
        self.model.eval()
        x = self.states[split]
        with torch.no_grad():
            return torch.cat([self.model.encoder(x[lo : lo + batch])[0] for lo in range(0, x.shape[0], batch)]).cpu().numpy()


@dataclass
class FittedParts:
    """What a fit produced, or a checkpoint holds: everything an encoder needs to predict
    (and to continue fitting)."""

    config: EncoderConfig
    dsl: DSL
    model: NeurosymbolicTVAE
    state: AlgorithmState
    history: list[dict]
    pipeline: "FeaturePipeline"
    normalizer: "Normalizer"
    seed: int
    seconds: float = float("nan")  # wall time of the fit (unknown for a restored checkpoint)


def start_signature(dsl: DSL) -> Sig:
    """Type of an encoder program: a window of features to one logit."""
    return Sig(Type(LIST, dsl.n_features), Type(ATOM, 1))


def balance(bits: np.ndarray) -> float:
    """Share of the minority value of a 0/1 vector."""
    p = float(np.mean(bits)) if bits.size else 0.0
    return min(p, 1.0 - p)
