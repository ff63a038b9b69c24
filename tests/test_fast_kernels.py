"""The GRU paths (native C loops where a compiler is available, torch.nn.GRU otherwise) give
exactly what PyTorch's own GRU gives; the fallback warns once and says how to get the fast path."""

import logging

import pytest
import torch

from nsprog import gru_kernel, native
from nsprog.gru_kernel import gru, native_active, native_kernels


@pytest.fixture(params=["plain", "native", "native-batch-inner"])
def kernel(request, monkeypatch):
    """Run a test on the plain path and on both kinds of compiled C loops (row-wise and
    batch-inner, whichever the block sizes would pick)."""
    if request.param == "plain":
        with native_kernels(False):
            yield "plain"
        return
    if native.load() is None:
        pytest.skip(f"no native kernel here: {native.native_status()}")
    monkeypatch.setattr(gru_kernel, "BATCH_INNER_BELOW", 10**6 if request.param == "native-batch-inner" else 0)
    yield "native"


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
def test_gru_matches_torch_values_and_gradients(dtype, tol, kernel):
    torch.manual_seed(0)
    B, T, F, H = 6, 9, 3, 5
    ref = torch.nn.GRU(F, H, batch_first=True).to(dtype)
    x = torch.randn(B, T, F, dtype=dtype, requires_grad=True)
    h0 = torch.randn(B, H, dtype=dtype, requires_grad=True)
    weights = [ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0, ref.bias_hh_l0]
    d_out, d_hn = torch.randn(B, T, H, dtype=dtype), torch.randn(B, H, dtype=dtype)

    out_ref, hn_ref = ref(x, h0[None])
    grads_ref = torch.autograd.grad((out_ref * d_out).sum() + (hn_ref[0] * d_hn).sum(), [x, h0, *weights])
    out, hn = gru(x, h0, *weights)
    grads = torch.autograd.grad((out * d_out).sum() + (hn * d_hn).sum(), [x, h0, *weights])

    assert torch.allclose(out, out_ref, atol=tol) and torch.allclose(hn, hn_ref[0], atol=tol)
    for name, g, g_ref in zip(["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"], grads, grads_ref):
        assert torch.allclose(g, g_ref, atol=tol, rtol=tol), name


def test_gru_gradcheck_and_zero_initial_state(kernel):
    torch.manual_seed(1)
    B, T, F, H = 3, 4, 2, 3
    args = [torch.randn(B, T, F, dtype=torch.float64, requires_grad=True),
            torch.randn(B, H, dtype=torch.float64, requires_grad=True),
            *(torch.randn(*s, dtype=torch.float64, requires_grad=True) for s in [(3 * H, F), (3 * H, H), (3 * H,), (3 * H,)])]
    assert torch.autograd.gradcheck(lambda *a: gru(*a), args)
    out_none, _ = gru(args[0], None, *args[2:])
    out_zero, _ = gru(args[0], torch.zeros(B, H, dtype=torch.float64), *args[2:])
    assert torch.equal(out_none, out_zero)


def test_block_diagonal_gru_equals_separate_grus(kernel):
    """Stacked GRUs (one call, block-diagonal recurrent weights) give each GRU's own outputs and
    gradients; the native kernel reads only the blocks."""
    torch.manual_seed(2)
    B, T, F, sizes = 37, 7, 3, [2, 5, 3]  # 37 = two 16-wide batch chunks and a remainder
    refs = [torch.nn.GRU(F, h, batch_first=True) for h in sizes]
    x = torch.randn(B, T, F, requires_grad=True)
    H = sum(sizes)
    offs = [sum(sizes[:i]) for i in range(len(sizes))]
    rows = [torch.cat([torch.arange(g * H + o, g * H + o + h) for g in range(3)]) for o, h in zip(offs, sizes)]
    w_ih = torch.zeros(3 * H, F); w_hh = torch.zeros(3 * H, H); b_ih = torch.zeros(3 * H); b_hh = torch.zeros(3 * H)
    with torch.no_grad():
        for r, o, h, m in zip(rows, offs, sizes, refs):
            w_ih[r] = m.weight_ih_l0; b_ih[r] = m.bias_ih_l0; b_hh[r] = m.bias_hh_l0
            blk = w_hh[r]; blk[:, o:o + h] = m.weight_hh_l0; w_hh[r] = blk
    stacked = [w_ih.requires_grad_(), w_hh.requires_grad_(), b_ih.requires_grad_(), b_hh.requires_grad_()]
    out, hn = gru(x, None, *stacked, blocks=sizes)
    d_out = torch.randn_like(out)
    g_x, g_hh = torch.autograd.grad((out * d_out).sum(), [x, stacked[1]])
    g_x_ref = torch.zeros_like(x)
    for r, o, h, m in zip(rows, offs, sizes, refs):
        o_ref, h_ref = m(x)
        assert torch.allclose(out[..., o:o + h], o_ref, atol=2e-5) and torch.allclose(hn[:, o:o + h], h_ref[0], atol=2e-5)
        gx, gw = torch.autograd.grad((o_ref * d_out[..., o:o + h]).sum(), [x, m.weight_hh_l0])
        g_x_ref += gx
        assert torch.allclose(g_hh[r][:, o:o + h], gw, atol=2e-5)
    assert torch.allclose(g_x, g_x_ref, atol=2e-5)
    with pytest.raises(ValueError, match="sum to"):
        gru(x, None, *stacked, blocks=[2, 5])


