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

The symbolic semantics avoid work whose result is never read or can be shared:

- a liveness analysis of the program (:func:`liveness`) skips meeting the guard variable with
  a side of the guard when that branch overwrites it first, and merging variables that are
  dead after the if-then-else;
- networks run on interleaved bounds, one matrix product per layer
  (:class:`~nsprog.safety.nets.IntervalMLP`);
- the sampled semantics draw the choices during the run and compute all log-probabilities
  once at the end, and count a choice only for paths that reached the guard (inside a
  branch a path did not take, its draws are discarded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import nn

from nsprog.safety.box import Box
from nsprog.safety.ir import Assign, BinOp, Call, Clamp, Const, If, Loop, Program, Record, UnOp, Var
from nsprog.safety.nets import IntervalMLP

__all__ = ["Trace", "run_program", "SEMANTICS", "liveness"]

SEMANTICS = ("concrete", "join", "sample")


@dataclass
class Trace:
    """What one run of a program produced.

    records : dict var -> tensor ``[B, T]`` (concrete) or Box ``[B, T]`` (join / sample)
    logp : tensor ``[B]`` of path log-probabilities (sample semantics; zeros otherwise)
    entropy : tensor ``[B]``: summed entropy of the branch choices a path faced (sample)
    calls : dict module -> (inputs ``[n, k]``, outputs ``[n, m]``) of the calls that executed
        on each item's own path (concrete semantics with ``log_calls=True``)
    choices : (sample semantics) ``(logq [G, B], counts)``: per guard that some path straddled,
        each path's log-probability of its choice there (0 where the path's box did not straddle
        the guard or the path did not reach it; ``logp`` is their sum over guards), and ``counts[var]``, a
        LongTensor ``[G]``: how many records of ``var`` were made before the guard (the records a
        choice can influence are the later ones, which a reward-to-go estimator uses)
    """

    records: dict
    logp: torch.Tensor | None = None
    entropy: torch.Tensor | None = None
    calls: dict | None = None
    choices: tuple | None = None


@dataclass
class _Branch:
    then_value: object  # the guard variable met with its side of the guard (None: not needed)
    else_value: object
    take_then: torch.Tensor  # bool [B]: some part of the item goes down "then"
    take_else: torch.Tensor
    both: torch.Tensor | None = None  # join: take_then & take_else (computed on first use)
    all_both: bool = False


@dataclass
class _Ctx:
    records: dict = field(default_factory=dict)
    mask: torch.Tensor | None = None  # concrete: which items are on the current path
    active: torch.Tensor | None = None  # symbolic: which items are on the current branch (None: all)
    calls: dict | None = None
    scalar: Callable[[float], torch.Tensor] | None = None  # number -> cached 0-dim tensor of the batch's dtype


# --------------------------------------------------------------------------- liveness
@dataclass(frozen=True)
class _IfInfo:
    live_after: frozenset  # variables read after the if-then-else before being written
    guard_then: bool  # the "then" body needs the guard variable met with "var <= t"
    guard_else: bool


def _live_in(stmts, live_out: set, info: dict) -> set:
    """Variables live before ``stmts`` given those live after; fills ``info`` for every If."""
    live = set(live_out)
    for s in reversed(stmts):
        if isinstance(s, Assign):
            live = (live - set(s.targets)) | s.reads()
        elif isinstance(s, Record):
            live = live | set(s.vars)
        elif isinstance(s, If):
            then_in = _live_in(s.then, live, info)
            else_in = _live_in(s.orelse, live, info)
            info[id(s)] = _IfInfo(frozenset(live), s.var in then_in, s.var in else_in)
            live = then_in | else_in | {s.var}
        elif isinstance(s, Loop):
            if s.n == 0:
                continue
            after = set(live)
            body_out = set(live)
            while True:  # the body's live-out is the loop's live-out plus its own live-in (next iteration)
                body_in = _live_in(s.body, body_out, info)
                new = after | body_in
                if new == body_out:
                    break
                body_out = new
            live = body_in
    return live


_LIVENESS: dict = {}


def liveness(program: Program) -> dict:
    """``id(If) -> _IfInfo`` for every if-then-else of ``program`` (cached per program).

    Lets the interpreters skip work whose result is never read: the guard variable met with
    a side of the guard when that branch overwrites it first (e.g. the thermostat's ``isOn``),
    and the merge of variables that are dead after the if-then-else (e.g. ``h``, or argmax's
    score differences).
    """
    got = _LIVENESS.get(id(program))
    if got is None or got[0] is not program:
        info: dict = {}
        _live_in(program.body, set(), info)
        got = _LIVENESS[id(program)] = (program, info)
    return got[1]


# --------------------------------------------------------------------------- semantics
class _Concrete:
    symbolic = False

    def branch(self, v: torch.Tensor, t: float, ctx: _Ctx, need_then: bool, need_else: bool) -> _Branch:
        cond = v <= t
        return _Branch(v, v, cond, ~cond)

    def merge(self, br: _Branch, a, b):
        return torch.where(br.take_then, a, b)


class _Join:
    symbolic = True

    def __init__(self):
        self._lo_rows: dict = {}

    def branch(self, v: Box, t: float, ctx: _Ctx, need_then: bool, need_else: bool) -> _Branch:
        lo, hi = v.t.unbind(0)
        then_ok, else_ok = lo <= t, hi > t
        then_v = Box._from_t(v.t.clamp(max=t)) if need_then else None
        else_v = Box._from_t(v.t.clamp(min=t)) if need_else else None
        return _Branch(then_v, else_v, then_ok, else_ok)

    def merge(self, br: _Branch, a: Box, b: Box) -> Box:
        # hull where both branches are feasible, else the feasible branch's value
        key = (a.t.dim(), a.t.device)
        rows = self._lo_rows.get(key)
        if rows is None:
            rows = self._lo_rows[key] = torch.tensor([True, False], device=a.t.device).view(2, *[1] * (a.t.dim() - 1))
        hull = torch.where(rows, torch.minimum(a.t, b.t), torch.maximum(a.t, b.t))
        if br.both is None:
            br.both = br.take_then & br.take_else
            br.all_both = bool(br.both.all())
        if br.all_both:
            return Box._from_t(hull)
        return Box._from_t(torch.where(br.both, hull, torch.where(br.take_then, a.t, b.t)))


class _Sample:
    """Sampled symbolic paths. At a guard, each path draws a point uniformly from its box of the
    guard variable and follows the side the point falls on: "then" with probability
    ``p = (t - l) / (r - l)`` on a straddling box (and surely the feasible side otherwise).
    The log-probabilities of the choices are computed after the run, for all guards at once
    (:meth:`finish`), from the recorded boxes and choices: one vectorised expression instead
    of a dozen small operations per guard. A choice counts for a path only where the path
    actually reached the guard (``ctx.active``: inside a branch that the path did not take,
    its draws are discarded, so they do not add variance to the estimate).
    """

    symbolic = True

    def __init__(self, generator: torch.Generator | None, uniform: Callable[[int], torch.Tensor] | None):
        self.generator = generator
        self.uniform = uniform
        self.guards: list = []  # (bounds [2, B] with their graph, threshold, take_then [B], active [B] or None)
        self.counts: list = []  # per guard: {var: records made so far}

    def branch(self, v: Box, t: float, ctx: _Ctx, need_then: bool, need_else: bool) -> _Branch:
        lo, hi = v.t.detach().unbind(0)
        if self.uniform is not None:
            u = self.uniform(lo.shape[0]).to(lo)
        else:
            u = torch.rand(lo.shape, generator=self.generator, dtype=lo.dtype, device=lo.device)
        # the drawn point lerp(lo, hi, u) <= t with probability p on a straddling box; a point box
        # [t, t] and every box on one side go to their (only) feasible side
        take_then = torch.lerp(lo, hi, u) <= ctx.scalar(t)
        self.guards.append((v.t, t, take_then, ctx.active))
        self.counts.append({k: len(r) for k, r in ctx.records.items()})
        then_v = Box._from_t(v.t.clamp(max=t)) if need_then else None
        else_v = Box._from_t(v.t.clamp(min=t)) if need_else else None
        return _Branch(then_v, else_v, take_then, ~take_then)

    def merge(self, br: _Branch, a: Box, b: Box) -> Box:
        return Box._from_t(torch.where(br.take_then, a.t, b.t))

    def finish(self, n: int, dtype: torch.dtype, device, entropy: bool, recorded) -> tuple:
        """(log-probability of every path ``[n]``, summed entropy of its choices ``[n]`` or None,
        the choices ``(logq [G, n], counts)`` at the G guards where some path that reached the guard
        straddled it; see :class:`Trace`)."""
        zeros = torch.zeros(n, dtype=dtype, device=device)
        t_all = torch.tensor([g[1] for g in self.guards], dtype=dtype, device=device).unsqueeze(1)  # [G, 1]
        keep: list = []
        if self.guards:
            # which guards did some (active) path straddle? one vectorised test and one sync; the others
            # contribute nothing, and leaving their boxes out keeps the backward pass off their graphs
            b0 = torch.stack([g[0].detach() for g in self.guards])  # [G, 2, n]
            straddle = (b0[:, 0] <= t_all) & (b0[:, 1] > t_all)
            if any(g[3] is not None for g in self.guards):
                ones = torch.ones(n, dtype=torch.bool, device=device)
                straddle = straddle & torch.stack([ones if g[3] is None else g[3] for g in self.guards])
            keep = torch.nonzero(straddle.any(1)).flatten().tolist()
        if not keep:
            empty = torch.zeros(0, n, dtype=dtype, device=device)
            counts = {v: torch.zeros(0, dtype=torch.long, device=device) for v in recorded}
            return zeros, (zeros if entropy else None), (empty, counts)
        guards = [self.guards[i] for i in keep]
        bounds = torch.stack([g[0] for g in guards])  # [G, 2, n]
        t = t_all[keep]
        take = torch.stack([g[2] for g in guards])  # [G, n]
        straddle = straddle[keep]
        lo, hi = bounds.unbind(1)
        d = t - lo
        # p only matters (and only gets gradient) on straddling boxes; elsewhere divide by 1, not by a
        # zero width: a masked-out x / 0 still makes 0 * inf = NaN in the backward pass
        w = torch.where(straddle, (hi - lo).clamp_min(1e-12), 1.0)
        p = (d / w).clamp(0.0, 1.0)
        q = torch.where(take, p, 1.0 - p).clamp_min(1e-12)
        logq = torch.where(straddle, q.log(), 0.0)
        ent = None
        if entropy:
            pc = p.clamp(1e-12, 1 - 1e-12)
            h = -(pc * pc.log() + (1 - pc) * (1 - pc).log())
            ent = torch.where(straddle, h, 0.0).sum(0)
        counts = {v: torch.tensor([self.counts[i].get(v, 0) for i in keep], dtype=torch.long, device=device)
                  for v in recorded}
        return logq.sum(0), ent, (logq, counts)


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
        self.live = liveness(program) if symbolic else None

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
            outs = net.call_boxes([env[n].t for n in c.inputs])
            if len(outs) != n_out:
                raise ValueError(f"module {c.module!r} returned {len(outs)} outputs; the program assigns {n_out}")
            return [Box._from_t(t) for t in outs]
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
        if self.symbolic:
            info = self.live[id(s)]
            br = self.sem.branch(env[s.var], s.threshold, ctx, info.guard_then, info.guard_else)
            outer = ctx.active
            on_then = br.take_then if outer is None else br.take_then & outer
            on_else = br.take_else if outer is None else br.take_else & outer
        else:
            info = None
            br = self.sem.branch(env[s.var], s.threshold, ctx, True, True)
            on_then, on_else = br.take_then, br.take_else
        run_then = bool(on_then.any())
        run_else = bool(on_else.any())
        if run_then != run_else:  # every item (on this path) takes the same side
            value = br.then_value if run_then else br.else_value
            if value is not None:
                env[s.var] = value
            self.block(s.then if run_then else s.orelse, env, ctx)
            return
        if not run_then:  # no item reaches this guard (inside a branch no item took)
            return
        then_env = dict(env)
        else_env = dict(env)
        if br.then_value is not None:
            then_env[s.var] = br.then_value
        if br.else_value is not None:
            else_env[s.var] = br.else_value
        if self.symbolic:
            outer = ctx.active
            ctx.active = on_then  # the paths on each side (nested guards count only for them)
            self.block(s.then, then_env, ctx)
            ctx.active = on_else
            self.block(s.orelse, else_env, ctx)
            ctx.active = outer
            names = [n for n in s.writes if n in info.live_after]
        else:
            mask = ctx.mask
            if mask is not None:
                ctx.mask = mask & br.take_then
            self.block(s.then, then_env, ctx)
            if mask is not None:
                ctx.mask = mask & br.take_else
            self.block(s.orelse, else_env, ctx)
            ctx.mask = mask
            names = s.writes
        for name in names:
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
    ctx = _Ctx(scalar=ev._scalar)
    if log_calls and not symbolic:
        ctx.calls = {}
        ctx.mask = torch.ones(n, dtype=torch.bool, device=ref.device)
    ev.block(program.body, env, ctx)
    logp = ent = choices = None
    if semantics == "sample":
        logp, ent, choices = sem.finish(n, ref.dtype, ref.device, entropy, program.recorded)

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
    return Trace(records=records, logp=logp, entropy=ent, calls=calls, choices=choices)
