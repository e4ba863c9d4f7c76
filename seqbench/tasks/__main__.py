"""List the registered tasks and show one sample of each.

    python -m seqbench.tasks                 # every task
    python -m seqbench.tasks mqar s5         # only these
    python -m seqbench.tasks --table-only    # the table, no samples (no compilation)

Prints a table (name, group, input and output vocabularies, minimum length, chance) and then,
per task, one sequence at length max(min_length, 8) with its inputs, targets and mask, one
column per step. Works for any registered task: token or real-valued inputs (B, T) or
(B, T, input_vocab), targets (B, T) or with a head axis (B, T, H). Exit status 1 if some task
could not be built or sampled. Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

import sys
import traceback
from typing import Sequence, TextIO

import jax
import jax.numpy as jnp
import numpy as np

from seqbench import tasks

SAMPLE_LENGTH = 8  # sample at max(min_length, SAMPLE_LENGTH)
MAX_STEPS = 48  # columns shown per sample; longer sequences are cut with a note
MAX_FEATURES = 3  # values shown per step of a real-valued or multi-head array


def _cell(value: np.ndarray) -> str:
    """One step of an array as text: a token, a number, or a few comma-joined values."""
    flat = np.ravel(value)
    shown = [_scalar(v) for v in flat[:MAX_FEATURES]]
    return ",".join(shown) + ("…" if flat.size > MAX_FEATURES else "")


def _scalar(value: np.generic) -> str:
    if np.issubdtype(np.asarray(value).dtype, np.bool_):
        return "T" if value else "."
    if np.issubdtype(np.asarray(value).dtype, np.integer):
        return str(int(value))
    return f"{float(value):.2g}"


def render_rows(labelled: dict[str, np.ndarray], max_steps: int = MAX_STEPS) -> list[str]:
    """Aligned text lines, one per (label, array of shape (T, ...)), one column per step."""
    steps = min(len(a) for a in labelled.values())
    shown = min(steps, max_steps)
    cells = {label: [_cell(a[t]) for t in range(shown)] for label, a in labelled.items()}
    widths = [max(len(c[t]) for c in cells.values()) for t in range(shown)]
    label_width = max(len(label) for label in labelled)
    lines = []
    for label, row in cells.items():
        text = " ".join(c.rjust(w) for c, w in zip(row, widths))
        lines.append(f"  {label.ljust(label_width)}  {text}")
    if steps > shown:
        lines.append(f"  ({steps - shown} more steps not shown)")
    return lines


def _vocab(task: tasks.Task) -> tuple[str, str]:
    inputs = f"real x{task.input_vocab}" if task.real_inputs else str(task.input_vocab)
    outputs = "regression" if task.output_vocab == 0 else str(task.output_vocab)
    return inputs, outputs


def table(built: dict[str, tasks.Task]) -> list[str]:
    """One line per task: name, group, input/output vocabularies, min length, chance."""
    header = ("task", "group", "inputs", "outputs", "min_len", "chance")
    rows = [header] + [
        (name, t.group, *_vocab(t), str(t.min_length), f"{t.chance:.3g}")
        for name, t in built.items()
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def sample_lines(task: tasks.Task, seed: int = 0) -> list[str]:
    """A header and the rendered inputs/targets/mask of one sequence of `task`."""
    length = max(task.min_length, SAMPLE_LENGTH)
    task.check_length(length)
    generate = jax.jit(task.generate, static_argnums=2)  # one program: faster than op by op
    lengths = jnp.full((1,), length, jnp.int32)
    batch = jax.device_get(generate(jax.random.key(seed), lengths, length))
    inputs, targets, mask = (np.asarray(a)[0] for a in batch)
    head = f"{task.name} [{task.group}] L={length} T={inputs.shape[0]} {task.difficulty(length)}"
    return [head] + render_rows({"inputs": inputs, "targets": targets, "mask": mask})


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    argv = list(argv or [])
    with_samples = "--table-only" not in argv
    names = [a for a in argv if a != "--table-only"] or tasks.names()
    built, failed = {}, []
    for name in names:
        try:
            built[name] = tasks.get(name)
        except Exception as error:  # noqa: BLE001 -- report every broken task, keep going
            failed.append(f"{name}: cannot build: {error}")
    print("\n".join(table(built)), file=out)
    for name, task in built.items():
        if not with_samples:
            break
        print(file=out)
        try:
            print("\n".join(sample_lines(task)), file=out)
        except Exception:  # noqa: BLE001
            failed.append(f"{name}: cannot sample:\n{traceback.format_exc()}")
    for line in failed:
        print(f"\nERROR {line}", file=out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
