"""A single-layer GRU over a whole sequence: the native (C) kernel where it earns its place,
``torch.nn.GRU`` everywhere else.

The models here are tiny (tens of hidden units, batches of 32, ~25 time steps), so a CPU
training step is bound by per-operation overhead: PyTorch's CPU GRU records about ten
autograd nodes per time step and replays more backward. The native path runs both
recurrences as C loops (:mod:`nsprog.native`, compiled without any flag that changes the
process's floating-point state) inside one autograd node, with the input projections and
weight gradients as BLAS products over all steps at once. ``benchmarks/bench_fit.py``
measures it against the plain path in the same run (``experiments/README.md`` has the
figures); the tests compare both with ``torch.nn.GRU``.

- native: float32 on CPU, when :func:`native_kernels` is on (the default) and a C compiler
  is available; otherwise a warning says how to enable it, once per process;
- plain: ``torch.nn.GRU`` through :func:`torch.func.functional_call` (public APIs only;
  cuDNN on CUDA).

Semantics are exactly ``nn.GRU(batch_first=True)`` with one layer and one direction (gate
order r, z, n; ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``; ``h' = (1 - z) * n + z * h``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from nsprog import native

__all__ = ["gru", "native_kernels", "native_active", "plain_bidirectional"]

log = logging.getLogger("nsprog")

_NATIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("nsprog_native_kernels", default=True)
_warned: list[bool] = []


@contextlib.contextmanager
def native_kernels(enabled: bool = True) -> Iterator[None]:
    """Use (``True``, the default) or avoid the native GRU kernels inside the body only."""
    token = _NATIVE.set(bool(enabled))
    try:
        yield
    finally:
        _NATIVE.reset(token)


def native_active(x: torch.Tensor) -> bool:
    """Whether :func:`gru` runs the native kernel for an input like ``x``."""
    if not (_NATIVE.get() and x.device.type == "cpu" and x.dtype == torch.float32):
        return False
    if native.load() is not None:
        return True
    if not _warned:
        _warned.append(True)
        log.warning("%s; GRUs run on torch.nn.GRU, which is about 2x slower for these small models. To enable "
                    "the fast path, install a C compiler (gcc or clang) and leave NSPROG_NATIVE unset.",
                    native.native_status())
    return False


def gru(x: torch.Tensor, h0: torch.Tensor | None, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor,
        b_hh: torch.Tensor, blocks: Sequence[int] | None = None,
        in_blocks: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a GRU over ``x [B, T, F]`` from ``h0 [B, H]`` (zeros when None).

    Weights as in ``nn.GRU``: ``w_ih [3H, F]``, ``w_hh [3H, H]``, ``b_ih``, ``b_hh [3H]``.
    ``blocks``: sizes of consecutive groups of hidden units when ``w_hh`` is block-diagonal
    over them (independent GRUs stacked into one; entries outside the blocks must be zero).
    ``in_blocks`` (with ``blocks``): sizes of the input column groups read by each block
    when ``w_ih`` is block-diagonal too. The native kernel reads only the blocks and returns
    zero gradient outside them; the plain path computes the dense products (the same
    outputs) and dense gradients, so callers that keep the zeros mask the weights or pass
    only the blocks. Returns ``(outputs [B, T, H], final state [B, H])``.
    """
    H = w_hh.shape[1]
    if blocks is not None and sum(blocks) != H:
        raise ValueError(f"gru: blocks {list(blocks)} sum to {sum(blocks)}, not the hidden size {H}")
    if in_blocks is not None and (blocks is None or len(in_blocks) != len(blocks) or sum(in_blocks) != x.shape[-1]):
        raise ValueError(f"gru: in_blocks {list(in_blocks)} must give one input group per block and sum to the "
                         f"{x.shape[-1]} input features")
    if native_active(x):
        if h0 is None:
            h0 = x.new_zeros(x.shape[0], H)
        blk = tuple(int(v) for v in np.cumsum([0, *(blocks if blocks is not None else [H])]))
        in_blk = None if in_blocks is None else tuple(int(v) for v in np.cumsum([0, *in_blocks]))
        return _NativeGRUFunction.apply(x, h0, w_ih, w_hh, b_ih, b_hh, blk, in_blk)
    return _plain_gru(x, h0, w_ih, w_hh, b_ih, b_hh)


_TEMPLATES: dict[tuple, nn.GRU] = {}


def _template(f: int, h: int, device: torch.device, dtype: torch.dtype) -> nn.GRU:
    """An ``nn.GRU`` of the right size whose parameters are replaced at each call."""
    key = (f, h, str(device), dtype)
    if key not in _TEMPLATES:
        _TEMPLATES[key] = nn.GRU(f, h, batch_first=True).to(device=device, dtype=dtype)
    return _TEMPLATES[key]


def _plain_gru(x, h0, w_ih, w_hh, b_ih, b_hh):
    module = _template(x.shape[-1], w_hh.shape[1], x.device, x.dtype)
    params = {"weight_ih_l0": w_ih, "weight_hh_l0": w_hh, "bias_ih_l0": b_ih, "bias_hh_l0": b_hh}
    with warnings.catch_warnings():
        # cuDNN copies separate weight tensors into one buffer per call and warns each time; for
        # these few-kilobyte weights the copy is negligible
        warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
        out, hn = torch.func.functional_call(module, params, (x, None if h0 is None else h0[None]))
    return out, hn[0]


