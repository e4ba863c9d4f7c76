"""List the registered cells with family, parameters and state size at a reference width.

    python -m seqbench.cells                  # d_in = d_hidden = 64, state size after T = 1024
    python -m seqbench.cells --width=128 --length=4096
    python -m seqbench.cells --speed            # + step/scan timings at B=16, T=256 (CPU: minutes)

Counts come from shapes alone (`jax.eval_shape`): nothing is allocated or compiled. `--speed`
times, per cell and jitted: `scan` forward, a `lax.scan` over `step` (the recurrent mode), and
`scan` forward+backward, median of --repeats calls after a warm-up. Shape letters: see
`kernels/typing.py`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from absl import app, flags

from seqbench import cells
from seqbench.cells.base import param_count, scan_with_steps
from seqbench.kernels.timing import median_ms

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command-line flags (only when run as a program, so modules import cleanly)."""
    flags.DEFINE_integer("width", 64, "d_in = d_hidden of every cell.", lower_bound=1)
    flags.DEFINE_integer("length", 1024, "Sequence length for state sizes that grow with T.",
                                   lower_bound=1)
    flags.DEFINE_boolean("speed", False, "Also time step/scan of every cell.")
    flags.DEFINE_integer("batch", 16, "Batch size for --speed.", lower_bound=1)
    flags.DEFINE_integer("steps", 256, "Sequence length for --speed.", lower_bound=1)
    flags.DEFINE_integer("repeats", 5, "Timed calls per measurement (median).",
                                    lower_bound=1)


def table(width: int, length: int) -> str:
    header = f"{'cell':<18}{'family':<11}{'params':>10}{'state floats':>14}  hyperparameters"
    lines = [header, "-" * len(header)]
    for name in cells.names():
        cell = cells.get(name, d_hidden=width)
        params = jax.eval_shape(lambda key: cell.init(key, width), jax.random.key(0))
        hparams = ", ".join(f"{k}={v}" for k, v in cell.hparams.items() if k != "d_hidden")
        lines.append(f"{name:<18}{cell.family:<11}{param_count(params):>10,}"
                     f"{cell.state_size(params, length):>14,}  {hparams}")
    return "\n".join(lines)




def print_speed_table(width: int, batch: int, steps: int, repeats: int) -> None:
    """Prints one row per cell as soon as it is measured (a long run shows progress)."""
    header = f"{'cell':<18}{'scan ms':>10}{'step-loop ms':>14}{'scan fwd+bwd ms':>17}"
    print(header, "-" * len(header), sep="\n")
    xs = jax.random.normal(jax.random.key(1), (batch, steps, width))
    for name in cells.names():
        cell = cells.get(name, d_hidden=width)
        params = cell.init(jax.random.key(0), width)
        state = cell.initial_state(params, (batch,))
        step_loop = scan_with_steps(cell.step)
        scan = jax.jit(lambda p, x: cell.scan(p, state, x)[1])
        loop = jax.jit(lambda p, x: step_loop(p, state, x)[1])
        grad = jax.jit(jax.grad(lambda p, x: jnp.sum(cell.scan(p, state, x)[1] ** 2)))
        timings = [median_ms(f, params, xs, repeats=repeats) for f in (scan, loop, grad)]
        print(f"{name:<18}{timings[0]:>10.2f}{timings[1]:>14.2f}{timings[2]:>17.2f}", flush=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    print(f"# cells at d_in = d_hidden = {FLAGS.width}; state after T = {FLAGS.length} steps")
    print(table(FLAGS.width, FLAGS.length))
    if FLAGS.speed:
        print(f"\n# speed: B={FLAGS.batch}, T={FLAGS.steps}, d_in = d_hidden = {FLAGS.width}, "
              f"jax {jax.__version__} on {jax.devices()[0].device_kind}")
        print_speed_table(FLAGS.width, FLAGS.batch, FLAGS.steps, FLAGS.repeats)


if __name__ == "__main__":
    define_flags()
    app.run(main)
