"""Matrix-state cells: linear attention, RetNet, GLA and Mamba-2 (family "matrix"; the delta-rule
cells, DeltaNet, Gated DeltaNet and DeltaProduct, are in `cells.delta` and share these pieces).

Every cell here is multi-head: H = num_heads heads, each with key dim K = d_key and value dim
V = d_value (both default to d_hidden // num_heads, which then must divide evenly). Bias-free
projections make the queries, keys and values of all heads from x_t (d_in features):

    q_t = x_t W_q,  k_t = x_t W_k  (H·K),      v_t = x_t W_v  (H·V),

each head runs one matrix-state recurrence whose state keeps keys on the rows,

    S_t = A_t(S_{t-1}) + k_t v_tᵀ,       o_t = S_tᵀ q_t,        S_t: (K, V)

(the layout of `kernels.matrix_scan`; papers that write S as V×K, like DeltaNet's, have the
transpose), and y_t = [o_t of all heads] W_o maps H·V features to d_hidden. The state of a
sequence is `MatrixState.s` of shape (*B, H, K, V) (linear attention adds its normaliser).

`scan` runs all heads at once on `kernels.matrix_scan` (impl = the `scan_impl` hparam, chunked by
default); the delta rule, whose transition is not diagonal, has its own chunkwise form in
`cells.delta`. `step` writes the one-step update out directly; both compute the same function.

Shared choices (all cells): projection weights ~ N(0, 1/fan_in) (`base.lecun_normal`), biases 0;
no biases in the q, k, v, o projections (as in RetNet and GLA; Katharopoulos et al. use biased
linear layers). RetNet, GLA and DeltaNet normalise each head's V outputs before the output gate
/ W_o with the hparam `head_norm`:

- "rms" (default): o / sqrt(mean(o²) + 1e-5), RMSNorm per head, as the authors' released code
  does (torchscale's RetNet, flash-linear-attention's GLA and DeltaNet);
- "group": (o − mean(o)) / sqrt(var(o) + 1e-5), the GroupNorm (one group per head) the RetNet
  and GLA papers write. With few features per head it is badly conditioned: at V = 2 it maps
  every head output to ±(1, −1) and its derivative grows as 1/sqrt(eps) where the two features
  are close (step and chunked scan then disagree by ~1e-4 in gradients); at V = 1 it is 0.

Neither has an affine part: a per-feature scale would be redundant with W_o.

Shape letters: see `kernels/typing.py` (D = d_hidden).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from seqbench import kernels
from seqbench.cells import base

LINEAR_ATTENTION_EPS = 1e-6  # added to the normaliser φ(q)·z (as in Katharopoulos et al.'s code)
HEAD_NORM_EPS = 1e-5  # epsilon of the per-head norms (RMS or variance)
ROTARY_BASE = 10000.0  # RetNet's θ_i = 1 / 10000^(i / (K/2 - 1)), i = 0..K/2-1


class MatrixState(NamedTuple):
    s: jax.Array  # shape=(*B, H, K, V), dtype=float32


class NormalisedState(NamedTuple):
    s: jax.Array  # shape=(*B, H, K, V), dtype=float32: sum of φ(k_t) v_tᵀ
    z: jax.Array  # shape=(*B, H, K), dtype=float32: sum of φ(k_t)


# ----------------------------------------------------------------------------- validation


def _head_dims(name, d_hidden, num_heads, d_key, d_value):
    """Validates the shared hparams and returns (K, V) per head."""
    base.check_int(name, "d_hidden", d_hidden)
    base.check_int(name, "num_heads", num_heads)
    for what, dim in (("d_key", d_key), ("d_value", d_value)):
        if dim is not None:
            base.check_int(name, f"{what} (or None for d_hidden // num_heads)", dim)
    if (d_key is None or d_value is None) and d_hidden % num_heads:
        raise ValueError(
            f"{name}: d_hidden={d_hidden} must be a multiple of num_heads={num_heads} when d_key "
            f"or d_value is None (they default to d_hidden // num_heads); or give both"
        )
    return d_key or d_hidden // num_heads, d_value or d_hidden // num_heads


# ----------------------------------------------------------------------------- shared pieces


def _init_projections(key, d_in, d_hidden, num_heads, d_key, d_value):
    """W_q, W_k (d_in, H·K), W_v (d_in, H·V), W_o (H·V, D)."""
    kq, kk, kv, ko = jax.random.split(key, 4)
    hk, hv = num_heads * d_key, num_heads * d_value
    return {
        "w_q": base.lecun_normal(kq, (d_in, hk), d_in),
        "w_k": base.lecun_normal(kk, (d_in, hk), d_in),
        "w_v": base.lecun_normal(kv, (d_in, hv), d_in),
        "w_o": base.lecun_normal(ko, (hv, d_hidden), hv),
    }


def _heads(x, w, num_heads):
    """x @ w split into heads: (..., d_in) -> (..., H, F/H)."""
    y = base.dense(x, w)
    return y.reshape(y.shape[:-1] + (num_heads, y.shape[-1] // num_heads))


def _head_major(x):
    """(*B, T, H, F) -> (*B, H, T, F), the layout matrix_scan runs on (and back)."""
    return jnp.swapaxes(x, -2, -3)


def _merge_heads(o, w_o):
    """(..., H, V) -> (..., D)."""
    return base.dense(o.reshape(o.shape[:-2] + (-1,)), w_o)


def _rms_norm(o):
    """RMSNorm over each head's V features (last axis), no affine part."""
    return o * lax.rsqrt(jnp.mean(jnp.square(o), axis=-1, keepdims=True) + HEAD_NORM_EPS)


