"""Soundness of the interval domain: every concrete point inside a box maps inside the output box."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nsprog.safety.box import Box, BoxError, Normalize, count_pieces, grid_pieces, propagate
from nsprog.safety.nets import IntervalMLP, make_mlp

TOL = 1e-9
finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False)
unit = st.floats(0, 1)


@st.composite
def box_and_points(draw, n=3, k=4):
    """A float64 box of n entries and k points inside it (including the corners)."""
    a = torch.tensor(draw(st.lists(finite, min_size=n, max_size=n)), dtype=torch.float64)
    b = torch.tensor(draw(st.lists(finite, min_size=n, max_size=n)), dtype=torch.float64)
    lo, hi = torch.minimum(a, b), torch.maximum(a, b)
    u = torch.tensor(draw(st.lists(st.lists(unit, min_size=n, max_size=n), min_size=k, max_size=k)), dtype=torch.float64)
    pts = torch.cat([lo[None], hi[None], torch.minimum(lo + u * (hi - lo), hi)])
    return Box(lo, hi), pts


def inside(box: Box, y: torch.Tensor, tol=TOL) -> bool:
    scale = 1 + torch.maximum(box.lo.abs(), box.hi.abs())
    return bool(((y >= box.lo - tol * scale) & (y <= box.hi + tol * scale)).all())


@settings(max_examples=60, deadline=None)
@given(box_and_points(), box_and_points(), finite)
def test_binary_arithmetic_is_sound(bp1, bp2, c):
    (b1, p1), (b2, p2) = bp1, bp2
    for out, f in ((b1 + b2, lambda x, y: x + y), (b1 - b2, lambda x, y: x - y), (b1 * b2, lambda x, y: x * y)):
        for x in p1:
            for y in p2:
                assert inside(out, f(x, y))
    for out, f in ((b1 + c, lambda x: x + c), (b1 - c, lambda x: x - c), (c - b1, lambda x: c - x),
                   (b1 * c, lambda x: x * c), (c * b1, lambda x: c * x), (-b1, lambda x: -x)):
        assert inside(out, f(p1))
    tvec = torch.full_like(b1.lo, c)
    assert inside(b1 * tvec, p1 * c)


@settings(max_examples=60, deadline=None)
@given(box_and_points(), st.floats(-5, 5), st.floats(0, 5))
def test_unary_ops_are_sound(bp, t, w):
    b, p = bp
    cases = [
        (b.square(), p * p), (b.abs(), p.abs()), (b.relu(), torch.relu(p)), (b.sigmoid(), torch.sigmoid(p)),
        (b.tanh(), torch.tanh(p)), (b.clamp(t, t + w), p.clamp(t, t + w)), (b.clamp(min=t), p.clamp(min=t)),
        (b.monotone(torch.exp), torch.exp(p)), (b.minimum(t), p.clamp(max=t)),
        (b.maximum(t), p.clamp(min=t)), (b / 3.0, p / 3.0),
    ]
    for i, (out, y) in enumerate(cases):
        assert inside(out, y), f"case {i}: {out} vs {y}"
    # exact square: the bounds are attained (0 when straddling 0)
    sq = b.square()
    assert torch.allclose(sq.hi, torch.maximum(b.lo**2, b.hi**2))


@settings(max_examples=60, deadline=None)
@given(box_and_points(), st.floats(-60, 60))
def test_meets_keep_every_point_that_satisfies_the_guard(bp, t):
    b, p = bp
    le, le_ok = b.meet_le(t)
    gt, gt_ok = b.meet_gt(t)
    for x in p:
        sel = x <= t
        assert bool((le_ok | ~sel).all()) and bool((gt_ok | sel).all())
        assert bool(((x >= le.lo - TOL) & (x <= le.hi + TOL) | ~sel).all())
        assert bool(((x >= gt.lo - TOL) & (x <= gt.hi + TOL) | sel).all())
    assert bool((le.hi <= t).all()) and bool((gt.lo >= t).all())


@settings(max_examples=60, deadline=None)
@given(box_and_points(), box_and_points())
def test_hull_contains_both_and_containment(bp1, bp2):
    (b1, p1), (b2, p2) = bp1, bp2
    h = b1.hull(b2)
    assert bool(h.contains(b1).all()) and bool(h.contains(b2).all())
    assert inside(h, p1) and inside(h, p2)
    assert bool(b1.contains(p1[0]).all()) and bool(b1.contains(b1).all())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(finite, st.floats(0.001, 10)), min_size=1, max_size=3), st.integers(1, 4),
       st.lists(unit, min_size=3, max_size=3))
def test_split_covers_the_box(dims, n, u):
    lo = torch.tensor([d[0] for d in dims], dtype=torch.float64)
    hi = lo + torch.tensor([d[1] for d in dims], dtype=torch.float64)
    pieces = Box(lo, hi).split(n)
    assert pieces.shape == (n ** len(dims), len(dims))
    assert bool((pieces.lo >= lo - TOL).all()) and bool((pieces.hi <= hi + TOL).all())
    vol = (pieces.hi - pieces.lo).prod(-1).sum()
    assert math.isclose(float(vol), float((hi - lo).prod()), rel_tol=1e-9)
    x = lo + torch.tensor(u[: len(dims)], dtype=torch.float64) * (hi - lo)  # some piece contains any point
    assert bool(pieces.contains(x).all(-1).any())


def test_grid_pieces_matches_split_and_counts():
    b = Box(torch.tensor([0.0, -1.0]), torch.tensor([1.0, 1.0]))
    full = b.split([2, 3])
    part = grid_pieces(b.lo, b.hi, [2, 3], torch.tensor([4, 5]))
    assert torch.equal(part.lo, full.lo[4:6]) and torch.equal(part.hi, full.hi[4:6])
    assert full.lo[1].tolist() == pytest.approx([0.0, -1.0 + 2 / 3]) and count_pieces(4, 20) == 160_000


@settings(max_examples=40, deadline=None)
@given(box_and_points(n=3, k=6), st.integers(0, 2**16))
def test_network_propagation_is_sound(bp, seed):
    torch.manual_seed(seed)
    b, p = bp
    net = nn.Sequential(Normalize([1.0, -2.0, 0.5], [3.0, 2.0, 10.0]), nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8),
                        nn.Tanh(), nn.Linear(8, 2), nn.Sigmoid()).double()
    out = propagate(net, Box(b.lo[None], b.hi[None]))
    with torch.no_grad():
        assert inside(out, net(p))
        fast = IntervalMLP(net)(torch.cat([b.lo, b.hi])[None])
    assert torch.allclose(fast, torch.cat([out.lo, out.hi], -1), atol=1e-9)


def test_affine_is_exact_for_one_box():
    w = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    b = Box(torch.tensor([0.0, 0.0], dtype=torch.float64), torch.tensor([1.0, 1.0], dtype=torch.float64))
    out = b.affine(w, torch.tensor([0.5], dtype=torch.float64))
    assert out.lo.tolist() == [-1.5] and out.hi.tolist() == [1.5]


def test_bad_boxes_raise_errors_naming_the_item():
    with pytest.raises(BoxError, match=r"empty or inverted: lo > hi at index \(1,\) \(lo=3, hi=2\)"):
        Box(torch.tensor([0.0, 3.0]), torch.tensor([1.0, 2.0]), name="input box")
    with pytest.raises(BoxError, match=r"NaN in hi at index \(0,\)"):
        Box(torch.tensor([0.0]), torch.tensor([float("nan")]))
    with pytest.raises(BoxError, match="do not broadcast"):
        Box(torch.zeros(2), torch.ones(3))
    with pytest.raises(BoxError, match="pieces per dimension must be >= 1"):
        Box(torch.zeros(2), torch.ones(2)).split(0)
    with pytest.raises(TypeError, match="no interval semantics for layer Dropout"):
        propagate(nn.Sequential(nn.Dropout()), Box(torch.zeros(2), torch.ones(2)))
    with pytest.raises(ValueError, match="every scale must be > 0"):
        Normalize([0.0], [0.0])


def test_make_mlp_shapes():
    net = make_mlp(2, 3, out_act=None, center=[5.0, 10.0], scale=[5.0, 10.0])
    assert net(torch.zeros(4, 2)).shape == (4, 3)
    with pytest.raises(ValueError, match="out_act"):
        make_mlp(1, 1, out_act="softmax")
