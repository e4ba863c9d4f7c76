"""xLSTM cells (Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory"): sLSTM.

sLSTM is an LSTM with exponential input gating, a normaliser state and a stabiliser, and
head-wise (block-diagonal) recurrent connections. Its recurrence is nonlinear in h_{t−1}, so
`scan` is a sequential `lax.scan` of the step, with every input projection done for the whole
sequence first (family "classic"). mLSTM (matrix memory) is not here yet.

Shape letters: see `kernels/typing.py` (D = d_hidden, H = num_heads, P = D / H).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from seqbench.cells import base

GATES = ("i", "f", "z", "o")  # the order of the four pre-activations along their gate axis
GROUP_NORM_EPS = 1e-5  # the per-head LayerNorm of the output (xlstm's MultiHeadLayerNorm)


class SLSTMState(NamedTuple):
    c: jax.Array  # shape=(*B, D): the cell state (scaled by exp(−m))
    n: jax.Array  # shape=(*B, D): the normaliser state (scaled by exp(−m))
    m: jax.Array  # shape=(*B, D): the stabiliser, a running max of log-gates
    h: jax.Array  # shape=(*B, D): the last output o ⊙ c / n, fed back through R
    conv: jax.Array  # shape=(*B, d_conv − 1, d_in): the conv's last inputs


def forget_bias_powerlaw(head_dim: int):
    """xlstm's "powerlaw_blockdependent" forget-gate bias for one block of a one-block model:
    b_f[j] = 5 − 12 (j / (P − 1))^0.3, j = 0..P−1, from +5 (remember) down to −7 (forget)."""
    position = jnp.arange(head_dim) / max(head_dim - 1, 1)
    return 5.0 - 12.0 * position ** 0.3


def make_slstm(
    *,
    d_hidden: int = 64,
    num_heads: int = 4,
    d_conv: int = 4,
) -> base.Cell:
    """sLSTM (Beck et al. 2024, eqs. 8-17 with the stabiliser of eqs. 15-17), as the xlstm
    package's `sLSTMLayer` computes it (NX-AI/xlstm, read 2026-12-01: `blocks/slstm/layer.py`,
    `cell.py`, `src/vanilla/slstm.py`).

    With x̄ = SiLU(causal conv_{d_conv}(x)) feeding the input and forget gates (x itself if
    d_conv = 0) and R block-diagonal over H heads of P = D / H units:

        [ĩ; f̃] = W_{i,f} x̄_t + R_{i,f} h_{t−1} + b_{i,f},   [z̃; õ] = W_{z,o} x_t + R_{z,o} h_{t−1} + b_{z,o}
        m_t = max(log σ(f̃_t) + m_{t−1}, ĩ_t)
        i'_t = exp(ĩ_t − m_t),   f'_t = exp(log σ(f̃_t) + m_{t−1} − m_t)
        c_t = f'_t c_{t−1} + i'_t tanh(z̃_t),   n_t = f'_t n_{t−1} + i'_t
        h_t = σ(õ_t) ⊙ c_t / n_t,              y_t = GroupNorm_H(h_t) ⊙ (1 + w_norm)

    (GroupNorm_H: a LayerNorm over each head's P units, eps 1e-5, no bias). The stabiliser
    rescales c and n together, so h is the unstabilised exp-gated LSTM's exactly; the xlstm
    kernel starts it differently (m_1 = ĩ_1 when every n is 0), which changes no output.

    Differences from the package: W maps all of x (the paper's equations; the package's
    `LinearHeadwiseExpand` is block-diagonal, which needs d_in = D); init: W ~ N(0, 1/d_in)
    (the package's small_init: std sqrt(2 / (5 d_in))). As the package: R = 0, b = 0 except
    the forget gate's power law (`forget_bias_powerlaw`), conv weights and bias ~
    U(±1/sqrt(d_conv)), w_norm = 0.
    Parameters: 4·d_in·D + 4·D·P + 4·D + D (W, R, b, w_norm) + (d_conv + 1)·d_in with the conv.
    """
    name = "slstm"
    base.check_int(name, "d_hidden", d_hidden)
    base.check_int(name, "num_heads", num_heads)
    base.check_int(name, "d_conv", d_conv, minimum=0)
    if d_hidden % num_heads:
        raise ValueError(f"{name}: d_hidden={d_hidden} must be a multiple of num_heads="
                         f"{num_heads}")
    hparams = dict(d_hidden=d_hidden, num_heads=num_heads, d_conv=d_conv)
    heads, head_dim = num_heads, d_hidden // num_heads

    def init(key, d_in):
        k_w, k_cw, k_cb = jax.random.split(key, 3)
        bias = jnp.zeros((4, d_hidden), jnp.float32)
        bias = bias.at[GATES.index("f")].set(jnp.tile(forget_bias_powerlaw(head_dim), heads))
        params = {
            "w": base.lecun_normal(k_w, (d_in, 4 * d_hidden), d_in),
            "r": jnp.zeros((heads, head_dim, 4, head_dim), jnp.float32),
            "b": bias,
            "w_norm": jnp.zeros((d_hidden,), jnp.float32),
        }
        if d_conv:
            params["conv_w"] = base.uniform_init(k_cw, (d_conv, d_in), d_conv)
            params["conv_b"] = base.uniform_init(k_cb, (d_in,), d_conv)
        return params

    def initial_state(params, batch_shape):
        zeros = jnp.zeros(tuple(batch_shape) + (d_hidden,), jnp.float32)
        conv = jnp.zeros(tuple(batch_shape) + (max(d_conv - 1, 0), params["w"].shape[0]),
                         jnp.float32)
        return SLSTMState(zeros, zeros, zeros, zeros, conv)

    def input_part(params, conv, xs):
        """xs (*B, T, d_in) -> W x + b per gate (*B, T, 4, D), the conv buffer."""
        gated = xs
        if d_conv:
            gated, conv = base.causal_depthwise_conv(params["conv_w"], params["conv_b"], conv, xs)
            gated = jax.nn.silu(gated)
        w = params["w"].reshape(-1, 4, d_hidden)
        i_f = jnp.einsum("...d,dgk->...gk", gated, w[:, :2])
        z_o = jnp.einsum("...d,dgk->...gk", xs, w[:, 2:])
        return jnp.concatenate([i_f, z_o], axis=-2) + params["b"], conv

    def recurrent_step(params, state, pre):
        """One step from the input part pre (*B, 4, D) and the state (c, n, m, h)."""
        c, n, m, h = state
        h_heads = h.reshape(h.shape[:-1] + (heads, head_dim))
        r_h = jnp.einsum("...hp,hpgq->...ghq", h_heads, params["r"])
        i_raw, f_raw, z_raw, o_raw = jnp.moveaxis(pre + r_h.reshape(pre.shape), -2, 0)
        log_f_plus_m = jax.nn.log_sigmoid(f_raw) + m
        m_new = jnp.maximum(log_f_plus_m, i_raw)
        i_gate, f_gate = jnp.exp(i_raw - m_new), jnp.exp(log_f_plus_m - m_new)
        c = f_gate * c + i_gate * jnp.tanh(z_raw)
        n = f_gate * n + i_gate
        h = jax.nn.sigmoid(o_raw) * c / n
        return (c, n, m_new, h), h

    def output(params, h):
        per_head = h.reshape(h.shape[:-1] + (heads, head_dim))
        centred = per_head - jnp.mean(per_head, -1, keepdims=True)
        normed = centred * lax.rsqrt(jnp.mean(jnp.square(centred), -1, keepdims=True)
                                     + GROUP_NORM_EPS)
        return normed.reshape(h.shape) * (1.0 + params["w_norm"])

    def step(params, state, x_t):
        pre, conv = input_part(params, state.conv, x_t[..., None, :])
        carry, h = recurrent_step(params, state[:4], pre[..., 0, :, :])
        return SLSTMState(*carry, conv), output(params, h)

    def scan(params, state, xs):
        pre, conv = input_part(params, state.conv, xs)
        carry, hs = lax.scan(lambda carry, p: recurrent_step(params, carry, p), tuple(state[:4]),
                             jnp.moveaxis(pre, -3, 0))
        return SLSTMState(*carry, conv), output(params, jnp.moveaxis(hs, 0, -2))

    return base.make_cell(
        name=name, family="classic", d_out=d_hidden, init=jax.jit(init, static_argnums=1),
        initial_state=initial_state, step=step, scan=scan,
        input_dim=lambda p: p["w"].shape[0], hparams=hparams,
    )


CELLS = {"slstm": make_slstm}
