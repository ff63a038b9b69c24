"""Program semantics as torch modules, stacked over K candidate programs of the same shape.

``StackedProgram(programs, dsl)`` evaluates K programs that share a *shape* (the same tree,
where affine library functions may select different features of the same count) in one
pass: inputs ``x[B, T, F]`` (standardised features, shared by all candidates) give outputs
``[K, B, d]`` for list->atom programs, ``[K, B, T, d]`` for list->list and ``[K, B, d]`` for
atom->atom (``x[B, F]``). One program is simply K = 1. No Python loop runs over time steps:
maps act on all steps at once, averages are means or cumulative sums, and neural holes
run cuDNN/ATen GRU kernels over the whole sequence.

Evaluation modes: ``atom`` (a function applied to every step, ``x[B, *, F] -> [K, B, *, d]``),
``seq`` (list->atom on the whole window), ``prefixes`` (list->atom on every prefix,
``[K, B, T, d]``) and ``lst`` (list->list).
"""

from __future__ import annotations

import math
import zlib
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from nsprog.dsl.ast import ITE, Add, Affine, Hole, Map, MapAverage, MapPrefixes, Multiply, Node, RunningAverage
from nsprog.dsl.ast import with_params as _with_params
from nsprog.dsl.definition import DSL
from nsprog.dsl.types import ATOM, LIST

__all__ = ["StackedProgram", "shape_key", "hidden_units", "ParamError", "root_mode", "evaluate_program"]


class ParamError(ValueError):
    """Stored parameters do not fit the program (missing or wrongly shaped)."""


def shape_key(node: Node) -> str:
    """Structure with affine feature choices abstracted to their count: programs with equal
    shape keys can be stacked into one module."""
    if isinstance(node, Affine):
        return f"Affine{len(node.features)}:{node.sig}"
    if isinstance(node, Hole):
        return f"Hole:{node.sig}"
    extra = f"w{node.window}" if isinstance(node, RunningAverage) else ""
    extra += f"b{node.beta}" if isinstance(node, ITE) else ""
    return f"{node.production}{extra}:{node.sig}(" + ",".join(shape_key(c) for c in node.children) + ")"


def hidden_units(level: int, max_units: int, min_units: int) -> int:
    """Hidden size of a neural hole at tree depth ``level`` (root = 1): max * 0.5^(level-1), floored."""
    return max(int(min_units), int(max_units * 0.5 ** (level - 1)))


def root_mode(node: Node) -> str:
    return {"list->atom": "seq", "list->list": "lst", "atom->atom": "atom"}[node.sig.kinds]


def _generator(seed: int, program_key: str, path: tuple[int, ...]) -> torch.Generator:
    token = f"{seed}|{program_key}|{path}".encode()
    return torch.Generator().manual_seed(zlib.crc32(token))


def _uniform(shape, bound: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=gen) * 2 - 1) * bound


class _SNode(nn.Module):
    """A node of K stacked programs."""

    param_names: tuple[str, ...] = ()

    def __init__(self, nodes: Sequence[Node], path: tuple[int, ...]):
        super().__init__()
        self.K = len(nodes)
        self.path = path
        self.sig = nodes[0].sig

    def forward(self, x: torch.Tensor, mode: str) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(type(self).__name__)

    # parameters of candidate k as numpy arrays (leaf nodes override)
    def get_params(self, k: int) -> dict[str, np.ndarray] | None:
        if not self.param_names:
            return None
        return {n: getattr(self, n)[k].detach().cpu().numpy().copy() for n in self.param_names}

    def set_params(self, k: int, params: Mapping[str, np.ndarray], where: str) -> None:
        for n in self.param_names:
            if n not in params:
                raise ParamError(f"{where}: missing parameter {n!r}; expected {', '.join(self.param_names)}")
            p = getattr(self, n)
            value = torch.tensor(np.array(params[n], dtype=np.float32), dtype=p.dtype)
            if tuple(value.shape) != tuple(p.shape[1:]):
                raise ParamError(
                    f"{where}: parameter {n!r} has shape {tuple(value.shape)}; expected {tuple(p.shape[1:])}"
                )
            with torch.no_grad():
                p[k].copy_(value)


