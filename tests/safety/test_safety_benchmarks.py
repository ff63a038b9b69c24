"""Ground-truth programs produce data where expected, and the benchmark table is explicit."""

import pytest
import torch

from nsprog.safety.benchmarks import BENCHMARKS, get_benchmark
from nsprog.safety.data import data_loss, generate_data
from nsprog.safety.interpret import run_program


def _ground_truth(name, n=3000, seed=0):
    b = get_benchmark(name)
    gen = torch.Generator().manual_seed(seed)
    x = b.input_box.to(torch.float64).sample(n, generator=gen)
    return b, run_program(b.program, b.make_experts(gen), x, log_calls=True)


def test_unknown_benchmark_lists_valid_names():
    with pytest.raises(ValueError, match="unknown benchmark 'thermo'; valid benchmarks: thermostat, aircraft, "
                                         "racetrack, cartpole"):
        get_benchmark("thermo")
    assert list(BENCHMARKS) == ["thermostat", "aircraft", "racetrack", "cartpole"]


def test_thermostat_ground_truth_hugs_both_bounds_safely():
    b, tr = _ground_truth("thermostat")
    x = tr.records["x"]
    assert bool(b.spec.satisfied(tr.records, tol=1e-6).all())
    assert 55.0 <= float(x.min()) < 55.05 and 82.99 < float(x.max()) <= 83.0 + 1e-6
    cin, cout = tr.calls["cool"]
    assert torch.equal(cout[:, 0], (cin[:, 0] <= 60.95).double())  # switches on at or below 60.95
    hin, hout = tr.calls["heat"]
    assert bool((hout[hin[:, 0] > 76.0, 0] == 0).all()) and bool((hout[hin[:, 0] <= 76.0, 0] == 1).all())
    assert bool((hout[hin[:, 0] > 72.0, 1] < 1.0).all())  # heat scaled down near the top
    assert 0.2 < len(hin) / (len(hin) + len(cin)) < 0.5


def test_aircraft_ground_truth_turns_left_then_back_and_is_safe():
    b, tr = _ground_truth("aircraft")
    assert bool(b.spec.satisfied(tr.records).all())
    assert float(tr.records["d2"][:, 1:].min()) >= 40.0
    x1 = tr.records["x1"]
    assert torch.allclose(x1[:, 2], x1[:, 0] - 10.0) and torch.allclose(x1[:, -1], x1[:, 0])
    actions = tr.calls["policy"][1].argmax(-1)
    assert set(actions.tolist()) == {0, 1, 2, 3}


def test_racetrack_ground_truth_keeps_lanes_but_breaks_the_distance_rule():
    b, tr = _ground_truth("racetrack")
    lane1, lane2, dist = b.spec.unsafe_values(tr.records)
    assert float(lane1.max()) == 0.0 and float(lane2.max()) == 0.0
    assert float((dist.amax(-1) > 0).double().mean()) > 0.5  # data and safety conflict
    moves = tr.calls["agent1"][1].argmax(-1)
    assert set(moves.tolist()) == {0, 1, 2}


def test_cartpole_ground_truth_balances_within_the_track():
    b, tr = _ground_truth("cartpole")
    assert bool(b.spec.satisfied(tr.records).all())
    a = tr.calls["policy"][1]
    assert 0.3 < float(a.mean()) < 0.7


def test_generated_data_is_seeded_and_fits_the_modules():
    b = get_benchmark("thermostat")
    d1, d2 = generate_data(b, 5, seed=3), generate_data(b, 5, seed=3)
    assert torch.equal(d1.inputs["cool"], d2.inputs["cool"]) and d1.n_pairs == 5 * 20
    assert not torch.equal(generate_data(b, 5, seed=4).initial, d1.initial)
    loss = data_loss(b.make_modules(), d1, batch=16, generator=torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and float(loss.detach()) > 0
    with pytest.raises(ValueError, match="trajectories must be >= 1"):
        generate_data(b, 0, seed=0)
