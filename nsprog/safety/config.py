"""Config dataclasses of ``nsprog safety`` (loaded with :func:`nsprog.config.load_config`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from nsprog.settings import Settings, param

__all__ = ["MODES", "BENCHMARK_NAMES", "TrainConfig", "VerifyConfig", "SafetyRunConfig", "SafetyTableConfig"]

MODES = ("only_data", "diffai", "dse")
BENCHMARK_NAMES = ("thermostat", "aircraft", "racetrack", "cartpole")

Mode = Literal["only_data", "diffai", "dse"]
BenchmarkName = Literal["thermostat", "aircraft", "racetrack", "cartpole"]


@dataclass
class TrainConfig(Settings):
    """Optimisation. Every mode gets the same budget of ``steps`` optimiser steps."""

    steps: int = param(1500, ge=0)  # optimiser steps (one Adam update each), identical for every mode
    lr: float = param(1e-3, gt=0)
    weight_decay: float = param(1e-6, ge=0)  # Adam's L2 weight decay
    clip: float = param(1.0, gt=0)  # gradient-norm clip
    optimizer: Literal["joint", "per_term"] = "joint"  # joint: one Adam on data + lam * safety (reference);
    # per_term: the data and safety gradients are clipped separately and get separate Adam moments
    lam: float = param(50.0, gt=0)  # loss = data + lam * safety (the reference: (data + 50 safety) / 50, same up to scale)
    safety_lr: float | None = param(None, gt=0)  # per_term: the safety Adam's learning rate (None: lr; follows the same schedule)
    adam_beta2: float = param(0.99, gt=0, lt=1)  # Adam's second-moment decay (reference: 0.999)
    lr_schedule: Literal["constant", "cosine"] = "cosine"  # cosine: decay to lr / 20 over the budget (reference: constant)
    warmup: int = param(1000, ge=0)  # diffai/dse: the first `warmup` steps use the data loss only (within the budget; reference: 0)
    data_batch: int = param(256, ge=1)  # (input, output) pairs per step for the data loss
    components: int | None = param(None, ge=1)  # training components (about, for k > 1 inputs); None: benchmark default
    components_per_step: int | None = param(None, ge=0)  # components drawn per step (without replacement); None: benchmark
    # default (DSE 16, DiffAI+ 64, so both run 64 boxes a step); 0: all of them (the reference's thermostat setting)
    paths: int | None = param(None, ge=1)  # DSE paths per component; None: benchmark default (4; the reference used 30)
    baseline: Literal["none", "loo"] = "loo"  # DSE score-function baseline: none (reference) or leave-one-out mean
    estimator: Literal["path", "rtg"] = "path"  # DSE score-function weights: the whole path's penalty (reference)
    # or each choice's reward to go (the penalty recorded after the choice)
    entropy: float = param(0.0, ge=0)  # DSE bonus on the entropy of branch choices (0: off)
    margin: float | None = param(None, ge=0)  # diffai/dse train against the spec tightened by this margin (in the units of the
    # constrained variables; the verifier uses the true spec); None: the benchmark default (train_margin, else 0)
    eval_every: int = param(50, ge=1)  # validation (verifier on the validation pieces + data loss) every this many steps
    select: Literal["auto", "last", "val_safe", "val_data"] = "auto"  # which checkpoint to keep (auto: only_data
    # val_data, diffai/dse val_safe)
    select_tolerance: float = param(0.01, ge=0)  # val_safe: lowest val data loss among checkpoints with val_safe >= best - this
    val_verifier_components: int | None = param(None, ge=1)  # validation verifier pieces per dimension; None: benchmark default
    val_trajectories: int = param(500, ge=1)  # validation trajectories (their own seed)

    def _extra_checks(self) -> list[str]:
        if self.paths is not None and self.paths < 2 and self.baseline == "loo":
            return ["paths: baseline 'loo' needs paths >= 2 per component"]
        return []


@dataclass
class VerifyConfig(Settings):
    """The final (test) verifier and the other test measurements."""

    components: int | None = param(None, ge=1)  # pieces per input dimension; None: benchmark default (10,000; cartpole 20)
    chunk: int = param(20_000, ge=1)  # pieces per vectorised batch
    dtype: Literal["float32", "float64"] = "float64"
    tolerance: float = param(1e-6, ge=0)
    empirical_samples: int = param(10_000, ge=1)  # concrete runs from uniform inputs for the empirical unsafe rate
    test_trajectories: int = param(20_000, ge=1)  # held-out trajectories for the test data loss
    max_memory_gb: float | None = param(None, gt=0)  # verifier memory limit; None: half of the available memory



@dataclass
class SafetyRunConfig(Settings):
    """``nsprog safety run``: train one benchmark in one mode, then verify and measure it."""

    benchmark: BenchmarkName = "thermostat"
    mode: Mode = "dse"
    seed: int = param(0, ge=0)
    train_size: int = param(100, ge=1)  # training trajectories from the ground-truth program
    threads: int = param(1, ge=0)  # torch intra-op threads (1 is fastest for these tiny models)
    device: str = "cpu"
    plot: bool = True
    train: TrainConfig = field(default_factory=TrainConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)



@dataclass
class SafetyTableConfig(Settings):
    """``nsprog safety table``: benchmarks x modes x training sizes x seeds, resumable."""

    out: str = "experiments/results/safety"
    benchmarks: list[BenchmarkName] = field(default_factory=lambda: list(BENCHMARK_NAMES))
    modes: list[Mode] = field(default_factory=lambda: list(MODES))
    train_sizes: list[int] = field(default_factory=lambda: [50, 250])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    threads: int = param(1, ge=0)
    device: str = "cpu"
    train: TrainConfig = field(default_factory=TrainConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    # per-benchmark dotted overrides of the run config, e.g. {cartpole: ["train.steps=800"]}
    overrides: dict[str, list[str]] = field(default_factory=dict)

    def _extra_checks(self) -> list[str]:
        problems = [f"{n}: must list at least one value" for n, v in (
            ("benchmarks", self.benchmarks), ("modes", self.modes), ("train_sizes", self.train_sizes),
            ("seeds", self.seeds)) if not v]
        if any(s < 1 for s in self.train_sizes):
            problems.append(f"train_sizes: expected values >= 1; got {self.train_sizes}")
        unknown = set(self.overrides) - set(BENCHMARK_NAMES)
        if unknown:
            problems.append(f"overrides: unknown benchmark(s) {sorted(unknown)}; valid benchmarks: "
                            f"{', '.join(BENCHMARK_NAMES)}")
        return problems
