"""Delta-rule cells: DeltaNet, Gated DeltaNet and DeltaProduct (family "matrix").

Per head, the state S (K x V, keys on the rows like every matrix cell here; the papers write
its transpose) is updated by a generalised Householder transition:

    S_t = α_t (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ,         o_t = S_tᵀ q_t,

with L2-normalised keys, so I − β k kᵀ has the eigenvalue 1 − β along k and 1 elsewhere.
DeltaNet has α_t = 1; Gated DeltaNet (Yang, Kautz & Hatamizadeh 2025) a scalar decay per head
α_t = exp(g_t), g_t = −exp(A_log)·softplus(x_t W_a + b_dt) (Mamba-2's gate); DeltaProduct
(Siems et al. 2025) applies n_h such Householder steps per token, each with its own k, v and
β, the decay with the first: the token's transition is α_t Π_j (I − β_{t,j} k_{t,j} k_{t,j}ᵀ),
a product of n_h reflections that reaches beyond diagonal (and single-Householder) transitions
in state tracking. With β ∈ (0, 2) (`negative_eigenvalues`, Grazzi et al. 2025) each factor
has the eigenvalue 1 − β ∈ (−1, 1).

`scan` runs the chunkwise-parallel form (`_delta_chunked`: the WY/UT transform of Yang et al.
2024, with the decays of Gated DeltaNet folded in) or a sequential `lax.scan`
(`_delta_sequential`); DeltaProduct runs them on the sequence of T·n_h Householder sub-steps
(flash-linear-attention's layout: the query reads only at a token's last sub-step, the decay
acts at its first). `step` writes the update of one token out directly.

Shape letters: see `kernels/typing.py` (D = d_hidden, n = num_householder).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from seqbench.cells import base
from seqbench.cells.matrix import (
    MatrixState,
    _head_dims,
    _head_major,
    _head_norm_fn,
    _heads,
    _init_projections,
    _merge_heads,
    _read,
    _rms_norm,
)

L2_NORM_EPS = 1e-6  # queries and keys: u / sqrt(|u|² + eps) (flash-linear-attention's l2norm)
CONVENTIONS = ("paper", "fla")  # DeltaNet: the papers' equations or flash-linear-attention's layer


class DeltaConvState(NamedTuple):
    s: jax.Array  # shape=(*B, H, K, V), float32: the delta-rule state of each head
    conv: jax.Array  # shape=(*B, d_conv - 1, H·K + n·H·(K + V)): the short conv's last inputs


def _l2_normalise(x):
    return x * lax.rsqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True) + L2_NORM_EPS)


# ----------------------------------------------------------------------------- the recurrence


def _delta_step(s, q, k, v, beta, log_alpha):
    """S ← α (I − β k kᵀ) S + β k vᵀ = αS + β k (v − α Sᵀk)ᵀ, o = Sᵀ q, α = exp(log_alpha).

    s (..., K, V), q, k (..., K), v (..., V), beta, log_alpha (...). With log_alpha = 0 the
    decay multiplies by exactly 1 (DeltaNet's numbers are unchanged by it)."""
    s = jnp.exp(log_alpha)[..., None, None] * s
    error = v - _read(s, k)
    s = s + (beta[..., None, None] * k[..., :, None]) * error[..., None, :]
    return s, _read(s, q)


def _delta_sequential(q, k, v, beta, log_alpha, s0):
    """lax.scan of `_delta_step` over the time axis -2 of q, k, v (-1 of beta, log_alpha): the
    reference form. Returns (y (..., T, V), S_T)."""

    def body(s, inputs):
        return _delta_step(s, *inputs)

    inputs = tuple(jnp.moveaxis(u, -2, 0) for u in (q, k, v)) + tuple(
        jnp.moveaxis(u, -1, 0) for u in (beta, log_alpha))
    s_last, y = lax.scan(body, s0, inputs)
    return jnp.moveaxis(y, 0, -2), s_last


def _unit_lower_inverse(lower):
    """L⁻¹ of unit lower-triangular matrices L (..., n, n), by 2 x 2 blocking:

        [[A, 0], [B, D]]⁻¹ = [[A⁻¹, 0], [−D⁻¹ B A⁻¹, D⁻¹]],

    with A and D inverted together in one batched call per level (⌈log2 n⌉ levels of
    matmuls; n is padded to a power of two with identity rows). It replaces
    `jax.scipy.linalg.solve_triangular`, whose CPU kernel (LAPACK trsm split over jaxlib's
    thread pool, `ParallelBatchMap`) can deadlock when two run at once on a 2-core machine
    (jaxlib 0.10.2; BUILD_NOTES, "Cells and models")."""
    n = lower.shape[-1]
    if n == 1:
        return jnp.ones_like(lower)
    size = 1 << (n - 1).bit_length()
    if size != n:
        lead = [(0, 0)] * (lower.ndim - 2)
        padded = jnp.pad(lower, lead + [(0, size - n), (0, size - n)])
        padded = padded + jnp.diag(jnp.arange(size) >= n).astype(lower.dtype)
        return _unit_lower_inverse(padded)[..., :n, :n]
    half = n // 2
    halves = jnp.stack([lower[..., :half, :half], lower[..., half:, half:]], axis=-3)
    inverses = _unit_lower_inverse(halves)
    a_inv, d_inv = inverses[..., 0, :, :], inverses[..., 1, :, :]
    below = -(d_inv @ lower[..., half:, :half]) @ a_inv
    return jnp.concatenate([jnp.concatenate([a_inv, jnp.zeros_like(below)], axis=-1),
                            jnp.concatenate([below, d_inv], axis=-1)], axis=-2)


def _delta_chunked(q, k, v, beta, log_alpha, s0, chunk_size):
    """The (gated) delta rule chunkwise (Yang et al. 2024, section 3; Yang et al. 2025 for the
    gate), exact up to rounding.

    In a chunk of C steps entering with S0, let G_t = Σ_{s<=t} log α_s and Γ_ts = exp(G_t − G_s)
    (s <= t). Then S_t = e^{G_t} S0 + Σ_{s<=t} Γ_ts k_s u_sᵀ, where the pseudo-values
    u_t = β_t (v_t − α_t S_{t−1}ᵀ k_t) solve the unit lower-triangular system

        (I + tril(diag(β) (Γ ⊙ K Kᵀ), −1)) U = diag(β) (V − diag(e^G) K S0);

    by linearity U = U' − W S0 with [W | U'] = (I + A)⁻¹ diag(β) [diag(e^G) K | V] (the UT
    transform), solved for all chunks at once. Then Y = diag(e^G) Q S0 + (causal ⊙ Γ ⊙ Q Kᵀ) U
    and S_end = e^{G_C} S0 + (diag(Γ_C·) K)ᵀ U; only S0 → S_end runs chunk after chunk. Every
    decay is an exp of a difference of G (never a ratio), so strong decays underflow to 0
    instead of dividing by it. Shapes: q, k (..., T, K), v (..., T, V), beta, log_alpha
    (..., T), s0 (..., K, V).
    """
    *lead, steps, key_dim = q.shape
    value_dim = v.shape[-1]
    chunk = min(chunk_size, steps)
    num_chunks = math.ceil(steps / chunk)
    pad = num_chunks * chunk - steps

    def split(x):  # (..., T, F) -> (..., M, C, F); padded steps have k = v = β = log α = 0
        x = jnp.pad(x, [(0, 0)] * len(lead) + [(0, pad), (0, 0)])
        return x.reshape(*lead, num_chunks, chunk, x.shape[-1])

    q, k, v, beta = split(q), split(k), split(v), split(beta[..., None])
    g = jnp.cumsum(split(log_alpha[..., None])[..., 0], axis=-1)  # G (..., M, C)
    mT = lambda x: jnp.swapaxes(x, -1, -2)
    causal = jnp.tril(jnp.ones((chunk, chunk), bool))
    strictly_lower = jnp.tril(jnp.ones((chunk, chunk), bool), -1)
    gamma = jnp.exp(jnp.where(causal, g[..., :, None] - g[..., None, :], 0.0))  # Γ (..., M, C, C)
    lower = jnp.where(strictly_lower, beta * gamma * (k @ mT(k)), 0.0) + jnp.eye(chunk,
                                                                                 dtype=q.dtype)
    decay_in = jnp.exp(g)[..., None]  # e^{G_t} (..., M, C, 1)
    wu = _unit_lower_inverse(lower) @ jnp.concatenate([beta * decay_in * k, beta * v], axis=-1)
    w, u = wu[..., :key_dim], wu[..., key_dim:]
    k_out = jnp.exp(g[..., -1:] - g)[..., None] * k  # Γ_C· k_s: each key decayed to the chunk end
    decay_chunk = jnp.exp(g[..., -1])[..., None, None]  # e^{G_C} (..., M, 1, 1)

    def carry(s, inputs):  # S_end = e^{G_C} S0 + (Γ_C· K)ᵀ (U' − W S0)
        k_c, w_c, u_c, decay_c = inputs
        return decay_c * s + mT(k_c) @ (u_c - w_c @ s), s

    s_last, s_enter = lax.scan(carry, s0, tuple(jnp.moveaxis(x, -3, 0)
                                                for x in (k_out, w, u, decay_chunk)))
    s_enter = jnp.moveaxis(s_enter, 0, -3)  # (..., M, K, V): the state entering each chunk
    u = u - w @ s_enter
    y = decay_in * (q @ s_enter) + jnp.where(causal, gamma * (q @ mT(k)), 0.0) @ u
    return y.reshape(*lead, num_chunks * chunk, value_dim)[..., :steps, :], s_last


def _run_delta(q, k, v, beta, log_alpha, s0, chunked, chunk_size):
    """The chunked or the sequential form (head-major inputs, as `_delta_chunked`)."""
    if chunked:
        return _delta_chunked(q, k, v, beta, log_alpha, s0, chunk_size)
    return _delta_sequential(q, k, v, beta, log_alpha, s0)


def _check_chunking(name, chunked, chunk_size):
    base.check_bool(name, "chunked", chunked)
    base.check_int(name, "chunk_size", chunk_size)


# ----------------------------------------------------------------------------- DeltaNet


def make_deltanet(
    *,
    d_hidden: int = 64,
    num_heads: int = 4,
    d_key: int | None = None,
    d_value: int | None = None,
    negative_eigenvalues: bool = False,
    head_norm: str = "rms",
    chunked: bool = True,
    chunk_size: int = 32,
    convention: str = "paper",
) -> base.Cell:
    """DeltaNet (Schlag et al. 2021; Yang et al. 2024, "Parallelizing Linear Transformers with
    the Delta Rule over Sequence Length"), multi-head.

    Per head, with L2-normalised queries and keys (u / sqrt(|u|² + 1e-6)) and a write strength
    β_t = σ(x_t W_β + b_β) per head:

        S_t = (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ,        o_t = S_tᵀ q_t,
        y_t = HeadNorm([o_t of all heads]) W_o.

    HeadNorm = `head_norm` ("rms" default, as Yang et al.'s code; or "group"; `cells.matrix`'s
    docstring); their short convolutions and SiLU feature map on q, k are not included (a plain
    delta-rule layer).

    `convention`: "paper" (default) follows the equations above. "fla" follows
    flash-linear-attention's DeltaNet layer in the two places it differs: its kernel scales the
    query by K^(−1/2) after the L2 norm (q ← q / sqrt(K)), and its layer applies SiLU to the
    values (v ← SiLU(x W_v)). seqbench's `gla` scales its queries too, so "fla" also makes the
    two cells consistent; under "paper" 8% of head outputs differ from the reference's by more
    than 1e-3 after the head norm (measured 2026-11-30).

    `negative_eigenvalues` (Grazzi et al. 2025): β_t = 2σ(·) ∈ (0, 2), so I − β k kᵀ has the
    eigenvalue 1 − β ∈ (−1, 1) along k. `chunked` picks the chunkwise-parallel `scan`
    (`_delta_chunked`, the WY/UT form, chunks of `chunk_size` steps) or a sequential `lax.scan`;
    they agree to fp32 rounding.

    K = d_key, V = d_value default to d_hidden // num_heads. Init: weights ~ N(0, 1/fan_in),
    b_β = 0 (β_0 ≈ 0.5). `chunk_size` is unused when chunked=False.
    Parameters: d_in·H·(2K + V + 1) + H + H·V·d_hidden.
    """
    name = "deltanet"
    hparams = dict(
        d_hidden=d_hidden, num_heads=num_heads, d_key=d_key, d_value=d_value,
        negative_eigenvalues=negative_eigenvalues, head_norm=head_norm, chunked=chunked,
        chunk_size=chunk_size, convention=convention,
    )
    heads = num_heads
    key_dim, value_dim = _head_dims(name, d_hidden, num_heads, d_key, d_value)
    norm = _head_norm_fn(name, head_norm, value_dim)
    base.check_bool(name, "negative_eigenvalues", negative_eigenvalues)
    _check_chunking(name, chunked, chunk_size)
    base.check_choice(name, "convention", convention, CONVENTIONS)
    q_scale = key_dim ** -0.5 if convention == "fla" else 1.0
    value_map = jax.nn.silu if convention == "fla" else (lambda v: v)

    def init(key, d_in):
        key, k_b = jax.random.split(key)
        params = _init_projections(key, d_in, d_hidden, heads, key_dim, value_dim)
        params["w_beta"] = base.lecun_normal(k_b, (d_in, heads), d_in)
        params["b_beta"] = jnp.zeros((heads,), jnp.float32)
        return params

    def initial_state(params, batch_shape):
        return MatrixState(jnp.zeros(tuple(batch_shape) + (heads, key_dim, value_dim), jnp.float32))

    def features(params, x):
        q = _l2_normalise(_heads(x, params["w_q"], heads)) * q_scale
        k = _l2_normalise(_heads(x, params["w_k"], heads))
        v = value_map(_heads(x, params["w_v"], heads))
        beta = jax.nn.sigmoid(base.dense(x, params["w_beta"]) + params["b_beta"])
        return q, k, v, beta * (2.0 if negative_eigenvalues else 1.0)

    def output(params, o):
        return _merge_heads(norm(o), params["w_o"])

    def step(params, state, x_t):
        q, k, v, beta = features(params, x_t)
        s, o = _delta_step(state.s, q, k, v, beta, jnp.zeros_like(beta))
        return MatrixState(s), output(params, o)

    def scan(params, state, xs):
        q, k, v, beta = features(params, xs)
        q, k, v = _head_major(q), _head_major(k), _head_major(v)
        beta = jnp.swapaxes(beta, -1, -2)  # (*B, H, T)
        y, s_last = _run_delta(q, k, v, beta, jnp.zeros_like(beta), state.s, chunked, chunk_size)
        return MatrixState(s_last), output(params, _head_major(y))

    return base.make_cell(
        name=name, family="matrix", d_out=d_hidden, init=init, initial_state=initial_state,
        step=step, scan=scan, input_dim=lambda p: p["w_q"].shape[0], hparams=hparams,
    )


# ----------------------------------------------------------------------------- DeltaProduct


def _at_substep(u, j, n):
    """(*B, T, H, F) -> (*B, T, n, H, F): u at Householder sub-step j, zeros at the others."""
    zeros = jnp.zeros_like(u)
    return jnp.stack([u if i == j else zeros for i in range(n)], axis=-3)


def _interleave(u):
    """(*B, T, n, H, F) -> (*B, H, T·n, F): a token's n sub-steps in a row, heads first."""
    u = jnp.moveaxis(u, -2, -4)
    return u.reshape(u.shape[:-3] + (u.shape[-3] * u.shape[-2], u.shape[-1]))


def _householder_cell(name, hparams, *, d_hidden, num_heads, d_key, d_value, num_householder,
                      forget_gate, negative_eigenvalues, d_conv, output_gate, chunked,
                      chunk_size):
    """Gated DeltaNet and (gated) DeltaProduct: flash-linear-attention's `GatedDeltaNet` and
    `GatedDeltaProduct` layers (one value head per key head).

    With n = num_householder, per token x_t (d_in features):

        [q'; k'; v'] = SiLU(causal depthwise conv_{d_conv}([x W_q; x W_k; x W_v]))  (no bias)
        q = l2(q') / sqrt(K)  (H heads);  k_j = l2(k'_j), v_j  (n·H heads, ordered (n, H))
        β_j = σ(x W_β)_j (· 2 with negative_eigenvalues),   g = −exp(A_log) softplus(x W_a + b_dt)
        S ← e^g S;  then for j = 1..n:  S ← (I − β_j k_j k_jᵀ) S + β_j k_j v_jᵀ;   o = Sᵀ q
        y = W_o [RMSNorm(o) ⊙ w_norm ⊙ SiLU(x W_g)]          (per head over V, eps 1e-5)

    Without `forget_gate`, g = 0 (plain DeltaProduct); with d_conv = 0 no convolution (q', k',
    v' = SiLU of the projections, fla's `use_short_conv=False`); without `output_gate`,
    y = W_o [RMSNorm(o) ⊙ w_norm] (no W_g). Init (the fla layers'): A = U(0, 16),
    A_log = log A; b_dt = softplus⁻¹(Δ₀), Δ₀ log-uniform in [0.001, 0.1] floored at 1e-4; the
    conv's weights ~ U(±1/sqrt(d_conv)) (PyTorch's default); w_norm = 1; projections
    ~ N(0, 1/fan_in) like every matrix cell here (fla's models re-initialise them with their
    own `initializer_range`).
    """
    n = num_householder
    heads = num_heads
    key_dim, value_dim = _head_dims(name, d_hidden, num_heads, d_key, d_value)
    base.check_int(name, "num_householder", num_householder)
    base.check_bool(name, "forget_gate", forget_gate)
    base.check_bool(name, "negative_eigenvalues", negative_eigenvalues)
    base.check_int(name, "d_conv", d_conv, minimum=0)
    base.check_bool(name, "output_gate", output_gate)
    _check_chunking(name, chunked, chunk_size)
    widths = (heads * key_dim, n * heads * key_dim, n * heads * value_dim)  # q, k, v channels
    conv_dim = sum(widths)

    def init(key, d_in):
        keys = jax.random.split(key, 7)
        params = _init_projections(keys[0], d_in, d_hidden, heads, key_dim, value_dim)
        params["w_k"] = base.lecun_normal(keys[1], (d_in, widths[1]), d_in)
        params["w_v"] = base.lecun_normal(keys[2], (d_in, widths[2]), d_in)
        params["w_beta"] = base.lecun_normal(keys[3], (d_in, n * heads), d_in)
        if output_gate:
            params["w_g"] = base.lecun_normal(keys[4], (d_in, heads * value_dim), d_in)
        if d_conv:
            params["conv_w"] = base.uniform_init(keys[5], (d_conv, conv_dim), d_conv)
        params["w_norm"] = jnp.ones((value_dim,), jnp.float32)
        if forget_gate:
            k_a, k_alog, k_dt = jax.random.split(keys[6], 3)
            dt = jnp.exp(jax.random.uniform(k_dt, (heads,), minval=math.log(1e-3),
                                            maxval=math.log(1e-1)))
            dt = jnp.maximum(dt, 1e-4)
            params["w_a"] = base.lecun_normal(k_a, (d_in, heads), d_in)
            params["a_log"] = jnp.log(jax.random.uniform(k_alog, (heads,), maxval=16.0))
            params["b_dt"] = dt + jnp.log(-jnp.expm1(-dt))  # softplus⁻¹(dt)
        return params

    def initial_state(params, batch_shape):
        batch_shape = tuple(batch_shape)
        return DeltaConvState(jnp.zeros(batch_shape + (heads, key_dim, value_dim), jnp.float32),
                              jnp.zeros(batch_shape + (max(d_conv - 1, 0), conv_dim),
                                        jnp.float32))

    def features(params, conv, xs):
        """xs (*B, T, d_in) -> q (*B,T,H,K), k (*B,T,n,H,K), v (*B,T,n,H,V), β (*B,T,n,H),
        log α (*B,T,H), the conv buffer."""
        qkv = jnp.concatenate([base.dense(xs, params[w]) for w in ("w_q", "w_k", "w_v")], -1)
        if d_conv:
            qkv, conv = base.causal_depthwise_conv(params["conv_w"], 0.0, conv, qkv)
        q, k, v = jnp.split(jax.nn.silu(qkv), [widths[0], widths[0] + widths[1]], axis=-1)
        lead = xs.shape[:-1]
        q = _l2_normalise(q.reshape(lead + (heads, key_dim))) * key_dim ** -0.5
        k = _l2_normalise(k.reshape(lead + (n, heads, key_dim)))
        v = v.reshape(lead + (n, heads, value_dim))
        beta = jax.nn.sigmoid(base.dense(xs, params["w_beta"])).reshape(lead + (n, heads))
        beta = beta * (2.0 if negative_eigenvalues else 1.0)
        if forget_gate:
            log_alpha = -jnp.exp(params["a_log"]) * jax.nn.softplus(
                base.dense(xs, params["w_a"]) + params["b_dt"])
        else:
            log_alpha = jnp.zeros(lead + (heads,), jnp.float32)
        return q, k, v, beta, log_alpha, conv

    def output(params, xs, o):
        """o (*B, T, H, V) -> (*B, T, D): the (gated) RMSNorm per head, then W_o."""
        o = _rms_norm(o) * params["w_norm"]
        if output_gate:
            o = o * jax.nn.silu(_heads(xs, params["w_g"], heads))
        return _merge_heads(o, params["w_o"])

    def step(params, state, x_t):
        q, k, v, beta, log_alpha, conv = features(params, state.conv, x_t[..., None, :])
        s = state.s
        for j in range(n):  # the decay acts with the first Householder step, q reads the last
            s, o = _delta_step(s, q[..., 0, :, :], k[..., 0, j, :, :], v[..., 0, j, :, :],
                               beta[..., 0, j, :], log_alpha[..., 0, :] if j == 0 else 0.0)
        return DeltaConvState(s, conv), output(params, x_t, o)

    def scan(params, state, xs):
        q, k, v, beta, log_alpha, conv = features(params, state.conv, xs)
        y, s_last = _run_delta(
            _interleave(_at_substep(q, n - 1, n)), _interleave(k), _interleave(v),
            _interleave(beta[..., None])[..., 0],
            _interleave(_at_substep(log_alpha[..., None], 0, n))[..., 0],
            state.s, chunked, chunk_size)
        y = y.reshape(y.shape[:-2] + (xs.shape[-2], n, value_dim))[..., -1, :]  # (*B, H, T, V)
        return DeltaConvState(s_last, conv), output(params, xs, _head_major(y))

    return base.make_cell(
        name=name, family="matrix", d_out=d_hidden, init=init, initial_state=initial_state,
        step=step, scan=scan, input_dim=lambda p: p["w_q"].shape[0], hparams=hparams,
    )


def make_gated_deltanet(
    *,
    d_hidden: int = 64,
    num_heads: int = 4,
    d_key: int | None = None,
    d_value: int | None = None,
    negative_eigenvalues: bool = False,
    d_conv: int = 4,
    output_gate: bool = True,
    chunked: bool = True,
    chunk_size: int = 32,
) -> base.Cell:
    """Gated DeltaNet (Yang, Kautz & Hatamizadeh 2025, "Gated Delta Networks: Improving Mamba2
    with Delta Rule", eq. 10; flash-linear-attention's `GatedDeltaNet` layer):

        S_t = α_t (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ,   α_t = exp(−exp(A_log) Δ_t),

    with short convolutions, L2-normalised q, k, q scaled by K^(−1/2), and a gated RMSNorm on
    the output: DeltaProduct with one Householder step and the forget gate
    (`_householder_cell` has the whole layer and its init). `negative_eigenvalues`: β ∈ (0, 2)
    (fla's `allow_neg_eigval`). K = d_key, V = d_value default to d_hidden // num_heads.
    Parameters: d_in·(2HK + HV + 2H) + 2H + V + H·V·D, plus d_in·HV with the output gate and
    d_conv·H(2K + V) with the conv.
    """
    hparams = dict(d_hidden=d_hidden, num_heads=num_heads, d_key=d_key, d_value=d_value,
                   negative_eigenvalues=negative_eigenvalues, d_conv=d_conv,
                   output_gate=output_gate, chunked=chunked, chunk_size=chunk_size)
    return _householder_cell("gated_deltanet", hparams, num_householder=1, forget_gate=True,
                             **hparams)


def make_deltaproduct(
    *,
    d_hidden: int = 64,
    num_heads: int = 4,
    d_key: int | None = None,
    d_value: int | None = None,
    num_householder: int = 2,
    forget_gate: bool = False,
    negative_eigenvalues: bool = False,
    d_conv: int = 4,
    output_gate: bool = True,
    chunked: bool = True,
    chunk_size: int = 32,
) -> base.Cell:
    """DeltaProduct (Siems et al. 2025, "DeltaProduct: Improving State-Tracking in Linear RNNs
    via Householder Products"; flash-linear-attention's `GatedDeltaProduct` layer): n_h =
    `num_householder` delta-rule steps per token, each with its own key, value and β,

        S_t = α_t Π_{j=1..n_h} (I − β_{t,j} k_{t,j} k_{t,j}ᵀ) S_{t−1} + Σ_j (…) k_{t,j} v_{t,j}ᵀ,

    the decay α_t applied with the first step (`forget_gate`: Gated DeltaProduct; without it
    α = 1), the query read after the last. n_h = 1 with the gate is Gated DeltaNet. With
    `negative_eigenvalues` (β ∈ (0, 2), as the paper's state-tracking runs) each factor is a
    generalised reflection; n_h of them compose rotations a single one cannot. The layer and
    its init: `_householder_cell`. `chunk_size` counts Householder sub-steps (T·n_h in all).
    Parameters: d_in·(HK + n_h H(K + V + 1)) + V + H·V·D, plus d_in·H + 2H with the forget
    gate, d_in·HV with the output gate and d_conv·H(K + n_h(K + V)) with the conv.
    """
    hparams = dict(d_hidden=d_hidden, num_heads=num_heads, d_key=d_key, d_value=d_value,
                   num_householder=num_householder, forget_gate=forget_gate,
                   negative_eigenvalues=negative_eigenvalues, d_conv=d_conv,
                   output_gate=output_gate, chunked=chunked, chunk_size=chunk_size)
    return _householder_cell("deltaproduct", hparams, **hparams)


CELLS = {
    "deltanet": make_deltanet,
    "gated_deltanet": make_gated_deltanet,
    "deltaproduct": make_deltaproduct,
}