def test_native_kernel_builds_into_the_cache_or_reports_why(tmp_path, monkeypatch):
    monkeypatch.setenv("NSPROG_CACHE", str(tmp_path))
    monkeypatch.setattr(native, "_state", {})
    lib = native.load()
    if lib is None:
        assert "unavailable" in native.native_status()
    else:
        assert len(list(tmp_path.glob("nsprog_gru_*"))) == 1 and "built with" in native.native_status()
    monkeypatch.setenv("NSPROG_NATIVE", "0")
    monkeypatch.setattr(native, "_state", {})
    assert native.load() is None and "disabled" in native.native_status()


def test_bigru_equals_torch_bidirectional_gru(kernel):
    from nsprog.models.tvae import BiGRU

    torch.manual_seed(0)
    ref = torch.nn.GRU(6, 5, batch_first=True, bidirectional=True)
    ours = BiGRU(6, 5)
    ours.load_from_gru(ref)
    x = torch.randn(3, 11, 6, requires_grad=True)
    out, expected = ours(x), ref(x)[0]
    torch.testing.assert_close(out, expected, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(ours(x, aligned=False).mean(1), expected.mean(1), atol=2e-5, rtol=1e-5)
    g = torch.autograd.grad(out.pow(2).sum(), [x, ours.weight_hh])
    g_ref = torch.autograd.grad(expected.pow(2).sum(), [x, ref.weight_hh_l0_reverse])
    torch.testing.assert_close(g[0], g_ref[0], atol=5e-5, rtol=1e-4)
    rows = ours._rows(1)
    torch.testing.assert_close(g[1][rows][:, 5:], g_ref[1], atol=5e-5, rtol=1e-4)
    # the blocks stay blocks: no gradient reaches the zeros outside them
    mask = torch.zeros_like(ours.weight_hh)
    for d in range(2):
        mask[ours._rows(d), d * 5 : (d + 1) * 5] = 1
    assert g[1][mask == 0].abs().max() == 0
    g_ih = torch.autograd.grad(ours(x).sum(), ours.weight_ih)[0]
    mask_ih = torch.zeros_like(ours.weight_ih)
    for d in range(2):
        mask_ih[ours._rows(d), d * 6 : (d + 1) * 6] = 1
    assert g_ih[mask_ih == 0].abs().max() == 0


def test_without_a_compiler_the_plain_path_runs_and_warns_once_how_to_enable_the_fast_one(monkeypatch, caplog):
    monkeypatch.setattr(native, "load", lambda: None)
    monkeypatch.setattr(gru_kernel, "_warned", [])
    x = torch.randn(2, 4, 3)
    with caplog.at_level(logging.WARNING, logger="nsprog"):
        assert not native_active(x) and not native_active(x)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "install a C compiler" in warnings[0]
    ref = torch.nn.GRU(3, 4, batch_first=True)
    out, _ = gru(x, None, ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0, ref.bias_hh_l0)
    torch.testing.assert_close(out, ref(x)[0])


def test_native_kernels_switch_is_scoped():
    x = torch.randn(2, 4, 3)
    before = native_active(x)
    with native_kernels(False):
        assert not native_active(x)
    assert native_active(x) == before


def test_make_adam_falls_back_to_the_multi_tensor_step_where_fused_is_unsupported(monkeypatch):
    from nsprog.optim import make_adam

    real = torch.optim.Adam
    calls = []

    def no_fused(params, **kw):
        calls.append(kw)
        if kw.get("fused"):
            raise RuntimeError("fused=True is not supported here")
        return real(params, **kw)

    monkeypatch.setattr(torch.optim, "Adam", no_fused)
    w = torch.nn.Parameter(torch.ones(3))
    opt = make_adam([w], 0.1)
    assert calls[0]["fused"] and calls[1]["foreach"] and not opt.defaults.get("fused")
    monkeypatch.setattr(torch.optim, "Adam", real)
    w2 = torch.nn.Parameter(torch.ones(3))
    ref = make_adam([w2], 0.1)
    for p, o in ((w, opt), (w2, ref)):
        p.grad = torch.tensor([1.0, -2.0, 0.5])
        o.step()
    torch.testing.assert_close(w, w2)  # both steps compute the same update
