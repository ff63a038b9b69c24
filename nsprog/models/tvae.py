"""Trajectory VAE building blocks (encoder, decoders) shared by every model in nsprog.

Encoder: bidirectional GRU over ``[s_t, a_t]``, mean over time, MLP, Gaussian with clamped
log-variance. Decoders predict a Gaussian over ``a_t`` from ``s_t`` and ``z``:
``gru`` (teacher forcing: a GRU over the true ``[s_t, a_t]`` run over the whole sequence in
one call, then MLP([s_t, z, h_{t-1}])), ``mlp`` (MLP([s_t, z])) or ``linear``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from nsprog.gru_kernel import gru

__all__ = ["BiGRU", "TrajectoryEncoder", "ActionDecoder", "trajectory_inputs"]

_GATES = 3


def trajectory_inputs(states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(s, a, [s, a])`` for steps t = 0..T-1 of windows ``states[B, T+1, D]``."""
    s = states[:, :-1]
    a = states[:, 1:] - s
    return s, a, torch.cat([s, a], dim=-1)


class BiGRU(nn.Module):
    """A bidirectional single-layer GRU run as ONE block-diagonal GRU kernel call.

    The forward direction reads ``x_t`` and the backward direction reads ``x_{T-1-t}``;
    stacking them as one GRU with masked (block-diagonal) weights gives exactly the outputs
    of ``nn.GRU(bidirectional=True)`` while paying the CPU's per-time-step overhead once.
    ``forward`` returns ``[B, T, 2h]`` (forward and backward outputs aligned at each t).
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        f, h = input_size, hidden_size
        H = 2 * h
        self.f, self.h = f, h
        self.weight_ih = nn.Parameter(torch.zeros(_GATES * H, 2 * f))
        self.weight_hh = nn.Parameter(torch.zeros(_GATES * H, H))
        self.bias_ih = nn.Parameter(torch.zeros(_GATES * H))
        self.bias_hh = nn.Parameter(torch.zeros(_GATES * H))
        mask_ih = torch.zeros(_GATES * H, 2 * f)
        mask_hh = torch.zeros(_GATES * H, H)
        for g in range(_GATES):
            mask_ih[g * H : g * H + h, :f] = 1
            mask_ih[g * H + h : (g + 1) * H, f:] = 1
            mask_hh[g * H : g * H + h, :h] = 1
            mask_hh[g * H + h : (g + 1) * H, h:] = 1
        self.register_buffer("mask_ih", mask_ih, persistent=False)
        self.register_buffer("mask_hh", mask_hh, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.h)
        with torch.no_grad():
            for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
                p.uniform_(-bound, bound)
            self.weight_ih.mul_(self.mask_ih)
            self.weight_hh.mul_(self.mask_hh)

    def load_from_gru(self, gru: nn.GRU) -> None:
        """Copy the weights of a ``nn.GRU(bidirectional=True)`` (for tests and conversions)."""
        h, f, H = self.h, self.f, 2 * self.h
        with torch.no_grad():
            self.weight_ih.zero_()
            self.weight_hh.zero_()
            for d, sfx in enumerate(("", "_reverse")):
                wi, wh = getattr(gru, f"weight_ih_l0{sfx}"), getattr(gru, f"weight_hh_l0{sfx}")
                bi, bh = getattr(gru, f"bias_ih_l0{sfx}"), getattr(gru, f"bias_hh_l0{sfx}")
                for g in range(_GATES):
                    rows = slice(g * H + d * h, g * H + (d + 1) * h)
                    self.weight_ih[rows, d * f : (d + 1) * f] = wi[g * h : (g + 1) * h]
                    self.weight_hh[rows, d * h : (d + 1) * h] = wh[g * h : (g + 1) * h]
                    self.bias_ih[rows] = bi[g * h : (g + 1) * h]
                    self.bias_hh[rows] = bh[g * h : (g + 1) * h]

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs of the stacked GRU: forward direction at t, backward direction at T-1-t."""
        xx = torch.cat([x, x.flip(1)], dim=-1)
        out, _ = gru(xx, None, self.weight_ih * self.mask_ih, self.weight_hh * self.mask_hh, self.bias_ih, self.bias_hh)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._run(x)
        return torch.cat([out[..., : self.h], out[..., self.h :].flip(1)], dim=-1)

    def mean_over_time(self, x: torch.Tensor) -> torch.Tensor:
        """``forward(x).mean(1)`` without re-aligning the backward direction (a mean ignores order)."""
        return self._run(x).mean(1)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class TrajectoryEncoder(nn.Module):
    """``states[B, T+1, D] -> (mu, logvar)`` of a Gaussian over ``z_dim`` dims."""

    def __init__(self, state_dim: int, z_dim: int, rnn_dim: int = 16, h_dim: int = 16, logvar_clamp: float = 16.0):
        super().__init__()
        self.rnn = BiGRU(2 * state_dim, rnn_dim)
        self.body = nn.Sequential(nn.Linear(2 * rnn_dim, h_dim), nn.ReLU(), nn.Linear(h_dim, h_dim), nn.ReLU())
        self.mu = nn.Linear(h_dim, z_dim)
        self.logvar = nn.Linear(h_dim, z_dim)
        self.logvar_clamp = logvar_clamp

    @property
    def z_dim(self) -> int:
        return self.mu.out_features

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, _, sa = trajectory_inputs(states)
        h = self.body(self.rnn.mean_over_time(sa))
        return self.mu(h), self.logvar(h).clamp(-self.logvar_clamp, self.logvar_clamp)

    def drop_last_latent(self) -> None:
        """Remove the last latent dimension (the neural latent shrinks when a program is added)."""
        for name in ("mu", "logvar"):
            old = getattr(self, name)
            new = nn.Linear(old.in_features, old.out_features - 1).to(old.weight.device)
            with torch.no_grad():
                new.weight.copy_(old.weight[:-1])
                new.bias.copy_(old.bias[:-1])
            setattr(self, name, new)


