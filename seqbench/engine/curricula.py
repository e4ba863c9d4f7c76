"""Training-length curricula: which input lengths each training batch has.

A curriculum is a `Curriculum` of two pure functions, looked up once by name (optax's pattern;
the Chomsky repo's `curriculum.py` has one class per strategy):

- `batch_length(low, high, seed, step, steps) -> int`, on the host before the step: the length
  that decides the step's compiled bucket (`bucket`);
- `row_lengths(low, high, key, step, steps, batch_length, batch_size) -> (B,) int32`, inside
  the jitted step: every row's input length (each <= the bucket).

with `low` = `min_train_length` and `high` = `train_length`. Curricula whose lengths are drawn
on the device use one bucket (`high`): one compilation for every length. `uniform_batch`, the
Chomsky protocol's one length per batch, picks the length on the host so that the step runs
at its bucket (a multiple of `BUCKET_MULTIPLE`) instead of padding every batch to the longest.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

BUCKET_MULTIPLE = 8  # uniform_batch: steps are compiled at lengths 8, 16, ..., train_length


class Curriculum(NamedTuple):
    """How the input lengths of a training batch are drawn (see the module docstring)."""

    help: str
    batch_length: Callable[[int, int, int, int, int], int]
    row_lengths: Callable[..., jax.Array]
    per_batch: bool  # True: one length per batch, chosen on the host; the step runs at its bucket


def _high(low, high, seed, step, steps):
    return high


def _fixed_rows(low, high, key, step, steps, batch_length, batch_size):
    return jnp.full((batch_size,), high, jnp.int32)


def _uniform_rows(low, high, key, step, steps, batch_length, batch_size):
    return jax.random.randint(key, (batch_size,), low, high + 1)


def _increasing_rows(low, high, key, step, steps, batch_length, batch_size):
    ramp = max(steps // 2, 1)
    return jnp.full((batch_size,), low + (high - low) * jnp.minimum(step, ramp) // ramp, jnp.int32)


def _uniform_batch_length(low, high, seed, step, steps):
    return int(np.random.default_rng((seed, step)).integers(low, high + 1))


def _batch_rows(low, high, key, step, steps, batch_length, batch_size):
    return jnp.full((batch_size,), batch_length, jnp.int32)


CURRICULA = {
    "fixed": Curriculum("every sequence train_length", _high, _fixed_rows, False),
    "uniform": Curriculum("U[min_train_length, train_length] per sequence", _high,
                          _uniform_rows, False),
    "uniform_batch": Curriculum("U[min_train_length, train_length], one length per batch "
                                "(Delétang et al. 2023)", _uniform_batch_length, _batch_rows,
                                True),
    "increasing": Curriculum("one length per step, linear from min_train_length to "
                             "train_length over the first half of the steps", _high,
                             _increasing_rows, False),
}
NAMES = tuple(CURRICULA)
HELP = "; ".join(f"{name}: {c.help}" for name, c in CURRICULA.items()) + "."


def bucket(curriculum: Curriculum, batch_length: int, high: int) -> int:
    """The padded input length a step with `batch_length` is compiled at."""
    if not curriculum.per_batch:
        return high
    return min(-(-batch_length // BUCKET_MULTIPLE) * BUCKET_MULTIPLE, high)


def buckets(curriculum: Curriculum, low: int, high: int) -> list[int]:
    """Every bucket the curriculum can use, shortest first."""
    return sorted({bucket(curriculum, n, high) for n in range(low, high + 1)})
