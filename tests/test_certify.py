"""Certified program bounds: interval semantics of the encoder DSL are sound, and certified
windows survive brute-force perturbation."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nsprog.cli import main
from nsprog.data import save_dataset, synthetic_dataset
from nsprog.dsl import ITE, Add, Affine, Map, MapAverage, Multiply, RunningAverage, Sig, Type, load_dsl
from nsprog.dsl.semantics import evaluate_program
from nsprog.features.pipeline import FeaturePipeline
from nsprog.programs import ProgramSet
from nsprog.safety.box import Box
from nsprog.safety.certify import brute_force_check, certify, closest_certified, feature_box, interval_program
from trebalink.tasks import ABSTAIN

DSL_ = load_dsl("synthetic")
LA = Sig(Type("list", 4), Type("atom", 1))
LL = Sig(Type("list", 4), Type("list", 1))
AA = Sig(Type("atom", 4), Type("atom", 1))


def aff(lib, w, b):
    return Affine(AA, library=lib, features=DSL_.library[lib], params={"weight": [[w]], "bias": [b]})


def programs(ws):
    a, b, c = aff("FinalX", ws[0], ws[1]), aff("FinalY", ws[2], ws[3]), aff("AvgSpeed", ws[4], ws[5])
    return [
        MapAverage(LA, fn=a),
        MapAverage(LA, fn=Multiply(AA, a=a, b=b)),
        MapAverage(LA, fn=ITE(AA, cond=c, then=a, orelse=b, beta=2.0)),
        MapAverage(LA, fn=Add(AA, a=Multiply(AA, a=b, b=c), b=a)),
        Map(LL, fn=ITE(AA, cond=a, then=b, orelse=c)),
        RunningAverage(LL, fn=Multiply(AA, a=a, b=c), window=3),
    ]


@settings(max_examples=40, deadline=None)
@given(
    ws=st.lists(st.floats(-3, 3), min_size=6, max_size=6),
    radius=st.floats(0.0, 1.5),
    seed=st.integers(0, 10_000),
)
def test_interval_semantics_are_sound(ws, radius, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 6, 4, generator=gen)
    box = Box(x - radius, x + radius)
    for prog in programs(ws):
        out = interval_program(prog, DSL_, box)
        pts = box.sample(200, gen)  # [200, 3, 6, 4]
        vals = evaluate_program(prog, DSL_, pts.reshape(-1, 6, 4)).reshape(200, 3, *out.shape[1:])
        assert bool((vals >= out.lo - 1e-4).all() and (vals <= out.hi + 1e-4).all()), prog.key()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    d = synthetic_dataset(2000, 300, 500, seed=2)
    pipe = FeaturePipeline.for_dsl(DSL_)
    pipe.fit(d["train"])
    progs = {
        "x": MapAverage(LA, fn=Affine(AA, library="FinalX", features=("final_x",), params={"weight": [[2.0]], "bias": [0.1]})),
        "xy": MapAverage(LA, fn=ITE(AA, cond=aff("AvgSpeed", 1.0, 0.0), then=aff("FinalY", 1.5, 0.0),
                                    orelse=aff("FinalX", -1.0, 0.2), beta=1.0)),
    }
    return d, ProgramSet(DSL_, pipe, progs, {k: [0, 1] for k in progs})


def test_certified_windows_survive_10000_random_perturbations(fitted):
    d, pset = fitted
    res = certify(pset, d["test"], eps=0.3)
    frac = res.summary()["certified_fraction"]
    assert 0.5 < frac["x"] < 1.0  # windows near the threshold cannot be certified
    hard = closest_certified(res, 8)
    bf = brute_force_check(pset, d["test"], res, n_samples=10_000, windows=hard)
    assert bf["windows_checked"] == 8 and bf["flips"] == {"x": 0, "xy": 0}
    # a window that is NOT certified does flip under some perturbation (the bound is not vacuous)
    loose = np.flatnonzero(~res.certified[:, 0])[:20]
    assert len(loose)
    _, box = feature_box(pset, d["test"], 0.3)
    pts = torch.stack([box[int(w)].lo for w in loose] + [box[int(w)].hi for w in loose])
    bits = (pset.decision_function_features(pts)["x"] > 0).astype(int)
    assert (bits[: len(loose)] != bits[len(loose) :]).any()


def test_bigger_eps_certifies_fewer_windows_and_zero_eps_all(fitted):
    d, pset = fitted
    f = [certify(pset, d["test"], e).summary()["cluster_certified_fraction"] for e in (0.0, 0.1, 0.5, 2.0)]
    assert f[0] == 1.0 and f[0] >= f[1] >= f[2] >= f[3]
    with pytest.raises(KeyError, match="unknown feature"):
        certify(pset, d["test"], {"elbow": 1.0})


def test_certify_and_trebalink_label_commands(fitted, tmp_path, capsys):
    d, pset = fitted
    pset.save(tmp_path / "run" / "programs.json")
    data = save_dataset(tmp_path / "syn.h5", d)
    assert main(["certify", str(tmp_path / "run"), "--data", str(data), "--eps", "0.3", "--check", "500",
                 "--check-windows", "5"]) == 0
    text = capsys.readouterr().out
    assert "certified" in text and "flips {'x': 0, 'xy': 0}" in text
    from trebalink.cli import main as tl_main
    import h5py

    out = tmp_path / "labels.h5"
    assert tl_main(["label", str(tmp_path / "run"), "--data", str(data), "--out", str(out),
                    "--certify-eps", "0.3", "--quiet"]) == 0
    with h5py.File(out) as f:
        L, cert = f["labels"][()], f["certified"][()]
    assert ((L == ABSTAIN) == ~cert).all() and (~cert).any()
