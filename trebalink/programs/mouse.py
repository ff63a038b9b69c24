"""TREBA's ten mouse tasks, vectorised over windows (and the functions behind them).

Each task reads a few frames around the window's centre ``c = n_frames // 2`` (frame 10 of a
21-frame window) of keypoint windows (``nsprog`` layout, canonical keypoints through the
``mouse`` or ``openfield`` domain's keypoint mapping; resident = first individual):

* ``speed``: distance between the mouse's centroid (mean of its body keypoints) at
  ``c + span`` and at ``c - span`` (span 2);
* ``nose_movement``: norm of (nose displacement - centroid displacement) from ``c - span``
  to ``c + span``;
* ``social_angle``: the angle in ``[0, pi]`` between the body axis (tail base -> neck) and the
  direction to the other mouse's centroid, at ``c``, with explicit precedence
  (:func:`nsprog.features.mouse.social_angle`; the reference wrote ``% 2*pi``, which parses
  as ``(x % 2) * pi``);
* ``nose_nose_distance`` / ``nose_tail_distance``: resident nose to intruder nose / tail base at ``c``;
* ``head_body_angle``: signed ``atan2(det(v0, v1), v0 . v1)``, ``v0 = nose - neck``,
  ``v1 = neck - tail_base``, at ``c`` (a reflection flips its sign).

Thresholds of the expert set are TREBA's, in pixels of CalMS21's 1024 x 570 frame.
"""

from __future__ import annotations

import torch

from nsprog.features.mouse import MouseContext, head_body_angle, social_angle
from trebalink.programs import TaskFunction, domain_context
from trebalink.tasks import Task, TaskError, TaskSet

__all__ = ["FUNCTIONS", "expert_tasks", "EXPERT"]

_DOMAINS = ("mouse", "openfield")


def _individual(ctx: MouseContext, who, fn: str) -> int:
    """Index into the layout's individuals of ``who`` (resident / intruder or a focal position)."""
    names = {"resident": 0, "intruder": 1}
    k = names.get(who, who)
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(ctx.focal):
        allowed = ", ".join(list(names)[: len(ctx.focal)] + [str(i) for i in range(len(ctx.focal))])
        raise TaskError(f"{fn}: individual must be one of {allowed} for these windows ({len(ctx.focal)} focal "
                        f"animal(s): {[ctx.individuals[i] for i in ctx.focal]}); got {who!r}")
    return ctx.focal[k]


def _centre_frames(traj_frames: int, span: int, fn: str) -> tuple[int, int, int]:
    if isinstance(span, bool) or not isinstance(span, int) or span < 1:
        raise TaskError(f"{fn}: span must be a positive integer (frames); got {span!r}")
    c = traj_frames // 2
    if c - span < 0 or c + span >= traj_frames:
        raise TaskError(f"{fn}: span {span} needs windows of at least {2 * span + 1} frames; these have {traj_frames}")
    return c - span, c, c + span


def _context(taskset, traj, cache) -> MouseContext:
    ctx = domain_context(taskset, traj, cache)[1]
    if not isinstance(ctx, MouseContext):
        raise TaskError(f"mouse task functions need a keypoint domain (mouse or openfield); got {taskset.domain!r}")
    return ctx


def _need(ctx: MouseContext, fn: str, *points: str) -> None:
    for p in points:
        ctx.need(p, fn)  # raises naming the keypoint and what the windows have


def _check_frames(states: torch.Tensor, n: int, fn: str) -> None:
    if states.shape[1] != n:
        raise TaskError(f"{fn}: bound to windows of {n} frames; got {states.shape[1]}")


def _make_speed(taskset, task, args, traj, cache):
    ctx = _context(taskset, traj, cache)
    i = _individual(ctx, args["individual"], task.name)
    lo, _, hi = _centre_frames(traj.n_frames, args["span"], task.name)
    _need(ctx, task.name, "centroid")
    n = traj.n_frames

    def fn(s: torch.Tensor) -> torch.Tensor:
        _check_frames(s, n, task.name)
        p = ctx.point(s[:, [lo, hi]], i, "centroid", task.name)
        return torch.linalg.vector_norm(p[:, 1] - p[:, 0], dim=-1)

    return fn


def _make_nose_movement(taskset, task, args, traj, cache):
    ctx = _context(taskset, traj, cache)
    i = _individual(ctx, args["individual"], task.name)
    lo, _, hi = _centre_frames(traj.n_frames, args["span"], task.name)
    _need(ctx, task.name, "centroid", "nose")
    n = traj.n_frames

    def fn(s: torch.Tensor) -> torch.Tensor:
        _check_frames(s, n, task.name)
        sub = s[:, [lo, hi]]
        c = ctx.point(sub, i, "centroid", task.name)
        nose = ctx.point(sub, i, "nose", task.name)
        return torch.linalg.vector_norm((nose[:, 1] - nose[:, 0]) - (c[:, 1] - c[:, 0]), dim=-1)

    return fn


