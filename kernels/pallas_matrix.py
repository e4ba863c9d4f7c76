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
  and (C, V) of v per step. C is a power of two >= 16 on both, so they split T alike (the
  platforms' branches of one traced program must agree on the saved states' shape).

The backward kernel (`matrix_scan_backward`) walks the chunks in reverse from the states the
forward saved at each chunk's entry (T / C of them, as XLA's chunked form keeps); the gates'
cotangent follows from dq and dk without a kernel. `matrix_recurrence` wires both into a
custom VJP. Per-key gates (GLA) need the (C, C, K) decays, which do not fit on chip; they run on
the XLA chunked form.

Both kernels run in Pallas' interpreter on any backend, which is how the CPU tests check them
against the float64 reference. Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu
from jax.experimental.pallas import triton as pltriton

MIN_DIM = 16  # Triton's dot needs every dimension >= 16
BLOCK_V = 64  # GPU: value columns per program (the state block K x BLOCK_V stays in registers)


class Layout(NamedTuple):
    """How the inputs are padded and split for a target's kernel."""

    lead: tuple  # the batch axes *B of the inputs
    steps: int  # T
    key_dim: int  # K
    value_dim: int  # V
    chunk: int  # C
    padded_t: int
    padded_k: int
    padded_v: int
    block_v: int  # value columns per program (GPU; TPU: all)

    @property
    def rows(self) -> int:
        return math.prod(self.lead)

    @property
    def chunks(self) -> int:
        return self.padded_t // self.chunk


def layout(q, v, chunk: int, target: str) -> Layout:
    """C a power of two >= 16 on either target (Triton's rule; a multiple of 8 for Mosaic), so
    both kernels split T alike; GPU: K and V powers of two >= 16, V in blocks of BLOCK_V."""
    if target not in ("gpu", "tpu"):
        raise ValueError(f"pallas matrix_scan: target must be 'gpu' or 'tpu'; got {target!r}")
    *lead, steps, key_dim = q.shape
    value_dim = v.shape[-1]
    chunk = max(MIN_DIM, _ceil_pow2(min(chunk, steps)))
    if target == "gpu":
        padded_k, padded_v = (max(MIN_DIM, _ceil_pow2(d)) for d in (key_dim, value_dim))
        block_v = min(padded_v, BLOCK_V)
    else:
        padded_k, padded_v, block_v = key_dim, value_dim, value_dim
    return Layout(tuple(lead), steps, key_dim, value_dim, chunk, _round_up(steps, chunk),
                  padded_k, padded_v, block_v)


def _pad(lay: Layout, x, padded_features):
    """(..., T, F) -> (rows, T_pad, F_pad), zero-padded."""
    x = x.reshape(lay.rows, lay.steps, x.shape[-1])
    return jnp.pad(x, ((0, 0), (0, lay.padded_t - lay.steps), (0, padded_features - x.shape[-1])))


def _pad_state(lay: Layout, s, dtype):
    s = s.reshape(lay.rows, lay.key_dim, lay.value_dim).astype(dtype)
    return jnp.pad(s, ((0, 0), (0, lay.padded_k - lay.key_dim), (0, lay.padded_v - lay.value_dim)))


def _cumulative_gates(lay: Layout, log_a, dtype):
    """L_t within each chunk, as a column (rows, T_pad, 1) and as rows (rows, chunks, C);
    padded steps have gate 0 (no decay) and no input."""
    cum = jnp.cumsum(_pad(lay, log_a.astype(dtype), 1).reshape(lay.rows, lay.chunks, lay.chunk),
                     axis=-1)
    return cum.reshape(lay.rows, lay.padded_t, 1), cum


