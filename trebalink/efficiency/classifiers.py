"""The behaviour classifiers of the data-efficiency protocol: one binary classifier per
behaviour (present / absent), on the features of each item.

* :class:`BehaviourMLP`: a small MLP per behaviour (linear, batch norm, ReLU, dropout per
  hidden layer; class-weighted cross-entropy for rare behaviours; early stopping on the
  validation items). The behaviours' networks are independent (own weights, loss, optimiser
  state and early stopping) but run as one stack of batched products, so B behaviours cost
  one training loop, not B.
* :class:`LinearProbe`: a class-weighted logistic regression per behaviour, the linear
  read-out to compare with.

Both standardise the features with the training items' mean and standard deviation, take
``Y [N, B]`` in {0, 1}, and return ``predict_proba(X) -> [N, B]``. Every random draw (weights,
batch order, dropout masks) comes from streams of ``seed``; the caller's random state is
left alone.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nsprog.base import Estimator
from nsprog.optim import make_adam
from nsprog.seeds import SeedStreams
from nsprog.training import run_epochs

__all__ = ["BehaviourMLP", "LinearProbe", "check_training_labels"]


def _as_features(X, what: str) -> np.ndarray:
    x = np.asarray(X, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{what}: features have shape {x.shape}; expected [items, features]")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: features contain NaN or inf")
    return x


def _as_labels(Y, n: int, what: str) -> np.ndarray:
    y = np.asarray(Y)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n:
        raise ValueError(f"{what}: labels have shape {y.shape}; expected [{n}, behaviours] (one row per item)")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{what}: labels must be 0 (absent) or 1 (present)")
    return y.astype(np.float32)


def _name(names: Sequence[str] | None, b: int) -> str:
    return f"behaviour {names[b]!r}" if names is not None and b < len(names) else f"behaviour {b}"


def check_training_labels(Y: np.ndarray, names: Sequence[str] | None = None) -> None:
    """Every behaviour needs positive and negative training items; the error names the first
    that has not (the data-efficiency cells report such behaviours as ``no positives``
    instead of calling the classifiers)."""
    for b in range(Y.shape[1]):
        pos = int(Y[:, b].sum())
        if pos == 0 or pos == Y.shape[0]:
            what = "positive" if pos == 0 else "negative"
            raise ValueError(f"{_name(names, b)} has no {what} training item among {Y.shape[0]}; a classifier "
                             "needs both classes")


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(0, dtype=np.float64).astype(np.float32)
    scale = x.std(0, dtype=np.float64).astype(np.float32)
    scale[~(scale > 1e-6)] = 1.0  # constant columns stay centred, not blown up
    return mean, scale


def _balanced(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-behaviour weights of positives and negatives, ``n / (2 n_class)`` (scikit-learn's
    "balanced"); 1 where a class is absent."""
    n = y.shape[0]
    pos = y.sum(0)
    neg = n - pos
    w_pos = np.where(pos > 0, n / (2.0 * np.maximum(pos, 1)), 1.0)
    w_neg = np.where(neg > 0, n / (2.0 * np.maximum(neg, 1)), 1.0)
    return w_pos.astype(np.float32), w_neg.astype(np.float32)


