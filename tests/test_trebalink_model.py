"""The TREBA model's pieces: the supervised-contrastive loss against a hand computation, the
stacked task heads against plain PyTorch modules, the rollout against the teacher-forced
decoder, and the consistency loss's gradients reaching the decoder and the encoder."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trebalink.losses import free_bits_kl, supervised_contrastive, task_cross_entropy
from trebalink.model import ModelSettings, StackedBiGRU, StackedMLP, TrebaNet


def _supcon_by_hand(feats, labels, tau):
    """Khosla et al.'s loss written out with Python floats."""
    n = len(feats)
    dot = [[sum(a * b for a, b in zip(feats[i], feats[j])) for j in range(n)] for i in range(n)]
    terms = []
    for i in range(n):
        if labels[i] < 0:
            continue
        others = [a for a in range(n) if a != i and labels[a] >= 0]
        pos = [p for p in others if labels[p] == labels[i]]
        if not pos:
            continue
        denom = sum(math.exp(dot[i][a] / tau) for a in others)
        terms.append(-sum(math.log(math.exp(dot[i][p] / tau) / denom) for p in pos) / len(pos))
    return sum(terms) / len(terms)


def test_supervised_contrastive_loss_equals_a_hand_computed_value_on_4_items():
    feats = [(1.0, 0.0), (0.6, 0.8), (0.0, 1.0), (-0.8, 0.6)]
    labels = [0, 0, 1, 1]
    got = supervised_contrastive(torch.tensor(feats), torch.tensor(labels), 0.5).item()
    # the four anchors, by hand: anchor 0 has positive 1 (dot 0.6) against 1, 2, 3 (dots 0.6, 0, -0.8)
    a0 = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(0.0) + math.exp(-1.6)))
    a1 = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(1.6) + math.exp(0.0)))
    a2 = -math.log(math.exp(1.2) / (math.exp(0.0) + math.exp(1.6) + math.exp(1.2)))
    a3 = -math.log(math.exp(1.2) / (math.exp(-1.6) + math.exp(0.0) + math.exp(1.2)))
    assert got == pytest.approx((a0 + a1 + a2 + a3) / 4, rel=1e-6)
    assert got == pytest.approx(_supcon_by_hand(feats, labels, 0.5), rel=1e-6)
    # an abstaining item (-1) takes no part; an anchor without positives is left out of the mean
    more = feats + [(0.0, -1.0), (0.8, -0.6)]
    assert supervised_contrastive(torch.tensor(more), torch.tensor(labels + [-1, 7]), 0.5).item() == pytest.approx(
        _supcon_by_hand(more, labels + [-1, 7], 0.5), rel=1e-6)


def test_free_bits_and_task_cross_entropy():
    mu, logvar = torch.tensor([[0.0, 2.0]]), torch.zeros(1, 2)
    assert free_bits_kl(mu, logvar, 0.0).item() == pytest.approx(2.0)
    assert free_bits_kl(mu, logvar, 0.5).item() == pytest.approx(2.5)  # dim 0 floored at 0.5
    logits = torch.tensor([[[2.0, 0.0, float("-inf")], [0.0, 1.0, float("-inf")]]])  # 1 task, 2 windows, 2 classes
    ce, correct, counted = task_cross_entropy(logits, torch.tensor([[0], [-1]]))
    assert ce.item() == pytest.approx(math.log(1 + math.exp(-2.0)) / 2)  # the abstain counts zero, over 2 windows
    assert correct.tolist() == [1] and counted.tolist() == [1]


