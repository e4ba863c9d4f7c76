"""xLSTM cells (Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory"): sLSTM and mLSTM.

sLSTM is an LSTM with exponential input gating, a normaliser state and a stabiliser, and
head-wise (block-diagonal) recurrent connections. Its recurrence is nonlinear in h_{t−1}, so
`scan` is a sequential `lax.scan` of the step, with every input projection done for the whole
sequence first (family "classic"). mLSTM has a matrix memory updated by outer products under
exponential input and sigmoid forget gates, linear in the state: `scan` runs a stabilised
chunkwise-parallel form (`_mlstm_chunked`) exactly equal to the stabilised recurrence (family
"matrix").

Shape letters: see `kernels/typing.py` (D = d_hidden, H = num_heads, P = D / H).
"""

from __future__ import annotations

import math
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
    heads, head_dim = num_heads, base.head_dim(name, d_hidden, num_heads)
    base.check_int(name, "d_conv", d_conv, minimum=0)
    hparams = dict(d_hidden=d_hidden, num_heads=num_heads, d_conv=d_conv)

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
        normed = base.layer_norm(h.reshape(h.shape[:-1] + (heads, head_dim)), GROUP_NORM_EPS)
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


# ----------------------------------------------------------------------------- mLSTM

MLSTM_EPS = 1e-6  # added to the normaliser max(|q·n|, exp(−m)), as the xlstm backends


class MLSTMState(NamedTuple):
    c: jax.Array  # shape=(*B, H, P, P): Σ exp(·) k vᵀ (keys on the rows), scaled by exp(−m)
    n: jax.Array  # shape=(*B, H, P): Σ exp(·) k, scaled by exp(−m)
    m: jax.Array  # shape=(*B, H): the stabiliser


def _mlstm_step(state, q, k, v, i_raw, log_f):
    """One stabilised mLSTM step (the xlstm package's `recurrent_step_stabilized_simple`); q, k
    (k already / sqrt(P)), v (..., P); i_raw, log_f (...). Returns (state, h̃ (..., P))."""
    c, n, m = state
    m_new = jnp.maximum(log_f + m, i_raw)
    f_gate, i_gate = jnp.exp(log_f + m - m_new), jnp.exp(i_raw - m_new)
    c = f_gate[..., None, None] * c + i_gate[..., None, None] * k[..., :, None] * v[..., None, :]
    n = f_gate[..., None] * n + i_gate[..., None] * k
    numerator = jnp.einsum("...k,...kv->...v", q, c)
    denominator = jnp.maximum(jnp.abs(jnp.sum(q * n, -1)), jnp.exp(-m_new)) + MLSTM_EPS
    return (c, n, m_new), numerator / denominator[..., None]


def _mlstm_sequential(q, k, v, i_raw, log_f, state):
    """lax.scan of `_mlstm_step` over time (axis -2 of q, k, v; -1 of the gates)."""
    inputs = tuple(jnp.moveaxis(u, -2, 0) for u in (q, k, v)) + tuple(
        jnp.moveaxis(u, -1, 0) for u in (i_raw, log_f))
    state, h = lax.scan(lambda carry, x: _mlstm_step(carry, *x), tuple(state), inputs)
    return jnp.moveaxis(h, 0, -2), state


