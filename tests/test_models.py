import math

import pytest
import torch

from nsprog.models.latent import LN2, bernoulli_kl, capacity, gaussian_kl, gaussian_nll, grad_reverse, gumbel_sigmoid_st
from nsprog.models.nstvae import NeurosymbolicTVAE, VAESettings
from nsprog.models.tvae import ActionDecoder


def test_gaussian_kl_by_hand():
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)], [0.0, 0.0]])
    # sample 1: 0.5*(1 + 1 - 1 - 0) + 0.5*(0 + 4 - 1 - ln 4); sample 2: 0
    expected = (0.5 + 0.5 * (3 - math.log(4.0))) / 2
    assert gaussian_kl(mu, logvar).item() == pytest.approx(expected, rel=1e-6)


def test_bernoulli_kl_values():
    logit = torch.tensor([[0.0, 50.0], [math.log(3.0), -50.0]])  # q = 0.5, 1; 0.75, 0
    kl = bernoulli_kl(logit)
    q = 0.75
    by_hand = q * math.log(2 * q) + (1 - q) * math.log(2 * (1 - q))
    assert kl[0].item() == pytest.approx(by_hand / 2, rel=1e-5)
    assert kl[1].item() == pytest.approx(LN2, rel=1e-5)  # deterministic bits carry ln 2 against a fair prior


def test_capacity_schedule_is_linear_and_capped():
    assert capacity(0, 0.6, 1000) == 0.0
    assert capacity(250, 0.6, 1000) == pytest.approx(0.15)
    assert capacity(1000, 0.6, 1000) == pytest.approx(0.6)
    assert capacity(5000, 0.6, 1000) == pytest.approx(0.6)
    assert capacity(10, 2.0, 0) == 2.0


def test_gradient_reversal_flips_the_sign():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    (grad_reverse(x, 3.0) * torch.tensor([2.0, 5.0])).sum().backward()
    assert x.grad.tolist() == [-6.0, -15.0]
    y = torch.tensor([1.0], requires_grad=True)
    out = grad_reverse(y * 2.0)
    assert out.item() == 2.0  # identity forward


def test_straight_through_gumbel_is_hard_with_soft_gradients():
    logit = torch.zeros(2000, requires_grad=True)
    z = gumbel_sigmoid_st(logit, tau=0.5, generator=torch.Generator().manual_seed(0))
    values = z.detach()
    assert torch.all((values.abs() < 1e-6) | ((values - 1).abs() < 1e-6))
    assert 0.45 < z.mean().item() < 0.55
    z.sum().backward()
    assert (logit.grad >= 0).all() and logit.grad.mean() > 0.1
    strong = gumbel_sigmoid_st(torch.full((1000,), 6.0), tau=0.5, generator=torch.Generator().manual_seed(1))
    assert strong.mean().item() > 0.99


def test_gaussian_nll_by_hand():
    x = torch.zeros(1, 2, 1)
    mu = torch.ones(1, 2, 1)
    logvar = torch.zeros(1, 2, 1)
    assert gaussian_nll(x, mu, logvar).item() == pytest.approx(2 * 0.5 * (1 + math.log(2 * math.pi)))


@pytest.mark.parametrize("kind", ["linear", "mlp", "gru"])
def test_decoder_teacher_forcing_is_causal(kind):
    torch.manual_seed(0)
    dec = ActionDecoder(2, 3, kind)
    states = torch.randn(4, 9, 2)
    z = torch.randn(4, 3)
    a, mu, logvar = dec(states, z)
    assert a.shape == mu.shape == logvar.shape == (4, 8, 2)
    later = states.clone()
    later[:, 6:] += 5.0  # changing the future must not change earlier predictions
    _, mu2, _ = dec(later, z)
    torch.testing.assert_close(mu[:, :5], mu2[:, :5])


def test_latent_layout_shrinks_the_neural_part():
    from nsprog.dsl import Hole, Sig, StackedProgram, Type, load_dsl

    dsl = load_dsl("synthetic")
    model = NeurosymbolicTVAE(2, VAESettings(z_dim=4))
    assert model.neural_dim == 4 and model.adversary is None
    mu_before = model.encoder.mu.weight.detach().clone()
    model.add_program(StackedProgram([Hole(Sig(Type("list", 4), Type("atom", 1)))], dsl))
    assert model.neural_dim == 3 and model.encoder.z_dim == 3
    torch.testing.assert_close(model.encoder.mu.weight, mu_before[:3])  # warm: kept units unchanged
    out = model(torch.randn(5, 25, 2), torch.randn(5, 25, 4))
    assert out["kl_disc"].shape == (1,) and out["adv"].item() > 0
    with pytest.raises(ValueError, match="leaves no room for program"):
        for _ in range(4):
            model.add_program(StackedProgram([Hole(Sig(Type("list", 4), Type("atom", 1)))], dsl))


