"""Speed of a neurosymbolic-encoder fit: wall time per VAE epoch, per distillation step and for
the whole 2-program synthetic run at the paper's settings (batch 32, 50 VAE epochs per round,
4 rounds = 200 VAE epochs), plus peak memory and a profile of one VAE training step.

    python benchmarks/bench_fit.py                      # the full paper-settings run (minutes)
    python benchmarks/bench_fit.py --epochs 5           # a shorter run (per-epoch figures are the same)
    python benchmarks/bench_fit.py --device cuda        # the same on a GPU

Target on 2 CPU cores: the whole run in under 5 minutes (the public reference took 1,254 s).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import time

import torch

from nsprog.config import load_config
from nsprog.commands.fit import FitRunConfig
from nsprog.data.sources import load_splits
from nsprog.learner import NeurosymbolicEncoder
from nsprog.metrics import cluster_metrics
from nsprog.native import native_status
from nsprog.utils import set_threads


def profile_step(est: NeurosymbolicEncoder, cfg: FitRunConfig, splits, device: str, n: int = 300) -> None:
    """Time one VAE training step by its parts on the fitted model (the last program made
    trainable again), as the learner runs it: encoder, programs, loss head, backward, Adam."""
    from nsprog.models.nstvae import LossWeights
    from nsprog.optim import make_adam

    model = est.model_
    for p in model.programs[-1].parameters() if model.n_programs else []:
        p.requires_grad_(True)
    model.train()
    x = torch.from_numpy(est.normalizer_.transform(splits["train"]).states[:32]).to(device)
    f = est.pipeline_.transform(splits["train"])[:32].to(device)
    opt = make_adam([p for p in model.parameters() if p.requires_grad], 1e-4)
    gen = torch.Generator(device=device).manual_seed(0)
    w = LossWeights(cfg.vae.gamma_cont, cfg.vae.cont_capacity, cfg.vae.gamma_disc, cfg.vae.disc_capacity,
                    model.n_programs - 1 if model.n_programs else None, cfg.vae.disc_capacity_term,
                    cfg.vae.adversary_weight)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    parts = {"encoder forward (BiGRU)": 0.0, "programs forward": 0.0, "loss head forward": 0.0, "backward": 0.0,
             "optimiser": 0.0}
    for i in range(n + 20):
        sync()
        t0 = time.perf_counter()
        with torch.no_grad():
            model.encoder(x)
        sync()
        t1 = time.perf_counter()
        with torch.no_grad():
            model.program_logits(f)
        sync()
        t2 = time.perf_counter()
        loss, _ = model.training_loss(x, f, w, gen)
        sync()
        t3 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sync()
        t4 = time.perf_counter()
        opt.step()
        sync()
        t5 = time.perf_counter()
        if i >= 20:
            parts["encoder forward (BiGRU)"] += t1 - t0
            parts["programs forward"] += t2 - t1
            parts["loss head forward"] += (t3 - t2) - (t2 - t0)  # training_loss runs encoder and programs again
            parts["backward"] += t4 - t3
            parts["optimiser"] += t5 - t4
    total = sum(parts.values())
    print(f"\nprofile of one training step (batch 32, {n} steps, means; {native_status()}):")
    for k, v in parts.items():
        print(f"   {k:<26} {1e3 * v / n:7.3f} ms  ({100 * v / total:4.1f}%)")
    print(f"   {'total':<26} {1e3 * total / n:7.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="experiments/configs/synthetic_2prog.yaml")
    ap.add_argument("--epochs", type=int, default=None, help="VAE epochs per round (default: the config's 50)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    set_threads(args.threads)
    overrides = [f"device={args.device}", f"seed={args.seed}", f"threads={args.threads}"]
    if args.epochs:
        overrides.append(f"vae.epochs={args.epochs}")
    cfg = load_config(FitRunConfig, args.config, overrides)
    load0 = os.getloadavg()[0]
    t_data = time.perf_counter()
    splits = load_splits(cfg.data, cfg.seed)
    data_seconds = time.perf_counter() - t_data
    print(f"torch {torch.__version__}, device {args.device}, {args.threads} thread(s); config {args.config}")
    print(f"{len(splits['train'])} training windows, batch {cfg.vae.batch_size}, {cfg.vae.epochs} VAE epochs per round, "
          f"{cfg.n_programs} programs")
    est = NeurosymbolicEncoder(cfg.dsl, cfg.n_programs, cfg.vae, cfg.search, cfg.learner, seed=cfg.seed,
                               device=args.device, progress=False)
    t0, c0 = time.perf_counter(), time.process_time()
    est.fit(splits["train"], splits["val"])
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    rounds = [h for h in est.history_ if "distill_seconds" in h]
    distill = sum(h["distill_seconds"] for h in rounds)
    epochs = est.step_ / math.ceil(len(splits["train"]) / cfg.vae.batch_size)
    vae_time = total - distill
    print(f"\nwhole run: {total:.1f} s wall, {cpu:.1f} s CPU  ({len(rounds)} rounds, {epochs:.0f} VAE epochs, "
          f"{est.step_} optimiser steps; load average before {load0:.2f}, after {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs)")
    print(f"   data generation and features: {data_seconds:.1f} s")
    print(f"   VAE training: {vae_time:.1f} s = {vae_time / max(epochs, 1):.2f} s per epoch = "
          f"{1e3 * vae_time / max(est.step_, 1):.2f} ms per step")
    print(f"   distillation: {distill:.1f} s in {len(rounds)} steps = {distill / max(len(rounds), 1):.2f} s per step")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"   peak memory (max RSS): {peak:.0f} MB" + (
        f"; GPU {torch.cuda.max_memory_allocated() / 2**20:.0f} MB" if args.device.startswith("cuda") else ""))
    print("   target: < 300 s for the paper-settings run (public reference: 1,254 s, 531 MB)")
    test = splits["test"]
    m = cluster_metrics(test.labels, est.predict(test))
    print(f"   programs: {[p.key() for p in est.programs_]}; test NMI {m['nmi']:.3f}, purity {m['purity']:.3f}")
    profile_step(est, cfg, splits, args.device)


if __name__ == "__main__":
    main()