def _group_norm(o):
    """GroupNorm with one group per head (LayerNorm over its V features), no affine part."""
    return base.layer_norm(o, HEAD_NORM_EPS)


HEAD_NORMS = {"rms": _rms_norm, "group": _group_norm}


def _head_norm_fn(name, head_norm, value_dim):
    if head_norm not in HEAD_NORMS:
        raise ValueError(f"{name}: head_norm must be one of {tuple(HEAD_NORMS)}; got {head_norm!r}")
    if head_norm == "group" and value_dim < 2:
        raise ValueError(
            f"{name}: head_norm='group' needs d_value >= 2 (it maps a single feature to 0); "
            f"got d_value={value_dim}"
        )
    return HEAD_NORMS[head_norm]


def _outer_update(s, decay, k, v):
    """decay ⊙ S + k vᵀ for S (..., K, V); decay broadcasts against (..., K, 1)."""
    return decay * s + k[..., :, None] * v[..., None, :]


def _read(s, q):
    """Sᵀ q: (..., K, V), (..., K) -> (..., V)."""
    return jnp.einsum("...k,...kv->...v", q, s)


def _signed_gate(log_alpha, negative_eigenvalues):
    """α = exp(log α) ∈ (0, 1), or 2α − 1 ∈ (−1, 1) with `negative_eigenvalues` (Grazzi et al.)."""
    alpha = jnp.exp(log_alpha)
    return 2.0 * alpha - 1.0 if negative_eigenvalues else alpha


def _per_key_scan(q, k, v, log_alpha, s0, negative_eigenvalues, impl):
    """`kernels.matrix_scan` with per-key gates (head-major (*B, H, T, K) inputs), where the
    gates may be negative: matrix_scan takes log |α|, and the sign of Π_{s<=t} α_s per key is
    moved onto q_t and k_t (S_t = D_t S'_t with D_t = diag(that sign), so k_t's write and q_t's
    read see S' = D_t S_t; D_T restores the final state). Returns (y, S_T)."""
    if not negative_eigenvalues:
        return kernels.matrix_scan(q, k, v, log_alpha, s0, impl=impl)
    a = _signed_gate(log_alpha, True)
    sign = jnp.cumprod(jnp.where(a < 0, -1.0, 1.0).astype(a.dtype), axis=-2)
    log_alpha = jnp.log(jnp.maximum(jnp.abs(a), jnp.finfo(a.dtype).tiny))
    y, s_last = kernels.matrix_scan(sign * q, sign * k, v, log_alpha, s0, impl=impl)
    return y, sign[..., -1, :, None] * s_last


def _param_count_base(d_in, d_hidden, num_heads, d_key, d_value):
    return d_in * num_heads * (2 * d_key + d_value) + num_heads * d_value * d_hidden


# ----------------------------------------------------------------------------- linear attention


