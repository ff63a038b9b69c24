"""The TREBA model (Sun et al. 2021, "task programming") on nsprog's trajectory-VAE pieces.

* encoder: :class:`nsprog.models.tvae.TrajectoryEncoder` (bi-GRU over ``[s_t, a_t]``, mean over
  time, MLP, Gaussian ``z``); with ``condition_on_tasks`` (off by default, a replication
  option) the task classes are appended to every frame's input as one-hot channels, so every
  task must then be computed whenever a window is embedded;
* decoder: :class:`nsprog.models.tvae.ActionDecoder` (GRU with teacher forcing, MLP
  ``[s_t, z, h_{t-1}] -> `` Gaussian ``a_t``); :meth:`TrebaNet.rollout` runs the same weights
  from the first state on its own samples, differentiably;
* per task: a contrastive projection head ``z -> z -> z``, an optional decoding head
  ``z -> z -> classes`` and a label approximator (a small bi-GRU classifier over ``[s_t, a_t]``,
  mean over time, MLP). All K tasks' heads and approximators are stacked along a task axis
  and run as batched matrix products (one call per layer or time step for all tasks).

The losses are in :mod:`trebalink.losses`; :class:`Stage1Objective` and
:class:`Stage2Objective` compose them into one module per training stage (the unit that
``DistributedDataParallel`` wraps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nsprog.models.latent import gaussian_nll
from nsprog.models.tvae import ActionDecoder, TrajectoryEncoder, trajectory_inputs
from nsprog.settings import Settings, param
from trebalink.losses import free_bits_kl, supervised_contrastive, task_cross_entropy

__all__ = ["ModelSettings", "StackedMLP", "StackedBiGRU", "TrebaNet", "Stage1Objective", "Stage2Objective"]


@dataclass
class ModelSettings(Settings):
    """The TREBA model and its losses (defaults: the reference mouse configuration)."""

    z_dim: int = param(32, ge=1)
    rnn_dim: int = param(256, ge=1)  # encoder and decoder GRU units (per direction in the encoder)
    h_dim: int = param(256, ge=1)  # encoder and decoder MLP width
    decoder: Literal["gru", "mlp"] = "gru"
    approximator_rnn_dim: int = param(32, ge=1)  # label approximators: bi-GRU units per direction
    approximator_h_dim: int = param(64, ge=1)  # label approximators: MLP width
    contrastive_weight: float = param(10.0, ge=0)
    consistency_weight: float = param(1.0, ge=0)
    decoding_weight: float = param(0.0, ge=0)
    temperature: float = param(0.07, gt=0)  # supervised-contrastive temperature
    rollout_temperature: float = param(0.1, ge=0)  # action sampling scale in the consistency rollout
    free_bits: float | None = param(None, ge=0)  # KL floor per latent dimension; None: 1 / z_dim
    reconstruct_augmented: bool = True  # the augmented copy is reconstructed too (the reference does)
    condition_on_tasks: bool = False  # replication option: the encoder also reads the task classes

    @property
    def kl_floor(self) -> float:
        return 1.0 / self.z_dim if self.free_bits is None else float(self.free_bits)


def _uniform(shape: Sequence[int], bound: float) -> nn.Parameter:
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


class StackedMLP(nn.Module):
    """K independent MLPs of the same sizes (ReLU between layers) as batched products.

    ``forward(x)`` takes ``[B, in]`` (the same input for every task) or ``[K, B, in]`` and
    returns ``[K, B, out]``. Initialised like ``nn.Linear``.
    """

    def __init__(self, k: int, sizes: Sequence[int]):
        super().__init__()
        self.k = k
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(a)
            self.weights.append(_uniform((k, a, b), bound))
            self.biases.append(_uniform((k, 1, b), bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w) if x.dim() == 3 else torch.einsum("bi,kio->kbo", x, w) + b
            if i < n - 1:
                x = torch.relu(x)
        return x


def _gru_mean(gi: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
    """Mean over time of the hidden states of stacked GRUs: ``gi [T, G, B, 3H]`` (input
    projections with their bias, time first so that every step is contiguous), ``w_hh [G, H,
    3H]``, ``b_hh [G, 1, 3H]`` -> ``[G, B, H]``. (A hand-written backward pass was tried and
    was slower than autograd on this layout.)"""
    t, g, b, h3 = gi.shape
    h = h3 // 3
    state = gi.new_zeros(g, b, h)
    total = None
    for step in gi.unbind(0):
        gh = torch.baddbmm(b_hh, state, w_hh)
        rz = torch.sigmoid(step[..., : 2 * h] + gh[..., : 2 * h])
        n = torch.tanh(torch.addcmul(step[..., 2 * h :], rz[..., :h], gh[..., 2 * h :]))
        state = torch.lerp(n, state, rz[..., h:])  # (1 - z) * n + z * state
        total = state if total is None else total + state
    return total / t


class StackedBiGRU(nn.Module):
    """K independent one-layer bidirectional GRUs over the same input, mean-pooled over time.

    The 2K recurrences (K tasks x 2 directions) advance together: the input projections of
    all steps are two matrix products, each time step one batched product ``[2K, B, H] x
    [2K, H, 3H]``. That wins for small GRUs (the default 32 units); from ``PER_TASK_FROM``
    units up, each task's GRU runs as ``torch.nn.GRU`` instead (ATen's fused cell is faster
    there), on the same parameters. ``forward(x [B, T, F]) -> [K, B, 2H]`` (forward and backward
    means). Gate order and initialisation as in ``nn.GRU``.
    """

    def __init__(self, k: int, input_size: int, hidden_size: int):
        super().__init__()
        self.k, self.f, self.h = k, input_size, hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        self.w_ih = _uniform((2, input_size, k * 3 * hidden_size), bound)
        self.b_ih = _uniform((2, k * 3 * hidden_size), bound)
        self.w_hh = _uniform((2 * k, hidden_size, 3 * hidden_size), bound)
        self.b_hh = _uniform((2 * k, 1, 3 * hidden_size), bound)

    #: hidden sizes from which each task's GRU runs as torch.nn.GRU (measured by benchmarks/bench_treba.py)
    PER_TASK_FROM = 48

    def task_parameters(self, j: int) -> dict[str, torch.Tensor]:
        """Task ``j``'s weights as the parameters of ``nn.GRU(bidirectional=True)`` (views)."""
        k, h = self.k, self.h
        cols = slice(j * 3 * h, (j + 1) * 3 * h)
        out = {}
        for d, sfx in enumerate(("", "_reverse")):
            out[f"weight_ih_l0{sfx}"] = self.w_ih[d][:, cols].T
            out[f"bias_ih_l0{sfx}"] = self.b_ih[d][cols]
            out[f"weight_hh_l0{sfx}"] = self.w_hh[d * k + j].T
            out[f"bias_hh_l0{sfx}"] = self.b_hh[d * k + j, 0]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, f = x.shape
        k, h = self.k, self.h
        if h >= self.PER_TASK_FROM:
            from nsprog.gru_kernel import plain_bidirectional

            return torch.stack([plain_bidirectional(x, self.task_parameters(j), h).mean(1) for j in range(k)])
        # one product for both directions: a projection acts on each step alone, so the
        # backward direction's projections are the forward ones in reversed time
        w = self.w_ih.permute(1, 0, 2).reshape(f, 2 * k * 3 * h)
        proj = torch.addmm(self.b_ih.reshape(-1), x.transpose(0, 1).reshape(t * b, f), w).view(t, b, 2, k, 3 * h)
        gi = torch.cat([proj[:, :, 0], proj[:, :, 1].flip(0)], 2).permute(0, 2, 1, 3)  # [T, 2K, B, 3H]
        gi = gi.contiguous()  # each time step contiguous
        w_hh, b_hh = self.w_hh, self.b_hh
        if gi.dtype != w_hh.dtype:  # autocast: run the recurrence in the projections' precision
            w_hh, b_hh = w_hh.to(gi.dtype), b_hh.to(gi.dtype)
        mean = _gru_mean(gi, w_hh, b_hh)  # [2K, B, H]
        return torch.cat([mean[:k], mean[k:]], dim=-1)


