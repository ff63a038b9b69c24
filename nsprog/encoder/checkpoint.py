"""The one saved form of an encoder: ``checkpoint.pt``, written after every round of a fit
and by :meth:`NeurosymbolicEncoder.save`, read by resume, ``load``, ``nsprog show`` and
``nsprog evaluate`` through :func:`read_checkpoint` and :func:`restore`.

It holds plain tensors, numbers and strings only (``torch.load(weights_only=True)`` reads it,
and nothing in it can run code): the config, the seed, the VAE weights, the programs as
JSON with their parameters, the algorithm state, the feature pipeline, the normaliser, the
DSL and the per-round history. Writes are atomic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nsprog._version import __version__
from nsprog.config import ConfigError, from_dict, to_dict
from nsprog.data.normalize import Normalizer
from nsprog.dsl.ast import Node
from nsprog.dsl.definition import DSL
from nsprog.dsl.serialize import program_from_json, program_to_json
from nsprog.encoder.settings import EncoderConfig
from nsprog.encoder.state import AlgorithmState, FitContext, FittedParts
from nsprog.features.pipeline import FeaturePipeline
from nsprog.models.nstvae import NeurosymbolicTVAE
from nsprog.seeds import SeedStreams
from nsprog.utils import load_torch_file, torch_save_atomic

__all__ = ["FORMAT", "VERSION", "CheckpointError", "checkpoint_dict", "save_checkpoint", "read_checkpoint",
           "restore"]

FORMAT = "nsprog-encoder"
VERSION = 2
_REQUIRED = {"config", "seed", "state_dim", "vae_state", "state", "normalizer", "pipeline", "dsl", "history"}


class CheckpointError(ValueError):
    """A file is not a readable nsprog encoder checkpoint; the message names the file and why."""


def _dumps(program: Node) -> str:
    return json.dumps(program_to_json(program))


def _plain(obj: Any) -> Any:
    """Only types that ``torch.load(weights_only=True)`` accepts."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def checkpoint_dict(ctx: FitContext, state: AlgorithmState, history: list[dict], pipeline: FeaturePipeline,
                    normalizer: Normalizer, seed: int) -> dict:
    vae_state = {k: v.detach().cpu().clone() for k, v in ctx.model.state_dict().items()
                 if not k.startswith("programs.")}
    return {
        "format": FORMAT,
        "version": VERSION,
        "nsprog_version": __version__,
        "torch_version": str(torch.__version__),
        "config": to_dict(ctx.cfg),
        "seed": int(seed),
        "state_dim": int(ctx.model.state_dim),
        "vae_state": vae_state,
        "state": {
            "phase": state.phase,
            "program": int(state.program),
            "round": int(state.round),
            "current": None if state.current is None else _dumps(state.current),
            "done": [_dumps(p) for p in state.done],
            "restarts": {str(k): int(v) for k, v in state.restarts.items()},
            "step": int(state.step),
            "program_step": int(state.program_step),
        },
        "normalizer": normalizer.to_dict(),
        "pipeline": _plain(pipeline.to_dict()),
        "dsl": _plain(ctx.dsl.to_dict()),
        "history": _plain(history),
    }


def save_checkpoint(path: str | Path, ck: dict) -> Path:
    return torch_save_atomic(ck, path)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load and check a checkpoint (a ``checkpoint.pt`` file or a folder holding one).

    Every failure is a :class:`CheckpointError` (or ``FileNotFoundError``) naming the file:
    missing, unreadable (corrupt, truncated, or holding objects other than tensors and
    numbers, which are never unpickled), another kind of file, a newer format, missing fields.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    try:
        ck = load_torch_file(path, "nsprog checkpoint", map_location)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an nsprog encoder checkpoint (no \"format\": {FORMAT!r} in it)")
    version = ck.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path} has checkpoint version {version!r}, newer than this nsprog ({__version__}) "
                              f"reads (version {VERSION}); upgrade nsprog")
    if version < 2:
        ck = _upgrade_v1(ck)
    missing = _REQUIRED - set(ck)
    if missing:
        raise CheckpointError(f"{path} is missing the field(s) {sorted(missing)}")
    ck["_path"] = str(path)
    return ck