class _SAffine(_SNode):
    param_names = ("weight", "bias")

    def __init__(self, nodes, path, dsl: DSL):
        super().__init__(nodes, path)
        s = len(nodes[0].features)
        d = self.sig.out.dim
        idx = torch.tensor([dsl.feature_indices(n.features) for n in nodes], dtype=torch.long)
        self.register_buffer("idx", idx, persistent=False)
        self.weight = nn.Parameter(torch.empty(self.K, s, d))
        self.bias = nn.Parameter(torch.empty(self.K, d))
        self.s, self.d = s, d

    def init_candidate(self, k: int, gen: torch.Generator) -> None:
        bound = 1.0 / math.sqrt(self.s)
        with torch.no_grad():
            self.weight[k].copy_(_uniform((self.s, self.d), bound, gen))
            self.bias[k].copy_(_uniform((self.d,), bound, gen))

    def forward(self, x, mode):
        if mode != "atom":
            raise RuntimeError(f"affine library functions are atom->atom; cannot evaluate in mode {mode!r}")
        sel = x[..., self.idx]  # [B, *, K, s]
        out = torch.einsum("...ks,ksd->k...d", sel, self.weight)
        return out + self.bias.view(self.K, *([1] * (out.dim() - 2)), self.d)


class _SMLPHole(_SNode):
    param_names = ("w1", "b1", "w2", "b2")

    def __init__(self, nodes, path, units: int):
        super().__init__(nodes, path)
        f, d, h = self.sig.inp.dim, self.sig.out.dim, units
        self.w1 = nn.Parameter(torch.empty(self.K, f, h))
        self.b1 = nn.Parameter(torch.empty(self.K, h))
        self.w2 = nn.Parameter(torch.empty(self.K, h, d))
        self.b2 = nn.Parameter(torch.empty(self.K, d))
        self.f, self.h, self.d = f, h, d

    def init_candidate(self, k, gen):
        b1, b2 = 1.0 / math.sqrt(self.f), 1.0 / math.sqrt(self.h)
        with torch.no_grad():
            self.w1[k].copy_(_uniform((self.f, self.h), b1, gen))
            self.b1[k].copy_(_uniform((self.h,), b1, gen))
            self.w2[k].copy_(_uniform((self.h, self.d), b2, gen))
            self.b2[k].copy_(_uniform((self.d,), b2, gen))

    def forward(self, x, mode):
        if mode != "atom":
            raise RuntimeError(f"an atom hole cannot be evaluated in mode {mode!r}")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.f)
        hid = torch.relu(torch.matmul(x2, self.w1) + self.b1[:, None, :])  # [K, M, h]
        out = torch.baddbmm(self.b2[:, None, :], hid, self.w2)  # [K, M, d]
        return out.reshape(self.K, *lead, self.d)


_GATES = 3  # GRU gates r, z, n: PyTorch stacks their weights as [W_r; W_z; W_n]


class _GRUBank(nn.Module):
    """Several GRUs that read the same input, run as ONE block-diagonal GRU kernel call.

    Every (hole, candidate) pair owns a slot of ``h`` hidden units; input weights are dense
    (all slots read the same features) and the recurrent weights are masked to the slots'
    diagonal blocks, so the result equals running the GRUs separately. CPU GRU cost is
    dominated by per-time-step op overhead rather than arithmetic, so one call with H
    hidden units costs far less than H/h calls.
    """

    def __init__(self, f: int, sizes: list[int]):
        super().__init__()
        H = int(sum(sizes))
        self.f, self.H = f, H
        self.offsets = [int(o) for o in np.cumsum([0] + sizes[:-1])]
        self.sizes = list(sizes)
        self.weight_ih = nn.Parameter(torch.zeros(_GATES * H, f))
        self.weight_hh = nn.Parameter(torch.zeros(_GATES * H, H))
        self.bias_ih = nn.Parameter(torch.zeros(_GATES * H))
        self.bias_hh = nn.Parameter(torch.zeros(_GATES * H))
        mask = torch.zeros(_GATES * H, H)
        for o, h in zip(self.offsets, sizes):
            for g in range(_GATES):
                mask[g * H + o : g * H + o + h, o : o + h] = 1
        self.register_buffer("mask", mask, persistent=False)
        self._cache = None

    def rows(self, slot: int) -> torch.Tensor:
        o, h = self.offsets[slot], self.sizes[slot]
        return torch.cat([torch.arange(g * self.H + o, g * self.H + o + h) for g in range(_GATES)])

    def cols(self, slot: int) -> slice:
        o = self.offsets[slot]
        return slice(o, o + self.sizes[slot])

    def clear(self) -> None:
        self._cache = None

    def forward(self, x: torch.Tensor):
        if self._cache is None or self._cache[0] is not x:
            hx = x.new_zeros(1, x.shape[0], self.H)
            weights = [self.weight_ih, self.weight_hh * self.mask, self.bias_ih, self.bias_hh]
            out, hn = torch._VF.gru(x, hx, weights, True, 1, 0.0, self.training, False, True)
            self._cache = (x, out, hn[0])
        return self._cache[1], self._cache[2]

    def get_slot(self, slot: int) -> dict[str, np.ndarray]:
        r, c = self.rows(slot), self.cols(slot)
        return {
            "weight_ih_l0": self.weight_ih[r].detach().cpu().numpy().copy(),
            "weight_hh_l0": self.weight_hh[r][:, c].detach().cpu().numpy().copy(),
            "bias_ih_l0": self.bias_ih[r].detach().cpu().numpy().copy(),
            "bias_hh_l0": self.bias_hh[r].detach().cpu().numpy().copy(),
        }

    def set_slot(self, slot: int, values: Mapping[str, torch.Tensor]) -> None:
        r, c = self.rows(slot), self.cols(slot)
        with torch.no_grad():
            self.weight_ih[r] = values["weight_ih_l0"]
            block = self.weight_hh[r]
            block[:, c] = values["weight_hh_l0"]
            self.weight_hh[r] = block
            self.bias_ih[r] = values["bias_ih_l0"]
            self.bias_hh[r] = values["bias_hh_l0"]


