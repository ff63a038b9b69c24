"""Start-up time of the command lines: wall time of fresh processes for ``--help`` and a few
commands that fail at once (so only start-up and argument checking are timed).

    python benchmarks/bench_startup.py [--repeats 7]

Target: ``nsprog --help`` under 1.5 s on 2 cores. Commands import only what they need, so
listing the commands loads neither torch nor scikit-learn.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = [
    ["nsprog", "--help"],
    ["nsprog", "fit", "--help"],
    ["nsprog", "data", "info", "--help"],
    ["nsprog", "show", "no-such-folder"],
    ["trebalink", "--help"],
]


def wall(cmd: list[str]) -> float:
    module = "nsprog" if cmd[0] == "nsprog" else "trebalink"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", module, *cmd[1:]], capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    t_python = statistics.median(wall_python() for _ in range(args.repeats))
    print(f"python -c pass (the interpreter alone): {t_python:.3f} s")
    for cmd in COMMANDS:
        times = [wall(cmd) for _ in range(args.repeats)]
        print(f"{' '.join(cmd):<32} median {statistics.median(times):.3f} s  (min {min(times):.3f}, max {max(times):.3f})"
              + ("   target < 1.5 s" if cmd == ["nsprog", "--help"] else ""))


def wall_python() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], capture_output=True)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
