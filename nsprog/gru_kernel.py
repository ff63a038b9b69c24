"""A single-layer GRU over a whole sequence as one autograd node with a hand-written backward.

The models here are tiny (tens of hidden units, batches of 32, ~25 time steps), so a CPU
training step is bound by per-operation overhead, not arithmetic: PyTorch's CPU GRU
records about ten autograd nodes per time step and replays two to three times as many
operations backward. :func:`gru` is one node, with three implementations:

- native (float32 on CPU, where a C compiler is available): both recurrences run as C loops
  (:mod:`nsprog.native`, built with -ffast-math, so results agree with PyTorch to float32
  rounding), the gates are saved by the forward pass, and the input projections and weight
  gradients are BLAS products over all steps at once;
- NumPy (CPU otherwise, and float64): the forward pass is PyTorch's kernel without autograd;
  the backward pass recomputes the gates for all steps at once and runs the reverse
  recurrence with five NumPy calls per step;
- other devices: PyTorch's fused kernel (cuDNN on CUDA), already fast there.

The semantics are exactly ``nn.GRU(batch_first=True)`` with one layer and one direction
(gate order r, z, n; ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``;
``h' = (1 - z) * n + z * h``); the tests compare values and gradients with ``nn.GRU`` for
both CPU paths.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from nsprog import native

__all__ = ["gru"]


def gru(x: torch.Tensor, h0: torch.Tensor | None, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor,
        b_hh: torch.Tensor, blocks: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a GRU over ``x [B, T, F]`` from ``h0 [B, H]`` (zeros when None).

    Weights as in ``nn.GRU``: ``w_ih [3H, F]``, ``w_hh [3H, H]``, ``b_ih``, ``b_hh [3H]``.
    ``blocks``: sizes of consecutive groups of hidden units when ``w_hh`` is block-diagonal
    over them (independent GRUs stacked into one; entries outside the blocks must be zero).
    The native kernel then reads only the blocks; the other paths compute the dense product,
    which gives the same numbers. Returns ``(outputs [B, T, H], final state [B, H])``.
    """
    H = w_hh.shape[1]
    if h0 is None:
        h0 = x.new_zeros(x.shape[0], H)
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        with warnings.catch_warnings():
            # cuDNN copies the separate weight tensors into one buffer on every call and warns each
            # time; for these few-kilobyte weights the copy is negligible.
            warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
            out, hn = torch._VF.gru(x, h0[None], [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0, torch.is_grad_enabled(),
                                    False, True)
        return out, hn[0]
    if x.dtype == torch.float32 and native.load() is not None:
        blk = np.cumsum([0, *(blocks if blocks is not None else [H])]).astype(np.int32)
        if blk[-1] != H:
            raise ValueError(f"gru: blocks {list(blocks)} sum to {blk[-1]}, not the hidden size {H}")
        return _NativeGRUFunction.apply(x, h0, w_ih, w_hh, b_ih, b_hh, blk)
    return _GRUFunction.apply(x, h0, w_ih, w_hh, b_ih, b_hh)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def _sigmoid(a: np.ndarray) -> np.ndarray:
    """In-place logistic function (tanh form: no overflow, and cheaper than scipy's expit in float32)."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


class _GRUFunction(torch.autograd.Function):
    """Forward: PyTorch's own GRU kernel without autograd (one C++ call, no per-step Python).
    Backward: the gates are recomputed from the saved hidden states for all steps at once,
    then a NumPy loop runs the reverse recurrence with five array operations per step."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh):
        out, hn = torch._VF.gru(x, h0[None], [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0, False, False, True)
        ctx.save_for_backward(x, h0, w_ih, w_hh, b_ih, b_hh, out)
        return out, hn[0]

    @staticmethod
    def backward(ctx, d_out, d_hn):
        X, h0, Wih, Whh, bih, bhh, out = (_np(t) for t in ctx.saved_tensors)
        B, T, F = X.shape
        H = Whh.shape[1]
        dt = X.dtype
        # time-major copies: every per-step slice below is contiguous
        Xt = np.ascontiguousarray(X.transpose(1, 0, 2))
        hp = np.empty((T, B, H), dt)  # h_{t-1} for t = 0 .. T-1
        hp[0] = h0
        hp[1:] = out[:, :-1].transpose(1, 0, 2)
        # gates recomputed for all steps at once, gate-major ([gate, T*B, H]: contiguous slices)
        TB = T * B
        gi = np.matmul(Xt.reshape(TB, F), Wih.reshape(3, H, F).transpose(0, 2, 1))
        gi += bih.reshape(3, 1, H)
        gh = np.matmul(hp.reshape(TB, H), Whh.reshape(3, H, H).transpose(0, 2, 1))
        gh += bhh.reshape(3, 1, H)
        rz = _sigmoid(np.add(gi[:2], gh[:2]))
        r, z = rz[0], rz[1]
        n = np.multiply(r, gh[2])
        n += gi[2]
        np.tanh(n, out=n)
        # d h_t / d(pre-activations), per unit of dh_t: n, then z, then r (through n)
        a_n = 1 - z
        a_n *= 1 - n * n
        A = np.empty((T, B, 3, H), dt)  # multipliers of dh_t giving d(W_hh h_{t-1} + b_hh) for gates r, z, n
        A3 = A.reshape(TB, 3, H)
        tmp2 = a_n * gh[2]
        tmp2 *= r
        tmp2 *= 1 - r
        A3[:, 0] = tmp2
        np.subtract(hp.reshape(TB, H), n, out=tmp2)
        tmp2 *= z
        tmp2 *= 1 - z
        A3[:, 1] = tmp2
        np.multiply(a_n, r, out=A3[:, 2])
        z = z.reshape(T, B, H)
        dO = np.ascontiguousarray(_np(d_out).transpose(1, 0, 2))  # autograd materialises unused outputs as zeros
        carry = _np(d_hn).copy()
        DH = np.empty((T, B, H), dt)  # dL/dh_t including the future
        G = np.empty((T, B, 3, H), dt)  # dL/d(W_hh h_{t-1} + b_hh)
        tmp = np.empty((B, H), dt)
        for t in range(T - 1, -1, -1):
            dh = DH[t]
            np.add(dO[t], carry, out=dh)
            g = G[t]
            np.multiply(dh[:, None, :], A[t], out=g)
            np.multiply(dh, z[t], out=carry)
            np.dot(g.reshape(B, 3 * H), Whh, out=tmp)
            carry += tmp
        d_gh = G.reshape(T * B, 3 * H)
        d_gi = G.copy()
        np.multiply(DH, a_n.reshape(T, B, H), out=d_gi[:, :, 2])
        d_gi = d_gi.reshape(T * B, 3 * H)
        grads = [None] * 6
        if ctx.needs_input_grad[0]:
            grads[0] = torch.from_numpy(np.ascontiguousarray((d_gi @ Wih).reshape(T, B, F).transpose(1, 0, 2)))
        if ctx.needs_input_grad[1]:
            grads[1] = torch.from_numpy(carry)
        if ctx.needs_input_grad[2]:
            grads[2] = torch.from_numpy(d_gi.T @ Xt.reshape(T * B, F))
        if ctx.needs_input_grad[3]:
            grads[3] = torch.from_numpy(d_gh.T @ hp.reshape(T * B, H))
        if ctx.needs_input_grad[4]:
            grads[4] = torch.from_numpy(d_gi.sum(0))
        if ctx.needs_input_grad[5]:
            grads[5] = torch.from_numpy(d_gh.sum(0))
        return tuple(grads)


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


#: blocks smaller than this run on the batch-inner C kernels (``*_bi``), larger ones on the
#: row-wise kernels: the row-wise products vectorise over 3 x block rows, well only from 8 units
#: up, while the batch-inner ones vectorise over the batch (benchmarks/bench_search.py's team
#: search stacks GRU holes of 4 and 6 units; the encoder's BiGRU has 16)
BATCH_INNER_BELOW = 8


def _kernels(lib, blk: np.ndarray):
    if int(np.diff(blk).max()) < BATCH_INNER_BELOW:
        return lib.gru_forward_bi, lib.gru_backward_bi
    return lib.gru_forward, lib.gru_backward


class _NativeGRUFunction(torch.autograd.Function):
    """Both recurrences in C (:mod:`nsprog.native`); input projections and weight gradients
    as BLAS products over all steps at once."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, blk):
        lib = native.load()
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
        forward, _ = _kernels(lib, blk)
        forward(T, B, H, len(blk) - 1, _ptr(blk), _ptr(gi), _ptr(whhT), _ptr(bhn), _ptr(hs), _ptr(r), _ptr(z),
                _ptr(n), _ptr(ghn))
        ctx.save_for_backward(w_ih)
        ctx.arrays = (Xt, Whh, hs, r, z, n, ghn, blk)
        return torch.from_numpy(np.ascontiguousarray(hs[1:].transpose(1, 0, 2))), torch.from_numpy(hs[T].copy())

    @staticmethod
    def backward(ctx, d_out, d_hn):
        lib = native.load()
        Xt, Whh, hs, r, z, n, ghn, blk = ctx.arrays
        (w_ih,) = ctx.saved_tensors
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
        return (
            torch.from_numpy(np.ascontiguousarray((flat_gi @ _np(w_ih)).reshape(T, B, F).transpose(1, 0, 2)))
            if need[0] else None,
            torch.from_numpy(carry) if need[1] else None,
            torch.from_numpy(flat_gi.T @ Xt.reshape(T * B, F)) if need[2] else None,
            torch.from_numpy(flat_gh.T @ hs[:T].reshape(T * B, H)) if need[3] else None,
            torch.from_numpy(flat_gi.sum(0)) if need[4] else None,
            torch.from_numpy(flat_gh.sum(0)) if need[5] else None,
            None,
        )
