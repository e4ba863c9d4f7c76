"""The first-order diagonal linear recurrence and its implementations.

    h_t = a_t * h_{t-1} + b_t          (elementwise over the feature axis D)

is the primitive under LRU, S4D/S5, Mamba, RG-LRU, GateLoop, minGRU and others. Every
implementation here computes the same function (Blelloch 1990; Martin & Cundy 2018):

- ``"sequential"``:  `lax.scan` over time, O(T) steps of O(D) work; `unroll` steps per iteration.
- ``"associative"``: `lax.associative_scan` with (a1, b1) . (a2, b2) = (a1 a2, a2 b1 + b2),
  O(log T) depth and about 2 log T passes over memory.
- ``"chunked"``:     T split into chunks of C steps; every chunk is scanned from a zero state in
  parallel while its cumulative decay is recorded; a short scan over the M = ceil(T / C) chunk
  ends carries the state across chunks; a last elementwise pass adds `decay_so_far * carry_in`
  back.
- ``"pallas"``:      a Pallas kernel with the time loop inside and the state kept on chip (see
  `kernels.pallas_linear`).

Autodiff goes through one `jax.custom_vjp` shared by all implementations: the backward pass is
itself a linear scan in the opposite direction,

    g_t  = dh_t + a_{t+1} g_{t+1}      (g_{T-1} = dh_{T-1} + dh_last)
    db_t = g_t,   da_t = g_t h_{t-1},  dh0 = a_0 g_0,

run by the same implementation, so memory stays O(T D). JAX's VJPs are transposes of the
linearisation (not Hermitian adjoints), so no complex conjugates appear in these formulas.

Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .typing import accumulation_dtype

IMPLS = ("sequential", "associative", "chunked", "pallas")
INTERPRET_TARGETS = ("gpu", "tpu")

# impl="auto", per platform compiled for (`lax.platform_dependent`: chosen when the program is
# lowered, so a CPU host can lower it for an accelerator), from `python -m seqbench.kernels.bench`
# (BUILD_NOTES.md, "Kernel benchmark"). Platforms not measured yet use "associative", the
# implementation with the best depth when nothing is known, until a GPU/TPU session measures them.
AUTO_IMPL = {"cpu": "sequential", "cuda": "associative", "rocm": "associative",
             "tpu": "associative"}
BACKEND_PLATFORM = {"cpu": "cpu", "gpu": "cuda", "tpu": "tpu"}  # jax.default_backend() -> key


def auto_impl(backend: str) -> str:
    """The implementation impl="auto" runs on `backend` (a `jax.default_backend()` name)."""
    return AUTO_IMPL.get(BACKEND_PLATFORM.get(backend, backend), "associative")

DEFAULT_CHUNK_SIZE = 64


class ScanOptions(NamedTuple):
    """Static knobs of the implementations (hashable: it is a `nondiff_argnum`)."""

    impl: str
    reverse: bool
    unroll: int = 1  # sequential: time steps per lax.scan iteration
    chunk_size: int = DEFAULT_CHUNK_SIZE  # chunked: steps per chunk
    interpret: str | None = None  # pallas: run the "gpu" or "tpu" kernel in Pallas' interpreter


def linear_scan(
    a: jax.Array,
    b: jax.Array,
    h0: jax.Array | None = None,
    *,
    reverse: bool = False,
    reset: jax.Array | None = None,
    impl: str = "auto",
    unroll: int = 1,
    chunk_size: int | None = None,
    interpret: str | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Runs h_t = a_t * h_{t-1} + b_t over the time axis (-2) and returns (h, h_last).

    Args:
      a: decays, shape (..., T, D); real or complex.
      b: inputs, same shape and dtype as `a`.
      h0: the state before the first step, shape (..., D); None for zeros. With `reverse`, the
        state after the last step (the recurrence runs from t = T-1 down to 0).
      reverse: scan from the end, h_t = a_t * h_{t+1} + b_t.
      reset: optional bool mask of shape (..., T); where True the carried state is dropped before
        that step (h_t = b_t), so packed sequences do not leak into one another.
      impl: one of "auto", "sequential", "associative", "chunked", "pallas".
      unroll: time steps per `lax.scan` iteration of "sequential".
      chunk_size: steps per chunk of "chunked" (default 64).
      interpret: with impl="pallas", run the "gpu" or "tpu" kernel in Pallas' interpreter on any
        backend (how CI tests the kernels on a CPU).

    Returns:
      h: every state, shape (..., T, D), in the input dtype.
      h_last: the state after the whole sequence (h[..., -1, :], or h[..., 0, :] with
        `reverse`), shape (..., D), in the accumulation dtype (float32 / complex64 for bf16 and
        fp32 inputs), so a long sequence streamed in pieces equals the whole one exactly.

    The state is always accumulated in at least float32 (complex64), whatever the input dtype.
    """
    a, b, h0, reset = _check_inputs(a, b, h0, reset)
    options = ScanOptions(
        impl=_resolve_impl(impl, interpret),
        reverse=bool(reverse),
        unroll=_check_positive_int("unroll", unroll),
        chunk_size=_check_positive_int(
            "chunk_size", DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size
        ),
        interpret=interpret,
    )
    if reset is not None:
        a = jnp.where(reset[..., None], jnp.zeros((), a.dtype), a)
    return _linear_scan(options, a, b, h0)


