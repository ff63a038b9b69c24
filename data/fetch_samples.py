"""Fetch the small public tracking samples that the README's examples and the shipped
real-data configs use, into ``data/samples/`` (ignored by git).

    python data/fetch_samples.py                       # every sample, from its public source
    python data/fetch_samples.py --only sportvu openfield
    python data/fetch_samples.py --dest ~/nsprog-samples
    python data/fetch_samples.py --from /path/to/a/copy  # link files from a local copy instead

Every file is downloaded from the public repository it was published in, at a fixed commit,
and checked against the SHA-256 this project tested with (a mismatch is reported, the file is
kept). ``SOURCES.md`` in the destination lists each file with its source and licence; respect
the licence of each source before redistributing a file. Needs internet access (GitHub's
raw-file host); nothing else in nsprog does.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

RAW = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"


@dataclass(frozen=True)
class Sample:
    dest: str  # path under the destination folder (the name the docs and configs use)
    repo: str
    commit: str
    path: str  # path in the repository
    sha256: str
    licence: str
    what: str

    @property
    def group(self) -> str:
        return self.dest.split("/")[0]

    def url(self, template: str = RAW) -> str:
        return template.format(repo=self.repo, commit=self.commit, path=self.path)


_DLC2ACTION = "amathislab/DLC2action"
_DLC2ACTION_LICENCE = "the licence of github.com/amathislab/DLC2action (see that repository)"
SAMPLES = [
    Sample("sportvu/0021500400.csv", "samghelms/nba_movement_analysis", "0082ff51accdd4365344f6a704e27dcdae309b65",
           "data/processed_games/0021500400.csv",
           "2535aa5c9370eb4a843f0d50ce587baa3c794167dd484347fe3a3cebc6f2da08",
           "derived from the public NBA SportVU logs; see github.com/samghelms/nba_movement_analysis",
           "NBA SportVU player tracking, game 0021500400, period 1 (processed CSV)"),
    Sample("openfield/8_01_A_190507134142_DLC.csv", _DLC2ACTION, "5047669dfc813135bee51c988ad48723ca5fce40",
           "tests/data/8_01_A_190507134142DeepCut_resnet50_Blockcourse1May9shuffle1_1030000.csv",
           "2bb220a7822bac78259f1b01d6b4309c3b251ed2ce61972b9ca0c7f7dd341653", _DLC2ACTION_LICENCE,
           "one mouse in an open field, DeepLabCut keypoints (video 8_01_A)"),
    Sample("openfield/8_01_A_190507134142.csv", _DLC2ACTION, "5047669dfc813135bee51c988ad48723ca5fce40",
           "tests/data/8_01_A_190507134142.csv",
           "be32a96aa2fcceeeb3c20fb569556ae065f93fa2d9e872eabb7658e1988e00c6", _DLC2ACTION_LICENCE,
           "behaviour bouts (rearing, grooming) of video 8_01_A"),
    Sample("openfield/12_01_A_190507144429_DLC.csv", _DLC2ACTION, "5047669dfc813135bee51c988ad48723ca5fce40",
           "tests/data/12_01_A_190507144429DeepCut_resnet50_Blockcourse1May9shuffle1_1030000.csv",
           "766aca3d9cbf75447c76a6107f80eda80ec334250aea03c229ac7d470e26c55e", _DLC2ACTION_LICENCE,
           "one mouse in an open field, DeepLabCut keypoints (video 12_01_A)"),
    Sample("openfield/12_01_A_190507144429.csv", _DLC2ACTION, "5047669dfc813135bee51c988ad48723ca5fce40",
           "tests/data/12_01_A_190507144429.csv",
           "8420e5b0d560ba97d4a497008603fa2f3f442455d861317e2c5df1b1acf56196", _DLC2ACTION_LICENCE,
           "behaviour bouts of video 12_01_A"),
    *(Sample(f"crim13/Tvideo_{v}_trim.csv", _DLC2ACTION, c, f"tests/data/crim_sample/Tvideo_{v}_trim.csv", h,
             _DLC2ACTION_LICENCE, f"CRIM13 resident-intruder mice, SimBA-style CSV (video {v})")
      for v, c, h in (("8", "ba09c911b888ddfdf03ce499c3febdbebb6639dd",
                       "0a075ec427827454bf70e70a48fd25f3f55b36393c0083b7c0fc14346e906400"),
                      ("25", "100f6d5129bb61b662b5920701988f987254ea6a",
                       "9544b044496153932c37176974499b16b7685c0e617ec5fc19dc28083ad0e80f"),
                      ("80", "100f6d5129bb61b662b5920701988f987254ea6a",
                       "8da42fbf9dbf794e1da71e5f41018de4cdaef21af195dda2a97f56432edbe91f"))),
    Sample("mabe22/EGS8X2MN4SSUGFWAV976.h5", "AdaptiveMotorControlLab/AmadeusGPT",
           "5b8ad43c72155d4f4e997c3f3ca6fbfa230037ab", "examples/MABe/EGS8X2MN4SSUGFWAV976.h5",
           "2fd63cba97a21c0d7653a0a80d1d83776436e84956353ea854aaf88a5d5cee08",
           "the licence of github.com/AdaptiveMotorControlLab/AmadeusGPT (see that repository)",
           "MABe 2022 mouse triplet clip, DeepLabCut-style HDF5"),
    Sample("jabs/sample_pose_est_v3.h5", "KumarLabJax/JABS-behavior-classifier",
           "cdb15f51d230606a9df00650f4ad0aa4c8d1a3d9", "tests/data/sample_pose_est_v3.h5",
           "e3fe53cc5339bec5b0800779e4e01e30e3cf579bf2f754ce26407316696ba934", "MIT (jabs/LICENSE)",
           "JABS multi-mouse pose estimation (HDF5)"),
    Sample("jabs/LICENSE", "KumarLabJax/JABS-behavior-classifier", "c7c3e4ee5030545ea86096ac8c8f1caa943028c3",
           "LICENSE", "84b47f50b817960dbf4c05d092e16b9a3af058545d0023b6a00eb71f533064ab", "MIT",
           "the licence of the JABS sample"),
]
GROUPS = sorted({s.group for s in SAMPLES})


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, target: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:  # noqa: S310 - fixed https URLs
            shutil.copyfileobj(r, f)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fetch(dest: Path, only: list[str] | None = None, local: Path | None = None, force: bool = False,
          base_url: str = RAW) -> list[str]:
    """Fetch (or link, from ``local``) the samples of ``only`` groups into ``dest``; returns
    the problems found (checksum mismatches, failed downloads)."""
    problems = []
    chosen = [s for s in SAMPLES if only is None or s.group in only]
    for s in chosen:
        target = dest / s.dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and not force:
            status = "present"
        elif local is not None:
            source = local / s.dest
            if not source.is_file():
                problems.append(f"{s.dest}: not in {local}")
                continue
            if target.exists() or target.is_symlink():
                target.unlink()
            target.symlink_to(source.resolve())
            status = f"linked to {source}"
        else:
            try:
                _download(s.url(base_url), target)
                status = "downloaded"
            except OSError as exc:
                problems.append(f"{s.dest}: download from {s.url(base_url)} failed ({exc})")
                continue
        digest = sha256(target)
        if digest != s.sha256:
            problems.append(f"{s.dest}: SHA-256 {digest[:12]}... differs from the copy nsprog was tested with "
                            f"({s.sha256[:12]}...); the file is kept")
        print(f"{s.dest:<42} {status}")
    lines = ["# Tracking samples", "", "Fetched by `python data/fetch_samples.py`. Respect each source's licence.", "",
             "| file | what | source | licence |", "|---|---|---|---|"]
    lines += [f"| {s.dest} | {s.what} | {s.url()} | {s.licence} |" for s in chosen]
    (dest / "SOURCES.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", default=str(Path(__file__).resolve().parent / "samples"),
                    help="destination folder (default: data/samples next to this script)")
    ap.add_argument("--only", nargs="+", choices=GROUPS, help="only these samples")
    ap.add_argument("--from", dest="local", default=None, help="link the files from this local copy instead of "
                    "downloading them (same layout: sportvu/, openfield/, ...)")
    ap.add_argument("--force", action="store_true", help="fetch files that are already present again")
    ap.add_argument("--base-url", default=RAW, help="address template of a mirror, with {repo}, {commit} and {path} "
                    f"(default {RAW})")
    args = ap.parse_args(argv)
    dest = Path(args.dest).expanduser()
    problems = fetch(dest, args.only, Path(args.local).expanduser() if args.local else None, args.force,
                     args.base_url)
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    print(f"samples in {dest} (sources and licences: {dest / 'SOURCES.md'})")
    return 1 if any("failed" in p or "not in" in p for p in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
