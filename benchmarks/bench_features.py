"""Feature throughput of the mouse DSL 1 features (windows per second).

Builds N synthetic two-mouse windows of 21 frames in the CalMS21 layout (2 mice x 7
keypoints x (x, y) = 28 state dims), then times ``Domain.compute`` of the DSL 1 features
(head-body angle and social angle of both mice, speed of both mice, nose-tail and
nose-nose distance) end to end: layout resolution, batching, every feature, the
finiteness check. The target is 100x the reference's per-window Python cost of about
1.5 ms, i.e. >= 65,000 windows/s on 2 cores.

    python benchmarks/bench_features.py                 # 100k windows, 1 thread
    python benchmarks/bench_features.py --windows 20000 --repeats 5 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from nsprog.data.loaders.calms21 import CALMS21_KEYPOINTS, CALMS21_MICE
from nsprog.data.trajectories import Trajectories
from nsprog.features import get_domain
from nsprog.features.mouse import DSL1_FEATURES

TARGET = 65_000.0


def synthetic_mouse_windows(n: int, frames: int = 21, seed: int = 0) -> Trajectories:
    """Two mice as a rigid 7-point skeleton moving and turning smoothly, plus keypoint noise."""
    rng = np.random.default_rng(seed)
    # body template (pixels), nose pointing along +x
    template = np.array(
        [[30, 0], [18, 8], [18, -8], [12, 0], [-12, 10], [-12, -10], [-30, 0]], dtype=np.float32
    )  # nose, ear_l, ear_r, neck, hip_l, hip_r, tail_base
    t = np.arange(frames, dtype=np.float32)[None, :, None]
    out = np.empty((n, frames, 2, 7, 2), dtype=np.float32)
    for m in range(2):
        start = rng.uniform(100, 900, size=(n, 1, 2)).astype(np.float32)
        vel = rng.normal(0, 3, size=(n, 1, 2)).astype(np.float32)
        heading0 = rng.uniform(-np.pi, np.pi, size=(n, 1, 1)).astype(np.float32)
        turn = rng.normal(0, 0.05, size=(n, 1, 1)).astype(np.float32)
        centre = start + vel * t  # [n, frames, 2]
        h = heading0 + turn * t  # [n, frames, 1]
        c, s = np.cos(h), np.sin(h)
        rot_x = template[None, None, :, 0] * c - template[None, None, :, 1] * s
        rot_y = template[None, None, :, 0] * s + template[None, None, :, 1] * c
        out[:, :, m, :, 0] = centre[..., None, 0] + rot_x
        out[:, :, m, :, 1] = centre[..., None, 1] + rot_y
    out += rng.normal(0, 0.5, size=out.shape).astype(np.float32)
    layout = {
        "kind": "keypoints", "individuals": list(CALMS21_MICE), "keypoints": list(CALMS21_KEYPOINTS),
        "dims": ["x", "y"], "order": ["individual", "keypoint", "dim"], "groups": ["", ""],
    }
    return Trajectories(states=out.reshape(n, frames, -1), metadata={"layout": layout})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--windows", type=int, default=100_000, help="number of synthetic windows (default 100000)")
    p.add_argument("--frames", type=int, default=21, help="frames per window (default 21)")
    p.add_argument("--repeats", type=int, default=3, help="timed repetitions; the median is reported (default 3)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--batch-size", type=int, default=65536, help="windows per batch inside Domain.compute")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    traj = synthetic_mouse_windows(args.windows, args.frames)
    domain = get_domain("mouse", keypoints="calms21")
    domain.compute(traj.subset(slice(0, 1000)), DSL1_FEATURES)  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        feats = domain.compute(traj, DSL1_FEATURES, batch_size=args.batch_size)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    rate = args.windows / med
    print(f"mouse DSL 1 features: {len(DSL1_FEATURES)} features x {args.frames} frames, output {tuple(feats.shape)}")
    print(f"threads={torch.get_num_threads()}  windows={args.windows}  runs={', '.join(f'{t:.3f}s' for t in times)}")
    print(f"throughput: {rate:,.0f} windows/s (median of {args.repeats}; {1e6 * med / args.windows:.2f} us per window)")
    print(f"target:     {TARGET:,.0f} windows/s (100x the reference's ~1.5 ms per window)  ->  "
          f"{'PASS' if rate >= TARGET else 'BELOW TARGET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