def matrix_scan(q, k, v, log_a, s0, *, chunk: int, target: str, interpret: bool = False,
                with_states: bool = False):
    """y, s_last of the recurrence above (scalar gates) with the `target` kernel.

    Args:
      q, k: (..., T, K); v: (..., T, V), one real float dtype.
      log_a: (..., T, 1), the log gates (<= 0), float32.
      s0: (..., K, V), the state before the first step, float32.
      chunk: steps per chunk (rounded up to a power of two >= 16).
      target: "gpu" (Triton) or "tpu" (Mosaic).
      interpret: run the kernel in Pallas' interpreter (any backend).
      with_states: also return the state entering every chunk, (rows, chunks, K, V) (what
        `matrix_scan_backward` needs).

    Returns:
      y (..., T, V) in q's dtype and s_last (..., K, V) in s0's dtype (and the states).
    """
    lay = layout(q, v, chunk, target)
    acc = s0.dtype
    cum_col, cum_row = _cumulative_gates(lay, log_a, acc)
    out_shape = [jax.ShapeDtypeStruct((lay.rows, lay.padded_t, lay.padded_v), q.dtype),
                 jax.ShapeDtypeStruct((lay.rows, lay.padded_k, lay.padded_v), acc)]
    if with_states:
        out_shape.append(jax.ShapeDtypeStruct(
            (lay.rows, lay.chunks, lay.padded_k, lay.padded_v), acc))
    call = _gpu_call if target == "gpu" else _tpu_call
    outputs = call(_pad(lay, q, lay.padded_k), _pad(lay, k, lay.padded_k),
                   _pad(lay, v, lay.padded_v), cum_col, cum_row, _pad_state(lay, s0, acc),
                   out_shape, lay, interpret)
    y = outputs[0][:, :lay.steps, :lay.value_dim].reshape(*lay.lead, lay.steps, lay.value_dim)
    s_last = outputs[1][:, :lay.key_dim, :lay.value_dim].reshape(
        *lay.lead, lay.key_dim, lay.value_dim)
    if not with_states:
        return y, s_last
    return y, s_last, outputs[2][:, :, :lay.key_dim, :lay.value_dim]


def matrix_scan_backward(q, k, v, log_a, states, s_last, dy, ds_last, *, chunk: int,
                         target: str, interpret: bool = False):
    """Cotangents (dq, dk, dv, dlog_a, ds0) of `matrix_scan` for cotangents (dy, ds_last) of
    (y, s_last), from the chunk-entry `states` the forward returned (`with_states`).

    The kernel walks the chunks backwards carrying dS (the cotangent of the state after the
    chunk), with P = (Q Kᵀ) ⊙ D and dP = (dY Vᵀ) ⊙ D, D the causal decays:

        dQ = dP K + (dY S_inᵀ) ⊙ e^{L},       dK = dPᵀ Q + (V dSᵀ) ⊙ e^{L_C - L},
        dV = Pᵀ dY + (K ⊙ e^{L_C - L}) dS,    dS_in = e^{L_C} dS + (Q ⊙ e^{L})ᵀ dY.

    On a GPU each program owns BLOCK_V value columns, so dQ and dK arrive as one partial sum
    per block, added here. The gates' cotangent needs no kernel: the loss depends on the
    global cumulative gates A only through factors exp(A_t - A_s) (and exp(A_t) with s0), so
    dA_t = q_t·dq_t - k_t·dk_t (+ <ds_last, s_last> at the last step) and dlog_a_u =
    Σ_{t >= u} dA_t.
    """
    lay = layout(q, v, chunk, target)
    acc = s_last.dtype
    cum_col, cum_row = _cumulative_gates(lay, log_a, acc)
    blocks = lay.padded_v // lay.block_v
    part = jax.ShapeDtypeStruct((blocks, lay.rows, lay.padded_t, lay.padded_k), acc)
    out_shape = [part, part, jax.ShapeDtypeStruct((lay.rows, lay.padded_t, lay.padded_v), acc),
                 jax.ShapeDtypeStruct((lay.rows, lay.padded_k, lay.padded_v), acc)]
    call = _gpu_backward_call if target == "gpu" else _tpu_backward_call
    states = jnp.pad(states, ((0, 0), (0, 0), (0, lay.padded_k - lay.key_dim),
                              (0, lay.padded_v - lay.value_dim)))
    dq, dk, dv, ds0 = call(_pad(lay, q, lay.padded_k), _pad(lay, k, lay.padded_k),
                           _pad(lay, v, lay.padded_v), _pad(lay, dy.astype(acc), lay.padded_v),
                           cum_col, cum_row, states, _pad_state(lay, ds_last, acc), out_shape,
                           lay, interpret)
    unpad = lambda x, width: x[:, :lay.steps, :width].reshape(*lay.lead, lay.steps, width)
    dq, dk = unpad(jnp.sum(dq, 0), lay.key_dim), unpad(jnp.sum(dk, 0), lay.key_dim)
    d_steps = (jnp.sum(q.astype(acc) * dq, -1) - jnp.sum(k.astype(acc) * dk, -1))
    d_steps = d_steps.at[..., -1].add(jnp.sum(ds_last * s_last, (-2, -1)))
    dlog_a = jnp.flip(jnp.cumsum(jnp.flip(d_steps, -1), -1), -1)[..., None]
    ds0 = ds0[:, :lay.key_dim, :lay.value_dim].reshape(*lay.lead, lay.key_dim, lay.value_dim)
    return (dq.astype(q.dtype), dk.astype(k.dtype), unpad(dv, lay.value_dim).astype(v.dtype),
            dlog_a.astype(log_a.dtype), ds0)


