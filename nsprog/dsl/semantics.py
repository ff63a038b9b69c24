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

from nsprog.gru_kernel import gru
from nsprog.dsl.ast import ITE, Add, Affine, Hole, Map, MapAverage, MapPrefixes, Multiply, Node, RunningAverage
from nsprog.dsl.ast import with_params as _with_params
from nsprog.dsl.definition import DSL
from nsprog.dsl.types import ATOM

__all__ = ["StackedProgram", "CandidateBatch", "Banks", "shape_key", "hidden_units", "ParamError", "root_mode", "evaluate_program"]


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


_GATES = 3  # GRU gates r, z, n: PyTorch stacks their weights as [W_r; W_z; W_n]


class _Bank(nn.Module):
    """Parameters of many leaf *slots* (one slot = one leaf of one candidate) of one kind and
    size, evaluated together in one call per input and cached until ``clear``."""

    def __init__(self):
        super().__init__()
        self.n = 0
        self._cache = None

    def clear(self) -> None:
        self._cache = None

    def output(self, x: torch.Tensor):
        if self._cache is None or self._cache[0] is not x:
            self._cache = (x, self.compute(x))
        return self._cache[1]

    def compute(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def slot_params(self, slot: int) -> dict[str, np.ndarray]:
        return {n: getattr(self, n)[slot].detach().cpu().numpy().copy() for n in self.names}

    def set_slot(self, slot: int, values: Mapping[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for n in self.names:
                getattr(self, n)[slot].copy_(values[n])

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {n: tuple(getattr(self, n).shape[1:]) for n in self.names}


class _AffineBank(_Bank):
    """Affine maps of feature subsets of size ``s``: slot ``i`` reads features ``idx[i]``."""

    names = ("weight", "bias")

    def __init__(self, s: int, d: int):
        super().__init__()
        self.s, self.d = s, d
        self._idx: list[tuple[int, ...]] = []

    def add(self, idx: tuple[int, ...]) -> int:
        self._idx.append(tuple(idx))
        self.n += 1
        return self.n - 1

    def build(self) -> None:
        self.register_buffer("idx", torch.tensor(self._idx, dtype=torch.long).reshape(self.n, self.s), persistent=False)
        self.weight = nn.Parameter(torch.zeros(self.n, self.s, self.d))
        self.bias = nn.Parameter(torch.zeros(self.n, self.d))

    def init_slot(self, slot: int, gen: torch.Generator) -> None:
        bound = 1.0 / math.sqrt(self.s)
        self.set_slot(slot, {"weight": _uniform((self.s, self.d), bound, gen), "bias": _uniform((self.d,), bound, gen)})

    def compute(self, x):
        sel = x[..., self.idx]  # [B, *, S, s]
        out = torch.einsum("...ks,ksd->k...d", sel, self.weight)
        return out + self.bias.view(self.n, *([1] * (out.dim() - 2)), self.d)


class _MLPBank(_Bank):
    """One-hidden-layer MLPs ``f -> h -> d`` (atom holes), as batched matrix products."""

    names = ("w1", "b1", "w2", "b2")

    def __init__(self, f: int, h: int, d: int):
        super().__init__()
        self.f, self.h, self.d = f, h, d

    def add(self) -> int:
        self.n += 1
        return self.n - 1

    def build(self) -> None:
        self.w1 = nn.Parameter(torch.zeros(self.n, self.f, self.h))
        self.b1 = nn.Parameter(torch.zeros(self.n, self.h))
        self.w2 = nn.Parameter(torch.zeros(self.n, self.h, self.d))
        self.b2 = nn.Parameter(torch.zeros(self.n, self.d))

    def init_slot(self, slot: int, gen: torch.Generator) -> None:
        b1, b2 = 1.0 / math.sqrt(self.f), 1.0 / math.sqrt(self.h)
        self.set_slot(slot, {
            "w1": _uniform((self.f, self.h), b1, gen), "b1": _uniform((self.h,), b1, gen),
            "w2": _uniform((self.h, self.d), b2, gen), "b2": _uniform((self.d,), b2, gen),
        })

    def compute(self, x):
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.f)
        hid = torch.relu(torch.matmul(x2, self.w1) + self.b1[:, None, :])  # [S, M, h]
        out = torch.baddbmm(self.b2[:, None, :], hid, self.w2)  # [S, M, d]
        return out.reshape(self.n, *lead, self.d)


class _GRUBank(_Bank):
    """Several GRUs that read the same input, run as ONE block-diagonal GRU kernel call.

    Every slot owns ``h`` hidden units; input weights are dense (all slots read the same
    features) and the recurrent weights are masked to the slots' diagonal blocks, so the
    result equals running the GRUs separately. One call replaces one call per GRU (per-call
    overhead dominates these tiny models), and the native kernel reads only the diagonal
    blocks, so the recurrent arithmetic stays that of the separate GRUs (k h^2, not
    (k h)^2). ``output(x)`` is ``(outputs [B, T, H], final state [B, H])``.
    """

    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")

    def __init__(self, f: int, sizes: list[int]):
        super().__init__()
        H = int(sum(sizes))
        self.f, self.H = f, H
        self.offsets = [int(o) for o in np.cumsum([0] + sizes[:-1])]
        self.sizes = list(sizes)
        self.n = len(sizes)
        self.weight_ih = nn.Parameter(torch.zeros(_GATES * H, f))
        self.weight_hh = nn.Parameter(torch.zeros(_GATES * H, H))
        self.bias_ih = nn.Parameter(torch.zeros(_GATES * H))
        self.bias_hh = nn.Parameter(torch.zeros(_GATES * H))
        mask = torch.zeros(_GATES * H, H)
        for o, h in zip(self.offsets, sizes):
            for g in range(_GATES):
                mask[g * H + o : g * H + o + h, o : o + h] = 1
        self.register_buffer("mask", mask, persistent=False)

    def rows(self, slot: int) -> torch.Tensor:
        o, h = self.offsets[slot], self.sizes[slot]
        return torch.cat([torch.arange(g * self.H + o, g * self.H + o + h) for g in range(_GATES)])

    def cols(self, slot: int) -> slice:
        o = self.offsets[slot]
        return slice(o, o + self.sizes[slot])

    def compute(self, x):
        return gru(x, None, self.weight_ih, self.weight_hh * self.mask, self.bias_ih, self.bias_hh, self.sizes)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError("slot sizes differ; use slot_shapes(slot)")

    def slot_shapes(self, slot: int) -> dict[str, tuple[int, ...]]:
        h = self.sizes[slot]
        return {"weight_ih_l0": (3 * h, self.f), "weight_hh_l0": (3 * h, h), "bias_ih_l0": (3 * h,), "bias_hh_l0": (3 * h,)}

    def slot_params(self, slot: int) -> dict[str, np.ndarray]:
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

    def init_slot(self, slot: int, gen: torch.Generator) -> None:
        bound = 1.0 / math.sqrt(self.sizes[slot])
        self.set_slot(slot, {n: _uniform(shape, bound, gen) for n, shape in self.slot_shapes(slot).items()})


class Banks(nn.Module):
    """Every leaf of a set of stacked programs, grouped by kind and size into banks.

    A :class:`StackedProgram` owns a private ``Banks``; a :class:`CandidateBatch` shares one
    between all its programs, so the leaves of every candidate of every shape are computed
    in a handful of calls per batch. Leaves request slots while the trees are built; ``build``
    then creates the parameters (GRU slots are packed into banks of <= ``gru_units`` units).
    """

    def __init__(self, gru_units: int = 128):
        super().__init__()
        self.gru_units = gru_units
        self._affine: dict[tuple[int, int], _AffineBank] = {}
        self._mlp: dict[tuple[int, int, int], _MLPBank] = {}
        self._gru_requests: list[tuple[int, int, list]] = []  # (f, h, [receiver])
        self.banks = nn.ModuleList()
        self.built = False

    def affine(self, s: int, d: int, idx: tuple[int, ...]) -> tuple[_AffineBank, int]:
        bank = self._affine.setdefault((s, d), _AffineBank(s, d))
        return bank, bank.add(idx)

    def mlp(self, f: int, h: int, d: int) -> tuple[_MLPBank, int]:
        bank = self._mlp.setdefault((f, h, d), _MLPBank(f, h, d))
        return bank, bank.add()

    def gru(self, f: int, h: int) -> list:
        """A receiver that holds ``(bank, slot)`` once the banks are built."""
        receiver: list = []
        self._gru_requests.append((f, h, receiver))
        return receiver

    def build(self) -> "Banks":
        if self.built:
            raise RuntimeError("banks are already built")
        for bank in [*self._affine.values(), *self._mlp.values()]:
            bank.build()
            self.banks.append(bank)
        by_f: dict[int, list] = {}
        for f, h, rec in self._gru_requests:
            by_f.setdefault(f, []).append((h, rec))
        for f, reqs in by_f.items():
            chunk, size = [], 0
            for h, rec in reqs + [(None, None)]:
                if chunk and (h is None or size + h > self.gru_units):
                    bank = _GRUBank(f, [c[0] for c in chunk])
                    for slot, (_, r) in enumerate(chunk):
                        r.append((bank, slot))
                    self.banks.append(bank)
                    chunk, size = [], 0
                if h is not None:
                    chunk.append((h, rec))
                    size += h
        self.built = True
        return self

    def clear(self) -> None:
        for b in self.banks:
            b.clear()


class _SNode(nn.Module):
    """A node of K stacked programs."""

    def __init__(self, nodes: Sequence[Node], path: tuple[int, ...]):
        super().__init__()
        self.K = len(nodes)
        self.path = path
        self.sig = nodes[0].sig

    def forward(self, x: torch.Tensor, mode: str) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(type(self).__name__)

    def get_params(self, k: int) -> dict[str, np.ndarray] | None:
        return None


class _SLeaf(_SNode):
    """A leaf whose K candidates are consecutive slots of one bank (weights live in the bank)."""

    def _attach(self, refs: list[tuple[_Bank, int]]) -> None:
        object.__setattr__(self, "_bank", refs[0][0])  # the bank is owned by Banks, not by this node
        self.start = refs[0][1]
        if [r[1] for r in refs] != list(range(self.start, self.start + self.K)):
            raise RuntimeError("leaf slots must be consecutive")

    def _rows(self, x):
        return self._bank.output(x).narrow(0, self.start, self.K)

    def get_params(self, k):
        return self._bank.slot_params(self.start + k)

    def set_params(self, k, params, where):
        shapes = self._bank.shapes()
        values = {}
        for n, shape in shapes.items():
            if n not in params:
                raise ParamError(f"{where}: missing parameter {n!r}; expected {', '.join(shapes)}")
            value = torch.tensor(np.array(params[n], dtype=np.float32))
            if tuple(value.shape) != shape:
                raise ParamError(f"{where}: parameter {n!r} has shape {tuple(value.shape)}; expected {shape}")
            values[n] = value
        self._bank.set_slot(self.start + k, values)

    def init_candidate(self, k, gen):
        self._bank.init_slot(self.start + k, gen)


class _SAffine(_SLeaf):
    def __init__(self, nodes, path, dsl: DSL, banks: Banks):
        super().__init__(nodes, path)
        self.s, self.d = len(nodes[0].features), self.sig.out.dim
        self._attach([banks.affine(self.s, self.d, dsl.feature_indices(n.features)) for n in nodes])

    def forward(self, x, mode):
        if mode != "atom":
            raise RuntimeError(f"affine library functions are atom->atom; cannot evaluate in mode {mode!r}")
        return self._rows(x)


class _SMLPHole(_SLeaf):
    def __init__(self, nodes, path, units: int, banks: Banks):
        super().__init__(nodes, path)
        self.f, self.h, self.d = self.sig.inp.dim, units, self.sig.out.dim
        self._attach([banks.mlp(self.f, self.h, self.d) for _ in nodes])

    def forward(self, x, mode):
        if mode != "atom":
            raise RuntimeError(f"an atom hole cannot be evaluated in mode {mode!r}")
        return self._rows(x)


class _SGRUHole(_SNode):
    """K list-input neural holes: a GRU slot each (in shared GRU banks) plus a stacked output map."""

    out_names = ("out_w", "out_b")

    def __init__(self, nodes, path, units: int, banks: Banks):
        super().__init__(nodes, path)
        f, d, h = self.sig.inp.dim, self.sig.out.dim, units
        self.out_w = nn.Parameter(torch.empty(self.K, h, d))
        self.out_b = nn.Parameter(torch.empty(self.K, d))
        self.f, self.h, self.d = f, h, d
        object.__setattr__(self, "_receivers", [banks.gru(f, h) for _ in nodes])

    def finalize(self) -> None:
        """Called once the banks are built: index the candidates' hidden units."""
        slots = [r[0] for r in self._receivers]
        object.__setattr__(self, "slots", slots)
        object.__setattr__(self, "_banks", list(dict.fromkeys(b for b, _ in slots)))
        idx = torch.stack([torch.arange(b.offsets[s], b.offsets[s] + self.h) for b, s in slots])
        self.register_buffer("hidden_idx", idx, persistent=False)

    def init_candidate(self, k, gen):
        bank, slot = self.slots[k]
        bank.init_slot(slot, gen)
        bound = 1.0 / math.sqrt(self.h)
        with torch.no_grad():
            self.out_w[k].copy_(_uniform((self.h, self.d), bound, gen))
            self.out_b[k].copy_(_uniform((self.d,), bound, gen))

    def get_params(self, k):
        bank, slot = self.slots[k]
        out = bank.slot_params(slot)
        out.update({n: getattr(self, n)[k].detach().cpu().numpy().copy() for n in self.out_names})
        return out

    def set_params(self, k, params, where):
        bank, slot = self.slots[k]
        values = {}
        for n, shape in {**bank.slot_shapes(slot), "out_w": (self.h, self.d), "out_b": (self.d,)}.items():
            if n not in params:
                raise ParamError(f"{where}: missing parameter {n!r} of a neural (GRU) hole")
            value = torch.tensor(np.array(params[n], dtype=np.float32))
            if tuple(value.shape) != shape:
                raise ParamError(f"{where}: parameter {n!r} has shape {tuple(value.shape)}; expected {shape}")
            values[n] = value
        bank.set_slot(slot, values)
        with torch.no_grad():
            self.out_w[k].copy_(values["out_w"])
            self.out_b[k].copy_(values["out_b"])

    def _hidden(self, x, final: bool) -> torch.Tensor:
        if len(self._banks) == 1:
            full = self._banks[0].output(x)[1 if final else 0]
            return full[..., self.hidden_idx].movedim(-2, 0)  # [K, B, (T,) h]
        return torch.stack([
            bank.output(x)[1 if final else 0][..., bank.offsets[s] : bank.offsets[s] + self.h] for bank, s in self.slots
        ])

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


def _build(nodes: Sequence[Node], path, level, dsl, max_units, min_units, banks: Banks) -> _SNode:
    first = nodes[0]
    kids = [
        _build([n.children[i] for n in nodes], path + (i,), level + 1, dsl, max_units, min_units, banks)
        for i in range(len(first.children))
    ]
    if isinstance(first, Affine):
        return _SAffine(nodes, path, dsl, banks)
    if isinstance(first, Hole):
        units = _stored_units(first) or hidden_units(level, max_units, min_units)
        return (_SMLPHole if first.sig.inp.kind == ATOM else _SGRUHole)(nodes, path, units, banks)
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
    With ``banks`` given (by a :class:`CandidateBatch`), the leaves live in those shared
    banks and the caller builds them and calls :meth:`initialise`.
    """

    def __init__(
        self,
        programs: Sequence[Node],
        dsl: DSL,
        max_units: int = 16,
        min_units: int = 4,
        seed: int = 0,
        gru_bank_units: int = 128,
        banks: Banks | None = None,
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
        self.seed = seed
        self.own_banks = banks is None
        if self.own_banks:
            self.banks = Banks(gru_bank_units)
            bank_set = self.banks
        else:
            object.__setattr__(self, "banks", banks)
            bank_set = banks
        self.root = _build(programs, (), 1, dsl, max_units, min_units, bank_set)
        self._nodes = [m for m in self.root.modules() if isinstance(m, _SNode)]
        if self.own_banks:
            self.banks.build()
            self.initialise()

    def initialise(self) -> None:
        """Load stored parameters, or initialise deterministically per candidate (banks must be built)."""
        for m in self._nodes:
            if isinstance(m, _SGRUHole):
                m.finalize()
        for k, prog in enumerate(self.programs):
            key = prog.key()
            by_path = {p: n for p, _, n in _iter_paths(prog)}
            for m in self._nodes:
                if not hasattr(m, "init_candidate"):
                    continue
                node = by_path[m.path]
                if node.params is not None:
                    m.set_params(k, node.params, where=f"{node.production} at path {list(m.path)} of {key}")
                else:
                    m.init_candidate(k, _generator(self.seed, key, m.path))

    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs without touching the bank caches (the caller clears them)."""
        want = 2 if self.mode == "atom" else 3
        if x.dim() != want:
            raise ValueError(f"program inputs must have shape {'(B, F)' if want == 2 else '(B, T, F)'}; got {tuple(x.shape)}")
        return self.root(x, self.mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.banks.clear()
        try:
            return self.evaluate(x)
        finally:
            self.banks.clear()

    def export(self, k: int) -> Node:
        """Program ``k`` with the current parameters stored on every node."""
        params = {m.path: m.get_params(k) for m in self._nodes if m.get_params(k) is not None}
        return _with_params(self.programs[k], params)


class CandidateBatch(nn.Module):
    """Programs of several shapes (one :class:`StackedProgram` per shape) whose leaves share
    one set of banks: every affine function, MLP hole and GRU hole of every candidate is
    computed in a few calls per batch. ``forward(x, groups)`` returns the outputs of the
    listed groups."""

    def __init__(self, groups: Sequence[Sequence[Node]], dsl: DSL, max_units: int = 16, min_units: int = 4,
                 seed: int = 0, gru_bank_units: int = 128):
        super().__init__()
        self.banks = Banks(gru_bank_units)
        self.groups = nn.ModuleList(
            StackedProgram(g, dsl, max_units, min_units, seed, gru_bank_units, banks=self.banks) for g in groups
        )
        self.banks.build()
        for g in self.groups:
            g.initialise()

    def forward(self, x: torch.Tensor, groups: Sequence[int] | None = None) -> list[torch.Tensor]:
        self.banks.clear()
        try:
            return [self.groups[i].evaluate(x) for i in (range(len(self.groups)) if groups is None else groups)]
        finally:
            self.banks.clear()


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
