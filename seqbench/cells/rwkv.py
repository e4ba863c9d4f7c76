"""RWKV-7 "Goose" (Peng et al. 2025): the generalised delta rule with vector-valued decay and an
in-context learning rate (family "matrix").

Per head, with the state S (K x V, keys on the rows) and a diagonal-plus-rank-one transition,

    S_t = (diag(w_t) + b_t a_tᵀ) S_{t−1} + k_t v_tᵀ,        o_t = S_tᵀ r_t,

where RWKV-7 sets a = −κ̂ and b = κ̂ ⊙ α (κ̂ a normalised key, α ∈ (0, 1) the in-context learning
rate): diag(w) − (κ̂ ⊙ α) κ̂ᵀ, a decayed delta rule whose removal strength varies per channel.
`scan` runs the chunkwise form `_dplr_chunked` (a UT transform like `cells.delta`'s, with
per-key decays) or a sequential `lax.scan` (`_dplr_sequential`).

Shape letters: see `kernels/typing.py` (D = d_hidden, P = D / H per head).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from seqbench.cells import base
from seqbench.cells.delta import _unit_lower_inverse

LOG_DECAY_BOUND = -math.exp(-0.5)  # log w = −e^{−1/2} σ(·) ∈ (−0.6065, 0): w_t ∈ (0.545, 1)
NORMALISE_EPS = 1e-12  # κ̂ = u / max(|u|, eps): torch's F.normalize, fla's unfused path


class RWKV7State(NamedTuple):
    s: jax.Array  # shape=(*B, H, P, P): the state of each head (keys on the rows)
    x_prev: jax.Array  # shape=(*B, d_in): the previous input (the token shift)


# ----------------------------------------------------------------------------- the recurrence


def _dplr_step(s, r, log_w, k, v, a, b):
    """S ← diag(exp log_w) S + b (aᵀ S) + k vᵀ (every term from the old S), o = Sᵀ r.
    s (..., K, V); r, log_w, k, a, b (..., K); v (..., V)."""
    a_s = jnp.einsum("...k,...kv->...v", a, s)
    s = (jnp.exp(log_w)[..., None] * s + b[..., :, None] * a_s[..., None, :]
         + k[..., :, None] * v[..., None, :])
    return s, jnp.einsum("...k,...kv->...v", r, s)


def _dplr_sequential(r, log_w, k, v, a, b, s0):
    """lax.scan of `_dplr_step` over the time axis -2 (the reference form)."""
    inputs = tuple(jnp.moveaxis(u, -2, 0) for u in (r, log_w, k, v, a, b))
    s_last, o = lax.scan(lambda s, x: _dplr_step(s, *x), s0, inputs)
    return jnp.moveaxis(o, 0, -2), s_last


def _dplr_chunked(r, log_w, k, v, a, b, s0, chunk_size):
    """The diagonal-plus-rank-one recurrence chunkwise, exact up to rounding.

    In a chunk entering with S0, let G_t = Σ_{s<=t} log w_s (per key) and Γ_t = exp(G_t). Then
    S_t = Γ_t ⊙ S0 + Σ_{s<=t} (Γ_t / Γ_s) ⊙ (b_s u_sᵀ + k_s v_sᵀ) with u_t = S_{t−1}ᵀ a_t, and
    with ã_t = Γ_{t−1} ⊙ a_t, b̂_s = b_s / Γ_s, k̂_s = k_s / Γ_s the u's solve the unit lower-
    triangular system (I − tril(Ã B̂ᵀ, −1)) U = Ã S0 + tril(Ã K̂ᵀ, −1) V (the UT transform).
    Then O = (Γ ⊙ R) S0 + causal(R̃ B̂ᵀ) U + causal(R̃ K̂ᵀ) V with R̃ = Γ ⊙ R, and
    S_end = Γ_C ⊙ (S0 + B̂ᵀ U + K̂ᵀ V); only S0 → S_end runs chunk after chunk. The factors
    1 / Γ_s grow within a chunk: RWKV-7's decay w > 0.545 keeps them below e^{0.61 C} (1.6e4 at
    the default C = 16). Shapes: r, log_w, k, a, b (..., T, K), v (..., T, V), s0 (..., K, V).
    """
    *lead, steps, _ = r.shape
    value_dim = v.shape[-1]
    chunk = min(chunk_size, steps)
    num_chunks = math.ceil(steps / chunk)
    pad = num_chunks * chunk - steps

    def split(x):  # (..., T, F) -> (..., M, C, F); padded steps: w = 1 and nothing else
        x = jnp.pad(x, [(0, 0)] * len(lead) + [(0, pad), (0, 0)])
        return x.reshape(*lead, num_chunks, chunk, x.shape[-1])

    r, log_w, k, v, a, b = (split(u) for u in (r, log_w, k, v, a, b))
    g = jnp.cumsum(log_w, axis=-2)  # G (..., M, C, K)
    a_t, r_t = jnp.exp(g - log_w) * a, jnp.exp(g) * r
    b_h, k_h = jnp.exp(-g) * b, jnp.exp(-g) * k
    mT = lambda x: jnp.swapaxes(x, -1, -2)
    strictly_lower = jnp.tril(jnp.ones((chunk, chunk), bool), -1)
    causal = jnp.tril(jnp.ones((chunk, chunk), bool))
    inverse = _unit_lower_inverse(jnp.eye(chunk, dtype=r.dtype)
                                  - jnp.where(strictly_lower, a_t @ mT(b_h), 0.0))
    w_mat = inverse @ a_t  # U = W S0 + U'
    u_part = inverse @ (jnp.where(strictly_lower, a_t @ mT(k_h), 0.0) @ v)
    decay_chunk = jnp.exp(g[..., -1, :])[..., None]  # Γ_C (..., M, K, 1)

    def carry(s, inputs):
        b_c, k_c, v_c, w_c, u_c, decay_c = inputs
        return decay_c * (s + mT(b_c) @ (w_c @ s + u_c) + mT(k_c) @ v_c), s

    s_last, s_enter = lax.scan(carry, s0, tuple(jnp.moveaxis(x, -3, 0) for x in (
        b_h, k_h, v, w_mat, u_part, decay_chunk)))
    s_enter = jnp.moveaxis(s_enter, 0, -3)  # (..., M, K, V)
    u = w_mat @ s_enter + u_part
    o = (r_t @ s_enter + jnp.where(causal, r_t @ mT(b_h), 0.0) @ u
         + jnp.where(causal, r_t @ mT(k_h), 0.0) @ v)
    return o.reshape(*lead, num_chunks * chunk, value_dim)[..., :steps, :], s_last


# ----------------------------------------------------------------------------- the layer


def _lora_rank(scale: float, d_hidden: int, head_dim: int = 64) -> int:
    """flash-linear-attention's default LoRA width: max(32, round(scale·sqrt(D)·P/64 / 32)·32)."""
    return max(32, int(round(scale * math.sqrt(d_hidden) * head_dim / 64 / 32) * 32))


