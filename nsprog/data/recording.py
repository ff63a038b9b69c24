"""The one object every loader returns: a recording of keypoints over time.

``position[time, individual, keypoint, 2]`` (float32, NaN = missing, ``[..., 0]`` is x and
``[..., 1]`` is y) with ``confidence[time, individual, keypoint]`` (NaN = unknown), the
names of keypoints and individuals, the group (team, cage, species, ...) of each
individual, the frame rate, optional per-frame labels with their vocabulary, optional
per-frame extra columns (``frame_data``: game clock, offense group, segment id, ...) and
the source file.

Build one with :meth:`Recording.from_arrays`; it validates every field, reports all
problems at once in one :class:`RecordingError` and coerces harmless input (a lone name
becomes a one-item list, an fps <= 0 becomes ``None`` with a warning). Windows are cut
with :meth:`Recording.to_trajectories`, which repairs missing keypoints first
(:func:`repair_missing`).

Special ``frame_data`` columns understood here:

``segment``
    Integer id of a contiguous stretch of time (e.g. between two long pauses of the game
    clock). Windows never span two segments.
``offense``
    Index into :attr:`Recording.group_names` of the group on offense at that frame
    (-1 when unknown); used by :func:`nsprog.data.teams.team_windows`.
``attack_direction``
    +1 when the offense attacks towards ``x = field length``, -1 towards ``x = 0``, 0 when
    unknown; used to orient team windows.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from nsprog.data.missing import RepairReport, repair_arrays
from nsprog.data.trajectories import Trajectories
from nsprog.data.windows import REDUCTIONS, cut_windows, window_starts

__all__ = ["Recording", "RecordingError", "NoWindowsError", "recordings_to_trajectories", "repair_missing"]

log = logging.getLogger("nsprog")


class NoWindowsError(ValueError):
    """No complete window could be cut from a recording (too short, or too many gaps)."""


class RecordingError(ValueError):
    """A recording's arrays are inconsistent; ``problems`` lists every issue found."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f" from {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid recording{where} ({len(self.problems)} problem(s)):\n{lines}")


