"""Causal softmax self-attention with a KV cache: the Transformer baseline as a recurrent cell.

The "state" of attention is its key/value cache, which grows with the sequence: a fixed buffer
of `max_length` slots, slot j holding the (RoPE-rotated) key and the value of the token at
absolute position j, plus a per-sequence position counter. `scan` writes a whole chunk into
the cache and attends over it with a causal mask on absolute positions; `step` is `scan` on a
chunk of one token, so stepping, scanning whole and scanning in pieces compute one function.
Shape letters: see `kernels/typing.py` (here S = max_length, H = num_heads, K = V = head_dim,
D = d_hidden = H·K).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from seqbench.cells import base

POSITIONAL = ("rope", "none")
ROPE_BASE = 10000.0


class AttentionState(NamedTuple):
    keys: jax.Array  # shape=(*B, S, H, K), dtype=float32: RoPE-rotated keys by absolute position
    values: jax.Array  # shape=(*B, S, H, V), dtype=float32
    position: jax.Array  # shape=(*B,), dtype=int32: tokens seen so far (the next write slot)


def rope(x: jax.Array, positions: jax.Array, base: float = ROPE_BASE) -> jax.Array:
    """Rotary position embedding (Su et al. 2021), "rotate half" pairing (GPT-NeoX, LLaMA).

    Feature i < K/2 is paired with i + K/2 and the pair is rotated by the angle
    positions · base^(−2i/K).

    Args:
      x: queries or keys, shape (..., T, H, K) with K even.
      positions: absolute positions, shape (..., T), integer or float.
      base: the frequency base (10000).

    Returns:
      The rotated x, shape (..., T, H, K), in x's dtype promoted with float32.
    """
    half = x.shape[-1] // 2
    freqs = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = positions.astype(jnp.float32)[..., None, None] * freqs  # (..., T, 1, K/2)
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    x1, x2 = x[..., :half], x[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def masked_softmax(scores: jax.Array, mask: jax.Array) -> jax.Array:
    """Softmax over the last axis among entries where `mask` is True; other entries get 0.

    Subtracts the row maximum first. A row with no True entry comes out all zeros (not NaN),
    and its gradient is zero.

    Args:
      scores: float array, shape (..., S).
      mask: bool array broadcastable to scores' shape.

    Returns:
      The weights, shape of `scores` broadcast with `mask`, summing to 1 (or 0) over the last axis.
    """
    scores = jnp.where(mask, scores, -jnp.inf)
    row_max = jnp.max(scores, axis=-1, keepdims=True)
    row_max = jax.lax.stop_gradient(jnp.where(jnp.isfinite(row_max), row_max, 0.0))
    weights = jnp.where(mask, jnp.exp(scores - row_max), 0.0)
    total = jnp.sum(weights, axis=-1, keepdims=True)
    return weights / jnp.where(total > 0.0, total, 1.0)


def _write(cache: jax.Array, new: jax.Array, position: jax.Array) -> jax.Array:
    """cache (*B, S, H, K) with new (*B, T, H, K) written at slots position..position+T-1 of each
    row (position (*B,), may differ per row); writes past slot S-1 are dropped."""
    batch_shape, length = position.shape, new.shape[-3]
    rows = math.prod(batch_shape)
    flat_cache = cache.reshape(rows, *cache.shape[-3:])
    slots = position.reshape(rows, 1) + jnp.arange(length, dtype=position.dtype)
    flat_cache = flat_cache.at[jnp.arange(rows)[:, None], slots].set(
        new.reshape(rows, *new.shape[-3:]), mode="drop"
    )
    return flat_cache.reshape(cache.shape)


def make_attention(
    *,
    d_hidden: int = 64,
    num_heads: int = 4,
    positional: str = "rope",
    max_length: int = 2048,
) -> base.Cell:
    """Causal multi-head softmax self-attention (Vaswani et al. 2017) with a KV cache.

        q_t = W_q x_t,  k_t = W_k x_t,  v_t = W_v x_t        (split into H heads of K = D/H)
        q_t, k_t ← RoPE(q_t, t), RoPE(k_t, t)               (absolute position t; if "rope")
        o_t = Σ_{s ≤ t} softmax_s(q_t · k_s / sqrt(K)) v_s    (per head)
        y_t = W_o [o_t^1; …; o_t^H]

    No biases, no normalisation, no MLP: those belong to the model around the cell.
    RoPE (Su et al. 2021) uses the "rotate half" pairing and base 10000; "none" uses no
    positional information at all (a causal Transformer can still infer position).

    State: the cache of keys and values for up to S = `max_length` tokens, each (*B, S, H, K),
    and the position counter (*B,) int32. A chunk of T tokens costs O(T·S·D) whatever the
    position, so pick `max_length` as the longest sequence the cell will see (the parameters do
    not depend on it: evaluate longer sequences by rebuilding the cell with a larger max_length).
    A chunk longer than max_length raises ValueError; tokens written past slot S − 1 are
    dropped, so queries past max_length see only the first max_length tokens.
    `state_size(params, T)` = 2·T·D floats (the keys and values of T tokens).

    Init: W_q, W_k, W_v ~ N(0, 1/d_in), W_o ~ N(0, 1/D) (LeCun normal).
    Parameters: 3·d_in·D + D².
    """
    name = "attention"
    for field, value in (("d_hidden", d_hidden), ("num_heads", num_heads),
                         ("max_length", max_length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"cell {name!r}: {field} must be a positive int; got {value!r}")
    if d_hidden % num_heads:
        raise ValueError(
            f"cell {name!r}: num_heads must divide d_hidden={d_hidden}; got {num_heads}"
        )
    if positional not in POSITIONAL:
        raise ValueError(
            f"cell {name!r}: positional must be one of {POSITIONAL}; got {positional!r}"
        )
    head_dim = d_hidden // num_heads
    if positional == "rope" and head_dim % 2:
        raise ValueError(
            f"cell {name!r}: positional='rope' needs an even head_dim = d_hidden / num_heads; "
            f"got {d_hidden} / {num_heads} = {head_dim}"
        )

    def init(key, d_in):
        k_q, k_k, k_v, k_o = jax.random.split(key, 4)
        return {
            "w_q": base.lecun_normal(k_q, (d_in, d_hidden), d_in),
            "w_k": base.lecun_normal(k_k, (d_in, d_hidden), d_in),
            "w_v": base.lecun_normal(k_v, (d_in, d_hidden), d_in),
            "w_o": base.lecun_normal(k_o, (d_hidden, d_hidden), d_hidden),
        }

    def initial_state(params, batch_shape):
        cache = jnp.zeros((*batch_shape, max_length, num_heads, head_dim), jnp.float32)
        return AttentionState(cache, cache, jnp.zeros(batch_shape, jnp.int32))

    def heads(params, xs, weight):
        return base.dense(xs, params[weight]).reshape(*xs.shape[:-1], num_heads, head_dim)

    def scan(params, state, xs):
        length = xs.shape[-2]
        if length > max_length:
            raise ValueError(
                f"cell {name!r}: a chunk of {length} tokens does not fit the KV cache of "
                f"max_length={max_length}; rebuild the cell with max_length >= {length}"
            )
        positions = state.position[..., None] + jnp.arange(length, dtype=jnp.int32)  # (*B, T)
        q, k, v = (heads(params, xs, w) for w in ("w_q", "w_k", "w_v"))  # (*B, T, H, K)
        if positional == "rope":
            q, k = rope(q, positions), rope(k, positions)
        keys = _write(state.keys, k, state.position)
        values = _write(state.values, v, state.position)
        scores = jnp.einsum("...tne,...sne->...nts", q, keys) / math.sqrt(head_dim)
        visible = jnp.arange(max_length) <= positions[..., None]  # (*B, T, S)
        weights = masked_softmax(scores, visible[..., None, :, :])  # (*B, H, T, S)
        out = jnp.einsum("...nts,...sne->...tne", weights, values)
        ys = base.dense(out.reshape(*xs.shape[:-1], d_hidden), params["w_o"])
        return AttentionState(keys, values, state.position + length), ys

    def step(params, state, x_t):
        state, ys = scan(params, state, x_t[..., None, :])
        return state, ys[..., 0, :]

    return base.make_cell(
        name=name, family="attention", d_out=d_hidden, init=init, initial_state=initial_state,
        step=step, scan=scan, input_dim=lambda p: p["w_q"].shape[0],
        hparams=dict(d_hidden=d_hidden, num_heads=num_heads, positional=positional,
                     max_length=max_length),
        state_size=lambda params, length=0: 2 * length * d_hidden,
        sized_for=lambda length: make_attention(d_hidden=d_hidden, num_heads=num_heads,
                                                positional=positional, max_length=length),
    )


CELLS = {"attention": make_attention}
