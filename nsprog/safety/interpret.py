"""Three interpreters over one IR: concrete, join (DiffAI+ / verifier) and sampled symbolic (DSE).

One evaluator walks the program; the three semantics differ **only at a branch**:

- ``concrete``: values are tensors ``[B]``; each item follows its own branch.
- ``join``: values are :class:`~nsprog.safety.box.Box` es; a box that straddles the guard goes
  down both branches (each meets its side of the guard) and the results are joined (hull).
- ``sample``: values are boxes; a box ``[l, r]`` straddling ``t`` takes "then" with
  probability ``p = (t - l) / (r - l)`` (else ``1 - p``), independently per path, is clipped
  to the chosen side, and the path's log-probability ``log p`` (or ``log(1 - p)``)
  accumulates. ``p`` depends on the parameters through ``l`` and ``r``, which is what the
  score-function term of the DSE gradient differentiates.

Everything is batched: a batch of items / boxes / paths runs through every statement at
once. Both branches run on the whole batch and are merged with ``torch.where`` (a branch that
no item takes is skipped), so there is no Python loop over items, pieces or paths; the only
Python loops are over statements and the fixed loop iterations of the program.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import nn

from nsprog.safety.box import Box
from nsprog.safety.ir import Assign, BinOp, Call, Clamp, Const, If, Loop, Program, Record, UnOp, Var
from nsprog.safety.nets import IntervalMLP

__all__ = ["Trace", "run_program", "SEMANTICS"]

SEMANTICS = ("concrete", "join", "sample")


@dataclass
class Trace:
    """What one run of a program produced.

    records : dict var -> tensor ``[B, T]`` (concrete) or Box ``[B, T]`` (join / sample)
    logp : tensor ``[B]`` of path log-probabilities (sample semantics; zeros otherwise)
    entropy : tensor ``[B]``: summed entropy of the branch choices a path faced (sample)
    calls : dict module -> (inputs ``[n, k]``, outputs ``[n, m]``) of the calls that executed
        on each item's own path (concrete semantics with ``log_calls=True``)
    """

    records: dict
    logp: torch.Tensor | None = None
    entropy: torch.Tensor | None = None
    calls: dict | None = None


@dataclass
class _Branch:
    then_value: object
    else_value: object
    take_then: torch.Tensor  # bool [B]: some part of the item goes down "then"
    take_else: torch.Tensor


@dataclass
class _Ctx:
    records: dict = field(default_factory=dict)
    logp: torch.Tensor | None = None
    entropy: torch.Tensor | None = None
    mask: torch.Tensor | None = None  # concrete: which items are on the current path
    calls: dict | None = None


class _Concrete:
    symbolic = False

    def branch(self, v: torch.Tensor, t: float, ctx: _Ctx) -> _Branch:
        cond = v <= t
        return _Branch(v, v, cond, ~cond)

    def merge(self, br: _Branch, a, b):
        return torch.where(br.take_then, a, b)


class _Join:
    symbolic = True

    def branch(self, v: Box, t: float, ctx: _Ctx) -> _Branch:
        then_v, then_ok = v.meet_le(t)
        else_v, else_ok = v.meet_gt(t)
        return _Branch(then_v, else_v, then_ok, else_ok)

    def merge(self, br: _Branch, a: Box, b: Box) -> Box:
        both = br.take_then & br.take_else
        return Box._from_t(torch.where(both, a.hull(b).t, torch.where(br.take_then, a.t, b.t)))


class _Sample:
    symbolic = True

    def __init__(self, generator: torch.Generator | None, uniform: Callable[[int], torch.Tensor] | None):
        self.generator = generator
        self.uniform = uniform

    def branch(self, v: Box, t: float, ctx: _Ctx) -> _Branch:
        lo, hi = v.t[0], v.t[1]
        then_ok = lo <= t
        straddle = then_ok & (hi > t)
        then_v = Box._from_t(v.t.clamp(max=t))
        else_v = Box._from_t(v.t.clamp(min=t))
        if not bool(straddle.any()):  # every path is on one side: nothing to sample
            return _Branch(then_v, else_v, then_ok, ~then_ok)
        p = ((t - lo) / (hi - lo).clamp_min(1e-30)).clamp(0.0, 1.0)
        if self.uniform is not None:
            u = self.uniform(lo.shape[0]).to(lo)
        else:
            u = torch.rand(lo.shape, generator=self.generator, dtype=lo.dtype, device=lo.device)
        take_then = torch.where(straddle, u < p, then_ok)
        q = torch.where(take_then, p, 1.0 - p).clamp_min(1e-12)
        ctx.logp = ctx.logp + torch.where(straddle, q.log(), 0.0)
        if ctx.entropy is not None:
            pc = p.clamp(1e-12, 1 - 1e-12)
            ent = -(pc * pc.log() + (1 - pc) * (1 - pc).log())
            ctx.entropy = ctx.entropy + torch.where(straddle, ent, 0.0)
        return _Branch(then_v, else_v, take_then, ~take_then)

    def merge(self, br: _Branch, a: Box, b: Box) -> Box:
        return Box._from_t(torch.where(br.take_then, a.t, b.t))


def _square(v):
    return v.square() if isinstance(v, Box) else v * v


_UNARY = {
    "neg": lambda v: -v,
    "square": _square,
    "abs": lambda v: v.abs(),
    "relu": lambda v: v.relu() if isinstance(v, Box) else torch.relu(v),
    "sigmoid": lambda v: v.sigmoid() if isinstance(v, Box) else torch.sigmoid(v),
    "tanh": lambda v: v.tanh() if isinstance(v, Box) else torch.tanh(v),
}


class _Evaluator:
    def __init__(self, program: Program, modules: Mapping[str, Callable], sem, symbolic: bool, log_calls: bool):
        self.program = program
        self.sem = sem
        self.symbolic = symbolic
        self.log_calls = log_calls
        missing = set(program.modules) - set(modules)
        if missing:
            raise KeyError(
                f"program {program.name!r} calls module(s) {sorted(missing)} that were not given; "
                f"given: {sorted(modules)}"
            )
        if symbolic:
            self.nets = {}
            for name in program.modules:
                m = modules[name]
                if not isinstance(m, nn.Module):
                    raise TypeError(
                        f"module {name!r} is a {type(m).__name__}, which has no interval semantics; symbolic "
                        "interpreters need nn.Sequential networks of Linear and monotone layers"
                    )
                self.nets[name] = IntervalMLP(m)
        else:
            self.nets = {name: modules[name] for name in program.modules}

    def _scalar(self, c: float) -> torch.Tensor:
        t = self._scalars.get(c)
        if t is None:
            t = self._scalars[c] = torch.tensor(c, dtype=self.dtype, device=self.device)
        return t

    def _scalar_op(self, op: str, v, c: float, right: bool):
        """``v op c`` (right) or ``c op v`` for a value ``v`` and a number ``c``."""
        ct = self._scalar(c)
        if op == "add":
            return v + ct
        if op == "sub":
            return v - ct if right else ct - v
        if isinstance(v, Box):
            return v.scale(c, ct)
        return v * ct

    def const(self, c: float):
        if self.symbolic:
            return Box._from_t(torch.full((2, self.n), c, dtype=self.dtype, device=self.device))
        return torch.full((self.n,), c, dtype=self.dtype, device=self.device)

    # ----------------------------------------------------------------- expressions
    def eval(self, e, env):
        if isinstance(e, Var):
            return env[e.name]
        if isinstance(e, Const):
            return e.value
        if isinstance(e, BinOp):
            a, b = self.eval(e.a, env), self.eval(e.b, env)
            # numbers become cached 0-dim tensors (a Python float costs a dtype conversion per op)
            if isinstance(b, float) and not isinstance(a, float):
                return self._scalar_op(e.op, a, b, right=True)
            if isinstance(a, float) and not isinstance(b, float):
                return self._scalar_op(e.op, b, a, right=False)
            if e.op == "add":
                return a + b
            if e.op == "sub":
                return a - b
            return a * b
        if isinstance(e, UnOp):
            return _UNARY[e.op](self.eval(e.a, env))
        if isinstance(e, Clamp):
            return self.eval(e.a, env).clamp(e.lo, e.hi)
        raise TypeError(f"unknown expression node {type(e).__name__}")

    def call(self, c: Call, n_out: int, env, ctx: _Ctx) -> list:
        net = self.nets[c.module]
        if self.symbolic:
            x = torch.stack([env[n].t for n in c.inputs], -1)  # [2, B, k]
            out = net(x.transpose(0, 1).reshape(x.shape[1], -1))  # [B, 2k] (lo | hi) -> [B, 2m]
            if out.shape[-1] != 2 * n_out:
                raise ValueError(
                    f"module {c.module!r} returned {out.shape[-1] // 2} outputs; the program assigns {n_out}"
                )
            out = out.view(out.shape[0], 2, n_out).transpose(0, 1)  # [2, B, m]
            return [Box._from_t(t) for t in out.unbind(-1)]
        x = torch.stack([env[n] for n in c.inputs], -1)
        y = net(x)
        if y.dim() == 1:
            y = y.unsqueeze(-1)
        if y.shape[-1] != n_out:
            raise ValueError(f"module {c.module!r} returned {y.shape[-1]} outputs; the program assigns {n_out}")
        if ctx.calls is not None:
            ctx.calls.setdefault(c.module, []).append((x, y, ctx.mask))
        return list(y.unbind(-1))

    # ----------------------------------------------------------------- statements
    def block(self, stmts, env: dict, ctx: _Ctx) -> None:
        for s in stmts:
            if isinstance(s, Assign):
                if isinstance(s.value, Call):
                    vals = self.call(s.value, len(s.targets), env, ctx)
                elif isinstance(s.value, tuple):
                    vals = [self.eval(e, env) for e in s.value]
                else:
                    vals = [self.eval(s.value, env)]
                for name, v in zip(s.targets, vals):
                    env[name] = self.const(v) if isinstance(v, float) else v
            elif isinstance(s, If):
                self.branch(s, env, ctx)
            elif isinstance(s, Loop):
                for _ in range(s.n):
                    self.block(s.body, env, ctx)
            elif isinstance(s, Record):
                for name in s.vars:
                    ctx.records.setdefault(name, []).append(env[name])
            else:
                raise TypeError(f"unknown statement {type(s).__name__}")

    def branch(self, s: If, env: dict, ctx: _Ctx) -> None:
        br = self.sem.branch(env[s.var], s.threshold, ctx)
        run_then = bool(br.take_then.any())
        run_else = bool(br.take_else.any())
        mask = ctx.mask
        if run_then and not run_else:
            env[s.var] = br.then_value
            self.block(s.then, env, ctx)
            return
        if run_else and not run_then:
            env[s.var] = br.else_value
            self.block(s.orelse, env, ctx)
            return
        then_env = dict(env)
        then_env[s.var] = br.then_value
        else_env = dict(env)
        else_env[s.var] = br.else_value
        if mask is not None:
            ctx.mask = mask & br.take_then
        self.block(s.then, then_env, ctx)
        if mask is not None:
            ctx.mask = mask & br.take_else
        self.block(s.orelse, else_env, ctx)
        ctx.mask = mask
        for name in s.writes:
            a, b = then_env.get(name), else_env.get(name)
            env[name] = a if b is None else b if a is None else self.sem.merge(br, a, b)


def run_program(
    program: Program,
    modules: Mapping[str, Callable],
    inputs,
    semantics: str = "concrete",
    *,
    generator: torch.Generator | None = None,
    uniform: Callable[[int], torch.Tensor] | None = None,
    entropy: bool = False,
    log_calls: bool = False,
) -> Trace:
    """Run ``program`` on a batch.

    Parameters
    ----------
    program : Program
    modules : mapping name -> callable
        ``nn.Sequential`` networks (any semantics) or plain callables ``[B, k] -> [B, m]``
        (concrete semantics only, e.g. the ground-truth experts).
    inputs : tensor ``[B, k]`` (concrete) or Box ``[B, k]`` (join / sample)
        One column per ``program.inputs`` variable.
    semantics : {"concrete", "join", "sample"}
    generator : torch.Generator, optional
        Randomness of the branch choices (sample semantics).
    uniform : callable, optional
        Replaces the uniform draws of the sample semantics (``n -> [n]`` tensor); for tests.
    entropy : bool
        Accumulate the entropy of the branch choices (sample semantics).
    log_calls : bool
        Collect the (input, output) pairs of every module call an item executed (concrete).
    """
    if semantics not in SEMANTICS:
        raise ValueError(f"semantics must be one of {', '.join(SEMANTICS)}; got {semantics!r}")
    symbolic = semantics != "concrete"
    k = len(program.inputs)
    if symbolic:
        if not isinstance(inputs, Box):
            raise TypeError(f"{semantics} semantics needs a Box of inputs [B, {k}]; got {type(inputs).__name__}")
        if inputs.t.dim() != 3 or inputs.shape[-1] != k:
            raise ValueError(
                f"program {program.name!r} has {k} inputs {program.inputs}; expected a Box of shape [B, {k}], "
                f"got {tuple(inputs.shape)}"
            )
        cols = inputs.unbind(-1)
        ref = inputs.t[0]
    else:
        inputs = torch.as_tensor(inputs)
        if inputs.dim() != 2 or inputs.shape[-1] != k:
            raise ValueError(
                f"program {program.name!r} has {k} inputs {program.inputs}; expected a tensor of shape [B, {k}], "
                f"got {tuple(inputs.shape)}"
            )
        cols = inputs.unbind(-1)
        ref = inputs
    n = ref.shape[0]
    if not ref.is_floating_point():
        raise TypeError(f"program inputs must be floating point; got {ref.dtype}")
    if semantics == "concrete":
        sem = _Concrete()
    elif semantics == "join":
        sem = _Join()
    else:
        sem = _Sample(generator, uniform)
    ev = _Evaluator(program, modules, sem, symbolic, log_calls)
    ev.n, ev.dtype, ev.device = ref.shape[0], ref.dtype, ref.device
    ev._scalars = {}

    env: dict = {}
    for name, col in zip(program.inputs, cols):
        env[name] = col
    for name in program.variables:
        if name in env:
            continue
        c = program.init.get(name, 0.0)
        if symbolic:
            env[name] = Box._from_t(torch.full((2, n), c, dtype=ref.dtype, device=ref.device))
        else:
            env[name] = torch.full((n,), c, dtype=ref.dtype, device=ref.device)
    ctx = _Ctx()
    if semantics == "sample":
        ctx.logp = torch.zeros(n, dtype=ref.dtype, device=ref.device)
        if entropy:
            ctx.entropy = torch.zeros(n, dtype=ref.dtype, device=ref.device)
    if log_calls and not symbolic:
        ctx.calls = {}
        ctx.mask = torch.ones(n, dtype=torch.bool, device=ref.device)
    ev.block(program.body, env, ctx)

    records = {}
    for name, vals in ctx.records.items():
        records[name] = Box.stack(vals, 1) if symbolic else torch.stack(vals, 1)
    calls = None
    if ctx.calls is not None:
        calls = {}
        for name, items in ctx.calls.items():
            xs = torch.cat([x[m] for x, _, m in items])
            ys = torch.cat([y[m] for _, y, m in items])
            calls[name] = (xs, ys)
    return Trace(records=records, logp=ctx.logp, entropy=ctx.entropy, calls=calls)
