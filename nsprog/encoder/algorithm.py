"""Algorithms 1 and 2 of the paper as a state machine over :class:`AlgorithmState`.

Algorithm 1 (one program): start from a fully neural program (a hole); repeat {train the
VAE with the program architecture fixed; distil the current program's hard labels into its
best child} until the program is complete. Algorithm 2: learn k programs greedily, freezing
earlier ones and excluding their structures from later searches; the cluster of a window
is the k-bit code of its programs.

:func:`run_round` performs exactly one round and moves the state on; the caller writes a
checkpoint after each, so a fit resumed from any checkpoint continues as the uninterrupted
fit would (every random draw comes from a stream keyed by the round).
"""

from __future__ import annotations

import logging

from nsprog.dsl.ast import Hole, Node, clear_params, is_complete
from nsprog.encoder.distill import distill, init_from_neural
from nsprog.encoder.state import AlgorithmState, FitContext, balance
from nsprog.encoder.trainer import train_epochs

__all__ = ["run_round"]

log = logging.getLogger("nsprog")


def run_round(ctx: FitContext, state: AlgorithmState, history: list[dict]) -> None:
    """One round of the phase the state is in; appends the round's record to ``history``."""
    if state.phase == "learn":
        _learn_round(ctx, state, history)
    elif state.phase == "final":
        j = state.program
        record = _train_round(ctx, state, j, state.current, ctx.cfg.vae.final_epochs, "final")
        history.append(record)
        state.round += 1
        _finish(ctx, state, j, ctx.model.programs[j].export(0))
    elif state.phase in ("release", "plain"):
        release = state.phase == "release"
        label = "release (programs frozen)" if release else "VAE (no programs)"
        epochs = ctx.cfg.learner.release_epochs if release else ctx.cfg.vae.epochs
        losses = train_epochs(ctx, state, epochs, label)
        history.append({"round": state.round, "program": 0, "structure": None, "kind": "release" if release else "vae",
                        **losses})
        state.round += 1
        state.phase = "done"
    else:
        raise ValueError(f"no round to run in phase {state.phase!r}")


def _start_program(ctx: FitContext, state: AlgorithmState, history: list[dict], j: int) -> Node:
    """Program ``j`` begins as a hole (or as the neural latent's split, for programs 2..k)."""
    current: Node = Hole(ctx.start)
    if j > 0 and ctx.cfg.learner.init_from_neural:
        current, info = init_from_neural(ctx, state, j, current)
        if info:
            history.append({"round": state.round, "program": j + 1, "kind": "init_from_neural", **info})
    with ctx.streams.torch_rng("adversary", state.round):
        ctx.model.add_program(ctx.compile(current, (state.round,)))
    state.program_step = 0  # Algorithm 1 starts again: both capacities ramp up from 0
    return current


def _learn_round(ctx: FitContext, state: AlgorithmState, history: list[dict]) -> None:
    cfg, j = ctx.cfg, state.program
    current = state.current if state.current is not None else _start_program(ctx, state, history, j)
    record = _train_round(ctx, state, j, current, cfg.vae.epochs, "round")
    current, info = distill(ctx, state, j, ctx.model.programs[j].export(0))
    record.update(info)
    history.append(record)
    state.round += 1
    restarts = state.restarts.get(j, 0)
    if is_complete(current) and info["distill_f1"] < cfg.learner.min_distill_f1 and restarts < cfg.learner.distill_retries:
        # no DSL program reproduces what the neural program learned: learn program j again
        state.restarts[j] = restarts + 1
        log.warning("program %d: the best complete program %s reproduces its neural parent with F1 %.3f only "
                    "(< learner.min_distill_f1 = %.2f); learning program %d again from a fresh neural program "
                    "(restart %d of %d)", j + 1, current.key(), info["distill_f1"], cfg.learner.min_distill_f1, j + 1,
                    restarts + 1, cfg.learner.distill_retries)
        record["restarted"] = True
        current = Hole(ctx.start)
        if cfg.learner.init_from_neural:
            current, record["init_from_neural"] = init_from_neural(ctx, state, j, current)
        state.program_step = 0
    ctx.model.set_program(j, ctx.compile(current, (state.round,)))
    if not cfg.learner.warm_start:
        with ctx.streams.torch_rng("reset", state.round):
            ctx.model.reset_vae()
    state.current = current
    if is_complete(current):
        if cfg.vae.final_epochs:
            state.phase = "final"
        else:
            _finish(ctx, state, j, current)


def _train_round(ctx: FitContext, state: AlgorithmState, j: int, current: Node, epochs: int, kind: str) -> dict:
    """Train the VAE with the architecture fixed. A program that collapsed (near-constant
    bits) is rescued from the neural latent's split when ``init_from_neural`` (no extra
    training: the next rounds train it), else the round is retried with a fresh program."""
    cfg = ctx.cfg
    record = {"round": state.round, "program": j + 1, "structure": current.key(), "kind": kind}
    for attempt in range(cfg.learner.collapse_retries + 1):
        losses = train_epochs(ctx, state, epochs, f"program {j + 1}, {kind} {state.round + 1}", attempt)
        share = balance(ctx.bits(j, "train"))
        record.update(losses, balance=share, attempts=attempt + 1)
        if share >= cfg.learner.min_balance:
            break
        if cfg.learner.init_from_neural:
            rescued, info = init_from_neural(ctx, state, j, clear_params(current))
            if info:
                ctx.model.set_program(j, ctx.compile(rescued, (state.round, attempt)))
                share = balance(ctx.bits(j, "train"))
                log.warning("program %d collapsed in round %d; it restarts from the neural latent's split "
                            "(minority share now %.3f)", j + 1, state.round + 1, share)
                record["rescued_from_neural"] = {**info, "balance_before": record["balance"], "balance_after": share}
                record["balance"] = share
                if share >= cfg.learner.min_balance:
                    break
        log.warning("program %d collapsed in round %d (minority share %.3f < %.3f)%s", j + 1, state.round + 1, share,
                    cfg.learner.min_balance, "; retrying with a fresh program" if attempt < cfg.learner.collapse_retries else "")
        if attempt < cfg.learner.collapse_retries:
            current = clear_params(current)
            ctx.model.set_program(j, ctx.compile(current, (state.round, attempt + 1, 1)))
    record["collapsed"] = bool(share < cfg.learner.min_balance)
    return record


def _finish(ctx: FitContext, state: AlgorithmState, j: int, program: Node) -> None:
    """Program ``j`` is complete: freeze it and move on (Algorithm 2)."""
    for p in ctx.model.programs[j].parameters():
        p.requires_grad_(False)
    state.done.append(program)
    state.current = None
    state.program += 1
    if state.program < ctx.cfg.n_programs:
        state.phase = "learn"
    elif ctx.cfg.learner.release_epochs:
        state.phase = "release"
    else:
        state.phase = "done"