def test_vae_settings_reject_bad_values():
    with pytest.raises(ValueError, match=r"disc_capacity: expected a value >= 0 and <= 0.693"):
        VAESettings(disc_capacity=0.9)
    with pytest.raises(ValueError, match="lr: expected a value > 0"):
        VAESettings(lr=0)


def test_standardize_batch_is_scale_free_and_differentiable():
    from nsprog.models.latent import standardize_batch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g, dtype=torch.float64)
    z = standardize_batch(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(z.pow(2).mean(0), torch.ones(3, dtype=torch.float64))
    # shrinking a column (how an encoder could hide a factor from an adversary) changes nothing
    torch.testing.assert_close(standardize_batch(x * torch.tensor([1e-3, 1.0, 50.0], dtype=torch.float64) + 7), z,
                               rtol=1e-5, atol=1e-5)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: standardize_batch(t)[:, 0].pow(3).sum(), (x,))


def test_squared_correlation_matches_numpy_and_ignores_scale():
    import numpy as np

    from nsprog.models.latent import squared_correlation

    g = torch.Generator().manual_seed(3)
    bit = (torch.rand(200, 1, generator=g) > 0.5).double()
    x = torch.randn(200, 3, generator=g, dtype=torch.float64)
    x[:, 1] += 3.0 * bit[:, 0]  # column 1 carries the bit
    expected = sum(np.corrcoef(x[:, j].numpy(), bit[:, 0].numpy())[0, 1] ** 2 for j in range(3))
    assert squared_correlation(x, bit).item() == pytest.approx(expected, rel=1e-9)
    assert squared_correlation(x, bit).item() > 0.5
    # a carrier column shrunk 1000-fold is still seen
    assert squared_correlation(x * torch.tensor([1.0, 1e-3, 1.0], dtype=torch.float64), bit).item() == pytest.approx(
        expected, rel=1e-6)
    # minimising it removes the bit from every linear read-out, keeping the rest of the signal
    w = torch.eye(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        squared_correlation(x @ w, bit).backward()
        opt.step()
    z = (x @ w).detach()
    assert squared_correlation(z, bit).item() < 1e-3
    means = [z[bit[:, 0] == c].mean(0) for c in (0, 1)]
    assert (means[0] - means[1]).abs().max() < 0.05 * z.std(0).min()


def test_decorrelation_term_reaches_the_encoder_not_the_programs():
    from nsprog.dsl import Hole, Sig, StackedProgram, Type, load_dsl
    from nsprog.models.nstvae import LossWeights

    dsl = load_dsl("synthetic")
    torch.manual_seed(0)
    model = NeurosymbolicTVAE(2, VAESettings(decorrelation_weight=1.0, decoder="gru")).train()
    model.add_program(StackedProgram([Hole(Sig(Type("list", 4), Type("atom", 1)))], dsl))
    states = torch.cumsum(torch.randn(32, 9, 2), 1)
    feats = torch.randn(32, 9, dsl.n_features)
    out = model(states, feats)
    assert out["decor"].item() > 0
    out["decor"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.programs.parameters())
    with pytest.raises(ValueError, match="decorrelation_weight: expected a value >= 0"):
        VAESettings(decorrelation_weight=-1)
    _, terms = model.training_loss(states, feats, LossWeights(1.0, None, 1.0, 0.6, 0))
    assert terms["decor"].item() == pytest.approx(out["decor"].item(), rel=1e-5)


def test_whitening_matrix_whitens_and_reveals_a_shrunk_direction():
    from nsprog.models.latent import whitening_matrix

    g = torch.Generator().manual_seed(4)
    a = torch.randn(256, 1, generator=g, dtype=torch.float64)
    x = torch.cat([a, a + 1e-3 * torch.randn(256, 1, generator=g, dtype=torch.float64)], 1)  # nearly collinear
    w = whitening_matrix(x.requires_grad_(True))
    v = (x - x.mean(0)) @ w
    torch.testing.assert_close(v.T @ v / 256, torch.eye(2, dtype=torch.float64), atol=1e-5, rtol=0)
    assert not w.requires_grad  # batch statistics are constants for the gradient