def make_linear_attention(
    *,
    d_hidden: int = 64,
    num_heads: int = 4,
    d_key: int | None = None,
    d_value: int | None = None,
    scan_impl: str = "auto",
) -> base.Cell:
    """Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"), multi-head.

    Per head, with the feature map φ(x) = elu(x) + 1 (> 0):

        S_t = S_{t-1} + φ(k_t) v_tᵀ,        z_t = z_{t-1} + φ(k_t),
        o_t = S_tᵀ φ(q_t) / (φ(q_t)·z_t + eps),          eps = 1e-6,
        y_t = [o_t of all heads] W_o.

    `scan` runs S and the normaliser z in one `kernels.matrix_scan` call: the values get an extra
    column of ones, so the state (K, V+1) is [S | z] and the last output column is φ(q_t)·z_t.
    State: `NormalisedState(s (*B, H, K, V), z (*B, H, K))`. K = d_key and V = d_value
    default to d_hidden // num_heads.

    Init: W_q, W_k, W_v ~ N(0, 1/d_in), W_o ~ N(0, 1/(H·V)), no biases.
    Parameters: d_in·H·(2K + V) + H·V·d_hidden.
    """
    name = "linear_attention"
    hparams = dict(
        d_hidden=d_hidden, num_heads=num_heads, d_key=d_key, d_value=d_value, scan_impl=scan_impl
    )
    heads = num_heads
    key_dim, value_dim = _head_dims(name, d_hidden, num_heads, d_key, d_value)
    base.check_scan_impl(name, scan_impl, base.MATRIX_SCAN_IMPLS)

    def init(key, d_in):
        return _init_projections(key, d_in, d_hidden, heads, key_dim, value_dim)

    def initial_state(params, batch_shape):
        batch_shape = tuple(batch_shape)
        return NormalisedState(
            s=jnp.zeros(batch_shape + (heads, key_dim, value_dim), jnp.float32),
            z=jnp.zeros(batch_shape + (heads, key_dim), jnp.float32),
        )

    def features(params, x):
        phi = lambda u: jax.nn.elu(u) + 1.0
        q = phi(_heads(x, params["w_q"], heads))
        k = phi(_heads(x, params["w_k"], heads))
        return q, k, _heads(x, params["w_v"], heads)

    def normalised(numerator, denominator):
        return numerator / (denominator[..., None] + LINEAR_ATTENTION_EPS)

    def step(params, state, x_t):
        q, k, v = features(params, x_t)
        s = _outer_update(state.s, 1.0, k, v)
        z = state.z + k
        o = normalised(_read(s, q), jnp.sum(q * z, axis=-1))
        return NormalisedState(s, z), _merge_heads(o, params["w_o"])

    def scan(params, state, xs):
        q, k, v = (_head_major(u) for u in features(params, xs))
        v1 = jnp.concatenate([v, jnp.ones(v.shape[:-1] + (1,), v.dtype)], axis=-1)
        s0 = jnp.concatenate([state.s, state.z[..., None]], axis=-1)
        y, s_last = kernels.matrix_scan(q, k, v1, None, s0, impl=scan_impl)
        o = normalised(y[..., :value_dim], y[..., value_dim])
        state = NormalisedState(s_last[..., :value_dim], s_last[..., value_dim])
        return state, _merge_heads(_head_major(o), params["w_o"])

    return base.make_cell(
        name=name, family="matrix", d_out=d_hidden, init=init, initial_state=initial_state,
        step=step, scan=scan, input_dim=lambda p: p["w_q"].shape[0], hparams=hparams,
    )


# ----------------------------------------------------------------------------- RetNet


def retnet_decays(num_heads: int) -> np.ndarray:
    """RetNet's per-head decays γ_h = 1 − 2^(−5−h), h = 0..H−1: shape (H,), float64."""
    return 1.0 - 2.0 ** (-5.0 - np.arange(num_heads))


