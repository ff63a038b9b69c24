"""Training / validation / test data regenerated from each benchmark's ground-truth program.

A data set is, per neural module, the (input, output) pairs of the module calls that the
ground-truth program (the benchmark program with expert functions in place of networks)
executed on ``n`` initial states drawn uniformly from the input box.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nsprog.safety.benchmarks import Benchmark
from nsprog.safety.interpret import run_program

__all__ = ["PairData", "generate_data", "data_loss", "TEST_SEED", "VAL_SEED_OFFSET"]

#: seed of the held-out test trajectories (shared by every run so test losses compare)
TEST_SEED = 1_000_003
#: validation trajectories use ``seed + VAL_SEED_OFFSET``
VAL_SEED_OFFSET = 500_009


@dataclass
class PairData:
    """Per module: ``inputs[name]`` ``[n, k]`` and ``targets[name]`` ``[n, m]``; plus the initial states."""

    inputs: dict
    targets: dict
    initial: torch.Tensor

    @property
    def n_pairs(self) -> int:
        return sum(int(v.shape[0]) for v in self.inputs.values())

    def to(self, dtype=None, device=None) -> "PairData":
        cv = lambda t: t.to(dtype=dtype or t.dtype, device=device)  # noqa: E731
        return PairData({k: cv(v) for k, v in self.inputs.items()}, {k: cv(v) for k, v in self.targets.items()},
                        cv(self.initial))


def generate_data(bench: Benchmark, n_trajectories: int, seed: int, dtype=torch.float32) -> PairData:
    """Run the ground-truth program from ``n_trajectories`` uniform initial states (seeded)."""
    if n_trajectories < 1:
        raise ValueError(f"the number of trajectories must be >= 1; got {n_trajectories}")
    gen = torch.Generator().manual_seed(int(seed))
    box = bench.input_box.to(torch.float64)
    x0 = box.sample(n_trajectories, generator=gen)
    with torch.no_grad():
        trace = run_program(bench.program, bench.make_experts(gen), x0, "concrete", log_calls=True)
    inputs = {k: v[0].to(dtype) for k, v in trace.calls.items()}
    targets = {k: v[1].to(dtype) for k, v in trace.calls.items()}
    for name in bench.program.modules:
        if name not in inputs:
            sig = bench.program.modules[name]
            inputs[name] = torch.zeros(0, sig.n_in, dtype=dtype)
            targets[name] = torch.zeros(0, sig.n_out, dtype=dtype)
    return PairData(inputs, targets, x0.to(dtype))


def data_loss(modules: dict, data: PairData, batch: int | None = None, generator: torch.Generator | None = None,
              chunk: int = 65536) -> torch.Tensor:
    """Pooled mean squared error of every module on its pairs.

    Pooled means the sum of squared errors over all modules' outputs divided by the number
    of output entries, so modules with more calls weigh more, as in the ground truth. With
    ``batch``, a minibatch of ``batch`` pairs is drawn uniformly from all pairs of all modules.
    """
    names = [k for k, v in data.inputs.items() if v.shape[0] > 0]
    if not names:
        raise ValueError("the data set has no module calls")
    sizes = [data.inputs[k].shape[0] for k in names]
    total = sum(sizes)
    picks: dict = {}
    if batch is not None and batch < total:
        idx = torch.randint(0, total, (batch,), generator=generator)
        off = 0
        for k, n in zip(names, sizes):
            sel = idx[(idx >= off) & (idx < off + n)] - off
            if sel.numel():
                picks[k] = sel
            off += n
    else:
        picks = {k: None for k in names}
    sse = None
    count = 0
    for name, sel in picks.items():
        x, y = data.inputs[name], data.targets[name]
        if sel is not None:
            x, y = x[sel], y[sel]
        n = x.shape[0]
        if torch.is_grad_enabled() or n <= chunk:
            err = ((modules[name](x) - y) ** 2).sum()
        else:
            err = sum(((modules[name](x[i:i + chunk]) - y[i:i + chunk]) ** 2).sum() for i in range(0, n, chunk))
        sse = err if sse is None else sse + err
        count += y.numel()
    return sse / count