def _mlstm_chunked(q, k, v, i_raw, log_f, state, chunk_size):
    """The stabilised mLSTM chunkwise, equal to `_mlstm_sequential` up to rounding.

    In a chunk entering with (C, n, m), let b_t = Σ_{s<=t} log f_s and D_ts = b_t − b_s + ĩ_s
    (s <= t). Unrolling the recurrence, its stabiliser is m_t = max(b_t + m, max_{s<=t} D_ts)
    and its stabilised state C_t = e^{b_t + m − m_t} C + Σ_s e^{D_ts − m_t} k_s v_sᵀ (n alike),
    so h̃_t = [e^{b_t+m−m_t} qᵀC + Σ_s e^{D_ts−m_t} (q·k_s) v_s] / (max(|…same for n…|,
    e^{−m_t}) + eps), every exponent <= 0. Only (C, n, m) → chunk end runs chunk after chunk.
    Shapes: q, k, v (..., T, P) (k already / sqrt(P)), i_raw, log_f (..., T).
    """
    *lead, steps, dim = q.shape
    chunk = min(chunk_size, steps)
    num_chunks = math.ceil(steps / chunk)
    pad = num_chunks * chunk - steps

    def split(x, fill=0.0):  # (..., T, F) -> (..., M, C, F); padded steps: log f = 0, ĩ = −inf
        x = jnp.pad(x, [(0, 0)] * len(lead) + [(0, pad), (0, 0)], constant_values=fill)
        return x.reshape(*lead, num_chunks, chunk, x.shape[-1])

    q, k, v = split(q), split(k), split(v)
    i_raw = split(i_raw[..., None], -jnp.inf)[..., 0]  # (..., M, C)
    b = jnp.cumsum(split(log_f[..., None])[..., 0], axis=-1)  # (..., M, C)
    causal = jnp.tril(jnp.ones((chunk, chunk), bool))
    log_d = jnp.where(causal, b[..., :, None] - b[..., None, :] + i_raw[..., None, :], -jnp.inf)
    to_end = log_d[..., -1, :]  # D_{C,s} (..., M, C): each step's weight at the chunk end

    def carry(state, inputs):  # (C, n, m) entering a chunk -> at its end
        c, n, m = state
        k_c, v_c, b_end, to_end_c = inputs
        m_new = jnp.maximum(b_end + m, jnp.max(to_end_c, axis=-1))
        weights = jnp.exp(to_end_c - m_new[..., None])[..., None] * k_c  # (..., C, P)
        decay = jnp.exp(b_end + m - m_new)
        c_new = decay[..., None, None] * c + jnp.swapaxes(weights, -1, -2) @ v_c
        n_new = decay[..., None] * n + jnp.sum(weights, axis=-2)
        return (c_new, n_new, m_new), (c, n, m)

    chunk_major = lambda u, axis: jnp.moveaxis(u, axis, 0)
    last, entering = lax.scan(carry, tuple(state), (chunk_major(k, -3), chunk_major(v, -3),
                                                    chunk_major(b[..., -1], -1),
                                                    chunk_major(to_end, -2)))
    c0, n0, m0 = (jnp.moveaxis(u, 0, axis) for u, axis in zip(entering, (-3, -2, -1)))
    from_state = b + m0[..., None]  # (..., M, C)
    m_t = jnp.maximum(from_state, jnp.max(log_d, axis=-1))
    state_weight = jnp.exp(from_state - m_t)
    e = jnp.exp(log_d - m_t[..., None]) * (q @ jnp.swapaxes(k, -1, -2))  # (..., M, C, C)
    numerator = state_weight[..., None] * (q @ c0) + e @ v
    denominator = state_weight * jnp.einsum("...tp,...p->...t", q, n0) + jnp.sum(e, -1)
    h = numerator / (jnp.maximum(jnp.abs(denominator), jnp.exp(-m_t)) + MLSTM_EPS)[..., None]
    return h.reshape(*lead, num_chunks * chunk, dim)[..., :steps, :], last