def _make_social_angle(taskset, task, args, traj, cache):
    ctx = _context(taskset, traj, cache)
    if len(ctx.focal) < 2:
        raise TaskError(f"{task.name}: the social angle needs two animals; these windows have one focal animal")
    i = _individual(ctx, args["individual"], task.name)
    o = ctx.focal[1] if i == ctx.focal[0] else ctx.focal[0]
    _need(ctx, task.name, "neck", "tail_base", "centroid")
    c = traj.n_frames // 2
    n = traj.n_frames

    def fn(s: torch.Tensor) -> torch.Tensor:
        _check_frames(s, n, task.name)
        sub = s[:, c : c + 1]
        a = social_angle(ctx.point(sub, i, "neck", task.name), ctx.point(sub, i, "tail_base", task.name),
                         ctx.point(sub, i, "centroid", task.name), ctx.point(sub, o, "centroid", task.name))
        return a[:, 0]

    return fn


def _make_head_body_angle(taskset, task, args, traj, cache):
    ctx = _context(taskset, traj, cache)
    i = _individual(ctx, args["individual"], task.name)
    _need(ctx, task.name, "nose", "neck", "tail_base")
    c = traj.n_frames // 2
    n = traj.n_frames

    def fn(s: torch.Tensor) -> torch.Tensor:
        _check_frames(s, n, task.name)
        sub = s[:, c : c + 1]
        a = head_body_angle(ctx.point(sub, i, "nose", task.name), ctx.point(sub, i, "neck", task.name),
                            ctx.point(sub, i, "tail_base", task.name))
        return a[:, 0]

    return fn


def _make_pair_distance(point_a: str, point_b: str):
    def make(taskset, task, args, traj, cache):
        ctx = _context(taskset, traj, cache)
        if len(ctx.focal) < 2:
            raise TaskError(f"{task.name}: a resident-intruder distance needs two animals; these windows have one")
        r, i = ctx.focal[0], ctx.focal[1]
        _need(ctx, task.name, point_a, point_b)
        c = traj.n_frames // 2
        n = traj.n_frames

        def fn(s: torch.Tensor) -> torch.Tensor:
            _check_frames(s, n, task.name)
            sub = s[:, c : c + 1]
            d = ctx.point(sub, r, point_a, task.name) - ctx.point(sub, i, point_b, task.name)
            return torch.linalg.vector_norm(d[:, 0], dim=-1)

        return fn

    return make


_WHO = {"individual": "resident"}

#: the mouse task functions (entries of trebalink.programs.FUNCTIONS)
FUNCTIONS = (
    TaskFunction("speed", _make_speed, {**_WHO, "span": 2}, domains=_DOMAINS,
                 description="centroid displacement from centre-span to centre+span (px per 2*span frames)"),
    TaskFunction("nose_movement", _make_nose_movement, {**_WHO, "span": 2}, domains=_DOMAINS,
                 description="norm of nose displacement minus centroid displacement over centre+-span"),
    TaskFunction("social_angle", _make_social_angle, dict(_WHO), domains=_DOMAINS,
                 description="body axis vs direction to the other mouse's centroid at the centre, [0, pi]"),
    TaskFunction("head_body_angle", _make_head_body_angle, dict(_WHO), domains=_DOMAINS,
                 description="signed nose-neck vs neck-tail base angle at the centre frame"),
    TaskFunction("nose_nose_distance", _make_pair_distance("nose", "nose"), {}, domains=_DOMAINS,
                 description="resident nose to intruder nose at the centre frame"),
    TaskFunction("nose_tail_distance", _make_pair_distance("nose", "tail_base"), {}, domains=_DOMAINS,
                 description="resident nose to intruder tail base at the centre frame"),
)

#: (task name, function, args, thresholds): TREBA's ten mouse tasks (DESIGN.md section 9)
EXPERT = (
    ("speed_resident", "speed", {"individual": "resident"}, (10.0, 20.0)),
    ("speed_intruder", "speed", {"individual": "intruder"}, (10.0, 20.0)),
    ("social_angle_resident", "social_angle", {"individual": "resident"}, (0.5, 1.5)),
    ("social_angle_intruder", "social_angle", {"individual": "intruder"}, (0.5, 1.5)),
    ("nose_movement_resident", "nose_movement", {"individual": "resident"}, (5.0, 8.0)),
    ("nose_movement_intruder", "nose_movement", {"individual": "intruder"}, (5.0, 8.0)),
    ("nose_nose_distance", "nose_nose_distance", {}, (60.0, 200.0)),
    ("nose_tail_distance", "nose_tail_distance", {}, (60.0, 200.0)),
    ("head_body_angle_resident", "head_body_angle", {"individual": "resident"}, (-0.5, 0.5)),
    ("head_body_angle_intruder", "head_body_angle", {"individual": "intruder"}, (-0.5, 0.5)),
)


def expert_tasks(keypoints: str = "auto") -> TaskSet:
    """TREBA's ten mouse tasks (3 classes each, thresholds in CalMS21 pixels)."""
    tasks = tuple(Task(name, fn, args, "categorical", thr, description=f"TREBA expert task ({fn})",
                       provenance={"source": "expert:mouse (TREBA, Sun et al. 2021)"})
                  for name, fn, args, thr in EXPERT)
    return TaskSet(tasks, name="expert:mouse", domain="mouse", domain_params={"keypoints": keypoints},
                   provenance={"source": "expert:mouse"})
