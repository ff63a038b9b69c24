import json

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from nsprog.cli import main
from nsprog.data import synthetic_dataset
from nsprog.dsl import Add, Affine, MapAverage, Sig, Type, expand, load_dsl
from nsprog.dsl.semantics import evaluate_program
from nsprog.features.pipeline import FeaturePipeline
from nsprog.programs import ProgramSet
from nsprog.search import (
    CandidateEvaluator,
    NoProgramError,
    ProgramGraph,
    ProgramSearch,
    SearchSettings,
    Supervision,
    TrainSettings,
    make_executor,
    train_candidates,
)
from nsprog.search.training import weighted_f1
from nsprog.base import NotFittedError

DSL_ = load_dsl("synthetic")
LA = Sig(Type("list", 4), Type("atom", 1))
AA = Sig(Type("atom", 4), Type("atom", 1))


@pytest.fixture(scope="module")
def features():
    d = synthetic_dataset(1500, 500, 500, seed=11)
    pipe = FeaturePipeline.for_dsl(DSL_)
    return d, pipe.fit_transform(d["train"]), pipe.transform(d["val"]), pipe.transform(d["test"])


def test_weighted_f1_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    preds = np.stack([rng.integers(0, 3, 200), np.zeros(200, int), y, rng.integers(0, 2, 200)])
    ours = weighted_f1(torch.as_tensor(y), torch.as_tensor(preds), 3).numpy()
    ref = [f1_score(y, p, average="weighted", zero_division=0) for p in preds]
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_graph_children_costs_pruning_and_exclusion():
    g = ProgramGraph(DSL_, LA, max_depth=2, penalty=0.01)
    kids = g.children(g.root())
    assert [k.program.key() for k in kids] == ["MapAverage(??[atom(4) -> atom(1)])"]  # ITE pruned at depth 2
    assert kids[0].cost == pytest.approx(0.01)
    leaves = g.children(kids[0])
    assert sorted(k.program.key() for k in leaves) == sorted(
        f"MapAverage({lib}Affine)" for lib in ("FinalX", "FinalY", "AvgSpeed", "AvgAccel")
    )
    assert g.count_complete() == 4
    g2 = ProgramGraph(DSL_, LA, max_depth=2, exclude={"MapAverage(FinalXAffine)"})
    assert g2.count_complete() == 3
    assert ProgramGraph(DSL_, LA, max_depth=3).count_complete() > 4
    with pytest.raises(NoProgramError, match="needs depth >= 2 .* max_depth is 1"):
        ProgramGraph(DSL_, LA, max_depth=1)
    no_leaf = load_dsl({"name": "x", "features": ["a"], "productions": {"list->atom": ["MapAverage"], "atom->atom": ["Add"]}})
    with pytest.raises(NoProgramError, match="cannot produce any complete list->atom program"):
        ProgramGraph(no_leaf, Sig(Type("list", 1), Type("atom", 1)), max_depth=5)


def test_fused_sibling_training_equals_one_at_a_time(features):
    d, xtr, xva, _ = features
    sup = Supervision(xtr, torch.as_tensor(d["train"].factors["c_x"]), xva, torch.as_tensor(d["val"].factors["c_x"]), 2)
    progs = [MapAverage(LA, fn=expand(lib, AA, DSL_)) for lib in ("FinalX", "FinalY", "AvgSpeed")]
    progs.append(MapAverage(LA, fn=expand("Add", AA, DSL_)))  # a second shape with neural holes
    settings = TrainSettings(neural_epochs=3, symbolic_epochs=3, patience=2, lr=3e-3)
    fused = train_candidates(progs, sup, DSL_, settings, seed=4)
    alone = [train_candidates([p], sup, DSL_, settings, seed=4)[0] for p in progs]
    for a, b in zip(fused, alone):
        assert a.score == pytest.approx(b.score, abs=1e-6)
        assert a.epochs == b.epochs and a.best_epoch == b.best_epoch
        xa = evaluate_program(a.program, DSL_, xva[:50])
        xb = evaluate_program(b.program, DSL_, xva[:50])
        torch.testing.assert_close(xa, xb, atol=1e-4, rtol=1e-4)


def test_evaluator_caches_by_structure(features):
    d, xtr, xva, _ = features
    sup = Supervision(xtr, torch.as_tensor(d["train"].factors["c_y"]), xva, torch.as_tensor(d["val"].factors["c_y"]), 2)
    ev = CandidateEvaluator(sup, DSL_, TrainSettings(neural_epochs=1, symbolic_epochs=1))
    p = MapAverage(LA, fn=expand("FinalY", AA, DSL_))
    first = ev.evaluate([p, p])
    again = ev.evaluate([MapAverage(LA, fn=expand("FinalY", AA, DSL_))])
    assert ev.n_trained == 1 and again[0] is first[0]


@pytest.mark.parametrize("strategy", ["astar", "greedy", "ids_bb", "mc"])
def test_search_recovers_a_known_program(features, strategy):
    d, xtr, xva, xte = features
    truth = MapAverage(LA, fn=Affine(AA, library="AvgSpeed", features=("avg_speed",),
                                     params={"weight": [[1.0]], "bias": [-0.2]}))
    label = lambda x: (evaluate_program(truth, DSL_, x)[:, 0] > 0).long().numpy()  # noqa: E731
    settings = SearchSettings(strategy=strategy, neural_epochs=4, symbolic_epochs=6, lr=5e-3, mc_samples=4)
    est = ProgramSearch(DSL_, settings, seed=0).fit(xtr, label(xtr), xva, label(xva))
    assert est.program_ == truth  # same structure (parameters are learned)
    assert (est.predict(xte) == label(xte)).mean() > 0.97


