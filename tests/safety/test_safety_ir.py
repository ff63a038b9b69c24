"""The program IR and the three interpreters (concrete, join, sampled)."""

import pytest
import torch
from torch import nn

from nsprog.safety.benchmarks import get_benchmark
from nsprog.safety.box import Box
from nsprog.safety.interpret import run_program
from nsprog.safety.ir import Call, Program, ProgramError, V, argmax, assign, if_le, loop, record


def _branchy() -> Program:
    # y = 2x if x <= 0.5 else x + 3; repeated twice; records y
    return Program("branchy", ("x",), (
        loop(2, [if_le("x", 0.5, [assign("x", V("x") * 2.0)], [assign("x", V("x") + 3.0)]), record("x")]),
    ))


def test_program_validation_names_the_problem():
    with pytest.raises(ProgramError, match="reads unknown variable"):
        Program("p", ("x",), (assign("y", V("z") + 1.0),))
    with pytest.raises(ProgramError, match="records must not be inside if-then-else"):
        Program("p", ("x",), (if_le("x", 0.0, [record("x")], []),))
    with pytest.raises(ProgramError, match="tests unknown variable 'q'"):
        Program("p", ("x",), (if_le("q", 0.0, [], []),))
    with pytest.raises(ProgramError, match="module 'f' is called with 1 inputs/2 outputs here but 1/1"):
        Program("p", ("x",), (assign("a", Call("f", ("x",))), assign(("a", "b"), Call("f", ("x",)))))
    with pytest.raises(ProgramError, match="2 targets but 1 expressions"):
        assign(("a", "b"), (V("x"),))
    with pytest.raises(ProgramError, match="one branch per score"):
        argmax(("a", "b"), [[]], "t")


def test_record_counts_and_pretty():
    p = _branchy()
    assert p.record_counts == {"x": 2}
    assert "if x <= 0.5:" in p.pretty()


def test_concrete_branching_and_simultaneous_assignment():
    p = Program("swap", ("a", "b"), (assign(("a", "b"), (V("b"), V("a"))), record("a", "b")))
    tr = run_program(p, {}, torch.tensor([[1.0, 2.0]]))
    assert tr.records["a"].tolist() == [[2.0]] and tr.records["b"].tolist() == [[1.0]]
    tr = run_program(_branchy(), {}, torch.tensor([[0.1], [0.4], [0.9]]))
    assert torch.allclose(tr.records["x"], torch.tensor([[0.2, 0.4], [0.8, 3.8], [3.9, 6.9]]))


def test_argmax_lowering_matches_torch_argmax():
    scores = ("s0", "s1", "s2", "s3")
    branches = [[assign("k", float(i))] for i in range(4)]
    p = Program("am", scores, (*argmax(scores, branches, "am"), record("k")))
    x = torch.randn(500, 4)
    x[:10, 2] = x[:10, 1]  # ties go to the lower index, as with torch.argmax
    x[:10, 1] = x[:10].max(-1).values + 1
    x[10:20] = 0.0
    tr = run_program(p, {}, x)
    assert torch.equal(tr.records["k"][:, 0].long(), x.argmax(-1))


def test_join_semantics_contains_every_concrete_run():
    """Soundness of the join interpreter on every benchmark with random networks."""
    torch.manual_seed(0)
    for name in ("thermostat", "aircraft", "racetrack", "cartpole"):
        b = get_benchmark(name)
        mods = {k: m.double() for k, m in b.make_modules().items()}
        per_dim = 8 if b.n_inputs == 1 else 2
        pieces = b.input_box.to(torch.float64).split(per_dim)
        with torch.no_grad():
            sym = run_program(b.program, mods, pieces, "join")
            u = torch.rand(16, *pieces.shape, dtype=torch.float64)
            for j in range(16):
                x = pieces.lo + u[j] * (pieces.hi - pieces.lo)
                conc = run_program(b.program, mods, x, "concrete")
                for var, r in conc.records.items():
                    box = sym.records[var]
                    assert bool(((r >= box.lo - 1e-9) & (r <= box.hi + 1e-9)).all()), (name, var)


def test_sampled_semantics_on_points_is_concrete_and_probabilities_follow_the_box_share():
    p = _branchy()
    x = torch.tensor([[0.1], [0.4], [0.9]], dtype=torch.float64)
    tr = run_program(p, {}, Box(x, x), "sample", generator=torch.Generator().manual_seed(0))
    assert torch.allclose(tr.records["x"].lo, run_program(p, {}, x).records["x"])
    assert torch.equal(tr.logp, torch.zeros(3, dtype=torch.float64))
    # one box [0, 2] straddling 0.5: "then" with probability 0.25, clipped to [0, 0.5] -> [0, 1]
    n = 20_000
    box = Box(torch.zeros(n, 1, dtype=torch.float64), torch.full((n, 1), 2.0, dtype=torch.float64))
    one = Program("one", ("x",), (if_le("x", 0.5, [assign("x", V("x") * 2.0)], [assign("x", V("x") + 3.0)]),
                                  record("x")))
    tr = run_program(one, {}, box, "sample", generator=torch.Generator().manual_seed(1))
    took_then = tr.records["x"].hi[:, 0] <= 1.0
    assert abs(float(took_then.double().mean()) - 0.25) < 0.015
    assert torch.allclose(tr.logp[took_then], torch.log(torch.tensor(0.25, dtype=torch.float64)))
    assert torch.allclose(tr.logp[~took_then], torch.log(torch.tensor(0.75, dtype=torch.float64)))
    assert torch.allclose(tr.records["x"].lo[~took_then], torch.tensor(3.5, dtype=torch.float64))


def test_join_of_a_straddling_box_is_the_hull_of_both_branches():
    one = Program("one", ("x",), (if_le("x", 0.5, [assign("x", V("x") * 2.0)], [assign("x", V("x") + 3.0)]),
                                  record("x")))
    tr = run_program(one, {}, Box(torch.tensor([[0.0]]), torch.tensor([[2.0]])), "join")
    assert tr.records["x"].lo.item() == 0.0 and tr.records["x"].hi.item() == 5.0


def test_calls_are_logged_only_on_the_path_taken():
    net = nn.Sequential(nn.Linear(1, 1))
    p = Program("c", ("x",), (if_le("x", 0.0, [assign("y", Call("f", ("x",)))], [assign("y", V("x") * 1.0)]),
                              record("y")))
    tr = run_program(p, {"f": net}, torch.tensor([[-1.0], [1.0], [-2.0]]), log_calls=True)
    assert tr.calls["f"][0][:, 0].tolist() == [-1.0, -2.0]
    with pytest.raises(KeyError, match="calls module"):
        run_program(p, {}, torch.zeros(1, 1))
    with pytest.raises(TypeError, match="no interval semantics"):
        run_program(p, {"f": lambda x: x}, Box(torch.zeros(1, 1), torch.ones(1, 1)), "join")
    with pytest.raises(ValueError, match="semantics must be one of concrete, join, sample"):
        run_program(p, {"f": net}, torch.zeros(1, 1), "magic")
    with pytest.raises(ValueError, match=r"expected a tensor of shape \[B, 1\]"):
        run_program(p, {"f": net}, torch.zeros(1, 2))
