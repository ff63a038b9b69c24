"""The interpreters' fast paths give the same values and gradients as the plain computations.

- :class:`IntervalMLP` ``call_boxes`` (interleaved bounds, one product per layer, narrow products
  transposed) against :func:`propagate`, values and gradients;
- liveness: what the interpreters may skip;
- sampled semantics: choices at a guard, and log-probabilities only for guards a path reached.
"""

import pytest
import torch
from torch import nn

from nsprog.safety.benchmarks import get_benchmark
from nsprog.safety.box import Box, Normalize, propagate
from nsprog.safety.interpret import liveness, run_program
from nsprog.safety.ir import Call, If, Loop, Program, V, assign, if_le, record
from nsprog.safety.nets import IntervalMLP, _matmul, make_mlp
from nsprog.safety.train import Stepper, make_optimizer


def _nets(seed: int, n_in: int, n_out: int, out_act: str | None = "sigmoid"):
    torch.manual_seed(seed)
    return [make_mlp(n_in, n_out, hidden=(6, 5), out_act=out_act, center=[0.5] * n_in, scale=[2.0] * n_in).double()
            for _ in range(2)]


def _boxes(seed: int, k: int, b: int = 7, requires_grad: bool = True) -> list:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(k):
        lo = torch.randn(b, generator=g, dtype=torch.float64)
        t = torch.stack([lo, lo + torch.rand(b, generator=g, dtype=torch.float64)])
        out.append(t.requires_grad_(requires_grad))
    return out


def _reference(net: nn.Module, boxes: list) -> list:
    """Output boxes [2, B] per output through the plain Box.propagate (autograd op by op)."""
    lo = torch.stack([b[0] for b in boxes], -1)
    hi = torch.stack([b[1] for b in boxes], -1)
    out = propagate(net, Box._raw(lo, hi))
    return [torch.stack([out.lo[:, j], out.hi[:, j]]) for j in range(out.shape[-1])]


def _grads(loss, tensors):
    return torch.autograd.grad(loss, tensors, allow_unused=True)


@pytest.mark.parametrize("k, m, act", [(1, 2, "sigmoid"), (3, 1, None), (2, 3, "tanh")])
def test_interval_network_matches_propagate_with_gradients(k, m, act):
    net, _ = _nets(0, k, m, act)
    params = list(net.parameters())
    inputs = [_boxes(s, k) for s in range(3)]  # three calls of the same network, like a loop
    w = torch.randn(3, m, 2, 7, dtype=torch.float64)
    fast = IntervalMLP(net)
    got = [fast.call_boxes(x) for x in inputs]
    ref = [_reference(net, x) for x in inputs]
    for a, b in zip(got, ref):
        for ta, tb in zip(a, b):
            assert torch.allclose(ta, tb, atol=1e-12)
    loss_fast = sum((torch.stack(o) * w[i]).sum() for i, o in enumerate(got))
    loss_ref = sum((torch.stack(o) * w[i]).sum() for i, o in enumerate(ref))
    leaves = params + [t for x in inputs for t in x]
    for ga, gb in zip(_grads(loss_fast, leaves), _grads(loss_ref, leaves)):
        assert torch.allclose(ga, gb, atol=1e-10)


def test_interval_network_with_other_layers():
    leaky = nn.Sequential(Normalize([1.0], [2.0]), nn.Linear(1, 3), nn.LeakyReLU(0.1), nn.Linear(3, 1)).double()
    x = _boxes(2, 1)
    (out,) = IntervalMLP(leaky).call_boxes(x)
    assert torch.allclose(out, _reference(leaky, x)[0])
    with pytest.raises(TypeError, match="no interval semantics for layer Dropout"):
        IntervalMLP(nn.Sequential(nn.Linear(1, 1), nn.Dropout()))


@pytest.mark.parametrize("shape_a, shape_b", [((30, 128), (128, 4)), ((600, 4), (4, 3)), ((2, 5), (5, 9)),
                                              ((12, 3), (3, 2))])
@pytest.mark.parametrize("with_bias", [False, True])
def test_matmul_orientation_gives_the_same_product(shape_a, shape_b, with_bias):
    a = torch.randn(*shape_a, dtype=torch.float64)
    b = torch.randn(*shape_b, dtype=torch.float64)
    bias = torch.randn(shape_b[-1], dtype=torch.float64) if with_bias else None
    want = a @ b if bias is None else a @ b + bias
    assert torch.allclose(_matmul(a, b, bias), want, atol=1e-12)


def test_liveness_of_the_thermostat_branch():
    th = get_benchmark("thermostat")
    loop_stmt = next(s for s in th.program.body if isinstance(s, Loop))
    branch = next(s for s in loop_stmt.body if isinstance(s, If))
    info = liveness(th.program)[id(branch)]
    # isOn is overwritten by both networks before any read: its guard-met values are never needed;
    # h is written and read inside the branch only: dead afterwards; x and isOn are live
    assert (info.guard_then, info.guard_else) == (False, False)
    assert "h" not in info.live_after and {"x", "isOn"} <= info.live_after


