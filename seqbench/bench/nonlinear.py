"""Parallel-in-time evaluation of a nonlinear RNN against the sequential scan.

    python -m seqbench.bench.nonlinear                          # Elman cell, T up to 65,536
    python -m seqbench.bench.nonlinear --widths=16 --lengths=256,4096

Times one forward evaluation of h_t = tanh(W h_{t-1} + U x_t + b) (recurrent gain 0.9, batch
`--batch` by vmap) with `kernels.nonlinear_scan` (each method, tol 1e-6; and with `--damping`
> 0, the damped "elk" and "quasi_elk" at that λ, at most 4T iterations) against `lax.scan`;
median of `--repeats` calls after a warm-up (`kernels.timing.median_ms`), the iterations taken
beside it. Full Newton holds T·D² Jacobian entries per sequence; a size over `--max_jacobian`
floats is skipped and marked so. Only ratios within one run compare.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from seqbench.kernels.nonlinear_scan import METHODS, nonlinear_scan, sequential_scan
from seqbench.kernels.timing import median_ms

FLAGS = flags.FLAGS


def elman(p, h, x):
    return jnp.tanh(h @ p["W"] + x @ p["U"] + p["b"])


def problem(width: int, steps: int, batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    p = {"W": jnp.asarray(0.9 * rng.normal(size=(width, width)) / np.sqrt(width), jnp.float32),
         "U": jnp.asarray(rng.normal(size=(width, width)) / np.sqrt(width), jnp.float32),
         "b": jnp.zeros(width, jnp.float32)}
    h0 = jnp.zeros((batch, width), jnp.float32)
    xs = jnp.asarray(rng.normal(size=(batch, steps, width)), jnp.float32)
    return p, h0, xs


def variants(damping: float) -> list[tuple[str, str, float]]:
    """(row name, method, damping) of every solve measured."""
    rows = [(method, method, 0.0) for method in METHODS]
    if damping:
        rows += [("elk", "newton", damping), ("quasi_elk", "quasi_newton", damping)]
    return rows


def measure(width: int, steps: int, batch: int, repeats: int, max_jacobian: int,
            damping: float = 0.0) -> list[str]:
    """Markdown rows: the sequential scan, then each variant (ms, ratio, iterations)."""
    p, h0, xs = problem(width, steps, batch)
    sequential = jax.jit(jax.vmap(lambda h0, xs: sequential_scan(elman, p, h0, xs)))
    base = median_ms(sequential, h0, xs, repeats=repeats)
    rows = [f"| {width} | {steps:,} | sequential | {base:,.1f} | 1.00 | |"]
    for name, method, damped in variants(damping):
        if method == "newton" and steps * width * width > max_jacobian:
            rows.append(f"| {width} | {steps:,} | {name} | skipped (T·D² > "
                        f"{max_jacobian:,}) | | |")
            continue
        solve = jax.jit(jax.vmap(lambda h0, xs, m=method, d=damped: nonlinear_scan(
            elman, p, h0, xs, method=m, tol=1e-6, damping=d,
            max_iters=4 * steps if d else None)))
        ms = median_ms(solve, h0, xs, repeats=repeats)
        iterations = int(jnp.max(solve(h0, xs)[1].iterations))
        rows.append(f"| {width} | {steps:,} | {name} | {ms:,.1f} | {ms / base:.2f} | "
                    f"{iterations} |")
    return rows


def define_flags() -> None:
    flags.DEFINE_list("widths", ["16", "64"], "State widths D.")
    flags.DEFINE_list("lengths", ["256", "4096", "65536"], "Sequence lengths T.")
    flags.DEFINE_integer("batch", 4, "Sequences (vmapped).", lower_bound=1)
    flags.DEFINE_integer("repeats", 3, "Timed calls (median).", lower_bound=1)
    flags.DEFINE_integer("max_jacobian", 2**24, "Largest T·D² full Newton is run at.",
                         lower_bound=1)
    flags.DEFINE_float("damping", 1.0, "λ of the damped rows (ELK, quasi-ELK); 0: none.",
                       lower_bound=0.0)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        widths = [int(w) for w in FLAGS.widths]
        lengths = [int(n) for n in FLAGS.lengths]
    except ValueError:
        raise app.UsageError("--widths and --lengths must be integers")
    print(f"# seqbench.bench.nonlinear: jax {jax.__version__}, {jax.devices()[0].device_kind}; "
          f"Elman cell, batch {FLAGS.batch}, median of {FLAGS.repeats}", flush=True)
    print("| D | T | method | ms | ÷ sequential | iterations |\n|--:|--:|:--|--:|--:|--:|")
    for width in widths:
        for steps in lengths:
            for row in measure(width, steps, FLAGS.batch, FLAGS.repeats, FLAGS.max_jacobian,
                               FLAGS.damping):
                print(row, flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
