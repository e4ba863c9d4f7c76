"""The tape shared by the Chomsky-hierarchy tasks (Delétang et al., ICLR 2023).

Protocol of the paper's code (`make_model_with_empty_targets`, computation_steps_mult=0): the
model reads the L input tokens, then `output_length(L)` blank steps, and its outputs on the
blank steps are the answer. A classification task has output_length 1, so its answer is read
at the one blank step right after the input (not at the last input token). The paper one-hot
encodes `input_size` symbols plus one extra dimension for the blank, so here
`input_vocab = input_size + 1` and the blank token is `input_size`.

Layout of row i, input length L_i, output length n_i = output_length(L_i):

    t <  L_i               input token      target 0          mask False
    L_i <= t < L_i + n_i   blank            out[t - L_i]      scored[t - L_i]
    t >= L_i + n_i         0 (padding)      0                 False

and T = seq_len(max_length) = max_length + output_length(max_length). Every task's
`output_length` is non-decreasing, so any shorter row fits the bucket of its maximum.
Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from seqbench.tasks.base import Batch, Task, positions


class Tape(NamedTuple):
    """What a task's core computes; `chomsky_task` lays it out on the time axis."""

    inputs: jax.Array  # shape=(B, max_length) int32; entries at or after the row's length ignored
    outputs: jax.Array  # shape=(B, output_length(max_length)) int32: targets of the output steps
    scored: jax.Array | None = None  # shape=outputs.shape bool; None: every output step of the row
    lengths: jax.Array | None = None  # shape=(B,) int32 input length used; None: as requested


CoreFn = Callable[[jax.Array, jax.Array, int], Tape]  # (key, lengths, max_length) -> Tape


def chomsky_task(
    name: str,
    group: str,
    core: CoreFn,
    *,
    input_size: int,
    output_size: int,
    output_length: Callable[[Any], Any],
    min_length: int,
    chance: float,
    hparams: dict[str, Any],
    describe: Callable[[int], dict[str, Any]] = lambda length: {},
    input_length: Callable[[int], int] = lambda length: length,
) -> Task:
    """A Task whose rows are `core`'s input, then `output_length(L)` blank steps that are scored.

    `output_length` must work on Python ints and on int32 arrays (use `//`, not `math.ceil`).
    `input_length(L)` is the number of input tokens actually used at requested length L (the
    paper shortens some inputs, e.g. modular_arithmetic keeps odd lengths only).
    """
    blank = input_size

    def seq_len(length: int) -> int:
        return int(length) + int(output_length(int(length)))

    def generate(key: jax.Array, lengths: jax.Array, max_length: int) -> Batch:
        tape = core(key, lengths, max_length)
        in_len = lengths if tape.lengths is None else tape.lengths
        out_len = output_length(in_len)
        batch, steps = lengths.shape[0], seq_len(max_length)
        t = positions(batch, steps)
        j = t - in_len[:, None]  # index of the output step; negative on the input
        is_input = j < 0
        is_output = (j >= 0) & (j < out_len[:, None])
        read = jnp.pad(tape.inputs, ((0, 0), (0, steps - max_length)))
        inputs = jnp.where(is_input, read, jnp.where(is_output, blank, 0))
        jj = jnp.clip(j, 0, tape.outputs.shape[1] - 1)
        targets = jnp.where(is_output, jnp.take_along_axis(tape.outputs, jj, axis=1), 0)
        mask = is_output
        if tape.scored is not None:
            mask = mask & jnp.take_along_axis(tape.scored, jj, axis=1)
        return Batch(inputs.astype(jnp.int32), targets.astype(jnp.int32), mask)

    def difficulty(length: int) -> dict[str, Any]:
        used = input_length(int(length))
        return {
            "input_tokens": used,
            "output_steps": int(output_length(used)),
            **describe(used),
        }

    return Task(
        name=name,
        group=group,
        generate=generate,
        seq_len=seq_len,
        input_vocab=input_size + 1,
        output_vocab=output_size,
        min_length=min_length,
        chance=chance,
        difficulty=difficulty,
        hparams=hparams,
    )


def one_step(length: Any) -> Any:
    """output_length of a classification task: 1, as an int or an array like `length`."""
    return length * 0 + 1


def uniform_tokens(key: jax.Array, lengths: jax.Array, max_length: int, vocab: int) -> jax.Array:
    """(B, max_length) int32: uniform tokens in [0, vocab) before each row's length, 0 after.

    Args:
      key: a PRNG key.
      lengths: int32 input lengths, shape (B,).
      max_length: the static width of the result.
      vocab: the number of tokens.
    """
    pos = positions(lengths.shape[0], max_length)
    tokens = jax.random.randint(key, pos.shape, 0, vocab, jnp.int32)
    return jnp.where(pos < lengths[:, None], tokens, 0)


def check_at_least(task: str, name: str, value: int, low: int, why: str) -> None:
    """Raise a one-line ValueError unless `value >= low`."""
    if not isinstance(value, (int,)) or isinstance(value, bool) or value < low:
        raise ValueError(f"{task}: {name}={value!r} must be an int >= {low} ({why})")
