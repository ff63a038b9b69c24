"""The neurosymbolic TVAE's training loss after the encoder and the programs, as one
autograd node with a hand-written backward pass (CPU, linear decoder).

A training step of the synthetic model (about 3,000 parameters, batches of 32) is bound by
per-operation overhead: composed from PyTorch operations, the reparameterisation, the
straight-through Gumbel bits, the linear decoder's Gaussian likelihood, both KL terms and
the adversary take about 110 recorded operations forward and as many backward, at several
microseconds each. Here they run as about 60 NumPy calls on the same arrays (well under a
microsecond each at these sizes), forward and backward together.

The inputs with gradients are the encoder's ``mu`` and ``logvar``, the programs' logits,
the decoder's and the adversary's parameters; the noise is drawn from the same generator,
in the same order, as :meth:`NeurosymbolicTVAE.forward` draws it, so both paths compute
the same loss and the same gradients (``tests/test_fused_loss.py`` checks them against the
composed path in float64).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from nsprog.models.latent import STANDARDIZE_EPS

__all__ = ["fused_loss_supported", "fused_training_loss"]

_LOG_2PI = math.log(2 * math.pi)
_LN2 = math.log(2.0)


def fused_loss_supported(model, states: torch.Tensor) -> bool:
    return (model.training and model.cfg.decoder == "linear" and states.device.type == "cpu"
            and states.dtype in (torch.float32, torch.float64))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def _logsigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * x) + 0.5


def fused_training_loss(model, states: torch.Tensor, feats: torch.Tensor, w, generator=None):
    """``(loss, terms)`` exactly as :meth:`NeurosymbolicTVAE.training_loss` composes them."""
    mu, logvar = model.encoder(states)
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    logits = model.program_logits(feats)
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype).clamp(1e-6, 1 - 1e-6)
    dec = model.decoder
    params = [dec.state_in.weight, dec.state_in.bias, dec.z_in.weight, dec.out_logvar]
    adv = model.adversary
    if adv is not None:
        params += [adv[0].weight, adv[0].bias, adv[2].weight, adv[2].bias, adv[4].weight, adv[4].bias]
    spec = (w, model.cfg, adv is not None, tuple(model.hard_bit_columns()))
    out = _FusedLoss.apply(spec, _np(states), _np(eps), _np(u), mu, logvar, logits, *params)
    loss, recon, kl_cont, disc, adv_term, decor = out
    return loss, {"recon": recon, "kl_cont": kl_cont, "disc": disc, "adv": adv_term, "decor": decor}


class _FusedLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec, states, eps, u, mu_t, logvar_t, logits_t, *params_t):
        w, cfg, has_adv, hard_cols = spec
        mu, lv, logits = _np(mu_t), _np(logvar_t), _np(logits_t)
        P = [_np(p) for p in params_t]
        Ws, bs, Wz, out_lv = P[:4]
        dt = mu.dtype
        s = states[:, :-1]
        a = states[:, 1:] - s
        B, T, D = a.shape
        Zn, K = mu.shape[1], logits.shape[1]

        std = np.exp(0.5 * lv)
        zn = mu + eps * std
        soft = _sigmoid((logits + (np.log(u) - np.log1p(-u))) / cfg.tau)
        hard = (soft > 0.5).astype(dt)
        if hard_cols:  # frozen programs' deterministic bits
            cols = list(hard_cols)
            hard[:, cols] = (logits[:, cols] > 0).astype(dt)
        z = np.concatenate([zn, hard[:, ::-1]], axis=1)
        c = cfg.logvar_clamp
        lva = np.clip(out_lv, -c, c)
        ilv = np.exp(-lva)
        resid = (s.reshape(B * T, D) @ Ws.T).reshape(B, T, D)
        resid += bs
        resid += (z @ Wz.T)[:, None, :]
        np.subtract(a, resid, out=resid)  # a - mu_a
        r2 = resid * resid
        recon = 0.5 * (float((r2 * ilv).sum()) + B * T * (float(lva.sum()) + D * _LOG_2PI)) / B
        kl_cont = 0.5 * float((mu * mu + std * std - 1.0 - lv).sum()) / B if Zn else 0.0
        cont = w.cont_coef * (kl_cont if w.cont_capacity is None else abs(kl_cont - w.cont_capacity))

        q = _sigmoid(logits)
        ls_pos, ls_neg = _logsigmoid(logits), _logsigmoid(-logits)
        disc_value, disc = 0.0, 0.0
        j = w.disc_index
        if j is not None:
            if w.disc_term == "mi":
                qm = float(np.clip(q[:, j].mean(), 1e-6, 1 - 1e-6))
                h_mean = -(qm * math.log(qm) + (1 - qm) * math.log1p(-qm))
                disc_value = h_mean + float((q[:, j] * ls_pos[:, j] + (1 - q[:, j]) * ls_neg[:, j]).mean())
            else:
                disc_value = float((q[:, j] * ls_pos[:, j] + (1 - q[:, j]) * ls_neg[:, j]).mean()) + _LN2
            disc = w.disc_coef * abs(disc_value - w.disc_capacity)

        adv_value = 0.0
        saved_adv = None
        if has_adv:
            W1, b1, W2, b2, W3, b3 = P[4:]
            v = zn if cfg.adversary_input == "sample" else mu
            if cfg.adversary_input == "standardized":
                centred = v - v.mean(0)
                inv_sd = 1.0 / np.sqrt((centred * centred).mean(0) + STANDARDIZE_EPS)
                v = centred * inv_sd
                saved_std = (v, inv_sd)
            elif cfg.adversary_input == "whitened":  # latent.whitening_matrix in NumPy (the tests compare them)
                centred = v - v.mean(0)
                cov = centred.T @ centred / B + STANDARDIZE_EPS * np.eye(Zn, dtype=dt)
                vals, vecs = np.linalg.eigh(cov)
                Wh = ((vecs / np.sqrt(np.maximum(vals, STANDARDIZE_EPS))) @ vecs.T).astype(dt)
                v = centred @ Wh
                saved_std = Wh
            else:
                saved_std = None
            h1 = np.maximum(v @ W1.T + b1, 0)
            h2 = np.maximum(h1 @ W2.T + b2, 0)
            pred = h2 @ W3.T + b3
            adv_value = -float((q * _logsigmoid(pred) + (1 - q) * _logsigmoid(-pred)).mean())
            saved_adv = (v, h1, h2, pred, saved_std)
        decor_value, saved_decor = 0.0, None
        if cfg.decorrelation_weight and Zn and K:  # squared batch correlations between the neural means and the programs' probabilities
            A, Q = mu - mu.mean(0), q - q.mean(0)
            sa = np.sqrt((A * A).mean(0) + STANDARDIZE_EPS)
            sq = np.sqrt((Q * Q).mean(0) + STANDARDIZE_EPS)
            R = (A.T @ Q) / (B * sa[:, None] * sq[None, :])
            decor_value = float((R * R).sum())
            saved_decor = (A, Q, sa, sq, R)
        loss = recon + cont + disc + w.adversary_weight * adv_value + cfg.decorrelation_weight * decor_value

        ctx.spec = spec
        ctx.arrays = (s, eps, std, soft, z, lva, ilv, resid, r2, mu, lv, logits, q, P, kl_cont, disc_value, saved_adv,
                      saved_decor)
        ctx.needs = ctx.needs_input_grad
        scalars = [torch.tensor(x, dtype=mu_t.dtype) for x in (loss, recon, kl_cont, disc_value, adv_value, decor_value)]
        ctx.mark_non_differentiable(*scalars[1:])
        return tuple(scalars)

    @staticmethod
    def backward(ctx, g_loss, *_unused):
        w, cfg, has_adv, hard_cols = ctx.spec
        (s, eps, std, soft, z, lva, ilv, resid, r2, mu, lv, logits, q, P, kl_cont, disc_value, saved_adv,
         saved_decor) = ctx.arrays
        g = float(g_loss)
        Ws, bs, Wz, out_lv = P[:4]
        B, T, D = resid.shape
        Zn, K = mu.shape[1], logits.shape[1]
        dt = mu.dtype

        # reconstruction: d/d mu_a = -(a - mu_a) * exp(-logvar) / B
        d_mu_a = resid * (-g / B)
        d_mu_a *= ilv
        flat = d_mu_a.reshape(B * T, D)
        dWs = flat.T @ s.reshape(B * T, D)
        dbs = flat.sum(0)
        d_zt = d_mu_a.sum(1)
        dWz = d_zt.T @ z
        dz = d_zt @ Wz
        c = cfg.logvar_clamp
        d_lva = (0.5 * g / B) * (B * T - (r2 * ilv).sum((0, 1)))
        d_out_lv = np.where((out_lv >= -c) & (out_lv <= c), d_lva, 0.0).astype(dt)

        d_zn = dz[:, :Zn]
        d_logits = dz[:, Zn:][:, ::-1] * (soft * (1 - soft) / cfg.tau)  # straight-through Gumbel
        if hard_cols:
            d_logits[:, list(hard_cols)] = 0.0  # a thresholded bit passes no gradient
        d_mu = d_zn.copy()
        d_lv = d_zn * eps * 0.5 * std

        if Zn:
            coef = w.cont_coef if w.cont_capacity is None else w.cont_coef * float(np.sign(kl_cont - w.cont_capacity))
            d_mu += (g * coef / B) * mu
            d_lv += (g * coef * 0.5 / B) * (std * std - 1.0)

        j = w.disc_index
        if j is not None:
            coef = g * w.disc_coef * float(np.sign(disc_value - w.disc_capacity)) / B
            qj, lj = q[:, j], logits[:, j]
            slope = qj * (1 - qj)
            if w.disc_term == "mi":
                qm_raw = float(qj.mean())
                qm = min(max(qm_raw, 1e-6), 1 - 1e-6)
                d_h = math.log((1 - qm) / qm) if 1e-6 < qm_raw < 1 - 1e-6 else 0.0
                d_logits[:, j] += coef * slope * (d_h + lj)
            else:
                d_logits[:, j] += coef * slope * lj

        grads_adv = []
        if has_adv:
            W1, b1, W2, b2, W3, b3 = P[4:]
            v, h1, h2, pred, saved_std = saved_adv
            wa = g * w.adversary_weight
            d_pred = (_sigmoid(pred) - q) * (wa / (B * K))
            dW3, db3 = d_pred.T @ h2, d_pred.sum(0)
            d_h2 = (d_pred @ W3) * (h2 > 0)
            dW2, db2 = d_h2.T @ h1, d_h2.sum(0)
            d_h1 = (d_h2 @ W2) * (h1 > 0)
            dW1, db1 = d_h1.T @ v, d_h1.sum(0)
            d_v = -(d_h1 @ W1)  # gradient reversal into the encoder
            if cfg.adversary_input == "whitened":
                d_v = d_v @ saved_std.T
            elif saved_std is not None:  # back through the batch standardisation
                xhat, inv_sd = saved_std
                d_v = inv_sd * (d_v - d_v.mean(0) - xhat * (d_v * xhat).mean(0))
            d_mu += d_v
            if cfg.adversary_input == "sample":  # the adversary read the sample zn = mu + eps * std
                d_lv += d_v * eps * 0.5 * std
            if cfg.adversary_on_programs:  # the reversed gradient also reaches the programs through the target
                d_logits += (wa / (B * K)) * pred * q * (1 - q)
            grads_adv = [dW1, db1, dW2, db2, dW3, db3]

        if saved_decor is not None:
            A, Q, sa, sq, R = saved_decor  # the probabilities are constants here (detached)
            wd = 2.0 * g * cfg.decorrelation_weight / B
            d_mu += wd * (((Q / sq) @ R.T) / sa - A * ((R * R).sum(1) / (sa * sa)))

        grads = [d_mu, d_lv, d_logits, dWs, dbs, dWz, d_out_lv, *grads_adv]
        needs = ctx.needs[4:]
        out = [torch.from_numpy(np.ascontiguousarray(x, dtype=dt)) if need else None for x, need in zip(grads, needs)]
        return (None, None, None, None, *out)