class TrebaNet(nn.Module):
    """All TREBA modules for ``state_dim``-dimensional (normalised) windows and tasks with
    ``n_classes[k]`` classes each (an empty list: no tasks; contrastive learning then pairs
    each window with its augmented copy only)."""

    def __init__(self, state_dim: int, n_classes: Sequence[int], cfg: ModelSettings):
        super().__init__()
        self.cfg = cfg
        self.state_dim = int(state_dim)
        self.n_classes = [int(c) for c in n_classes]
        k = len(self.n_classes)
        c = max(self.n_classes, default=0)
        cond = sum(self.n_classes) if cfg.condition_on_tasks else 0
        self.encoder = TrajectoryEncoder(state_dim + cond, cfg.z_dim, cfg.rnn_dim, cfg.h_dim)
        self.decoder = ActionDecoder(state_dim, cfg.z_dim, cfg.decoder, cfg.rnn_dim, cfg.h_dim)
        z = cfg.z_dim
        self.projection = StackedMLP(max(k, 1), [z, z, z]) if cfg.contrastive_weight > 0 else None
        self.decoding = StackedMLP(k, [z, z, c]) if cfg.decoding_weight > 0 and k else None
        self.approximator_rnn = self.approximator_mlp = None
        if cfg.consistency_weight > 0 and k:
            self.approximator_rnn = StackedBiGRU(k, 2 * state_dim, cfg.approximator_rnn_dim)
            self.approximator_mlp = StackedMLP(k, [2 * cfg.approximator_rnn_dim, cfg.approximator_h_dim,
                                                   cfg.approximator_h_dim, c])
        mask = torch.zeros(k, c, dtype=torch.bool)
        for j, n in enumerate(self.n_classes):
            mask[j, n:] = True
        self.register_buffer("invalid_class", mask, persistent=False)

    @property
    def n_tasks(self) -> int:
        return len(self.n_classes)

    @property
    def has_approximators(self) -> bool:
        return self.approximator_rnn is not None

    def approximator_parameters(self) -> list[nn.Parameter]:
        if not self.has_approximators:
            return []
        return list(self.approximator_rnn.parameters()) + list(self.approximator_mlp.parameters())

    def embedding_parameters(self) -> list[nn.Parameter]:
        ids = {id(p) for p in self.approximator_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    # ------------------------------------------------------------------ pieces
    def encoder_input(self, states: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """``states`` with one-hot task classes appended per frame (``condition_on_tasks`` only;
        an abstained task contributes zeros)."""
        if not self.cfg.condition_on_tasks or not self.n_tasks:
            return states
        if labels is None:
            raise ValueError("this model's encoder reads the task classes (condition_on_tasks); pass the labels")
        parts = [F.one_hot(labels[:, j].clamp_min(0), n).to(states.dtype) * (labels[:, j : j + 1] >= 0).to(states.dtype)
                 for j, n in enumerate(self.n_classes)]
        onehot = torch.cat(parts, dim=-1)[:, None, :].expand(-1, states.shape[1], -1)
        return torch.cat([states, onehot], dim=-1)

    def encode(self, states: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(self.encoder_input(states, labels))

    def mask_classes(self, logits: torch.Tensor) -> torch.Tensor:
        """``[K, B, C]`` logits with each task's unused classes set to -inf."""
        return logits.float().masked_fill(self.invalid_class[:, None, :], float("-inf"))

    def approximate(self, states: torch.Tensor) -> torch.Tensor:
        """Label approximators' logits ``[K, B, C]`` for windows ``[B, T+1, D]``."""
        _, _, sa = trajectory_inputs(states)
        return self.mask_classes(self.approximator_mlp(self.approximator_rnn(sa)))

    def rollout(self, first: torch.Tensor, z: torch.Tensor, noise: torch.Tensor, temperature: float) -> torch.Tensor:
        """Windows ``[B, T+1, D]`` generated from the first states ``[B, D]`` with latent ``z``:
        ``a_t = mu_t + temperature * sigma_t * noise[:, t]``, ``s_{t+1} = s_t + a_t``, the
        decoder's GRU fed its own ``[s_t, a_t]``. Differentiable in ``z`` and every decoder
        weight (the consistency loss trains through it)."""
        dec = self.decoder
        zt = dec.z_in(z)
        s = first
        states = [s]
        h = None
        if dec.kind == "gru":
            r = dec.rnn
            h = first.new_zeros(first.shape[0], r.hidden_size)
        for t in range(noise.shape[1]):
            inp = torch.cat([s, h], dim=-1) if h is not None else s
            mu, logvar = dec.body(dec.state_in(inp) + zt).chunk(2, dim=-1)
            logvar = logvar.clamp(-dec.logvar_clamp, dec.logvar_clamp)
            a = mu + temperature * torch.exp(0.5 * logvar) * noise[:, t]
            if h is not None:
                h = _gru_cell(torch.cat([s, a], dim=-1), h, r.weight_ih_l0, r.weight_hh_l0, r.bias_ih_l0, r.bias_hh_l0)
            s = s + a
            states.append(s)
        return torch.stack(states, dim=1)

    @torch.no_grad()
    def embed(self, states: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Posterior means ``[B, z_dim]`` (the embedding)."""
        return self.encode(states, labels)[0]


def _gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
    """One step of ``nn.GRU`` (gate order r, z, n)."""
    i_r, i_z, i_n = F.linear(x, w_ih, b_ih).chunk(3, -1)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, -1)
    r = torch.sigmoid(i_r + h_r)
    zg = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return n + zg * (h - n)


class Stage1Objective(nn.Module):
    """Stage 1: the label approximators learn each task's class from real windows.

    ``forward(states, labels, scale)`` -> ``(loss, terms)``: the cross-entropy of every task,
    summed over the windows (the reference's scale; ``scale`` is the global batch size over
    this process's batch, so that averaging gradients over DDP ranks gives the gradient of
    the sum over the global batch) and over tasks."""

    def __init__(self, net: TrebaNet):
        super().__init__()
        self.net = net

    def forward(self, states: torch.Tensor, labels: torch.Tensor, scale: float):
        ce, correct, counted = task_cross_entropy(self.net.approximate(states), labels)
        loss = ce.sum() * scale
        return loss, {"approx_ce": ce.sum().detach(), "approx_acc": (correct.sum() / counted.sum().clamp_min(1)).detach()}


class Stage2Objective(nn.Module):
    """Stage 2: the embedding (encoder, decoder, heads) with the approximators frozen.

    Per window (means over this process's batch, times ``scale`` = global batch size, so the
    gradient is that of the sum over the global batch as in the reference): reconstruction
    NLL and free-bits KL of the window and (``reconstruct_augmented``) of its augmented copy,
    consistency (the frozen approximators must recover each task's class from a rollout of
    the decoder from the first state with a fresh sample of ``z``) and decoding (heads predict
    each task's class from the posterior mean). Per batch: the supervised-contrastive loss of
    each task between windows and augmented copies (posterior means through the task's
    projection head, gathered over DDP ranks by ``gather``), averaged over anchors.
    """

    def __init__(self, net: TrebaNet, gather: Callable[[torch.Tensor], torch.Tensor] | None = None):
        super().__init__()
        self.net = net
        self.gather = gather or (lambda t: t)

    def forward(self, x: torch.Tensor, x_aug: torch.Tensor, y: torch.Tensor, y_aug: torch.Tensor,
                index: torch.Tensor, noise: dict[str, torch.Tensor], scale: float):
        net, cfg = self.net, self.net.cfg
        terms: dict[str, torch.Tensor] = {}
        mu, logvar = net.encode(x, y)
        mu_a, logvar_a = net.encode(x_aug, y_aug)
        std = torch.exp(0.5 * logvar)
        z = mu + std * noise["z"]
        a, mu_x, lv_x = net.decoder(x, z)
        nll = gaussian_nll(a.float(), mu_x.float(), lv_x.float())
        per_window = nll + free_bits_kl(mu, logvar, cfg.kl_floor)
        terms["nll"] = nll.detach()
        terms["kl"] = free_bits_kl(mu.detach(), logvar.detach(), 0.0)  # the true KL, without the floor
        if cfg.reconstruct_augmented:
            za = mu_a + torch.exp(0.5 * logvar_a) * noise["z_aug"]
            a2, mu2, lv2 = net.decoder(x_aug, za)
            nll_a = gaussian_nll(a2.float(), mu2.float(), lv2.float())
            per_window = per_window + nll_a + free_bits_kl(mu_a, logvar_a, cfg.kl_floor)
            terms["nll_aug"] = nll_a.detach()
        if net.has_approximators:
            zc = mu + std * noise["z_rollout"]
            roll = net.rollout(x[:, 0], zc, noise["actions"], cfg.rollout_temperature)
            ce, correct, counted = task_cross_entropy(net.approximate(roll), y)
            per_window = per_window + cfg.consistency_weight * ce.sum()
            terms["consistency"] = ce.sum().detach()
            terms["rollout_acc"] = (correct.sum() / counted.sum().clamp_min(1)).detach()
        if net.decoding is not None:
            ce, _, _ = task_cross_entropy(net.mask_classes(net.decoding(mu)), y)
            ce_a, _, _ = task_cross_entropy(net.mask_classes(net.decoding(mu_a)), y_aug)
            per_window = per_window + cfg.decoding_weight * (ce.sum() + ce_a.sum())
            terms["decoding"] = (ce.sum() + ce_a.sum()).detach()
        loss = per_window * scale
        if net.projection is not None:
            con = self._contrastive(mu, mu_a, y, y_aug, index)
            loss = loss + cfg.contrastive_weight * con
            terms["contrastive"] = con.detach()
        return loss, terms

    def _contrastive(self, mu, mu_a, y, y_aug, index) -> torch.Tensor:
        net = self.net
        feats = net.projection(torch.cat([mu, mu_a], 0))  # [K, 2b, z]
        feats = F.normalize(feats.float(), dim=-1)
        if net.n_tasks:
            labels = torch.cat([y, y_aug], 0).T  # [K, 2b]
        else:
            labels = torch.cat([index, index], 0)[None]  # each window's only positive is its copy
        feats = self.gather(feats.transpose(0, 1).contiguous()).transpose(0, 1)  # gather along the batch
        labels = self.gather(labels.T.contiguous()).T
        total = feats.new_zeros(())
        for k in range(feats.shape[0]):
            total = total + supervised_contrastive(feats[k], labels[k], net.cfg.temperature)
        return total
