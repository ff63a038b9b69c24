"""Config dataclasses of ``nsprog safety`` (loaded with :func:`nsprog.config.load_config`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["MODES", "BENCHMARK_NAMES", "TrainConfig", "VerifyConfig", "SafetyRunConfig", "SafetyTableConfig"]

MODES = ("only_data", "diffai", "dse")
BENCHMARK_NAMES = ("thermostat", "aircraft", "racetrack", "cartpole")

Mode = Literal["only_data", "diffai", "dse"]
BenchmarkName = Literal["thermostat", "aircraft", "racetrack", "cartpole"]


def _positive(obj, names: tuple, allow_zero: tuple = ()) -> None:
    for n in names:
        v = getattr(obj, n)
        if v is None:
            continue
        if n in allow_zero:
            if v < 0:
                raise ValueError(f"{n} must be >= 0; got {v}")
        elif v <= 0:
            raise ValueError(f"{n} must be > 0; got {v}")


@dataclass
class TrainConfig:
    """Optimisation. Every mode gets the same budget of ``steps`` optimiser steps."""

    steps: int = 1500  # optimiser steps (one Adam update each), identical for every mode
    lr: float = 1e-3
    weight_decay: float = 1e-6  # Adam's L2 weight decay
    clip: float = 1.0  # gradient-norm clip
    optimizer: Literal["joint", "per_term"] = "joint"  # joint: one Adam on data + lam * safety (reference);
    # per_term: the data and safety gradients are clipped separately and get separate Adam moments
    lam: float = 50.0  # loss = data + lam * safety (the reference: (data + 50 safety) / 50, same up to scale)
    safety_lr: float | None = None  # per_term: the safety Adam's learning rate (None: lr; follows the same schedule)
    adam_beta2: float = 0.99  # Adam's second-moment decay (reference: 0.999)
    lr_schedule: Literal["constant", "cosine"] = "cosine"  # cosine: decay to lr / 20 over the budget (reference: constant)
    warmup: int = 1000  # diffai/dse: the first `warmup` steps use the data loss only (within the budget; reference: 0)
    data_batch: int = 256  # (input, output) pairs per step for the data loss
    components: int | None = None  # training components (about, for k > 1 inputs); None: benchmark default
    components_per_step: int | None = None  # components drawn per step (without replacement); None: benchmark
    # default (DSE 16, DiffAI+ 64, so both run 64 boxes a step); 0: all of them (the reference's thermostat setting)
    paths: int | None = None  # DSE paths per component; None: benchmark default (4; the reference used 30)
    baseline: Literal["none", "loo"] = "loo"  # DSE score-function baseline: none (reference) or leave-one-out mean
    estimator: Literal["path", "rtg"] = "path"  # DSE score-function weights: the whole path's penalty (reference)
    # or each choice's reward to go (the penalty recorded after the choice)
    entropy: float = 0.0  # DSE bonus on the entropy of branch choices (0: off)
    margin: float | None = None  # diffai/dse train against the spec tightened by this margin (in the units of the
    # constrained variables; the verifier uses the true spec); None: the benchmark default (train_margin, else 0)
    eval_every: int = 50  # validation (verifier on the validation pieces + data loss) every this many steps
    select: Literal["auto", "last", "val_safe", "val_data"] = "auto"  # which checkpoint to keep (auto: only_data
    # val_data, diffai/dse val_safe)
    select_tolerance: float = 0.01  # val_safe: lowest val data loss among checkpoints with val_safe >= best - this
    val_verifier_components: int | None = None  # validation verifier pieces per dimension; None: benchmark default
    val_trajectories: int = 500  # validation trajectories (their own seed)

    def __post_init__(self):
        _positive(self, ("steps", "lr", "safety_lr", "clip", "lam", "data_batch", "components", "paths", "components_per_step", "eval_every",
                         "val_verifier_components", "val_trajectories", "weight_decay", "entropy", "warmup", "select_tolerance",
                         "margin"),
                  allow_zero=("steps", "weight_decay", "entropy", "warmup", "select_tolerance", "components_per_step",
                              "margin"))
        if not 0.0 < self.adam_beta2 < 1.0:
            raise ValueError(f"adam_beta2 must be in (0, 1); got {self.adam_beta2}")
        if self.paths is not None and self.paths < 2 and self.baseline == "loo":
            raise ValueError("baseline 'loo' needs paths >= 2 per component")


@dataclass
class VerifyConfig:
    """The final (test) verifier and the other test measurements."""

    components: int | None = None  # pieces per input dimension; None: benchmark default (10,000; cartpole 20)
    chunk: int = 20_000  # pieces per vectorised batch
    dtype: Literal["float32", "float64"] = "float64"
    tolerance: float = 1e-6
    empirical_samples: int = 10_000  # concrete runs from uniform inputs for the empirical unsafe rate
    test_trajectories: int = 20_000  # held-out trajectories for the test data loss
    max_memory_gb: float | None = None  # verifier memory limit; None: half of the available memory

    def __post_init__(self):
        _positive(self, ("components", "chunk", "tolerance", "empirical_samples", "test_trajectories",
                         "max_memory_gb"), allow_zero=("tolerance",))


@dataclass
class SafetyRunConfig:
    """``nsprog safety run``: train one benchmark in one mode, then verify and measure it."""

    benchmark: BenchmarkName = "thermostat"
    mode: Mode = "dse"
    seed: int = 0
    train_size: int = 100  # training trajectories from the ground-truth program
    threads: int = 1  # torch intra-op threads (1 is fastest for these tiny models)
    device: str = "cpu"
    plot: bool = True
    train: TrainConfig = field(default_factory=TrainConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)

    def __post_init__(self):
        _positive(self, ("train_size", "threads"))


@dataclass
class SafetyTableConfig:
    """``nsprog safety table``: benchmarks x modes x training sizes x seeds, resumable."""

    out: str = "experiments/results/safety"
    benchmarks: list[BenchmarkName] = field(default_factory=lambda: list(BENCHMARK_NAMES))
    modes: list[Mode] = field(default_factory=lambda: list(MODES))
    train_sizes: list[int] = field(default_factory=lambda: [50, 250])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    threads: int = 1
    device: str = "cpu"
    train: TrainConfig = field(default_factory=TrainConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    # per-benchmark dotted overrides of the run config, e.g. {cartpole: ["train.steps=800"]}
    overrides: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self):
        for n, v in (("benchmarks", self.benchmarks), ("modes", self.modes), ("train_sizes", self.train_sizes),
                     ("seeds", self.seeds)):
            if not v:
                raise ValueError(f"{n} must list at least one value")
        if any(s < 1 for s in self.train_sizes):
            raise ValueError(f"train_sizes must be >= 1; got {self.train_sizes}")
        unknown = set(self.overrides) - set(BENCHMARK_NAMES)
        if unknown:
            raise ValueError(
                f"overrides name unknown benchmark(s) {sorted(unknown)}; valid benchmarks: {', '.join(BENCHMARK_NAMES)}"
            )
