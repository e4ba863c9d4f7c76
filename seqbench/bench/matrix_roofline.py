"""Roofline of `matrix_scan`'s chunked XLA form on a GPU, estimated from the CPU.

    python -m seqbench.bench.matrix_roofline                       # B = 8, T = 4096, K = V = 64
    python -m seqbench.bench.matrix_roofline --chunks=32,64,128 --lengths=65536
    python -m seqbench.bench.matrix_roofline --batch=256 --lengths=64 --chunks=8,16,32,64

Is the chunkwise-parallel form (`kernels.matrix_scan(impl="chunked")`: matmuls inside a chunk,
a scan across chunks, all XLA ops) already near the matmul bound on an accelerator, or would a
fused Pallas kernel pay? For each (gate kind, chunk C), forward and forward+backward:

- `flops` and `bytes` as XLA counts them for the compiled program (`compiled.cost_analysis()`;
  the CPU's fusion decisions, so the bytes are those of an unfused form: every einsum's output,
  the (C, C) scores per chunk and, for per-key gates, the (C, C, K) decays, goes through
  memory), checked against the analytic count 2C(K + V) + 4KV flops per step and head
  (scalar gates; `analytic_flops`);
- the time bound of each on a GPU of `--bandwidth` bytes/s and `--peak` flop/s (defaults:
  an H100 SXM's 3.35 TB/s HBM3 and 67 TFLOP/s of fp32 FMA, the precision `matrix_scan` uses),
  and the floor of a fused kernel, which only reads q, k, v, the gates and writes y:
  max(minimal bytes / bandwidth, flops / peak). The ratio is the most a Pallas kernel could
  gain.

An estimate, not a measurement: XLA:GPU fuses elementwise work differently from XLA:CPU
(though it too writes each matmul's output to memory), and neither peak is reached in
practice; the measured numbers wait for a GPU (`experiments/device_check.sh`). The last column
is measured: the median of 5 calls of the compiled program on the backend running the command
(on a CPU, what picks `matrix_scan`'s default chunk there).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from absl import app, flags

from seqbench.kernels import matrix_scan
from seqbench.kernels.timing import median_ms

FLAGS = flags.FLAGS


def analytic_flops(batch: int, steps: int, key_dim: int, value_dim: int, chunk: int) -> int:
    """Forward flops of the scalar-gate chunked form: per step, scores 2CK, intra 2CV, the
    chunk's state update 2KV and the inter-chunk read-out 2KV (matmuls only)."""
    return batch * steps * (2 * chunk * (key_dim + value_dim) + 4 * key_dim * value_dim)


def costs(batch: int, steps: int, key_dim: int, value_dim: int, chunk: int, per_key: bool):
    """(forward, forward+backward) dicts of XLA's `flops` and `bytes accessed` (fp32) and `ms`,
    the median of 5 timed calls on this backend."""
    gates = (batch, steps, key_dim) if per_key else (batch, steps)
    args = [jnp.zeros((batch, steps, key_dim)), jnp.zeros((batch, steps, key_dim)),
            jnp.zeros((batch, steps, value_dim)), jnp.zeros(gates)]
    forward = lambda q, k, v, a: matrix_scan(q, k, v, a, impl="chunked", chunk_size=chunk)[0]
    both = jax.grad(lambda *a: jnp.sum(forward(*a)), argnums=(0, 1, 2, 3))
    out = []
    for fn in (forward, both):
        compiled = jax.jit(fn).lower(*args).compile()
        analysis = compiled.cost_analysis()
        out.append({"flops": float(analysis["flops"]), "bytes": float(analysis["bytes accessed"]),
                    "ms": median_ms(compiled, *args)})
    return out


def minimal_bytes(batch, steps, key_dim, value_dim, per_key, backward: bool) -> float:
    """fp32 bytes a fused kernel must move: q, k, v, gates in and y out (backward: those again,
    dy in and dq, dk, dv, d(gates) out)."""
    gate = key_dim if per_key else 1
    once = batch * steps * (2 * key_dim + 2 * value_dim + gate) * 4
    return once * (3 if backward else 1)


def row(batch, steps, key_dim, value_dim, chunk, per_key, bandwidth, peak) -> list[str]:
    """Markdown rows (forward, fwd+bwd) for one setting."""
    rows = []
    for backward, cost in zip((False, True), costs(batch, steps, key_dim, value_dim, chunk,
                                                   per_key)):
        xla_us = max(cost["bytes"] / bandwidth, cost["flops"] / peak) * 1e6
        floor = minimal_bytes(batch, steps, key_dim, value_dim, per_key, backward)
        fused_us = max(floor / bandwidth, cost["flops"] / peak) * 1e6
        rows.append(
            f"| {'per-key' if per_key else 'scalar'} | {chunk} | {steps:,} | "
            f"{'fwd+bwd' if backward else 'fwd'} | {cost['flops'] / 1e9:,.2f} | "
            f"{cost['bytes'] / 1e9:,.3f} | {cost['flops'] / cost['bytes']:.1f} | "
            f"{xla_us:,.0f} | {fused_us:,.0f} | {xla_us / fused_us:.1f}x | {cost['ms']:,.1f} |")
    return rows


def define_flags() -> None:
    flags.DEFINE_integer("batch", 8, "Batch x heads.", lower_bound=1)
    flags.DEFINE_list("lengths", ["4096"], "Sequence lengths T.")
    flags.DEFINE_integer("key_dim", 64, "K.", lower_bound=1)
    flags.DEFINE_integer("value_dim", 64, "V.", lower_bound=1)
    flags.DEFINE_list("chunks", ["32", "64"], "Chunk sizes C.")
    flags.DEFINE_float("bandwidth", 3.35e12, "Memory bandwidth, bytes/s (H100 SXM HBM3).")
    flags.DEFINE_float("peak", 67e12, "Peak flop/s (H100 SXM fp32 FMA).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        lengths, chunks = [int(n) for n in FLAGS.lengths], [int(c) for c in FLAGS.chunks]
    except ValueError:
        raise app.UsageError("--lengths and --chunks must be integers")
    print(f"# seqbench.bench.matrix_roofline: jax {jax.__version__}; B = {FLAGS.batch}, "
          f"K = {FLAGS.key_dim}, V = {FLAGS.value_dim}, fp32; GPU: "
          f"{FLAGS.bandwidth / 1e12:g} TB/s, {FLAGS.peak / 1e12:g} TFLOP/s")
    print("| gates | C | T | pass | GFLOP | GB (XLA) | flop/byte | XLA bound µs "
          f"| fused floor µs | most a kernel gains | ms on {jax.default_backend()} |\n"
          "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|")
    for per_key in (False, True):
        for chunk in chunks:
            for steps in lengths:
                for line in row(FLAGS.batch, steps, FLAGS.key_dim, FLAGS.value_dim, chunk,
                                per_key, FLAGS.bandwidth, FLAGS.peak):
                    print(line, flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