def _names(value: Any, n: int, default_prefix: str, field_name: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return tuple(f"{default_prefix}_{i}" for i in range(n))
    if isinstance(value, (str, bytes)):
        value = [value]  # a lone name becomes a one-item list
    vals = [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(value, dtype=object).ravel()]
    if len(vals) != n:
        problems.append(f"{field_name} has {len(vals)} entries; expected {n}, one per {default_prefix}")
        return tuple(vals)
    dup = sorted({v for v in vals if vals.count(v) > 1})
    if dup and field_name != "individual_groups":
        problems.append(f"{field_name} must be unique; repeated: {', '.join(map(repr, dup))}")
    return tuple(vals)


@dataclass(frozen=True, eq=False)
class Recording:
    """Keypoints of one recording (validated on construction; see the module docstring).

    Use :meth:`from_arrays` to build one; the fields are documented there.
    """

    position: np.ndarray
    confidence: np.ndarray | None = None
    keypoint_names: Sequence[str] | None = None
    individual_names: Sequence[str] | None = None
    individual_groups: Sequence[str] | None = None
    fps: float | None = None
    labels: np.ndarray | None = None
    label_names: Sequence[str] | None = None
    frame_data: Mapping[str, np.ndarray] = field(default_factory=dict)
    valid: np.ndarray | None = None
    source: str = ""
    name: str = ""
    format: str = "arrays"
    metadata: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        position: Any,
        confidence: Any = None,
        *,
        keypoint_names: Sequence[str] | str | None = None,
        individual_names: Sequence[str] | str | None = None,
        individual_groups: Sequence[str] | str | None = None,
        fps: float | None = None,
        labels: Any = None,
        label_names: Sequence[str] | None = None,
        frame_data: Mapping[str, Any] | None = None,
        valid: Any = None,
        source: str = "",
        name: str | None = None,
        format: str = "arrays",
        metadata: dict | None = None,
    ) -> "Recording":
        """Build a validated recording from plain arrays.

        Parameters
        ----------
        position : array, shape (n_frames, n_individuals, n_keypoints, 2)
            x, y per keypoint; NaN marks a missing keypoint. A single animal may be given
            as (n_frames, n_keypoints, 2).
        confidence : array, shape (n_frames, n_individuals, n_keypoints), optional
            Tracker confidence; NaN (the default) means unknown.
        keypoint_names, individual_names : sequence of str, optional
            Unique names; default ``keypoint_0 ...`` / ``individual_0 ...``.
        individual_groups : sequence of str, optional
            Group (team, ...) of each individual; default ``""`` for all.
        fps : float, optional
            Frames per second; None (unknown) keeps time in frames and logs a warning.
        labels : array of int, shape (n_frames,), optional
            Per-frame labels (-1 = unlabelled) with ``label_names`` as vocabulary.
        frame_data : mapping str -> array of shape (n_frames,), optional
            Per-frame extra columns (game clock, offense group, segment id, ...).
        valid : array of bool, shape (n_frames,), optional
            False marks frames no window may contain (default all True).
        source, name, format : str
            Source file, recording name (default: the file's stem) and format name.
        metadata : dict, optional
            JSON-safe extra information.
        """
        pos = np.asarray(position)
        if pos.ndim == 3 and pos.shape[-1] == 2:
            log.info("%s: position has shape %s; read as one individual", source or "recording", pos.shape)
            pos = pos[:, None]
            if confidence is not None and np.ndim(confidence) == 2:
                confidence = np.asarray(confidence)[:, None]
        if fps is None:
            log.warning(
                "%s: frame rate unknown (fps=None); time stays in frames. Pass fps=... to set it",
                source or name or "recording",
            )
        if name is None:
            from pathlib import Path

            name = Path(source).stem if source else "recording"
        return cls(
            position=pos,
            confidence=confidence,
            keypoint_names=keypoint_names,
            individual_names=individual_names,
            individual_groups=individual_groups,
            fps=fps,
            labels=labels,
            label_names=label_names,
            frame_data=dict(frame_data or {}),
            valid=valid,
            source=str(source),
            name=str(name),
            format=format,
            metadata=dict(metadata or {}),
        )

    def __post_init__(self) -> None:
        problems: list[str] = []
        pos = np.asarray(self.position)
        if pos.dtype.kind not in "fiu" or pos.ndim != 4 or pos.shape[-1] != 2:
            extra = " (3-D keypoints are not supported; pass x and y only)" if pos.ndim == 4 and pos.shape[-1] == 3 else ""
            problems.append(
                f"position has shape {pos.shape} and dtype {pos.dtype}; expected a numeric array of shape "
                f"(n_frames, n_individuals, n_keypoints, 2){extra}"
            )
            raise RecordingError(problems, self.source or None)
        t, n_ind, n_kp, _ = pos.shape
        if t == 0:
            problems.append(f"position has shape {pos.shape}: zero frames")
        if n_ind == 0:
            problems.append(f"position has shape {pos.shape}: zero individuals")
        if n_kp == 0:
            problems.append(f"position has shape {pos.shape}: zero keypoints")
        pos = pos.astype(np.float32, copy=False)
        if np.isinf(pos).any():
            pos = np.where(np.isinf(pos), np.float32(np.nan), pos)
            log.info("%s: infinite coordinates read as missing (NaN)", self.source or "recording")
        object.__setattr__(self, "position", pos)

        if self.confidence is None:
            conf = np.full((t, n_ind, n_kp), np.nan, dtype=np.float32)
        else:
            conf = np.asarray(self.confidence)
            if conf.shape != (t, n_ind, n_kp) or conf.dtype.kind not in "fiub":
                problems.append(
                    f"confidence has shape {conf.shape} and dtype {conf.dtype}; expected numbers of shape "
                    f"({t}, {n_ind}, {n_kp}) (frames, individuals, keypoints)"
                )
                conf = np.full((t, n_ind, n_kp), np.nan, dtype=np.float32)
            conf = conf.astype(np.float32, copy=False)
        object.__setattr__(self, "confidence", conf)

        object.__setattr__(self, "keypoint_names", _names(self.keypoint_names, n_kp, "keypoint", "keypoint_names", problems))
        object.__setattr__(
            self, "individual_names", _names(self.individual_names, n_ind, "individual", "individual_names", problems)
        )
        groups = self.individual_groups
        if groups is None:
            groups = [""] * n_ind
        object.__setattr__(self, "individual_groups", _names(groups, n_ind, "individual", "individual_groups", problems))

        fps = self.fps
        if fps is not None:
            try:
                fps_f = float(fps)
            except (TypeError, ValueError):
                problems.append(f"fps must be a positive number or None; got {fps!r}")
                fps_f = None
            if fps_f is not None and not (math.isfinite(fps_f) and fps_f > 0):
                log.warning("%s: fps=%r is not a positive number; using fps=None (time in frames)", self.source, fps)
                fps_f = None
            fps = fps_f
        object.__setattr__(self, "fps", fps)

        labels = self.labels
        lnames = self.label_names
        if labels is not None:
            lab = np.asarray(labels)
            if lab.shape != (t,):
                problems.append(f"labels has shape {lab.shape}; expected ({t},), one label per frame")
            elif lab.dtype.kind == "f" and not np.all(np.isfinite(lab) & (lab == np.round(lab))):
                problems.append("labels must be integers (-1 = unlabelled); found NaN or fractional values")
            elif lab.dtype.kind not in "fiub":
                problems.append(f"labels has dtype {lab.dtype}; expected integers (-1 = unlabelled)")
            else:
                lab = lab.astype(np.int64)
                if lab.size and lab.min() < -1:
                    problems.append(f"labels go down to {int(lab.min())}; expected >= -1 (-1 = unlabelled)")
                top = int(lab.max()) if lab.size else -1
                if lnames is None:
                    lnames = [f"label_{i}" for i in range(top + 1)]
                lnames = tuple(str(x) for x in lnames)
                if top >= len(lnames):
                    problems.append(f"labels go up to {top} but label_names has only {len(lnames)} entries")
                labels = lab
        elif lnames is not None:
            lnames = tuple(str(x) for x in lnames)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "label_names", None if lnames is None else tuple(lnames))

        fd = {}
        for k, v in dict(self.frame_data or {}).items():
            a = np.asarray(v)
            if a.shape != (t,):
                problems.append(f"frame_data[{k!r}] has shape {a.shape}; expected ({t},), one value per frame")
            elif a.dtype.kind not in "fiub":
                problems.append(f"frame_data[{k!r}] has dtype {a.dtype}; expected numbers")
            fd[str(k)] = a
        object.__setattr__(self, "frame_data", fd)

        if self.valid is None:
            valid = np.ones(t, dtype=bool)
        else:
            valid = np.asarray(self.valid)
            if valid.shape != (t,):
                problems.append(f"valid has shape {valid.shape}; expected ({t},), one flag per frame")
                valid = np.ones(t, dtype=bool)
            valid = valid.astype(bool)
        object.__setattr__(self, "valid", valid)
        object.__setattr__(self, "metadata", dict(self.metadata or {}))
        if problems:
            raise RecordingError(problems, self.source or None)

    # ------------------------------------------------------------------ shape helpers
    @property
    def n_frames(self) -> int:
        return int(self.position.shape[0])

    @property
    def n_individuals(self) -> int:
        return int(self.position.shape[1])

    @property
    def n_keypoints(self) -> int:
        return int(self.position.shape[2])

    @property
    def group_names(self) -> tuple[str, ...]:
        """Distinct non-empty groups in order of first appearance."""
        out: list[str] = []
        for g in self.individual_groups:
            if g and g not in out:
                out.append(g)
        return tuple(out)

    @property
    def duration(self) -> float | None:
        """Length in seconds (None when fps is unknown)."""
        return None if self.fps is None else self.n_frames / self.fps

    def missing_fraction(self) -> np.ndarray:
        """Fraction of frames each (individual, keypoint) is NaN, shape (n_individuals, n_keypoints)."""
        return (~np.isfinite(self.position).all(axis=-1)).mean(axis=0)

    def __repr__(self) -> str:
        fps = "unknown" if self.fps is None else f"{self.fps:g}"
        lab = "" if self.labels is None else f", labels={len(self.label_names or ())} classes"
        extra = f", frame_data={sorted(self.frame_data)}" if self.frame_data else ""
        return (
            f"Recording({self.name!r}, format={self.format}, frames={self.n_frames}, "
            f"individuals={self.n_individuals}, keypoints={self.n_keypoints}, fps={fps}{lab}{extra})"
        )

    # ------------------------------------------------------------------ derivation
    def _index(self, wanted, names: tuple[str, ...], what: str) -> np.ndarray:
        if wanted is None:
            return np.arange(len(names))
        if isinstance(wanted, (str, int, np.integer)):
            wanted = [wanted]
        out, bad = [], []
        for w in wanted:
            if isinstance(w, (int, np.integer)) and not isinstance(w, bool):
                if 0 <= int(w) < len(names):
                    out.append(int(w))
                else:
                    bad.append(repr(w))
            elif str(w) in names:
                out.append(names.index(str(w)))
            else:
                bad.append(repr(w))
        if bad:
            raise KeyError(
                f"{self.source or self.name}: no {what} {', '.join(bad)}; available: {', '.join(names)}"
            )
        if not out:
            raise ValueError(f"{self.source or self.name}: select at least one {what}")
        return np.asarray(out, dtype=np.int64)

    def select(self, individuals=None, keypoints=None) -> "Recording":
        """A copy with only the given individuals / keypoints (names or indices, in that order)."""
        ii = self._index(individuals, self.individual_names, "individual")
        kk = self._index(keypoints, self.keypoint_names, "keypoint")
        return replace(
            self,
            position=self.position[:, ii][:, :, kk],
            confidence=self.confidence[:, ii][:, :, kk],
            keypoint_names=tuple(self.keypoint_names[k] for k in kk),
            individual_names=tuple(self.individual_names[i] for i in ii),
            individual_groups=tuple(self.individual_groups[i] for i in ii),
        )

    def with_labels(self, labels: Any, label_names: Sequence[str] | None = None) -> "Recording":
        """A copy with new per-frame labels (validated)."""
        return replace(self, labels=labels, label_names=label_names)

    def labels_from_flags(self, columns: Sequence[str], none_name: str = "none") -> "Recording":
        """Per-frame labels from binary ``frame_data`` columns (e.g. CRIM13 ``*_prediction`` flags).

        Label 0 is ``none_name`` (no flag set); label ``i + 1`` is ``columns[i]``. When several
        flags are set on one frame the first column listed wins; the number of such frames
        is logged.
        """
        missing = [c for c in columns if c not in self.frame_data]
        if missing:
            raise KeyError(
                f"{self.source or self.name}: no frame_data column(s) {missing}; available: "
                f"{', '.join(sorted(self.frame_data)) or 'none'}"
            )
        flags = np.stack([np.asarray(self.frame_data[c]) > 0 for c in columns], axis=1)
        labels = np.where(flags.any(axis=1), flags.argmax(axis=1) + 1, 0)
        multi = int((flags.sum(axis=1) > 1).sum())
        if multi:
            log.info("%s: %d frames have several flags set; the first listed column wins", self.source, multi)
        return self.with_labels(labels, [none_name, *columns])

    # ------------------------------------------------------------------ windows
    def layout(self) -> dict:
        """How :meth:`frames` flattens keypoints: ``index = ((i * K) + k) * 2 + d``."""
        return {
            "kind": "keypoints",
            "individuals": list(self.individual_names),
            "keypoints": list(self.keypoint_names),
            "dims": ["x", "y"],
            "order": ["individual", "keypoint", "dim"],
            "groups": list(self.individual_groups),
        }

    def frames(self) -> tuple[np.ndarray, list[str]]:
        """States per frame ``[n_frames, I*K*2]`` (x, y per individual per keypoint) and their names."""
        flat = self.position.reshape(self.n_frames, -1)
        names = [f"{i}/{k}/{d}" for i in self.individual_names for k in self.keypoint_names for d in ("x", "y")]
        return flat, names

    def to_trajectories(
        self,
        length: int,
        stride: int = 1,
        reduce: str = "centre",
        group: int = 0,
        individuals=None,
        keypoints=None,
        min_confidence: float | None = None,
        zero_as_missing: bool = True,
        max_gap: int = 5,
    ) -> Trajectories:
        """Cut windows of ``length`` frames every ``stride`` frames into :class:`Trajectories`.

        Missing keypoints are repaired first (:func:`repair_missing`
        with ``min_confidence``, ``zero_as_missing`` and ``max_gap``); windows containing a
        frame that still misses a keypoint, an invalid frame, or a ``segment`` change are
        dropped, and the count is logged. States are the flattened keypoints
        (see :meth:`layout`, stored in ``metadata["layout"]``); per-frame labels are reduced
        per window by ``reduce`` (centre, majority or last frame).
        """
        if reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {', '.join(REDUCTIONS)}; got {reduce!r}")
        rec = self.select(individuals, keypoints)
        rec, report = repair_missing(rec, min_confidence, zero_as_missing, max_gap)
        flat, names = rec.frames()
        flat = np.where(np.isfinite(flat), flat, 0.0).astype(np.float32)  # invalid frames are masked below
        total = len(window_starts(rec.n_frames, length, stride))
        where = rec.source or rec.name
        valid = rec.valid.copy()
        seg = rec.frame_data.get("segment")
        if total == 0:
            raise NoWindowsError(
                f"{where}: no window of {length} frames fits in a recording of {rec.n_frames} frames; "
                "use a shorter window"
            )
        if not valid.any() or _count_ok(valid, seg, length, stride) == 0:
            worst = ", ".join(f"{i}/{k} missing in {f:.0%} of frames" for i, k, f in report.worst) or "invalid frames"
            raise NoWindowsError(
                f"{where}: none of the {total} windows of {length} frames is complete after repairing gaps "
                f"<= {max_gap} frames ({report.frames_invalid} of {rec.n_frames} frames still miss a keypoint; "
                f"worst: {worst}); raise max_gap, lower min_confidence, or select other individuals/keypoints"
            )
        meta = {
            "source": rec.source,
            "recording": rec.name,
            "format": rec.format,
            "fps": rec.fps,
            "layout": rec.layout(),
            "repair": report.to_dict(),
        }
        traj = cut_windows(
            flat,
            length,
            stride,
            frame_labels=rec.labels,
            reduce=reduce,
            group=group,
            valid_frames=valid,
            label_names=rec.label_names,
            feature_names=names,
            metadata=meta,
        )
        if seg is not None:
            seg = np.asarray(seg)
            same = seg[traj.starts] == seg[traj.starts + length - 1]
            if not same.all():
                traj = traj.subset(same)
        dropped = total - len(traj)
        log.info(
            "%s: %d windows of %d frames (stride %d); %d of %d dropped for missing keypoints, invalid frames "
            "or segment breaks",
            where, len(traj), length, stride, dropped, total,
        )
        traj.metadata["windows_dropped"] = int(dropped)
        return traj


