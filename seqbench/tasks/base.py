"""The task contract: a `Task` turns a key and lengths into a padded, masked `Batch`.

Shape letters: see `kernels/typing.py` (B batch, T steps of the padded sequence, L input
length; here B is one axis of rows).

A task generates its data inside `jax.jit`, on the device. Every generator is written once,
for a whole *bucket*: the batch has a static padded length while each row's input length is a
traced int32, so sampling any length up to the bucket size compiles once (the Chomsky
protocol's uniform 1..40 lengths cost one compilation, not 40). Padding only ever follows the
real sequence, and its mask is zero, so a causal model's scored outputs never see it.
"""

from __future__ import annotations

import collections
import hashlib
import json
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Batch(NamedTuple):
    """One batch of a task. Token tasks: int32 inputs; real-valued tasks: float32 inputs."""

    inputs: jax.Array  # shape=(B, T) int32 tokens, or (B, T, input_vocab) float32
    targets: jax.Array  # shape=(B, T) int32 classes, (B, T) float32 for regression, (B, T, H) multi-head
    mask: jax.Array  # shape=targets.shape bool; True where the output is scored


# generate(key, lengths, max_length) -> Batch. `lengths` is an int32 array of shape (B,) with
# min_length <= lengths <= max_length (traced); `max_length` is a static Python int. The batch's
# time axis is `seq_len(max_length)`.
GenerateFn = Callable[[jax.Array, jax.Array, int], Batch]


class Task(NamedTuple):
    """A benchmark question, defined at every length >= `min_length`.

    Fields are plain data and pure functions, so a Task can be closed over by a jitted step.
    """

    name: str
    group: str  # "memory" | "state_tracking" | "regular" | "context_free" | "context_sensitive" | "real"
    generate: GenerateFn
    seq_len: Callable[[int], int]  # padded steps T of a sequence whose input length is L
    input_vocab: int  # token tasks: number of input tokens; real-valued tasks: input dimension
    output_vocab: int  # number of target classes; 0 for real-valued (MSE) targets
    min_length: int
    chance: float  # accuracy of the best input-blind guess (for regression: its MSE)
    difficulty: Callable[[int], dict[str, Any]]  # what the task asks at input length L
    hparams: dict[str, Any]  # exactly the factory's kwargs: get(name, **hparams) rebuilds it
    real_inputs: bool = False  # True when inputs are (B, T, input_vocab) floats, not tokens
    num_heads: int = 1  # H > 1: targets and mask are (B, T, H), one output_vocab head each
    # Real-data tasks: a GenerateFn drawing from data that `generate` never draws from (held-out
    # images or documents); `test_set` uses it, so runs are scored on unseen data. None: the
    # synthetic tasks, whose test sets come from `generate` under a fixed seed.
    held_out: GenerateFn | None = None
    max_length: int | None = None  # the longest input length it can produce (None: any)

    def check_length(self, length: int) -> None:
        """Raise a ValueError naming the limit when `length` is too short for this task, or
        longer than its `max_length`."""
        if int(length) < self.min_length:
            raise ValueError(
                f"task {self.name!r} needs length >= {self.min_length} "
                f"(with {self.hparams}); got length={length}"
            )
        if self.max_length is not None and int(length) > self.max_length:
            raise ValueError(
                f"task {self.name!r} can produce lengths up to {self.max_length} "
                f"(with {self.hparams}); got length={length}"
            )

    def sample(self, key: jax.Array, batch_size: int, length: int) -> Batch:
        """A batch of `batch_size` sequences, every one of input length `length`. Jittable.

        Args:
          key: a PRNG key.
          batch_size: B, the rows.
          length: L, the input length (a Python int >= `min_length`).

        Returns:
          A `Batch` with T = `seq_len(L)` steps: inputs (B, T) int32 (or (B, T, input_vocab)
          float32 when `real_inputs`), targets (B, T) (or (B, T, H) when num_heads = H > 1),
          and a bool mask of the targets' shape.
        """
        self.check_length(length)
        lengths = jnp.full((batch_size,), length, jnp.int32)
        return self.generate(key, lengths, int(length))

    def sample_bucket(
        self, key: jax.Array, lengths: jax.Array, bucket: int
    ) -> Batch:
        """A batch whose rows have the (traced) input lengths `lengths`, padded to `bucket`.

        One compilation serves every length in the bucket.

        Args:
          key: a PRNG key.
          lengths: int32 of shape (B,), each in [min_length, bucket] (clipped into it).
          bucket: the static input length the batch is laid out for.

        Returns:
          A `Batch` as `sample` returns, with T = `seq_len(bucket)` steps; a row's steps after
          its own sequence are padding (mask False).
        """
        self.check_length(bucket)
        lengths = jnp.asarray(lengths, jnp.int32)
        lengths = jnp.clip(lengths, self.min_length, bucket)
        return self.generate(key, lengths, int(bucket))

    def test_set(self, length: int, size: int, seed: int = 0) -> tuple[Batch, str]:
        """The fixed evaluation set at `length`: `size` sequences and their content hash.

        Drawn by `held_out` when the task has one (real data never trained on), else by
        `generate`. Derived from (seed, length) alone, so two runs or two machines score on
        identical data;
        the sha256 over inputs, targets and mask is recorded in results to prove it. Generated
        in the bucket `test_bucket(length)` (one compilation per bucket, not per length: the
        Chomsky protocol's 460 test lengths cost 4) and cut to `seq_len(length)` steps; every
        row has input length `length`, so the cut drops padding only.

        Args:
          length: L, the input length of every row.
          size: B, the rows.
          seed: the base seed (the key is `fold_in(key(seed), length)`).

        Returns:
          (batch, hash): a `Batch` of NumPy arrays, inputs (B, T) or (B, T, input_vocab), targets
          and mask (B, T) or (B, T, H), with T = `seq_len(L)`; and its `content_hash`.
        """
        self.check_length(length)
        key = jax.random.fold_in(jax.random.key(seed), length)
        lengths = jnp.full((size,), length, jnp.int32)
        padded = jax.device_get(_jitted(self)(key, lengths, test_bucket(length)))
        steps = self.seq_len(length)
        batch = Batch(*(np.ascontiguousarray(np.asarray(x)[:, :steps]) for x in padded))
        del padded  # the bucket's arrays go before the caller holds the cut copy
        return batch, content_hash(batch)