def make_mlstm(
    *,
    d_hidden: int = 64,
    num_heads: int = 4,
    chunked: bool = True,
    chunk_size: int = 32,
) -> base.Cell:
    """mLSTM (Beck et al. 2024, eqs. 19-27), with the xlstm package's stabilised backends
    (`blocks/mlstm/backends.py`, read 2026-12-01). Per head of P = D / H units:

        q_t, k_t, v_t = x_t W_q, x_t W_k / sqrt(P), x_t W_v          ĩ_t, f̃_t = x_t W_{i,f} + b_{i,f}
        C_t = f_t C_{t−1} + i_t k_t v_tᵀ,   n_t = f_t n_{t−1} + i_t k_t     (i = exp ĩ, f = σ(f̃))
        h̃_t = C_tᵀ q_t / max(|n_t·q_t|, 1),       y_t = GroupNorm_H(h̃_t) ⊙ (1 + w_norm) ⊙ σ(x_t W_o)

    computed stabilised: m_t = max(log f_t + m_{t−1}, ĩ_t), the stored C, n scaled by e^{−m_t},
    and h̃_t = C_tᵀ q_t / (max(|n_t·q_t|, e^{−m_t}) + 1e-6) (the package's epsilon). `scan` runs
    `_mlstm_chunked` (chunks of `chunk_size`) or, with chunked=False, the sequential recurrence.

    The cell is the package's mLSTMCell with the paper's output gate: the package's mLSTM
    layer adds an up-projection, a conv on q and k, a learnable skip and a SiLU-gated branch
    (a block around this cell). Init (the package's mLSTMCell): W_i = W_f = 0, b_i ~ N(0, 0.1²),
    b_f = linspace(3, 6) over the heads, w_norm = 0; W_q, W_k, W_v, W_o ~ N(0, 1/d_in).
    Parameters: 4·d_in·D + 2·d_in·H + 2·H + D.
    """
    name = "mlstm"
    heads, head_dim = num_heads, base.head_dim(name, d_hidden, num_heads)
    base.check_bool(name, "chunked", chunked)
    base.check_int(name, "chunk_size", chunk_size)
    hparams = dict(d_hidden=d_hidden, num_heads=num_heads, chunked=chunked,
                   chunk_size=chunk_size)

    def init(key, d_in):
        keys = jax.random.split(key, 5)
        params = {f"w_{g}": base.lecun_normal(k, (d_in, d_hidden), d_in)
                  for g, k in zip("qkvo", keys[:4])}
        params.update(
            w_i=jnp.zeros((d_in, heads), jnp.float32), w_f=jnp.zeros((d_in, heads), jnp.float32),
            b_i=0.1 * jax.random.normal(keys[4], (heads,), jnp.float32),
            b_f=jnp.linspace(3.0, 6.0, heads, dtype=jnp.float32),
            w_norm=jnp.zeros((d_hidden,), jnp.float32),
        )
        return params

    def initial_state(params, batch_shape):
        lead = tuple(batch_shape) + (heads,)
        return MLSTMState(jnp.zeros(lead + (head_dim, head_dim), jnp.float32),
                          jnp.zeros(lead + (head_dim,), jnp.float32), jnp.zeros(lead, jnp.float32))

    def features(params, x):
        split = lambda u: u.reshape(u.shape[:-1] + (heads, head_dim))
        q, k, v = (split(base.dense(x, params[f"w_{g}"])) for g in "qkv")
        i_raw = base.dense(x, params["w_i"]) + params["b_i"]
        log_f = jax.nn.log_sigmoid(base.dense(x, params["w_f"]) + params["b_f"])
        return q, k / math.sqrt(head_dim), v, i_raw, log_f

    def output(params, x, h):  # h (..., H, P) -> (..., D)
        normed = base.layer_norm(h, GROUP_NORM_EPS)
        gate = jax.nn.sigmoid(base.dense(x, params["w_o"]))
        return normed.reshape(gate.shape) * (1.0 + params["w_norm"]) * gate

    def step(params, state, x_t):
        state, h = _mlstm_step(state, *features(params, x_t))
        return MLSTMState(*state), output(params, x_t, h)

    def scan(params, state, xs):
        q, k, v, i_raw, log_f = features(params, xs)
        q, k, v = (jnp.swapaxes(u, -2, -3) for u in (q, k, v))  # (*B, H, T, P)
        i_raw, log_f = jnp.swapaxes(i_raw, -1, -2), jnp.swapaxes(log_f, -1, -2)  # (*B, H, T)
        if chunked:
            h, last = _mlstm_chunked(q, k, v, i_raw, log_f, state, chunk_size)
        else:
            h, last = _mlstm_sequential(q, k, v, i_raw, log_f, state)
        return MLSTMState(*last), output(params, xs, jnp.swapaxes(h, -2, -3))

    return base.make_cell(
        name=name, family="matrix", d_out=d_hidden, init=jax.jit(init, static_argnums=1),
        initial_state=initial_state, step=step, scan=scan,
        input_dim=lambda p: p["w_q"].shape[0], hparams=hparams,
    )


CELLS = {"slstm": make_slstm, "mlstm": make_mlstm}
