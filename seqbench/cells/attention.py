"""Causal softmax self-attention with a KV cache: the Transformer baseline as a recurrent cell,
and PaTH attention (its data-dependent position encoding by accumulated Householder products).

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
from jax import lax

from seqbench.cells import base
from seqbench.cells.delta import _l2_normalise, _unit_lower_inverse

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
    """cache (*B, S, ...) with new (*B, T, ...) written at slots position..position+T-1 of each
    row (position (*B,), may differ per row); writes past slot S-1 are dropped."""
    batch_shape = position.shape
    length, tail = new.shape[len(batch_shape)], cache.shape[len(batch_shape) + 1:]
    rows = math.prod(batch_shape)
    flat_cache = cache.reshape(rows, -1, *tail)
    slots = position.reshape(rows, 1) + jnp.arange(length, dtype=position.dtype)
    flat_cache = flat_cache.at[jnp.arange(rows)[:, None], slots].set(
        new.reshape(rows, length, *tail), mode="drop"
    )
    return flat_cache.reshape(cache.shape)


def _check_chunk(name: str, length: int, max_length: int) -> int:
    """`length` if a chunk of that many tokens fits a KV cache of `max_length` slots, else a
    ValueError naming the fix."""
    if length > max_length:
        raise ValueError(
            f"cell {name!r}: a chunk of {length} tokens does not fit the KV cache of "
            f"max_length={max_length}; rebuild the cell with max_length >= {length}"
        )
    return length


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
        length = _check_chunk(name, xs.shape[-2], max_length)
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


class PathAttentionState(NamedTuple):
    keys: jax.Array  # shape=(*B, S, H, K): after token t, slot j <= t holds H_t ⋯ H_{j+1} k_j
    values: jax.Array  # shape=(*B, S, H, K)
    log_forget: jax.Array | None  # shape=(*B, S, H): Σ_{r=j+1..t} log f_r (forget_gate), else None
    conv: jax.Array  # shape=(*B, d_conv - 1, D): the last inputs of the short convolution on w
    position: jax.Array  # shape=(*B,), dtype=int32: tokens seen so far (the next write slot)


def _householder_blocks(q, k, w, beta):
    """PaTH's UT transform in blocks of C tokens (Yang et al. 2025, section 3.2), all at once.

    With H_s = I − β_s w_s w_sᵀ, let U = (I + L)⁻¹ diag(β) W and X = (I + L)⁻¹ diag(β) M with
    L = strictLower(diag(β) W Wᵀ) and M_bs = w_b·k_s for b > s (0 otherwise). Then
      H_1 ⋯ H_t = I − Σ_{c<=t} u_c w_cᵀ, so a query carried to the block start is
        q̄_t = H_1 ⋯ H_t q_t = q_t − tril(Q Wᵀ)_t U;
      a key carried to the block end is k̄_s = H_C ⋯ H_{s+1} k_s = k_s − Σ_b X_bs w_b;
      the logits inside the block are a_ts = q_tᵀ H_t ⋯ H_{s+1} k_s = (tril(Q Kᵀ) − tril(Q Wᵀ) X)_ts
    for s <= t (column s of X solves the same triangular system restricted to the tokens after s,
    so every sub-interval product of the block comes from the one inverse).

    Args:
      q, k, w: (..., C, K) head-major blocks; w of unit norm.
      beta: (..., C).

    Returns:
      (q̄ (..., C, K), k̄ (..., C, K), a (..., C, C) valid on and below the diagonal,
      u (..., C, K)).
    """
    chunk = q.shape[-2]
    mT = lambda x: jnp.swapaxes(x, -1, -2)
    strictly_lower = jnp.tril(jnp.ones((chunk, chunk), bool), -1)
    beta = beta[..., None]
    lower = jnp.where(strictly_lower, beta * (w @ mT(w)), 0.0) + jnp.eye(chunk, dtype=q.dtype)
    after_key = jnp.where(strictly_lower, w @ mT(k), 0.0)  # M_bs = w_b·k_s for b > s
    ux = _unit_lower_inverse(lower) @ jnp.concatenate([beta * w, beta * after_key], axis=-1)
    u, x = ux[..., :q.shape[-1]], ux[..., q.shape[-1]:]
    qw = jnp.tril(q @ mT(w))
    return q - qw @ u, k - mT(x) @ w, jnp.tril(q @ mT(k)) - qw @ x, u


def make_path_attention(
    *,
    d_hidden: int = 64,
    num_heads: int = 4,
    max_length: int = 2048,
    w_rank: int = 32,
    d_conv: int = 3,
    forget_gate: bool = False,
    negative_eigenvalues: bool = True,
    block_size: int = 64,
) -> base.Cell:
    """PaTH attention (Yang, Shen, Wen, Tan, Mishra, Ren, Panda & Kim 2025, "PaTH Attention:
    Position Encoding via Accumulating Householder Transformations"): causal softmax attention
    whose position encoding is a data-dependent product of Householder-like matrices.

        q_t, k_t, v_t = W_q x_t, W_k x_t, W_v x_t                  (H heads of K = D/H)
        w_t = l2norm(SiLU(conv_{d_conv}(W_w2 W_w1 x_t)))           (per head; rank-r W_w1 W_w2)
        β_t = 2σ(W_β x_t + b_β) ∈ (0, 2)   (σ(·) ∈ (0, 1) without negative_eigenvalues)
        H_t = I − β_t w_t w_tᵀ
        o_t = Σ_{s<=t} softmax_s(K^(−1/2) (q_tᵀ H_t H_{t−1} ⋯ H_{s+1} k_s + F_t − F_s)) v_s
        y_t = W_o [o_t^1; …; o_t^H]

    (the product is empty for s = t). With `forget_gate` (PaTH-FoX), F_t = Σ_{r<=t} log σ(W_f
    x_r + b_f) per head, the Forgetting Transformer's bias; without, F = 0. Conventions of
    flash-linear-attention's `PaTHAttention` layer and `parallel_path_attention`, the authors'
    code: the low-rank w projection (r = `w_rank`; 0 = one d_in × D matrix), the short
    convolution with SiLU on w (`d_conv` = 0: none, and no SiLU, its `use_w_shortconv=False`),
    β = 2σ (its only setting), and the 1/sqrt(K) scale applied to the forget-gate bias as well
    as to q·k (its reference adds F before scaling); its optional q/k RMSNorm is left out.

    State (decoding by in-place key updates, the paper's section 3.3): the cache holds every key
    carried to the last token seen, k_j ← H_t k_j at each new token t, so a new query needs only
    q_t·(cached key); plus the values, the forget-gate sums, the conv inputs and the position.
    `scan` processes a chunk in blocks of C = `block_size` tokens: the UT transform of each
    block (`_householder_blocks`) gives its queries carried to the block start (against the
    cache), its logits inside the block, and its keys carried to the block end; then the cache
    is carried through the whole block, k ← H_C ⋯ H_1 k = k − Σ_c w_c (u_c·k), a rank-C update.
    Cost O(T·S·D) for a chunk of T tokens, as `attention`; `step` is `scan` on one token.
    `max_length`, `sized_for` and `state_size` (2·T·D floats, + T·H with the gate, + the conv
    inputs) as for `attention`.

    Init: W_q, W_k, W_v, W_w1, W_β, W_f ~ N(0, 1/d_in), W_w2 ~ N(0, 1/r), W_o ~ N(0, 1/D)
    (LeCun normal), b_β = b_f = 0, conv weights ~ U(±1/sqrt(d_conv)) (PyTorch's default).
    Parameters: 3·d_in·D + D² + r·(d_in + D) + d_conv·D + (d_in + 1)·H (+ (d_in + 1)·H with the
    gate); d_in·D in place of r·(d_in + D) with w_rank = 0.
    """
    name = "path_attention"
    for field, value in (("d_hidden", d_hidden), ("num_heads", num_heads),
                         ("max_length", max_length), ("block_size", block_size)):
        base.check_int(name, field, value)
    base.check_int(name, "w_rank", w_rank, minimum=0)
    base.check_int(name, "d_conv", d_conv, minimum=0)
    base.check_bool(name, "forget_gate", forget_gate)
    base.check_bool(name, "negative_eigenvalues", negative_eigenvalues)
    head_dim = base.head_dim(name, d_hidden, num_heads)
    hparams = dict(d_hidden=d_hidden, num_heads=num_heads, max_length=max_length, w_rank=w_rank,
                   d_conv=d_conv, forget_gate=forget_gate,
                   negative_eigenvalues=negative_eigenvalues, block_size=block_size)

    def init(key, d_in):
        keys = jax.random.split(key, 8)
        params = {f"w_{n}": base.lecun_normal(k, (d_in, d_hidden), d_in)
                  for n, k in zip("qkv", keys[:3])}
        params["w_o"] = base.lecun_normal(keys[3], (d_hidden, d_hidden), d_hidden)
        if w_rank:
            params["w_w1"] = base.lecun_normal(keys[4], (d_in, w_rank), d_in)
            params["w_w2"] = base.lecun_normal(keys[5], (w_rank, d_hidden), w_rank)
        else:
            params["w_w"] = base.lecun_normal(keys[4], (d_in, d_hidden), d_in)
        if d_conv:
            params["conv_w"] = base.uniform_init(keys[6], (d_conv, d_hidden), d_conv)
        params["w_beta"] = base.lecun_normal(keys[7], (d_in, num_heads), d_in)
        params["b_beta"] = jnp.zeros((num_heads,), jnp.float32)
        if forget_gate:
            params["w_f"] = base.lecun_normal(jax.random.fold_in(key, 8), (d_in, num_heads), d_in)
            params["b_f"] = jnp.zeros((num_heads,), jnp.float32)
        return params

    def initial_state(params, batch_shape):
        batch_shape = tuple(batch_shape)
        cache = jnp.zeros(batch_shape + (max_length, num_heads, head_dim), jnp.float32)
        log_forget = (jnp.zeros(batch_shape + (max_length, num_heads), jnp.float32)
                      if forget_gate else None)
        conv = jnp.zeros(batch_shape + (max(d_conv - 1, 0), d_hidden), jnp.float32)
        return PathAttentionState(cache, cache, log_forget, conv, jnp.zeros(batch_shape, jnp.int32))

    def features(params, conv, xs):
        """xs (*B, T, d_in) -> q, k, v, w (*B, T, H, K), β, log f (*B, T, H) (None without the
        gate), the conv buffer."""
        lead = xs.shape[:-1] + (num_heads, head_dim)
        q, k, v = (base.dense(xs, params[f"w_{n}"]).reshape(lead) for n in "qkv")
        w = (base.dense(base.dense(xs, params["w_w1"]), params["w_w2"]) if w_rank
             else base.dense(xs, params["w_w"]))
        if d_conv:
            w, conv = base.causal_depthwise_conv(params["conv_w"], 0.0, conv, w)
            w = jax.nn.silu(w)
        w = _l2_normalise(w.reshape(lead))
        beta = jax.nn.sigmoid(base.dense(xs, params["w_beta"]) + params["b_beta"])
        beta = beta * (2.0 if negative_eigenvalues else 1.0)
        log_f = (jax.nn.log_sigmoid(base.dense(xs, params["w_f"]) + params["b_f"])
                 if forget_gate else None)
        return q, k, v, w, beta, log_f, conv

    def scan(params, state, xs):
        length = _check_chunk(name, xs.shape[-2], max_length)
        q, k, v, w, beta, log_f, conv = features(params, state.conv, xs)
        batch_ndim = xs.ndim - 2
        block = min(block_size, length)
        num_blocks = math.ceil(length / block)

        def blocked(x):  # (*B, T, H, ...) -> (*B, H, M, C, ...), padded steps all zero
            x = jnp.moveaxis(x, batch_ndim, batch_ndim + 1)
            pad = [(0, 0)] * x.ndim
            pad[batch_ndim + 1] = (0, num_blocks * block - length)
            x = jnp.pad(x, pad)
            return x.reshape(*x.shape[:batch_ndim + 1], num_blocks, block,
                             *x.shape[batch_ndim + 2:])

        q, k, v, w, beta = map(blocked, (q, k, v, w, beta))
        q_bar, k_bar, logits_in, u = _householder_blocks(q, k, w, beta)
        # F within the block (*B, H, M, C); None (an empty pytree for lax.scan) without the gate
        f = jnp.cumsum(blocked(log_f), axis=-1) if forget_gate else None
        causal = jnp.tril(jnp.ones((block, block), bool))
        slots = jnp.arange(max_length)
        token_major = lambda x: jnp.moveaxis(x, -3, -2)  # (*B, H, C, ...) -> (*B, C, H, ...)

        def body(cache, inputs):
            keys, values, log_forget = cache
            q_bar, k_bar, logits_in, u, w, v, f, index = inputs
            start = state.position + index * block  # (*B,)
            across = jnp.einsum("...nck,...snk->...ncs", q_bar, keys)  # (*B, H, C, S)
            within = logits_in
            if forget_gate:
                across = across + jnp.moveaxis(log_forget, -1, -2)[..., None, :] + f[..., None]
                within = within + f[..., :, None] - f[..., None, :]
            lead = start.shape + (1, block)
            visible = jnp.broadcast_to((slots < start[..., None])[..., None, None, :],
                                       lead + (max_length,))  # (*B, 1, C, S)
            mask = jnp.concatenate([visible, jnp.broadcast_to(causal, lead + (block,))], axis=-1)
            scores = jnp.concatenate([across, within], axis=-1) / math.sqrt(head_dim)
            weights = masked_softmax(scores, mask)
            out = (jnp.einsum("...ncs,...snk->...nck", weights[..., :max_length], values)
                   + weights[..., max_length:] @ v)
            keys = keys - jnp.einsum("...snc,...nck->...snk",
                                     jnp.einsum("...snk,...nck->...snc", keys, u), w)
            keys = _write(keys, token_major(k_bar), start)
            values = _write(values, token_major(v), start)
            if forget_gate:
                total = f[..., -1]  # (*B, H)
                log_forget = _write(log_forget + total[..., None, :],
                                    jnp.swapaxes(total[..., None] - f, -1, -2), start)
            return (keys, values, log_forget), out

        inputs = tuple(None if x is None else jnp.moveaxis(x, batch_ndim + 1, 0)
                       for x in (q_bar, k_bar, logits_in, u, w, v, f)) + (jnp.arange(num_blocks),)
        (keys, values, log_forget), out = lax.scan(
            body, (state.keys, state.values, state.log_forget), inputs)
        out = jnp.moveaxis(out, 0, batch_ndim + 1)  # (*B, H, M, C, K)
        out = out.reshape(*out.shape[:batch_ndim + 1], num_blocks * block, head_dim)
        out = jnp.moveaxis(out[..., :length, :], batch_ndim, batch_ndim + 1)
        ys = base.dense(out.reshape(*xs.shape[:-1], d_hidden), params["w_o"])
        return PathAttentionState(keys, values, log_forget, conv, state.position + length), ys

    def step(params, state, x_t):
        state, ys = scan(params, state, x_t[..., None, :])
        return state, ys[..., 0, :]

    def state_size(params, length=0):
        return (2 * length * d_hidden + (length * num_heads if forget_gate else 0)
                + max(d_conv - 1, 0) * d_hidden)

    return base.make_cell(
        name=name, family="attention", d_out=d_hidden, init=init, initial_state=initial_state,
        step=step, scan=scan, input_dim=lambda p: p["w_q"].shape[0], hparams=hparams,
        state_size=state_size,
        sized_for=lambda length: make_path_attention(**{**hparams, "max_length": length}),
        cache_rewritten=True,
    )


CELLS = {"attention": make_attention, "path_attention": make_path_attention}
