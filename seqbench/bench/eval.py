"""Peak memory and wall time of one streaming evaluation, in a fresh process per length.

    python -m seqbench.bench.eval --length=10000
    python -m seqbench.bench.eval --length=1000000      # target: peak RSS within 1.5x of 10,000

Issue 5's target for streaming evaluation: a diagonal linear recurrence (LRU, width 64, depth 2,
random parameters) evaluated at length 1,000,000 on the CPU with peak memory within 1.5x of its
length-10,000 evaluation. Peak RSS is per process, so each length is its own run; the last line
is one JSON object: length, steps, chunk size, wall seconds (test set + evaluation, compilation
included), peak RSS in MiB (`resource.getrusage(RUSAGE_SELF).ru_maxrss`, KiB on Linux) and the
accuracy per seed.
"""

from __future__ import annotations

import json
import resource
import time

import jax
from absl import app, flags

from seqbench import cells, evaluate, models, tasks

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command-line flags (only when run as a program, so modules import cleanly)."""
    flags.DEFINE_integer("length", 10_000, "Input length of the test sequences.", lower_bound=1)
    flags.DEFINE_string("cell", "lru", "Cell of the model.")
    flags.DEFINE_string("task", "parity_check", "Task whose test set is evaluated.")
    flags.DEFINE_integer("width", 64, "Model width.", lower_bound=1)
    flags.DEFINE_integer("depth", 2, "Residual blocks.", lower_bound=1)
    flags.DEFINE_integer("size", 8, "Test sequences.", lower_bound=1)
    flags.DEFINE_integer("seeds", 1, "Parameter sets evaluated together (vmap).", lower_bound=1)
    flags.DEFINE_integer("chunk_size", evaluate.CHUNK_SIZE, "Streaming piece length.",
                         lower_bound=1)


def measure(*, length: int, cell: str, task: str, width: int, depth: int, size: int,
            seeds: int, chunk_size: int) -> dict:
    """Evaluates one length and returns the JSON record (peak RSS of this whole process)."""
    task_ = tasks.get(task)
    model = models.build(cells.get(cell, d_hidden=width), input_dim=task_.input_vocab,
                         output_dim=max(task_.output_vocab, 1) * task_.num_heads, depth=depth,
                         real_inputs=task_.real_inputs)
    params = jax.vmap(model.init)(jax.random.split(jax.random.key(0), seeds))
    start = time.perf_counter()
    entry = evaluate.length_grid(model, params, task_, [length], size,
                                 chunk_size=chunk_size)[length]
    return {
        "length": length, "steps": task_.seq_len(length), "chunk_size": chunk_size,
        "cell": cell, "task": task, "width": width, "depth": depth, "size": size,
        "wall_s": round(time.perf_counter() - start, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "accuracy": entry["accuracy"],
    }


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.cell not in cells.names():
        raise app.UsageError(f"--cell: unknown {FLAGS.cell!r}; valid: {', '.join(cells.names())}")
    if FLAGS.task not in tasks.names():
        raise app.UsageError(f"--task: unknown {FLAGS.task!r}; valid: {', '.join(tasks.names())}")
    print(json.dumps(measure(length=FLAGS.length, cell=FLAGS.cell, task=FLAGS.task,
                             width=FLAGS.width, depth=FLAGS.depth, size=FLAGS.size,
                             seeds=FLAGS.seeds, chunk_size=FLAGS.chunk_size)), flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
