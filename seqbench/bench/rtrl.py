"""Memory of one gradient against the sequence length: BPTT through `lax.scan` vs exact RTRL.

    python -m seqbench.bench.rtrl                                # D = 64, T up to 65,536
    python -m seqbench.bench.rtrl --width=256 --lengths=1024,16384
    python -m seqbench.bench.rtrl --train_step --segment=256     # the engine's training step

The recurrence is the gated real LRU of `tests/kernels/test_rtrl.py`'s kind (h_t = a_t ⊙
h_{t-1} + b_t, a_t = exp(-e^ν σ(x_t W_g + b_g)), b_t = √(1 - a_t²) x_t W_in, inputs of width D),
with the loss Σ_t Σ_i sin(h_t,i) y_t,i. For each T: XLA's compiled temporary memory of the
whole gradient computation (`compiled.memory_analysis().temp_size_in_bytes`, deterministic, no
run needed) and the median ms of `--repeats` calls. BPTT keeps every state for the backward
pass (memory grows with T); RTRL carries parameter-shaped traces forward (flat in T).

`--train_step`: the same for one whole training step of the engine (`engine.make_train_step`:
forward, gradient, AdamW) on `passkey` at length T, minGRU of width D in the bare one-layer body
(one-hot inputs, linear read-out), batch 32, one seed, for gradient="bptt" over the whole
sequence, truncated BPTT over `--segment`-step segments, and gradient="rtrl" over the same
segments (the whole sequence's gradient, exactly); ms are timed up to `--time_max_length`.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from seqbench import engine
from seqbench.engine import step as step_lib
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


TRAIN_STEP_RUNS = (("bptt", False), ("bptt", True), ("rtrl", True))  # (gradient, segmented)


def train_step_row(width: int, steps: int, segment: int, repeats: int, timed: bool,
                   runs=TRAIN_STEP_RUNS) -> str:
    """One Markdown row: T, then temporary MiB and ms per step for each of `runs` (gradient,
    segmented): by default BPTT, truncated BPTT and RTRL (ms "-" when not `timed`)."""
    cells = []
    for gradient, segmented in runs:
        config = engine.Config(
            cell="mingru", task="passkey", task_hparams={"num_digits": 1}, width=width, depth=1,
            input_encoding="one_hot", norm=False, residual=False, mlp_expand=0,
            train_length=steps, curriculum="fixed", batch_size=32, seeds=1,
            tbptt=segment if segmented else 0, gradient=gradient)
        _, task, model = engine.build(config)
        tx = engine.optimizer(config)
        state = engine.init_state(config, model, tx)
        keys = step_lib.member_keys(jax.random.key(1), config)
        length = jnp.asarray(steps, jnp.int32)
        compiled = engine.make_train_step(config, task, model, tx).lower(
            state, keys, length).compile()
        cells.append(f"{compiled.memory_analysis().temp_size_in_bytes / 2**20:,.2f}")
        if timed:
            times = []
            for _ in range(repeats + 1):  # the first call warms up
                start = time.perf_counter()
                state = jax.block_until_ready(compiled(state, keys, length)[0])
                times.append(1e3 * (time.perf_counter() - start))
            cells.append(f"{float(np.median(times[1:])):,.1f}")
        else:
            cells.append("-")
    return f"| {width} | {steps:,} | " + " | ".join(cells) + " |"


def define_flags() -> None:
    flags.DEFINE_integer("width", 64, "State width D (= input width).", lower_bound=1)
    flags.DEFINE_list("lengths", ["256", "4096", "65536"], "Sequence lengths T.")
    flags.DEFINE_integer("repeats", 3, "Timed calls (median).", lower_bound=1)
    flags.DEFINE_bool("train_step", False, "Measure the engine's training step instead.")
    flags.DEFINE_integer("segment", 256, "--train_step: the segment length K of truncated BPTT "
                         "and RTRL.", lower_bound=1)
    flags.DEFINE_integer("time_max_length", 4096, "--train_step: time steps up to this T.",
                         lower_bound=0)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        lengths = [int(n) for n in FLAGS.lengths]
    except ValueError:
        raise app.UsageError("--lengths must be integers")
    print(f"# seqbench.bench.rtrl: jax {jax.__version__}, {jax.devices()[0].device_kind}; "
          f"median of {FLAGS.repeats}", flush=True)
    if FLAGS.train_step:
        print(f"| D | T | BPTT temp MiB | BPTT ms | TBPTT({FLAGS.segment}) temp MiB | TBPTT ms "
              f"| RTRL({FLAGS.segment}) temp MiB | RTRL ms |\n|--:|--:|--:|--:|--:|--:|--:|--:|")
        for steps in lengths:
            print(train_step_row(FLAGS.width, steps, FLAGS.segment, FLAGS.repeats,
                                 steps <= FLAGS.time_max_length), flush=True)
        return
    print("| D | T | BPTT temp MiB | BPTT ms | RTRL temp MiB | RTRL ms |\n"
          "|--:|--:|--:|--:|--:|--:|")
    for steps in lengths:
        print(measure(FLAGS.width, steps, FLAGS.repeats), flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
