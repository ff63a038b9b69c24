"""One fit, start to finish: check the inputs, prepare the data once, run the rounds of
Algorithms 1 and 2 with a checkpoint after each, and hand back what was learned."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from nsprog.config import to_dict
from nsprog.data.normalize import Normalizer
from nsprog.data.splits import split_by_time, split_random
from nsprog.data.trajectories import Trajectories
from nsprog.dsl.definition import DSL
from nsprog.encoder.algorithm import run_round
from nsprog.encoder.checkpoint import checkpoint_dict, read_checkpoint, restore, save_checkpoint
from nsprog.encoder.settings import EncoderConfig
from nsprog.encoder.state import AlgorithmState, FitContext, FittedParts, start_signature
from nsprog.features.pipeline import FeaturePipeline
from nsprog.models.nstvae import NeurosymbolicTVAE
from nsprog.search.graph import ProgramGraph
from nsprog.seeds import SeedStreams

__all__ = ["check_fit_inputs", "fit_encoder"]

log = logging.getLogger("nsprog")


def check_fit_inputs(cfg: EncoderConfig, dsl: DSL, train: Trajectories) -> None:
    """Everything that can fail before training: the DSL can express ``n_programs`` distinct
    programs, and the windows fit the DSL's feature domain."""
    if not isinstance(train, Trajectories):
        raise TypeError(f"fit expects nsprog Trajectories windows (nsprog.data.Trajectories); got {type(train).__name__}")
    if cfg.n_programs:
        graph = ProgramGraph(dsl, start_signature(dsl), cfg.search.max_depth, cfg.search.penalty)  # raises if none
        n_complete = graph.count_complete(limit=cfg.n_programs)
        if n_complete < cfg.n_programs:
            raise ValueError(
                f"n_programs = {cfg.n_programs} but DSL {dsl.name!r} has only {n_complete} distinct complete "
                f"program(s) within search.max_depth {cfg.search.max_depth}"
            )
    dsl.check_windows(train)


def _carve_val(train: Trajectories, fraction: float, streams: SeedStreams) -> tuple[Trajectories, Trajectories]:
    log.warning("no validation windows given: using %.0f%% of the training windows for validation", 100 * fraction)
    fr = {"train": 1 - fraction, "val": fraction}
    if train.starts is not None and train.groups is not None:
        s = split_by_time(train, fr)
    else:
        s = split_random(train, fr, streams.seed_for("val_split") % 2**31)
    return s["train"], s["val"]


def fit_encoder(cfg: EncoderConfig, dsl: DSL, train: Trajectories, val: Trajectories | None, seed: int,
                device: torch.device, progress: bool = True, checkpoint_dir: str | Path | None = None,
                resume: bool = False) -> FittedParts:
    """Run a whole fit (or the rest of one, with ``resume``)."""
    check_fit_inputs(cfg, dsl, train)
    streams = SeedStreams(seed)
    if val is None:
        train, val = _carve_val(train, cfg.learner.val_fraction, streams)
    pipeline = FeaturePipeline.for_dsl(dsl).fit(train)
    normalizer = Normalizer.fit(train)
    ckpt = Path(checkpoint_dir) / "checkpoint.pt" if checkpoint_dir is not None else None
    if resume:
        if ckpt is None:
            raise ValueError("resume=True needs checkpoint_dir (the folder of the interrupted fit)")
        saved = restore(read_checkpoint(ckpt, map_location=device), device, progress)
        _check_resumable(saved, cfg, seed, pipeline, normalizer, ckpt)
        model, state, history = saved.model, saved.state, saved.history
        log.info("resuming after round %d (%d program(s) complete)", state.round, len(state.done))
    else:
        with streams.torch_rng("model"):
            model = NeurosymbolicTVAE(train.state_dim, cfg.vae).to(device)
        state, history = AlgorithmState.initial(cfg.n_programs), []
    ctx = FitContext(
        cfg, dsl, model,
        states={k: torch.from_numpy(normalizer.transform(t).states).to(device) for k, t in (("train", train), ("val", val))},
        feats={k: pipeline.transform(t).to(device) for k, t in (("train", train), ("val", val))},
        device=device, streams=streams, progress=progress,
    )
    t0 = time.perf_counter()
    try:
        while state.phase != "done":
            run_round(ctx, state, history)
            if ckpt is not None:
                save_checkpoint(ckpt, checkpoint_dict(ctx, state, history, pipeline, normalizer, seed))
    except BaseException as exc:
        kept = f"; {ckpt} holds the fit up to round {_saved_round(ckpt)}" if ckpt is not None and ckpt.is_file() else ""
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"stopped: {exc}"
        log.error("fit %s (during round %d)%s", reason, state.round + 1, kept)
        raise
    model.eval()
    return FittedParts(cfg, dsl, model, state, history, pipeline, normalizer, seed, time.perf_counter() - t0)


def _saved_round(ckpt: Path) -> int | str:
    try:
        return int(read_checkpoint(ckpt)["state"]["round"])
    except Exception:  # noqa: BLE001 - only for a log line
        return "?"


def _check_resumable(saved, cfg: EncoderConfig, seed: int, pipeline: FeaturePipeline, normalizer: Normalizer,
                     ckpt: Path) -> None:
    now, then = to_dict(cfg), to_dict(saved.config)
    if now != then:
        diff = sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
        raise ValueError(f"cannot resume from {ckpt}: it was made with a different config (sections {diff}); "
                         "resume with the config of the interrupted fit")
    if seed != saved.seed:
        raise ValueError(f"cannot resume from {ckpt}: it was made with seed {saved.seed}, not {seed}")
    same = (np.allclose(normalizer.mean, saved.normalizer.mean, rtol=1e-5, atol=1e-6)
            and np.allclose(pipeline.scaler_.mean, saved.pipeline.scaler_.mean, rtol=1e-5, atol=1e-6))
    if not same:
        raise ValueError(f"cannot resume from {ckpt}: the training windows differ from those of the interrupted fit "
                         "(their statistics do not match); resume with the same data")
