"""TREBA speed at the reference mouse configuration, in one run.

Prints: task labelling of the 10 TREBA mouse tasks (microseconds per window; the vectorised
path beside one window at a time through the same functions, which is how the reference
labels), stage-1 and stage-2 training throughput (windows/s; stage 1 at the default
approximator size and at the reference's 256 units, stage 2 with torch's GRU and with
nsprog's native GRU kernel) and embedding throughput, at the reference configuration:
contrastive + consistency losses, 10 mouse tasks, batch 128, windows of 21 frames, 256
hidden units. The windows are synthetic two-mouse poses (random walks of a 7-keypoint
skeleton with CalMS21's keypoint names in a 1024 x 570 frame): throughput does not depend
on what the mice do.

    python benchmarks/bench_treba.py                          # CPU, 2 threads
    python benchmarks/bench_treba.py --threads 1
    python benchmarks/bench_treba.py --device cuda            # also the largest batch and bf16 autocast

The reference implementation measured on this project's 2-core machines (DESIGN.md section
11): labelling 1.5-2.5 ms per window, stage 1 about 147 windows/s, stage 2 about 8 windows/s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time

import numpy as np
import torch

from nsprog.data import Trajectories
from nsprog.seeds import SeedStreams
from nsprog.utils import limit_threads, resolve_device
from trebalink.augment import AugmentSettings, Augmenter
from trebalink.model import ModelSettings, TrebaNet
from trebalink.programs.mouse import expert_tasks
from trebalink.train import Normalise, TrainingData, TrainLoop, TrainSettings

KEYPOINTS = ["nose", "ear_left", "ear_right", "neck", "hip_left", "hip_right", "tail_base"]
LAYOUT = {"kind": "keypoints", "individuals": ["resident", "intruder"], "keypoints": KEYPOINTS, "dims": ["x", "y"],
          "order": ["individual", "keypoint", "dim"]}
SHAPE = np.array([[10, 0], [5, 3], [5, -3], [0, 0], [-10, 3], [-10, -3], [-20, 0]], np.float64) * 2.5
REF = {"label_us": (1500.0, 2500.0), "stage1": 147.0, "stage2": 8.0}


def mouse_windows(n: int, frames: int = 21, seed: int = 0) -> Trajectories:
    """Two mice walking and turning: ``n`` windows of ``frames`` frames, 2 x 7 keypoints."""
    rng = np.random.default_rng(seed)
    heading = rng.uniform(-np.pi, np.pi, (n, 1, 2)) + np.cumsum(rng.normal(0, 0.08, (n, frames, 2)), axis=1)
    step = rng.gamma(2.0, 2.0, (n, 1, 2))
    vel = np.stack([np.cos(heading), np.sin(heading)], -1) * step[..., None]
    centre = rng.uniform([150, 100], [870, 470], (n, 1, 2, 2)) + np.cumsum(vel, axis=1)
    c, s = np.cos(heading)[..., None, None], np.sin(heading)[..., None, None]
    rot = np.concatenate([np.concatenate([c, -s], -1), np.concatenate([s, c], -1)], -2)  # [n, T, 2, 2, 2]
    body = np.einsum("ntmij,kj->ntmki", rot, SHAPE)
    pos = centre[:, :, :, None, :] + body + rng.normal(0, 1.5, (n, frames, 2, 7, 2))
    turn = heading + np.cumsum(rng.normal(0, 0.15, (n, frames, 2)), axis=1)  # the head turns against the body
    pos[:, :, :, 0] = pos[:, :, :, 3] + 25.0 * np.stack([np.cos(turn), np.sin(turn)], -1)
    return Trajectories(states=pos.reshape(n, frames, -1).astype(np.float32), metadata={"layout": LAYOUT})


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_labelling(device: torch.device, n: int, loop_n: int) -> dict:
    traj = mouse_windows(n, seed=1)
    bound = expert_tasks().bind(traj)
    states = torch.from_numpy(traj.states).to(device)
    bound.labels(states[:256])  # warm-up
    sync(device)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        labels = bound.labels(states)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    one = torch.from_numpy(traj.states[:loop_n])
    t0 = time.perf_counter()
    rows = [bound.labels(one[i : i + 1]) for i in range(loop_n)]  # the reference's way: one window at a time
    per_window = time.perf_counter() - t0
    assert torch.equal(torch.cat(rows), labels[:loop_n].cpu())
    return {"windows": n, "vectorised_us": best / n * 1e6, "one_at_a_time_us": per_window / loop_n * 1e6}


def make_loop(device, n_train, batch, approx_units, precision="fp32", native=False, seed=0):
    train, val = mouse_windows(n_train, seed=2), mouse_windows(256, seed=3)
    tasks = expert_tasks().fit(train, force=True).tasks
    bound = tasks.bind(train)
    y_train = bound.label_windows(train)[1]
    y_val = bound.label_windows(val)[1]
    cfg = ModelSettings(approximator_rnn_dim=approx_units)  # defaults: z 32, 256 units, weights 10 / 1
    with SeedStreams(seed).torch_rng("model"):
        net = TrebaNet(train.state_dim, tasks.n_classes, cfg).to(device)
    augmenter = Augmenter.fit(AugmentSettings(), train)
    data = TrainingData(torch.from_numpy(train.states), torch.from_numpy(y_train), torch.from_numpy(val.states),
                        torch.from_numpy(y_val))
    settings = TrainSettings(batch_size=batch, stage1_epochs=2, stage2_epochs=2, precision=precision, native_gru=native)
    return TrainLoop(net, data, settings, bound, augmenter, Normalise.fit(train, augmenter.kind), seed, device,
                     progress=False)


def bench_training(device, n_train, batch, approx_units, precision="fp32", native=False) -> dict:
    loop = make_loop(device, n_train, batch, approx_units, precision, native)
    state = loop.run()
    last = {h["stage"]: h for h in state["history"]}  # the second epoch of each stage (the first warms up)
    return {f"stage{k}": n_train / last[k]["seconds"] for k in (1, 2)} | {
        "approximator_units": approx_units, "batch": batch, "precision": precision, "native_gru": native}


def bench_embedding(device, n, batch) -> float:
    loop = make_loop(device, 256, 128, 32)
    traj = mouse_windows(n, seed=4)
    net = loop.net.eval()
    states = torch.from_numpy(traj.states)
    with torch.no_grad():
        net.embed(loop.normalise(states[:batch].to(device)))
        sync(device)
        t0 = time.perf_counter()
        for lo in range(0, n, batch):
            net.embed(loop.normalise(states[lo : lo + batch].to(device)))
        sync(device)
    return n / (time.perf_counter() - t0)


def largest_batch(device, start: int = 128, limit: int = 65536) -> int:
    """The largest power-of-two multiple of 128 for which a stage-2 step fits on the GPU."""
    ok, b = 0, start
    while b <= limit:
        try:
            loop = make_loop(device, b, b, 32)
            loop.settings.stage1_epochs, loop.settings.stage2_epochs = 0, 1
            loop.run()
            ok = b
            b *= 2
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
    return ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--threads", type=int, default=2, help="torch / BLAS threads on CPU (default 2)")
    p.add_argument("--windows", type=int, default=1024, help="training windows per stage measurement (default 1024)")
    p.add_argument("--label-windows", type=int, default=20000)
    p.add_argument("--quick", action="store_true", help="fewer windows (a smoke test, not a measurement)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    logging.getLogger("nsprog").setLevel(logging.ERROR)  # the synthetic poses leave a task or two constant: fine here
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        print(f"bench_treba: {exc}", file=sys.stderr)
        return 2
    n = 256 if args.quick else args.windows
    load = os.getloadavg()
    print(f"device {device}, {args.threads} thread(s); load average before: {load[0]:.2f} (other processes share "
          "the machine when it is above 0)", flush=True)
    out: dict = {"device": str(device), "threads": args.threads, "torch": torch.__version__, "load_before": load[0],
                 "python": platform.python_version(),
                 "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    with limit_threads(args.threads if device.type == "cpu" else None):
        lab = bench_labelling(device, 2000 if args.quick else args.label_windows, 100 if args.quick else 500)
        out["labelling"] = lab
        print(f"task labelling, 10 mouse tasks: {lab['vectorised_us']:.2f} us/window vectorised over "
              f"{lab['windows']} windows; {lab['one_at_a_time_us']:.0f} us/window one at a time (same functions); "
              f"reference 1500-2500 us/window -> {1500 / lab['vectorised_us']:.0f}-{2500 / lab['vectorised_us']:.0f}x",
              flush=True)
        runs = [dict(approx_units=32), dict(approx_units=256)]
        if device.type == "cpu":
            runs.append(dict(approx_units=32, native=True))
        else:
            runs.append(dict(approx_units=32, precision="bf16"))
        out["training"] = []
        for r in runs:
            res = bench_training(device, n, 128, **r)
            out["training"].append(res)
            tag = f"approximators {res['approximator_units']} units, {res['precision']}" + (
                ", native GRU kernel" if res["native_gru"] else ", torch GRU")
            print(f"training at batch 128 ({tag}): stage 1 {res['stage1']:.0f} windows/s "
                  f"({res['stage1'] / REF['stage1']:.1f}x the reference's {REF['stage1']:.0f}), stage 2 "
                  f"{res['stage2']:.1f} windows/s ({res['stage2'] / REF['stage2']:.1f}x the reference's "
                  f"{REF['stage2']:.0f})", flush=True)
        emb = bench_embedding(device, 4096 if args.quick else 20000, 1024)
        out["embedding_windows_per_s"] = emb
        print(f"embedding: {emb:.0f} windows/s (batch 1024)", flush=True)
        if device.type == "cuda":
            big = largest_batch(device)
            out["largest_batch"] = big
            if big:
                for prec in ("fp32", "bf16"):
                    res = bench_training(device, max(big, n), big, 32, prec)
                    out["training"].append(res)
                    print(f"training at the largest batch that fits ({big}, {prec}): stage 1 {res['stage1']:.0f} "
                          f"windows/s, stage 2 {res['stage2']:.0f} windows/s", flush=True)
    out["load_after"] = os.getloadavg()[0]
    print(f"load average after: {out['load_after']:.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
