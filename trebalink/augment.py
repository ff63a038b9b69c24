"""Domain augmentations of raw windows, vectorised over the batch.

Each window gets its own random transform (the same for all of its frames):

* ``keypoints`` (mouse, open field): rotation by an angle uniform in ``[-pi, pi)`` about the
  centre (the training windows' mean keypoint position unless ``centre`` is given), then, with
  probability 1/2, a reflection across the vertical line through the centre; with probability
  ``p_noise``, Gaussian noise on every coordinate and a uniform shift of one animal (arena
  corner keypoints, found through the keypoint presets, never shift);
* ``team`` (team sports): with probability 1/2 a reflection across the court's long axis
  (``y -> width - y``); with probability ``p_noise``, Gaussian noise on the positions of the
  players present (the presence channel is untouched);
* ``noise`` (anything else, e.g. the synthetic data): with probability ``p_noise``, Gaussian
  noise on every state dimension.

Sizes are relative: ``noise`` and ``shift`` are fractions of the training windows' position
standard deviation (per state dimension for ``noise``), resolved once by
:meth:`Augmenter.fit` and saved with the run. Random numbers are drawn by :meth:`Augmenter.draw`
from a caller's generator for a whole (global) batch, so that distributed ranks, resumed
runs and single-process runs transform each window identically. Task labels are never carried
over: training recomputes them on the augmented window (a reflection flips a signed angle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from nsprog.data.trajectories import Trajectories
from nsprog.settings import Settings, param

__all__ = ["AugmentSettings", "Augmenter", "KINDS"]

KINDS = ("keypoints", "team", "noise", "none")


@dataclass
class AugmentSettings(Settings):
    """How windows are augmented for the contrastive loss (see the module docstring)."""

    kind: Literal["auto", "keypoints", "team", "noise", "none"] = "auto"
    rotation: bool = True
    reflection: bool = True
    p_noise: float = param(0.25, ge=0, le=1)
    noise: float = param(0.01, ge=0)
    shift: float = param(0.1, ge=0)
    centre: list[float] | None = None

    def _extra_checks(self) -> list[str]:
        if self.centre is not None and len(self.centre) != 2:
            return [f"centre: expected [x, y]; got {self.centre!r}"]
        return []


def _layout_kind(traj: Trajectories) -> str:
    layout = traj.metadata.get("layout") or {}
    if layout.get("kind") == "team":
        return "team"
    if layout.get("kind", "") == "keypoints" and layout.get("keypoints"):
        return "keypoints"
    return "noise"


def _static_keypoints(keypoints: list[str]) -> list[int]:
    """Indices of arena-corner keypoints (through the keypoint presets), which never shift."""
    from nsprog.features.mouse import resolve_mapping

    try:
        _, mapping = resolve_mapping("auto", keypoints)
    except (KeyError, ValueError):
        return []
    names = {n for canon, ns in mapping.items() if canon.startswith("corner_") for n in ns}
    return [i for i, k in enumerate(keypoints) if k in names]


@dataclass
class Augmenter:
    """A fitted augmentation: :meth:`draw` random parameters, :meth:`apply` them to raw windows."""

    kind: str
    frames: int
    dims: int
    rotation: bool = True
    reflection: bool = True
    p_noise: float = 0.25
    noise_std: list[float] | None = None  # per state dim
    shift: float = 0.0
    centre: tuple[float, float] = (0.0, 0.0)
    individuals: int = 0
    keypoints: int = 0
    static: tuple[int, ...] = ()
    width: float = 0.0  # team: court width (reflection across y = width / 2)

    @classmethod
    def fit(cls, settings: AugmentSettings, train: Trajectories) -> "Augmenter":
        kind = _layout_kind(train) if settings.kind == "auto" else settings.kind
        n, t, d = train.states.shape
        base = dict(kind=kind, frames=t, dims=d, rotation=settings.rotation, reflection=settings.reflection,
                    p_noise=settings.p_noise)
        if kind == "none":
            return cls(**base)
        layout = train.metadata.get("layout") or {}
        if kind == "keypoints":
            inds, kps = list(layout.get("individuals", [])), list(layout.get("keypoints", []))
            if not kps or len(inds) * len(kps) * 2 != d:
                raise ValueError(f"augment.kind: keypoints needs keypoint windows with metadata['layout'] naming "
                                 f"individuals and keypoints ({d} state dims); use kind: noise for other data")
            xy = train.states.reshape(-1, 2).astype(np.float64)
            spread = float(np.sqrt(xy.var(0).mean()))
            centre = tuple(settings.centre) if settings.centre is not None else tuple(float(v) for v in xy.mean(0))
            return cls(**base, noise_std=[settings.noise * spread] * d, shift=settings.shift * spread,
                       centre=(float(centre[0]), float(centre[1])), individuals=len(inds), keypoints=len(kps),
                       static=tuple(_static_keypoints(kps)))
        if kind == "team":
            if layout.get("kind") != "team":
                raise ValueError("augment.kind: team needs team windows (nsprog.data.teams); use kind: noise otherwise")
            slots = int(layout.get("slots", d // 3))
            if slots * 3 != d:
                raise ValueError(f"team windows have {d} state dims; expected slots x 3 = {slots * 3}")
            width = float((layout.get("field") or {}).get("width") or 50.0)
            v = train.states.reshape(-1, slots, 3)
            present = v[..., 2] > 0.5
            spread = float(np.sqrt(v[..., :2][present].astype(np.float64).var(0).mean())) if present.any() else 1.0
            std = [settings.noise * spread, settings.noise * spread, 0.0] * slots
            return cls(**base, noise_std=std, width=width, individuals=slots)
        flat = train.states.reshape(-1, d).astype(np.float64)
        return cls(**base, noise_std=[settings.noise * float(s) for s in flat.std(0)])

    # ------------------------------------------------------------------ random parameters
    def draw(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Random parameters for ``n`` windows, on the generator's device (index rows to pick
        windows)."""
        if self.kind == "none":
            return {}
        g, dev = generator, generator.device
        out = {
            "angle": (torch.rand(n, generator=g, device=dev, dtype=torch.float64) * 2 - 1) * math.pi,
            "reflect": torch.rand(n, generator=g, device=dev) < 0.5,
            "noisy": torch.rand(n, generator=g, device=dev) < self.p_noise,
        }
        if self.noise_std is not None:
            out["noise"] = torch.randn(n, self.frames, self.dims, generator=g, device=dev)
        if self.kind == "keypoints":
            out["who"] = torch.randint(0, max(self.individuals, 1), (n,), generator=g, device=dev)
            out["shift"] = (torch.rand(n, 2, generator=g, device=dev) * 2 - 1) * self.shift
        return out

    # ------------------------------------------------------------------ transform
    def apply(self, states: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """Augmented copies of raw windows ``[B, T+1, D]`` under parameters ``p`` (rows = windows)."""
        if self.kind == "none":
            return states
        if states.shape[1:] != (self.frames, self.dims):
            raise ValueError(f"augmenter fitted on windows of {self.frames} x {self.dims}; got {tuple(states.shape[1:])}")
        dev, dt = states.device, states.dtype
        p = {k: v.to(dev) for k, v in p.items()}
        noisy = p["noisy"].to(dt)[:, None, None]
        if self.kind == "keypoints":
            b = states.shape[0]
            pts = states.reshape(b, self.frames, self.individuals * self.keypoints, 2)
            ang = p["angle"].to(dt) if self.rotation else torch.zeros(b, dtype=dt, device=dev)
            cos, sin = torch.cos(ang), torch.sin(ang)
            flip = torch.where(p["reflect"] & self.reflection, -1.0, 1.0).to(dt)
            # A = R(angle) @ diag(flip, 1): reflect x about the centre, then rotate
            a = torch.stack([torch.stack([cos * flip, -sin], -1), torch.stack([sin * flip, cos], -1)], -2)  # [B, 2, 2]
            c = torch.tensor(self.centre, dtype=dt, device=dev)
            out = torch.einsum("bfkj,bij->bfki", pts - c, a) + c
            out = out.reshape(b, self.frames, -1) + noisy * p["noise"] * torch.tensor(self.noise_std, dtype=dt, device=dev)
            if self.shift > 0:
                owner = torch.arange(self.individuals * self.keypoints, device=dev) // self.keypoints
                movable = torch.ones(self.individuals * self.keypoints, dtype=torch.bool, device=dev)
                if self.static:
                    movable[[i * self.keypoints + s for i in range(self.individuals) for s in self.static]] = False
                mask = ((owner[None, :] == p["who"][:, None]) & movable[None, :]).to(dt)  # [B, I*K]
                move = mask[:, :, None] * p["shift"].to(dt)[:, None, :] * p["noisy"].to(dt)[:, None, None]
                out = out + move.reshape(b, 1, -1)
            return out
        if self.kind == "team":
            v = states.reshape(states.shape[0], self.frames, self.individuals, 3)
            present = v[..., 2:3] > 0.5
            flip = (p["reflect"] & self.reflection)[:, None, None]
            y = torch.where(flip & present[..., 0], self.width - v[..., 1], v[..., 1])
            v = torch.stack([v[..., 0], y, v[..., 2]], dim=-1)
            std = torch.tensor(self.noise_std, dtype=dt, device=dev).view(1, 1, self.individuals, 3)
            jitter = (noisy[..., None] * p["noise"].view_as(v) * std) * present.to(dt)
            return (v + jitter).reshape(states.shape)
        return states + noisy * p["noise"] * torch.tensor(self.noise_std, dtype=dt, device=dev)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["centre"] = list(self.centre)
        d["static"] = list(self.static)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Augmenter":
        d = dict(d)
        d["centre"] = tuple(d.get("centre", (0.0, 0.0)))
        d["static"] = tuple(d.get("static", ()))
        return cls(**d)
