"""Format table, auto-detection and the one entry point for reading tracking files.

``FORMATS`` is an explicit table name -> :class:`Format` (loader, file suffixes, a cheap
validator used by auto-detection, a description and the loader's options). Every loader
returns a list of :class:`~nsprog.data.recording.Recording` (files such as CalMS21 JSON
hold many sequences). ::

    from nsprog.data.loaders import load_recording, load_recordings, list_formats
    rec = load_recording("data/samples/mabe22/EGS8X2MN4SSUGFWAV976.h5")        # format="auto"
    recs = load_recordings("calms21_task1_train.json", format="calms21_json")
    rec = load_recording("video_DLC.csv", fps=25, annotations="video.csv")        # bout labels

Auto-detection tries the validator of every format whose suffix matches the file; exactly
one must accept it. Folders and glob patterns load every matching file (recordings are
named after their files; duplicate names are an error).
"""

from __future__ import annotations

import glob as _glob
import inspect
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from nsprog.data.annotations import DEFAULT_ANNOTATION_FPS, load_annotations
from nsprog.data.loaders._common import FormatError
from nsprog.data.loaders.arrays import detect_arrays, load_arrays, save_arrays
from nsprog.data.loaders.calms21 import detect_calms21_json, detect_pickle_npy, load_calms21_json, load_pickle_npy
from nsprog.data.loaders.dlc import detect_dlc_csv, detect_dlc_h5, load_dlc_csv, load_dlc_h5
from nsprog.data.loaders.jabs import detect_jabs_h5, load_jabs_h5
from nsprog.data.loaders.simba import detect_simba_csv, load_simba_csv
from nsprog.data.loaders.sleap import detect_sleap_h5, load_sleap_h5
from nsprog.data.loaders.sportvu import detect_sportvu_csv, detect_sportvu_json, load_sportvu_csv, load_sportvu_json
from nsprog.data.recording import Recording

__all__ = [
    "Format",
    "FORMATS",
    "FormatError",
    "list_formats",
    "detect_format",
    "load_recording",
    "load_recordings",
    "attach_annotations",
    "save_arrays",
]

log = logging.getLogger("nsprog")


@dataclass(frozen=True)
class Format:
    """One readable file format."""

    name: str
    load: Callable[..., list[Recording]]
    suffixes: tuple[str, ...]
    detect: Callable[[Path], bool]
    description: str
    kind: str = "pose"  # "pose" (animals with keypoints) or "team" (players on a field)

    @property
    def options(self) -> list[str]:
        """Keyword options of the loader (besides the path)."""
        return [p for p in inspect.signature(self.load).parameters if p != "path"]


#: name -> Format. Add new formats here explicitly (no registration by import side effect).
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("arrays", load_arrays, (".npz",), detect_arrays,
               "plain arrays in an .npz (position, confidence, names, fps, labels, frame_<name>; see docs)"),
        Format("calms21_json", load_calms21_json, (".json",), detect_calms21_json,
               "CalMS21 JSON {group: {sequence: {keypoints, scores, annotations, metadata}}}, 2 mice x 7 keypoints"),
        Format("pickle_npy", load_pickle_npy, (".npy",), detect_pickle_npy,
               "CalMS21 / MABe .npy pickles; read only with trusted=True"),
        Format("dlc_csv", load_dlc_csv, (".csv",), detect_dlc_csv,
               "DeepLabCut CSV, 3 or 4 header rows, also re-saved by pandas with an index column"),
        Format("dlc_h5", load_dlc_h5, (".h5", ".hdf5"), detect_dlc_h5,
               "DeepLabCut pandas HDF5 (fixed or table layout), read with h5py"),
        Format("sleap_h5", load_sleap_h5, (".h5", ".hdf5"), detect_sleap_h5,
               "SLEAP analysis HDF5 (tracks, node_names, track_occupancy, point_scores)"),
        Format("jabs_h5", load_jabs_h5, (".h5", ".hdf5"), detect_jabs_h5,
               "JABS pose HDF5 (poseest/points stored as y, x; confidence; instance_count)"),
        Format("simba_csv", load_simba_csv, (".csv",), detect_simba_csv,
               "SimBA-style CSV with <bodypart>_<animal>_{x,y,p} columns (e.g. CRIM13 samples)"),
        Format("sportvu_json", load_sportvu_json, (".json",), detect_sportvu_json,
               "raw SportVU game JSON (events[].moments[]), overlapping events de-duplicated by time", "team"),
        Format("sportvu_csv", load_sportvu_csv, (".csv",), detect_sportvu_csv,
               "processed SportVU CSV (x_loc, y_loc, team_id, player_id, game_clock, of_def_flag, ...)", "team"),
    )
}


def list_formats() -> list[dict]:
    """Every format with its suffixes, kind, loader options and description."""
    return [
        {"name": f.name, "suffixes": list(f.suffixes), "kind": f.kind, "options": f.options, "description": f.description}
        for f in FORMATS.values()
    ]


def _format_choices() -> str:
    return ", ".join(FORMATS)