# ----------------------------------------------------------------------------- validation


def _check_inputs(a, b, h0, reset):
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.shape != b.shape:
        raise ValueError(
            f"linear_scan: a and b must have the same shape (..., T, D); "
            f"got a.shape={a.shape} and b.shape={b.shape}"
        )
    if a.ndim < 2:
        raise ValueError(
            f"linear_scan: a and b need at least 2 axes (..., T, D); got shape {a.shape}"
        )
    if a.dtype != b.dtype:
        raise TypeError(
            f"linear_scan: a and b must have the same dtype; got a.dtype={a.dtype} and "
            f"b.dtype={b.dtype} (cast one, e.g. a.astype(b.dtype))"
        )
    if not jnp.issubdtype(a.dtype, jnp.inexact):
        raise TypeError(
            f"linear_scan: a and b must be floating or complex; got dtype {a.dtype}"
        )
    state_shape = a.shape[:-2] + a.shape[-1:]
    acc_dtype = accumulation_dtype(a.dtype)
    if h0 is None:
        h0 = jnp.zeros(state_shape, acc_dtype)
    else:
        h0 = jnp.asarray(h0)
        if h0.shape != state_shape:
            raise ValueError(
                f"linear_scan: h0 must have shape (..., D) = {state_shape} for a.shape={a.shape}; "
                f"got h0.shape={h0.shape}"
            )
        if jnp.issubdtype(h0.dtype, jnp.complexfloating) and not jnp.issubdtype(
            acc_dtype, jnp.complexfloating
        ):
            raise TypeError(
                f"linear_scan: complex h0 (dtype {h0.dtype}) needs complex a and b; got {a.dtype}"
            )
        h0 = h0.astype(acc_dtype)
    if reset is not None:
        reset = jnp.asarray(reset)
        if reset.shape != a.shape[:-1]:
            raise ValueError(
                f"linear_scan: reset must have shape (..., T) = {a.shape[:-1]} for "
                f"a.shape={a.shape}; got reset.shape={reset.shape}"
            )
        reset = reset.astype(bool)
    return a, b, h0, reset


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"linear_scan: {name} must be a positive int; got {value!r}")
    return value