class _SGRUHole(_SNode):
    """K list-input neural holes: GRU (in a shared :class:`_GRUBank`) plus a stacked output map."""

    param_names = ("out_w", "out_b")
    gru_names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")

    def __init__(self, nodes, path, units: int):
        super().__init__(nodes, path)
        f, d, h = self.sig.inp.dim, self.sig.out.dim, units
        self.out_w = nn.Parameter(torch.empty(self.K, h, d))
        self.out_b = nn.Parameter(torch.empty(self.K, d))
        self.f, self.h, self.d = f, h, d
        self.slots: list[tuple[_GRUBank, int]] = []  # per candidate: (bank, slot); set by StackedProgram

    def attach(self, slots: list[tuple["_GRUBank", int]]) -> None:
        object.__setattr__(self, "slots", slots)  # banks are owned by StackedProgram, not by this node
        idx = torch.stack([torch.arange(b.offsets[s], b.offsets[s] + self.h) for b, s in slots])
        self.register_buffer("hidden_idx", idx, persistent=False)
        self._banks = list(dict.fromkeys(b for b, _ in slots))

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight_ih_l0": (3 * self.h, self.f), "weight_hh_l0": (3 * self.h, self.h),
                "bias_ih_l0": (3 * self.h,), "bias_hh_l0": (3 * self.h,)}

    def init_candidate(self, k, gen):
        bound = 1.0 / math.sqrt(self.h)
        values = {n: _uniform(shape, bound, gen) for n, shape in self._shapes().items()}
        bank, slot = self.slots[k]
        bank.set_slot(slot, values)
        with torch.no_grad():
            self.out_w[k].copy_(_uniform((self.h, self.d), bound, gen))
            self.out_b[k].copy_(_uniform((self.d,), bound, gen))

    def get_params(self, k):
        bank, slot = self.slots[k]
        out = bank.get_slot(slot)
        out.update(super().get_params(k))
        return out

    def set_params(self, k, params, where):
        values = {}
        for n, shape in self._shapes().items():
            if n not in params:
                raise ParamError(f"{where}: missing parameter {n!r} of a neural (GRU) hole")
            value = torch.tensor(np.array(params[n], dtype=np.float32))
            if tuple(value.shape) != shape:
                raise ParamError(f"{where}: parameter {n!r} has shape {tuple(value.shape)}; expected {shape}")
            values[n] = value
        bank, slot = self.slots[k]
        bank.set_slot(slot, values)
        super().set_params(k, params, where)

    def _hidden(self, x, final: bool) -> torch.Tensor:
        parts = []
        for bank in self._banks:
            out, hn = bank(x)
            parts.append(hn if final else out)
        full = parts[0] if len(parts) == 1 else None
        if full is None:  # slots spread over several banks: gather per candidate
            return torch.stack([
                (bank(x)[1] if final else bank(x)[0])[..., bank.offsets[s] : bank.offsets[s] + self.h]
                for bank, s in self.slots
            ])
        sel = full[..., self.hidden_idx]  # [B, (T,) K, h]
        return sel.movedim(-2, 0)

    def forward(self, x, mode):
        if mode == "seq":
            hn = self._hidden(x, final=True)  # [K, B, h]
            return torch.baddbmm(self.out_b[:, None, :], hn, self.out_w)
        if mode in ("prefixes", "lst"):
            hs = self._hidden(x, final=False)  # [K, B, T, h]
            return torch.einsum("kbth,khd->kbtd", hs, self.out_w) + self.out_b[:, None, None, :]
        raise RuntimeError(f"a list hole cannot be evaluated in mode {mode!r}")


