import numpy as np
import pytest

from nsprog.evaluation import ari, cluster_metrics, nmi, purity, rand_index


def test_purity_of_known_contingency_table():
    # clusters (rows of the textbook table): c0 = {x x x x x o}, c1 = {x o o o o d}, c2 = {x x d d d}
    # majority counts 5 + 4 + 3 = 12 of 17 (Manning et al., Introduction to IR, ch. 16)
    clusters = [0] * 6 + [1] * 6 + [2] * 5
    labels = list("xxxxxo") + list("xoooo") + ["d"] + list("xxddd")
    assert purity(labels, clusters) == pytest.approx(12 / 17)


def test_nmi_is_one_for_identical_partitions_up_to_relabelling():
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    clusters = np.array([5, 5, 9, 9, 1, 1, 1])
    assert nmi(labels, clusters) == pytest.approx(1.0)
    assert purity(labels, clusters) == 1.0
    assert ari(labels, clusters) == pytest.approx(1.0)


def test_rand_index_textbook_example():
    # same textbook table: TP=20, FP=20, FN=24, TN=72 of 136 pairs -> RI = 92/136
    clusters = [0] * 6 + [1] * 6 + [2] * 5
    labels = list("xxxxxo") + list("xoooo") + ["d"] + list("xxddd")
    assert rand_index(labels, clusters) == pytest.approx(92 / 136)


def test_rand_index_counts_pairs_by_hand():
    labels = [0, 0, 1, 1]
    clusters = [0, 1, 1, 1]
    # pairs: (0,1) same/diff FN; (0,2) diff/diff TN; (0,3) TN; (1,2) diff/same FP; (1,3) FP; (2,3) same/same TP
    assert rand_index(labels, clusters) == pytest.approx(3 / 6)


def test_cluster_metrics_reports_all_four_and_checks_lengths():
    m = cluster_metrics([0, 1, 0, 1], [1, 0, 1, 0])
    assert set(m) >= {"purity", "nmi", "ri", "ari"}
    assert m["purity"] == 1.0 and m["n_clusters"] == 2
    with pytest.raises(ValueError, match="labels has 3 entries but clusters has 2"):
        cluster_metrics([0, 1, 2], [0, 1])


def test_linear_readout_is_scale_free_and_chance_without_information():
    from nsprog.evaluation import linear_readout

    rng = np.random.default_rng(0)
    factor = rng.integers(0, 2, 600)
    z = np.c_[factor + 0.1 * rng.standard_normal(600), rng.standard_normal(600)]
    # the same latent at a scale of 0.001 is read out just as well (no underfitting from regularisation)
    assert linear_readout(z, factor) > 0.99
    assert linear_readout(1e-3 * z, factor) > 0.99
    assert abs(linear_readout(rng.standard_normal((600, 2)), factor) - 0.5) < 0.08


def test_knn_readout_finds_a_factor_stored_in_strands_that_a_linear_readout_misses():
    from nsprog.evaluation import knn_readout, linear_readout

    rng = np.random.default_rng(1)
    factor = rng.integers(0, 2, 800)
    s = rng.uniform(-1, 1, 800)
    # two thin strands along a curve, the factor's side flipping halfway: no linear information
    offset = 0.1 * (2 * factor - 1) * np.sign(s)
    z = 1e-2 * np.c_[s, s**2 + offset]
    assert abs(linear_readout(z, factor) - 0.5) < 0.08
    assert knn_readout(z, factor) > 0.9
    assert abs(knn_readout(rng.standard_normal((800, 2)), factor) - 0.5) < 0.08