def detect_format(path: str | Path) -> str:
    """The one format whose suffix and validator accept ``path``; raises otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    candidates = [f for f in FORMATS.values() if suffix in f.suffixes]
    if not candidates:
        known = sorted({s for f in FORMATS.values() for s in f.suffixes})
        raise FormatError(
            path, f"unknown file suffix {suffix!r}; readable suffixes: {', '.join(known)}; formats: {_format_choices()}"
        )
    hits = []
    for f in candidates:
        try:
            ok = f.detect(path)
        except (OSError, UnicodeDecodeError, ValueError):
            ok = False
        if ok:
            hits.append(f.name)
    if len(hits) == 1:
        return hits[0]
    tried = ", ".join(f.name for f in candidates)
    if not hits:
        findings = []
        for f in candidates:  # each candidate loader's own diagnosis says what is wrong for it
            try:
                f.load(path)
            except Exception as exc:  # noqa: BLE001 - collected into one message
                text = " ".join(str(exc).split()).replace(str(path), "the file")
                findings.append(f"as {f.name}: {text[:300]}")
            else:
                return f.name
        hint = ""
        if suffix == ".csv":
            try:
                from nsprog.data.annotations import END_COLUMNS, START_COLUMNS, _find
                from nsprog.data.loaders._common import read_csv_rows

                head = read_csv_rows(path, limit=1)
                if head and _find(head[0], START_COLUMNS) is not None and _find(head[0], END_COLUMNS) is not None:
                    hint = "; it looks like a behaviour bout table: pass it as annotations= (CLI --annotations)"
            except (OSError, UnicodeDecodeError):
                pass
        raise FormatError(path, f"matches none of the formats for {suffix!r} files ({tried}){hint}; pass format= "
                                f"(CLI --format). What each format found: " + "; ".join(findings))
    raise FormatError(path, f"matches several formats ({', '.join(hits)}); choose one with format=")


def _expand(path: str | Path) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        known = {s for f in FORMATS.values() for s in f.suffixes}
        files = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in known)
        if not files:
            raise FileNotFoundError(f"folder {p} holds no file with a readable suffix ({', '.join(sorted(known))})")
        return files
    if any(ch in str(path) for ch in "*?["):
        files = sorted(Path(x) for x in _glob.glob(str(path)) if Path(x).is_file())
        if not files:
            raise FileNotFoundError(f"no file matches the pattern {path}")
        return files
    if not p.is_file():
        raise FileNotFoundError(f"input file not found: {p}")
    return [p]


def load_recordings(
    path: str | Path,
    format: str = "auto",
    annotations: str | Path | None = None,
    **options,
) -> list[Recording]:
    """Every recording in a file, folder or glob pattern.

    Parameters
    ----------
    path : file, folder or glob pattern
    format : str, default "auto"
        A name from :data:`FORMATS` (see :func:`list_formats`) or ``"auto"`` (per file).
        In a folder, ``auto`` skips files that match no format (e.g. annotation tables).
    annotations : path, optional
        Behaviour labels for a single recording: a bout table (``from``/``to`` seconds,
        ``type``) or per-frame labels (see :mod:`nsprog.data.annotations`).
    **options
        Loader options (``fps``, ``trusted``, ``possession``, ...); unknown options raise
        an error listing the valid ones for the format.
    """
    if format != "auto" and format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; available: auto, {_format_choices()}")
    files = _expand(path)
    folder = len(files) > 1 or Path(path).is_dir()
    recs: list[Recording] = []
    for f in files:
        if format == "auto":
            try:
                name = detect_format(f)
            except FormatError:
                if folder:
                    log.info("%s: skipped (matches no format)", f)
                    continue
                raise
        else:
            name = format
        fmt = FORMATS[name]
        unknown = sorted(set(options) - set(fmt.options))
        if unknown:
            raise ValueError(
                f"format {name!r} has no option(s) {unknown}; its options are: {', '.join(fmt.options) or 'none'}"
            )
        recs.extend(fmt.load(f, **options))
    if not recs:
        raise FileNotFoundError(f"no readable recording found in {path}")
    names = [r.name for r in recs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(
            f"duplicate recording names {dup} in {path}: files in different folders share a name, or a file "
            "was listed twice; load them separately or rename them"
        )
    if annotations is not None:
        if len(recs) != 1:
            raise ValueError(f"annotations= applies to one recording; {path} holds {len(recs)}")
        recs = [attach_annotations(recs[0], annotations)]
    return recs


def attach_annotations(rec: Recording, annotations: str | Path) -> Recording:
    """``rec`` with per-frame labels read from a bout table or per-frame label file.

    Bout times are converted with the recording's fps, or 25 fps (logged) when unknown.
    """
    fps = rec.fps
    if fps is None:
        log.warning("%s: fps unknown; assuming %g fps for the annotation times", rec.source, DEFAULT_ANNOTATION_FPS)
        fps = DEFAULT_ANNOTATION_FPS
    labels, names = load_annotations(annotations, rec.n_frames, fps)
    return replace(rec.with_labels(labels, names), metadata={**rec.metadata, "annotations": str(annotations)})


def load_recording(
    path: str | Path,
    format: str = "auto",
    sequence: str | int | None = None,
    annotations: str | Path | None = None,
    **options,
) -> Recording:
    """One recording; ``sequence`` (name or index) picks one from files that hold several."""
    recs = load_recordings(path, format=format, annotations=None, **options)
    if sequence is not None:
        names = [r.name for r in recs]
        if isinstance(sequence, int) and not isinstance(sequence, bool):
            if not 0 <= sequence < len(recs):
                raise IndexError(f"{path} holds {len(recs)} recordings; sequence={sequence} is out of range")
            recs = [recs[sequence]]
        elif str(sequence) in names:
            recs = [recs[names.index(str(sequence))]]
        else:
            raise KeyError(f"{path} has no sequence {sequence!r}; available: {', '.join(names[:20])}")
    if len(recs) != 1:
        raise ValueError(
            f"{path} holds {len(recs)} recordings ({', '.join(r.name for r in recs[:5])}"
            f"{', ...' if len(recs) > 5 else ''}); pick one with sequence= or use load_recordings"
        )
    return recs[0] if annotations is None else attach_annotations(recs[0], annotations)