class _SMapAverage(_SNode):
    def __init__(self, nodes, path, fn):
        super().__init__(nodes, path)
        self.fn = fn

    def forward(self, x, mode):
        v = self.fn(x, "atom")  # [K, B, T, d]
        if mode == "seq":
            return v.mean(dim=-2)
        if mode == "prefixes":
            steps = torch.arange(1, v.shape[-2] + 1, device=v.device, dtype=v.dtype)
            return v.cumsum(dim=-2) / steps[:, None]
        raise RuntimeError(f"MapAverage is list->atom; cannot evaluate in mode {mode!r}")


class _SMap(_SNode):
    def __init__(self, nodes, path, fn):
        super().__init__(nodes, path)
        self.fn = fn

    def forward(self, x, mode):
        return self.fn(x, "atom")


class _SMapPrefixes(_SNode):
    def __init__(self, nodes, path, fn):
        super().__init__(nodes, path)
        self.fn = fn

    def forward(self, x, mode):
        return self.fn(x, "prefixes")


class _SRunningAverage(_SNode):
    def __init__(self, nodes, path, fn):
        super().__init__(nodes, path)
        self.fn = fn
        self.window = nodes[0].window

    def forward(self, x, mode):
        v = self.fn(x, "atom")  # [K, B, T, d]
        t = v.shape[-2]
        c = torch.nn.functional.pad(v.cumsum(dim=-2), (0, 0, 1, 0))  # [K, B, T+1, d], c[0] = 0
        hi = torch.arange(1, t + 1, device=v.device)
        lo = (hi - self.window).clamp_min(0)
        count = (hi - lo).to(v.dtype)
        return (c[..., hi, :] - c[..., lo, :]) / count[:, None]


class _SCombine(_SNode):
    """ITE / Add / Multiply: children evaluated in the same mode, combined elementwise."""

    def __init__(self, nodes, path, kids, op: str):
        super().__init__(nodes, path)
        self.kids = nn.ModuleList(kids)
        self.op = op
        self.beta = float(nodes[0].beta) if op == "ite" else 1.0

    def forward(self, x, mode):
        if self.op == "ite":
            cond, then, orelse = (k(x, mode) for k in self.kids)
            gate = torch.sigmoid(self.beta * cond)
            return gate * then + (1 - gate) * orelse
        a, b = (k(x, mode) for k in self.kids)
        return a + b if self.op == "add" else a * b


def _stored_units(hole: Hole) -> int | None:
    """Hidden size of a hole that carries trained parameters (so it loads whatever size it was trained with)."""
    if hole.params is None:
        return None
    if "w1" in hole.params:
        return int(np.asarray(hole.params["w1"]).shape[1])
    if "weight_hh_l0" in hole.params:
        return int(np.asarray(hole.params["weight_hh_l0"]).shape[1])
    return None


def _build(nodes: Sequence[Node], path, level, dsl, max_units, min_units) -> _SNode:
    first = nodes[0]
    kids = [
        _build([n.children[i] for n in nodes], path + (i,), level + 1, dsl, max_units, min_units)
        for i in range(len(first.children))
    ]
    if isinstance(first, Affine):
        return _SAffine(nodes, path, dsl)
    if isinstance(first, Hole):
        units = _stored_units(first) or hidden_units(level, max_units, min_units)
        return (_SMLPHole if first.sig.inp.kind == ATOM else _SGRUHole)(nodes, path, units)
    if isinstance(first, MapAverage):
        return _SMapAverage(nodes, path, kids[0])
    if isinstance(first, Map):
        return _SMap(nodes, path, kids[0])
    if isinstance(first, MapPrefixes):
        return _SMapPrefixes(nodes, path, kids[0])
    if isinstance(first, RunningAverage):
        return _SRunningAverage(nodes, path, kids[0])
    if isinstance(first, ITE):
        return _SCombine(nodes, path, kids, "ite")
    if isinstance(first, Add):
        return _SCombine(nodes, path, kids, "add")
    if isinstance(first, Multiply):
        return _SCombine(nodes, path, kids, "mul")
    raise TypeError(f"no semantics for node {first.production}")


