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
import resource
import time

import torch

from nsprog.config import load_config
from nsprog.commands.fit import FitRunConfig
from nsprog.data.sources import load_splits
from nsprog.learner import NeurosymbolicEncoder
from nsprog.metrics import cluster_metrics
from nsprog.utils import set_threads


def profile_step(est: NeurosymbolicEncoder, cfg: FitRunConfig, splits, device: str, n: int = 200) -> None:
    """Time one VAE step by its parts on the fitted model (forward, backward, optimiser)."""
    from nsprog.search.training import make_adam

    model = est.model_
    for p in model.programs.parameters():
        p.requires_grad_(True)
    model.train()
    x = torch.from_numpy(est.normalizer_.transform(splits["train"]).states[:32]).to(device)
    f = est.pipeline_.transform(splits["train"])[:32].to(device)
    opt = make_adam([p for p in model.parameters() if p.requires_grad], 1e-4)
    gen = torch.Generator(device=device).manual_seed(0)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    t = {"encoder (BiGRU, one kernel call)": 0.0, "rest of forward": 0.0, "backward": 0.0, "optimiser": 0.0}
    for i in range(n + 10):
        sync()
        t0 = time.perf_counter()
        mu, logvar = model.encoder(x)
        sync()
        t1 = time.perf_counter()
        out = model(x, f, gen)
        loss = out["recon"] + out["kl_cont"] + out["kl_disc"].sum() + out["adv"]
        sync()
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sync()
        t3 = time.perf_counter()
        opt.step()
        sync()
        t4 = time.perf_counter()
        if i >= 10:
            t["encoder (BiGRU, one kernel call)"] += t1 - t0
            t["rest of forward"] += (t2 - t1) - (t1 - t0)
            t["backward"] += t3 - t2
            t["optimiser"] += t4 - t3
    total = sum(t.values())
    print(f"\nprofile of one training step (batch 32, {n} steps, means):")
    for k, v in t.items():
        print(f"   {k:<34} {1e3 * v / n:7.3f} ms  ({100 * v / total:4.1f}%)")
    print(f"   {'total':<34} {1e3 * total / n:7.3f} ms   (the encoder's forward also runs inside 'rest of forward')")


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
    splits = load_splits(cfg.data, cfg.seed)
    print(f"torch {torch.__version__}, device {args.device}, {args.threads} thread(s); config {args.config}")
    print(f"{len(splits['train'])} training windows, batch {cfg.vae.batch_size}, {cfg.vae.epochs} VAE epochs per round, "
          f"{cfg.n_programs} programs")
    est = NeurosymbolicEncoder(cfg.dsl, cfg.n_programs, cfg.vae, cfg.search, cfg.learner, seed=cfg.seed,
                               device=args.device, progress=False)
    t0 = time.perf_counter()
    est.fit(splits["train"], splits["val"])
    total = time.perf_counter() - t0
    rounds = [h for h in est.history_ if "distill_seconds" in h]
    distill = sum(h["distill_seconds"] for h in rounds)
    epochs = sum(cfg.vae.epochs for _ in rounds) + (cfg.vae.final_epochs * cfg.n_programs)
    vae_time = total - distill
    print(f"\nwhole run: {total:.1f} s  ({len(rounds)} rounds, {epochs} VAE epochs, {est.step_} optimiser steps)")
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
