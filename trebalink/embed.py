"""Embeddings of a trained TREBA model: every window of a dataset file, or every frame of
tracking recordings.

* :func:`embed_windows`: the posterior mean of each window (``[N, z]``).
* :func:`embed_frames`: one embedding per frame of a recording, from the window of the
  model's length centred on that frame (frame ``t`` is the window's frame ``n_frames // 2``,
  the frame the tasks read); at the ends of the recording the window is padded by repeating
  the first or last frame. Windows are built batch by batch from an index table, never all
  at once.
* :func:`embed_to_file`: either of the above for a file, written to HDF5.

Embeddings are computed in eval mode from the posterior mean in batches; a window's
embedding does not depend on the batch it was computed in (up to float rounding of the
matrix products, below 1e-5 in the tests). The data is checked against the model first:
input dimension, window length, keypoint layout and the task set.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch

from nsprog.data.io import FORMAT_NAME as DATASET_FORMAT, load_dataset
from nsprog.data.missing import interpolate_gaps
from nsprog.data.trajectories import Trajectories
from nsprog.utils import atomic_write, resolve_device
from trebalink.checkpoint import TrainedTreba, read_model
from trebalink.labelling import bind_tasks

__all__ = ["centred_index", "embed_windows", "embed_frames", "embed_to_file", "EmbedReport", "FORMAT"]

log = logging.getLogger("nsprog")

FORMAT = "trebalink-embeddings"


def centred_index(n: int, length: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """``[stop - start, length]`` frame indices of the windows centred on frames
    ``start..stop-1`` of an ``n``-frame recording, clamped to ``[0, n-1]`` (edge padding)."""
    stop = n if stop is None else stop
    centre = length // 2
    t = torch.arange(start, stop)[:, None] + torch.arange(length)[None, :] - centre
    return t.clamp_(0, n - 1)


def embed_windows(model: TrainedTreba, traj: Trajectories, device: str | torch.device = "cpu",
                  batch_size: int = 1024, where: str = "data") -> np.ndarray:
    """``[N, z]`` embeddings of the windows of ``traj`` (checked against the model first)."""
    model.check(traj, where)
    bound = bind_tasks(model.tasks, traj) if model.net.cfg.condition_on_tasks else None
    return model.embed_states(torch.from_numpy(traj.states), torch.device(device), batch_size, bound)


@torch.no_grad()
def embed_frames(model: TrainedTreba, frames: np.ndarray, device: str | torch.device = "cpu",
                 batch_size: int = 1024, bound=None) -> np.ndarray:
    """``[n, z]``: the embedding of every frame of raw ``frames [n, D]`` (finite values)."""
    frames_t = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    n = frames_t.shape[0]
    device = torch.device(device)
    out = []
    for lo in range(0, n, batch_size):
        idx = centred_index(n, model.n_frames, lo, min(n, lo + batch_size))
        out.append(model.embed_states(frames_t[idx], device, batch_size, bound))
    return np.concatenate(out) if out else np.zeros((0, model.z_dim), np.float32)


def _fill(values: np.ndarray, names: list[str], where: str) -> np.ndarray:
    """Frames ``[n, D]`` with every missing value filled: linearly inside gaps, by the nearest
    present value at the ends of the recording."""
    filled, _ = interpolate_gaps(values, max_gap=len(values))
    bad = ~np.isfinite(filled)
    if bad.any():
        empty = np.flatnonzero(bad.all(0))
        if empty.size:
            raise ValueError(f"{where}: {names[empty[0]]!r} is missing in every frame; it cannot be embedded")
        t = np.arange(len(filled))[:, None]
        ok = np.isfinite(filled)
        first = np.where(ok, t, len(filled)).min(0)
        last = np.where(ok, t, -1).max(0)
        cols = np.arange(filled.shape[1])
        filled = np.where(t < first, filled[first, cols], filled)
        filled = np.where(t > last, filled[last, cols], filled)
    return filled.astype(np.float32)


@dataclass
class EmbedReport:
    out: Path
    kind: str  # "frames" or "windows"
    items: dict[str, int] = field(default_factory=dict)  # recording / split -> rows
    seconds: float = 0.0


def _is_dataset(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format")
    except OSError:
        return False
    return (fmt.decode() if isinstance(fmt, bytes) else fmt) == DATASET_FORMAT


def _recording_frames(model: TrainedTreba, rec, opts: dict) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from nsprog.data.recording import repair_missing

    layout = model.layout or {}
    if layout.get("kind", "keypoints") != "keypoints":
        raise ValueError(f"{rec.source or rec.name}: the model was trained on {layout.get('kind')!r} windows; embedding "
                         "every frame reads keypoint recordings only. Cut windows with `nsprog data convert` and embed "
                         "that dataset file instead")
    want_i, want_k = layout.get("individuals"), layout.get("keypoints")
    try:
        rec = rec.select(want_i, want_k)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{rec.source or rec.name}: the recording lacks what the model reads (individuals "
                         f"{want_i}, keypoints {want_k}): {exc}") from None
    rec, _ = repair_missing(rec, opts.get("min_confidence"), opts.get("zero_as_missing", True), opts.get("max_gap", 5),
                            log_level=logging.DEBUG)
    flat, names = rec.frames()
    complete = rec.valid & np.isfinite(flat).all(1)
    return _fill(flat, names, rec.source or rec.name), complete, names


def embed_to_file(run_dir: str | Path, data: str | Path, out: str | Path, batch_size: int = 1024,
                  device: str = "auto", split: str = "all", format: str = "auto", force: bool = False,
                  loader_options: dict | None = None) -> EmbedReport:
    """Embed ``data`` with the model of ``run_dir`` and write ``out`` (HDF5, atomically).

    ``data`` is an nsprog dataset file (every window of ``split``, or of every split for
    ``all``) or tracking file(s) (every frame of every recording; the keypoints and the
    missing-data repair the model's training windows used)."""
    import time

    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"--out {out} exists; choose another file or pass --force to replace it")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1; got {batch_size}")
    dev = resolve_device(device)
    model = read_model(run_dir, dev)
    data = Path(data)
    t0 = time.perf_counter()
    report = EmbedReport(out, "windows" if _is_dataset(data) else "frames")
    results: dict[str, dict] = {}
    if report.kind == "windows":
        splits = load_dataset(data)
        names = list(splits) if split == "all" else [split]
        for name in names:
            if name not in splits:
                raise KeyError(f"{data} has no split {name!r}; available: {', '.join(splits)} (or all)")
            traj = splits[name]
            z = embed_windows(model, traj, dev, batch_size, where=f"{data} (split {name})")
            results[name] = {"embeddings": z, "labels": traj.labels, "groups": traj.groups, "starts": traj.starts,
                             "factors": traj.factors, "label_names": traj.label_names}
    else:
        from nsprog.data.loaders import load_recordings

        if not data.exists() and not any(ch in str(data) for ch in "*?["):
            raise FileNotFoundError(f"--data {data} does not exist")
        recs = load_recordings(data, format=format, **(loader_options or {}))
        opts = dict(model.window_options or {})
        for rec in recs:
            frames, complete, names = _recording_frames(model, rec, opts)
            where = f"{rec.source or rec.name}"
            template = Trajectories(states=frames[centred_index(len(frames), model.n_frames, 0, 1).numpy()],
                                    feature_names=names, metadata={"layout": rec.select(
                                        model.layout.get("individuals"), model.layout.get("keypoints")).layout()})
            model.check(template, where)
            bound = bind_tasks(model.tasks, template) if model.net.cfg.condition_on_tasks else None
            z = embed_frames(model, frames, dev, batch_size, bound)
            idx = centred_index(len(frames), model.n_frames).numpy()
            results[rec.name] = {"embeddings": z, "complete": complete[idx].all(1), "labels": rec.labels,
                                 "label_names": rec.label_names, "source": rec.source, "fps": rec.fps}
    report.items = {k: len(v["embeddings"]) for k, v in results.items()}
    report.seconds = time.perf_counter() - t0

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["kind"] = report.kind
            f.attrs["model"] = str(Path(model.source).resolve())
            f.attrs["data"] = str(data)
            f.attrs["z_dim"] = model.z_dim
            f.attrs["window"] = model.n_frames
            f.attrs["tasks"] = json.dumps(model.tasks.names)
            root = f.create_group("splits" if report.kind == "windows" else "recordings")
            for name, r in results.items():
                g = root.create_group(name)
                g.create_dataset("embeddings", data=r["embeddings"].astype(np.float32))
                for key in ("labels", "groups", "starts", "complete"):
                    if r.get(key) is not None:
                        g.create_dataset(key, data=np.asarray(r[key]))
                for k, v in (r.get("factors") or {}).items():
                    g.create_dataset(f"factors/{k}", data=v)
                g.attrs["label_names"] = json.dumps(list(r["label_names"]) if r.get("label_names") else None)
                if "source" in r:
                    g.attrs["source"] = str(r["source"] or "")
                    g.attrs["fps"] = float(r["fps"]) if r.get("fps") else float("nan")

    atomic_write(out, write)
    return report
