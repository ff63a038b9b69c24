import math

import pytest
import torch

from nsprog.safety.box import Box
from nsprog.safety.ir import Program, V, assign, loop, record
from nsprog.safety.spec import Constraint, Spec, SpecError, unsafe_value


def _t(*v):
    return torch.tensor(v, dtype=torch.float64)


def test_unsafe_value_inside_disjoint_and_overlapping():
    l, r = _t(1.0, 5.0, -3.0, 0.0, 2.0), _t(2.0, 6.0, -2.0, 4.0, 2.0)
    v = unsafe_value(l, r, _t(0.0), _t(3.0))
    # inside; disjoint above (5 - 3 + 1); disjoint below (0 - (-2) + 1); 1 - 3/4 outside share; a point inside
    assert v.tolist() == pytest.approx([0.0, 3.0, 3.0, 0.25, 0.0])
    assert unsafe_value(_t(1.0), _t(2.0), _t(-math.inf), _t(math.inf)).item() == 0.0
    assert unsafe_value(_t(0.0), _t(2.0), _t(1.0), _t(math.inf)).item() == pytest.approx(0.5)


def test_spec_penalties_and_satisfaction():
    p = Program("p", ("x",), (record("x"), loop(2, [assign("x", V("x") + 1.0), record("x")])))
    spec = Spec(p, [Constraint("x", (0.0, 0.0, 0.0), (10.0, 10.0, 2.5))])
    rec = {"x": Box(_t(0.0, 1.0, 2.0)[None], _t(1.0, 2.0, 3.0)[None])}
    assert spec.path_penalty(rec).tolist() == pytest.approx([0.5])
    assert spec.join_penalty(rec).tolist() == pytest.approx([0.5])
    assert spec.satisfied(rec).tolist() == [False]
    assert spec.satisfied({"x": _t(0.0, 1.0, 2.0)[None]}).tolist() == [True]
    d = Spec(p, [Constraint("x", 0.5, math.inf, absolute=True)])
    assert d.satisfied({"x": _t(-1.0, 0.2, 1.0)[None]}).tolist() == [False]


def test_spec_errors_name_the_item():
    p = Program("p", ("x",), (record("x"),))
    with pytest.raises(SpecError, match="does not record that variable; it records: x"):
        Spec(p, [Constraint("y", 0.0, 1.0)])
    with pytest.raises(SpecError, match="has 2 per-step values but 'x' is recorded 1 times"):
        Spec(p, [Constraint("x", (0.0, 1.0), 1.0)])
    with pytest.raises(SpecError, match="empty safe interval at step 0"):
        Spec(p, [Constraint("x", 2.0, 1.0)])
    with pytest.raises(SpecError, match="NaN"):
        Spec(p, [Constraint("x", math.nan, 1.0)])


def test_tightened_spec_moves_finite_bounds_inward():
    p = Program("m", ("x",), (assign("d", V("x") * 1.0), record("x", "d")))
    spec = Spec(p, [Constraint("x", 0.0, 1.0), Constraint("d", 0.0, float("inf"), absolute=True),
                    Constraint("d", (2.0,), float("inf"), absolute=True, name="far")])
    t = spec.tightened(0.1)
    assert t.tightened(0.0) is t and spec.tightened(0.0) is spec
    (a0, b0), (a1, b1), (a2, b2) = [(t._bounds[i][0].tolist(), t._bounds[i][1].tolist()) for i in range(3)]
    assert a0 == pytest.approx([0.1]) and b0 == pytest.approx([0.9])
    assert a1 == [0.0] and b1 == [float("inf")]  # |d| >= 0 cannot bind: left alone
    assert a2 == pytest.approx([2.1]) and b2 == [float("inf")]
    box = Box(torch.tensor([[0.05]]), torch.tensor([[0.5]]))
    rec = {"x": box, "d": Box(torch.tensor([[3.0]]), torch.tensor([[3.0]]))}
    assert float(spec.join_penalty(rec)) == 0.0 and float(t.join_penalty(rec)) > 0.0  # inside, but not by 0.1
    with pytest.raises(SpecError, match="empties the safe interval of x"):
        spec.tightened(0.6)
    with pytest.raises(SpecError, match="margin must be >= 0"):
        spec.tightened(-1.0)
