"""The ``Trajectories`` container: fixed-length windows of a state vector.

``states[N, T+1, D]`` (float32); ``actions = diff(states)`` has shape ``[N, T, D]``.
Optional per-window ``labels`` (with their vocabulary ``label_names``), extra integer
label columns in ``factors`` (e.g. the synthetic set's ``c_x`` and ``c_y``), ``groups``
(video / game / animal id, so splits can be grouped) and ``starts`` (first frame of each
window in its group's recording, so time-block splits can keep overlapping windows apart).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = ["Trajectories"]


def _check_per_window(name: str, arr: Any, n: int, dtype=np.int64) -> np.ndarray | None:
    if arr is None:
        return None
    a = np.asarray(arr)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{name} has shape {a.shape}; expected ({n},), one value per window")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or inf; expected finite integer values per window")
        if not np.all(a == np.round(a)):
            raise ValueError(f"{name} has non-integer values; expected integer ids per window")
    elif a.dtype.kind not in "iub":
        raise ValueError(f"{name} has dtype {a.dtype}; expected integers per window")
    return a.astype(dtype, copy=False)


@dataclass(frozen=True, eq=False)
class Trajectories:
    """Fixed-length trajectory windows; validated on construction.

    Parameters
    ----------
    states : array, shape (N, T+1, D)
        Window states, finite, converted to float32.
    labels : array of int, shape (N,), optional
        One label per window; ``-1`` means unlabelled.
    label_names : sequence of str, optional
        Vocabulary for ``labels``.
    factors : mapping str -> array of int, shape (N,)
        Further per-window integer labels (ground-truth factors, offense flag, ...).
    groups : array of int, shape (N,), optional
        Group id per window (recording, game, animal).
    starts : array of int, shape (N,), optional
        First frame of each window within its group's recording.
    feature_names : sequence of str, length D, optional
        Name of each state dimension.
    metadata : dict
        JSON-safe information (domain, layout, source, fps, ...).
    """

    states: np.ndarray
    labels: np.ndarray | None = None
    label_names: tuple[str, ...] | None = None
    factors: Mapping[str, np.ndarray] = field(default_factory=dict)
    groups: np.ndarray | None = None
    starts: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = np.asarray(self.states)
        if s.ndim != 3:
            raise ValueError(
                f"states has shape {s.shape} (rank {s.ndim}); expected (N, T+1, D): windows x frames x state dims"
            )
        n, tp1, d = s.shape
        if n == 0:
            raise ValueError(f"states has shape {s.shape}: zero windows; expected at least one window (N >= 1)")
        if tp1 < 2:
            raise ValueError(f"states has shape {s.shape}; expected at least 2 frames per window (T+1 >= 2)")
        if d == 0:
            raise ValueError(f"states has shape {s.shape}; expected at least one state dimension (D >= 1)")
        if s.dtype.kind not in "fiu":
            raise ValueError(f"states has dtype {s.dtype}; expected a numeric array")
        s = s.astype(np.float32, copy=False)
        if not np.all(np.isfinite(s)):
            bad = np.argwhere(~np.isfinite(s))[0]
            raise ValueError(
                f"states of shape {s.shape} contains NaN or inf (first at window {bad[0]}, frame {bad[1]}, "
                f"dim {bad[2]}); interpolate or drop missing frames before building Trajectories"
            )
        object.__setattr__(self, "states", s)
        object.__setattr__(self, "labels", _check_per_window("labels", self.labels, n))
        object.__setattr__(self, "groups", _check_per_window("groups", self.groups, n))
        object.__setattr__(self, "starts", _check_per_window("starts", self.starts, n))
        factors = {}
        for k, v in dict(self.factors or {}).items():
            factors[str(k)] = _check_per_window(f"factors[{k!r}]", v, n)
        object.__setattr__(self, "factors", factors)
        if self.feature_names is not None:
            names = tuple(str(x) for x in self.feature_names)
            if len(names) != d:
                raise ValueError(f"feature_names has {len(names)} entries; expected {d}, one per state dimension")
            object.__setattr__(self, "feature_names", names)
        if self.label_names is not None:
            lnames = tuple(str(x) for x in self.label_names)
            object.__setattr__(self, "label_names", lnames)
            if self.labels is not None and self.labels.size and self.labels.max() >= len(lnames):
                raise ValueError(
                    f"labels go up to {int(self.labels.max())} but label_names has only {len(lnames)} entries"
                )
        object.__setattr__(self, "metadata", dict(self.metadata or {}))

    # ----------------------------------------------------------------- shape helpers
    def __len__(self) -> int:
        return int(self.states.shape[0])

    @property
    def n_frames(self) -> int:
        """Frames per window (T+1)."""
        return int(self.states.shape[1])

    @property
    def n_steps(self) -> int:
        """Steps (actions) per window (T)."""
        return int(self.states.shape[1]) - 1

    @property
    def state_dim(self) -> int:
        return int(self.states.shape[2])

    @property
    def actions(self) -> np.ndarray:
        """``diff(states)`` along time, shape (N, T, D)."""
        return np.diff(self.states, axis=1)

    # ----------------------------------------------------------------- derivation
    def subset(self, index: Iterable[int] | np.ndarray | slice) -> "Trajectories":
        """Windows selected by integer index, boolean mask or slice."""
        idx = index if isinstance(index, slice) else np.asarray(index)
        if isinstance(idx, np.ndarray) and idx.dtype == bool and idx.shape != (len(self),):
            raise ValueError(f"boolean index has shape {idx.shape}; expected ({len(self)},)")

        def take(a):
            return None if a is None else a[idx]

        return replace(
            self,
            states=self.states[idx],
            labels=take(self.labels),
            factors={k: v[idx] for k, v in self.factors.items()},
            groups=take(self.groups),
            starts=take(self.starts),
        )

    def with_labels(self, labels: np.ndarray, label_names: Iterable[str] | None = None) -> "Trajectories":
        """A copy with new per-window labels (e.g. one ground-truth factor)."""
        return replace(self, labels=labels, label_names=None if label_names is None else tuple(label_names))

    def label_column(self, name: str | None) -> np.ndarray:
        """``labels`` for ``None``/``"label"``, else the factor called ``name``."""
        where = self.metadata.get("path") or self.metadata.get("source")
        of = f" of {where}" if where else ""
        choices = (["label"] if self.labels is not None else []) + sorted(self.factors)
        if name in (None, "label", "labels"):
            if self.labels is None:
                hint = (f"; their label columns are {', '.join(choices)}: name one (--labels COLUMN, or eval.labels / "
                        "labels in a config)") if choices else "; they have no label column at all"
                raise KeyError(f"the windows{of} have no 'label' column{hint}")
            return self.labels
        if name not in self.factors:
            raise KeyError(f"the windows{of} have no label column {name!r}; available: "
                           f"{', '.join(choices) or 'none'}")
        return self.factors[name]

    @staticmethod
    def concatenate(parts: list["Trajectories"]) -> "Trajectories":
        """Stack windows of several sets with the same frame count, dims and label columns."""
        if not parts:
            raise ValueError("concatenate needs at least one Trajectories")
        first = parts[0]
        for i, p in enumerate(parts[1:], 1):
            if p.states.shape[1:] != first.states.shape[1:]:
                raise ValueError(
                    f"part {i} has windows of shape {p.states.shape[1:]}; expected {first.states.shape[1:]}"
                )
            if set(p.factors) != set(first.factors):
                raise ValueError(f"part {i} has factors {sorted(p.factors)}; expected {sorted(first.factors)}")
            for attr in ("labels", "groups", "starts"):
                if (getattr(p, attr) is None) != (getattr(first, attr) is None):
                    raise ValueError(f"part {i}: {attr} present in some parts but not others")

        def cat(attr):
            if getattr(first, attr) is None:
                return None
            return np.concatenate([getattr(p, attr) for p in parts])

        return Trajectories(
            states=np.concatenate([p.states for p in parts]),
            labels=cat("labels"),
            label_names=first.label_names,
            factors={k: np.concatenate([p.factors[k] for p in parts]) for k in first.factors},
            groups=cat("groups"),
            starts=cat("starts"),
            feature_names=first.feature_names,
            metadata=first.metadata,
        )

    def __repr__(self) -> str:
        extra = []
        if self.labels is not None:
            extra.append(f"labels={len(np.unique(self.labels))} classes")
        if self.factors:
            extra.append(f"factors={sorted(self.factors)}")
        if self.groups is not None:
            extra.append(f"groups={len(np.unique(self.groups))}")
        return f"Trajectories(N={len(self)}, frames={self.n_frames}, D={self.state_dim}{', ' if extra else ''}{', '.join(extra)})"
