"""Distillation (Algorithm 1, line 5) and the neural-latent start of a program.

Distillation replaces the current program by the child (one search step in the program
graph) that best reproduces the current program's hard labels. A program can also start
from the 2-means split of the neural latent (:func:`init_from_neural`), which hands it the
structure the neural latent already holds instead of a random start.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import replace

import numpy as np
import torch

from nsprog.dsl.ast import Hole, Node, clear_params, holes, iter_nodes, replace_at
from nsprog.dsl.serialize import program_to_json
from nsprog.encoder.state import AlgorithmState, FitContext, balance
from nsprog.executors import make_executor
from nsprog.search.graph import ProgramGraph, SearchNode
from nsprog.search.strategies import Scored, greedy_step
from nsprog.search.synthesis import run_strategy
from nsprog.search.training import CandidateEvaluator, Supervision

__all__ = ["init_from_neural", "distill", "program_bits", "dumps_program"]

log = logging.getLogger("nsprog")


def dumps_program(program: Node) -> str:
    return json.dumps(program_to_json(program))


def program_bits(ctx: FitContext, program: Node, split: str) -> np.ndarray:
    """0/1 outputs of a (parameterised) program on a split's windows."""
    module = ctx.compile(program, (0,))
    module.eval()
    feats = ctx.feats[split]
    with torch.no_grad():
        out = torch.cat([module(feats[lo : lo + 8192])[0] for lo in range(0, feats.shape[0], 8192)])
    return (out[:, 0] > 0).cpu().numpy().astype(np.int64)


def init_from_neural(ctx: FitContext, state: AlgorithmState, j: int, program: Node) -> tuple[Node, dict]:
    """Pre-train program ``j`` (a hole or a partial program) on the 2-means split of the
    neural latent; returns the program with its trained parameters and a record (empty when
    the latent has no balanced split, and the program stays as it was).

    Whatever binary structure the data still hold beyond the frozen programs sits in the
    neural latent once the VAE has trained, and a program started at random tends to settle
    on a copy of an earlier program or on a constant bit instead (local optima of the VAE
    objective). Starting the program on the neural latent's dominant split hands that
    structure to the program; the adversary then removes it from the neural latent.
    """
    from sklearn.cluster import KMeans

    z = {k: ctx.neural_means(k) for k in ("train", "val")}
    if z["train"].shape[1] == 0:
        return program, {}
    scale = z["train"].std(0) + 1e-8
    seed = ctx.streams.seed_for("kmeans", j, state.round) % 2**31
    km = KMeans(n_clusters=2, n_init=10, random_state=seed).fit(z["train"] / scale)
    y = {k: km.predict(z[k] / scale).astype(np.int64) for k in z}
    share = balance(y["train"])
    if share < ctx.cfg.learner.min_balance:
        log.info("program %d: the neural latent has no balanced 2-means split (minority share %.3f); "
                 "starting from a random program", j + 1, share)
        return program, {}
    sup = Supervision(ctx.feats["train"], torch.as_tensor(y["train"]), ctx.feats["val"], torch.as_tensor(y["val"]), 2,
                      name=f"program{j + 1}-init")
    evaluator = CandidateEvaluator(sup, ctx.dsl, ctx.cfg.search.train_settings(),
                                   ctx.streams.seed_for("init_search", j, state.round) % 2**31, str(ctx.device),
                                   make_executor("inline", 1), True, False)
    result = evaluator.evaluate([clear_params(program)])[0]
    log.info("program %d starts from the neural latent's 2-means split (minority share %.3f; %s reproduces it "
             "with validation F1 %.3f)", j + 1, share, program.key(), result.f1)
    return result.program, {"split_balance": share, "init_f1": result.f1}


