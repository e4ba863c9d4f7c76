"""A fused Pallas kernel for the matrix-state recurrence with one scalar gate per step.

    S_t = exp(g_t) S_{t-1} + k_t v_tᵀ,   y_t = S_tᵀ q_t        (RetNet, linear attention, Mamba-2)

The chunkwise-parallel form of `matrix_recurrence._chunked`, with everything of a chunk kept on
chip: one program per sequence (batch x heads flattened) walks its chunks in order, carrying the
state S (K, V) in registers (GPU) or a VMEM scratch buffer (TPU). For a chunk of C steps with
L_t the gates' cumulative sum inside it (an input, computed outside),

    y_c   = [(q kᵀ) ⊙ exp(L_t - L_s) ⊙ causal] v  +  (q ⊙ exp(L_t)) S
    S     = exp(L_C) S + (k ⊙ exp(L_C - L_s))ᵀ v,

four matmuls per chunk and only exponents of differences <= 0. XLA's chunked form writes the
(C, C) scores and every matmul's output through memory; this kernel reads q, k, v, L once and
writes y once (`python -m seqbench.bench.matrix_roofline`: up to 5-10x less time on an H100 by
the roofline bound; BUILD_NOTES.md, "GPU and TPU readiness").

- GPU (Triton): grid (rows, V / 64): the value columns split over programs (S[:, j] depends on
  v[:, j] only), so a program's state block is K x 64 in registers; the whole time axis in one
  block read chunk by chunk from global memory (no tile of it has to fit in shared memory); K,
  V and C powers of two >= 16 (Triton's `dot` rule; K and V zero-padded, which changes nothing:
  padded keys add 0 to every score, padded values give outputs that are cut off).
- TPU (Mosaic): grid (rows, T / C), chunks "arbitrary" (sequential), one (C, K) tile of q and k
  and (C, V) of v per step.

Per-key gates (GLA) need the (C, C, K) decays, which do not fit on chip; they run on the XLA
chunked form. Gradients: `matrix_recurrence` differentiates the XLA chunked form (the same
function) with a custom VJP; a backward kernel is future work.

Both kernels run in Pallas' interpreter on any backend, which is how the CPU tests check them
against the float64 reference. Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu
from jax.experimental.pallas import triton as pltriton

MIN_DIM = 16  # Triton's dot needs every dimension >= 16
BLOCK_V = 64  # GPU: value columns per program (the state block K x BLOCK_V stays in registers)


def matrix_scan(q, k, v, log_a, s0, *, chunk: int, target: str, interpret: bool = False):
    """y, s_last of the recurrence above (scalar gates) with the `target` kernel.

    Args:
      q, k: (..., T, K); v: (..., T, V), one real float dtype.
      log_a: (..., T, 1), the log gates (<= 0), float32.
      s0: (..., K, V), the state before the first step, float32.
      chunk: steps per chunk (GPU: rounded up to a power of two >= 16; TPU: to a multiple of 8).
      target: "gpu" (Triton) or "tpu" (Mosaic).
      interpret: run the kernel in Pallas' interpreter (any backend).

    Returns:
      y (..., T, V) in q's dtype and s_last (..., K, V) in s0's dtype.
    """
    if target not in ("gpu", "tpu"):
        raise ValueError(f"pallas matrix_scan: target must be 'gpu' or 'tpu'; got {target!r}")
    *lead, steps, key_dim = q.shape
    value_dim = v.shape[-1]
    rows = math.prod(lead)
    acc = s0.dtype
    if target == "gpu":
        chunk = max(MIN_DIM, _ceil_pow2(min(chunk, steps)))
        padded_k, padded_v = (max(MIN_DIM, _ceil_pow2(d)) for d in (key_dim, value_dim))
    else:
        chunk = _round_up(min(chunk, steps), 8)
        padded_k, padded_v = key_dim, value_dim
    padded_t = _round_up(steps, chunk)

    def prepare(x, features, padded_features):  # (..., T, F) -> (rows, T_pad, F_pad), zeros
        x = x.reshape(rows, steps, features)
        return jnp.pad(x, ((0, 0), (0, padded_t - steps), (0, padded_features - features)))

    q3, k3 = prepare(q, key_dim, padded_k), prepare(k, key_dim, padded_k)
    v3 = prepare(v, value_dim, padded_v)
    gates = prepare(log_a.astype(acc), 1, 1)  # padded steps: gate 0 (no decay), no input
    cum = jnp.cumsum(gates.reshape(rows, padded_t // chunk, chunk), axis=-1)
    cum_col = cum.reshape(rows, padded_t, 1)  # L_t down a chunk's rows
    cum_row = cum  # and along its columns: (rows, T_pad / C, C), one row per chunk
    s0_3d = jnp.pad(s0.reshape(rows, key_dim, value_dim).astype(acc),
                    ((0, 0), (0, padded_k - key_dim), (0, padded_v - value_dim)))
    out_shape = [jax.ShapeDtypeStruct((rows, padded_t, padded_v), q.dtype),
                 jax.ShapeDtypeStruct((rows, padded_k, padded_v), acc)]
    call = _gpu_call if target == "gpu" else _tpu_call
    y, s_last = call(q3, k3, v3, cum_col, cum_row, s0_3d, out_shape, chunk, interpret)
    y = y[:, :steps, :value_dim].reshape(*lead, steps, value_dim)
    return y, s_last[:, :key_dim, :value_dim].reshape(*lead, key_dim, value_dim)


def _round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


def _ceil_pow2(x: int) -> int:
    return 1 << (x - 1).bit_length()


def _chunk_step(q, k, v, cum_col, cum_row, s):
    """One chunk: (y (C, V), the state after it (K, V)); every input float32."""
    size = q.shape[0]
    causal = lax.broadcasted_iota(jnp.int32, (size, size), 0) >= lax.broadcasted_iota(
        jnp.int32, (size, size), 1)
    diff = jnp.where(causal, cum_col - cum_row, 0.0)  # L_t - L_s <= 0 where s <= t
    decay = jnp.where(causal, jnp.exp(diff), 0.0)
    scores = pl.dot(q, k, trans_b=True) * decay  # (C, C)
    y = pl.dot(scores, v) + pl.dot(q * jnp.exp(cum_col), s)
    end = jnp.min(cum_col, axis=0, keepdims=True)  # L_C (gates <= 0: L falls), (1, 1)
    s = jnp.exp(end) * s + pl.dot(k * jnp.exp(end - cum_col), v, trans_a=True)
    return y, s


def _gpu_kernel(q_ref, k_ref, v_ref, cum_col_ref, cum_row_ref, s0_ref, y_ref, s_ref, *, chunk):
    acc = s0_ref.dtype

    def body(c, s):
        rows = pl.ds(c * chunk, chunk)
        y, s = _chunk_step(q_ref[rows, :].astype(acc), k_ref[rows, :].astype(acc),
                           v_ref[rows, :].astype(acc), cum_col_ref[rows, :],
                           cum_row_ref[pl.ds(c, 1), :], s)
        y_ref[rows, :] = y.astype(y_ref.dtype)
        return s

    s_ref[...] = lax.fori_loop(0, q_ref.shape[0] // chunk, body, s0_ref[...])


def _gpu_call(q, k, v, cum_col, cum_row, s0, out_shape, chunk, interpret):
    rows, steps, key_dim = q.shape
    block_v = min(v.shape[-1], BLOCK_V)  # value columns are independent: S[:, j] needs v[:, j]
    shared = lambda width: pl.BlockSpec((None, steps, width), lambda n, j: (n, 0, 0))
    values = pl.BlockSpec((None, steps, block_v), lambda n, j: (n, 0, j))
    state = pl.BlockSpec((None, key_dim, block_v), lambda n, j: (n, 0, j))
    return pl.pallas_call(
        lambda *refs: _gpu_kernel(*refs, chunk=chunk),
        out_shape=out_shape,
        grid=(rows, v.shape[-1] // block_v),
        in_specs=[shared(key_dim), shared(key_dim), values, shared(1),
                  pl.BlockSpec((None, steps // chunk, chunk), lambda n, j: (n, 0, 0)), state],
        out_specs=[values, state],
        # Triton, as for `pallas_linear`: chunks are read from global memory one at a time.
        compiler_params=pltriton.CompilerParams(num_warps=4, num_stages=1),
        interpret=interpret,
        name="matrix_scan_gpu",
    )(q, k, v, cum_col, cum_row, s0)


def _tpu_kernel(q_ref, k_ref, v_ref, cum_col_ref, cum_row_ref, s0_ref, y_ref, s_ref, state_ref):
    c = pl.program_id(1)
    acc = state_ref.dtype

    @pl.when(c == 0)
    def _():
        state_ref[...] = s0_ref[...].astype(acc)

    y, s = _chunk_step(q_ref[...].astype(acc), k_ref[...].astype(acc), v_ref[...].astype(acc),
                       cum_col_ref[...], cum_row_ref[pl.ds(c, 1), :], state_ref[...])
    y_ref[...] = y.astype(y_ref.dtype)
    state_ref[...] = s

    @pl.when(c == pl.num_programs(1) - 1)
    def _():
        s_ref[...] = s


def _tpu_call(q, k, v, cum_col, cum_row, s0, out_shape, chunk, interpret):
    rows, steps, key_dim = q.shape
    value_dim = v.shape[-1]
    tile = lambda width: pl.BlockSpec((None, chunk, width), lambda n, c: (n, c, 0))
    state = pl.BlockSpec((None, key_dim, value_dim), lambda n, c: (n, 0, 0))
    return pl.pallas_call(
        _tpu_kernel,
        out_shape=out_shape,
        grid=(rows, steps // chunk),
        # the chunks' rows of L whole: a (1, C) block would break Mosaic's (8, 128) tiling
        in_specs=[tile(key_dim), tile(key_dim), tile(value_dim), tile(1),
                  pl.BlockSpec((None, steps // chunk, chunk), lambda n, c: (n, 0, 0)), state],
        out_specs=[tile(value_dim), state],
        scratch_shapes=[pltpu.VMEM((key_dim, value_dim), s0.dtype)],
        compiler_params=pltpu.CompilerParams(dimension_semantics=("parallel", "arbitrary")),
        interpret=pltpu.InterpretParams() if interpret else False,
        name="matrix_scan_tpu",
    )(q, k, v, cum_col, cum_row, s0)
