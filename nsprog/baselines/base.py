"""What every trajectory baseline shares: settings, the TVAE body (nsprog's
:class:`~nsprog.models.tvae.TrajectoryEncoder` and :class:`~nsprog.models.tvae.ActionDecoder`),
data preparation (states standardised on the training windows, optionally the DSL's features
appended to the encoder's input), the fit on :func:`nsprog.training.run_epochs`, and the
estimator API: ``fit`` / ``predict`` (cluster ids) / ``transform`` (latent means).

A subclass says how its latent is built and scored: ``_build`` (the torch module),
``_loss`` (one batch's loss and terms), ``_means`` (latent means for ``transform``) and,
for models with a discrete latent, ``_codes`` (its cluster ids). Continuous-latent models are
clustered with scikit-learn's K-means, fitted on the training windows' posterior means with
``n_clusters`` clusters (:func:`kmeans_on_means`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
import torch
from torch import nn

from nsprog.base import Estimator
from nsprog.config import from_dict
from nsprog.data.normalize import Normalizer
from nsprog.data.trajectories import Trajectories
from nsprog.gru_kernel import native_kernels
from nsprog.models.latent import gaussian_nll
from nsprog.models.tvae import ActionDecoder, TrajectoryEncoder
from nsprog.optim import make_adam
from nsprog.seeds import SeedStreams
from nsprog.settings import Settings, param
from nsprog.training import run_epochs
from nsprog.utils import limit_threads, resolve_device

__all__ = ["TVAESettings", "BaselineVAE", "TrajectoryBaseline", "FitState", "fit_kmeans", "kmeans_on_means",
           "gaussian_sample"]

_INFER_BATCH = 4096


@dataclass
class TVAESettings(Settings):
    """Network and training settings shared by every trajectory baseline (the paper's
    Table 6 fields; the defaults are its synthetic column)."""

    z_dim: int = param(4, ge=1)  # latent size (continuous part; the code size for VQ-TVAE)
    h_dim: int = param(16, ge=1)
    rnn_dim: int = param(16, ge=1)
    decoder: Literal["gru", "mlp", "linear"] = "linear"
    lr: float = param(2e-4, gt=0)
    batch_size: int = param(32, ge=1)
    epochs: int = param(50, ge=1)
    logvar_clamp: float = param(16.0, gt=0)
    grad_clip: float | None = param(None, gt=0)  # gradient-norm clip (None: no clipping)


class BaselineVAE(nn.Module):
    """Encoder over the (possibly feature-augmented) input, decoder of the actions given the
    states and a latent of ``dec_dim`` units; subclasses' extra parts are added by ``_build``."""

    def __init__(self, state_dim: int, in_dim: int, enc_dim: int, dec_dim: int, s: TVAESettings):
        super().__init__()
        self.encoder = TrajectoryEncoder(in_dim, enc_dim, s.rnn_dim, s.h_dim, s.logvar_clamp)
        self.decoder = ActionDecoder(state_dim, dec_dim, s.decoder, s.rnn_dim, s.h_dim, s.logvar_clamp)

    def reconstruction(self, states: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of the actions given ``z`` (sum over time and dims, batch mean)."""
        actions, mu, logvar = self.decoder(states, z)
        return gaussian_nll(actions, mu, logvar)


@dataclass
class FitState:
    """What a loss needs besides the batch: the settings, the optimiser step (for capacity
    schedules), the noise generator and model-specific state."""

    settings: Any
    noise: torch.Generator
    n_clusters: int
    streams: SeedStreams
    step: int = 0
    cache: dict = field(default_factory=dict)  # model-specific state between steps (K-means indicator)


def gaussian_sample(mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Generator) -> torch.Tensor:
    eps = torch.randn(mu.shape, generator=noise, device=mu.device, dtype=mu.dtype)
    return mu + eps * torch.exp(0.5 * logvar)


def fit_kmeans(z_train: np.ndarray, n_clusters: int, seed: int = 0):
    """scikit-learn K-means (10 restarts, seeded) fitted on the training windows' latent means."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=int(n_clusters), n_init=10, random_state=int(seed) % 2**31).fit(
        np.asarray(z_train, dtype=np.float64))


def kmeans_on_means(z_train: np.ndarray, z_eval: np.ndarray, n_clusters: int, seed: int = 0) -> np.ndarray:
    """Cluster ids of ``z_eval`` from K-means fitted on ``z_train`` (:func:`fit_kmeans`), as the
    paper clusters the continuous-latent baselines."""
    return fit_kmeans(z_train, n_clusters, seed).predict(np.asarray(z_eval, dtype=np.float64)).astype(np.int64)


