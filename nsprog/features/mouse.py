"""Mouse features from keypoints (MARS-style), vectorised in torch.

Windows come from :meth:`nsprog.data.recording.Recording.to_trajectories`: states are the
flattened keypoints ``[N, T+1, I*K*2]`` and ``metadata["layout"]`` names the individuals and
keypoints. Every feature is ``fn(states, ctx) -> [N, T+1]`` (one value per frame).

Keypoint names differ between datasets, so features ask for *canonical* points and a
:data:`KEYPOINT_PRESETS` mapping (or a user dict) says which keypoint(s) of the file stand
for each; a list maps to the mean of those keypoints. Canonical names: ``nose``,
``ear_left``, ``ear_right``, ``neck``, ``hip_left``, ``hip_right``, ``tail_base``,
``centre`` (body centre), ``tail_end`` and, for an arena, ``corner_tl`` / ``corner_tr`` /
``corner_bl`` / ``corner_br``. Derived points, unless the mapping sets them:

* ``head`` = mean of the distinct file keypoints used by nose, ear_left, ear_right;
* ``body`` = mean of the distinct file keypoints used by neck, hip_left, hip_right,
  tail_base, centre;
* ``centroid`` = mean of every distinct file keypoint used by the body-part names
  (nose ... centre; not tail_end nor the arena corners); the ellipse and the bounding box
  use the same keypoints.

A feature that needs a point the file lacks raises an error naming the feature, the
canonical point, the file keypoint(s) it maps to and the keypoints the windows have.

Definitions (resident = the first individual, intruder = the second, per frame ``t``):

* head-body angle: ``atan2(det(v0, v1), v0 . v1)`` with ``v0 = nose - neck`` and
  ``v1 = neck - tail_base`` (signed, radians; 0 when the head is in line with the body).
* social angle: the angle between the body axis (tail base -> neck) and the direction
  from the mouse's centroid to the other mouse's centroid, folded to ``[0, pi]``:
  ``a = atan2(...) mod 2 pi`` with explicit precedence ``((a % (2 * pi)) + 2 * pi) % (2 * pi)``,
  then ``min(a, 2 pi - a)``; 0 = facing the other mouse, pi = facing away.
* speed: centroid displacement per frame (frame 0 repeats frame 1); nose speed likewise;
  acceleration: norm of the centroid's second difference (edges repeat their neighbour).
* distances (pixels): nose-nose, resident nose to intruder tail base, head-head,
  body-body, resident head to intruder body.
* ellipse: the keypoints' 2x2 covariance with eigenvalues ``l1 >= l2`` (closed form);
  axis ratio ``sqrt(l1 / l2)`` (``l2`` floored at ``1e-6 l1``), area ``4 pi sqrt(l1 l2)``
  (semi-axes of two standard deviations).
* bounding-box IoU of the two mice's keypoint boxes.

Open-field (single mouse, domain ``openfield``): speed, nose speed, acceleration,
head-body angle, body length (nose to tail base), elongation (ellipse axis ratio),
ellipse area, nose-neck distance (a nose-height proxy: it shortens when the mouse rears
towards the camera), distance to the arena wall and to the arena centre. The arena is the
quadrilateral of the four corner keypoints averaged over the window, or a fixed box
``arena=(x0, y0, x1, y1)``; wall distance is the distance from the centroid to the
nearest side line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch

from nsprog.data.trajectories import Trajectories
from nsprog.features.base import Domain, Feature

__all__ = [
    "CANONICAL",
    "KEYPOINT_PRESETS",
    "MouseContext",
    "resolve_mapping",
    "mouse_domain",
    "openfield_domain",
    "head_body_angle",
    "social_angle",
    "ellipse_axes",
    "bbox_iou",
    "DSL1_FEATURES",
    "DSL2_FEATURES",
    "DSL3_FEATURES",
]

CANONICAL = (
    "nose", "ear_left", "ear_right", "neck", "hip_left", "hip_right", "tail_base", "centre", "tail_end",
    "corner_tl", "corner_tr", "corner_bl", "corner_br",
)
BODY_PARTS = ("nose", "ear_left", "ear_right", "neck", "hip_left", "hip_right", "tail_base", "centre")
DERIVED = {
    "head": ("nose", "ear_left", "ear_right"),
    "body": ("neck", "hip_left", "hip_right", "tail_base", "centre"),
}

#: preset name -> canonical point -> file keypoint name(s) (a list means their mean)
KEYPOINT_PRESETS: dict[str, dict[str, str | list[str]]] = {
    "calms21": {
        "nose": "nose", "ear_left": "ear_left", "ear_right": "ear_right", "neck": "neck",
        "hip_left": "hip_left", "hip_right": "hip_right", "tail_base": "tail_base",
    },
    # CRIM13 / SimBA 8-point skeleton: no neck (the midpoint of the ears stands in), the lateral
    # body points stand in for the hips
    "crim13": {
        "nose": "Nose", "ear_left": "Ear_left", "ear_right": "Ear_right", "neck": ["Ear_left", "Ear_right"],
        "hip_left": "Lat_left", "hip_right": "Lat_right", "tail_base": "Tail_base", "centre": "Center",
        "tail_end": "Tail_end", "body": ["Lat_left", "Lat_right", "Tail_base", "Center"],
    },
    "mabe22": {
        "nose": "nose", "ear_left": "left ear", "ear_right": "right ear", "neck": "neck", "centre": "center back",
        "tail_base": "tail base", "tail_end": "tail tip",
    },
    "openfield": {
        "nose": "nose", "ear_left": "earl", "ear_right": "earr", "neck": "neck", "hip_left": "hipl",
        "hip_right": "hipr", "tail_base": "tailbase", "centre": "bodycentre", "tail_end": "tailtip",
        "corner_tl": "tl", "corner_tr": "tr", "corner_bl": "bl", "corner_br": "br",
    },
    "jabs": {
        "nose": "NOSE", "ear_left": "LEFT_EAR", "ear_right": "RIGHT_EAR", "neck": "BASE_NECK",
        "centre": "CENTER_SPINE", "tail_base": "BASE_TAIL", "tail_end": "TIP_TAIL",
    },
}

DSL1_FEATURES = (
    "resident_head_body_angle", "intruder_head_body_angle", "resident_social_angle", "intruder_social_angle",
    "resident_speed", "intruder_speed", "nose_tail_distance", "nose_nose_distance",
)
DSL2_FEATURES = (
    "head_head_distance", "body_body_distance", "head_body_distance", "resident_acceleration",
    "resident_nose_speed", "resident_axis_ratio", "bbox_iou", "resident_social_angle", "nose_tail_distance",
    "nose_nose_distance",
)
DSL3_FEATURES = (
    "resident_head_body_angle", "intruder_head_body_angle", "resident_ellipse_area", "intruder_ellipse_area",
    "resident_acceleration", "intruder_acceleration", "nose_tail_distance", "nose_nose_distance",
)

TWO_PI = 2.0 * math.pi


# --------------------------------------------------------------------------- mapping
def _as_list(v) -> list[str]:
    return [v] if isinstance(v, str) else [str(x) for x in v]


def resolve_mapping(keypoints: str | Mapping[str, str | Sequence[str]], layout_keypoints: Sequence[str]) -> tuple[str, dict[str, list[str]]]:
    """Pick a preset (``"auto"``: the one that maps the most of the file's keypoints) or check a dict.

    Returns ``(name, mapping canonical -> list of file keypoint names)``.
    """
    present = set(layout_keypoints)
    if isinstance(keypoints, str):
        if keypoints == "auto":
            scores = {
                name: sum(all(k in present for k in _as_list(v)) for v in m.values())
                for name, m in KEYPOINT_PRESETS.items()
            }
            best = max(scores, key=lambda n: scores[n])
            if scores[best] == 0:
                raise ValueError(
                    f"no keypoint preset matches the windows' keypoints {list(layout_keypoints)}; presets: "
                    f"{', '.join(KEYPOINT_PRESETS)}; pass keypoints={{canonical: file name}} with canonical names "
                    f"from {', '.join(CANONICAL)}"
                )
            keypoints = best
        if keypoints not in KEYPOINT_PRESETS:
            raise KeyError(f"unknown keypoint preset {keypoints!r}; available: auto, {', '.join(KEYPOINT_PRESETS)}")
        return keypoints, {k: _as_list(v) for k, v in KEYPOINT_PRESETS[keypoints].items()}
    bad = [k for k in keypoints if k not in CANONICAL and k not in DERIVED and k != "centroid"]
    if bad:
        raise KeyError(
            f"keypoint mapping has unknown canonical name(s) {bad}; allowed: {', '.join(CANONICAL)}, head, body, centroid"
        )
    return "custom", {k: _as_list(v) for k, v in keypoints.items()}


@dataclass
class MouseContext:
    """Keypoint indices resolved once per dataset; built by the domains' ``prepare``."""

    n_individuals: int
    n_keypoints: int
    individuals: list[str]
    keypoints: list[str]
    preset: str
    mapping: dict[str, list[str]]
    points: dict[str, list[int]] = field(default_factory=dict)  # canonical -> keypoint indices
    missing: dict[str, str] = field(default_factory=dict)  # canonical -> reason
    focal: tuple[int, ...] = (0, 1)  # resident, intruder (or the one open-field mouse)
    arena: tuple[float, float, float, float] | None = None
    _owner: torch.Tensor | None = field(default=None, repr=False)
    _key: tuple = field(default=(), repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    def view(self, s: torch.Tensor) -> torch.Tensor:
        n, t, d = s.shape
        if d != self.n_individuals * self.n_keypoints * 2:
            raise ValueError(
                f"states have {d} dims; the layout has {self.n_individuals} individuals x {self.n_keypoints} "
                "keypoints x 2"
            )
        return s.reshape(n, t, self.n_individuals, self.n_keypoints, 2)

    def need(self, name: str, feature: str) -> list[int]:
        if name in self.points:
            return self.points[name]
        reason = self.missing.get(name, "not mapped")
        raise ValueError(
            f"feature {feature!r} needs keypoint {name!r}, which is {reason} (keypoint preset {self.preset!r}); "
            f"the windows have keypoints {self.keypoints}. Choose another feature or pass keypoints={{'{name}': ...}}"
        )

    def point(self, s: torch.Tensor, ind: int, name: str, feature: str) -> torch.Tensor:
        """``[N, T+1, 2]`` position of canonical point ``name`` of individual ``ind``.

        A single keypoint is a view of the states. A mean of several keypoints (head, body,
        centroid, ...) is computed for all focal individuals at once by one matrix product
        and cached for the current batch (the cache follows the tensor's identity and its
        in-place version counter, so it never serves stale values).
        """
        idx = self.need(name, feature)
        if len(idx) == 1:
            return self.view(s)[:, :, ind, idx[0]]
        if ind not in self.focal:
            return self.view(s)[:, :, ind, idx].mean(dim=2)
        return self._mean_points(s, name, idx)[:, :, self.focal.index(ind)]

    def _mean_points(self, s: torch.Tensor, name: str, idx: list[int]) -> torch.Tensor:
        key = (id(s), s._version, s.data_ptr(), tuple(s.shape), s.dtype, s.device)
        if self._owner is not s or self._key != key:
            self._owner, self._key, self._cache = s, key, {}
        if name not in self._cache:
            n, t, d = s.shape
            self.view(s)  # checks the state size
            w = torch.zeros(d, len(self.focal) * 2, dtype=s.dtype, device=s.device)
            for j, ind in enumerate(self.focal):
                for k in idx:
                    for c in range(2):
                        w[(ind * self.n_keypoints + k) * 2 + c, j * 2 + c] = 1.0 / len(idx)
            self._cache[name] = (s.reshape(n * t, d) @ w).reshape(n, t, len(self.focal), 2)
        return self._cache[name]

    def cloud(self, s: torch.Tensor, ind: int, feature: str) -> torch.Tensor:
        """``[N, T+1, P, 2]`` the body keypoints of individual ``ind`` (for centroid, ellipse, box)."""
        idx = self.need("centroid", feature)
        v = self.view(s)
        if idx == list(range(idx[0], idx[0] + len(idx))):
            return v[:, :, ind, idx[0] : idx[0] + len(idx)]
        return v[:, :, ind, idx]


def _build_context(traj: Trajectories, keypoints, focal: Sequence, n_required: int, domain: str,
                   arena=None) -> MouseContext:
    layout = traj.metadata.get("layout") or {}
    if layout.get("kind", "keypoints") != "keypoints" or "keypoints" not in layout:
        raise ValueError(
            f"the {domain!r} domain needs keypoint windows with metadata['layout'] naming individuals and keypoints "
            f"(from Recording.to_trajectories); these windows have layout {layout or 'none'}"
        )
    inds, kps = list(layout["individuals"]), list(layout["keypoints"])
    if traj.state_dim != len(inds) * len(kps) * 2:
        raise ValueError(
            f"windows have {traj.state_dim} state dims; the layout promises {len(inds)} individuals x {len(kps)} "
            "keypoints x 2"
        )
    if len(inds) < n_required:
        raise ValueError(f"the {domain!r} domain needs {n_required} individuals; the windows have {inds}")
    fidx = []
    for f in focal:
        if isinstance(f, str):
            if f not in inds:
                raise KeyError(f"no individual {f!r}; available: {', '.join(inds)}")
            fidx.append(inds.index(f))
        else:
            if not 0 <= int(f) < len(inds):
                raise IndexError(f"individual index {f} out of range for {inds}")
            fidx.append(int(f))
    preset, mapping = resolve_mapping(keypoints, kps)
    ctx = MouseContext(len(inds), len(kps), inds, kps, preset, mapping, focal=tuple(fidx), arena=arena)
    for canon, names in mapping.items():
        lacking = [n for n in names if n not in kps]
        if lacking:
            ctx.missing[canon] = f"mapped to {names} but the file lacks {lacking}"
        else:
            ctx.points[canon] = [kps.index(n) for n in names]
    for canon, parts in DERIVED.items():
        if canon in ctx.points or canon in mapping:
            continue
        used = sorted({i for p in parts if p in ctx.points for i in ctx.points[p]})
        if used:
            ctx.points[canon] = used
        else:
            ctx.missing[canon] = f"derived from {list(parts)}, none of which is mapped"
    if "centroid" not in mapping:
        used = sorted({i for p in BODY_PARTS if p in ctx.points for i in ctx.points[p]})
        if used:
            ctx.points["centroid"] = used
        else:
            ctx.missing["centroid"] = f"derived from {list(BODY_PARTS)}, none of which is mapped"
    return ctx


# --------------------------------------------------------------------------- primitives
def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1]


def _norm(a: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(a[..., 0] * a[..., 0] + a[..., 1] * a[..., 1])


def head_body_angle(nose: torch.Tensor, neck: torch.Tensor, tail_base: torch.Tensor) -> torch.Tensor:
    """Signed angle ``atan2(det(v0, v1), v0 . v1)``, ``v0 = nose - neck``, ``v1 = neck - tail_base``."""
    v0 = nose - neck
    v1 = neck - tail_base
    return torch.atan2(_cross(v0, v1), _dot(v0, v1))


def social_angle(neck: torch.Tensor, tail_base: torch.Tensor, centroid: torch.Tensor, other_centroid: torch.Tensor) -> torch.Tensor:
    """Angle in ``[0, pi]`` between the body axis (tail base -> neck) and the direction to the other centroid."""
    axis = neck - tail_base
    to_other = other_centroid - centroid
    a = torch.atan2(_cross(axis, to_other), _dot(axis, to_other))
    a = ((a % TWO_PI) + TWO_PI) % TWO_PI  # explicit precedence: wrap into [0, 2 pi)
    return torch.minimum(a, TWO_PI - a)  # fold to [0, pi]


def ellipse_axes(cloud: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues ``(l1, l2)``, ``l1 >= l2``, of the covariance of points ``[..., P, 2]`` (closed form)."""
    c = cloud - cloud.mean(dim=-2, keepdim=True)
    sxx = (c[..., 0] * c[..., 0]).mean(-1)
    syy = (c[..., 1] * c[..., 1]).mean(-1)
    sxy = (c[..., 0] * c[..., 1]).mean(-1)
    half_tr = 0.5 * (sxx + syy)
    disc = torch.sqrt((0.5 * (sxx - syy)) ** 2 + sxy * sxy)
    l1 = half_tr + disc
    l2 = (half_tr - disc).clamp_min(0.0)
    return l1, l2


def bbox_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of the axis-aligned boxes around point sets ``a`` and ``b`` (``[..., P, 2]``)."""
    amin, amax = a.amin(dim=-2), a.amax(dim=-2)
    bmin, bmax = b.amin(dim=-2), b.amax(dim=-2)
    inter_wh = (torch.minimum(amax, bmax) - torch.maximum(amin, bmin)).clamp_min(0.0)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    area_a = (amax - amin).prod(dim=-1)
    area_b = (bmax - bmin).prod(dim=-1)
    union = area_a + area_b - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(union))


def _step(p: torch.Tensor) -> torch.Tensor:
    """Per-frame displacement norm ``[N, T+1]`` (frame 0 repeats frame 1)."""
    d = _norm(p[:, 1:] - p[:, :-1])
    return torch.cat([d[:, :1], d], dim=1)


def _accel(p: torch.Tensor) -> torch.Tensor:
    """Norm of the second difference ``[N, T+1]`` (first and last frame repeat their neighbour)."""
    if p.shape[1] < 3:
        return torch.zeros(p.shape[:2], dtype=p.dtype, device=p.device)
    a = _norm(p[:, 2:] - 2 * p[:, 1:-1] + p[:, :-2])
    return torch.cat([a[:, :1], a, a[:, -1:]], dim=1)


# --------------------------------------------------------------------------- feature builders
def _centroid(s, ctx: MouseContext, ind: int, feature: str) -> torch.Tensor:
    return ctx.point(s, ind, "centroid", feature)


def _f_head_body(k: int, name: str):
    def fn(s, ctx: MouseContext):
        i = ctx.focal[k]
        return head_body_angle(ctx.point(s, i, "nose", name), ctx.point(s, i, "neck", name), ctx.point(s, i, "tail_base", name))
    return fn


def _f_social(k: int, name: str):
    def fn(s, ctx: MouseContext):
        i, o = ctx.focal[k], ctx.focal[1 - k]
        return social_angle(
            ctx.point(s, i, "neck", name), ctx.point(s, i, "tail_base", name),
            _centroid(s, ctx, i, name), _centroid(s, ctx, o, name),
        )
    return fn


def _f_speed(k: int, name: str):
    return lambda s, ctx: _step(_centroid(s, ctx, ctx.focal[k], name))


def _f_nose_speed(k: int, name: str):
    return lambda s, ctx: _step(ctx.point(s, ctx.focal[k], "nose", name))


def _f_accel(k: int, name: str):
    return lambda s, ctx: _accel(_centroid(s, ctx, ctx.focal[k], name))


def _f_dist(a: str, b: str, name: str):
    def fn(s, ctx: MouseContext):
        r, i = ctx.focal[0], ctx.focal[1]
        pa = _centroid(s, ctx, r, name) if a == "centroid" else ctx.point(s, r, a, name)
        pb = _centroid(s, ctx, i, name) if b == "centroid" else ctx.point(s, i, b, name)
        return _norm(pa - pb)
    return fn


def _f_pair_dist(k: int, a: str, b: str, name: str):
    return lambda s, ctx: _norm(ctx.point(s, ctx.focal[k], a, name) - ctx.point(s, ctx.focal[k], b, name))


def _f_axis_ratio(k: int, name: str):
    def fn(s, ctx: MouseContext):
        l1, l2 = ellipse_axes(ctx.cloud(s, ctx.focal[k], name))
        return torch.sqrt(l1 / torch.maximum(l2, 1e-6 * l1).clamp_min(1e-12))
    return fn


def _f_area(k: int, name: str):
    def fn(s, ctx: MouseContext):
        l1, l2 = ellipse_axes(ctx.cloud(s, ctx.focal[k], name))
        return 4.0 * math.pi * torch.sqrt(l1 * l2)
    return fn


def _f_iou(name: str):
    return lambda s, ctx: bbox_iou(ctx.cloud(s, ctx.focal[0], name), ctx.cloud(s, ctx.focal[1], name))


def _arena_edges(s, ctx: MouseContext, name: str) -> torch.Tensor | None:
    """``[N, 4, 2]`` corners tl, tr, br, bl averaged over the window (None when a fixed box is set)."""
    if ctx.arena is not None:
        return None
    i = ctx.focal[0]
    corners = [ctx.point(s, i, c, name).mean(dim=1) for c in ("corner_tl", "corner_tr", "corner_br", "corner_bl")]
    return torch.stack(corners, dim=1)


def _f_wall(name: str):
    def fn(s, ctx: MouseContext):
        c = _centroid(s, ctx, ctx.focal[0], name)  # [N, T, 2]
        if ctx.arena is not None:
            x0, y0, x1, y1 = ctx.arena
            x, y = c[..., 0], c[..., 1]
            return torch.minimum(torch.minimum(x - x0, x1 - x), torch.minimum(y - y0, y1 - y))
        q = _arena_edges(s, ctx, name)  # [N, 4, 2]
        a = q[:, None, :, :]  # [N, 1, 4, 2]
        e = torch.roll(q, shifts=-1, dims=1)[:, None] - a  # edge vectors
        rel = c[:, :, None, :] - a  # [N, T, 4, 2]
        dist = _cross(e, rel).abs() / _norm(e).clamp_min(1e-9)
        return dist.amin(dim=-1)
    return fn


def _f_centre_dist(name: str):
    def fn(s, ctx: MouseContext):
        c = _centroid(s, ctx, ctx.focal[0], name)
        if ctx.arena is not None:
            x0, y0, x1, y1 = ctx.arena
            centre = c.new_tensor([(x0 + x1) / 2, (y0 + y1) / 2])
            return _norm(c - centre)
        q = _arena_edges(s, ctx, name)
        return _norm(c - q.mean(dim=1)[:, None, :])
    return fn


# --------------------------------------------------------------------------- domains
def mouse_domain(keypoints: str | Mapping = "auto", resident: int | str = 0, intruder: int | str = 1) -> Domain:
    """Two-mouse (resident-intruder) features; ``keypoints`` is a preset name, ``"auto"`` or a mapping."""
    feats: list[Feature] = []
    for k, who in ((0, "resident"), (1, "intruder")):
        feats += [
            Feature(f"{who}_head_body_angle", _f_head_body(k, f"{who}_head_body_angle"), f"{who}: signed nose-neck vs neck-tail base angle", "rad"),
            Feature(f"{who}_social_angle", _f_social(k, f"{who}_social_angle"), f"{who}: body axis vs direction to the other mouse, [0, pi]", "rad"),
            Feature(f"{who}_speed", _f_speed(k, f"{who}_speed"), f"{who}: centroid displacement per frame", "px/frame"),
            Feature(f"{who}_nose_speed", _f_nose_speed(k, f"{who}_nose_speed"), f"{who}: nose displacement per frame", "px/frame"),
            Feature(f"{who}_acceleration", _f_accel(k, f"{who}_acceleration"), f"{who}: norm of the centroid's second difference", "px/frame^2"),
            Feature(f"{who}_axis_ratio", _f_axis_ratio(k, f"{who}_axis_ratio"), f"{who}: ellipse major / minor axis", ""),
            Feature(f"{who}_ellipse_area", _f_area(k, f"{who}_ellipse_area"), f"{who}: ellipse area (2-sigma semi-axes)", "px^2"),
        ]
    feats += [
        Feature("nose_nose_distance", _f_dist("nose", "nose", "nose_nose_distance"), "resident nose to intruder nose", "px"),
        Feature("nose_tail_distance", _f_dist("nose", "tail_base", "nose_tail_distance"), "resident nose to intruder tail base", "px"),
        Feature("head_head_distance", _f_dist("head", "head", "head_head_distance"), "resident head to intruder head", "px"),
        Feature("body_body_distance", _f_dist("body", "body", "body_body_distance"), "resident body to intruder body", "px"),
        Feature("head_body_distance", _f_dist("head", "body", "head_body_distance"), "resident head to intruder body", "px"),
        Feature("centroid_distance", _f_dist("centroid", "centroid", "centroid_distance"), "resident to intruder centroid", "px"),
        Feature("bbox_iou", _f_iou("bbox_iou"), "IoU of the two mice's keypoint bounding boxes", ""),
    ]

    def prepare(traj: Trajectories) -> MouseContext:
        return _build_context(traj, keypoints, (resident, intruder), 2, "mouse")

    return Domain(
        name="mouse",
        features={f.name: f for f in feats},
        prepare=prepare,
        params={"keypoints": keypoints if isinstance(keypoints, str) else dict(keypoints), "resident": resident, "intruder": intruder},
        description="two-mouse (resident-intruder) keypoint features after MARS; resident = first individual",
    )


def openfield_domain(keypoints: str | Mapping = "auto", individual: int | str = 0,
                     arena: Sequence[float] | None = None) -> Domain:
    """Single-mouse open-field features; ``arena=(x0, y0, x1, y1)`` replaces the corner keypoints."""
    if arena is not None:
        if len(arena) != 4 or not (arena[2] > arena[0] and arena[3] > arena[1]):
            raise ValueError(f"arena must be (x0, y0, x1, y1) with x1 > x0 and y1 > y0; got {arena!r}")
        arena = tuple(float(a) for a in arena)
    feats = [
        Feature("speed", _f_speed(0, "speed"), "centroid displacement per frame", "px/frame"),
        Feature("nose_speed", _f_nose_speed(0, "nose_speed"), "nose displacement per frame", "px/frame"),
        Feature("acceleration", _f_accel(0, "acceleration"), "norm of the centroid's second difference", "px/frame^2"),
        Feature("head_body_angle", _f_head_body(0, "head_body_angle"), "signed nose-neck vs neck-tail base angle", "rad"),
        Feature("body_length", _f_pair_dist(0, "nose", "tail_base", "body_length"), "nose to tail base", "px"),
        Feature("elongation", _f_axis_ratio(0, "elongation"), "ellipse major / minor axis", ""),
        Feature("ellipse_area", _f_area(0, "ellipse_area"), "ellipse area (2-sigma semi-axes)", "px^2"),
        Feature("nose_neck_distance", _f_pair_dist(0, "nose", "neck", "nose_neck_distance"), "nose to neck; shortens when rearing", "px"),
        Feature("wall_distance", _f_wall("wall_distance"), "centroid to the nearest arena wall", "px"),
        Feature("centre_distance", _f_centre_dist("centre_distance"), "centroid to the arena centre", "px"),
    ]

    def prepare(traj: Trajectories) -> MouseContext:
        return _build_context(traj, keypoints, (individual,), 1, "openfield", arena)

    return Domain(
        name="openfield",
        features={f.name: f for f in feats},
        prepare=prepare,
        params={"keypoints": keypoints if isinstance(keypoints, str) else dict(keypoints), "individual": individual,
                "arena": None if arena is None else list(arena)},
        description="single-mouse open-field keypoint features (speed, rearing proxies, wall distance)",
    )