@pytest.mark.parametrize("strategy", ["astar", "greedy", "ids_bb"])
def test_forced_moves_are_not_trained(features, strategy):
    """At depth 2 the root's only child is MapAverage(??): every strategy must enter it, so
    only its 4 complete children are trained."""
    d, xtr, xva, _ = features
    settings = SearchSettings(strategy=strategy, neural_epochs=1, symbolic_epochs=2)
    est = ProgramSearch(DSL_, settings, seed=0).fit(xtr, d["train"].factors["c_x"], xva, d["val"].factors["c_x"])
    trained = sorted(h["program"] for h in est.history_)
    assert trained == sorted(f"MapAverage({lib}Affine)" for lib in ("AvgAccel", "AvgSpeed", "FinalX", "FinalY"))
    assert est.n_candidates_ == 4


@pytest.mark.parametrize("min_batch", [1, 8])
def test_deeper_known_program_is_recovered(features, monkeypatch, min_batch):
    d, xtr, xva, xte = features
    sizes = []
    evaluate = CandidateEvaluator.evaluate
    monkeypatch.setattr(CandidateEvaluator, "evaluate", lambda self, progs: sizes.append(len(progs)) or evaluate(self, progs))
    a = Affine(AA, library="FinalX", features=("final_x",), params={"weight": [[1.0]], "bias": [0.0]})
    b = Affine(AA, library="FinalY", features=("final_y",), params={"weight": [[1.0]], "bias": [0.0]})
    truth = MapAverage(LA, fn=Add(AA, a=a, b=b))
    label = lambda x: (evaluate_program(truth, DSL_, x)[:, 0] > 0).long().numpy()  # noqa: E731
    settings = SearchSettings(strategy="astar", max_depth=3, neural_epochs=3, symbolic_epochs=6, lr=5e-3,
                              min_batch=min_batch)
    est = ProgramSearch(DSL_, settings, seed=0).fit(xtr, label(xtr), xva, label(xva))
    if min_batch > 1:  # batched A*: after the root's 2 children, each batch has >= min_batch candidates
        assert sizes[0] == 2 and all(n >= min_batch for n in sizes[1:]), sizes
    fn = est.program_.fn
    assert isinstance(est.program_, MapAverage) and isinstance(fn, Add)
    assert {fn.a.key(), fn.b.key()} == {"FinalXAffine", "FinalYAffine"}
    assert (est.predict(xte) == label(xte)).mean() > 0.95


def test_process_executor_gives_the_same_result(features):
    d, xtr, xva, _ = features
    sup = Supervision(xtr, torch.as_tensor(d["train"].factors["c_x"]), xva, torch.as_tensor(d["val"].factors["c_x"]), 2)
    progs = [MapAverage(LA, fn=expand(lib, AA, DSL_)) for lib in ("FinalX", "AvgAccel")]
    settings = TrainSettings(symbolic_epochs=2)
    inline = CandidateEvaluator(sup, DSL_, settings).evaluate(progs)
    ex = make_executor("process", 2)
    try:
        pooled = CandidateEvaluator(sup, DSL_, settings, executor=ex).evaluate(progs)
    finally:
        ex.shutdown()
    assert [r.score for r in inline] == pytest.approx([r.score for r in pooled], abs=1e-6)


def test_search_errors(features):
    d, xtr, xva, _ = features
    with pytest.raises(ValueError, match="features have 3 columns but DSL 'synthetic' expects 4"):
        ProgramSearch(DSL_).fit(xtr[..., :3], d["train"].labels, xva[..., :3], d["val"].labels)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        ProgramSearch(DSL_).predict(xtr)
    with pytest.raises(ValueError, match="strategy: expected one of 'greedy', 'astar', 'ids_bb', 'mc'; got 'beam'"):
        SearchSettings(strategy="beam")


def test_search_command_writes_programs_that_evaluate_on_raw_windows(tmp_path, capsys):
    out = tmp_path / "run"
    code = main([
        "search", "experiments/configs/synthetic_search.yaml", "--out", str(out), "--quiet",
        "--set", "data.n_train=1500", "--set", "data.n_val=400", "--set", "data.n_test=400",
        "--set", "labels=[c_x]", "--set", "search.lr=0.005",
    ])
    assert code == 0
    for name in ("programs.json", "programs.txt", "metrics.json", "config.yaml", "run.json", "log.txt"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())["labels"]["c_x"]
    assert metrics["structure"] == "MapAverage(FinalXAffine)"
    assert metrics["test_accuracy"] >= 0.95
    pset = ProgramSet.load(out)
    fresh = synthetic_dataset(100, 10, 300, seed=123)["test"]
    pred = pset.predict(fresh)["c_x"]
    assert (pred == fresh.factors["c_x"]).mean() > 0.9
    assert "final_x >" in (out / "programs.txt").read_text()
    assert main(["search", "experiments/configs/synthetic_search.yaml", "--out", str(out)]) == 1
    assert "is not empty" in capsys.readouterr().err