def _batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return torch.cat([fn(x[i : i + _INFER_BATCH]) for i in range(0, x.shape[0], _INFER_BATCH)], dim=0)


class TrajectoryBaseline(Estimator):
    """Base class of the TVAE baselines (see the module docstring).

    Parameters
    ----------
    settings : settings dataclass or dict, optional
        The model's settings (a dict sets some keys and keeps the defaults of the rest).
    n_clusters : int, default=4
        Clusters of ``predict``: K-means clusters for continuous latents, codes or categories
        for discrete ones (set it to the clusters of the programmatic model compared with).
    feature_dsl : str or None, default=None
        A DSL whose features are appended to the encoder's input (the paper's "w/ features"
        variants, Table 3); None: trajectories only.
    seed : int, default=0
    device : str, default="cpu"
    threads : int or None, default=1
        Torch and BLAS threads while fitting and predicting (restored afterwards).
    progress : bool, default=True
    accelerate : bool, default=True
        Native GRU kernels where available (same numbers as ``torch.nn.GRU``).

    Attributes (after ``fit``)
    --------------------------
    model_, normalizer_, pipeline_ (None without features), settings_
    kmeans_ : K-means fitted on the training means (None for discrete latents)
    history_ : the mean loss and terms of every epoch
    n_steps_, fit_seconds_
    """

    settings_class: type[TVAESettings] = TVAESettings
    discrete: bool = False  # True: predict returns the model's own codes, not K-means clusters
    _fitted_attributes = ("model_", "normalizer_", "settings_", "history_", "kmeans_")

    def __init__(self, settings: TVAESettings | dict | None = None, n_clusters: int = 4, feature_dsl: str | None = None,
                 seed: int = 0, device: str = "cpu", threads: int | None = 1, progress: bool = True,
                 accelerate: bool = True):
        self.settings = settings
        self.n_clusters = n_clusters
        self.feature_dsl = feature_dsl
        self.seed = seed
        self.device = device
        self.threads = threads
        self.progress = progress
        self.accelerate = accelerate

    # ------------------------------------------------------------------ hooks for subclasses
    def _build(self, state_dim: int, in_dim: int, s) -> nn.Module:
        return BaselineVAE(state_dim, in_dim, s.z_dim, s.z_dim, s)

    def _loss(self, model: nn.Module, batch: dict[str, torch.Tensor], st: FitState) -> tuple[torch.Tensor, dict]:
        """The training loss and its logged terms (every baseline defines its own)."""
        raise NotImplementedError(f"{type(self).__name__} must define _loss (abstract hook of TrajectoryBaseline)")

    def _means(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return model.encoder(x)[0]

    def _codes(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Cluster ids from the model's own discrete latent (only models with ``discrete = True``)."""
        raise NotImplementedError(f"{type(self).__name__} sets discrete = True but defines no _codes")

    def _before_training(self, model: nn.Module, tensors: dict[str, torch.Tensor], st: FitState) -> None:
        """Initialise data-dependent state (VQ codebook, K-means indicator) before the first step."""

    def _epoch_end(self, model: nn.Module, tensors: dict[str, torch.Tensor], st: FitState, epoch: int) -> None:
        """State refreshed once an epoch (the K-means indicator)."""

    # ------------------------------------------------------------------ configuration
    def resolved_settings(self):
        """The validated settings object these parameters describe."""
        s = self.settings
        if s is None:
            return self.settings_class()
        if isinstance(s, dict):
            return from_dict(self.settings_class, s, source=f"{type(self).__name__}(settings=...)")
        if not isinstance(s, self.settings_class):
            raise TypeError(f"{type(self).__name__}: settings must be a {self.settings_class.__name__} or a dict; "
                            f"got {type(s).__name__}")
        return s

    def _check_params(self) -> None:
        k = self.n_clusters
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
            raise ValueError(f"{type(self).__name__}: n_clusters must be an integer >= 2; got {k!r}")

    # ------------------------------------------------------------------ data
    def _feature_pipeline(self, train: Trajectories):
        if self.feature_dsl is None:
            return None
        from nsprog.dsl.definition import load_dsl
        from nsprog.features.pipeline import FeaturePipeline

        return FeaturePipeline.for_dsl(load_dsl(self.feature_dsl)).fit(train)

    @staticmethod
    def _inputs(traj: Trajectories, normalizer: Normalizer, pipeline, device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(states, encoder input)``: standardised states ``[N, T+1, D]`` and the same with
        the standardised features appended ``[N, T+1, D + F]`` (the states again without)."""
        states = torch.from_numpy(normalizer.transform(traj).states).to(device)
        if pipeline is None:
            return states, states
        feats = pipeline.transform(traj).to(device=device, dtype=states.dtype)
        return states, torch.cat([states, feats], dim=-1)

    @staticmethod
    def _check_windows(traj: Trajectories, what: str) -> None:
        if not isinstance(traj, Trajectories):
            raise TypeError(f"{what} expects nsprog Trajectories windows (nsprog.data.Trajectories); "
                            f"got {type(traj).__name__}")

    # ------------------------------------------------------------------ fitting
    def fit(self, train: Trajectories, y=None) -> "TrajectoryBaseline":
        """Train on the windows ``train`` (unsupervised: ``y`` is ignored, as in scikit-learn's
        clusterers). A fit that fails leaves the estimator unfitted."""
        self._clear_fitted()
        self._check_windows(train, f"{type(self).__name__}.fit")
        self._check_params()
        s = self.resolved_settings()
        with limit_threads(self.threads), native_kernels(self.accelerate):
            fitted = self._fit(train, s)
        self._set_fitted(**fitted)
        return self

    def _fit(self, train: Trajectories, s) -> dict:
        t0 = time.perf_counter()
        device = resolve_device(self.device)
        streams = SeedStreams(self.seed)
        normalizer = Normalizer.fit(train)
        pipeline = self._feature_pipeline(train)
        states, enc_in = self._inputs(train, normalizer, pipeline, device)
        with streams.torch_rng("model"):
            model = self._build(train.state_dim, enc_in.shape[-1], s).to(device)
        st = FitState(s, streams.generator("noise", device=device), int(self.n_clusters), streams)
        tensors = {"states": states, "inputs": enc_in, "index": torch.arange(len(train), device=device)}
        history: list[dict] = []
        model.train()
        self._before_training(model, tensors, st)

        def loss_fn(batch):
            loss, terms = self._loss(model, batch, st)
            st.step += 1
            return loss, terms

        def epoch_end(epoch: int, means: dict) -> None:
            self._epoch_end(model, tensors, st, epoch)
            history.append({"epoch": epoch + 1, **means})

        optimizer = make_adam(model.parameters(), s.lr)
        run_epochs(tensors, loss_fn, optimizer, s.epochs, s.batch_size, streams.generator("batches"),
                   type(self).__name__, self.progress, s.grad_clip, on_epoch_end=epoch_end)
        model.eval()
        kmeans = None if self.discrete else fit_kmeans(self._means_of(model, enc_in), self.n_clusters, self.seed)
        return dict(model_=model, normalizer_=normalizer, pipeline_=pipeline, settings_=s, history_=history,
                    kmeans_=kmeans, n_steps_=st.step, fit_seconds_=time.perf_counter() - t0)

    # ------------------------------------------------------------------ inference
    def _device(self) -> torch.device:
        return next(self.model_.parameters()).device

    def _means_of(self, model: nn.Module, enc_in: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return _batched(lambda x: self._means(model, x), enc_in).cpu().numpy()

    def _encoder_input(self, traj: Trajectories) -> torch.Tensor:
        self._check_fitted()
        self._check_windows(traj, type(self).__name__)
        if traj.state_dim != len(self.normalizer_.mean):
            raise ValueError(f"windows have {traj.state_dim} state dims; this {type(self).__name__} was fitted on "
                             f"{len(self.normalizer_.mean)}")
        return self._inputs(traj, self.normalizer_, self.pipeline_, self._device())[1]

    def transform(self, traj: Trajectories) -> np.ndarray:
        """Latent means ``[N, d]`` (posterior means; the encoder output for VQ-TVAE)."""
        with limit_threads(self.threads), native_kernels(self.accelerate):
            x = self._encoder_input(traj)
            return self._means_of(self.model_, x)

    def predict(self, traj: Trajectories) -> np.ndarray:
        """Cluster id per window: the model's code (discrete latents) or K-means of the latent means."""
        with limit_threads(self.threads), native_kernels(self.accelerate):
            x = self._encoder_input(traj)
            if self.discrete:
                with torch.no_grad():
                    return _batched(lambda b: self._codes(self.model_, b), x).cpu().numpy().astype(np.int64)
            z = self._means_of(self.model_, x)
        return self.kmeans_.predict(np.asarray(z, dtype=np.float64)).astype(np.int64)