def _resolve_impl(impl: str, interpret: str | None) -> str:
    if impl not in ("auto",) + IMPLS:
        raise ValueError(
            f"linear_scan: unknown impl {impl!r}; valid: 'auto', "
            + ", ".join(repr(i) for i in IMPLS)
        )
    if interpret is not None:
        if interpret not in INTERPRET_TARGETS:
            raise ValueError(
                f"linear_scan: interpret must be None, 'gpu' or 'tpu'; got {interpret!r}"
            )
        if impl != "pallas":
            raise ValueError(
                f"linear_scan: interpret={interpret!r} only applies to impl='pallas'; got impl={impl!r}"
            )
    return impl


# ----------------------------------------------------------------------------- autodiff


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _linear_scan(options: ScanOptions, a, b, h0):
    return _forward(options, a, b, h0, a.dtype)


def _linear_scan_fwd(options, a, b, h0):
    # Calling the custom_vjp function (not `_forward`) keeps the forward rule differentiable,
    # so higher-order derivatives work for every implementation, Pallas kernels included.
    h, h_last = _linear_scan(options, a, b, h0)
    return (h, h_last), (a, h, h0)


def _linear_scan_bwd(options, residuals, cotangents):
    a, h, h0 = residuals
    dh, dh_last = cotangents
    acc = h0.dtype
    one = jnp.ones_like(a[..., :1, :])
    # a_next[t] = a[t+1] in the scan direction, 1 past the end (where dh_last enters).
    if options.reverse:
        a_next = jnp.concatenate([one, a[..., :-1, :]], axis=-2)
    else:
        a_next = jnp.concatenate([a[..., 1:, :], one], axis=-2)
    # The backward scan is itself a `_linear_scan` (so it can be differentiated again), run in
    # the accumulation dtype so bf16 inputs still get fp32 cotangents.
    backward = options._replace(reverse=not options.reverse)
    g, _ = _linear_scan(backward, a_next.astype(acc), dh.astype(acc), dh_last.astype(acc))
    h_prev = _previous_states(h.astype(acc), h0, options.reverse)
    da = (g * h_prev).astype(a.dtype)
    first = -1 if options.reverse else 0
    dh0 = a[..., first, :].astype(acc) * g[..., first, :]
    return da, g.astype(a.dtype), dh0


_linear_scan.defvjp(_linear_scan_fwd, _linear_scan_bwd)


def _previous_states(h, h0, reverse):
    """h_{t-1} in the scan direction, with h0 before the first step."""
    if reverse:
        return jnp.concatenate([h[..., 1:, :], h0[..., None, :]], axis=-2)
    return jnp.concatenate([h0[..., None, :], h[..., :-1, :]], axis=-2)


def _forward(options, a, b, h0, out_dtype):
    """Dispatches to one implementation; h in `out_dtype`, h_last in h0's dtype."""
    match options.impl:
        case "sequential":
            return _sequential(a, b, h0, options.reverse, out_dtype, options.unroll)
        case "associative":
            return _associative(a, b, h0, options.reverse, out_dtype)
        case "chunked":
            return _chunked(a, b, h0, options.reverse, out_dtype, options.chunk_size)
        case "pallas":
            return _pallas(options, a, b, h0, out_dtype)
        case "auto":  # the implementation of the platform being compiled for
            # one callable per implementation: platform_dependent traces each distinct one once
            by_impl = {impl: functools.partial(_forward, options._replace(impl=impl),
                                               out_dtype=out_dtype)
                       for impl in {*AUTO_IMPL.values(), "associative"}}
            per_platform = {platform: by_impl[impl] for platform, impl in AUTO_IMPL.items()}
            return lax.platform_dependent(a, b, h0, **per_platform, default=by_impl["associative"])


def _pallas(options, a, b, h0, out_dtype):
    """The Pallas kernel, for the platform being compiled for: Triton when it is a CUDA GPU,
    Mosaic when it is a TPU, and elsewhere (a CPU) the GPU kernel in Pallas' interpreter (exact,
    slow: no Pallas compiler targets a CPU). `options.interpret` forces the interpreter of the
    named kernel on any platform."""
    from . import pallas_linear

    def kernel(target, interpret):
        return lambda a, b, h0: pallas_linear.linear_scan(
            a, b, h0, reverse=options.reverse, out_dtype=out_dtype, target=target,
            interpret=interpret)

    if options.interpret is not None:
        return kernel(options.interpret, True)(a, b, h0)
    return lax.platform_dependent(a, b, h0, cuda=kernel("gpu", False),
                                  tpu=kernel("tpu", False), default=kernel("gpu", True))
    raise AssertionError(options.impl)


