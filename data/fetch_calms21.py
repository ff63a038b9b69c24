"""Download CalMS21 task 1 (Sun et al., 2021) and convert it to nsprog windows.

    python data/fetch_calms21.py                    # into data/calms21/
    python data/fetch_calms21.py --out /big/disk --url URL_OF_THE_TASK1_ZIP

The archive holds ``calms21_task1_train.json`` and ``calms21_task1_test.json`` (keypoints of
two mice, 7 MARS keypoints each, 30 Hz, per-frame labels attack / investigation / mount /
other). Both are converted with ``nsprog data convert`` into 21-frame windows (label of the
centre frame, as in the CalMS21 protocol), one .h5 file each; experiment configs split the
training file further by sequence. Needs internet access; nothing else in nsprog does.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

DEFAULT_URL = "https://data.caltech.edu/records/s0vdx-0k302/files/task1_classic_classification.zip?download=1"
RECORD_PAGE = "https://data.caltech.edu/records/s0vdx-0k302"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="data/calms21", help="folder for the archive, the JSON files and the .h5 files")
    ap.add_argument("--url", default=DEFAULT_URL, help="address of the task-1 zip archive")
    ap.add_argument("--no-convert", action="store_true", help="only download and unpack")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    archive = out / "task1_classic_classification.zip"
    if not archive.is_file():
        print(f"downloading {args.url} -> {archive}")
        tmp = archive.with_suffix(".zip.part")
        try:
            urllib.request.urlretrieve(args.url, tmp)
        except OSError as exc:
            print(f"download failed ({exc}); fetch the task-1 archive by hand from {RECORD_PAGE} and pass "
                  f"--url file://PATH or place it at {archive}", file=sys.stderr)
            return 1
        tmp.rename(archive)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if m.endswith(".json")]
            zf.extractall(out, members)
    except zipfile.BadZipFile:
        print(f"{archive} is not a zip archive; delete it and download again", file=sys.stderr)
        return 1
    found = {Path(m).name: out / m for m in members}
    print("unpacked:", ", ".join(sorted(found)) or "no JSON files")
    if args.no_convert:
        return 0
    for name in ("calms21_task1_train.json", "calms21_task1_test.json"):
        if name not in found:
            print(f"{name} is not in the archive; skipped", file=sys.stderr)
            continue
        cmd = ["nsprog", "data", "convert", str(found[name]), "--format", "calms21_json", "--window", "21",
               "--reduce", "centre", "--out", str(out / name.replace(".json", ".h5"))]
        print(" ".join(cmd))
        subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
