"""The matrix-state recurrence of the linear-attention family.

    S_t = diag(a_t) S_{t-1} + k_t v_tᵀ,     y_t = S_tᵀ q_t,       S_t: (K, V)

with a_t = exp(log_a_t) either one scalar per step (RetNet's fixed decay, Mamba-2 style gates)
or one gate per key dimension (GLA, Yang et al. 2024); no gate is plain linear attention
(Katharopoulos et al. 2020). Gates are passed in log space, log_a <= 0.

Implementations:

- ``"sequential"``: `lax.scan` over time carrying S (the reference; O(T K V) work, T steps).
- ``"pallas"``: the chunked form below fused into one Pallas kernel, scalar gates only
  (`kernels.pallas_matrix`).
- ``"chunked"``: the chunkwise-parallel form (GLA, Yang et al. 2024, section 3). With
  L_t = sum of log_a over the chunk up to t, a chunk of C steps entering with state S0 gives

      y_t   = (exp(L_t) ⊙ q_t)ᵀ S0 + sum_{s<=t} [q_t · (exp(L_t - L_s) ⊙ k_s)] v_s
      S_end = exp(L_C) ⊙ S0 + sum_s (exp(L_C - L_s) ⊙ k_s) v_sᵀ,

  the sums being matmuls inside the chunk and the chunk-to-chunk carry a diagonal linear scan
  over the K·V entries of S (`kernels.linear_scan`). Only differences L_t - L_s with s <= t are
  exponentiated, and those are <= 0: no overflow however strong the decay (the
  q ⊙ exp(L), k ⊙ exp(-L) factorisation overflows; this does not). The per-key form
  materialises a (C, C, K) decay tensor per chunk; scalar gates need only (C, C). Hence the
  default chunk: 32 steps for scalar gates, 16 for per-key ones, where the (C, C, K) tensor
  dominates (on a CPU chunk 16 runs forward and backward 1.3-1.8x faster than 32 for
  K = 16..128; BUILD_NOTES, "matrix_scan's chunk for per-key gates"). Measured on a CPU only:
  a GPU session should time the chunks there (`seqbench.bench.matrix_roofline`'s last column).

Autodiff runs through the chunked form (matmuls and one linear scan with its custom VJP).

Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

from .linear_recurrence import linear_scan
from .typing import accumulation_dtype

MATRIX_IMPLS = ("sequential", "chunked", "pallas")
DEFAULT_MATRIX_CHUNK = 32  # scalar gates or none
PER_KEY_CHUNK = 16  # per-key gates: the (C, C, K) decays grow with C


def matrix_scan(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    log_a: jax.Array | None = None,
    s0: jax.Array | None = None,
    *,
    impl: str = "auto",
    chunk_size: int | None = None,
    interpret: str | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Runs S_t = diag(exp(log_a_t)) S_{t-1} + k_t v_tᵀ, y_t = S_tᵀ q_t over the time axis -2.

    Args:
      q, k: queries and keys, shape (..., T, K); q, k and v share one real floating dtype.
      v: values, shape (..., T, V).
      log_a: log of the decay, <= 0: shape (..., T) (one gate per step) or (..., T, K) (one per
        key dimension); None for no decay.
      s0: the state before the first step, (..., K, V); None for zeros.
      impl: "auto" (= "chunked"), "sequential", "chunked" or "pallas" (scalar gates only: the
        fused kernels of `kernels.pallas_matrix`, forward and backward, for the platform
        compiled for: Triton on CUDA, Mosaic on TPU, the GPU kernels in Pallas' interpreter
        elsewhere).
      chunk_size: steps per chunk of "chunked" and "pallas" (default: 32 for scalar gates or
        none, 16 for per-key gates).
      interpret: with impl="pallas", run the "gpu" or "tpu" kernel in Pallas' interpreter on
        any backend (how the CPU tests check them).

    Returns:
      y: the outputs, shape (..., T, V), in q's dtype.
      s_last: the state after the last step, shape (..., K, V), in the accumulation dtype
        (>= float32).
    """
    q, k, v, log_a, s0 = _check_inputs(q, k, v, log_a, s0)
    if impl not in ("auto",) + MATRIX_IMPLS:
        raise ValueError(
            f"matrix_scan: unknown impl {impl!r}; valid: 'auto', "
            + ", ".join(repr(i) for i in MATRIX_IMPLS)
        )
    if chunk_size is None:
        chunk_size = DEFAULT_MATRIX_CHUNK if log_a.shape[-1] == 1 else PER_KEY_CHUNK
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"matrix_scan: chunk_size must be a positive int; got {chunk_size!r}")
    if interpret is not None and (impl != "pallas" or interpret not in ("gpu", "tpu")):
        raise ValueError(f"matrix_scan: interpret must be 'gpu' or 'tpu' and needs "
                         f"impl='pallas'; got interpret={interpret!r}, impl={impl!r}")
    if impl == "sequential":
        return _sequential(q, k, v, log_a, s0)
    if impl == "pallas":
        if log_a.shape[-1] != 1:
            raise ValueError("matrix_scan: impl='pallas' takes one gate per step, log_a (..., T); "
                             "per-key gates (..., T, K) need the (C, C, K) decays, which the "
                             "kernel cannot hold on chip: use impl='chunked'")
        return _pallas(q, k, v, log_a, s0, chunk_size, interpret)
    return _chunked(q, k, v, log_a, s0, chunk_size)


