"""Task sampling throughput against one training step of a reference model, per task.

    python -m seqbench.bench.data                        # every task, B=64, L=256, lru width 64
    python -m seqbench.bench.data --tasks=mqar,copy --cell=lstm --length=512

Data is generated inside the training step, on the device, so what matters is its share of a
step: `sample ms / (sample ms + train-step ms)`. The target is under 5% at the reference size.
The train step is the gradient of the masked cross-entropy (or MSE) of a depth-2 model through
`jax.grad`, without the optimiser update (a lower bound on a real step, so the share is an
upper bound).
"""

from __future__ import annotations

import jax
from absl import app, flags

from seqbench import cells, evaluate, models, tasks
from seqbench.kernels.timing import median_ms

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command-line flags (only when run as a program, so modules import cleanly)."""
    flags.DEFINE_list("tasks", None, "Tasks to measure (default: all).")
    flags.DEFINE_string("cell", "lru", "Cell of the reference model.")
    flags.DEFINE_integer("width", 64, "Width of the reference model.", lower_bound=1)
    flags.DEFINE_integer("batch", 64, "Batch size.", lower_bound=1)
    flags.DEFINE_integer("length", 256, "Input length (raised to a task's min_length).",
                                   lower_bound=1)
    flags.DEFINE_integer("repeats", 5, "Timed calls (median).", lower_bound=1)


def loss_fn(model, task):
    """The training loss of one seed's parameters on a batch (`evaluate.loss_and_accuracy`)."""
    return lambda params, batch: evaluate.loss_and_accuracy(model, task.output_vocab, params,
                                                            batch)[0]


def measure(task_name: str, cell_name: str, width: int, batch_size: int, length: int, repeats: int):
    task = tasks.get(task_name)
    length = max(length, task.min_length)
    model = models.build(
        cells.get(cell_name, d_hidden=width),
        input_dim=task.input_vocab,
        output_dim=max(task.output_vocab, 1) * task.num_heads,
        real_inputs=task.real_inputs,
    )
    params = model.init(jax.random.key(0))
    sample = jax.jit(lambda key: task.sample(key, batch_size, length))
    batch = sample(jax.random.key(1))
    grad = jax.jit(jax.grad(loss_fn(model, task)))
    sample_ms = median_ms(sample, jax.random.key(2), repeats=repeats)
    step_ms = median_ms(grad, params, batch, repeats=repeats)
    return length, sample_ms, step_ms


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    names = FLAGS.tasks or tasks.names()
    unknown = sorted(set(names) - set(tasks.names()))
    if unknown:
        raise app.UsageError(f"--tasks: unknown {unknown}; valid: {', '.join(tasks.names())}")
    if FLAGS.cell not in cells.names():
        raise app.UsageError(
            f"--cell: unknown {FLAGS.cell!r}; valid: {', '.join(cells.names())}")
    print(f"# jax {jax.__version__} on {jax.devices()[0].device_kind}; model: {FLAGS.cell} "
          f"width {FLAGS.width} depth 2; batch {FLAGS.batch}")
    print(f"{'task':<30}{'L':>6}{'sample ms':>11}{'grad-step ms':>14}{'data share':>12}")
    for name in names:
        length, sample_ms, step_ms = measure(
            name, FLAGS.cell, FLAGS.width, FLAGS.batch, FLAGS.length, FLAGS.repeats
        )
        share = sample_ms / (sample_ms + step_ms)
        print(f"{name:<30}{length:>6}{sample_ms:>11.3f}{step_ms:>14.2f}{100 * share:>11.1f}%",
              flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
