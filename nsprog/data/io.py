"""nsprog's own dataset file: HDF5 (h5py) with a schema version, plus ``.npz`` export.

Layout: root attributes ``format = "nsprog-trajectories"`` and ``schema_version``; one
HDF5 group per split (``train``, ``val``, ``test``, ...) holding ``states`` and, when
present, ``labels``, ``groups``, ``starts`` and ``factors/<name>``; JSON attributes
``feature_names``, ``label_names`` and ``metadata``. Files are written atomically.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Mapping

import h5py
import numpy as np

from nsprog._version import __version__
from nsprog.data.trajectories import Trajectories
from nsprog.utils import atomic_write

__all__ = ["FORMAT_NAME", "SCHEMA_VERSION", "DatasetFileError", "save_dataset", "load_dataset", "load_split", "export_npz"]

FORMAT_NAME = "nsprog-trajectories"
SCHEMA_VERSION = 1


class DatasetFileError(ValueError):
    """A file is not a readable nsprog dataset."""


def _as_splits(data: Trajectories | Mapping[str, Trajectories]) -> dict[str, Trajectories]:
    if isinstance(data, Trajectories):
        return {"all": data}
    if not data:
        raise ValueError("nothing to save: expected a Trajectories or a non-empty mapping split name -> Trajectories")
    for k, v in data.items():
        if not isinstance(v, Trajectories):
            raise TypeError(f"split {k!r} is a {type(v).__name__}; expected Trajectories")
    return dict(data)


def save_dataset(path: str | Path, data: Trajectories | Mapping[str, Trajectories], attrs: dict | None = None) -> Path:
    """Write splits to an HDF5 file (atomically). A single Trajectories is stored as split ``all``."""
    splits = _as_splits(data)

    def write(tmp: Path) -> None:
        # built in memory and written with plain file I/O: HDF5 itself does not survive a disk
        # that fills up mid-write (it crashes the process), a Python write raises a clean OSError
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["nsprog_version"] = __version__
            f.attrs["attrs"] = json.dumps(attrs or {})
            f.attrs["splits"] = json.dumps(list(splits))
            for name, t in splits.items():
                g = f.create_group(name)
                g.create_dataset("states", data=t.states, compression="gzip", compression_opts=4)
                for key in ("labels", "groups", "starts"):
                    val = getattr(t, key)
                    if val is not None:
                        g.create_dataset(key, data=val)
                fg = g.create_group("factors")
                for k, v in t.factors.items():
                    fg.create_dataset(k, data=v)
                g.attrs["feature_names"] = json.dumps(list(t.feature_names) if t.feature_names else None)
                g.attrs["label_names"] = json.dumps(list(t.label_names) if t.label_names else None)
                # "path" says where windows were read from; it is not part of the data
                g.attrs["metadata"] = json.dumps({k: v for k, v in t.metadata.items() if k != "path"})
        tmp.write_bytes(buffer.getbuffer())

    return atomic_write(path, write)


def _read_split(path: Path, f: h5py.File, name: str) -> Trajectories:
    g = f[name]
    if "states" not in g:
        raise DatasetFileError(f"{path}: split {name!r} has no 'states' dataset")

    def opt(key):
        return g[key][()] if key in g else None

    try:
        return Trajectories(
            states=g["states"][()],
            labels=opt("labels"),
            groups=opt("groups"),
            starts=opt("starts"),
            factors={k: g["factors"][k][()] for k in g["factors"]} if "factors" in g else {},
            feature_names=json.loads(g.attrs.get("feature_names", "null")),
            label_names=json.loads(g.attrs.get("label_names", "null")),
            metadata={**json.loads(g.attrs.get("metadata", "{}")), "path": f"{path} (split {name})"},
        )
    except (ValueError, KeyError) as exc:
        raise DatasetFileError(f"{path}: split {name!r}: {exc}") from exc


def load_dataset(path: str | Path, splits: list[str] | None = None) -> dict[str, Trajectories]:
    """Read splits from an nsprog HDF5 file, refusing other files and newer schema versions."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetFileError(
            f"{path} is not an HDF5 file ({exc}); expected an nsprog dataset written by `nsprog data ...`"
        ) from exc
    with f:
        fmt = f.attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode()
        if fmt != FORMAT_NAME:
            raise DatasetFileError(
                f"{path} is an HDF5 file but not an nsprog dataset (attribute 'format' is {fmt!r}, "
                f"expected {FORMAT_NAME!r}); convert it with `nsprog data convert`"
            )
        version = int(f.attrs.get("schema_version", -1))
        if version > SCHEMA_VERSION:
            raise DatasetFileError(
                f"{path} has schema version {version}, newer than this nsprog ({__version__}) reads "
                f"(<= {SCHEMA_VERSION}); upgrade nsprog"
            )
        if version < 1:
            raise DatasetFileError(f"{path} has an invalid schema_version {version}")
        listed = json.loads(f.attrs.get("splits", "[]")) or [k for k in f.keys()]
        available = [s for s in listed if s in f]
        wanted = splits or available
        missing = [s for s in wanted if s not in f]
        if missing:
            damaged = [s for s in listed if s not in f]
            note = f" (the file lists {damaged} but they are missing: a damaged file)" if damaged else ""
            raise DatasetFileError(f"{path} has no split(s) {missing}; available: {', '.join(available) or 'none'}"
                                   f"{note}")
        return {name: _read_split(path, f, name) for name in wanted}


def load_split(path: str | Path, split: str = "test") -> Trajectories:
    """One split of a dataset file, or every split concatenated for ``split="all"``."""
    data = load_dataset(path)
    if split == "all":
        return Trajectories.concatenate(list(data.values())) if len(data) > 1 else next(iter(data.values()))
    if split not in data:
        raise KeyError(f"{path} has no split {split!r}; available: {', '.join(data)} (or 'all')")
    return data[split]


def export_npz(path: str | Path, data: Trajectories | Mapping[str, Trajectories]) -> Path:
    """Write splits as ``<split>/states``, ``<split>/labels``, ... arrays in one ``.npz`` file."""
    arrays: dict[str, np.ndarray] = {}
    for name, t in _as_splits(data).items():
        arrays[f"{name}/states"] = t.states
        arrays[f"{name}/actions"] = t.actions
        for key in ("labels", "groups", "starts"):
            val = getattr(t, key)
            if val is not None:
                arrays[f"{name}/{key}"] = val
        for k, v in t.factors.items():
            arrays[f"{name}/factors/{k}"] = v
    return atomic_write(path, lambda p: np.savez_compressed(open(p, "wb"), **arrays))
