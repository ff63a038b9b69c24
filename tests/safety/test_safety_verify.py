"""Verifier counts on hand-made cases, memory estimates, empirical rates."""

import pytest
import torch
from torch import nn

from nsprog.safety.benchmarks import Benchmark, get_benchmark
from nsprog.safety.ir import Call, Program, V, assign, if_le, record
from nsprog.safety.spec import Constraint, Spec
from nsprog.safety.verify import VerifierError, empirical_unsafe, verify


def _bench(program: Program, spec_constraints, lo, hi, modules=None) -> Benchmark:
    return Benchmark(
        name=program.name, description="test", program=program, input_lo=torch.tensor(lo), input_hi=torch.tensor(hi),
        spec=Spec(program, spec_constraints), make_modules=lambda: dict(modules or {}),
        make_experts=lambda gen=None: {}, defaults={"verifier_components": 10, "val_verifier_components": 3},
    )


def test_identity_program_counts_pieces_inside_the_spec():
    p = Program("id", ("x",), (record("x"),))
    b = _bench(p, [Constraint("x", 0.25, 0.75)], [0.0], [1.0])
    res = verify(b, {}, 4)  # pieces [0, .25] [.25, .5] [.5, .75] [.75, 1]: the middle two are safe
    assert (res.pieces, res.safe, res.provably_safe) == (4, 2, 0.5)
    assert verify(b, {}, 4, keep_flags=True).flags.tolist() == [False, True, True, False]


def test_branch_program_counts_and_chunking():
    p = Program("br", ("x",), (if_le("x", 0.5, [assign("y", V("x") * 1.0)], [assign("y", V("x") + 10.0)]),
                               record("y")))
    b = _bench(p, [Constraint("y", 0.0, 1.0)], [0.0], [1.0])
    # pieces [0,.1] ... [.4,.5] take only "then" (safe); [.5,.6] straddles (join with y >= 10.5: unsafe); the rest unsafe
    assert verify(b, {}, 10).safe == 5
    assert verify(b, {}, 10, chunk=3).safe == 5


def test_two_inputs_grid_count():
    p = Program("sum", ("a", "b"), (assign("s", V("a") + V("b")), record("s")))
    b = _bench(p, [Constraint("s", -1.0, 1.0)], [0.0, 0.0], [1.0, 1.0])
    res = verify(b, {}, 3)  # s's upper bound (i + 1)/3 + (j + 1)/3 <= 1 for (0,0), (0,1), (1,0)
    assert (res.pieces, res.safe) == (9, 3)


def test_network_program_is_verified_through_interval_propagation():
    net = nn.Sequential(nn.Linear(1, 1))
    with torch.no_grad():
        net[0].weight.fill_(-1.0)
        net[0].bias.fill_(1.0)
    p = Program("net", ("x",), (assign("y", Call("f", ("x",))), record("y")))
    b = _bench(p, [Constraint("y", 0.0, 0.5)], [0.0], [1.0], {"f": net})
    assert verify(b, {"f": net}, 10).safe == 5  # y = 1 - x <= 0.5 iff x >= 0.5
    assert empirical_unsafe(b, {"f": net}, n=4000, seed=0) == pytest.approx(0.5, abs=0.04)


def test_verifier_component_count_too_large_for_memory_is_an_error():
    cart = get_benchmark("cartpole")
    with pytest.raises(VerifierError, match=r"verifier components = 10000 per input dimension gives 10000\^4 = 1e\+16 "
                                            r"pieces for the 4 input\(s\) x, xdot, theta, thetadot"):
        verify(cart, cart.make_modules(), 10_000)
    th = get_benchmark("thermostat")
    with pytest.raises(VerifierError, match="use at most about"):
        verify(th, th.make_modules(), 10_000, max_memory=1000)
    with pytest.raises(VerifierError, match="integer >= 1"):
        verify(th, th.make_modules(), 0)