class _StackedNet(nn.Module):
    """``k`` independent MLPs ``in -> hidden... -> 1`` with batch norm and dropout after each
    hidden layer, as batched products. ``forward(x [N, in]) -> logits [N, k]``."""

    def __init__(self, n_in: int, hidden: Sequence[int], k: int, dropout: float):
        super().__init__()
        self.k, self.dropout = k, float(dropout)
        sizes = [n_in, *hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.bn_weights = nn.ParameterList()
        self.bn_biases = nn.ParameterList()
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            bound = 1.0 / math.sqrt(max(a, 1))
            self.weights.append(nn.Parameter(torch.empty(k, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(k, 1, b).uniform_(-bound, bound)))
            if i < len(hidden):
                self.bn_weights.append(nn.Parameter(torch.ones(k, b)))
                self.bn_biases.append(nn.Parameter(torch.zeros(k, b)))
                self.register_buffer(f"running_mean{i}", torch.zeros(k, b))
                self.register_buffer(f"running_var{i}", torch.ones(k, b))
        self.generator: torch.Generator | None = None  # dropout masks are drawn from it while training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        h = torch.einsum("ni,kio->kno", x, self.weights[0]) + self.biases[0]
        for i in range(len(self.bn_weights)):
            width = h.shape[-1]
            flat = h.permute(1, 0, 2).reshape(n, self.k * width)
            flat = F.batch_norm(flat, getattr(self, f"running_mean{i}").view(-1), getattr(self, f"running_var{i}").view(-1),
                                self.bn_weights[i].reshape(-1), self.bn_biases[i].reshape(-1), self.training, 0.1, 1e-5)
            h = torch.relu(flat.reshape(n, self.k, width).permute(1, 0, 2))
            if self.training and self.dropout > 0:
                keep = torch.rand(h.shape, generator=self.generator) >= self.dropout
                h = h * keep / (1.0 - self.dropout)
            h = torch.baddbmm(self.biases[i + 1], h, self.weights[i + 1])
        return h[..., 0].T


class BehaviourMLP(Estimator):
    """One small MLP per behaviour, trained together (see the module docstring).

    Parameters
    ----------
    hidden : sequence of int, default=(64, 32)
        Hidden layer widths (each: linear, batch norm, ReLU, dropout).
    dropout : float, default=0.3
    lr : float, default=1e-3
        Adam's learning rate.
    weight_decay : float, default=1e-4
    batch_size : int, default=256
    max_epochs : int, default=100
        At most this many validation rounds (an epoch, or several passes over a tiny sample
        so that each round takes at least ``min_steps`` optimiser steps).
    patience : int, default=10
        Stop a behaviour's network after this many rounds without a lower validation loss,
        and keep its best round; training ends when every network has stopped.
    min_steps : int, default=5
    class_weight : {"balanced", None}, default="balanced"
        Weight the positives and negatives of each behaviour by ``n / (2 n_class)``.
    seed : int, default=0
    names : sequence of str, optional
        Behaviour names (for error messages).
    """

    _fitted_attributes = ("net_", "mean_", "scale_", "best_round_", "rounds_", "n_behaviours_")

    def __init__(self, hidden: Sequence[int] = (64, 32), dropout: float = 0.3, lr: float = 1e-3,
                 weight_decay: float = 1e-4, batch_size: int = 256, max_epochs: int = 100, patience: int = 10,
                 min_steps: int = 5, class_weight: str | None = "balanced", seed: int = 0,
                 names: Sequence[str] | None = None):
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.min_steps = min_steps
        self.class_weight = class_weight
        self.seed = seed
        self.names = names

    def _check_params(self) -> None:
        problems = []
        if any(int(h) < 1 for h in self.hidden):
            problems.append(f"hidden: widths must be >= 1; got {list(self.hidden)}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout: expected 0 <= dropout < 1; got {self.dropout}")
        for key in ("lr", "batch_size", "max_epochs", "patience", "min_steps"):
            if not getattr(self, key) > 0:
                problems.append(f"{key}: expected > 0; got {getattr(self, key)}")
        if self.weight_decay < 0:
            problems.append(f"weight_decay: expected >= 0; got {self.weight_decay}")
        if self.class_weight not in ("balanced", None):
            problems.append(f"class_weight: expected 'balanced' or None; got {self.class_weight!r}")
        if problems:
            raise ValueError(f"{type(self).__name__}: " + "; ".join(problems))

    def fit(self, X, Y, X_val=None, Y_val=None) -> "BehaviourMLP":
        """Train on ``X [N, F]`` / ``Y [N, B]``; with ``X_val`` / ``Y_val`` each behaviour keeps
        the round of its lowest (class-balanced) validation loss."""
        self._clear_fitted()
        self._check_params()
        x = _as_features(X, "training items")
        y = _as_labels(Y, len(x), "training items")
        check_training_labels(y, self.names)
        has_val = X_val is not None
        if has_val:
            xv = _as_features(X_val, "validation items")
            yv = _as_labels(Y_val, len(xv), "validation items")
            if xv.shape[1] != x.shape[1] or yv.shape[1] != y.shape[1]:
                raise ValueError(f"validation items have {xv.shape[1]} features and {yv.shape[1]} behaviours; the "
                                 f"training items {x.shape[1]} and {y.shape[1]}")
        mean, scale = _standardise(x)
        k = y.shape[1]
        streams = SeedStreams(self.seed)
        with streams.torch_rng("mlp-init"):
            net = _StackedNet(x.shape[1], [int(h) for h in self.hidden], k, self.dropout)
        net.generator = streams.generator("mlp-dropout")
        w_pos, w_neg = _balanced(y) if self.class_weight == "balanced" else (np.ones(k, np.float32),) * 2
        xt = torch.from_numpy((x - mean) / scale)
        yt = torch.from_numpy(y)
        wt = torch.from_numpy(np.where(y > 0, w_pos, w_neg).astype(np.float32))
        bs = _batch_size(len(x), int(self.batch_size))
        passes = max(1, math.ceil(int(self.min_steps) / math.ceil(len(x) / bs)))
        if has_val:
            xvt = torch.from_numpy((xv - mean) / scale)
            vp, vn = _balanced(yv)
            wv = torch.from_numpy(np.where(yv > 0, vp, vn).astype(np.float32))
            yvt = torch.from_numpy(yv)
        opt = make_adam(net.parameters(), float(self.lr), weight_decay=float(self.weight_decay))
        order = streams.generator("mlp-batches")

        def loss_fn(b):
            bce = F.binary_cross_entropy_with_logits(net(b["x"]), b["y"], reduction="none")
            return (bce * b["w"]).mean(0).sum(), {}

        best = {k_: v.detach().clone() for k_, v in net.state_dict().items()}
        best_loss = torch.full((k,), float("inf"))
        best_round = np.zeros(k, dtype=np.int64)
        waited = np.zeros(k, dtype=np.int64)
        rounds = 0
        for r in range(int(self.max_epochs)):
            net.train()
            run_epochs({"x": xt, "y": yt, "w": wt}, loss_fn, opt, passes, bs, order, "behaviour classifiers",
                       progress=False)
            rounds = r + 1
            if not has_val:
                continue
            net.eval()
            with torch.no_grad():
                bce = F.binary_cross_entropy_with_logits(net(xvt), yvt, reduction="none")
                vloss = (bce * wv).mean(0)
            better = vloss < best_loss - 1e-7
            if better.any():
                idx = better.nonzero().ravel()
                for name, v in net.state_dict().items():
                    best[name][idx] = v.detach()[idx]
                best_loss = torch.where(better, vloss, best_loss)
                best_round[idx.numpy()] = r + 1
            waited = np.where(better.numpy(), 0, waited + 1)
            if (waited >= int(self.patience)).all():
                break
        if has_val:
            net.load_state_dict(best)
        else:
            best_round[:] = rounds
        net.generator = None
        net.eval()
        self._set_fitted(net_=net, mean_=mean, scale_=scale, best_round_=best_round, rounds_=rounds, n_behaviours_=k)
        return self

    def decision_function(self, X) -> np.ndarray:
        """Logits ``[N, B]``."""
        self._check_fitted()
        x = _as_features(X, "items")
        if x.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"items have {x.shape[1]} features; the classifiers were trained on {self.mean_.shape[0]}")
        xt = torch.from_numpy((x - self.mean_) / self.scale_)
        with torch.no_grad():
            out = [self.net_(xt[i : i + 65536]) for i in range(0, len(xt), 65536)]
        return torch.cat(out).numpy() if out else np.zeros((0, self.n_behaviours_), np.float32)

    def predict_proba(self, X) -> np.ndarray:
        """Probability that each behaviour is present, ``[N, B]``."""
        return 1.0 / (1.0 + np.exp(-self.decision_function(X).astype(np.float64)))

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X) > 0.5).astype(np.int64)