def plain_bidirectional(x: torch.Tensor, params: dict[str, torch.Tensor], hidden: int) -> torch.Tensor:
    """``nn.GRU(bidirectional=True, batch_first=True)`` over ``x`` with the given parameters
    (``weight_ih_l0``, ..., ``bias_hh_l0_reverse``): ``[B, T, 2 * hidden]``."""
    key = ("bi", x.shape[-1], hidden, str(x.device), x.dtype)
    if key not in _TEMPLATES:
        _TEMPLATES[key] = nn.GRU(x.shape[-1], hidden, batch_first=True, bidirectional=True).to(x.device, x.dtype)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
        return torch.func.functional_call(_TEMPLATES[key], params, (x,))[0]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


#: blocks smaller than this run on the batch-inner C kernels (``*_bi``), larger ones on the
#: row-wise kernels: the row-wise products vectorise over 3 x block rows, well only from 8 units
#: up, while the batch-inner ones vectorise over the batch (the team search stacks GRU holes of
#: 4 and 6 units; the encoder's BiGRU has 16)
BATCH_INNER_BELOW = 8


def _kernels(lib, blk: np.ndarray):
    if int(np.diff(blk).max()) < BATCH_INNER_BELOW:
        return lib.gru_forward_bi, lib.gru_backward_bi
    return lib.gru_forward, lib.gru_backward


class _NativeGRUFunction(torch.autograd.Function):
    """Both recurrences in C; input projections and weight gradients as BLAS products over all
    steps at once. Everything the backward pass needs is saved as tensors."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, blk, in_blk):
        lib = native.load()
        blk_arr = np.asarray(blk, np.int32)
        X, Wih, Whh, bih, bhh = (_np(t) for t in (x, w_ih, w_hh, b_ih, b_hh))
        B, T, F = X.shape
        H = Whh.shape[1]
        Xt = np.ascontiguousarray(X.transpose(1, 0, 2))
        gi = (Xt.reshape(T * B, F) @ Wih.T).reshape(T, B, 3 * H)
        gi += bih
        gi[..., : 2 * H] += bhh[: 2 * H]
        whhT = np.ascontiguousarray(Whh.T)
        bhn = np.ascontiguousarray(bhh[2 * H :])
        hs = np.empty((T + 1, B, H), np.float32)
        hs[0] = _np(h0)
        r, z, n, ghn = (np.empty((T, B, H), np.float32) for _ in range(4))
        forward, _ = _kernels(lib, blk_arr)
        forward(T, B, H, len(blk_arr) - 1, _ptr(blk_arr), _ptr(gi), _ptr(whhT), _ptr(bhn), _ptr(hs), _ptr(r),
                _ptr(z), _ptr(n), _ptr(ghn))
        ctx.blk, ctx.in_blk = blk, in_blk
        ctx.save_for_backward(w_ih, *(torch.from_numpy(a) for a in (Xt, Whh, hs, r, z, n, ghn)))
        return torch.from_numpy(np.ascontiguousarray(hs[1:].transpose(1, 0, 2))), torch.from_numpy(hs[T].copy())

    @staticmethod
    def backward(ctx, d_out, d_hn):
        lib = native.load()
        w_ih, *saved = ctx.saved_tensors
        Xt, Whh, hs, r, z, n, ghn = (t.numpy() for t in saved)
        blk = np.asarray(ctx.blk, np.int32)
        T, B, H = n.shape
        F = Xt.shape[2]
        dO = np.ascontiguousarray(_np(d_out).transpose(1, 0, 2))
        carry = _np(d_hn).copy()
        d_gi = np.empty((T, B, 3 * H), np.float32)
        d_ghn = np.empty((T, B, H), np.float32)
        _, backward = _kernels(lib, blk)
        backward(T, B, H, len(blk) - 1, _ptr(blk), _ptr(dO), _ptr(Whh), _ptr(hs), _ptr(r), _ptr(z), _ptr(n),
                 _ptr(ghn), _ptr(carry), _ptr(d_gi), _ptr(d_ghn))
        d_gh = d_gi.copy()
        d_gh[..., 2 * H :] = d_ghn
        flat_gi, flat_gh = d_gi.reshape(T * B, 3 * H), d_gh.reshape(T * B, 3 * H)
        need = ctx.needs_input_grad
        d_wih = d_whh = None
        if need[2]:
            d_wih = flat_gi.T @ Xt.reshape(T * B, F)
            if ctx.in_blk is not None:
                d_wih *= _block_mask(ctx.blk, ctx.in_blk)
        if need[3]:
            d_whh = flat_gh.T @ hs[:T].reshape(T * B, H)
            if len(ctx.blk) > 2:
                d_whh *= _block_mask(ctx.blk, ctx.blk)
        return (
            torch.from_numpy(np.ascontiguousarray((flat_gi @ _np(w_ih)).reshape(T, B, F).transpose(1, 0, 2)))
            if need[0] else None,
            torch.from_numpy(carry) if need[1] else None,
            None if d_wih is None else torch.from_numpy(d_wih),
            None if d_whh is None else torch.from_numpy(d_whh),
            torch.from_numpy(flat_gi.sum(0)) if need[4] else None,
            torch.from_numpy(flat_gh.sum(0)) if need[5] else None,
            None,
            None,
        )


_MASKS: dict[tuple, np.ndarray] = {}


def _block_mask(rows: tuple[int, ...], cols: tuple[int, ...]) -> np.ndarray:
    """``[3H, C]`` 0/1 mask of the (hidden block i, column group i) blocks for every gate."""
    key = (rows, cols)
    if key not in _MASKS:
        H = rows[-1]
        m = np.zeros((3 * H, cols[-1]), np.float32)
        for i in range(len(rows) - 1):
            for g in range(3):
                m[g * H + rows[i] : g * H + rows[i + 1], cols[i] : cols[i + 1]] = 1
        _MASKS[key] = m
    return _MASKS[key]