def _round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


def _ceil_pow2(x: int) -> int:
    return 1 << (x - 1).bit_length()


def _decays(cum_col, cum_row):
    """(causal mask (C, C), D = exp(L_t - L_s) below the diagonal, e^{L} (C, 1), L_C (1, 1))."""
    size = cum_col.shape[0]
    causal = lax.broadcasted_iota(jnp.int32, (size, size), 0) >= lax.broadcasted_iota(
        jnp.int32, (size, size), 1)
    diff = jnp.where(causal, cum_col - cum_row, 0.0)  # L_t - L_s <= 0 where s <= t
    end = jnp.min(cum_col, axis=0, keepdims=True)  # L_C (gates <= 0: L falls), (1, 1)
    return jnp.where(causal, jnp.exp(diff), 0.0), jnp.exp(cum_col), end


def _chunk_step(q, k, v, cum_col, cum_row, s):
    """One chunk: (y (C, V), the state after it (K, V)); every input float32."""
    decay, grow, end = _decays(cum_col, cum_row)
    y = pl.dot(pl.dot(q, k, trans_b=True) * decay, v) + pl.dot(q * grow, s)
    s = jnp.exp(end) * s + pl.dot(k * jnp.exp(end - cum_col), v, trans_a=True)
    return y, s


def _chunk_backward(q, k, v, dy, cum_col, cum_row, s_in, ds):
    """One chunk backwards (`matrix_scan_backward`): (dq, dk, dv, the cotangent of s_in)."""
    decay, grow, end = _decays(cum_col, cum_row)
    to_end = jnp.exp(end - cum_col)
    scores = pl.dot(q, k, trans_b=True) * decay
    d_scores = pl.dot(dy, v, trans_b=True) * decay
    dq = pl.dot(d_scores, k) + pl.dot(dy, s_in, trans_b=True) * grow
    dk = pl.dot(d_scores, q, trans_a=True) + pl.dot(v, ds, trans_b=True) * to_end
    dv = pl.dot(scores, dy, trans_a=True) + pl.dot(k * to_end, ds)
    return dq, dk, dv, jnp.exp(end) * ds + pl.dot(q * grow, dy, trans_a=True)


