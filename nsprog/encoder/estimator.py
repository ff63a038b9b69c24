"""The neurosymbolic encoder behind a scikit-learn style estimator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from nsprog.base import Estimator
from nsprog.config import from_dict
from nsprog.data.trajectories import Trajectories
from nsprog.dsl.definition import load_dsl
from nsprog.encoder.checkpoint import checkpoint_dict, read_checkpoint, restore, save_checkpoint
from nsprog.encoder.fitting import fit_encoder
from nsprog.encoder.presets import preset_config
from nsprog.encoder.settings import DistillSettings, EncoderConfig, LearnerSettings
from nsprog.encoder.state import FitContext
from nsprog.gru_kernel import native_kernels
from nsprog.models.nstvae import VAESettings
from nsprog.programs import ProgramSet
from nsprog.search.synthesis import SearchSettings
from nsprog.seeds import SeedStreams
from nsprog.utils import limit_threads, resolve_device

__all__ = ["NeurosymbolicEncoder"]

_SECTIONS = {"vae": VAESettings, "search": DistillSettings, "learner": LearnerSettings}


class NeurosymbolicEncoder(Estimator):
    """A trajectory VAE whose latent holds ``n_programs`` binary programs plus a neural part.

    Parameters
    ----------
    dsl : str or DSL, default="synthetic"
        The domain language (a shipped name, a YAML path or a DSL object).
    n_programs : int, default=2
    vae : VAESettings or dict, optional
        VAE hyperparameters; a dict sets some keys and keeps the defaults of the rest.
    search : DistillSettings or dict, optional
        The distillation search (greedy one-step by default).
    learner : LearnerSettings or dict, optional
    seed : int, default=0
    device : str, default="cpu"
        ``cpu``, ``cuda[:N]``, ``mps`` or ``auto``.
    threads : int or None, default=1
        Torch and BLAS threads while fitting and predicting, restored afterwards (one thread is
        fastest for these small models, and keeps a busy 2-core machine from oversubscribing);
        None keeps the current setting.
    progress : bool, default=True
        A progress bar on a terminal, one log line per epoch elsewhere; False: neither.
    accelerate : bool, default=True
        Native GRU kernels where available; False runs ``torch.nn.GRU`` (same numbers, slower).

    Defaults equal ``nsprog fit`` without a config; :meth:`from_preset` gives the named
    per-dataset settings that ``nsprog fit --preset`` uses.

    Attributes (after ``fit``)
    --------------------------
    programs_ : the complete programs with their parameters, in learning order
    history_ : one record per round (losses, distillation choice, timings)
    model_, pipeline_, normalizer_, dsl_, config_, state_ : the fitted parts
    n_steps_, fit_seconds_ : optimiser steps and wall time of the fit
    """

    _fitted_attributes = ("model_", "programs_", "pipeline_", "normalizer_", "dsl_", "config_", "history_")

    def __init__(self, dsl="synthetic", n_programs: int = 2, vae: VAESettings | dict | None = None,
                 search: SearchSettings | dict | None = None, learner: LearnerSettings | dict | None = None,
                 seed: int = 0, device: str = "cpu", threads: int | None = 1, progress: bool = True,
                 accelerate: bool = True):
        self.dsl = dsl
        self.n_programs = n_programs
        self.vae = vae
        self.search = search
        self.learner = learner
        self.seed = seed
        self.device = device
        self.threads = threads
        self.progress = progress
        self.accelerate = accelerate

    @classmethod
    def from_preset(cls, name: str, **params: Any) -> "NeurosymbolicEncoder":
        """An encoder with a named preset's settings (:mod:`nsprog.encoder.presets`);
        ``params`` are further constructor arguments (``n_programs=1``, ``seed=3``, ...)."""
        model_keys = {k: params.pop(k) for k in ("dsl", "n_programs", "vae", "search", "learner") if k in params}
        cfg = preset_config(name, **model_keys)
        return cls(dsl=cfg.dsl, n_programs=cfg.n_programs, vae=cfg.vae, search=cfg.search, learner=cfg.learner,
                   **params)

    # ------------------------------------------------------------------ configuration
    def config(self) -> EncoderConfig:
        """The validated :class:`EncoderConfig` these parameters describe."""
        sections = {}
        for name, cls in _SECTIONS.items():
            value = getattr(self, name)
            if value is None:
                value = cls()
            elif isinstance(value, dict):
                value = from_dict(cls, value, source=f"{type(self).__name__}({name}=...)")
            sections[name] = value
        dsl = self.dsl if isinstance(self.dsl, (str, Path)) else getattr(self.dsl, "name", self.dsl)
        return EncoderConfig(dsl=str(dsl), n_programs=self.n_programs, **sections)

    # ------------------------------------------------------------------ fitting
    def fit(self, train: Trajectories, val: Trajectories | None = None, *, checkpoint_dir: str | Path | None = None,
            resume: bool = False) -> "NeurosymbolicEncoder":
        """Learn the programs and the VAE on ``train`` (``val`` scores the distillation search;
        carved from ``train`` when None). With ``checkpoint_dir`` a checkpoint is written after
        every round; ``resume=True`` continues from the checkpoint found there. A fit that
        fails leaves the estimator unfitted."""
        self._clear_fitted()
        cfg = self.config()
        dsl = load_dsl(self.dsl)
        device = resolve_device(self.device)
        with limit_threads(self.threads), native_kernels(self.accelerate):
            res = fit_encoder(cfg, dsl, train, val, self.seed, device, self.progress, checkpoint_dir, resume)
        self._set_fitted(
            config_=res.config, dsl_=res.dsl, model_=res.model, state_=res.state, history_=res.history,
            programs_=list(res.state.done), pipeline_=res.pipeline, normalizer_=res.normalizer,
            n_steps_=res.state.step, fit_seconds_=res.seconds,
        )
        return self

    # ------------------------------------------------------------------ inference
    def _device(self) -> torch.device:
        return next(self.model_.parameters()).device

    def _check_windows(self, traj: Trajectories) -> None:
        if not isinstance(traj, Trajectories):
            raise TypeError(f"expected nsprog Trajectories windows; got {type(traj).__name__}")
        if traj.state_dim != self.model_.state_dim:
            raise ValueError(f"windows have {traj.state_dim} state dims; this encoder was fitted on "
                             f"{self.model_.state_dim}")

    def program_logits(self, traj: Trajectories) -> np.ndarray:
        """``[N, k]`` logit of each program's bit."""
        self._check_fitted()
        self._check_windows(traj)
        with limit_threads(self.threads), native_kernels(self.accelerate):
            feats = self.pipeline_.transform(traj).to(self._device())
            ctx = FitContext(self.config_, self.dsl_, self.model_, {}, {}, self._device(), SeedStreams(self.seed))
            return ctx.logits(feats)[:, : len(self.programs_)].cpu().numpy()

    def program_proba(self, traj: Trajectories) -> np.ndarray:
        """``[N, k]`` probability of each program bit being 1."""
        return 1.0 / (1.0 + np.exp(-self.program_logits(traj)))

    def predict(self, traj: Trajectories) -> np.ndarray:
        """Cluster id per window: the k-bit code of the programs (program 1 is the most significant bit)."""
        bits = (self.program_logits(traj) > 0).astype(np.int64)
        k = bits.shape[1]
        return (bits * (1 << np.arange(k - 1, -1, -1))).sum(1) if k else np.zeros(len(traj), dtype=np.int64)

    def predict_proba(self, traj: Trajectories) -> np.ndarray:
        """``[N, 2^k]`` cluster probabilities (the programs' bits treated as independent)."""
        p = self.program_proba(traj)
        k = p.shape[1]
        codes = (np.arange(2**k)[:, None] >> np.arange(k - 1, -1, -1)[None, :]) & 1  # [2^k, k]
        return np.prod(np.where(codes[None] == 1, p[:, None, :], 1 - p[:, None, :]), axis=-1)

    def transform(self, traj: Trajectories) -> np.ndarray:
        """Posterior means of the neural latent, ``[N, z_dim - k]``."""
        self._check_fitted()
        self._check_windows(traj)
        with limit_threads(self.threads), native_kernels(self.accelerate):
            states = torch.from_numpy(self.normalizer_.transform(traj).states).to(self._device())
            ctx = FitContext(self.config_, self.dsl_, self.model_, {"all": states}, {}, self._device(),
                             SeedStreams(self.seed))
            return ctx.neural_means("all")

    def program_set(self) -> ProgramSet:
        """The learned programs as a stand-alone :class:`~nsprog.programs.ProgramSet`."""
        self._check_fitted()
        programs = {f"program_{i + 1}": p for i, p in enumerate(self.programs_)}
        return ProgramSet(self.dsl_, self.pipeline_, programs, {k: [0, 1] for k in programs})

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write the saved-model folder that ``load``, ``nsprog show`` and ``nsprog evaluate`` read:
        ``checkpoint.pt`` (plain tensors and numbers), ``programs.json`` and ``programs.txt``."""
        from nsprog.utils import atomic_write

        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        ctx = FitContext(self.config_, self.dsl_, self.model_, {}, {}, self._device(), SeedStreams(self.seed))
        save_checkpoint(d / "checkpoint.pt", checkpoint_dict(ctx, self.state_, self.history_, self.pipeline_,
                                                             self.normalizer_, self.seed))
        pset = self.program_set()
        pset.save(d / "programs.json")
        text = pset.to_text() if self.programs_ else "(no programs: a plain trajectory VAE)\n"
        atomic_write(d / "programs.txt", lambda p: p.write_text(text, encoding="utf-8"))
        return d

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> "NeurosymbolicEncoder":
        """The encoder saved in ``directory`` (by :meth:`save` or ``nsprog fit``), ready to predict."""
        r = restore(read_checkpoint(directory, map_location=device), device)
        cfg = r.config
        est = cls(dsl=r.dsl, n_programs=cfg.n_programs, vae=cfg.vae, search=cfg.search, learner=cfg.learner,
                  seed=r.seed, device=str(device), progress=False)
        est._set_fitted(
            config_=cfg, dsl_=r.dsl, model_=r.model, state_=r.state, history_=r.history, programs_=list(r.state.done),
            pipeline_=r.pipeline, normalizer_=r.normalizer, n_steps_=r.state.step, fit_seconds_=float("nan"),
        )
        return est

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        params = {k: v for k, v in self.get_params(deep=False).items()}
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items() if k in ("dsl", "n_programs", "seed", "device"))
        return f"{type(self).__name__}({shown}, ...)"

