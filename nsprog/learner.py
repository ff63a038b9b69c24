"""Learning neurosymbolic encoders: Algorithms 1 and 2 of the paper behind an estimator API.

Algorithm 1 (one program): start from a fully neural program (a hole); repeat {train the
VAE with the program architecture fixed; distil the current program's hard labels into
its best child (one search step)} until the program is complete. Algorithm 2: learn k
programs greedily, freezing earlier ones and excluding their structures from later
searches; the cluster of a window is the k-bit code of its programs.

A *round* is one VAE training phase followed by one distillation step; a checkpoint is
written atomically after every round, and each round re-seeds every random stream from
``(seed, round)``, so a fit resumed from a checkpoint continues exactly as an
uninterrupted fit would.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from nsprog._version import __version__
from nsprog.config import from_dict, to_dict
from nsprog.data.normalize import Normalizer
from nsprog.data.splits import split_by_time, split_random
from nsprog.data.trajectories import Trajectories
from nsprog.dsl.ast import Hole, Node, clear_params, holes, is_complete, iter_nodes, replace_at
from nsprog.dsl.definition import DSL, load_dsl
from nsprog.dsl.semantics import StackedProgram
from nsprog.dsl.serialize import program_from_json, program_to_json
from nsprog.dsl.types import ATOM, LIST, Sig, Type
from nsprog.features.pipeline import FeaturePipeline
from nsprog.models.latent import capacity
from nsprog.models.nstvae import LossWeights, NeurosymbolicTVAE, VAESettings
from nsprog.programs import ProgramSet
from nsprog.search.executors import make_executor
from nsprog.search.graph import ProgramGraph, SearchNode
from nsprog.search.strategies import Scored, greedy_step
from nsprog.search.synthesis import NotFittedError, SearchSettings, run_strategy
from nsprog.optim import LeanAdam
from nsprog.search.training import CandidateEvaluator, Supervision
from nsprog.utils import seed_everything, set_threads, torch_save_atomic

__all__ = ["LearnerSettings", "EncoderConfig", "NeurosymbolicEncoder", "TrainingError", "CHECKPOINT_FORMAT"]

log = logging.getLogger("nsprog")
CHECKPOINT_FORMAT = "nsprog-encoder"
CHECKPOINT_VERSION = 1


class TrainingError(FloatingPointError):
    """Training produced a non-finite loss; the message names the round, epoch, batch and term."""


@dataclass
class LearnerSettings:
    """Options of Algorithms 1 and 2."""

    warm_start: bool = True  # keep VAE and distilled program parameters between rounds
    min_balance: float = 0.05  # a program whose minority class is rarer than this is collapsed
    collapse_retries: int = 1  # retries of a round whose program collapsed (fresh program, new seed)
    val_fraction: float = 0.1  # validation share carved from train when no validation set is given
    max_recode_programs: int = 3  # distillation also targets the bit XOR subsets of up to this many earlier programs
    min_distill_f1: float = 0.75  # a complete program reproducing its neural parent worse than this is rejected...
    distill_retries: int = 1  # ...and the program is learned again from a fresh neural hole (this many times)
    init_from_neural: bool = True  # programs 2..k, collapsed programs and restarts start from the neural latent's 2-means split
    release_epochs: int = 0  # VAE epochs after the last program, every program frozen (see README)

    def __post_init__(self) -> None:
        if self.release_epochs < 0:
            raise ValueError(f"release_epochs must be >= 0; got {self.release_epochs}")


@dataclass
class EncoderConfig:
    """Everything that defines a fit (saved in every checkpoint)."""

    dsl: str = "synthetic"
    n_programs: int = 2
    vae: VAESettings = field(default_factory=VAESettings)
    search: SearchSettings = field(default_factory=lambda: SearchSettings(strategy="greedy"))
    learner: LearnerSettings = field(default_factory=LearnerSettings)


def _balance(bits: np.ndarray) -> float:
    """Share of the minority value of a 0/1 vector."""
    p = float(np.mean(bits)) if bits.size else 0.0
    return min(p, 1.0 - p)


class NeurosymbolicEncoder:
    """A trajectory VAE whose latent holds ``n_programs`` binary programs plus a neural part.

    Parameters
    ----------
    dsl : str or DSL, default="synthetic"
    n_programs : int, default=2
    vae : VAESettings, optional
    search : SearchSettings, optional (the distillation search; greedy step by default)
    learner : LearnerSettings, optional
    seed : int, default=0
    device : str, default="cpu"
    threads : int or None
        torch intra-op threads to use (None keeps the current setting).
    progress : bool, default=True

    Attributes (after ``fit``)
    --------------------------
    programs_ : list of complete programs with their parameters, in learning order
    history_ : one record per round (losses, distillation choice, timings)
    pipeline_, normalizer_, dsl_, model_
    """

    def __init__(self, dsl="synthetic", n_programs: int = 2, vae: VAESettings | None = None,
                 search: SearchSettings | None = None, learner: LearnerSettings | None = None,
                 seed: int = 0, device: str = "cpu", threads: int | None = None, progress: bool = True):
        self.dsl = dsl
        self.n_programs = n_programs
        self.vae = vae
        self.search = search
        self.learner = learner
        self.seed = seed
        self.device = device
        self.threads = threads
        self.progress = progress

    # ------------------------------------------------------------------ configuration
    def _config(self) -> EncoderConfig:
        return EncoderConfig(
            dsl=self.dsl if isinstance(self.dsl, str) else self.dsl.name,
            n_programs=self.n_programs,
            vae=self.vae or VAESettings(),
            search=self.search or SearchSettings(strategy="greedy"),
            learner=self.learner or LearnerSettings(),
        )

    def _validate(self, cfg: EncoderConfig, dsl: DSL, train: Trajectories) -> None:
        if not cfg.learner.warm_start and not cfg.vae.final_epochs:
            raise ValueError(
                "learner.warm_start = false re-initialises the program after every distillation, which throws the "
                "distilled parameters away; set vae.final_epochs > 0 so each completed program is trained again"
            )
        if cfg.n_programs < 0:
            raise ValueError(f"n_programs must be >= 0; got {cfg.n_programs}")
        if cfg.n_programs >= cfg.vae.z_dim + 1:
            raise ValueError(
                f"n_programs = {cfg.n_programs} needs vae.z_dim >= {cfg.n_programs}; got {cfg.vae.z_dim}"
            )
        if cfg.n_programs:
            start = Sig(Type(LIST, dsl.n_features), Type(ATOM, 1))
            graph = ProgramGraph(dsl, start, cfg.search.max_depth, cfg.search.penalty)  # raises if no program
            n_complete = graph.count_complete(limit=cfg.n_programs)
            if n_complete < cfg.n_programs:
                raise ValueError(
                    f"n_programs = {cfg.n_programs} but DSL {dsl.name!r} has only {n_complete} distinct complete "
                    f"program(s) within max_depth {cfg.search.max_depth}"
                )
        FeaturePipeline.for_dsl(dsl)._domain.prepare(train)  # trajectories must fit the DSL's domain

    # ------------------------------------------------------------------ fitting
    def fit(self, train: Trajectories, val: Trajectories | None = None, checkpoint_dir: str | Path | None = None,
            resume: bool = False) -> "NeurosymbolicEncoder":
        """Learn the programs and the VAE. With ``checkpoint_dir`` a checkpoint is written after
        every round; ``resume=True`` continues from the checkpoint found there."""
        if self.threads:
            set_threads(self.threads)
        cfg = self._config()
        dsl = load_dsl(self.dsl)
        self._validate(cfg, dsl, train)
        device = torch.device(self.device)
        if val is None:
            train, val = self._carve_val(train, cfg.learner.val_fraction)

        self.cfg_, self.dsl_ = cfg, dsl
        self.pipeline_ = FeaturePipeline.for_dsl(dsl)
        feats = {"train": self.pipeline_.fit_transform(train).to(device), "val": self.pipeline_.transform(val).to(device)}
        self.normalizer_ = Normalizer.fit(train)
        states = {
            "train": torch.from_numpy(self.normalizer_.transform(train).states).to(device),
            "val": torch.from_numpy(self.normalizer_.transform(val).states).to(device),
        }
        self._start = Sig(Type(LIST, dsl.n_features), Type(ATOM, 1))
        seed_everything(self.seed)
        self.model_ = NeurosymbolicTVAE(train.state_dim, cfg.vae).to(device)
        self.programs_: list[Node] = []
        self.history_: list[dict] = []
        self.step_ = 0  # optimiser steps in all (continuous capacity schedule)
        self.program_step_ = 0  # optimiser steps since the current program was added (capacity schedules)
        self.round_ = 0
        current: Node | None = None
        ckpt = Path(checkpoint_dir) / "checkpoint.pt" if checkpoint_dir else None
        if resume:
            if ckpt is None or not ckpt.is_file():
                raise FileNotFoundError(f"cannot resume: no checkpoint at {ckpt}")
            current = self._restore(torch.load(ckpt, map_location=device, weights_only=True), cfg, device)
            log.info("resuming after round %d (%d program(s) complete)", self.round_, len(self.programs_))

        t0 = time.perf_counter()
        for j in range(len(self.programs_), cfg.n_programs):
            if current is None:
                current = Hole(self._start)
                if j > 0 and cfg.learner.init_from_neural:
                    current, info = self._init_from_neural(j, current, cfg, states, feats, device)
                    if info:
                        self.history_.append({"round": self.round_, "program": j + 1, "kind": "init_from_neural", **info})
                self.model_.add_program(self._compile(current, device))
                self.program_step_ = 0  # Algorithm 1 starts again: both capacities ramp up from 0
            restarts = sum(1 for h in self.history_ if h.get("program") == j + 1 and h.get("restarted"))
            while not is_complete(current):
                current = self._train_round(j, current, cfg, states, feats, device)
                current, info = self._distill(j, current, cfg, feats, device)
                self.history_[-1].update(info)
                self.round_ += 1
                if (is_complete(current) and info["distill_f1"] < cfg.learner.min_distill_f1
                        and restarts < cfg.learner.distill_retries):
                    # no DSL program reproduces what the neural program learned: learn program j again
                    restarts += 1
                    log.warning("program %d: the best complete program %s reproduces its neural parent with F1 %.3f "
                                "only (< learner.min_distill_f1 = %.2f); learning program %d again from a fresh neural "
                                "program (restart %d of %d)", j + 1, current.key(), info["distill_f1"],
                                cfg.learner.min_distill_f1, j + 1, restarts, cfg.learner.distill_retries)
                    self.history_[-1]["restarted"] = True
                    current = Hole(self._start)
                    if cfg.learner.init_from_neural:
                        current, self.history_[-1]["init_from_neural"] = self._init_from_neural(
                            j, current, cfg, states, feats, device)
                    self.program_step_ = 0
                self.model_.set_program(j, self._compile(current, device))
                if not cfg.learner.warm_start:
                    self.model_.reset_vae()
                if is_complete(current) and not cfg.vae.final_epochs:
                    self._finish(j, current)
                self._checkpoint(ckpt, None if len(self.programs_) > j else current)
            if len(self.programs_) == j:
                # Algorithm 1, line 7: train once more with the complete program still trainable
                current = self._train_round(j, current, cfg, states, feats, device,
                                            epochs=cfg.vae.final_epochs, kind="final")
                self.round_ += 1
                self._finish(j, current)
                self._checkpoint(ckpt, None)
            current = None
        if cfg.n_programs and cfg.learner.release_epochs and not any(h.get("kind") == "release" for h in self.history_):
            # every program frozen: the neural latent can let go of what the programs now carry
            losses = self._run_epochs(cfg.learner.release_epochs, cfg, states, feats, device,
                                      label="release (programs frozen)")
            self.history_.append({"round": self.round_, "program": 0, "structure": None, "kind": "release", **losses})
            self.round_ += 1
            self._checkpoint(ckpt, None)
        if cfg.n_programs == 0 and not self.history_:  # a plain trajectory VAE: one round, no programs
            losses = self._run_epochs(cfg.vae.epochs, cfg, states, feats, device, label="VAE (no programs)")
            self.history_.append({"round": 0, "program": 0, "structure": None, "kind": "vae", **losses})
            self.round_ += 1
            self._checkpoint(ckpt, None)
        self.fit_seconds_ = time.perf_counter() - t0
        self.model_.eval()
        return self

    def _init_from_neural(self, j: int, program: Node, cfg: EncoderConfig, states, feats, device) -> tuple[Node, dict]:
        """Pre-train program ``j`` (a hole or a partial program) on the 2-means split of the
        neural latent; returns the program with its trained parameters and a record (empty
        when the latent has no balanced split and the program stays as it was).

        Whatever binary structure the data still hold beyond the frozen programs sits in the
        neural latent once the VAE has trained, and a program started at random tends to
        settle on a copy of an earlier program or on a constant bit instead (local optima of
        the VAE objective: both satisfy the program's capacity while the neural latent keeps
        carrying the rest). Starting the program on the neural latent's dominant split hands
        that structure to the program; the adversary then removes it from the neural latent.
        """
        from sklearn.cluster import KMeans

        def split(x: torch.Tensor) -> np.ndarray:
            self.model_.eval()
            with torch.no_grad():
                mu = torch.cat([self.model_.encoder(x[lo : lo + 8192])[0] for lo in range(0, x.shape[0], 8192)])
            return mu.cpu().numpy()

        z = {k: split(states[k]) for k in ("train", "val")}
        if z["train"].shape[1] == 0:
            return program, {}
        scale = z["train"].std(0) + 1e-8
        km = KMeans(n_clusters=2, n_init=10, random_state=self.seed + j).fit(z["train"] / scale)
        y = {k: km.predict(z[k] / scale).astype(np.int64) for k in z}
        balance = _balance(y["train"])
        if balance < cfg.learner.min_balance:
            log.info("program %d: the neural latent has no balanced 2-means split (minority share %.3f); "
                     "starting from a random program", j + 1, balance)
            return program, {}
        sup = Supervision(feats["train"], torch.as_tensor(y["train"]), feats["val"], torch.as_tensor(y["val"]), 2,
                          name=f"program{j + 1}-init")
        s = cfg.search
        evaluator = CandidateEvaluator(sup, self.dsl_, s.train_settings(), self.seed + 7_777 * (j + 1), str(device),
                                       make_executor("inline", 1), True, False)
        result = evaluator.evaluate([clear_params(program)])[0]
        log.info("program %d starts from the neural latent's 2-means split (minority share %.3f; %s reproduces it "
                 "with validation F1 %.3f)", j + 1, balance, program.key(), result.f1)
        return result.program, {"split_balance": balance, "init_f1": result.f1}

    def _finish(self, j: int, program: Node) -> None:
        """Program ``j`` is complete: freeze it and move on (Algorithm 2)."""
        self._freeze(j)
        self.programs_.append(program)

    def _carve_val(self, train: Trajectories, fraction: float) -> tuple[Trajectories, Trajectories]:
        log.warning("no validation windows given: using %.0f%% of the training windows for validation", 100 * fraction)
        fr = {"train": 1 - fraction, "val": fraction}
        if train.starts is not None and train.groups is not None:
            s = split_by_time(train, fr)
        else:
            s = split_random(train, fr, self.seed)
        return s["train"], s["val"]

    def _compile(self, program: Node, device) -> StackedProgram:
        s = self.cfg_.search
        return StackedProgram([program], self.dsl_, s.max_units, s.min_units, self.seed + self.round_).to(device)

    def _freeze(self, j: int) -> None:
        for p in self.model_.programs[j].parameters():
            p.requires_grad_(False)

    # ------------------------------------------------------------------ one round
    def _train_round(self, j, current, cfg, states, feats, device, epochs: int | None = None,
                     kind: str = "round") -> Node:
        """Train the VAE with the architecture fixed. A program that collapsed (near-constant
        bits) is rescued from the neural latent's split when ``init_from_neural`` (no extra
        training: the next rounds train it), else the round is retried with a fresh program."""
        record = {"round": self.round_, "program": j + 1, "structure": current.key(), "kind": kind}
        for attempt in range(cfg.learner.collapse_retries + 1):
            losses = self._run_epochs(epochs or cfg.vae.epochs, cfg, states, feats, device,
                                      label=f"program {j + 1}, {kind} {self.round_ + 1}", attempt=attempt)
            bits = self._bits(j, feats["train"])
            balance = _balance(bits)
            record.update(losses, balance=balance, attempts=attempt + 1)
            if balance >= cfg.learner.min_balance:
                break
            if cfg.learner.init_from_neural:
                rescued, info = self._init_from_neural(j, clear_params(current), cfg, states, feats, device)
                if info:
                    self.model_.set_program(j, self._compile(rescued, device))
                    balance = _balance(self._bits(j, feats["train"]))
                    log.warning("program %d collapsed in round %d; it restarts from the neural latent's split "
                                "(minority share now %.3f)", j + 1, self.round_ + 1, balance)
                    record["rescued_from_neural"] = {**info, "balance_before": record["balance"], "balance_after": balance}
                    record["balance"] = balance
                    if balance >= cfg.learner.min_balance:
                        break
            log.warning("program %d collapsed in round %d (minority share %.3f < %.3f)%s", j + 1, self.round_ + 1,
                        balance, cfg.learner.min_balance,
                        "; retrying with a fresh program" if attempt < cfg.learner.collapse_retries else "")
            if attempt < cfg.learner.collapse_retries:
                current = clear_params(current)
                self.model_.set_program(j, StackedProgram([current], self.dsl_, cfg.search.max_units,
                                                          cfg.search.min_units, self.seed + 7919 * (attempt + 1)).to(device))
        record["collapsed"] = bool(balance < cfg.learner.min_balance)
        self.history_.append(record)
        return self.model_.programs[j].export(0)

    def _run_epochs(self, epochs, cfg, states, feats, device, label: str, attempt: int = 0) -> dict:
        vae = cfg.vae
        model = self.model_
        model.train()
        seed_everything(self.seed * 100_003 + self.round_ * 101 + attempt)
        gen = torch.Generator(device=device).manual_seed(self.seed * 7_919 + self.round_ * 31 + attempt)
        cpu_gen = torch.Generator().manual_seed(self.seed * 13 + self.round_ * 17 + attempt)
        params = [p for p in model.parameters() if p.requires_grad]
        adv_ids = {id(p) for p in (model.adversary.parameters() if model.adversary is not None else [])}
        opt = LeanAdam([([p for p in params if id(p) not in adv_ids], vae.lr),
                        ([p for p in params if id(p) in adv_ids], vae.lr * vae.adversary_lr_scale)])
        n = states["train"].shape[0]
        j_cur = model.n_programs - 1
        trainable_prog = j_cur >= 0 and any(p.requires_grad for p in model.programs[j_cur].parameters())
        bar = tqdm(range(epochs), desc=label, leave=False, disable=not self.progress)
        last: dict = {}
        for epoch in bar:
            perm = torch.randperm(n, generator=cpu_gen).to(device)
            xs, fs = states["train"][perm], feats["train"][perm]
            sums = torch.zeros(6, device=device)
            n_batches = 0
            for b, lo in enumerate(range(0, n, vae.batch_size)):
                w = LossWeights(
                    cont_coef=vae.beta if vae.cont_capacity is None else vae.gamma_cont,
                    cont_capacity=None if vae.cont_capacity is None
                    else capacity(self.program_step_, vae.cont_capacity, vae.capacity_iters),
                    disc_coef=vae.gamma_disc,
                    disc_capacity=capacity(self.program_step_, vae.disc_capacity, vae.capacity_iters),
                    disc_index=j_cur if trainable_prog else None,
                    disc_term=vae.disc_capacity_term,
                    adversary_weight=vae.adversary_weight,
                )
                loss, terms = model.training_loss(xs[lo : lo + vae.batch_size], fs[lo : lo + vae.batch_size], w, gen)
                if not torch.isfinite(loss):
                    values = {(f"{vae.disc_capacity_term}_disc" if k == "disc" else k): float(v) for k, v in terms.items()}
                    bad = [k for k, v in values.items() if not math.isfinite(v)] or ["total"]
                    raise TrainingError(
                        f"non-finite loss in {label}, epoch {epoch + 1}, batch {b + 1}: term(s) {', '.join(bad)} "
                        f"({values}); the last checkpoint on disk is from the previous round. Lower vae.lr or set "
                        "vae.grad_clip."
                    )
                opt.zero_grad()
                loss.backward()
                if vae.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, vae.grad_clip)
                opt.step()
                self.step_ += 1
                self.program_step_ += 1
                sums += torch.stack([loss.detach(), terms["recon"], terms["kl_cont"], terms["disc"], terms["adv"],
                                     terms["decor"]])
                n_batches += 1
            avg = (sums / max(n_batches, 1)).tolist()
            last = dict(zip(("loss", "recon", "kl_cont", "kl_disc", "adv", "decor"), avg))
            if not vae.decorrelation_weight:
                del last["decor"]
            bar.set_postfix({k: f"{v:.3f}" for k, v in last.items()})
            log.debug("%s epoch %d: %s", label, epoch + 1, last)
        log.info("%s: %s", label, ", ".join(f"{k} {v:.4f}" for k, v in last.items()))
        model.eval()
        return last

    def _bits(self, j: int, feats: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return (self._logits(feats)[:, j] > 0).cpu().numpy().astype(np.int64)

    def _logits(self, feats: torch.Tensor, batch: int = 8192) -> torch.Tensor:
        self.model_.eval()
        with torch.no_grad():
            return torch.cat([self.model_.program_logits(feats[lo : lo + batch]) for lo in range(0, feats.shape[0], batch)])

    # ------------------------------------------------------------------ distillation
    def _distill(self, j, current: Node, cfg: EncoderConfig, feats, device) -> tuple[Node, dict]:
        """Choose the child of the current program that best reproduces its hard labels.

        Program j's bit is defined only up to XOR with the bits of earlier programs: the
        recoded bit gives the same 2^k-cluster partition and the same information. A neural
        program may have learned a recoding the DSL cannot express (e.g. c_x XOR c_y beside
        a frozen c_x), so every recoding by a subset of earlier programs (at most
        ``2^max_recode_programs`` targets) is a distillation target; the best child over all
        targets wins.
        """
        t0 = time.perf_counter()
        y = {k: self._bits(j, feats[k]) for k in ("train", "val")}
        earlier = {k: [self._bits(i, feats[k]) for i in range(j)] for k in ("train", "val")}
        subsets = [()] + [tuple(c) for r in range(1, min(j, cfg.learner.max_recode_programs) + 1)
                          for c in itertools.combinations(range(j), r)]
        best, best_subset, n_trained, tried = None, (), 0, []
        for subset in subsets:
            yt = {k: y[k] ^ (np.bitwise_xor.reduce([earlier[k][i] for i in subset]) if subset else 0) for k in y}
            sup = Supervision(feats["train"], torch.as_tensor(yt["train"]), feats["val"], torch.as_tensor(yt["val"]), 2,
                              name=f"round{self.round_}-xor{subset}")
            ranked, trained = self._rank_children(current, sup, cfg, device)
            n_trained += trained
            choice, collapsed = ranked[0], True
            for cand in ranked:
                if _balance(self._program_bits(cand.result.program, feats["train"], device)) >= cfg.learner.min_balance:
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
        log.info("distilled %s%s -> %s (validation F1 %.4f, %d candidates, %.1f s)", current.key(), recode, child.key(),
                 chosen.result.f1, n_trained, time.perf_counter() - t0)
        info = {
            "distilled_to": child.key(),
            "distilled_program": _dumps(child),
            "distill_f1": chosen.result.f1,
            "distill_xor_with": [i + 1 for i in best_subset],
            "distill_targets": tried,
            "distill_candidates": [{"program": c.node.program.key(), "f": c.f, "f1": c.result.f1} for c in ranked],
            "distill_seconds": time.perf_counter() - t0,
            "distill_collapsed": collapsed,
            "label_balance": _balance(y["train"]),
        }
        return child, info

    def _rank_children(self, current: Node, sup: Supervision, cfg: EncoderConfig, device) -> tuple[list[Scored], int]:
        s = cfg.search
        graph = ProgramGraph(self.dsl_, self._start, s.max_depth, s.penalty, exclude={p.key() for p in self.programs_})
        executor = make_executor(s.executor, s.workers)
        evaluator = CandidateEvaluator(sup, self.dsl_, s.train_settings(), self.seed + self.round_, str(device),
                                       executor, s.fused, self.progress)
        node = SearchNode(clear_params(current), 0.0)
        try:
            if s.strategy == "greedy":
                ranked = greedy_step(graph, evaluator, node)
            else:
                ranked = self._lookahead(graph, evaluator, node, s)
        finally:
            executor.shutdown()
        return ranked, evaluator.n_trained

    def _lookahead(self, graph, evaluator, node: SearchNode, s: SearchSettings) -> list[Scored]:
        """Run a full strategy below ``node``; rank its children so that the child on the path to
        the best complete program comes first."""
        best = run_strategy(s, graph, evaluator, self.seed + self.round_, start=node)
        ranked = greedy_step(graph, evaluator, node)  # cached: these children were trained by the strategy
        path_prefix = _first_step(node.program, best.node.program)
        return sorted(ranked, key=lambda c: (c.node.program.key() != path_prefix, c.f))

    def _program_bits(self, program: Node, feats: torch.Tensor, device) -> np.ndarray:
        module = self._compile(program, device)
        module.eval()
        with torch.no_grad():
            out = torch.cat([module(feats[lo : lo + 8192])[0] for lo in range(0, feats.shape[0], 8192)])
        return (out[:, 0] > 0).cpu().numpy().astype(np.int64)

    # ------------------------------------------------------------------ checkpoints
    def _state(self, current: Node | None) -> dict:
        vae_state = {k: v.detach().cpu().clone() for k, v in self.model_.state_dict().items() if not k.startswith("programs.")}
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "nsprog_version": __version__,
            "config": to_dict(self.cfg_),
            "seed": int(self.seed),
            "state_dim": int(self.model_.state_dim),
            "vae_state": vae_state,
            "programs_done": [_dumps(p) for p in self.programs_],
            "current": None if current is None else _dumps(current),
            "round": int(self.round_),
            "step": int(self.step_),
            "program_step": int(self.program_step_),
            "normalizer": self.normalizer_.to_dict(),
            "pipeline": _plain(self.pipeline_.to_dict()),
            "dsl": _plain(self.dsl_.to_dict()),
            "history": _plain(self.history_),
        }

    def _checkpoint(self, path: Path | None, current: Node | None) -> None:
        if path is not None:
            torch_save_atomic(self._state(current), path)

    def _restore(self, ck: dict, cfg: EncoderConfig, device) -> Node | None:
        _check_checkpoint(ck, "checkpoint")
        saved = ck["config"]
        if saved != to_dict(cfg):
            diff = [k for k in set(saved) | set(to_dict(cfg)) if saved.get(k) != to_dict(cfg).get(k)]
            raise ValueError(f"cannot resume: the checkpoint was made with a different config (sections {sorted(diff)})")
        self.programs_ = [program_from_json(_loads(s), self.dsl_, require_params=True) for s in ck["programs_done"]]
        current = None if ck["current"] is None else program_from_json(_loads(ck["current"]), self.dsl_, True)
        self.round_, self.step_, self.program_step_ = int(ck["round"]), int(ck["step"]), int(ck["program_step"])
        self.history_ = list(ck["history"])
        self._rebuild(self.programs_ + ([current] if current is not None else []), device)
        self.model_.load_state_dict(ck["vae_state"], strict=False)
        self.normalizer_ = Normalizer.from_dict(ck["normalizer"])
        self.pipeline_ = FeaturePipeline.from_dict(ck["pipeline"])
        return current

    def _rebuild(self, programs: list[Node], device) -> None:
        for j, p in enumerate(programs):
            self.model_.add_program(self._compile(p, device))
            if j < len(self.programs_):
                self._freeze(j)

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(...) first")

    def program_proba(self, traj: Trajectories) -> np.ndarray:
        """``[N, k]`` probability of each program bit being 1."""
        self._check_fitted()
        feats = self.pipeline_.transform(traj).to(next(self.model_.parameters()).device)
        return torch.sigmoid(self._logits(feats))[:, : len(self.programs_)].cpu().numpy()

    def predict(self, traj: Trajectories) -> np.ndarray:
        """Cluster id per window: the k-bit code of the programs (program 1 is the most significant bit)."""
        bits = (self.program_proba(traj) > 0.5).astype(np.int64)
        k = bits.shape[1]
        return (bits * (1 << np.arange(k - 1, -1, -1))).sum(1) if k else np.zeros(len(traj), dtype=np.int64)

    def predict_proba(self, traj: Trajectories) -> np.ndarray:
        """``[N, 2^k]`` cluster probabilities (programs' bits treated as independent)."""
        p = self.program_proba(traj)
        k = p.shape[1]
        codes = (np.arange(2**k)[:, None] >> np.arange(k - 1, -1, -1)[None, :]) & 1  # [2^k, k]
        return np.prod(np.where(codes[None] == 1, p[:, None, :], 1 - p[:, None, :]), axis=-1)

    def transform(self, traj: Trajectories) -> np.ndarray:
        """Posterior means of the neural latent, ``[N, z_dim - k]``."""
        self._check_fitted()
        dev = next(self.model_.parameters()).device
        states = torch.from_numpy(self.normalizer_.transform(traj).states).to(dev)
        self.model_.eval()
        with torch.no_grad():
            return torch.cat([self.model_.encoder(states[lo : lo + 8192])[0] for lo in range(0, len(traj), 8192)]).cpu().numpy()

    def program_set(self) -> ProgramSet:
        self._check_fitted()
        programs = {f"program_{i + 1}": p for i, p in enumerate(self.programs_)}
        return ProgramSet(self.dsl_, self.pipeline_, programs, {k: [0, 1] for k in programs})

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write ``checkpoint.pt`` (plain tensors and numbers) and ``programs.json`` into ``directory``."""
        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        torch_save_atomic(self._state(None), d / "checkpoint.pt")
        self.program_set().save(d / "programs.json")
        return d

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> "NeurosymbolicEncoder":
        path = Path(directory)
        path = path / "checkpoint.pt" if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        try:
            ck = torch.load(path, map_location=device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
            raise ValueError(f"{path} is not a readable nsprog checkpoint ({exc})") from exc
        _check_checkpoint(ck, str(path))
        cfg = from_dict(EncoderConfig, ck["config"], source=str(path))
        dsl = DSL.from_dict(ck["dsl"], source=str(path))
        est = cls(dsl=dsl, n_programs=cfg.n_programs, vae=cfg.vae, search=cfg.search, learner=cfg.learner,
                  seed=int(ck["seed"]), device=device, progress=False)
        est.cfg_, est.dsl_ = cfg, dsl
        est.round_ = int(ck["round"])
        est.model_ = NeurosymbolicTVAE(int(ck["state_dim"]), cfg.vae).to(device)
        est.programs_ = [program_from_json(_loads(s), dsl, require_params=True) for s in ck["programs_done"]]
        current = None if ck["current"] is None else program_from_json(_loads(ck["current"]), dsl, True)
        est._rebuild(est.programs_ + ([current] if current is not None else []), device)
        missing, unexpected = est.model_.load_state_dict(ck["vae_state"], strict=False)
        bad = [k for k in missing if not k.startswith("programs.")] + list(unexpected)
        if bad:
            raise ValueError(f"{path}: model weights do not match the saved architecture ({bad[:5]})")
        est.normalizer_ = Normalizer.from_dict(ck["normalizer"])
        est.pipeline_ = FeaturePipeline.from_dict(ck["pipeline"])
        est.history_ = list(ck["history"])
        est.step_ = int(ck["step"])
        est.model_.eval()
        return est


def _first_step(node: Node, target: Node) -> str:
    """Key of the child of ``node`` on the path to the complete program ``target``: the first
    hole of ``node`` filled with the production ``target`` has there (its arguments as holes)."""
    path, _, _ = holes(node)[0]
    sub = {p: n for p, _, n in iter_nodes(target)}[path]
    skeleton = replace(sub.with_children(tuple(Hole(c.sig) for c in sub.children)) if sub.children else sub, params=None)
    return replace_at(node, path, skeleton).key()


def _dumps(program: Node) -> str:
    import json

    return json.dumps(program_to_json(program))


def _loads(text: str) -> dict:
    import json

    return json.loads(text)


def _plain(obj: Any) -> Any:
    """Only types that ``torch.load(weights_only=True)`` accepts."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def _check_checkpoint(ck: Any, where: str) -> None:
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{where} is not an nsprog encoder checkpoint")
    if int(ck.get("version", 0)) > CHECKPOINT_VERSION:
        raise ValueError(f"{where} has checkpoint version {ck.get('version')}, newer than this nsprog reads")
    missing = {"config", "vae_state", "programs_done", "current", "round", "step", "normalizer", "pipeline", "dsl"} - set(ck)
    if missing:
        raise ValueError(f"{where} is missing {sorted(missing)}")