# ----------------------------------------------------------------------------- implementations


def _sequential(a, b, h0, reverse, out_dtype, unroll):
    # Casting whole arrays once, outside the loop: per-step bf16 casts made the CPU loop ~100x
    # slower (BUILD_NOTES.md, "Kernel benchmark").
    acc = h0.dtype

    def step(h, ab):
        a_t, b_t = ab
        h = a_t * h + b_t
        return h, h

    xs = (jnp.moveaxis(jnp.asarray(a, acc), -2, 0), jnp.moveaxis(jnp.asarray(b, acc), -2, 0))
    h_last, h = lax.scan(step, h0, xs, reverse=reverse, unroll=unroll)
    return jnp.moveaxis(h, 0, -2).astype(out_dtype), h_last


def _combine(left, right):
    """Composes two affine maps h -> a h + b: first `left`, then `right`."""
    a_l, b_l = left
    a_r, b_r = right
    return a_l * a_r, a_r * b_l + b_r


def _associative(a, b, h0, reverse, out_dtype):
    acc = h0.dtype
    a, b = jnp.asarray(a, acc), jnp.asarray(b, acc)
    first = -1 if reverse else 0
    b = b.at[..., first, :].add(a[..., first, :] * h0)  # fold h0 into the first input
    _, h = lax.associative_scan(_combine, (a, b), reverse=reverse, axis=a.ndim - 2)
    last = 0 if reverse else -1
    return h.astype(out_dtype), h[..., last, :]


def _chunked(a, b, h0, reverse, out_dtype, chunk_size):
    if reverse:
        flip = functools.partial(jnp.flip, axis=-2)
        h, h_last = _chunked(flip(a), flip(b), h0, False, out_dtype, chunk_size)
        return flip(h), h_last
    acc = h0.dtype
    *lead, steps, features = a.shape
    chunk = min(chunk_size, steps)
    num_chunks = math.ceil(steps / chunk)
    pad = num_chunks * chunk - steps
    # Padding with a = 1, b = 0 keeps the state unchanged past the end.
    pad_width = [(0, 0)] * len(lead) + [(0, pad), (0, 0)]
    a = jnp.pad(a.astype(acc), pad_width, constant_values=1)
    b = jnp.pad(b.astype(acc), pad_width, constant_values=0)
    # (..., M, C, D) -> time-in-chunk first: (C, ..., M, D)
    split = lambda x: jnp.moveaxis(x.reshape(*lead, num_chunks, chunk, features), -2, 0)
    a, b = split(a), split(b)

    def within_chunk(carry, ab):
        decay, h = carry
        a_t, b_t = ab
        decay, h = decay * a_t, a_t * h + b_t
        return (decay, h), (decay, h)

    zeros = jnp.zeros(a.shape[1:], acc)
    (chunk_decay, chunk_h), (decay, h_local) = lax.scan(
        within_chunk, (jnp.ones_like(zeros), zeros), (a, b)
    )
    # Carry across chunks: state entering chunk m is s_m = decay_{m-1} s_{m-1} + h_{m-1}.
    carry_in, h_last = _sequential(chunk_decay, chunk_h, h0, False, acc, 1)
    carry_in = jnp.concatenate([h0[..., None, :], carry_in[..., :-1, :]], axis=-2)
    h = h_local + decay * carry_in[None]  # (C, ..., M, D)
    h = jnp.moveaxis(h, 0, -2).reshape(*lead, num_chunks * chunk, features)
    return h[..., :steps, :].astype(out_dtype), h_last
