"""The four DSE benchmarks: programs in the IR, specs, networks and ground-truth experts.

Each benchmark is one :class:`Benchmark`: the program (written in :mod:`nsprog.safety.ir`),
its input box, its safety :class:`~nsprog.safety.spec.Spec`, a factory for the learnable
networks and a factory for the *ground-truth* modules. The ground-truth program is the same
program with the networks replaced by expert functions, run by the concrete interpreter;
the (input, output) pairs of its module calls are the training data (no downloads).

Benchmarks (DESIGN.md section 12):

- ``thermostat``: x0 in [60, 64]; 20 iterations of "if isOn <= 0.5: (isOn, h) = cool(x);
  x = 0.95 x else (isOn, h) = heat(x); x = 0.95 x + 15 h"; safe: x in [55, 83].
- ``aircraft``: own aircraft at (x1, -15), x1 in [12, 16], intruder at (0, 0) moving +5 in x
  per step, own moving +5 in y; a network scores (x1, y1, x2, y2, stage) into cruise / left
  (x1 -= 5) / straight / right (x1 += 5), picked by argmax; 15 iterations; safe: squared
  distance >= 40 after the first step.
- ``racetrack``: two agents start at x in [5, 6], y = 0; each agent's network (x, y) -> 3
  scores picks x - 1 / stay / x + 1, y += 1; 20 iterations; safe: each x inside its lane map
  and |x1 - x2| >= 0.5 from step 1. The expert moves at random among moves that can still
  stay in the lanes, ignoring the other agent (data and safety conflict).
- ``cartpole``: linearised cart-pole, 4 inputs in [-0.05, 0.05]; a network gives an action
  in (0, 1); force -10 if <= 0.5 else +10; 11 iterations; safe: x in [-0.1, 0.1]. The gym
  linearisation (tau 0.02) is used: thetadot += 0.3156 theta - 0.0293 F (the reference code
  has -0.0029 F, a likely slip). The expert is bang-bang LQR (sign of -K s) on these
  matrices with Q = diag(1, 0.1, 0.1, 10), R = 1, which keeps |x| <= 0.0955 on the box.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from nsprog.safety.box import Box
from nsprog.safety.ir import Call, Const, V, Program, argmax, assign, if_le, loop, record
from nsprog.safety.nets import make_mlp
from nsprog.safety.spec import Constraint, Spec

__all__ = ["Benchmark", "BENCHMARKS", "get_benchmark", "benchmark_names"]


#: training defaults shared by the benchmarks (see DESIGN.md section 12 and the safety README
#: for how they differ from the reference's: 1 DSE component x 30 paths, 100 DiffAI+ components)
_TRAIN_DEFAULTS = dict(dse_components=500, dse_paths=4, dse_components_per_step=16,
                       diffai_components=500, diffai_components_per_step=64)


@dataclass
class Benchmark:
    """A program with learnable modules, its input box, spec and ground truth.

    Attributes
    ----------
    name, description : str
    program : Program
    input_lo, input_hi : tensor ``[k]``
        The input box (one entry per ``program.inputs`` variable).
    spec : Spec
    make_modules : callable () -> dict of ``nn.Sequential``
    make_experts : callable (torch.Generator) -> dict of callables (the ground truth)
    defaults : dict
        Per-benchmark defaults: ``diffai_components``, ``dse_components`` (training
        components), ``diffai_components_per_step``, ``dse_components_per_step`` (drawn per
        step), ``dse_paths`` (paths per DSE component), ``verifier_components`` (pieces per
        input dimension for the final verifier) and ``val_verifier_components`` (the
        separate, coarser validation verifier).
    plot_vars : tuple of str
        Recorded variables drawn against their safe region.
    """

    name: str
    description: str
    program: Program
    input_lo: torch.Tensor
    input_hi: torch.Tensor
    spec: Spec
    make_modules: Callable[[], dict]
    make_experts: Callable[[torch.Generator | None], dict]
    defaults: dict = field(default_factory=dict)
    plot_vars: tuple = ()

    @property
    def input_box(self) -> Box:
        return Box(self.input_lo, self.input_hi, name=f"{self.name} input box")

    @property
    def n_inputs(self) -> int:
        return len(self.program.inputs)


# --------------------------------------------------------------------------- thermostat
THERMO_SWITCH_ON = 60.95  # cooling switches the heater on at or below this temperature
THERMO_SWITCH_OFF = 76.0  # heating switches off above this temperature


def _thermostat() -> Benchmark:
    body = [
        record("x"),
        loop(20, [
            if_le("isOn", 0.5,
                  then=[assign(("isOn", "h"), _call("cool", "x")), assign("x", V("x") * 0.95)],
                  orelse=[assign(("isOn", "h"), _call("heat", "x")), assign("x", V("x") * 0.95 + V("h") * 15.0)]),
            record("x"),
        ]),
    ]
    program = Program("thermostat", ("x",), tuple(body), init={"isOn": 0.0, "h": 0.0})
    spec = Spec(program, [Constraint("x", 55.0, 83.0)])

    def make_modules():
        return {
            "cool": make_mlp(1, 2, out_act="sigmoid", center=[69.0], scale=[8.0]),
            "heat": make_mlp(1, 2, out_act="sigmoid", center=[69.0], scale=[8.0]),
        }

    def cool(x):
        t = x[:, 0]
        return torch.stack([(t <= THERMO_SWITCH_ON).to(x.dtype), torch.zeros_like(t)], -1)

    def heat(x):
        t = x[:, 0]
        on = (t <= THERMO_SWITCH_OFF).to(x.dtype)
        h = ((83.0 - 0.95 * t) / 15.0).clamp(0.0, 1.0)
        return torch.stack([on, h], -1)

    return Benchmark(
        name="thermostat",
        description="thermostat with learned cooler and heater; x in [55, 83] for 20 steps",
        program=program,
        input_lo=torch.tensor([60.0]),
        input_hi=torch.tensor([64.0]),
        spec=spec,
        make_modules=make_modules,
        make_experts=lambda gen=None: {"cool": cool, "heat": heat},
        defaults=dict(_TRAIN_DEFAULTS, verifier_components=10_000, val_verifier_components=499),
        plot_vars=("x",),
    )


def _call(module: str, *inputs: str) -> Call:
    return Call(module, tuple(inputs))


# --------------------------------------------------------------------------- aircraft
AIRCRAFT_ACTIONS = ("cruise", "left", "straight", "right")


def _aircraft() -> Benchmark:
    dist = (V("x1") - V("x2")).square() + (V("y1") - V("y2")).square()
    branches = [
        [assign("stage", 0.0)],
        [assign(("x1", "stage"), (V("x1") - 5.0, Const(1.0)))],
        [assign("stage", 2.0)],
        [assign(("x1", "stage"), (V("x1") + 5.0, Const(3.0)))],
    ]
    body = [
        assign("d2", dist),
        record("d2", "x1", "y1"),
        loop(15, [
            assign(("s0", "s1", "s2", "s3"), _call("policy", "x1", "y1", "x2", "y2", "stage")),
            *argmax(("s0", "s1", "s2", "s3"), branches, prefix="act"),
            assign(("y1", "x2"), (V("y1") + 5.0, V("x2") + 5.0)),
            assign("d2", dist),
            record("d2", "x1", "y1"),
        ]),
    ]
    program = Program("aircraft", ("x1",), tuple(body), init={"y1": -15.0, "x2": 0.0, "y2": 0.0, "stage": 0.0})
    lo = [0.0] + [40.0] * 15
    spec = Spec(program, [Constraint("d2", tuple(lo), float("inf"), name="squared distance")])

    def make_modules():
        return {"policy": make_mlp(5, 4, out_act="sigmoid", center=[5.0, 20.0, 35.0, 0.0, 1.5],
                                   scale=[15.0, 40.0, 40.0, 1.0, 1.5])}

    def policy(inp):
        x1, y1, x2, y2, stage = inp.unbind(-1)
        dx, dy = x1 - x2, y1 - y2
        nxt = (dx - 5.0) ** 2 + (dy + 5.0) ** 2  # squared distance after one step without turning
        s = stage.round()
        cruise = torch.where((dy < 0) & (nxt <= 250.0), 1, 0)
        left = torch.where(nxt < 60.0, 1, 2)
        straight = torch.where(dy > 0, 3, 2)
        right = torch.where(dy <= 10.0, 3, 0)
        act = torch.where(s == 0, cruise, torch.where(s == 1, left, torch.where(s == 2, straight, right)))
        return nn.functional.one_hot(act, 4).to(inp.dtype)

    return Benchmark(
        name="aircraft",
        description="aircraft collision avoidance; squared distance >= 40 after the first step",
        program=program,
        input_lo=torch.tensor([12.0]),
        input_hi=torch.tensor([16.0]),
        spec=spec,
        make_modules=make_modules,
        make_experts=lambda gen=None: {"policy": policy},
        defaults=dict(_TRAIN_DEFAULTS, verifier_components=10_000, val_verifier_components=499),
        plot_vars=("d2", "x1"),
    )


# --------------------------------------------------------------------------- racetrack
RACETRACK_LANES = (
    [(5.0, 6.0)] + [(4.0, 7.0)] * 4 + [(4.0, 8.0)] * 4 + [(4.0, 9.0)] * 4 + [(4.0, 10.0)] * 3
    + [(0.0, 10.0)] * 4 + [(0.0, 4.0)]
)


def _feasible_lanes() -> list[tuple[float, float]]:
    """Backward reachability: positions at step t from which the lanes can still be kept."""
    feas = [None] * len(RACETRACK_LANES)
    feas[-1] = RACETRACK_LANES[-1]
    for t in range(len(RACETRACK_LANES) - 2, -1, -1):
        lo, hi = RACETRACK_LANES[t]
        nlo, nhi = feas[t + 1]
        feas[t] = (max(lo, nlo - 1.0), min(hi, nhi + 1.0))
    return feas


def _racetrack() -> Benchmark:
    def agent(i: int) -> list:
        x, s = f"x{i}", [f"a{i}_{j}" for j in range(3)]
        return [
            assign(tuple(s), _call(f"agent{i}", x, "y")),
            *argmax(tuple(s), [[assign(x, V(x) - 1.0)], [], [assign(x, V(x) + 1.0)]], prefix=f"mv{i}"),
        ]

    body = [
        assign(("x1", "x2"), (V("x") + 0.0, V("x") + 0.0)),
        assign("d", V("x1") - V("x2")),
        record("x1", "x2", "d"),
        loop(20, [
            *agent(1),
            *agent(2),
            assign("y", V("y") + 1.0),
            assign("d", V("x1") - V("x2")),
            record("x1", "x2", "d"),
        ]),
    ]
    program = Program("racetrack", ("x",), tuple(body), init={"y": 0.0})
    lane_lo = tuple(lo for lo, _ in RACETRACK_LANES)
    lane_hi = tuple(hi for _, hi in RACETRACK_LANES)
    spec = Spec(program, [
        Constraint("x1", lane_lo, lane_hi, name="agent 1 lane"),
        Constraint("x2", lane_lo, lane_hi, name="agent 2 lane"),
        Constraint("d", (0.0,) + (0.5,) * 20, float("inf"), absolute=True, name="|x1 - x2|"),
    ])
    feas = _feasible_lanes()
    feas_lo = torch.tensor([lo for lo, _ in feas] + [float("nan")], dtype=torch.float64)
    feas_hi = torch.tensor([hi for _, hi in feas] + [float("nan")], dtype=torch.float64)

    def make_modules():
        return {f"agent{i}": make_mlp(2, 3, out_act=None, center=[5.0, 10.0], scale=[5.0, 10.0]) for i in (1, 2)}

    def make_experts(gen=None):
        def expert(inp):
            x, y = inp[:, 0], inp[:, 1]
            t1 = (y.round().long() + 1).clamp(0, len(feas) - 1)
            lo, hi = feas_lo.to(inp)[t1], feas_hi.to(inp)[t1]
            moves = torch.tensor([-1.0, 0.0, 1.0], dtype=inp.dtype, device=inp.device)
            nxt = x[:, None] + moves
            valid = (nxt >= lo[:, None] - 1e-6) & (nxt <= hi[:, None] + 1e-6)
            score = torch.rand(valid.shape, generator=gen, dtype=inp.dtype, device=inp.device) + 1.0
            score = torch.where(valid, score, torch.zeros_like(score))
            return nn.functional.one_hot(score.argmax(-1), 3).to(inp.dtype)

        return {"agent1": expert, "agent2": expert}

    return Benchmark(
        name="racetrack",
        description="two racetrack agents; lanes kept and |x1 - x2| >= 0.5 (data ignores the distance rule)",
        program=program,
        input_lo=torch.tensor([5.0]),
        input_hi=torch.tensor([6.0]),
        spec=spec,
        make_modules=make_modules,
        make_experts=make_experts,
        defaults=dict(_TRAIN_DEFAULTS, verifier_components=10_000, val_verifier_components=499),
        plot_vars=("x1", "x2", "d"),
    )


# --------------------------------------------------------------------------- cartpole
CARTPOLE_A = np.array([[1, 0.02, 0, 0], [0, 1, -0.0143, 0], [0, 0, 1, 0.02], [0, 0, 0.3156, 1.0]])
CARTPOLE_B = np.array([[0.0], [0.0195], [0.0], [-0.0293]])


def cartpole_lqr_gain(q=(1.0, 0.1, 0.1, 10.0), r: float = 1.0, iters: int = 3000) -> np.ndarray:
    """Discrete-time LQR gain ``K`` (``u = -K s``) of the linearised cart-pole, by Riccati iteration."""
    a, b = CARTPOLE_A, CARTPOLE_B
    qm = np.diag(q)
    p = qm.copy()
    k = np.zeros((1, 4))
    for _ in range(iters):
        k = np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)
        p = qm + a.T @ p @ a - a.T @ p @ b @ k
    return k


def _cartpole() -> Benchmark:
    body = [
        record("x"),
        loop(11, [
            assign("a", _call("policy", "x", "xdot", "theta", "thetadot")),
            if_le("a", 0.5, then=[assign("F", -10.0)], orelse=[assign("F", 10.0)]),
            assign(("x", "xdot", "theta", "thetadot"), (
                V("x") + 0.02 * V("xdot"),
                V("xdot") + 0.0195 * V("F") - 0.0143 * V("theta"),
                V("theta") + 0.02 * V("thetadot"),
                V("thetadot") + 0.3156 * V("theta") - 0.0293 * V("F"),
            )),
            record("x"),
        ]),
    ]
    program = Program("cartpole", ("x", "xdot", "theta", "thetadot"), tuple(body), init={"a": 0.0, "F": 0.0})
    spec = Spec(program, [Constraint("x", -0.1, 0.1)])
    gain = torch.tensor(cartpole_lqr_gain()[0], dtype=torch.float64)

    def make_modules():
        return {"policy": make_mlp(4, 1, out_act="sigmoid", center=[0.0] * 4, scale=[0.05, 0.2, 0.05, 0.2])}

    def policy(s):
        u = -(s @ gain.to(s))
        return (u > 0).to(s.dtype)[:, None]

    return Benchmark(
        name="cartpole",
        description="linearised cart-pole with a learned bang-bang controller; x in [-0.1, 0.1] for 11 steps",
        program=program,
        input_lo=torch.full((4,), -0.05),
        input_hi=torch.full((4,), 0.05),
        spec=spec,
        make_modules=make_modules,
        make_experts=lambda gen=None: {"policy": policy},
        defaults=dict(_TRAIN_DEFAULTS, verifier_components=20, val_verifier_components=7),
        plot_vars=("x",),
    )


#: benchmark name -> builder (an explicit table; add new benchmarks here)
BENCHMARKS: dict[str, Callable[[], Benchmark]] = {
    "thermostat": _thermostat,
    "aircraft": _aircraft,
    "racetrack": _racetrack,
    "cartpole": _cartpole,
}

_CACHE: dict[str, Benchmark] = {}


def benchmark_names() -> list[str]:
    return list(BENCHMARKS)


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name`` (built once per process)."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; valid benchmarks: {', '.join(BENCHMARKS)}")
    if name not in _CACHE:
        _CACHE[name] = BENCHMARKS[name]()
    return _CACHE[name]


def components_per_dim(total: int, k: int) -> int:
    """Pieces per input dimension so that a k-dimensional grid has about ``total`` components."""
    if total < 1:
        raise ValueError(f"the number of components must be >= 1; got {total}")
    return max(1, int(round(total ** (1.0 / k)))) if k > 1 else total

