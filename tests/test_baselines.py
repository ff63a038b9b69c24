"""The neural baselines: each trains on tiny data and its loss falls; the K-means loss, the VQ
assignment and the capacity terms equal hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nsprog.baselines import (
    BASELINES, BetaTVAESettings, JointVAESettings, RandomAssignment, beta_capacity_term, categorical_kl,
    cluster_indicator, jointvae_capacity_terms, kmeans_loss, nearest_code, vq_losses,
)
from nsprog.config import ConfigError
from nsprog.data import synthetic_dataset

NEURAL = ["tvae", "tvae_kmeans", "jointvae", "vq_tvae", "beta_tvae"]


@pytest.fixture(scope="module")
def tiny():
    return synthetic_dataset(192, 32, 96, seed=5)


def _fast(name: str) -> dict:
    s = {"epochs": 6, "lr": 3e-3, "batch_size": 32}
    if name in ("jointvae", "beta_tvae"):
        s["capacity_iters"] = 0  # capacities at their final values from the start: a fixed objective
    return s


@pytest.mark.parametrize("name", NEURAL)
def test_each_baseline_trains_and_its_loss_decreases(name, tiny):
    est = BASELINES[name](settings=_fast(name), n_clusters=4, seed=3, progress=False).fit(tiny["train"])
    losses = [h["loss"] for h in est.history_]
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 1.0, losses
    ids = est.predict(tiny["test"])
    assert ids.shape == (len(tiny["test"]),) and ids.min() >= 0 and ids.max() < 4
    assert est.transform(tiny["test"]).shape[0] == len(tiny["test"])


def test_kmeans_loss_equals_a_hand_computed_value():
    # Z (N = 3 windows, d = 2): Gram matrix Z Z^T = [[1, 0, 3], [0, 4, 0], [3, 0, 9]], trace 14
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    a_first = torch.tensor([[1.0], [0.0], [0.0]])  # indicator of the first window only: 14 - 1
    assert float(kmeans_loss(z, a_first)) == pytest.approx(13.0)
    # the best 1-column indicator is the top eigenvector (1, 0, 3) / sqrt(10) of the Gram matrix
    # (eigenvalue 10), leaving 14 - 10 = 4
    a = cluster_indicator(z, 1)
    assert torch.allclose(a.abs().flatten(), torch.tensor([1.0, 0.0, 3.0]) / math.sqrt(10), atol=1e-6)
    assert float(kmeans_loss(z, a)) == pytest.approx(4.0, abs=1e-5)
    # the per-window form the baseline trains with equals the trace form at a refresh
    c = z.T @ a
    assert float((z - a @ c.T).pow(2).sum()) == pytest.approx(4.0, abs=1e-5)
    # and so does its gradient in Z
    zg = z.clone().requires_grad_(True)
    kmeans_loss(zg, a).backward()
    np.testing.assert_allclose(zg.grad.numpy(), (2 * (z - a @ c.T)).numpy(), atol=1e-5)


def test_vq_assignment_is_the_nearest_code_and_passes_gradients_straight_through():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(50, 3, generator=g)
    book = torch.randn(5, 3, generator=g)
    brute = torch.cdist(z, book).argmin(-1)
    assert torch.equal(nearest_code(z, book), brute)
    ze = z.clone().requires_grad_(True)
    zq, codes, cb, commit = vq_losses(ze, book, commitment=0.25)
    assert torch.equal(codes, brute)
    assert torch.allclose(zq, book[brute])
    w = torch.randn(50, 3, generator=g)
    (zq * w).sum().backward()
    assert torch.allclose(ze.grad, w)  # straight-through: d z_q / d z_e = identity
    d2 = (z - book[brute]).pow(2).sum(-1).mean()
    assert float(cb.detach()) == pytest.approx(float(d2), rel=1e-6)
    assert float(commit.detach()) == pytest.approx(0.25 * float(d2), rel=1e-6)


def test_jointvae_capacity_terms_equal_hand_computed_values():
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2)  # KL_z = 0.5 * (1 + 1 - 1 - 0) = 0.5
    logits = torch.tensor([[0.0, math.log(3.0)]])  # q = (1/4, 3/4): KL_c = 1/4 ln(1/2) + 3/4 ln(3/2)
    kl_c = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert float(categorical_kl(logits)) == pytest.approx(kl_c, rel=1e-6)
    s = JointVAESettings(gamma=10.0, cont_capacity=4.0, disc_capacity=0.6, capacity_iters=100)
    cont, disc = jointvae_capacity_terms(mu, logvar, logits, step=50, s=s)  # C_z = 2, C_c = 0.3
    assert float(cont) == pytest.approx(10 * abs(0.5 - 2.0), rel=1e-6)
    assert float(disc) == pytest.approx(10 * abs(kl_c - 0.3), rel=1e-6)
    # the discrete capacity never exceeds ln K (2 categories: ln 2)
    s = JointVAESettings(gamma=10.0, cont_capacity=4.0, disc_capacity=5.0, capacity_iters=100)
    _, disc = jointvae_capacity_terms(mu, logvar, logits, step=100, s=s)
    assert float(disc) == pytest.approx(10 * abs(kl_c - math.log(2.0)), rel=1e-6)


def test_beta_tvae_capacity_term_equals_a_hand_computed_value():
    mu, logvar = torch.tensor([[2.0]]), torch.tensor([[math.log(2.0)]])  # KL = 0.5 * (4 + 2 - 1 - ln 2)
    kl = 0.5 * (5.0 - math.log(2.0))
    s = BetaTVAESettings(gamma=10.0, capacity=5.0, capacity_iters=1000)
    term, c = beta_capacity_term(mu, logvar, step=250, s=s)
    assert c == pytest.approx(1.25)
    assert float(term) == pytest.approx(10 * abs(kl - 1.25), rel=1e-6)
    term, c = beta_capacity_term(mu, logvar, step=5000, s=s)  # past the ramp: C stays at 5
    assert c == 5.0 and float(term) == pytest.approx(10 * abs(kl - 5.0), rel=1e-6)


def test_features_variant_appends_the_dsl_features_to_the_encoder_input(tiny):
    plain = BASELINES["tvae"](settings={"epochs": 1}, progress=False).fit(tiny["train"])
    feats = BASELINES["tvae"](settings={"epochs": 1}, feature_dsl="synthetic", progress=False).fit(tiny["train"])
    d = tiny["train"].state_dim
    assert plain.model_.encoder.rnn.f == 2 * d
    assert feats.model_.encoder.rnn.f == 2 * (d + 4)  # the synthetic DSL's 4 features, and their differences
    assert feats.model_.decoder.state_in.in_features == d  # the decoder still reconstructs the trajectories
    assert feats.pipeline_ is not None and plain.pipeline_ is None


def test_continuous_baselines_cluster_with_kmeans_and_discrete_ones_with_their_codes(tiny):
    est = BASELINES["vq_tvae"](settings={"epochs": 2}, n_clusters=3, progress=False).fit(tiny["train"])
    x = est._encoder_input(tiny["test"])
    with torch.no_grad():
        codes = nearest_code(est.model_.encoder(x)[0], est.model_.codebook).numpy()
    np.testing.assert_array_equal(est.predict(tiny["test"]), codes)
    tv = BASELINES["tvae"](settings={"epochs": 1}, n_clusters=3, progress=False).fit(tiny["train"])
    np.testing.assert_array_equal(tv.predict(tiny["test"]), tv.kmeans_.predict(tv.transform(tiny["test"]).astype(float)))


def test_random_assignment_is_seeded_and_uniform(tiny):
    a = RandomAssignment(n_clusters=4, seed=1).fit(tiny["train"])
    ids = a.predict(synthetic_dataset(4000, 10, 10, seed=1)["train"])
    assert np.array_equal(ids, a.predict(synthetic_dataset(4000, 10, 10, seed=1)["train"]))
    counts = np.bincount(ids, minlength=4)
    assert counts.min() > 900 and counts.max() < 1100
    assert not np.array_equal(ids, RandomAssignment(4, seed=2).fit(tiny["train"]).predict(
        synthetic_dataset(4000, 10, 10, seed=1)["train"]))


def test_bad_settings_name_the_key_and_the_estimator(tiny):
    with pytest.raises(ConfigError, match=r"capacty: unknown key \(did you mean 'capacity'\?\)"):
        BASELINES["beta_tvae"](settings={"capacty": 3}).fit(tiny["train"])
    with pytest.raises(ConfigError, match="decoder: expected one of 'gru', 'mlp', 'linear'; got 'rnn'"):
        BASELINES["tvae"](settings={"decoder": "rnn"}).fit(tiny["train"])
    with pytest.raises(ValueError, match="VQTVAE: n_clusters must be an integer >= 2; got 1"):
        BASELINES["vq_tvae"](n_clusters=1).fit(tiny["train"])
    with pytest.raises(TypeError, match="expects nsprog Trajectories"):
        BASELINES["jointvae"]().fit(np.zeros((4, 25, 2)))