def _batch_size(n: int, batch_size: int) -> int:
    """``batch_size`` (at most ``n``), grown until no batch of one item is left over (batch
    norm needs two items per batch)."""
    bs = max(2, min(batch_size, n))
    while n % bs == 1:
        bs += 1
    return bs


class LinearProbe(Estimator):
    """A logistic regression per behaviour on standardised features.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 regularisation strength.
    class_weight : {"balanced", None}, default="balanced"
    max_iter : int, default=1000
    seed : int, default=0
    names : sequence of str, optional
        Behaviour names (for error messages).
    """

    _fitted_attributes = ("coef_", "intercept_", "mean_", "scale_")

    def __init__(self, C: float = 1.0, class_weight: str | None = "balanced", max_iter: int = 1000, seed: int = 0,
                 names: Sequence[str] | None = None):
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.seed = seed
        self.names = names

    def fit(self, X, Y, X_val=None, Y_val=None) -> "LinearProbe":
        """Fit on ``X [N, F]`` / ``Y [N, B]`` (the validation items are not used: the probe has
        nothing to stop early)."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        self._clear_fitted()
        if not self.C > 0:
            raise ValueError(f"LinearProbe: C must be > 0; got {self.C}")
        if self.class_weight not in ("balanced", None):
            raise ValueError(f"LinearProbe: class_weight must be 'balanced' or None; got {self.class_weight!r}")
        x = _as_features(X, "training items")
        y = _as_labels(Y, len(x), "training items")
        check_training_labels(y, self.names)
        mean, scale = _standardise(x)
        xs = (x - mean) / scale
        coef, intercept = [], []
        for b in range(y.shape[1]):
            lr = LogisticRegression(C=float(self.C), class_weight=self.class_weight, max_iter=int(self.max_iter),
                                    random_state=int(self.seed))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # the probe is a read-out, not a tuned model
                lr.fit(xs, y[:, b].astype(np.int64))
            coef.append(lr.coef_[0].astype(np.float64))
            intercept.append(float(lr.intercept_[0]))
        self._set_fitted(coef_=np.stack(coef), intercept_=np.asarray(intercept), mean_=mean, scale_=scale)
        return self

    def decision_function(self, X) -> np.ndarray:
        self._check_fitted()
        x = _as_features(X, "items")
        if x.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"items have {x.shape[1]} features; the probe was trained on {self.mean_.shape[0]}")
        return ((x - self.mean_) / self.scale_).astype(np.float64) @ self.coef_.T + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.decision_function(X)))

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X) > 0.5).astype(np.int64)
