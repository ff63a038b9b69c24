"""DSE's gradient estimate agrees with a finite difference of the expected path penalty."""

import pytest
import torch
from torch import nn

from nsprog.safety.box import Box
from nsprog.safety.interpret import run_program
from nsprog.safety.ir import Call, Program, V, assign, if_le, record
from nsprog.safety.spec import Constraint, Spec
from nsprog.safety.train import dse_surrogate, dse_surrogate_rtg

# y = x + theta (a learned shift), x in [0, 1]; if y <= 0.5: z = y - 0.1 else: z = y + 2; z must lie in [0, 1.2].
# At theta = 0 the "then" path ([theta - 0.1, 0.4]) is partly unsafe, the "else" path ([2.5, 3]) wholly unsafe, so
# the expected penalty J = p P_then + (1 - p) P_else has dJ/dtheta = 1.3, while the pathwise term alone gives -0.8.
PROG = Program("toy", ("x",), (
    assign("y", Call("shift", ("x",))),
    if_le("y", 0.5, [assign("z", V("y") - 0.1)], [assign("z", V("y") + 2.0)]),
    record("z"),
))
SPEC = Spec(PROG, [Constraint("z", 0.0, 1.2)])


def _shift(theta: float) -> nn.Module:
    lin = nn.Linear(1, 1).double()
    with torch.no_grad():
        lin.weight.fill_(1.0)
        lin.bias.fill_(theta)
    lin.weight.requires_grad_(False)
    return nn.Sequential(lin)


def _box(n: int) -> Box:
    return Box(torch.zeros(n, 1, dtype=torch.float64), torch.ones(n, 1, dtype=torch.float64))


def expected_penalty(theta: float, prog=None, spec=None) -> float:
    """Exact E[P] by forcing each branch (uniform draws of 0 take "then", of 1 take "else")."""
    prog, spec = prog or PROG, spec or SPEC
    total = 0.0
    with torch.no_grad():
        for u in (0.0, 1.0):
            tr = run_program(prog, {"shift": _shift(theta)}, _box(1), "sample",
                             uniform=lambda n, u=u: torch.full((n,), u, dtype=torch.float64))
            total += float(tr.logp.exp() * spec.path_penalty(tr.records))
    return total


def dse_gradient(theta: float, n_paths: int, seed: int, baseline: str, score: bool = True) -> float:
    mod = _shift(theta)
    tr = run_program(PROG, {"shift": mod}, _box(n_paths), "sample", generator=torch.Generator().manual_seed(seed))
    pen = SPEC.path_penalty(tr.records)
    loss = dse_surrogate(pen, tr.logp if score else tr.logp.detach() * 0, 1, n_paths, baseline)
    loss.backward()
    return float(mod[0].bias.grad)


@pytest.mark.parametrize("baseline", ["none", "loo"])
def test_dse_gradient_matches_finite_difference(baseline):
    theta, eps = 0.0, 1e-4
    fd = (expected_penalty(theta + eps) - expected_penalty(theta - eps)) / (2 * eps)
    assert fd == pytest.approx(1.3, abs=1e-3)
    grads = torch.tensor([dse_gradient(theta, 2000, seed, baseline) for seed in range(10)])
    mean, se = float(grads.mean()), float(grads.std() / len(grads) ** 0.5)
    assert mean > 0  # same sign as the finite difference
    assert abs(mean - fd) < 4 * se + 0.02, (mean, se, fd)


def test_pathwise_term_alone_has_the_wrong_sign():
    """Without the score-function term the estimate is biased (here even of the wrong sign)."""
    g = dse_gradient(0.0, 4000, 0, "none", score=False)
    assert g == pytest.approx(-0.8, abs=0.1)


# The same branch with a record of z = y *before* it, against a per-step spec whose first step is partly unsafe:
# that record's penalty does not depend on the choice, so the reward-to-go estimator leaves it out of the
# score-function weight (lower variance, same expectation).
PROG2 = Program("toy2", ("x",), (
    assign("y", Call("shift", ("x",))),
    assign("z", V("y") * 1.0),
    record("z"),
    if_le("y", 0.5, [assign("z", V("y") - 0.1)], [assign("z", V("y") + 2.0)]),
    record("z"),
))
SPEC2 = Spec(PROG2, [Constraint("z", (3.0, 0.0), (4.0, 1.2))])


def dse_gradient2(theta: float, n_paths: int, seed: int, estimator: str) -> float:
    mod = _shift(theta)
    tr = run_program(PROG2, {"shift": mod}, _box(n_paths), "sample", generator=torch.Generator().manual_seed(seed))
    if estimator == "rtg":
        loss = dse_surrogate_rtg(SPEC2, tr, 1, n_paths, "none")
    else:
        loss = dse_surrogate(SPEC2.path_penalty(tr.records), tr.logp, 1, n_paths, "none")
    loss.backward()
    return float(mod[0].bias.grad)


def test_reward_to_go_estimator_is_unbiased_with_less_variance():
    theta, eps = 0.0, 1e-4
    fd = (expected_penalty(theta + eps, PROG2, SPEC2) - expected_penalty(theta - eps, PROG2, SPEC2)) / (2 * eps)
    tr = run_program(PROG2, {"shift": _shift(theta)}, _box(4), "sample", generator=torch.Generator().manual_seed(0))
    logq, counts = tr.choices
    assert logq.shape == (1, 4) and counts["z"].tolist() == [1]  # one guard, after the first record of z
    assert torch.allclose(logq.sum(0), tr.logp)
    grads = {e: torch.tensor([dse_gradient2(theta, 200, seed, e) for seed in range(40)]) for e in ("path", "rtg")}
    for e, g in grads.items():
        mean, se = float(g.mean()), float(g.std() / len(g) ** 0.5)
        assert abs(mean - fd) < 4 * se + 0.02, (e, mean, se, fd)
    assert float(grads["rtg"].std()) < 0.5 * float(grads["path"].std())
