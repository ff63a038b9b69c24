"""The estimator contract, run over every estimator in the project (one table, no exceptions):
``clone`` works, ``fit`` returns ``self``, an unfitted estimator raises ``NotFittedError``,
``fit`` leaves the constructor parameters as they were, fitting twice gives the same model,
and a fit that fails leaves nothing that looks fitted."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
import torch
from sklearn.base import clone

from nsprog.base import NotFittedError, is_fitted
from nsprog.data import synthetic_dataset


@pytest.fixture(scope="module")
def tiny():
    return synthetic_dataset(160, 80, 80, seed=11)


@dataclass
class Case:
    """How to build, fit, query and break one estimator."""

    make: Callable[[], Any]
    fit: Callable[[Any, dict], Any]
    query: Callable[[Any, dict], np.ndarray]  # something that needs a fitted estimator
    bad_fit: Callable[[Any, dict], Any]  # a fit that must fail


def _encoder_case() -> Case:
    from nsprog.encoder import NeurosymbolicEncoder

    def make():
        return NeurosymbolicEncoder(n_programs=1, vae={"epochs": 1, "capacity_iters": 20},
                                    search={"neural_epochs": 1, "symbolic_epochs": 1, "patience": 1},
                                    learner={"min_distill_f1": 0.0}, seed=4, progress=False)

    return Case(
        make=make,
        fit=lambda est, d: est.fit(d["train"], d["val"]),
        query=lambda est, d: np.column_stack([est.predict(d["test"]), est.transform(d["test"])]),
        bad_fit=lambda est, d: est.set_params(vae={"epochs": 1, "lr": 1e12}).fit(d["train"], d["val"]),
    )


def _search_case() -> Case:
    from nsprog.dsl import load_dsl
    from nsprog.features.pipeline import FeaturePipeline
    from nsprog.search import ProgramSearch

    def feats(d):
        pipe = FeaturePipeline.for_dsl(load_dsl("synthetic")).fit(d["train"])
        return {k: pipe.transform(d[k]) for k in ("train", "val", "test")}

    def fit(est, d):
        x = feats(d)
        return est.fit(x["train"], d["train"].factors["c_x"], x["val"], d["val"].factors["c_x"])

    return Case(
        make=lambda: ProgramSearch("synthetic", {"strategy": "greedy", "neural_epochs": 1, "symbolic_epochs": 2},
                                   seed=2),
        fit=fit,
        query=lambda est, d: est.decision_function(feats(d)["test"]),
        bad_fit=lambda est, d: est.fit(torch.zeros(5, 25, 3), np.zeros(5), torch.zeros(5, 25, 3), np.zeros(5)),
    )


def _pipeline_case() -> Case:
    from nsprog.data import Trajectories
    from nsprog.features.pipeline import FeaturePipeline

    return Case(
        make=lambda: FeaturePipeline("synthetic", ("final_x", "speed")),
        fit=lambda est, d: est.fit(d["train"]),
        query=lambda est, d: est.transform(d["test"]).numpy(),
        bad_fit=lambda est, d: est.fit(Trajectories(states=np.zeros((4, 25, 3), np.float32))),
    )


def _treba_case() -> Case:
    from trebalink.estimator import TrebaEncoder

    def make():
        return TrebaEncoder(tasks="expert:synthetic",
                            model={"z_dim": 4, "rnn_dim": 8, "h_dim": 8, "approximator_rnn_dim": 4,
                                   "approximator_h_dim": 8},
                            train={"batch_size": 32, "lr": 1e-3, "stage1_epochs": 1, "stage2_epochs": 1},
                            seed=3, progress=False)

    return Case(
        make=make,
        fit=lambda est, d: est.fit(d["train"], d["val"]),
        query=lambda est, d: est.transform(d["test"]),
        bad_fit=lambda est, d: est.set_params(tasks="expert:mouse").fit(d["train"], d["val"]),  # no keypoints here
    )


def _baseline_case(name: str) -> Callable[[], Case]:
    def build() -> Case:
        from nsprog.baselines import BASELINES

        cls = BASELINES[name]
        if name == "random":
            return Case(
                make=lambda: cls(n_clusters=3, seed=2),
                fit=lambda est, d: est.fit(d["train"]),
                query=lambda est, d: np.column_stack([est.predict(d["test"]), est.transform(d["test"])]),
                bad_fit=lambda est, d: est.set_params(n_clusters=0).fit(d["train"]),
            )
        return Case(
            make=lambda: cls(settings={"epochs": 1, "lr": 1e-3}, n_clusters=3, seed=2, progress=False),
            fit=lambda est, d: est.fit(d["train"]),
            query=lambda est, d: np.column_stack([est.predict(d["test"]), est.transform(d["test"])]),
            bad_fit=lambda est, d: est.set_params(settings={"epochs": 1, "lr": 1e12}).fit(d["train"]),
        )

    return build


def _behaviour_case(kind: str) -> Callable[[], Case]:
    """The per-behaviour classifiers of ``trebalink classify``: final states -> one-vs-rest classes."""

    def build() -> Case:
        from trebalink.efficiency.classifiers import BehaviourMLP, LinearProbe

        def xy(t):
            x = np.asarray(t.states, np.float32)[:, -1]
            y = np.stack([np.asarray(t.labels) == k for k in range(4)], axis=1).astype(np.int8)
            return x, y

        if kind == "mlp":
            make = lambda: BehaviourMLP(hidden=(8,), max_epochs=3, patience=2, batch_size=32, seed=1)  # noqa: E731
        else:
            make = lambda: LinearProbe(C=0.5, seed=1)  # noqa: E731

        def fit(est, d):
            x, y = xy(d["train"])
            xv, yv = xy(d["val"])
            return est.fit(x, y, xv, yv)

        def bad_fit(est, d):
            x, y = xy(d["train"])
            return est.fit(x, np.zeros_like(y))  # no positive of any behaviour

        return Case(make=make, fit=fit, query=lambda est, d: est.predict_proba(xy(d["test"])[0]), bad_fit=bad_fit)

    return build


#: every estimator of the project; new estimators (baselines, trebalink's) are added here
CASES = {"NeurosymbolicEncoder": _encoder_case, "ProgramSearch": _search_case, "FeaturePipeline": _pipeline_case,
         "TrebaEncoder": _treba_case,
         "TVAE": _baseline_case("tvae"), "KMeansTVAE": _baseline_case("tvae_kmeans"),
         "JointVAE": _baseline_case("jointvae"), "VQTVAE": _baseline_case("vq_tvae"),
         "BetaTVAE": _baseline_case("beta_tvae"), "RandomAssignment": _baseline_case("random"),
         "BehaviourMLP": _behaviour_case("mlp"), "LinearProbe": _behaviour_case("logreg")}


def _same_params(a: dict, b: dict) -> bool:
    from nsprog.config import to_dict

    return {k: to_dict(v) for k, v in a.items()} == {k: to_dict(v) for k, v in b.items()}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request) -> Case:
    return CASES[request.param]()


def test_clone_gives_an_unfitted_copy_with_equal_parameters(case, tiny):
    est = case.make()
    case.fit(est, tiny)
    twin = clone(est)
    assert type(twin) is type(est) and _same_params(twin.get_params(), est.get_params())
    assert not is_fitted(twin)


def test_unfitted_estimators_raise_not_fitted_error(case, tiny):
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        case.query(case.make(), tiny)


def test_fit_returns_self_and_leaves_the_parameters_alone(case, tiny):
    est = case.make()
    before = copy.deepcopy(est.get_params())
    assert case.fit(est, tiny) is est
    assert _same_params(est.get_params(), before)
    assert is_fitted(est)


def test_fitting_twice_gives_the_same_model(case, tiny):
    est = case.make()
    first = case.query(case.fit(est, tiny), tiny)
    second = case.query(case.fit(est, tiny), tiny)
    np.testing.assert_allclose(first, second, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(case.query(case.fit(case.make(), tiny), tiny), first, rtol=1e-6, atol=1e-6)


def test_a_failed_fit_leaves_nothing_that_looks_fitted(case, tiny):
    est = case.fit(case.make(), tiny)
    with pytest.raises(Exception):  # noqa: B017 - each estimator fails in its own way
        case.bad_fit(est, tiny)
    assert not is_fitted(est)
    with pytest.raises(NotFittedError):
        case.query(est, tiny)


def test_an_encoder_stopped_by_a_non_finite_loss_is_not_fitted(tiny):
    from nsprog.encoder import NeurosymbolicEncoder, TrainingError

    est = NeurosymbolicEncoder(n_programs=1, vae={"epochs": 2, "lr": 1e12}, learner={"min_distill_f1": 0.0},
                               progress=False)
    with pytest.raises(TrainingError, match=r"non-finite loss in program 1, round 1, epoch \d+, batch \d+: term\(s\)"):
        est.fit(tiny["train"], tiny["val"])
    for call in (est.predict, est.transform, est.program_proba, est.predict_proba):
        with pytest.raises(NotFittedError):
            call(tiny["test"])
    with pytest.raises(NotFittedError):
        est.program_set()
