"""Memory of one gradient against the sequence length: BPTT through `lax.scan` vs exact RTRL.

    python -m seqbench.bench.rtrl                                # D = 64, T up to 65,536
    python -m seqbench.bench.rtrl --width=256 --lengths=1024,16384

The recurrence is the gated real LRU of `tests/kernels/test_rtrl.py`'s kind (h_t = a_t ⊙
h_{t-1} + b_t, a_t = exp(-e^ν σ(x_t W_g + b_g)), b_t = √(1 - a_t²) x_t W_in, inputs of width D),
with the loss Σ_t Σ_i sin(h_t,i) y_t,i. For each T: XLA's compiled temporary memory of the
whole gradient computation (`compiled.memory_analysis().temp_size_in_bytes`, deterministic, no
run needed) and the median ms of `--repeats` calls. BPTT keeps every state for the backward
pass (memory grows with T); RTRL carries parameter-shaped traces forward (flat in T).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from seqbench.kernels.rtrl import diagonal_rtrl
from seqbench.kernels.timing import median_ms

FLAGS = flags.FLAGS
UNIT_AXES = {"nu": 0, "w_gate": 1, "b_gate": 0, "w_in": 1}  # every parameter is columnar


def coefficients(p, x):
    """A gated, input-normalised real LRU: a = exp(-e^ν σ(x W_g + b_g)), b = √(1 - a²) x W_in."""
    gate = jax.nn.sigmoid(x @ p["w_gate"] + p["b_gate"])
    a = jnp.exp(-jnp.exp(p["nu"]) * gate)
    return a, jnp.sqrt(1 - a**2) * (x @ p["w_in"])


def loss_fn(h, y):
    return jnp.sum(jnp.sin(h) * y)


def bptt_loss(p, h0, xs, ys):
    """(Σ_t loss_fn(h_t, y_t), states (T, D)) by `lax.scan`: the reference BPTT differentiates."""
    def body(h, inputs):
        x, y = inputs
        a, b = coefficients(p, x)
        h = a * h + b
        return h, (h, loss_fn(h, y))

    _, (states, losses) = jax.lax.scan(body, h0, (xs, ys))
    return jnp.sum(losses), states


def bptt_grad(p, h0, xs, ys):
    return jax.grad(bptt_loss, has_aux=True)(p, h0, xs, ys)[0]


def rtrl_grad(p, h0, xs, ys):
    return diagonal_rtrl(coefficients, p, UNIT_AXES, h0, xs, ys, loss_fn)[2]


def problem(width: int, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    f32 = lambda *shape, scale=1.0: jnp.asarray(scale * rng.normal(size=shape), jnp.float32)
    p = {"nu": f32(width, scale=0.5) - 1.0, "w_gate": f32(width, width, scale=width**-0.5),
         "b_gate": f32(width), "w_in": f32(width, width, scale=width**-0.5)}
    return p, f32(width), f32(steps, width), f32(steps, width)


def measure(width: int, steps: int, repeats: int) -> str:
    """One Markdown row: T, then temporary MiB and ms for BPTT and for RTRL."""
    args = problem(width, steps)
    cells = []
    for grad in (bptt_grad, rtrl_grad):
        compiled = jax.jit(grad).lower(*args).compile()
        temp = compiled.memory_analysis().temp_size_in_bytes / 2**20
        cells += [f"{temp:,.2f}", f"{median_ms(compiled, *args, repeats=repeats):,.1f}"]
    return f"| {width} | {steps:,} | " + " | ".join(cells) + " |"


def define_flags() -> None:
    flags.DEFINE_integer("width", 64, "State width D (= input width).", lower_bound=1)
    flags.DEFINE_list("lengths", ["256", "4096", "65536"], "Sequence lengths T.")
    flags.DEFINE_integer("repeats", 3, "Timed calls (median).", lower_bound=1)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        lengths = [int(n) for n in FLAGS.lengths]
    except ValueError:
        raise app.UsageError("--lengths must be integers")
    print(f"# seqbench.bench.rtrl: jax {jax.__version__}, {jax.devices()[0].device_kind}; "
          f"median of {FLAGS.repeats}", flush=True)
    print("| D | T | BPTT temp MiB | BPTT ms | RTRL temp MiB | RTRL ms |\n"
          "|--:|--:|--:|--:|--:|--:|")
    for steps in lengths:
        print(measure(FLAGS.width, steps, FLAGS.repeats), flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