def test_liveness_keeps_the_guard_when_a_branch_reads_it_or_it_is_read_later():
    p = Program("p", ("x",), (
        if_le("x", 0.0, [assign("y", V("x") * 2.0)], [assign("y", V("x") * 0.0 + 1.0)]),
        if_le("y", 1.0, [assign("z", 1.0)], [assign("z", 2.0)]),
        record("z"),
    ))
    first, second = p.body[0], p.body[1]
    live = liveness(p)
    assert live[id(first)].guard_then and live[id(first)].guard_else and live[id(first)].live_after == {"y"}
    assert not live[id(second)].guard_then and live[id(second)].live_after == {"z"}
    # the sampled semantics still clips a guard variable that is read after the if-then-else
    q = Program("q", ("x",), (if_le("x", 0.5, [assign("y", 1.0)], [assign("y", 2.0)]), record("x", "y")))
    tr = run_program(q, {}, Box(torch.zeros(4000, 1), torch.ones(4000, 1)), "sample",
                     generator=torch.Generator().manual_seed(0))
    x, y = tr.records["x"], tr.records["y"]
    then = y.lo[:, 0] == 1.0
    assert torch.equal(x.hi[then, 0], torch.full((int(then.sum()),), 0.5))
    assert torch.equal(x.lo[~then, 0], torch.full((int((~then).sum()),), 0.5))


def test_sampled_choices_follow_the_share_of_the_box_and_points_on_the_threshold_go_then():
    p = Program("p", ("x",), (if_le("x", 0.25, [assign("y", 1.0)], [assign("y", 2.0)]), record("y")))
    n = 20_000
    tr = run_program(p, {}, Box(torch.zeros(n, 1, dtype=torch.float64), torch.ones(n, 1, dtype=torch.float64)),
                     "sample", generator=torch.Generator().manual_seed(3))
    assert abs(float((tr.records["y"].lo == 1.0).double().mean()) - 0.25) < 0.015
    pts = torch.tensor([[0.25], [0.2500001], [-3.0]], dtype=torch.float64)
    tr = run_program(p, {}, Box(pts, pts), "sample", generator=torch.Generator().manual_seed(0))
    assert tr.records["y"].lo[:, 0].tolist() == [1.0, 2.0, 1.0] and tr.logp.abs().max() == 0


def test_log_probability_counts_only_the_guards_a_path_reached():
    # the inner guard on z sits in the "then" branch of the outer guard on x; a path that goes "else" at
    # the outer guard (x a point above 0) must not collect the inner guard's log-probability
    p = Program("nested", ("x", "z"), (
        if_le("x", 0.0, [if_le("z", 0.5, [assign("y", 1.0)], [assign("y", 2.0)])], [assign("y", 3.0)]),
        record("y"),
    ))
    lo = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    hi = torch.tensor([[1.0, 1.0], [-1.0, 1.0]], dtype=torch.float64)
    tr = run_program(p, {}, Box(lo, hi), "sample", uniform=lambda n: torch.full((n,), 0.3, dtype=torch.float64))
    assert tr.records["y"].lo[:, 0].tolist() == [3.0, 1.0]
    assert tr.logp.tolist() == pytest.approx([0.0, float(torch.log(torch.tensor(0.5)))])
    logq, counts = tr.choices
    assert logq.shape == (1, 2) and counts["y"].tolist() == [0]  # only the inner guard was straddled


def test_stepper_optimizers_and_per_term():
    assert make_optimizer([nn.Parameter(torch.zeros(3))], 1e-3).defaults.get("fused") in (True, None)
    from nsprog.safety.config import TrainConfig
    from nsprog.safety.data import generate_data

    th = get_benchmark("thermostat")
    data = generate_data(th, 3, seed=0)
    for optimizer in ("joint", "per_term"):
        cfg = TrainConfig(steps=3, warmup=1, optimizer=optimizer, components_per_step=4)
        mods = th.make_modules()
        before = [p.detach().clone() for m in mods.values() for p in m.parameters()]
        st = Stepper(th, "dse", cfg, mods, data, torch.Generator().manual_seed(0))
        assert (st.opt_s is not None) == (optimizer == "per_term")
        rows = [st.step(i) for i in (1, 2, 3)]
        assert rows[0]["safety"] != rows[0]["safety"] and rows[2]["safety"] >= 0  # NaN during the warm-up
        after = [p.detach() for m in mods.values() for p in m.parameters()]
        assert any(not torch.equal(a, b) for a, b in zip(before, after))


def test_point_boxes_at_a_guard_give_finite_gradients():
    """Point boxes and boxes of tiny width (e.g. a saturated sigmoid) next to straddling boxes: their
    share p is masked out and must not turn into 0 * inf = NaN in the backward pass (x / w for a width
    w of 1e-21 has the derivative x / w**2 = inf in float32)."""
    lin = nn.Linear(1, 1)
    with torch.no_grad():
        lin.weight.fill_(1.0)
        lin.bias.fill_(0.0)
    p = Program("pt", ("x",), (assign("y", Call("f", ("x",))),
                               if_le("y", 0.5, [assign("z", V("y") * 1.0)], [assign("z", V("y") + 1.0)]), record("z")))
    lo = torch.tensor([[0.2], [0.0], [0.9], [1e-21]])
    hi = torch.tensor([[0.2], [1.0], [0.9], [2e-21]])
    tr = run_program(p, {"f": nn.Sequential(lin)}, Box(lo, hi), "sample", generator=torch.Generator().manual_seed(0))
    (tr.logp.sum() + tr.records["z"].hi.sum()).backward()
    assert torch.isfinite(lin.bias.grad).all() and torch.isfinite(lin.weight.grad).all()
    assert tr.logp[0] == 0 and tr.logp[2] == 0 and tr.logp[3] == 0 and tr.logp[1] < 0