def rotary_frequencies(key_dim: int) -> np.ndarray:
    """RetNet's θ per key dimension, shape (K,) float64: pairs (2i, 2i+1) share
    θ_i = 10000^(−i/(K/2−1)) (K = key_dim, even)."""
    theta = 1.0 / ROTARY_BASE ** np.linspace(0.0, 1.0, key_dim // 2)
    return np.repeat(theta, 2)


def _rotation(positions, theta):
    """cos, sin of positions ⊗ θ, each (len(positions), K) float32; the angles are formed in
    float64 NumPy."""
    angles = np.outer(np.asarray(positions, np.float64), theta)
    return jnp.asarray(np.cos(angles), jnp.float32), jnp.asarray(np.sin(angles), jnp.float32)


def _rotate(x, cos, sin):
    """Rotates each pair (x_2i, x_2i+1) of the last axis by its angle (RetNet's theta_shift)."""
    pairs = x.reshape(x.shape[:-1] + (-1, 2))
    swapped = jnp.stack([-pairs[..., 1], pairs[..., 0]], axis=-1).reshape(x.shape)
    return x * cos + swapped * sin


def _rotate_keys_of_state(s, cos, sin):
    """Rotates the key axis (-2) of S (..., K, V)."""
    return jnp.swapaxes(_rotate(jnp.swapaxes(s, -1, -2), cos, sin), -1, -2)


def make_retnet(
    *,
    d_hidden: int = 64,
    num_heads: int = 4,
    d_key: int | None = None,
    d_value: int | None = None,
    rotary: bool = True,
    head_norm: str = "rms",
    scan_impl: str = "auto",
) -> base.Cell:
    """RetNet's multi-scale retention (Sun et al. 2023, "Retentive Network"), recurrent form.

    Head h has the fixed decay γ_h = 1 − 2^(−5−h) (h = 0..H−1; `retnet_decays`). With
    q_n = x_n W_q, k_n = (x_n W_k) / sqrt(K), v_n = x_n W_v and, when `rotary`, the xPos-style
    rotation R(n) that turns each key/query pair (2i, 2i+1) by the angle n·θ_i
    (θ_i = 10000^(−i/(K/2−1)), `rotary_frequencies`; RetNet's Θ without xPos' extra scale, which
    γ replaces), retention is

        o_n = Σ_{m<=n} γ^(n−m) (R(n) q_n · R(m) k_m) v_m,
        y_n = (swish(x_n W_g) ⊙ HeadNorm([o_n of all heads])) W_o,

    HeadNorm per `head_norm` (module docstring: "rms" default, "group" the paper's). The paper's
    extra scale normalisations of the parallel form (of D and of the retention scores) are
    omitted: they only rescale each head, which the head norm removes (up to eps).

    Recurrent form: only n − m matters, so the state is kept in the frame of the current step,
    S_n = Σ_m γ^(n−m) R(m−n) k_m v_mᵀ, and

        S_n = γ R(−1) S_{n−1} + k_n v_nᵀ,           o_n = S_nᵀ q_n,

    (R(−1) turns the key axis of S back by one step); no position counter is carried, so the
    state is only S (*B, H, K, V) and streaming in pieces equals the whole. `scan` rotates
    q, k by their position within the call, enters with R(−1) S and returns R(−(T−1)) S_last,
    with the decay log γ_h as matrix_scan's scalar per-step log_a; the rotation angles are
    computed in float64 at trace time, exact at any length.

    K = d_key, V = d_value default to d_hidden // num_heads (the paper uses V = 2·d_model/H);
    `rotary` needs an even K. Init: weights ~ N(0, 1/fan_in), no biases.
    Parameters: d_in·H·(2K + 2V) + H·V·d_hidden.
    """
    name = "retnet"
    hparams = dict(
        d_hidden=d_hidden, num_heads=num_heads, d_key=d_key, d_value=d_value, rotary=rotary,
        head_norm=head_norm, scan_impl=scan_impl,
    )
    heads = num_heads
    key_dim, value_dim = _head_dims(name, d_hidden, num_heads, d_key, d_value)
    norm = _head_norm_fn(name, head_norm, value_dim)
    base.check_bool(name, "rotary", rotary)
    base.check_scan_impl(name, scan_impl, base.MATRIX_SCAN_IMPLS)
    if rotary and key_dim % 2:
        raise ValueError(f"{name}: rotary=True needs an even d_key; got d_key={key_dim}")
    log_gamma = jnp.asarray(np.log1p(-(2.0 ** (-5.0 - np.arange(heads)))), jnp.float32)
    theta = rotary_frequencies(key_dim) if rotary else None

    def init(key, d_in):
        key, k_g = jax.random.split(key)
        params = _init_projections(key, d_in, d_hidden, heads, key_dim, value_dim)
        params["w_g"] = base.lecun_normal(k_g, (d_in, heads * value_dim), d_in)
        return params

    def initial_state(params, batch_shape):
        return MatrixState(jnp.zeros(tuple(batch_shape) + (heads, key_dim, value_dim), jnp.float32))

    def features(params, x):
        q = _heads(x, params["w_q"], heads)
        k = _heads(x, params["w_k"], heads) / math.sqrt(key_dim)
        return q, k, _heads(x, params["w_v"], heads)

    def back(s, steps):  # R(−steps) on the key axis of S
        if not rotary:
            return s
        cos, sin = _rotation([-steps], theta)
        return _rotate_keys_of_state(s, cos[0], sin[0])

    def output(params, o, x):
        gate = jax.nn.silu(_heads(x, params["w_g"], heads))
        return _merge_heads(gate * norm(o), params["w_o"])

    def step(params, state, x_t):
        q, k, v = features(params, x_t)
        s = _outer_update(back(state.s, 1), jnp.exp(log_gamma)[:, None, None], k, v)
        return MatrixState(s), output(params, _read(s, q), x_t)

    def scan(params, state, xs):
        q, k, v = (_head_major(u) for u in features(params, xs))
        steps = xs.shape[-2]
        if rotary:
            cos, sin = _rotation(np.arange(steps), theta)
            q, k = _rotate(q, cos, sin).astype(v.dtype), _rotate(k, cos, sin).astype(v.dtype)
        log_a = jnp.broadcast_to(log_gamma[:, None], q.shape[:-1])
        y, s_last = kernels.matrix_scan(q, k, v, log_a, back(state.s, 1), impl=scan_impl)
        return MatrixState(back(s_last, steps - 1)), output(params, _head_major(y), xs)

    return base.make_cell(
        name=name, family="matrix", d_out=d_hidden, init=init, initial_state=initial_state,
        step=step, scan=scan, input_dim=lambda p: p["w_q"].shape[0], hparams=hparams,
    )


# ----------------------------------------------------------------------------- GLA


def make_gla(
    *,
    d_hidden: int = 64,
    num_heads: int = 4,
    d_key: int | None = None,
    d_value: int | None = None,
    gate_rank: int = 16,
    gate_tau: float = 16.0,
    negative_eigenvalues: bool = False,
    head_norm: str = "rms",
    scan_impl: str = "auto",
) -> base.Cell:
    """Gated linear attention (Yang et al. 2024, "Gated Linear Attention Transformers with
    Hardware-Efficient Training"), the GLA layer of section 4.

    Per head, with a gate per key dimension:

        α_t = σ(x_t W_α1 W_α2 + b_α)^(1/τ)      (W_α1: d_in × r, W_α2: r × H·K; r = gate_rank
                                                 = 16, τ = gate_tau = 16; in log space
                                                 log α_t = log σ(·)/τ = −softplus(−·)/τ)
        S_t = diag(α_t) S_{t−1} + k_t v_tᵀ,      o_t = S_tᵀ q_t / sqrt(K),
        y_t = (swish(x_t W_r + b_r) ⊙ HeadNorm([o_t of all heads])) W_o,

    HeadNorm per `head_norm` (module docstring: "rms" default, "group" the paper's); the
    q scale 1/sqrt(K) is the one of the reference kernels (it only matters through eps).

    `negative_eigenvalues` (Grazzi et al. 2025): the gate becomes 2α_t − 1 ∈ (−1, 1). `scan` then
    runs matrix_scan on |2α − 1| with the signs folded into q and k (P_t = Π_{u<=t} sign_u,
    q → P_t q, k → P_t k, S_last = P_T S̃_last; exact, the P_t are ±1).

    K = d_key, V = d_value default to d_hidden // num_heads (the paper uses K = d/2, V = d).
    Init: weights ~ N(0, 1/fan_in) (W_α2: fan_in r), b_α = b_r = 0 (so α_0 ≈ 0.5^(1/16) ≈ 0.958).
    Parameters: d_in·(H·(2K + 2V) + r) + r·H·K + H·K + H·V + H·V·d_hidden.
    """
    name = "gla"
    hparams = dict(
        d_hidden=d_hidden, num_heads=num_heads, d_key=d_key, d_value=d_value,
        gate_rank=gate_rank, gate_tau=gate_tau, negative_eigenvalues=negative_eigenvalues,
        head_norm=head_norm, scan_impl=scan_impl,
    )
    heads = num_heads
    key_dim, value_dim = _head_dims(name, d_hidden, num_heads, d_key, d_value)
    norm = _head_norm_fn(name, head_norm, value_dim)
    base.check_int(name, "gate_rank", gate_rank)
    if isinstance(gate_tau, bool) or not isinstance(gate_tau, (int, float)) or not gate_tau > 0:
        raise ValueError(f"{name}: gate_tau must be a number > 0; got {gate_tau!r}")
    base.check_bool(name, "negative_eigenvalues", negative_eigenvalues)
    base.check_scan_impl(name, scan_impl, base.PER_KEY_MATRIX_SCAN_IMPLS)

    def init(key, d_in):
        key, k1, k2, k_r = jax.random.split(key, 4)
        params = _init_projections(key, d_in, d_hidden, heads, key_dim, value_dim)
        params.update(
            w_a1=base.lecun_normal(k1, (d_in, gate_rank), d_in),
            w_a2=base.lecun_normal(k2, (gate_rank, heads * key_dim), gate_rank),
            b_a=jnp.zeros((heads * key_dim,), jnp.float32),
            w_r=base.lecun_normal(k_r, (d_in, heads * value_dim), d_in),
            b_r=jnp.zeros((heads * value_dim,), jnp.float32),
        )
        return params

    def initial_state(params, batch_shape):
        return MatrixState(jnp.zeros(tuple(batch_shape) + (heads, key_dim, value_dim), jnp.float32))

    def features(params, x):
        q = _heads(x, params["w_q"], heads) / math.sqrt(key_dim)
        k = _heads(x, params["w_k"], heads)
        v = _heads(x, params["w_v"], heads)
        logits = base.dense(base.dense(x, params["w_a1"]), params["w_a2"]) + params["b_a"]
        log_alpha = jax.nn.log_sigmoid(logits.reshape(k.shape)) / gate_tau
        return q, k, v, log_alpha

    def output(params, o, x):
        gate = jax.nn.silu((base.dense(x, params["w_r"]) + params["b_r"]).reshape(o.shape))
        return _merge_heads(gate * norm(o), params["w_o"])

    def step(params, state, x_t):
        q, k, v, log_alpha = features(params, x_t)
        s = _outer_update(state.s, _signed_gate(log_alpha, negative_eigenvalues)[..., None], k, v)
        return MatrixState(s), output(params, _read(s, q), x_t)

    def scan(params, state, xs):
        q, k, v, log_alpha = (_head_major(u) for u in features(params, xs))
        y, s_last = _per_key_scan(q, k, v, log_alpha, state.s, negative_eigenvalues, scan_impl)
        return MatrixState(s_last), output(params, _head_major(y), xs)

    return base.make_cell(
        name=name, family="matrix", d_out=d_hidden, init=init, initial_state=initial_state,
        step=step, scan=scan, input_dim=lambda p: p["w_q"].shape[0], hparams=hparams,
    )


# ----------------------------------------------------------------------------- HGRN2


def make_hgrn2(
    *,
    d_hidden: int = 64,
    num_heads: int = 4,
    d_key: int | None = None,
    negative_eigenvalues: bool = False,
    scan_impl: str = "auto",
) -> base.Cell:
    """HGRN2 (Qin et al. 2024, "HGRN2: Gated Linear RNNs with State Expansion"), as
    flash-linear-attention's `HGRN2Attention` layer computes it (read 2026-12-01).

    HGRN's forget gate f_t (per key dim) expands the state by an outer product with the input,
    and the gate's complement is the key (no separate key projection). Per head, with K = d_key
    (the layer's `expand_ratio`) and V = D / H:

        q_t = SiLU(x_t W_q),   g_t = log σ(x_t W_f),   k_t = 1 − exp(g_t)      (H·K each)
        v_t = x_t W_i   (H·V = D)
        S_t = diag(exp g_t) S_{t−1} + k_t v_tᵀ,    o_t = S_tᵀ q_t / sqrt(K)
        y_t = W_o (RMSNorm([o_t of all heads]) ⊙ w_norm)             (over all D, eps 1e-5)

    q / sqrt(K) is fla's GLA kernel's default scale. Not included: HGRN's lower bound on the
    forget gates of deeper layers (a model-level, layer-indexed parameter) and the optional
    short convolutions (off in fla's layer by default). `negative_eigenvalues` (Grazzi et al.):
    the forget gate 2σ − 1 ∈ (−1, 1), the key 1 − σ unchanged. Runs on `kernels.matrix_scan`
    with per-key gates (`scan_impl`). K defaults to D / H. Init: weights ~ N(0, 1/fan_in),
    w_norm = 1. Parameters: d_in·(2HK + D) + D + D·D.
    """
    name = "hgrn2"
    hparams = dict(d_hidden=d_hidden, num_heads=num_heads, d_key=d_key,
                   negative_eigenvalues=negative_eigenvalues, scan_impl=scan_impl)
    heads = num_heads
    value_dim = base.head_dim(name, d_hidden, num_heads)
    key_dim, _ = _head_dims(name, d_hidden, num_heads, d_key, value_dim)
    base.check_bool(name, "negative_eigenvalues", negative_eigenvalues)
    base.check_scan_impl(name, scan_impl, base.PER_KEY_MATRIX_SCAN_IMPLS)

    def init(key, d_in):
        kq, kf, ki, ko = jax.random.split(key, 4)
        return {
            "w_q": base.lecun_normal(kq, (d_in, heads * key_dim), d_in),
            "w_f": base.lecun_normal(kf, (d_in, heads * key_dim), d_in),
            "w_i": base.lecun_normal(ki, (d_in, d_hidden), d_in),
            "w_norm": jnp.ones((d_hidden,), jnp.float32),
            "w_o": base.lecun_normal(ko, (d_hidden, d_hidden), d_hidden),
        }

    def initial_state(params, batch_shape):
        return MatrixState(jnp.zeros(tuple(batch_shape) + (heads, key_dim, value_dim), jnp.float32))

    def features(params, x):
        q = jax.nn.silu(_heads(x, params["w_q"], heads)) / math.sqrt(key_dim)
        log_forget = jax.nn.log_sigmoid(_heads(x, params["w_f"], heads))
        return q, -jnp.expm1(log_forget), _heads(x, params["w_i"], heads), log_forget

    def output(params, o):
        o = o.reshape(o.shape[:-2] + (-1,))
        o = o * lax.rsqrt(jnp.mean(jnp.square(o), -1, keepdims=True) + HEAD_NORM_EPS)
        return base.dense(o * params["w_norm"], params["w_o"])

    def step(params, state, x_t):
        q, k, v, log_forget = features(params, x_t)
        gate = _signed_gate(log_forget, negative_eigenvalues)[..., None]
        s = _outer_update(state.s, gate, k, v)
        return MatrixState(s), output(params, _read(s, q))

    def scan(params, state, xs):
        q, k, v, log_forget = (_head_major(u) for u in features(params, xs))
        y, s_last = _per_key_scan(q, k, v, log_forget, state.s, negative_eigenvalues, scan_impl)
        return MatrixState(s_last), output(params, _head_major(y))

    return base.make_cell(
        name=name, family="matrix", d_out=d_hidden, init=init, initial_state=initial_state,
        step=step, scan=scan, input_dim=lambda p: p["w_q"].shape[0], hparams=hparams,
    )


# ----------------------------------------------------------------------------- Mamba-2 / SSD


class Mamba2State(NamedTuple):
    ssm: jax.Array  # shape=(*B, H, N, P), float32: per head, S_t = h_tᵀ of the paper (keys = N)
    conv: jax.Array  # shape=(*B, d_conv - 1, E + 2N): the conv's last inputs (x, B, C)


MAMBA2_NORM_EPS = 1e-5  # the gated RMSNorm's epsilon (the reference's RMSNormGated)


def make_mamba2(
    *,
    d_hidden: int = 64,
    d_state: int = 16,
    expand: int = 2,
    head_dim: int = 16,
    d_conv: int = 4,
    scan_impl: str = "auto",
):
    """The Mamba-2 block (Dao & Gu 2024, "Transformers are SSMs", section 7; the reference
    `Mamba2Simple` of state-spaces/mamba, one group of B and C).

    With E = expand·D channels (D = d_hidden) in H = E / P heads of P = head_dim channels, N =
    d_state:

        [z; x'; B'; C'; δ] = W_in x_t                      (z, x' E; B', C' N; δ H; no bias)
        [x; B; C] = SiLU(causal depthwise conv_{d_conv}([x'; B'; C']) + conv bias)
        Δ_t = softplus(δ + b_Δ),   A = -exp(A_log)                        (per head, scalar)
        h_t = exp(Δ_t A) h_{t-1} + Δ_t x_t B_tᵀ,    y_t = h_t C_t + D x_t   (h: P x N per head)
        out = W_out (RMSNorm(y ⊙ SiLU(z)) ⊙ w_norm)          (eps 1e-5; the norm after the gate)

    The state-space duality: per head this is `kernels.matrix_scan` with q = C, k = B,
    v = Δ x, one gate per step log a = Δ A, and the state S = hᵀ (N x P), so `scan_impl`
    "chunked" is the SSD chunked algorithm and "pallas" its fused kernel. The conv's last
    d_conv - 1 inputs are carried in the state, so stepping and scanning in pieces agree.
    No `negative_eigenvalues`: the gate exp(Δ A) is passed in log space, which a negative
    transition cannot be.

    Initialisation (the reference's): W_in, W_out, the conv weight and bias ~ U(±1/sqrt(fan_in))
    (PyTorch's default; the conv's fan_in is d_conv); A_log = log U[1, 16]; b_Δ =
    softplus⁻¹(Δ₀), Δ₀ log-uniform in [0.001, 0.1] floored at 1e-4; D = 1; w_norm = 1.
    Parameters: d_in(2E + 2N + H) + d_conv(E + 2N) + (E + 2N) + 3H + E + E·D.
    """
    name = "mamba2"
    base.check_int(name, "d_hidden", d_hidden)
    base.check_int(name, "d_state", d_state)
    base.check_int(name, "expand", expand)
    base.check_int(name, "head_dim", head_dim)
    base.check_int(name, "d_conv", d_conv)
    channels = expand * d_hidden
    if channels % head_dim:
        raise ValueError(f"{name}: head_dim must divide expand * d_hidden = {channels}; got "
                         f"head_dim={head_dim}")
    base.check_scan_impl(name, scan_impl, base.MATRIX_SCAN_IMPLS)
    hparams = dict(d_hidden=d_hidden, d_state=d_state, expand=expand, head_dim=head_dim,
                   d_conv=d_conv, scan_impl=scan_impl)
    heads, conv_dim = channels // head_dim, channels + 2 * d_state

    def init(key, d_in):
        keys = jax.random.split(key, 6)
        dt = jnp.exp(jax.random.uniform(keys[0], (heads,), minval=math.log(1e-3),
                                        maxval=math.log(1e-1)))
        dt = jnp.maximum(dt, 1e-4)
        return {
            "w_in": base.uniform_init(keys[1], (d_in, 2 * channels + 2 * d_state + heads), d_in),
            "conv_w": base.uniform_init(keys[2], (d_conv, conv_dim), d_conv),
            "conv_b": base.uniform_init(keys[3], (conv_dim,), d_conv),
            "b_dt": dt + jnp.log(-jnp.expm1(-dt)),  # softplus⁻¹(dt)
            "a_log": jnp.log(jax.random.uniform(keys[4], (heads,), minval=1.0, maxval=16.0)),
            "d": jnp.ones((heads,), jnp.float32),
            "w_norm": jnp.ones((channels,), jnp.float32),
            "w_out": base.uniform_init(keys[5], (channels, d_hidden), channels),
        }

    def initial_state(params, batch_shape):
        batch_shape = tuple(batch_shape)
        return Mamba2State(jnp.zeros(batch_shape + (heads, d_state, head_dim), jnp.float32),
                           jnp.zeros(batch_shape + (d_conv - 1, conv_dim), jnp.float32))

    def inputs(params, conv, xs):
        """xs (*B, T, d_in) -> z (*B,T,E), x (*B,T,H,P), B, C (*B,T,N), Δ (*B,T,H), conv."""
        z, xbc, dt = jnp.split(base.dense(xs, params["w_in"]), [channels, channels + conv_dim],
                               axis=-1)
        xbc, conv = base.causal_depthwise_conv(params["conv_w"], params["conv_b"], conv, xbc)
        x, b, c = jnp.split(jax.nn.silu(xbc), [channels, channels + d_state], axis=-1)
        dt = jax.nn.softplus(dt + params["b_dt"])
        return z, x.reshape(x.shape[:-1] + (heads, head_dim)), b, c, dt, conv

    def output(params, y, x, z):
        """y (*B, T, H, P) -> (*B, T, D): the skip, the gate, the norm and W_out."""
        y = (y + params["d"][:, None] * x).reshape(z.shape)
        gated = y * jax.nn.silu(z)
        normed = gated * lax.rsqrt(jnp.mean(jnp.square(gated), -1, keepdims=True)
                                   + MAMBA2_NORM_EPS)
        return base.dense(normed * params["w_norm"], params["w_out"])

    def scan(params, state, xs):
        z, x, b, c, dt, conv = inputs(params, state.conv, xs)
        per_head = lambda u: jnp.broadcast_to(u[..., None, :, :], u.shape[:-2] + (heads,)
                                              + u.shape[-2:])  # (*B, H, T, N)
        log_a = jnp.swapaxes(dt * -jnp.exp(params["a_log"]), -1, -2)  # (*B, H, T)
        y, s_last = kernels.matrix_scan(per_head(c), per_head(b),
                                        _head_major(dt[..., None] * x), log_a, state.ssm,
                                        impl=scan_impl)
        return Mamba2State(s_last, conv), output(params, _head_major(y), x, z)

    def step(params, state, x_t):
        z, x, b, c, dt, conv = inputs(params, state.conv, x_t[..., None, :])
        z, b, c, dt, x = z[..., 0, :], b[..., 0, :], c[..., 0, :], dt[..., 0, :], x[..., 0, :, :]
        decay = jnp.exp(dt * -jnp.exp(params["a_log"]))[..., None, None]  # (*B, H, 1, 1)
        s = _outer_update(state.ssm, decay, b[..., None, :], dt[..., None] * x)
        y = _read(s, c[..., None, :])  # (*B, H, P)
        return Mamba2State(s, conv), output(params, y[..., None, :, :], x[..., None, :, :],
                                            z[..., None, :])[..., 0, :]

    return base.make_cell(
        name=name, family="matrix", d_out=d_hidden, init=jax.jit(init, static_argnums=1),
        initial_state=initial_state, step=step, scan=scan,
        input_dim=lambda p: p["w_in"].shape[0], hparams=hparams,
    )


CELLS = {
    "mamba2": make_mamba2,
    "linear_attention": make_linear_attention,
    "retnet": make_retnet,
    "gla": make_gla,
    "hgrn2": make_hgrn2,
}