def _count_ok(valid: np.ndarray, seg, length: int, stride: int) -> int:
    starts = window_starts(len(valid), length, stride)
    bad = np.concatenate([[0], np.cumsum(~valid)])
    ok = (bad[starts + length] - bad[starts]) == 0
    if seg is not None:
        seg = np.asarray(seg)
        ok &= seg[starts] == seg[starts + length - 1]
    return int(ok.sum())


def recordings_to_trajectories(recordings: Iterable[Recording], length: int, **kwargs) -> Trajectories:
    """Windows of several recordings in one set; recording ``i`` gets group id ``i``.

    Recordings that yield no complete window are skipped with a logged message (an error
    is raised only when none yields any). All recordings must share individuals and
    keypoints (after ``individuals=`` / ``keypoints=`` selection).
    """
    recordings = list(recordings)
    parts, names, sources, skipped = [], [], [], []
    for gi, rec in enumerate(recordings):
        try:
            parts.append(rec.to_trajectories(length, group=gi, **kwargs))
        except NoWindowsError as exc:
            if len(recordings) == 1:
                raise
            log.warning("skipping %s", exc)
            skipped.append(rec.name)
            continue
        names.append(rec.name)
        sources.append(rec.source)
    if not parts:
        raise NoWindowsError(
            f"no recording yielded a complete window of {length} frames (skipped: {', '.join(skipped)})"
        )
    first = parts[0].metadata["layout"]
    for p, n in zip(parts[1:], names[1:]):
        lay = p.metadata["layout"]
        if p.label_names != parts[0].label_names:
            raise ValueError(
                f"recording {n!r} has label names {p.label_names}; expected {parts[0].label_names} like "
                f"{names[0]!r}; relabel with Recording.with_labels so all share one vocabulary"
            )
        if lay["individuals"] != first["individuals"] or lay["keypoints"] != first["keypoints"]:
            raise ValueError(
                f"recording {n!r} has individuals {lay['individuals']} and keypoints {lay['keypoints']}; "
                f"expected {first['individuals']} and {first['keypoints']} like {names[0]!r}; "
                "select common ones with individuals=/keypoints="
            )
    out = Trajectories.concatenate(parts)
    meta = dict(parts[0].metadata)
    meta["recordings"] = [
        {"group": int(p.groups[0]), "name": n, "source": s, "windows": len(p), "repair": p.metadata.get("repair")}
        for p, n, s in zip(parts, names, sources)
    ]
    meta["source"] = sources[0] if len(set(sources)) == 1 else sources
    meta.pop("repair", None)
    meta.pop("recording", None)
    return replace(out, metadata=meta)


def repair_missing(
    rec: Recording,
    min_confidence: float | None = None,
    zero_as_missing: bool = True,
    max_gap: int = 5,
    log_level: int = logging.INFO,
) -> tuple[Recording, RepairReport]:
    """Mark, interpolate and flag the missing keypoints of a recording
    (:func:`nsprog.data.missing.repair_arrays`); returns the repaired copy, whose ``valid``
    mask is False on every frame that still misses a keypoint, and the report."""
    filled, valid, report = repair_arrays(rec.position, rec.confidence, rec.valid, rec.individual_names,
                                          rec.keypoint_names, rec.source or rec.name, min_confidence,
                                          zero_as_missing, max_gap, log_level)
    return replace(rec, position=filled, valid=valid), report
