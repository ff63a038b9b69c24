"""Rewrite the sample output of ``nsprog fit --quick`` in README.md from a fresh run.

    python experiments/readme_quick_output.py

Runs the command into a temporary folder, then replaces the block between the
``<!-- quick-output:start -->`` and ``<!-- quick-output:end -->`` markers with what it
printed and how long it took, so the README never shows numbers nobody measured.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- quick-output:start -->", "<!-- quick-output:end -->"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "nsprog", "fit", "--quick", "--quiet", "--out", f"{tmp}/run"],
                             capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - t0
    if run.returncode:
        print(run.stderr, file=sys.stderr)
        return run.returncode
    printed = "\n".join(line for line in run.stdout.splitlines() if not line.startswith("results in"))
    block = (f"{START}\n```\n$ nsprog fit --quick\n{printed}\n```\n\n({seconds:.0f} s wall on {os.cpu_count()} "
             f"CPU cores, {platform.machine()}, one thread; load average before the run "
             f"{os.getloadavg()[0]:.1f}.)\n{END}")
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        print(f"README.md has no {START} ... {END} block", file=sys.stderr)
        return 1
    text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    readme.write_text(text, encoding="utf-8")
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