class ActionDecoder(nn.Module):
    """Gaussian over actions ``a_t`` given ``s_t`` and ``z`` (and the past, for ``gru``)."""

    def __init__(
        self,
        state_dim: int,
        z_dim: int,
        kind: Literal["gru", "mlp", "linear"] = "gru",
        rnn_dim: int = 16,
        h_dim: int = 16,
        logvar_clamp: float = 16.0,
    ):
        super().__init__()
        self.kind = kind
        self.logvar_clamp = logvar_clamp
        d = state_dim
        if kind == "linear":
            self.state_in = nn.Linear(d, d)
            self.z_in = nn.Linear(z_dim, d, bias=False)
            self.out_logvar = nn.Parameter(torch.zeros(d))
        elif kind in ("mlp", "gru"):
            extra = rnn_dim if kind == "gru" else 0
            if kind == "gru":
                self.rnn = nn.GRU(2 * d, rnn_dim, batch_first=True)
            self.state_in = nn.Linear(d + extra, h_dim)
            self.z_in = nn.Linear(z_dim, h_dim, bias=False)
            self.body = nn.Sequential(nn.ReLU(), nn.Linear(h_dim, h_dim), nn.ReLU(), nn.Linear(h_dim, 2 * d))
        else:
            raise ValueError(f"decoder must be one of 'gru', 'mlp', 'linear'; got {kind!r}")

    def forward(self, states: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(actions, mu, logvar)``, each ``[B, T, D]``."""
        s, a, sa = trajectory_inputs(states)
        zt = self.z_in(z)[:, None, :]
        if self.kind == "linear":
            mu = self.state_in(s) + zt
            return a, mu, self.out_logvar.clamp(-self.logvar_clamp, self.logvar_clamp).expand_as(mu)
        inp = s
        if self.kind == "gru":
            r = self.rnn  # teacher forcing over the whole sequence in one call
            h, _ = gru(sa, None, r.weight_ih_l0, r.weight_hh_l0, r.bias_ih_l0, r.bias_hh_l0)
            h_prev = torch.cat([h.new_zeros(h.shape[0], 1, h.shape[2]), h[:, :-1]], dim=1)
            inp = torch.cat([s, h_prev], dim=-1)
        mu, logvar = self.body(self.state_in(inp) + zt).chunk(2, dim=-1)
        return a, mu, logvar.clamp(-self.logvar_clamp, self.logvar_clamp)