@pytest.mark.parametrize("h", [4, StackedBiGRU.PER_TASK_FROM])  # the batched recurrence, then nn.GRU per task
def test_stacked_heads_equal_separate_pytorch_modules(h):
    torch.manual_seed(0)
    k, f = 3, 5
    stacked = StackedBiGRU(k, f, h)
    x = torch.randn(6, 7, f)
    out = stacked(x)
    for j in range(k):
        ref = nn.GRU(f, h, batch_first=True, bidirectional=True)
        with torch.no_grad():
            for d, sfx in enumerate(("", "_reverse")):
                getattr(ref, f"weight_ih_l0{sfx}").copy_(stacked.w_ih[d][:, j * 3 * h : (j + 1) * 3 * h].T)
                getattr(ref, f"bias_ih_l0{sfx}").copy_(stacked.b_ih[d][j * 3 * h : (j + 1) * 3 * h])
                getattr(ref, f"weight_hh_l0{sfx}").copy_(stacked.w_hh[d * k + j].T)
                getattr(ref, f"bias_hh_l0{sfx}").copy_(stacked.b_hh[d * k + j, 0])
        torch.testing.assert_close(out[j], ref(x)[0].mean(1), rtol=1e-5, atol=1e-6)
    mlp = StackedMLP(k, [f, 3, 2])
    y = mlp(x[:, 0])
    for j in range(k):
        ref = torch.relu(x[:, 0] @ mlp.weights[0][j] + mlp.biases[0][j]) @ mlp.weights[1][j] + mlp.biases[1][j]
        torch.testing.assert_close(y[j], ref)


def _tiny_net(**kw) -> TrebaNet:
    torch.manual_seed(1)
    cfg = ModelSettings(z_dim=4, rnn_dim=8, h_dim=8, approximator_rnn_dim=4, approximator_h_dim=8, **kw)
    return TrebaNet(3, [2, 3], cfg)


def test_the_rollout_is_the_decoder_fed_its_own_actions():
    net = _tiny_net()
    x = torch.randn(5, 9, 3)
    z = torch.randn(5, 4)
    roll = net.rollout(x[:, 0], z, torch.zeros(5, 8, 3), temperature=0.0)
    a, mu, _ = net.decoder(roll, z)  # teacher forcing on the rollout's own states
    torch.testing.assert_close(mu, a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(roll[:, 0], x[:, 0])


def test_consistency_gradients_reach_the_decoder_and_the_encoder_not_the_frozen_approximators():
    net = _tiny_net(contrastive_weight=0.0)
    for p in net.approximator_parameters():
        p.requires_grad_(False)
    x = torch.randn(6, 9, 3)
    y = torch.tensor([[0, 2], [1, 0], [1, 1], [0, 2], [-1, 1], [1, 0]])
    mu, logvar = net.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(6, 4)
    roll = net.rollout(x[:, 0], z, torch.randn(6, 8, 3), temperature=0.1)
    ce, _, _ = task_cross_entropy(net.approximate(roll), y)
    ce.sum().backward()
    named = dict(net.named_parameters())
    for name in ("decoder.rnn.weight_hh_l0", "decoder.body.1.weight", "decoder.z_in.weight", "decoder.state_in.weight",
                 "encoder.mu.weight", "encoder.logvar.weight", "encoder.rnn.weight_ih"):
        g = named[name].grad
        assert g is not None and g.abs().sum() > 0, name
    assert all(p.grad is None for p in net.approximator_parameters())


def test_stage2_objective_gradients_and_a_task_conditioned_encoder():
    from trebalink.model import Stage2Objective

    net = _tiny_net(condition_on_tasks=True)
    assert net.encoder.rnn.f == 2 * (3 + 5)  # [s, a] with 2 + 3 one-hot class channels
    x, xa = torch.randn(4, 9, 3), torch.randn(4, 9, 3)
    y = torch.tensor([[0, 2], [1, 0], [1, 1], [0, -1]])
    noise = {"z": torch.randn(4, 4), "z_aug": torch.randn(4, 4), "z_rollout": torch.randn(4, 4),
             "actions": torch.randn(4, 8, 3)}
    loss, terms = Stage2Objective(net)(x, xa, y, y, torch.arange(4), noise, 4.0)
    assert {"nll", "kl", "nll_aug", "consistency", "contrastive"} <= set(terms)
    loss.backward()
    assert net.projection.weights[0].grad.abs().sum() > 0
    with pytest.raises(ValueError, match="reads the task classes"):
        net.encode(x)
