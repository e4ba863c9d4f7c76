"""Pallas kernels for h_t = a_t * h_{t-1} + b_t: time loop inside, state kept on chip.

Two lowerings share one inner loop (`_scan_rows`), which walks the rows of a (time, features)
block and keeps the state in registers / VMEM as float32:

- GPU (Triton): grid (B, D / block_d), B the batch axes flattened into rows; each program owns
  one row of the batch and one block of features and loops over all T steps, loading a_t and
  b_t one row at a time from global memory. The state never leaves registers, so no block of
  the time axis has to fit in shared memory (Mosaic GPU would copy whole blocks there: 395 KB
  at T = 256, D = 128, over the 227 KB an H100 has). Feature blocks are powers of two (Triton's
  rule), D padded up to them; blocks shrink while fewer than MIN_GPU_PROGRAMS programs exist.
- TPU (Mosaic): grid (B, D / block_d, T / block_t) with the time axis last and "arbitrary"
  (sequential); the state crosses time blocks in a VMEM scratch buffer, so each (block_t, block_d)
  tile of a and b is DMA'd to VMEM once while the pipeline fetches the next.

Complex inputs are carried as separate real and imaginary planes (Pallas has no complex dtype):
(a_r + i a_i)(h_r + i h_i) + b = (a_r h_r - a_i h_i + b_r) + i (a_r h_i + a_i h_r + b_i).

Both kernels run in Pallas' interpreter on any backend (`interpret="gpu"` / `"tpu"`), which is
how the CPU test suite checks them against the float64 reference. Performance on real GPUs and
TPUs is the subject of the GPU/TPU kernel issue; see BUILD_NOTES.md for what has been measured.

Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu
from jax.experimental.pallas import triton as pltriton

BLOCK_D = 128  # features per program
BLOCK_T = 256  # time steps per TPU tile
MIN_GPU_PROGRAMS = 128  # about one per SM of an H100 (132): a guess until a GPU measures it


def linear_scan(
    a, b, h0, *, reverse: bool, out_dtype, target: str, interpret: bool = False,
    block_d: int = BLOCK_D, block_t: int = BLOCK_T,
):
    """Forward scan h_t = a_t * h_{t-1} + b_t with a Pallas kernel (no autodiff of its own).

    Args:
      a, b: decays and inputs, shape (..., T, D), one real or complex dtype.
      h0: the state before the first step, shape (..., D), in the state (accumulation) dtype.
      reverse: scan from the end.
      out_dtype: dtype of the returned h.
      target: "gpu" (the Triton kernel) or "tpu" (the Mosaic kernel). The caller picks it for
        the platform being compiled for (`linear_recurrence`: `lax.platform_dependent`), so a
        CPU host can lower either for its accelerator.
      interpret: run the kernel in Pallas' interpreter (any backend) instead of compiling it.
      block_d: features per program (GPU: rounded down to a power of two, as Triton needs).
      block_t: time steps per tile (TPU only: the GPU kernel loops over all of T).

    Returns:
      h: every state, shape (..., T, D), in `out_dtype`.
      h_last: the state after the whole sequence, shape (..., D), in h0's dtype.
    """
    if target not in ("gpu", "tpu"):
        raise ValueError(f"pallas linear_scan: target must be 'gpu' or 'tpu'; got {target!r}")
    *lead, steps, features = a.shape
    rows = math.prod(lead)
    acc = h0.dtype
    is_complex = jnp.issubdtype(acc, jnp.complexfloating)
    plane_dtype = jnp.finfo(acc).dtype  # the state's real dtype: float32 for complex64

    if target == "gpu":  # Triton: every array a program touches has a power-of-two size
        block_d = min(_floor_pow2(block_d), _ceil_pow2(features))
        # Programs in flight: halve the blocks (down to 16 features) until there are
        # MIN_GPU_PROGRAMS of them, so a small batch x D still spreads over the SMs.
        while block_d > 16 and rows * -(-features // block_d) < MIN_GPU_PROGRAMS:
            block_d //= 2
    else:
        block_d = min(block_d, _round_up(features, 8))
    padded_d = _round_up(features, block_d)
    block_t = min(block_t, _round_up(steps, 8)) if target == "tpu" else steps
    padded_t = _round_up(steps, block_t)

    def planes(x, fill):
        """(rows, T_pad, D_pad) real planes of x; padding past the end leaves the state as is.

        Real inputs keep their dtype (the kernel upcasts); complex ones split into two planes.
        """
        x = x.reshape(rows, steps, features)
        x = jnp.pad(
            x, ((0, 0), (0, padded_t - steps), (0, padded_d - features)), constant_values=fill
        )
        return [jnp.real(x), jnp.imag(x)] if is_complex else [x]

    a_planes, b_planes = planes(a, 1), planes(b, 0)
    h0_3d = jnp.pad(h0.reshape(rows, 1, features), ((0, 0), (0, 0), (0, padded_d - features)))
    h0_planes = [h0_3d] if not is_complex else [jnp.real(h0_3d), jnp.imag(h0_3d)]
    out_plane_dtype = jnp.finfo(out_dtype).dtype if is_complex else out_dtype
    num_planes = len(a_planes)

    seq_shape = jax.ShapeDtypeStruct((rows, padded_t, padded_d), out_plane_dtype)
    last_shape = jax.ShapeDtypeStruct((rows, 1, padded_d), plane_dtype)
    out_shape = [seq_shape] * num_planes + [last_shape] * num_planes
    kernel_args = dict(num_planes=num_planes, reverse=reverse, state_dtype=plane_dtype)
    if target == "gpu":
        outputs = _gpu_call(a_planes, b_planes, h0_planes, out_shape, block_d, kernel_args, interpret)
    else:
        outputs = _tpu_call(
            a_planes, b_planes, h0_planes, out_shape, block_t, block_d, kernel_args, interpret
        )
    h_planes, last_planes = outputs[:num_planes], outputs[num_planes:]
    if is_complex:
        h = lax.complex(*h_planes).astype(out_dtype)
        h_last = lax.complex(*last_planes).astype(acc)
    else:
        (h,), (h_last,) = h_planes, last_planes
    h = h[:, :steps, :features].reshape(*lead, steps, features)
    h_last = h_last[:, 0, :features].reshape(*lead, features)
    return h, h_last


def _round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


def _ceil_pow2(x: int) -> int:
    return 1 << (x - 1).bit_length()


def _floor_pow2(x: int) -> int:
    return 1 << (x.bit_length() - 1)


def _step(h, a, b):
    """One step on tuples of planes: (h,) real, or (h_r, h_i) complex."""
    if len(h) == 1:
        return (a[0] * h[0] + b[0],)
    (h_r, h_i), (a_r, a_i), (b_r, b_i) = h, a, b
    return (a_r * h_r - a_i * h_i + b_r, a_r * h_i + a_i * h_r + b_i)


def _scan_rows(a_refs, b_refs, h_refs, h, *, reverse, state_dtype):
    """Scans all rows of the (block_t, block_d) refs from state h; returns the final state."""
    num_rows = a_refs[0].shape[0]

    def body(i, h):
        t = num_rows - 1 - i if reverse else i
        row = pl.ds(t, 1)
        a = tuple(r[row, :].astype(state_dtype) for r in a_refs)
        b = tuple(r[row, :].astype(state_dtype) for r in b_refs)
        h = _step(h, a, b)
        for ref, value in zip(h_refs, h):
            ref[row, :] = value.astype(ref.dtype)
        return h

    return lax.fori_loop(0, num_rows, body, h)


def _split_refs(refs, num_planes):
    p = num_planes
    return refs[:p], refs[p : 2 * p], refs[2 * p : 3 * p], refs[3 * p : 4 * p], refs[4 * p : 5 * p]


def _gpu_kernel(*refs, num_planes, reverse, state_dtype):
    a_refs, b_refs, h0_refs, h_refs, last_refs = _split_refs(refs, num_planes)
    h = tuple(r[...].astype(state_dtype) for r in h0_refs)  # (1, block_d) each
    h = _scan_rows(a_refs, b_refs, h_refs, h, reverse=reverse, state_dtype=state_dtype)
    for ref, value in zip(last_refs, h):
        ref[...] = value


def _gpu_call(a_planes, b_planes, h0_planes, out_shape, block_d, kernel_args, interpret):
    rows, steps, padded_d = a_planes[0].shape
    p = kernel_args["num_planes"]
    seq = pl.BlockSpec((None, steps, block_d), lambda n, d: (n, 0, d))
    vec = pl.BlockSpec((None, 1, block_d), lambda n, d: (n, 0, d))
    return pl.pallas_call(
        lambda *refs: _gpu_kernel(*refs, **kernel_args),
        out_shape=out_shape,
        grid=(rows, padded_d // block_d),
        in_specs=[seq] * (2 * p) + [vec] * p,
        out_specs=[seq] * p + [vec] * p,
        # Triton, chosen over Mosaic GPU: Mosaic GPU copies each block into shared memory, and
        # a block holding the time axis outgrows it (395 KB at T = 256, D = 128); Triton reads
        # a row of the block at a time from global memory, the state in registers.
        compiler_params=pltriton.CompilerParams(num_warps=4, num_stages=1),
        interpret=interpret,
        name="linear_scan_gpu",
    )(*a_planes, *b_planes, *h0_planes)


def _tpu_kernel(*refs, num_planes, reverse, state_dtype):
    a_refs, b_refs, h0_refs, h_refs, last_refs = _split_refs(refs[:-1], num_planes)
    (state_ref,) = refs[-1:]  # VMEM scratch (num_planes, 1, block_d): the state between tiles
    t = pl.program_id(2)

    @pl.when(t == 0)
    def _():
        for i, ref in enumerate(h0_refs):
            state_ref[i] = ref[...].astype(state_dtype)

    h = tuple(state_ref[i] for i in range(num_planes))
    h = _scan_rows(a_refs, b_refs, h_refs, h, reverse=reverse, state_dtype=state_dtype)
    for i, value in enumerate(h):
        state_ref[i] = value

    @pl.when(t == pl.num_programs(2) - 1)
    def _():
        for ref, value in zip(last_refs, h):
            ref[...] = value


def _tpu_call(a_planes, b_planes, h0_planes, out_shape, block_t, block_d, kernel_args, interpret):
    rows, steps, padded_d = a_planes[0].shape
    p = kernel_args["num_planes"]
    num_t = steps // block_t
    if kernel_args["reverse"]:
        time_block = lambda t: num_t - 1 - t
    else:
        time_block = lambda t: t
    seq = pl.BlockSpec((None, block_t, block_d), lambda n, d, t: (n, time_block(t), d))
    vec = pl.BlockSpec((None, 1, block_d), lambda n, d, t: (n, 0, d))
    return pl.pallas_call(
        lambda *refs: _tpu_kernel(*refs, **kernel_args),
        out_shape=out_shape,
        grid=(rows, padded_d // block_d, num_t),
        in_specs=[seq] * (2 * p) + [vec] * p,
        out_specs=[seq] * p + [vec] * p,
        scratch_shapes=[pltpu.VMEM((p, 1, block_d), kernel_args["state_dtype"])],
        compiler_params=pltpu.CompilerParams(
            dimension_semantics=("parallel", "parallel", "arbitrary")
        ),
        interpret=pltpu.InterpretParams() if interpret else False,
        name="linear_scan_tpu",
    )(*a_planes, *b_planes, *h0_planes)