def make_rwkv7(
    *,
    d_hidden: int = 64,
    num_heads: int = 4,
    chunked: bool = True,
    chunk_size: int = 16,
) -> base.Cell:
    """RWKV-7's time mixing (Peng et al. 2025, "RWKV-7 'Goose' with Expressive Dynamic State
    Evolution"), as flash-linear-attention's `RWKV7Attention` computes it for the first layer
    (read 2026-12-01). With x̄_c = x_t + (x_{t−1} − x_t) ⊙ μ_c (the token shift, x_{−1} = 0 at the
    start of a sequence) for c ∈ {r, w, k, v, a, g} and LoRA(x) = f(x A) B (+ bias):

        r = x̄_r W_r,  k = x̄_k W_k,  v = x̄_v W_v                          (D each, H heads of P)
        log w = −e^{−1/2} σ(LoRA_w(x̄_w)),  f = tanh     α = σ(LoRA_α(x̄_a))    g = LoRA_g(x̄_g), f = σ, no bias
        κ̂ = u / max(|u|, 1e-12), u = k ⊙ ζ per head;  k ← k ⊙ (1 + (α − 1) ⊙ ξ)   (ζ = k_k, ξ = k_a)
        S_t = (diag(w) − (κ̂ ⊙ α) κ̂ᵀ) S_{t−1} + k vᵀ,   o = Sᵀ r                (per head)
        y = W_o [(GroupNorm_H(o) + (Σ_P r ⊙ k ⊙ ρ) v) ⊙ g]                        (ρ = r_k)

    GroupNorm_H: per head, eps P·1e-5, weight and bias. The recurrence is `_dplr_chunked` (chunks
    of `chunk_size`) or `_dplr_sequential`. Only the first layer's form: the value residual of
    later RWKV-7 layers (v lerped toward the first layer's) needs the model to pass v_first.
    Init (fla's for layer 0 of many): μ_c = 1 − (n/d_in)^p_c with p = 0.2, 0.9, 0.7, 0.7, 0.9, 0.2
    for r, w, k, v, a, g; the decay bias −6 + 6n/(D−1) + 0.5 + 2.5 zigzag; the α bias −0.19 +
    0.3 zigzag + 0.4 (n/(D−1) − 0.5); ζ = 0.71 − 0.1 (n/(D−1) − 0.5), ξ = 1.02, ρ = −0.04;
    W_r, W_v orthogonal, W_k orthogonal x 0.1, W_o = 0; the norm's weight 1, bias 0. LoRA: A = 0,
    B ~ N(0, 0.1²/rank) (our choice). Ranks: fla's defaults for D (32 below D = 164).
    """
    name = "rwkv7"
    heads, head_dim = num_heads, base.head_dim(name, d_hidden, num_heads)
    base.check_bool(name, "chunked", chunked)
    base.check_int(name, "chunk_size", chunk_size)
    hparams = dict(d_hidden=d_hidden, num_heads=num_heads, chunked=chunked,
                   chunk_size=chunk_size)
    ranks = {"w": _lora_rank(2.5, d_hidden, head_dim), "a": _lora_rank(2.5, d_hidden, head_dim),
             "g": max(32, int(round(5 * math.sqrt(d_hidden) / 32) * 32))}
    mix_powers = np.array([0.2, 0.9, 0.7, 0.7, 0.9, 0.2], np.float32)  # r, w, k, v, a, g

    def init(key, d_in):
        keys = jax.random.split(key, 7)
        n = np.arange(d_hidden, dtype=np.float32)
        linear = n / max(d_hidden - 1, 1) - 0.5
        zigzag = ((n % head_dim) - (head_dim - 1) / 2) / max((head_dim - 1) / 2, 1)
        zigzag = zigzag * np.abs(zigzag)
        orthogonal = jax.nn.initializers.orthogonal()
        params = {
            "mix": 1.0 - (np.arange(d_in, dtype=np.float32) / d_in)[None, :] ** mix_powers[:, None],
            "w_r": orthogonal(keys[0], (d_in, d_hidden)),
            "w_k": 0.1 * orthogonal(keys[1], (d_in, d_hidden)),
            "w_v": orthogonal(keys[2], (d_in, d_hidden)),
            "w_o": jnp.zeros((d_hidden, d_hidden), jnp.float32),
            "k_k": 0.71 - 0.1 * linear, "k_a": np.full(d_hidden, 1.02, np.float32),
            "r_k": np.full((heads, head_dim), -0.04, np.float32),
            "norm_w": np.ones(d_hidden, np.float32), "norm_b": np.zeros(d_hidden, np.float32),
            "b_w": -6.0 + 6.0 * (linear + 0.5) + 0.5 + 2.5 * zigzag,
            "b_a": -0.19 + 0.3 * zigzag + 0.4 * linear,
        }
        for (lora, rank), k in zip(ranks.items(), keys[3:6]):
            params[f"lora_{lora}_a"] = jnp.zeros((d_in, rank), jnp.float32)
            params[f"lora_{lora}_b"] = 0.1 / math.sqrt(rank) * jax.random.normal(
                k, (rank, d_hidden), jnp.float32)
        return jax.tree_util.tree_map(jnp.asarray, params)

    def initial_state(params, batch_shape):
        batch_shape = tuple(batch_shape)
        return RWKV7State(jnp.zeros(batch_shape + (heads, head_dim, head_dim), jnp.float32),
                          jnp.zeros(batch_shape + (params["mix"].shape[1],), jnp.float32))

    def split(u):
        return u.reshape(u.shape[:-1] + (heads, head_dim))

    def features(params, x_prev, xs):
        """xs (*B, T, d_in) -> r, log w, k, v, a, b (*B, T, H, P), α-corrected k, g (*B, T, D)."""
        shifted = jnp.concatenate([x_prev[..., None, :], xs[..., :-1, :]], axis=-2)
        xr, xw, xk, xv, xa, xg = (xs + (shifted - xs) * params["mix"][c] for c in range(6))
        lora = lambda x, which, f: base.dense(f(base.dense(x, params[f"lora_{which}_a"])),
                                              params[f"lora_{which}_b"])
        log_w = LOG_DECAY_BOUND * jax.nn.sigmoid(lora(xw, "w", jnp.tanh) + params["b_w"])
        alpha = jax.nn.sigmoid(lora(xa, "a", lambda u: u) + params["b_a"])
        g = lora(xg, "g", jax.nn.sigmoid)
        r, k, v = (base.dense(x, params[w]) for x, w in ((xr, "w_r"), (xk, "w_k"), (xv, "w_v")))
        kappa = split(k * params["k_k"])
        kappa = kappa / jnp.maximum(jnp.linalg.norm(kappa, axis=-1, keepdims=True),
                                    NORMALISE_EPS)
        k = k * (1.0 + (alpha - 1.0) * params["k_a"])
        return (split(r), split(log_w), split(k), split(v), -kappa, kappa * split(alpha)), g

    def output(params, o, r, k, v, g):
        """o (*B, T, H, P) -> (*B, T, D): the group norm, the bonus (r·k ρ) v, the gate, W_o."""
        normed = base.layer_norm(o, head_dim * 1e-5).reshape(g.shape)
        normed = normed * params["norm_w"] + params["norm_b"]
        bonus = jnp.sum(r * k * params["r_k"], -1, keepdims=True) * v
        return base.dense((normed + bonus.reshape(g.shape)) * g, params["w_o"])

    def scan(params, state, xs):
        (r, log_w, k, v, a, b), g = features(params, state.x_prev, xs)
        head_major = lambda u: jnp.swapaxes(u, -2, -3)
        inputs = tuple(head_major(u) for u in (r, log_w, k, v, a, b))
        if chunked:
            o, s_last = _dplr_chunked(*inputs, state.s, chunk_size)
        else:
            o, s_last = _dplr_sequential(*inputs, state.s)
        return RWKV7State(s_last, xs[..., -1, :]), output(params, head_major(o), r, k, v, g)

    def step(params, state, x_t):
        (r, log_w, k, v, a, b), g = features(params, state.x_prev, x_t[..., None, :])
        at = lambda u: u[..., 0, :, :]
        s, o = _dplr_step(state.s, at(r), at(log_w), at(k), at(v), at(a), at(b))
        y = output(params, o[..., None, :, :], r, k, v, g)
        return RWKV7State(s, x_t), y[..., 0, :]

    return base.make_cell(
        name=name, family="matrix", d_out=d_hidden, init=jax.jit(init, static_argnums=1),
        initial_state=initial_state, step=step, scan=scan,
        input_dim=lambda p: p["mix"].shape[1], hparams=hparams,
    )


CELLS = {"rwkv7": make_rwkv7}