def _pallas(q, k, v, log_a, s0, chunk_size, interpret):
    """The fused kernels, forward and backward (`kernels.pallas_matrix`), for the platform
    being compiled for (Triton on CUDA, Mosaic on TPU, the GPU kernels in Pallas' interpreter
    elsewhere; `interpret` forces the named kernels' interpreter on any platform)."""
    from . import pallas_matrix

    def on_platform(fn, *args):
        kernel = lambda target, interpreted: lambda *a: fn(*a, chunk=chunk_size, target=target,
                                                           interpret=interpreted)
        if interpret is not None:
            return kernel(interpret, True)(*args)
        return lax.platform_dependent(*args, cuda=kernel("gpu", False), tpu=kernel("tpu", False),
                                      default=kernel("gpu", True))

    @jax.custom_vjp
    def run(q, k, v, log_a, s0):
        return on_platform(pallas_matrix.matrix_scan, q, k, v, log_a, s0)

    def forward(q, k, v, log_a, s0):
        y, s_last, states = on_platform(
            functools.partial(pallas_matrix.matrix_scan, with_states=True), q, k, v, log_a, s0)
        return (y, s_last), (q, k, v, log_a, states, s_last)

    def backward(saved, cotangents):
        return on_platform(pallas_matrix.matrix_scan_backward, *saved, *cotangents)

    run.defvjp(forward, backward)
    return run(q, k, v, log_a, s0)


def _check_inputs(q, k, v, log_a, s0):
    q, k, v = jnp.asarray(q), jnp.asarray(k), jnp.asarray(v)
    if q.ndim < 2 or q.shape != k.shape:
        raise ValueError(
            f"matrix_scan: q and k must have the same shape (..., T, K); "
            f"got q.shape={q.shape} and k.shape={k.shape}"
        )
    if v.shape[:-1] != q.shape[:-1]:
        raise ValueError(
            f"matrix_scan: v must have shape (..., T, V) with (..., T) = {q.shape[:-1]}; "
            f"got v.shape={v.shape} for q.shape={q.shape}"
        )
    if not (q.dtype == k.dtype == v.dtype) or not jnp.issubdtype(q.dtype, jnp.floating):
        raise TypeError(
            f"matrix_scan: q, k, v must share one real floating dtype; "
            f"got {q.dtype}, {k.dtype}, {v.dtype}"
        )
    acc = accumulation_dtype(q.dtype)
    if log_a is None:
        log_a = jnp.zeros(q.shape[:-1] + (1,), acc)
    else:
        log_a = jnp.asarray(log_a)
        if log_a.shape == q.shape[:-1]:
            log_a = log_a[..., None]
        elif log_a.shape != q.shape:
            raise ValueError(
                f"matrix_scan: log_a must have shape (..., T) = {q.shape[:-1]} or (..., T, K) = "
                f"{q.shape}; got log_a.shape={log_a.shape}"
            )
        log_a = log_a.astype(acc)
    state_shape = q.shape[:-2] + (q.shape[-1], v.shape[-1])
    if s0 is None:
        s0 = jnp.zeros(state_shape, acc)
    else:
        s0 = jnp.asarray(s0)
        if s0.shape != state_shape:
            raise ValueError(
                f"matrix_scan: s0 must have shape (..., K, V) = {state_shape}; got {s0.shape}"
            )
        s0 = s0.astype(acc)
    return q, k, v, log_a, s0