def test_bucket(length: int, smallest: int = 16) -> int:
    """The input length `Task.test_set` generates at: the next power of two >= length (>= 16)."""
    return max(smallest, 1 << (int(length) - 1).bit_length())


MAX_JITTED = 32  # test-set generators kept compiled (least recently used dropped)
_JITTED: "collections.OrderedDict[tuple[str, str], Callable]" = collections.OrderedDict()


def _jitted(task: "Task"):
    """One jitted test-set generator (`held_out`, else `generate`) per task *configuration*
    (name, hparams), so a sweep that builds the same task anew for every run reuses the
    compilations, and at most `MAX_JITTED` are kept alive (each holds its executables)."""
    key = (task.name, json.dumps(task.hparams, sort_keys=True, default=str))
    if key in _JITTED:
        _JITTED.move_to_end(key)
    else:
        _JITTED[key] = jax.jit(task.held_out or task.generate, static_argnums=2)
        if len(_JITTED) > MAX_JITTED:
            _JITTED.popitem(last=False)
    return _JITTED[key]


def content_hash(batch: Batch) -> str:
    """sha256 (hex, first 16 chars) of a batch's arrays, their dtypes and shapes."""
    digest = hashlib.sha256()
    for array in batch:
        array = np.ascontiguousarray(np.asarray(array))
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def positions(batch_size: int, steps: int) -> jax.Array:
    """int32 positions 0..steps-1 broadcast to (B, T) = (batch_size, steps)."""
    return jnp.broadcast_to(jnp.arange(steps, dtype=jnp.int32), (batch_size, steps))