class StackedProgram(nn.Module):
    """K programs of one shape as a single module; ``forward(x) -> [K, B, (T,) d]``.

    Parameters come from the programs' stored ``params`` where present, otherwise from a
    deterministic initialisation seeded by ``(seed, program structure, node path)``, so a
    candidate starts identically whether it is trained alone or stacked with siblings.
    """

    def __init__(
        self,
        programs: Sequence[Node],
        dsl: DSL,
        max_units: int = 16,
        min_units: int = 4,
        seed: int = 0,
        gru_bank_units: int = 128,
    ):
        super().__init__()
        if not programs:
            raise ValueError("StackedProgram needs at least one program")
        keys = {shape_key(p) for p in programs}
        if len(keys) != 1:
            raise ValueError(f"programs of different shapes cannot be stacked: {sorted(keys)}")
        root_in = programs[0].sig.inp
        if root_in.dim != dsl.n_features:
            raise ValueError(
                f"program input has {root_in.dim} features but DSL {dsl.name!r} has {dsl.n_features} "
                f"({', '.join(dsl.features)})"
            )
        self.programs = list(programs)
        self.K = len(programs)
        self.mode = root_mode(programs[0])
        self.root = _build(programs, (), 1, dsl, max_units, min_units)
        self._nodes = [m for m in self.root.modules() if isinstance(m, _SNode)]
        self.banks = nn.ModuleList(self._make_banks(gru_bank_units))
        for k, prog in enumerate(programs):
            key = prog.key()
            by_path = {p: n for p, _, n in _iter_paths(prog)}
            for m in self._nodes:
                if not hasattr(m, "init_candidate"):
                    continue
                node = by_path[m.path]
                if node.params is not None:
                    m.set_params(k, node.params, where=f"{node.production} at path {list(m.path)} of {key}")
                else:
                    m.init_candidate(k, _generator(seed, key, m.path))

    def _make_banks(self, cap: int) -> list[_GRUBank]:
        """Pack every (GRU hole, candidate) slot into block-diagonal banks of <= ``cap`` units."""
        holes = [m for m in self._nodes if isinstance(m, _SGRUHole)]
        slots = [(m, k) for m in holes for k in range(m.K)]
        banks, chunk, size = [], [], 0
        for m, k in slots:
            if chunk and size + m.h > cap:
                banks.append(chunk)
                chunk, size = [], 0
            chunk.append((m, k))
            size += m.h
        if chunk:
            banks.append(chunk)
        out = []
        assigned: dict[int, list] = {id(m): [None] * m.K for m in holes}
        for chunk in banks:
            bank = _GRUBank(chunk[0][0].f, [m.h for m, _ in chunk])
            for slot, (m, k) in enumerate(chunk):
                assigned[id(m)][k] = (bank, slot)
            out.append(bank)
        for m in holes:
            m.attach(assigned[id(m)])
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        want = 2 if self.mode == "atom" else 3
        if x.dim() != want:
            raise ValueError(f"program inputs must have shape {'(B, F)' if want == 2 else '(B, T, F)'}; got {tuple(x.shape)}")
        for bank in self.banks:
            bank.clear()
        out = self.root(x, self.mode)
        for bank in self.banks:
            bank.clear()
        return out

    def export(self, k: int) -> Node:
        """Program ``k`` with the current parameters stored on every node."""
        params = {m.path: m.get_params(k) for m in self._nodes if m.get_params(k) is not None}
        return _with_params(self.programs[k], params)

    def candidate_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())


def _iter_paths(node: Node, path=()):
    yield path, 0, node
    for i, c in enumerate(node.children):
        yield from _iter_paths(c, path + (i,))


def evaluate_program(program: Node, dsl: DSL, x: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
    """Outputs of one program on standardised features ``x`` (``[N, F]`` or ``[N, T, F]``)."""
    module = StackedProgram([program], dsl).to(x.device)
    module.eval()
    with torch.no_grad():
        return torch.cat([module(x[lo : lo + batch_size])[0] for lo in range(0, x.shape[0], batch_size)])
