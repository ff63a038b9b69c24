"""Trajectory VAE building blocks (encoder, decoders) shared by every model in nsprog.

Encoder: bidirectional GRU (:class:`BiGRU`: one native kernel call on CPU, ``nn.GRU``
otherwise) over ``[s_t, a_t]``, mean over time, MLP, Gaussian with clamped log-variance. Decoders predict a Gaussian over ``a_t`` from ``s_t`` and ``z``:
``gru`` (teacher forcing: a GRU over the true ``[s_t, a_t]`` run over the whole sequence in
one call, then MLP([s_t, z, h_{t-1}])), ``mlp`` (MLP([s_t, z])) or ``linear``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from nsprog.gru_kernel import gru, native_active, plain_bidirectional

__all__ = ["BiGRU", "TrajectoryEncoder", "ActionDecoder", "trajectory_inputs"]

_GATES = 3


def trajectory_inputs(states: torch.Tensor, joined: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(s, a, [s, a])`` for steps t = 0..T-1 of windows ``states[B, T+1, D]`` (the last is
    None with ``joined=False``)."""
    s = states[:, :-1]
    a = states[:, 1:] - s
    return s, a, torch.cat([s, a], dim=-1) if joined else None


class BiGRU(nn.Module):
    """A bidirectional one-layer GRU whose parameters are stored as ONE block-diagonal GRU.

    The forward direction reads ``x_t`` and the backward direction ``x_{T-1-t}``; stacked
    as one GRU of ``2h`` units with block-diagonal weights (``weight_ih [3*2h, 2f]``,
    ``weight_hh [3*2h, 2h]``, zero outside the blocks), the native kernel runs both
    directions in a single call and pays its per-step overhead once. Without it, the same
    parameters run ``torch.nn.GRU(bidirectional=True)`` (each direction's blocks passed as
    that module's weights), which computes the same outputs. ``forward`` returns
    ``[B, T, 2h]`` (forward and backward outputs aligned at each t).
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
        self.reset_parameters()

    def _rows(self, d: int) -> torch.Tensor:
        H, h = 2 * self.h, self.h
        return torch.cat([torch.arange(g * H + d * h, g * H + (d + 1) * h) for g in range(_GATES)])

    def reset_parameters(self) -> None:
        """``nn.GRU``'s initialisation (uniform in +-1/sqrt(h)) inside the blocks, zero outside."""
        bound = 1.0 / math.sqrt(self.h)
        with torch.no_grad():
            for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
                p.zero_()
            for d in range(2):
                rows = self._rows(d)
                cols_i = slice(d * self.f, (d + 1) * self.f)
                cols_h = slice(d * self.h, (d + 1) * self.h)
                self.weight_ih[rows, cols_i] = torch.empty(len(rows), self.f).uniform_(-bound, bound)
                self.weight_hh[rows, cols_h] = torch.empty(len(rows), self.h).uniform_(-bound, bound)
                self.bias_ih[rows] = torch.empty(len(rows)).uniform_(-bound, bound)
                self.bias_hh[rows] = torch.empty(len(rows)).uniform_(-bound, bound)

    def directions(self) -> dict[str, torch.Tensor]:
        """The blocks as the parameters of ``nn.GRU(bidirectional=True)``."""
        out = {}
        for d, sfx in enumerate(("", "_reverse")):
            rows = self._rows(d).to(self.weight_ih.device)
            out[f"weight_ih_l0{sfx}"] = self.weight_ih[rows][:, d * self.f : (d + 1) * self.f]
            out[f"weight_hh_l0{sfx}"] = self.weight_hh[rows][:, d * self.h : (d + 1) * self.h]
            out[f"bias_ih_l0{sfx}"] = self.bias_ih[rows]
            out[f"bias_hh_l0{sfx}"] = self.bias_hh[rows]
        return out

    def load_from_gru(self, gru_module: nn.GRU) -> None:
        """Copy the weights of an ``nn.GRU(bidirectional=True)`` (for tests and conversions)."""
        with torch.no_grad():
            for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
                p.zero_()
            for d, sfx in enumerate(("", "_reverse")):
                rows = self._rows(d)
                self.weight_ih[rows, d * self.f : (d + 1) * self.f] = getattr(gru_module, f"weight_ih_l0{sfx}")
                self.weight_hh[rows, d * self.h : (d + 1) * self.h] = getattr(gru_module, f"weight_hh_l0{sfx}")
                self.bias_ih[rows] = getattr(gru_module, f"bias_ih_l0{sfx}")
                self.bias_hh[rows] = getattr(gru_module, f"bias_hh_l0{sfx}")

    def forward(self, x: torch.Tensor, aligned: bool = True) -> torch.Tensor:
        """``[B, T, 2h]``; ``aligned=False`` may leave the backward direction in reversed time
        order (for a mean over time, which ignores order)."""
        if not native_active(x):
            return plain_bidirectional(x, self.directions(), self.h)
        out, _ = gru(torch.cat([x, x.flip(1)], dim=-1), None, self.weight_ih, self.weight_hh, self.bias_ih,
                     self.bias_hh, blocks=(self.h, self.h), in_blocks=(self.f, self.f))
        return torch.cat([out[..., : self.h], out[..., self.h :].flip(1)], dim=-1) if aligned else out


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

    def hidden(self, states: torch.Tensor) -> torch.Tensor:
        """``[B, h_dim]``: the summary of each window the latent heads read (models with
        further heads, such as JointVAE's categorical logits, read it too)."""
        _, _, sa = trajectory_inputs(states)
        return self.body(self.rnn(sa, aligned=False).mean(1))

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(states)
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
        s, a, sa = trajectory_inputs(states, joined=self.kind == "gru")
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