def distill(ctx: FitContext, state: AlgorithmState, j: int, current: Node) -> tuple[Node, dict]:
    """Choose the child of the current program that best reproduces its hard labels.

    Program j's bit is defined only up to XOR with the bits of earlier programs: the
    recoded bit gives the same 2^k-cluster partition and the same information. A neural
    program may have learned a recoding the DSL cannot express (e.g. c_x XOR c_y beside a
    frozen c_x), so every recoding by a subset of earlier programs (at most
    ``2^max_recode_programs`` targets) is a distillation target; the best child over all
    targets wins. Children whose bits are near-constant are passed over when any other is
    balanced.
    """
    t0 = time.perf_counter()
    cfg = ctx.cfg
    y = {k: ctx.bits(j, k) for k in ("train", "val")}
    earlier = {k: [ctx.bits(i, k) for i in range(j)] for k in ("train", "val")}
    subsets = [()] + [tuple(c) for r in range(1, min(j, cfg.learner.max_recode_programs) + 1)
                      for c in itertools.combinations(range(j), r)]
    best, best_subset, n_trained, tried = None, (), 0, []
    for subset in subsets:
        yt = {k: y[k] ^ (np.bitwise_xor.reduce([earlier[k][i] for i in subset]) if subset else 0) for k in y}
        sup = Supervision(ctx.feats["train"], torch.as_tensor(yt["train"]), ctx.feats["val"],
                          torch.as_tensor(yt["val"]), 2, name=f"round{state.round}-xor{subset}")
        ranked, trained = _rank_children(ctx, state, current, sup)
        n_trained += trained
        choice, collapsed = ranked[0], True
        for cand in ranked:
            if balance(program_bits(ctx, cand.result.program, "train")) >= cfg.learner.min_balance:
                choice, collapsed = cand, False
                break
        tried.append({"xor_with_programs": [i + 1 for i in subset], "program": choice.node.program.key(),
                      "f": choice.f, "f1": choice.result.f1, "collapsed": collapsed})
        if best is None or (best[1], best[0].f) > (collapsed, choice.f):
            best, best_subset = (choice, collapsed, ranked), subset
    chosen, collapsed, ranked = best
    if collapsed:
        log.warning("every child of %s is near-constant on the training windows; keeping the best (%s)",
                    current.key(), chosen.node.program.key())
    child = chosen.result.program if cfg.learner.warm_start else clear_params(chosen.result.program)
    recode = f" (its bit XOR program(s) {[i + 1 for i in best_subset]})" if best_subset else ""
    seconds = time.perf_counter() - t0
    log.info("distilled %s%s -> %s (validation F1 %.4f, %d candidates, %.1f s)", current.key(), recode, child.key(),
             chosen.result.f1, n_trained, seconds)
    info = {
        "distilled_to": child.key(),
        "distilled_program": dumps_program(child),
        "distill_f1": chosen.result.f1,
        "distill_xor_with": [i + 1 for i in best_subset],
        "distill_targets": tried,
        "distill_candidates": [{"program": c.node.program.key(), "f": c.f, "f1": c.result.f1} for c in ranked],
        "distill_seconds": seconds,
        "distill_collapsed": collapsed,
        "label_balance": balance(y["train"]),
    }
    return child, info


def _rank_children(ctx: FitContext, state: AlgorithmState, current: Node, sup: Supervision) -> tuple[list[Scored], int]:
    s = ctx.cfg.search
    graph = ProgramGraph(ctx.dsl, ctx.start, s.max_depth, s.penalty, exclude={p.key() for p in state.done})
    executor = make_executor(s.executor, s.workers)
    seed = ctx.streams.seed_for("distill", state.round) % 2**31
    evaluator = CandidateEvaluator(sup, ctx.dsl, s.train_settings(), seed, str(ctx.device), executor, s.fused,
                                   ctx.progress)
    node = SearchNode(clear_params(current), 0.0)
    try:
        if s.strategy == "greedy":
            ranked = greedy_step(graph, evaluator, node)
        else:  # a full strategy below the node; the child on the path to its best program comes first
            found = run_strategy(s, graph, evaluator, seed, start=node)
            ranked = greedy_step(graph, evaluator, node)  # cached: these children were trained by the strategy
            prefix = _first_step(node.program, found.node.program)
            ranked = sorted(ranked, key=lambda c: (c.node.program.key() != prefix, c.f))
    finally:
        executor.shutdown()
    return ranked, evaluator.n_trained


def _first_step(node: Node, target: Node) -> str:
    """Key of the child of ``node`` on the path to the complete program ``target``: the first
    hole of ``node`` filled with the production ``target`` has there (its arguments as holes)."""
    path, _, _ = holes(node)[0]
    sub = {p: n for p, _, n in iter_nodes(target)}[path]
    skeleton = replace(sub.with_children(tuple(Hole(c.sig) for c in sub.children)) if sub.children else sub, params=None)
    return replace_at(node, path, skeleton).key()