def _gpu_kernel(q_ref, k_ref, v_ref, cum_col_ref, cum_row_ref, s0_ref, y_ref, s_ref,
                *states_ref, chunk):
    acc = s0_ref.dtype

    def body(c, s):
        rows = pl.ds(c * chunk, chunk)
        if states_ref:
            states_ref[0][c] = s
        y, s = _chunk_step(q_ref[rows, :].astype(acc), k_ref[rows, :].astype(acc),
                           v_ref[rows, :].astype(acc), cum_col_ref[rows, :],
                           cum_row_ref[pl.ds(c, 1), :], s)
        y_ref[rows, :] = y.astype(y_ref.dtype)
        return s

    s_ref[...] = lax.fori_loop(0, q_ref.shape[0] // chunk, body, s0_ref[...])


def _gpu_specs(lay: Layout):
    """BlockSpecs of the GPU grid (rows, V / block_v): inputs shared by the value blocks, one
    block's values, its state block, the rows of L, and the chunk-entry states."""
    shared = lambda width: pl.BlockSpec((None, lay.padded_t, width), lambda n, j: (n, 0, 0))
    values = pl.BlockSpec((None, lay.padded_t, lay.block_v), lambda n, j: (n, 0, j))
    state = pl.BlockSpec((None, lay.padded_k, lay.block_v), lambda n, j: (n, 0, j))
    cum_row = pl.BlockSpec((None, lay.chunks, lay.chunk), lambda n, j: (n, 0, 0))
    states = pl.BlockSpec((None, lay.chunks, lay.padded_k, lay.block_v),
                          lambda n, j: (n, 0, 0, j))
    return shared, values, state, cum_row, states


# Triton, as for `pallas_linear`: chunks are read from global memory one at a time.
GPU_PARAMS = pltriton.CompilerParams(num_warps=4, num_stages=1)


def _gpu_call(q, k, v, cum_col, cum_row, s0, out_shape, lay, interpret):
    shared, values, state, cum_row_spec, states = _gpu_specs(lay)
    return pl.pallas_call(
        lambda *refs: _gpu_kernel(*refs, chunk=lay.chunk),
        out_shape=out_shape,
        grid=(lay.rows, lay.padded_v // lay.block_v),
        in_specs=[shared(lay.padded_k), shared(lay.padded_k), values, shared(1), cum_row_spec,
                  state],
        out_specs=[values, state, states][:len(out_shape)],
        compiler_params=GPU_PARAMS,
        interpret=interpret,
        name="matrix_scan_gpu",
    )(q, k, v, cum_col, cum_row, s0)


def _gpu_backward_kernel(q_ref, k_ref, v_ref, dy_ref, cum_col_ref, cum_row_ref, states_ref,
                         ds_last_ref, dq_ref, dk_ref, dv_ref, ds0_ref, *, chunk):
    acc = ds_last_ref.dtype
    chunks = q_ref.shape[0] // chunk

    def body(i, ds):
        c = chunks - 1 - i
        rows = pl.ds(c * chunk, chunk)
        dq, dk, dv, ds = _chunk_backward(
            q_ref[rows, :].astype(acc), k_ref[rows, :].astype(acc), v_ref[rows, :].astype(acc),
            dy_ref[rows, :], cum_col_ref[rows, :], cum_row_ref[pl.ds(c, 1), :], states_ref[c],
            ds)
        dq_ref[rows, :], dk_ref[rows, :], dv_ref[rows, :] = dq, dk, dv
        return ds

    ds0_ref[...] = lax.fori_loop(0, chunks, body, ds_last_ref[...])


def _gpu_backward_call(q, k, v, dy, cum_col, cum_row, states, ds_last, out_shape, lay,
                       interpret):
    shared, values, state, cum_row_spec, states_spec = _gpu_specs(lay)
    partial = pl.BlockSpec((None, None, lay.padded_t, lay.padded_k), lambda n, j: (j, n, 0, 0))
    return pl.pallas_call(
        lambda *refs: _gpu_backward_kernel(*refs, chunk=lay.chunk),
        out_shape=out_shape,
        grid=(lay.rows, lay.padded_v // lay.block_v),
        in_specs=[shared(lay.padded_k), shared(lay.padded_k), values, values, shared(1),
                  cum_row_spec, states_spec, state],
        out_specs=[partial, partial, values, state],
        compiler_params=GPU_PARAMS,
        interpret=interpret,
        name="matrix_scan_backward_gpu",
    )(q, k, v, dy, cum_col, cum_row, states, ds_last)


def _tpu_kernel(q_ref, k_ref, v_ref, cum_col_ref, cum_row_ref, s0_ref, y_ref, s_ref, *rest):
    *states_ref, state_ref = rest  # the optional chunk-entry output; the VMEM state scratch
    c = pl.program_id(1)
    acc = state_ref.dtype

    @pl.when(c == 0)
    def _():
        state_ref[...] = s0_ref[...].astype(acc)

    if states_ref:
        states_ref[0][...] = state_ref[...]
    y, s = _chunk_step(q_ref[...].astype(acc), k_ref[...].astype(acc), v_ref[...].astype(acc),
                       cum_col_ref[...], cum_row_ref[pl.ds(c, 1), :], state_ref[...])
    y_ref[...] = y.astype(y_ref.dtype)
    state_ref[...] = s

    @pl.when(c == pl.num_programs(1) - 1)
    def _():
        s_ref[...] = s


def _tpu_specs(lay: Layout, chunk_index):
    """BlockSpecs of the TPU grid (rows, chunks), the chunk visited being chunk_index(c)."""
    tile = lambda width: pl.BlockSpec((None, lay.chunk, width),
                                      lambda n, c: (n, chunk_index(c), 0))
    state = pl.BlockSpec((None, lay.key_dim, lay.value_dim), lambda n, c: (n, 0, 0))
    # the chunks' rows of L whole: a (1, C) block would break Mosaic's (8, 128) tiling
    cum_row = pl.BlockSpec((None, lay.chunks, lay.chunk), lambda n, c: (n, 0, 0))
    states = pl.BlockSpec((None, None, lay.key_dim, lay.value_dim),
                          lambda n, c: (n, chunk_index(c), 0, 0))
    return tile, state, cum_row, states


TPU_PARAMS = pltpu.CompilerParams(dimension_semantics=("parallel", "arbitrary"))


def _tpu_call(q, k, v, cum_col, cum_row, s0, out_shape, lay, interpret):
    tile, state, cum_row_spec, states = _tpu_specs(lay, lambda c: c)
    return pl.pallas_call(
        _tpu_kernel,
        out_shape=out_shape,
        grid=(lay.rows, lay.chunks),
        in_specs=[tile(lay.key_dim), tile(lay.key_dim), tile(lay.value_dim), tile(1),
                  cum_row_spec, state],
        out_specs=[tile(lay.value_dim), state, states][:len(out_shape)],
        scratch_shapes=[pltpu.VMEM((lay.key_dim, lay.value_dim), s0.dtype)],
        compiler_params=TPU_PARAMS,
        interpret=pltpu.InterpretParams() if interpret else False,
        name="matrix_scan_tpu",
    )(q, k, v, cum_col, cum_row, s0)


def _tpu_backward_kernel(q_ref, k_ref, v_ref, dy_ref, cum_col_ref, cum_row_ref, states_ref,
                         ds_last_ref, dq_ref, dk_ref, dv_ref, ds0_ref, ds_ref):
    i = pl.program_id(1)
    c = pl.num_programs(1) - 1 - i
    acc = ds_ref.dtype

    @pl.when(i == 0)
    def _():
        ds_ref[...] = ds_last_ref[...]

    dq, dk, dv, ds = _chunk_backward(
        q_ref[...].astype(acc), k_ref[...].astype(acc), v_ref[...].astype(acc), dy_ref[...],
        cum_col_ref[...], cum_row_ref[pl.ds(c, 1), :], states_ref[...], ds_ref[...])
    dq_ref[...], dk_ref[...], dv_ref[...] = dq, dk, dv
    ds_ref[...] = ds

    @pl.when(i == pl.num_programs(1) - 1)
    def _():
        ds0_ref[...] = ds


def _tpu_backward_call(q, k, v, dy, cum_col, cum_row, states, ds_last, out_shape, lay,
                       interpret):
    last = lay.chunks - 1
    tile, state, cum_row_spec, states_spec = _tpu_specs(lay, lambda c: last - c)
    partial = pl.BlockSpec((None, None, lay.chunk, lay.key_dim),
                           lambda n, c: (0, n, last - c, 0))
    return pl.pallas_call(
        _tpu_backward_kernel,
        out_shape=out_shape,
        grid=(lay.rows, lay.chunks),
        in_specs=[tile(lay.key_dim), tile(lay.key_dim), tile(lay.value_dim),
                  tile(lay.value_dim), tile(1), cum_row_spec, states_spec, state],
        out_specs=[partial, partial, tile(lay.value_dim), state],
        scratch_shapes=[pltpu.VMEM((lay.key_dim, lay.value_dim), ds_last.dtype)],
        compiler_params=TPU_PARAMS,
        interpret=pltpu.InterpretParams() if interpret else False,
        name="matrix_scan_backward_tpu",
    )(q, k, v, dy, cum_col, cum_row, states, ds_last)
