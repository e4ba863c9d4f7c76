"""Length-generalisation evaluation: accuracy at every length of a grid, per seed, streamed.

    grid = default_lengths(task, train_length)   # train_length x {1, 2, ..., 64} (+ 41..500)
    per_length = length_grid(model, seed_params, task, grid, size=256)

Each length is scored on the task's fixed test set (`Task.test_set`, seed `EVAL_SEED`), so two
runs or two machines score on identical data; its content hash is recorded. Parameters carry a
leading seed axis and are evaluated together with `vmap`. Every evaluation starts from the zero
state (the interventions of Buitrago & Gu 2025 apply to training only).

Recurrent cells (`Cell.recurrent`: a fixed-size state) are **streamed**: the T = `task.seq_len(n)` steps
of a test sequence go through the model in pieces with the state carried between them (cells
guarantee that scanning pieces equals scanning the whole), so memory does not grow with the
length beyond the test set itself. The pieces (`schedule`) are 1, 1, 2, 4, ... while the total
doubles and stays below `chunk_size`, then `chunk_size` steps at a time, then the remainder in
powers of two, largest first. Every step is a real one (no padding), so the state after each
piece is exactly the state after that many steps; the piece sizes are `chunk_size` and powers
of two below it, so a whole grid of lengths compiles at most log2(chunk_size) + 2 programs.
Attention (any cell whose state grows with time, `Cell.sized_for`) is evaluated whole, its KV
cache sized to the time axis padded to the next power of two
(>= 64, mask False after the real steps, so the causal model's scored outputs are unchanged):
one program per power of two. When the estimate (`attention_eval_bytes`) of all `size` rows
exceeds `max_eval_bytes`, the rows go through in equal groups that fit (a divisor of `size`,
`attention_rows`); a length that does not fit even one row at a time is recorded as skipped
instead of crashing. (Until 2026-12-01, fifth session, any length over the limit was skipped:
the Chomsky preset's attention runs lost their lengths 261..500 that way.)

Metrics of one length n (T steps, `size` rows, per seed; every value JSON-serialisable and of
bounded size):
- `accuracy` = Σ hits / Σ mask over rows, steps (and heads of multi-head tasks). A hit is
  argmax = target (classification) or |output - target| < `REGRESSION_TOLERANCE` (regression,
  `vocab == 0`).
- `loss` = Σ loss·mask / Σ mask: cross-entropy in nats, or the squared error for regression.
- `per_position_accuracy` = {"bin_edges": e, "accuracy": a}: nbins = min(32, T) equal-width bins
  of the steps; step t (0-based) falls in bin floor(t·nbins / T), i.e. bin b holds the steps
  e[b] <= t < e[b+1] with e[b] = ceil(b·T / nbins). a[b] is the per-seed accuracy over the scored
  positions of bin b, or null when the bin scores nothing (e.g. every bin but the last of a
  task scored at its final step only).
- `loss_by_position` = {"bin_edges": e, "loss": l}: log-spaced bins of the steps, step t in bin
  bit_length(t) (0 | 1 | 2-3 | 4-7 | ...), so e = [0, 1, 2, 4, ..., T]; l[k] is the per-seed
  mean loss over the scored positions of bin k, or null when it scores nothing. For a language
  model (every step scored) it is the loss as a function of the context length, the figure of
  Buitrago Ruiz & Gu 2025.
- `state_norm` = {"positions": p, "norm": m}: m[i] is, per seed, the mean over the rows of
  sqrt(Σ |s|²) over every entry s of every float leaf of every layer's state after p[i] steps
  (complex entries by modulus; integer leaves such as attention's position counter skipped).
  Positions: recurrent cells, the piece ends of the schedule (1, 2, 4, ... up to chunk_size,
  then log-spaced chunk ends, always T), at most `MAX_NORM_POSITIONS`; attention, the same
  count log-spaced in 1..T, read off the final KV cache (slot j holds token j's key and value,
  so the slots < t are exactly the cache after t tokens); none (empty lists) for a cache whose
  slots change after they are written (`Cell.cache_rewritten`: PaTH attention).
- `test_set_hash`; for a skipped length `"skipped": "<reason>"`, accuracy and loss lists of
  None, and no hash, per-position accuracy or norms.

Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from seqbench.tasks import Task

logger = logging.getLogger(__name__)

EVAL_SEED = 1234
# effective_length (`summarise`): a seed fits its training lengths when its in-distribution
# accuracy gains FIT_MARGIN of the way from chance to 1; a length is held while it keeps HOLD
# of that gain.
FIT_MARGIN = 0.1
HOLD = 0.9
CHOMSKY_GROUPS = ("regular", "context_free", "context_sensitive")
CHOMSKY_TEST_LENGTHS = range(41, 501)  # Delétang et al. 2023: train 1..40, test 41..500
# The adding problem's criterion (Hochreiter & Schmidhuber 1997, Sec. 5, Experiment 4): a
# sequence is solved when the absolute error at its end is below 0.04. Applied to our target
# U1 + U2 in [0, 2) it is twice as strict as the original on its [0, 1] target; an input-blind
# guess of 1 meets it with probability ~0.08.
REGRESSION_TOLERANCE = 0.04
CHUNK_SIZE = 256  # streaming piece: on the CPU ~2x the throughput of 1024 or 4096 (seqbench.bench.eval)
MAX_EVAL_BYTES = 8 * 2**30  # attention lengths whose estimate exceeds this are skipped
MAX_BINS = 32  # per-position accuracy bins
MAX_NORM_POSITIONS = 32  # state-norm positions per length
MAX_LOSS_BINS = 32  # log-spaced loss bins: steps up to 2^31
MIN_ATTENTION_BUCKET = 64


def default_lengths(task: Task, train_length: int, max_factor: int = 64) -> list[int]:
    """train_length x {1, 2, 4, ..., max_factor}, plus every length 41..500 for formal-language
    tasks (`CHOMSKY_GROUPS`), never below the task's minimum length nor above its `max_length`.

    The 41..500 range is the Chomsky protocol's fixed test range, whatever `train_length` is:
    trained at 40 it is exactly "every length beyond training"; trained longer, its lengths
    <= train_length count as in-distribution in `summarise`.
    """
    lengths = {train_length * 2**k for k in range(int(math.log2(max_factor)) + 1)}
    if task.group in CHOMSKY_GROUPS:
        lengths |= set(CHOMSKY_TEST_LENGTHS)
    lengths = {max(task.min_length, n) for n in lengths}
    return sorted(n for n in lengths if task.max_length is None or n <= task.max_length)


def masked_loss_and_hits(outputs: jax.Array, targets: jax.Array, mask: jax.Array, vocab: int):
    """(per-position loss, per-position hit & mask).

    vocab > 0: outputs reshaped to targets.shape + (vocab,) are logits; loss = cross-entropy,
    hit = argmax == target. vocab == 0 (regression): outputs reshaped to targets.shape; loss =
    squared error, hit = |error| < REGRESSION_TOLERANCE.

    Args:
      outputs: the model's outputs, shape (B, T, O) with O = vocab·H (or H for regression),
        H = 1 unless the task is multi-head.
      targets: shape (B, T) or (B, T, H); int32 classes, or float32 for regression.
      mask: bool, the shape of `targets`.
      vocab: the task's output_vocab (0: regression).

    Returns:
      (loss, hits): float32 loss per position and bool hits (already and-ed with `mask`), both
      the shape of `targets`.
    """
    if vocab == 0:
        error = outputs.reshape(targets.shape).astype(jnp.float32) - targets
        return error * error, (jnp.abs(error) < REGRESSION_TOLERANCE) & mask
    logits = outputs.reshape(*targets.shape, vocab).astype(jnp.float32)
    log_probs = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    hits = jnp.argmax(logits, axis=-1) == targets
    return nll, hits & mask


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    """The mean of `values` over the positions where the bool `mask` (same shape) is True, as a
    float32 scalar (0 where no position is); masked-out values are never read."""
    count = jnp.maximum(mask.astype(jnp.float32).sum(), 1.0)
    return jnp.sum(jnp.where(mask, values, 0.0)) / count


def loss_and_accuracy(model, vocab, params, batch, state=None):
    """(loss, (accuracy, final_state)) of one seed's parameters on a batch: means over the
    scored positions. `state=None` starts from the zero state. Differentiable and jittable: the
    training loss (`jax.value_and_grad(..., has_aux=True)`) and the evaluation share it.

    Args:
      model: a `models.Model`.
      vocab: the task's output_vocab (0: regression).
      params: one seed's parameters (no seed axis).
      batch: a `tasks.Batch`: inputs (B, T) or (B, T, input_vocab), targets and mask (B, T) or
        (B, T, H).
      state: the model state to start from (leaves leading with (B,)), or None for zeros.

    Returns:
      (loss, (accuracy, final_state)): float32 scalars (mean loss and accuracy over the P
      scored positions, mask True) and the model state after the last step.
    """
    if state is None:
        state = model.initial_state(params, (batch.mask.shape[0],))
    final_state, outputs = model.apply(params, state, batch.inputs)
    loss, hits = masked_loss_and_hits(outputs, batch.targets, batch.mask, vocab)
    return masked_mean(loss, batch.mask), (masked_mean(hits, batch.mask), final_state)


def state_norm(state) -> jax.Array:
    """Mean over the leading (batch) axis of the L2 norm of all float leaves of `state`.

    `state`: a pytree whose leaves are (B, ...); returns a float32 scalar.
    """
    squares = sum(jnp.sum(jnp.abs(x).astype(jnp.float32) ** 2, axis=tuple(range(1, x.ndim)))
                  for x in _float_leaves(state))
    return jnp.mean(jnp.sqrt(squares))


def cache_prefix_norms(state, positions: jax.Array) -> jax.Array:
    """`state_norm` of a KV cache after each of `positions` tokens, from the final cache.

    Every float leaf is (B, S, ...) with slot j written by token j only; the cache after t
    tokens holds slots < t (the rest are still zero).

    Args:
      state: a KV-cache state whose float leaves are (B, S, ...).
      positions: int32 token counts in 1..S, shape (P,).

    Returns:
      The mean over rows of the cache norm after each count, shape (P,), float32.
    """
    squares = sum(jnp.sum(jnp.abs(x).astype(jnp.float32) ** 2, axis=tuple(range(2, x.ndim)))
                  for x in _float_leaves(state))  # (B, S)
    prefix = jnp.cumsum(squares, axis=1)
    return jnp.mean(jnp.sqrt(prefix[:, positions - 1]), axis=0)


def _float_leaves(state):
    return [x for x in jax.tree_util.tree_leaves(state) if jnp.issubdtype(x.dtype, jnp.inexact)]


def schedule(steps: int, chunk_size: int) -> list[int]:
    """Piece sizes summing to `steps`: 1, 1, 2, 4, ... (doubling the total while it is below
    chunk_size and fits), then chunk_size while it fits, then the rest in powers of two,
    largest first.

    schedule(41, 16) = [1, 1, 2, 4, 8, 16, 8, 1]; every size is chunk_size or a power of two
    below it.
    """
    pieces, done = [], 0
    while done < chunk_size and done + max(done, 1) <= steps:
        pieces.append(max(done, 1))
        done += pieces[-1]
    pieces += [chunk_size] * ((steps - done) // chunk_size)
    rest = (steps - done) % chunk_size
    pieces += [1 << k for k in reversed(range(rest.bit_length())) if rest >> k & 1]
    return pieces


def bin_edges(steps: int) -> list[int]:
    """Edges of nbins = min(32, steps) equal-width bins of 0..steps-1:
    e[b] = ceil(b·steps / nbins)."""
    bins = min(MAX_BINS, steps)
    return [-(-b * steps // bins) for b in range(bins + 1)]


def _bin_of(start: int, stop: int, steps: int) -> np.ndarray:
    """Bin index floor(t·nbins / T) of the steps start..stop-1 (int32 for the device)."""
    return (np.arange(start, stop, dtype=np.int64) * min(MAX_BINS, steps) // steps).astype(np.int32)


def loss_bin_edges(steps: int) -> list[int]:
    """Edges of the log-spaced loss bins of 0..steps-1: [0, 1, 2, 4, ..., steps]."""
    return [0] + [1 << k for k in range((steps - 1).bit_length())] + [steps]


def _loss_bin_of(start: int, stop: int) -> np.ndarray:
    """Loss bin bit_length(t) of the steps start..stop-1 (int32 for the device)."""
    steps = np.arange(start, stop, dtype=np.int64)
    return np.where(steps > 0, np.floor(np.log2(np.maximum(steps, 1))) + 1, 0).astype(np.int32)


def _log_spaced(candidates: list[int]) -> list[int]:
    """At most MAX_NORM_POSITIONS of the increasing `candidates`: the first candidate at or
    beyond each of MAX_NORM_POSITIONS log-spaced targets in [first, last]; the last always."""
    if len(candidates) <= MAX_NORM_POSITIONS:
        return list(candidates)
    targets = np.geomspace(candidates[0], candidates[-1], MAX_NORM_POSITIONS)
    index = np.searchsorted(candidates, targets - 1e-6 * targets)
    return [candidates[i] for i in sorted(set(index.tolist()) | {len(candidates) - 1})]


def _score(vocab, outputs, targets, mask, bins, loss_bins):
    """(Σ loss·mask, hits per bin, Σ loss·mask per loss bin) of one seed on one piece."""
    loss, hits = masked_loss_and_hits(outputs, targets, mask, vocab)
    masked = jnp.where(mask, loss, 0.0)
    per_step = lambda x: x.reshape(*x.shape[:2], -1).sum(axis=(0, 2))
    return (jnp.sum(masked), jax.ops.segment_sum(per_step(hits), bins, num_segments=MAX_BINS),
            jax.ops.segment_sum(per_step(masked), loss_bins, num_segments=MAX_LOSS_BINS))


@functools.lru_cache(maxsize=8)
def _streamer(apply, vocab):
    """The jitted piece function of a model's `apply`, vmapped over seeds: (params, state,
    inputs, targets, mask, bins, loss_bins) -> (state, (Σ loss·mask, hits per bin, loss per
    loss bin, state norm)). One program per piece size, kept across calls (a model evaluated
    again compiles nothing)."""

    def piece(params, state, inputs, targets, mask, bins, loss_bins):
        state, outputs = apply(params, state, inputs)
        return state, (*_score(vocab, outputs, targets, mask, bins, loss_bins),
                       state_norm(state))

    return jax.jit(jax.vmap(piece, in_axes=(0, 0, None, None, None, None, None)))


def _streamed(model, run, seed_params, batch, chunk_size):
    """Per-seed (Σ loss·mask, hits per bin, loss per loss bin, norm positions, norms) of a
    recurrent model."""
    steps = batch.mask.shape[1]
    pieces = schedule(steps, chunk_size)
    ends = np.cumsum(pieces).tolist()
    keep = set(_log_spaced(ends))
    state = jax.vmap(lambda p: model.initial_state(p, (batch.mask.shape[0],)))(seed_params)
    start, sums, hits, losses, norms = 0, [], [], [], []
    for stop in ends:
        state, (loss_sum, bin_hits, bin_loss, norm) = run(
            seed_params, state, *(jnp.asarray(x[:, start:stop]) for x in batch),
            _bin_of(start, stop, steps), _loss_bin_of(start, stop))
        sums.append(loss_sum)
        hits.append(bin_hits)
        losses.append(bin_loss)
        if stop in keep:
            norms.append(norm)
        start = stop
    sums, hits, losses, norms = jax.device_get((sums, hits, losses, norms))
    return (np.sum(np.asarray(sums, np.float64), axis=0), np.sum(hits, axis=0, dtype=np.int64),
            np.sum(np.asarray(losses, np.float64), axis=0), sorted(keep), np.asarray(norms).T)


def attention_bucket(steps: int) -> int:
    """Padded time axis (and KV cache length) of a whole attention evaluation."""
    return max(MIN_ATTENTION_BUCKET, 1 << (steps - 1).bit_length())


def attention_eval_bytes(model, seeds: int, size: int, steps: int) -> int:
    """Estimated peak bytes of evaluating attention whole on `size` rows of `steps` steps.

    S = attention_bucket(steps), D = width, H = heads, all seeds at once (vmap), float32:
      KV cache     seeds·size·S·D·depth·2·4           (keys and values of every layer)
      attention    seeds·size·H·S²·4·3                (scores, exponentials, weights; one layer)
      activations  seeds·size·S·(16·D + output_dim)·4  (residual, q/k/v/o, MLP, logits)
    """
    bucket = attention_bucket(steps)
    heads = model.cell.hparams.get("num_heads", 1)
    rows = seeds * size
    return int(rows * bucket * model.width * model.depth * 2 * 4
               + rows * heads * bucket * bucket * 4 * 3
               + rows * bucket * (16 * model.width + model.output_dim) * 4)


def attention_rows(model, seeds: int, size: int, steps: int, max_eval_bytes: int) -> int | None:
    """The most rows, a divisor of `size`, that attention evaluates at once within
    `max_eval_bytes` (`attention_eval_bytes`); None when not even one row fits."""
    for parts in range(1, size + 1):
        if size % parts == 0 and attention_eval_bytes(model, seeds, size // parts,
                                                      steps) <= max_eval_bytes:
            return size // parts
    return None


def _whole(model, vocab, seed_params, batch, task, compiled, rows):
    """Per-seed (Σ loss·mask, hits per bin, loss per loss bin, norm positions, norms) of
    attention, whole, `rows` rows at a time (a divisor of the batch: the sums add up over the
    groups and the norms, means over rows, average over groups of equal size)."""
    size, steps = batch.mask.shape[:2]
    bucket = attention_bucket(steps)
    if (bucket, rows) not in compiled:
        wide = model.with_cell(model.cell.sized_for(bucket))  # same parameters, longer state

        def whole(params, inputs, targets, mask, bins, loss_bins, positions):
            state, outputs = wide.apply(params, wide.initial_state(params, (rows,)), inputs)
            norms = (jnp.zeros((0,)) if wide.cell.cache_rewritten
                     else cache_prefix_norms(state, positions))
            return *_score(vocab, outputs, targets, mask, bins, loss_bins), norms

        compiled[bucket, rows] = jax.jit(jax.vmap(whole, in_axes=(0,) + (None,) * 6))
    padded = [np.pad(x, [(0, 0), (0, bucket - steps)] + [(0, 0)] * (x.ndim - 2)) for x in batch]
    bins = np.minimum(_bin_of(0, bucket, steps), min(MAX_BINS, steps) - 1)  # padding: mask False
    keep = [] if model.cell.cache_rewritten else _log_spaced(list(range(1, steps + 1)))
    positions = np.asarray(keep + [steps] * (MAX_NORM_POSITIONS - len(keep)), np.int32)
    loss_bins = _loss_bin_of(0, bucket)  # the padding's bins score nothing (mask False)
    groups = [jax.device_get(compiled[bucket, rows](
        seed_params, *(x[first:first + rows] for x in padded), bins, loss_bins, positions))
        for first in range(0, size, rows)]
    loss_sum, hits, bin_loss = (sum(np.asarray(g[i], np.float64) for g in groups)
                                for i in range(3))
    norms = np.mean([np.asarray(g[3]) for g in groups], axis=0)
    return (loss_sum, hits.astype(np.int64), bin_loss, keep, norms[:, :len(keep)])


def _metrics(batch, loss_sum, hits, bin_loss, positions, norms) -> dict[str, Any]:
    """The JSON entry of one length from the per-seed sums (definitions: module docstring)."""
    mask = np.asarray(batch.mask)
    steps = mask.shape[1]
    per_step = mask.reshape(*mask.shape[:2], -1).sum(axis=(0, 2))
    scored = np.bincount(_bin_of(0, steps, steps), weights=per_step, minlength=MAX_BINS)
    loss_scored = np.bincount(_loss_bin_of(0, steps), weights=per_step, minlength=MAX_LOSS_BINS)
    edges = loss_bin_edges(steps)
    count = max(per_step.sum(), 1)
    bins = min(MAX_BINS, steps)
    return {
        "accuracy": [float(h) for h in hits.sum(axis=1) / count],
        "loss": [float(s) for s in loss_sum / count],
        "per_position_accuracy": {
            "bin_edges": bin_edges(steps),
            "accuracy": [[float(h) for h in hits[:, b] / scored[b]] if scored[b] else None
                         for b in range(bins)],
        },
        "loss_by_position": {
            "bin_edges": edges,
            "loss": [[float(v) for v in bin_loss[:, k] / loss_scored[k]] if loss_scored[k]
                     else None for k in range(len(edges) - 1)],
        },
        "state_norm": {"positions": [int(p) for p in positions],
                       "norm": [[float(v) for v in column] for column in norms.T]},
    }


def length_grid(
    model,
    seed_params,
    task: Task,
    lengths,
    size: int,
    *,
    chunk_size: int = CHUNK_SIZE,
    max_eval_bytes: int | None = None,
    stop: Callable[[], bool] | None = None,
) -> dict[int, dict[str, Any]]:
    """{length: metrics} for every length (definitions: module docstring).

    `seed_params` has a leading seed axis. Recurrent models are streamed in pieces of at most
    `chunk_size` steps; attention is evaluated whole, or recorded as skipped when its estimated
    memory exceeds `max_eval_bytes`. One line per length is logged (`seqbench.logs`); `stop`,
    when given and true before a length, ends the evaluation early (the lengths done so far).

    Args:
      model: a `models.Model`.
      seed_params: parameters with a leading seed axis on every leaf.
      task: the `Task` whose `test_set` is scored.
      lengths: input lengths L to evaluate (each >= task.min_length).
      size: test sequences B per length.
      chunk_size: the longest streamed piece, in steps.
      max_eval_bytes: attention's memory limit per length (None: `MAX_EVAL_BYTES`).
      stop: optional callable checked before each length.

    Returns:
      {L: metrics}: per length, lists with one float per seed ("accuracy", "loss"), the
      per-position accuracy of min(32, T) bins, the state norms at up to 32 positions, and the
      test set's hash; or "skipped" with lists of None.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    for length in lengths:
        task.check_length(length)
    seeds = jax.tree_util.tree_leaves(seed_params)[0].shape[0]
    vocab = task.output_vocab
    max_eval_bytes = MAX_EVAL_BYTES if max_eval_bytes is None else max_eval_bytes
    run = _streamer(model.apply, vocab) if model.cell.recurrent else None
    compiled = {}  # attention: one jitted whole evaluation per bucket
    results = {}
    for length in lengths:
        if stop is not None and stop():
            break
        start = time.perf_counter()
        steps = task.seq_len(int(length))
        rows = None
        if not model.cell.recurrent:
            rows = attention_rows(model, seeds, size, steps, max_eval_bytes)
            if rows is None:
                need = attention_eval_bytes(model, seeds, 1, steps)
                reason = (f"attention at {steps} steps x 1 row x {seeds} seeds needs "
                          f"~{need / 2**30:.1f} GiB > max_eval_bytes "
                          f"{max_eval_bytes / 2**30:.1f} GiB")
                results[int(length)] = {"skipped": reason, "accuracy": [None] * seeds,
                                        "loss": [None] * seeds}
                logger.info(f"eval length {length}: skipped ({reason})")
                continue
        batch, digest = task.test_set(length, size, seed=EVAL_SEED)
        if not model.cell.recurrent:
            sums = _whole(model, vocab, seed_params, batch, task, compiled, rows)
        else:
            sums = _streamed(model, run, seed_params, batch, chunk_size)
        results[int(length)] = {**_metrics(batch, *sums), "test_set_hash": digest}
        logger.info(f"eval length {length}: accuracy "
                    f"{np.mean(results[int(length)]['accuracy']):.4f} "
                    f"({time.perf_counter() - start:.1f} s)")
    return results