def restore(ck: dict, device: str | torch.device = "cpu", progress: bool = False) -> FittedParts:
    """Rebuild the config, DSL, model (programs included), algorithm state, pipeline and
    normaliser of a checkpoint read by :func:`read_checkpoint`."""
    where = ck.get("_path", "checkpoint")
    try:
        cfg = from_dict(EncoderConfig, ck["config"], source=where)
        dsl = DSL.from_dict(ck["dsl"], source=where)
        raw = ck["state"]
        parse = lambda text, name: program_from_json(json.loads(text), dsl, require_params=True,  # noqa: E731
                                                     where=f"{where}: {name}")
        state = AlgorithmState(
            phase=raw["phase"], program=int(raw["program"]), round=int(raw["round"]),
            current=None if raw["current"] is None else parse(raw["current"], "current program"),
            done=[parse(t, f"program {i + 1}") for i, t in enumerate(raw["done"])],
            restarts={int(k): int(v) for k, v in raw["restarts"].items()},
            step=int(raw["step"]), program_step=int(raw["program_step"]),
        )
        pipeline = FeaturePipeline.from_dict(ck["pipeline"])
        normalizer = Normalizer.from_dict(ck["normalizer"])
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where} is damaged: {exc}") from None
    seed = int(ck["seed"])
    streams = SeedStreams(seed)
    programs = state.done + ([state.current] if state.current is not None else [])
    with streams.torch_rng("restore"):  # every weight is overwritten below; this only keeps the global RNG alone
        model = NeurosymbolicTVAE(int(ck["state_dim"]), cfg.vae).to(device)
        ctx = FitContext(cfg, dsl, model, {}, {}, torch.device(device), streams, progress)
        for j, p in enumerate(programs):
            model.add_program(ctx.compile(p, (j,)))
            if j < len(state.done):
                for q in model.programs[j].parameters():
                    q.requires_grad_(False)
    missing, unexpected = model.load_state_dict(ck["vae_state"], strict=False)
    bad = [k for k in missing if not k.startswith("programs.")] + list(unexpected)
    if bad:
        raise CheckpointError(f"{where}: the model weights do not match the saved architecture ({bad[:5]})")
    model.eval()
    return FittedParts(cfg, dsl, model, state, list(ck["history"]), pipeline, normalizer, seed)


def _upgrade_v1(ck: dict) -> dict:
    """Read a version-1 checkpoint (nsprog 0.1), whose algorithm state lived in loose fields."""
    ck = dict(ck)
    cfg = ck.get("config", {})
    n_programs = int(cfg.get("n_programs", 0))
    done, history = ck.get("programs_done", []), ck.get("history", [])
    if len(done) < n_programs:
        phase = "learn"
        if ck.get("current") is not None and '"node": "Hole"' not in ck["current"] and cfg.get("vae", {}).get("final_epochs"):
            phase = "final"
    elif n_programs and cfg.get("learner", {}).get("release_epochs") and not any(
            h.get("kind") == "release" for h in history):
        phase = "release"
    elif not n_programs and not history:
        phase = "plain"
    else:
        phase = "done"
    restarts: dict[str, int] = {}
    for h in history:
        if h.get("restarted"):
            restarts[str(int(h["program"]) - 1)] = restarts.get(str(int(h["program"]) - 1), 0) + 1
    ck["state"] = {"phase": phase, "program": len(done), "round": ck.get("round", 0), "current": ck.get("current"),
                   "done": done, "restarts": restarts, "step": ck.get("step", 0),
                   "program_step": ck.get("program_step", 0)}
    ck.setdefault("seed", 0)
    return ck