def _sequential(q, k, v, log_a, s0):
    acc = s0.dtype

    def step(s, inputs):
        q_t, k_t, v_t, g_t = (x.astype(acc) for x in inputs)
        s = jnp.exp(g_t)[..., :, None] * s + k_t[..., :, None] * v_t[..., None, :]
        return s, jnp.einsum("...k,...kv->...v", q_t, s)

    xs = tuple(jnp.moveaxis(x, -2, 0) for x in (q, k, v, log_a))
    s_last, y = lax.scan(step, s0, xs)
    return jnp.moveaxis(y, 0, -2).astype(q.dtype), s_last


def _chunked(q, k, v, log_a, s0, chunk_size):
    acc, out_dtype = s0.dtype, q.dtype
    *lead, steps, key_dim = q.shape
    value_dim = v.shape[-1]
    chunk = min(chunk_size, steps)
    num_chunks = math.ceil(steps / chunk)
    pad = num_chunks * chunk - steps

    # (..., T, F) -> (..., M, C, F) for a last axis F of K, V or G; zero-padded past the end
    # (no decay, no input)
    def split(x):
        x = jnp.pad(x.astype(acc), [(0, 0)] * len(lead) + [(0, pad), (0, 0)])
        return x.reshape(*lead, num_chunks, chunk, x.shape[-1])

    q, k, v, log_a = split(q), split(k), split(v), split(log_a)
    cum = jnp.cumsum(log_a, axis=-2)  # L_t, (..., M, C, G) with G = 1 or K gates per step
    causal = jnp.tril(jnp.ones((chunk, chunk), bool))
    # exp(L_t - L_s) for s <= t, 0 above the diagonal; the double `where` keeps gradients finite.
    diff = cum[..., :, None, :] - cum[..., None, :, :]  # (..., M, C, C, G)
    diff = jnp.where(causal[:, :, None], diff, 0.0)
    decay_ts = jnp.where(causal[:, :, None], jnp.exp(diff), 0.0)
    if log_a.shape[-1] == 1:
        scores = jnp.einsum("...tk,...sk->...ts", q, k) * decay_ts[..., 0]
    else:
        scores = jnp.einsum("...tk,...sk,...tsk->...ts", q, k, decay_ts)
    intra = jnp.einsum("...ts,...sv->...tv", scores, v)

    to_end = jnp.exp(cum[..., -1:, :] - cum)  # exp(L_C - L_s) <= 1, (..., M, C, G)
    updates = jnp.einsum("...sk,...sv->...kv", k * to_end, v)  # (..., M, K, V)
    chunk_decay = jnp.broadcast_to(
        jnp.exp(cum[..., -1, :])[..., :, None], updates.shape
    )  # (..., M, K, V)
    flat = lambda x: x.reshape(*lead, num_chunks, key_dim * value_dim)
    s_after, s_last = linear_scan(
        flat(chunk_decay), flat(updates), s0.reshape(*lead, key_dim * value_dim), impl="sequential"
    )
    s_after = s_after.reshape(*lead, num_chunks, key_dim, value_dim)
    s_enter = jnp.concatenate([s0[..., None, :, :], s_after[..., :-1, :, :]], axis=-3)
    inter = jnp.einsum("...tk,...kv->...tv", q * jnp.exp(cum), s_enter)
    y = (inter + intra).reshape(*lead, num_chunks * chunk, value_dim)[..., :steps, :]
    return y.astype(out_dtype), s_last.reshape(*lead, key_dim, value_dim)