def chance_accuracy(task: Task) -> float:
    """The accuracy of the best input-blind guess at `task`: its `chance`, or 0 for a
    regression task (whose `chance` is the guess's MSE, not an accuracy)."""
    return task.chance if task.output_vocab else 0.0


def summarise(per_length: dict[int, dict[str, Any]], train_length: int,
              ok: list[bool] | None = None, chance: float = 0.0) -> dict[str, Any]:
    """Per-seed score, in-distribution accuracy and effective length, and the mean score.

    Args:
      per_length: {length: {"accuracy": [per seed]}} (`length_grid`); skipped lengths (accuracy
        None) are left out of everything.
      train_length: lengths <= it are in distribution, longer ones count for the score.
      ok: per seed, False for a seed that diverged; `score_mean` averages the others only
        (None when no seed is left). Default: every seed.
      chance: the task's `chance_accuracy`, from which a seed's effective length measures
        its gain.
    Returns:
      `in_distribution_accuracy`: per seed, the mean accuracy over evaluated lengths <=
        train_length; None when no such length was evaluated (`in_distribution_note` says so).
      `score`: per seed, the mean accuracy over lengths > train_length (NaN when none).
      `effective_length`: per seed, the longest length that keeps `HOLD` (90%) of the seed's
        in-distribution gain over chance, acc - chance >= HOLD (in_dist - chance), scanning
        upwards and stopping at the first failure (0 when the first length fails; None
        without an in-distribution accuracy). A seed whose gain is below FIT_MARGIN (1 -
        chance), FIT_MARGIN = 10%, did not fit its training lengths and has none (0): at
        chance its noise would "keep" its noise to any length.
      `score_mean`: the mean score over the seeds in `ok`, or None.
    """
    lengths = sorted(n for n in per_length if None not in per_length[n]["accuracy"])
    seeds = len(next(iter(per_length.values()))["accuracy"])
    ok = [True] * seeds if ok is None else list(ok)
    accuracy = np.array([per_length[n]["accuracy"] for n in lengths]).reshape(len(lengths), seeds)
    inside = np.array([n <= train_length for n in lengths], bool)
    beyond = ~inside
    score = accuracy[beyond].mean(axis=0) if beyond.any() else np.full(seeds, np.nan)
    kept = [float(s) for s, alive in zip(score, ok) if alive and np.isfinite(s)]
    out = {"score": [float(s) for s in score],
           "score_mean": float(np.mean(kept)) if kept else None}
    if not inside.any():
        return {**out, "in_distribution_accuracy": [None] * seeds,
                "effective_length": [None] * seeds,
                "in_distribution_note": f"no evaluated length <= train_length {train_length}"}
    in_dist = accuracy[inside].mean(axis=0)
    effective = []
    for seed in range(seeds):
        best = 0
        gain = in_dist[seed] - chance
        fitted = gain >= FIT_MARGIN * (1 - chance)
        for n, acc in zip(lengths, accuracy[:, seed] if fitted else []):
            if acc - chance < HOLD * gain:
                break
            best = n
        effective.append(best)
    return {**out, "in_distribution_accuracy": [float(a) for a in in_dist],
            "effective_length": effective}
