"""The fused training loss (one autograd node, NumPy inside) equals the composed PyTorch loss."""

import pytest
import torch

from nsprog.dsl.ast import Hole
from nsprog.dsl.definition import load_dsl
from nsprog.dsl.semantics import StackedProgram
from nsprog.dsl.types import ATOM, LIST, Sig, Type
from nsprog.models import fused_loss
from nsprog.models.nstvae import LossWeights, NeurosymbolicTVAE, VAESettings


def _model(n_programs, dtype, frozen=0, **cfg):
    torch.manual_seed(0)
    dsl = load_dsl("synthetic")
    model = NeurosymbolicTVAE(2, VAESettings(z_dim=4, **cfg))
    start = Sig(Type(LIST, dsl.n_features), Type(ATOM, 1))
    for j in range(n_programs):
        model.add_program(StackedProgram([Hole(start)], dsl, 8, 4, seed=j))
    for j in range(frozen):  # earlier programs, frozen as in Algorithm 2
        model.programs[j].requires_grad_(False)
    model = model.to(dtype)
    # spread the decoder's log-variance so that the clamp is active on one dimension
    with torch.no_grad():
        model.decoder.out_logvar.copy_(torch.tensor([0.3, 20.0], dtype=dtype))
    return model.train(), dsl


def _loss_and_grads(model, states, feats, w, fused: bool, seed=3):
    params = [p for p in model.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(seed)
    if fused:
        loss, terms = fused_loss.fused_training_loss(model, states, feats, w, gen)
    else:
        orig = fused_loss.fused_loss_supported
        fused_loss.fused_loss_supported = lambda *a: False
        try:
            loss, terms = model.training_loss(states, feats, w, gen)
        finally:
            fused_loss.fused_loss_supported = orig
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return loss, terms, grads


CASES = [
    dict(n_programs=2, w=LossWeights(10.0, 1.0, 1.0, 0.3, 1, "kl", 1.0), cfg={}),
    dict(n_programs=1, w=LossWeights(1.0, None, 2.0, 0.5, 0, "mi", 0.5), cfg=dict(adversary_input="sample")),
    dict(n_programs=2, w=LossWeights(10.0, 0.2, 1.0, 0.3, None, "kl", 1.0), cfg=dict(adversary_on_programs=True)),
    dict(n_programs=0, w=LossWeights(1.0, None, 1.0, 0.6, None, "kl", 1.0), cfg={}),
    dict(n_programs=4, w=LossWeights(10.0, 1.0, 1.0, 0.3, 3, "mi", 1.0), cfg={}),  # no neural latent left
    dict(n_programs=1, w=LossWeights(10.0, 1.0, 1.0, 0.3, 0, "kl", 3.0), cfg=dict(adversary_input="standardized")),
    dict(n_programs=3, w=LossWeights(10.0, 1.0, 1.0, 0.3, 2, "kl", 1.0), cfg=dict(frozen_bits="hard"), frozen=2),
    dict(n_programs=2, w=LossWeights(10.0, 1.0, 1.0, 0.3, 1, "kl", 1.0), cfg=dict(decorrelation_weight=5.0)),
    dict(n_programs=1, w=LossWeights(10.0, 1.0, 1.0, 0.3, 0, "kl", 2.0), cfg=dict(adversary_input="whitened")),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['n_programs']}prog-{c['w'].disc_term}-{c['cfg']}")
def test_fused_loss_equals_the_composed_loss_and_gradients(case):
    dtype = torch.float64
    model, dsl = _model(case["n_programs"], dtype, case.get("frozen", 0), **case["cfg"])
    assert model.hard_bit_columns() == list(range(case.get("frozen", 0) if case["cfg"].get("frozen_bits") else 0))
    g = torch.Generator().manual_seed(1)
    states = torch.cumsum(torch.randn(16, 9, 2, generator=g, dtype=dtype), 1)
    feats = torch.randn(16, 9, dsl.n_features, generator=g, dtype=dtype)
    assert fused_loss.fused_loss_supported(model, states)
    loss_f, terms_f, grads_f = _loss_and_grads(model, states, feats, case["w"], fused=True)
    loss_c, terms_c, grads_c = _loss_and_grads(model, states, feats, case["w"], fused=False)
    assert torch.allclose(loss_f, loss_c, rtol=1e-10, atol=1e-10)
    for k in terms_c:
        assert torch.allclose(terms_f[k], terms_c[k], rtol=1e-10, atol=1e-10), k
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    for name, a, b in zip(names, grads_f, grads_c):
        if b is None:
            assert a is None or torch.all(a == 0), name
        else:
            assert torch.allclose(a, b, rtol=1e-8, atol=1e-10), name


def test_fused_path_is_only_taken_where_it_applies():
    model, _ = _model(1, torch.float32)
    states = torch.zeros(2, 5, 2)
    assert fused_loss.fused_loss_supported(model, states)
    assert not fused_loss.fused_loss_supported(model.eval(), states)
    gru_model = NeurosymbolicTVAE(2, VAESettings(decoder="gru")).train()
    assert not fused_loss.fused_loss_supported(gru_model, states)
