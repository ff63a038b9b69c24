"""The synthetic dataset of the neurosymbolic-encoder paper (appendix C).

x_1 ~ N([10, 10], I); v ~ N(0, I) resampled until 0.05 < |v| < 0.4; c_x, c_y ~ Bernoulli(0.5);
v'_x = v_x + 0.4 (2 c_x - 1), v'_y = v_y + 0.4 (2 c_y - 1); x_{t+1} = x_t + v' + 0.2 eps_t.
The class is (c_x, c_y) -> label ``2 c_x + c_y`` (4 classes). As written, a velocity that
nearly cancels the force can end a trajectory on the wrong side of 10, so the classes are
not perfectly separable by final position. ``reject_ambiguous=True`` adds the public
reference implementation's extra step: such trajectories are resampled, so final x and y
separate the classes exactly.
"""

from __future__ import annotations

import numpy as np

from nsprog.data.trajectories import Trajectories

__all__ = ["generate_synthetic", "synthetic_dataset", "oracle_clusters", "LABEL_NAMES"]

LABEL_NAMES = ("x-,y-", "x-,y+", "x+,y-", "x+,y+")


def _sample(rng: np.random.Generator, n: int, length: int):
    x1 = rng.normal(10.0, 1.0, size=(n, 2))
    v = rng.normal(0.0, 1.0, size=(n, 2))
    speed = np.linalg.norm(v, axis=1)
    bad = ~((speed > 0.05) & (speed < 0.4))
    while bad.any():
        v[bad] = rng.normal(0.0, 1.0, size=(int(bad.sum()), 2))
        speed = np.linalg.norm(v, axis=1)
        bad = ~((speed > 0.05) & (speed < 0.4))
    c = rng.integers(0, 2, size=(n, 2))
    vp = v + 0.4 * (2 * c - 1)
    eps = rng.normal(0.0, 1.0, size=(n, length - 1, 2))
    steps = vp[:, None, :] + 0.2 * eps
    states = np.concatenate([x1[:, None, :], x1[:, None, :] + np.cumsum(steps, axis=1)], axis=1)
    return states, c


def generate_synthetic(
    n: int, length: int = 25, seed: int | np.random.Generator = 0, reject_ambiguous: bool = False
) -> Trajectories:
    """``n`` synthetic trajectories of ``length`` positions (x, y)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if length < 2:
        raise ValueError(f"length must be >= 2 positions, got {length}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    states, c = _sample(rng, n, length)
    resampled = 0
    if reject_ambiguous:
        wrong = ((states[:, -1, :] > 10.0) != (c == 1)).any(axis=1)
        while wrong.any():
            k = int(wrong.sum())
            resampled += k
            states[wrong], c[wrong] = _sample(rng, k, length)
            wrong = ((states[:, -1, :] > 10.0) != (c == 1)).any(axis=1)
    return Trajectories(
        states=states.astype(np.float32),
        labels=2 * c[:, 0] + c[:, 1],
        label_names=LABEL_NAMES,
        factors={"c_x": c[:, 0], "c_y": c[:, 1]},
        feature_names=("x", "y"),
        metadata={
            "domain": "synthetic",
            "generator": "appendix C" + (" + reference rejection of ambiguous endings" if reject_ambiguous else ""),
            "reject_ambiguous": bool(reject_ambiguous),
            "resampled": int(resampled),
        },
    )


def synthetic_dataset(
    n_train: int = 10_000,
    n_val: int = 2_000,
    n_test: int = 2_000,
    length: int = 25,
    seed: int = 0,
    reject_ambiguous: bool = False,
) -> dict[str, Trajectories]:
    """Independent train / val / test sets drawn from one seeded stream."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        t = generate_synthetic(n, length, rng, reject_ambiguous)
        out[name] = Trajectories(
            states=t.states,
            labels=t.labels,
            label_names=t.label_names,
            factors=t.factors,
            feature_names=t.feature_names,
            metadata=dict(t.metadata, seed=int(seed), split=name),
        )
    return out


def oracle_clusters(traj: Trajectories) -> np.ndarray:
    """Cluster id of the oracle programs: ``2 * 1[final x > 10] + 1[final y > 10]``."""
    final = traj.states[:, -1, :2]
    return 2 * (final[:, 0] > 10.0).astype(np.int64) + (final[:, 1] > 10.0).astype(np.int64)
