"""The GRU with a hand-written backward pass (NumPy loops, or C loops where a compiler is
available) gives exactly what PyTorch's own GRU gives."""

from contextlib import nullcontext

import pytest
import torch

from nsprog import gru_kernel, native
from nsprog.gru_kernel import gru


@pytest.fixture(params=["numpy", "native", "native-batch-inner"])
def kernel(request, monkeypatch):
    """Run a test on the NumPy fallback and on both kinds of compiled C loops (row-wise and
    batch-inner, whichever the block sizes would pick)."""
    if request.param == "numpy":
        monkeypatch.setattr(native, "load", lambda: None)
        return "numpy"
    if native.load() is None:
        pytest.skip(f"no native kernel here: {native.native_status()}")
    monkeypatch.setattr(gru_kernel, "BATCH_INNER_BELOW", 10**6 if request.param == "native-batch-inner" else 0)
    return "native"


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
    with pytest.raises(ValueError, match="sum to") if kernel == "native" else nullcontext():
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


def test_lean_adam_equals_torch_adam_with_groups_and_missing_gradients():
    from nsprog.optim import LeanAdam

    torch.manual_seed(2)
    make = lambda: torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    a, b = make(), make()
    b.load_state_dict(a.state_dict())
    for m in (a, b):
        m[0].bias.requires_grad_(False)  # frozen parameters are left alone
    opt_a = torch.optim.Adam([{"params": [a[0].weight], "lr": 1e-2}, {"params": list(a[2].parameters()), "lr": 3e-2}])
    opt_b = LeanAdam([([b[0].weight, b[0].bias], 1e-2), (list(b[2].parameters()), 3e-2)])
    x = torch.randn(16, 4)
    for i in range(6):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            # in odd steps the last layer gets no gradient: Adam skips it, its step count too
            loss = model(x).pow(2).mean() if i % 2 == 0 else model[0](x).pow(2).mean()
            loss.backward()
            opt.step()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6), name
