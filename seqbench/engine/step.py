"""The compiled training step: state, optimiser, loss, mesh, and `make_train_step`.

One jitted `train_step(state, seed_keys, batch_length)`: every seed samples its own batch on
the device (`fold_in(key, step)`) at the lengths its curriculum gives (`seqbench.engine.
curricula`), starts it from the initial state its intervention gives (`seqbench.interventions`),
computes the masked loss (cross-entropy, or MSE for real-valued targets) and its gradient
(`make_value_and_grad`: BPTT, truncated BPTT over K-step segments, or exact RTRL across
them) and applies AdamW (linear warm-up, cosine decay,
global-norm clipping). Seeds are `vmap`ped inside the one compiled program and sharded over
every device with the batch rows. A seed whose loss or gradient stops being finite is frozen at
its last good parameters and marked diverged; the others go on.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from seqbench import evaluate, interventions
from seqbench.cells import parallel_in_time, rtrl
from seqbench.engine import curricula
from seqbench.engine.config import Config


class TrainState(NamedTuple):
    """Everything a step changes; leading axis = seed except `step`."""

    params: Any  # model parameters (float32 master copy)
    opt_state: Any  # optax state
    carry: Any  # what the initial-state intervention carries between steps (or None)
    alive: jax.Array  # shape=(S,) bool: False once the seed's loss or gradient was not finite
    diverged_at: jax.Array  # shape=(S,) int32: the step it diverged at, -1 while alive
    step: jax.Array  # shape=(), int32: steps done


def optimizer(config: Config, learning_rate: float | jax.Array | None = None,
              ) -> optax.GradientTransformation:
    """Global-norm clipping at `clip_norm` (none when 0, as Zoology), then AdamW (Loshchilov &
    Hutter 2019) at the learning rate of `config.lr_schedule`: "warmup_cosine" (linear from 0
    over `warmup_steps`, cosine to 0 at `steps`; `warmup_steps=0`: cosine alone) or "constant"
    (Delétang et al. 2023: Adam at a constant rate, with `weight_decay=0`). Peak rate:
    `learning_rate` (a grid member's, traced) or `config.learning_rate`; the optimiser state
    does not depend on it."""
    def shape(peak: float):
        if config.lr_schedule == "constant":
            return optax.constant_schedule(peak)
        return optax.warmup_cosine_decay_schedule(
            0.0, peak, min(config.warmup_steps, config.steps - 1), config.steps)

    if learning_rate is None:
        schedule = shape(config.learning_rate)
    else:  # a traced peak: optax's schedules need a Python number, so scale the unit schedule
        unit = shape(1.0)
        schedule = lambda count: learning_rate * unit(count)
    adamw = optax.adamw(schedule, weight_decay=config.weight_decay)
    if config.clip_norm == 0:
        return adamw
    return optax.chain(optax.clip_by_global_norm(config.clip_norm), adamw)


def member_keys(key: jax.Array, config: Config) -> jax.Array:
    """(members,) keys: seed i's key split(key, seeds)[i], repeated for every learning rate of
    the grid, so that every rate trains the same seeds (a paired comparison)."""
    keys = jax.random.split(key, config.seeds)
    return keys[jnp.arange(config.members) % config.seeds]


def init_state(config: Config, model, tx, mesh: Mesh | None = None) -> TrainState:
    """Step 0 of `config.members` independent models (member m: seed m % seeds, whose key is
    split(key(config.seed))[m % seeds], at the grid's learning rate m // seeds), placed on
    `mesh` (`state_shardings`) when one is given.

    Built by one jitted program: run op by op, the initialisers compile about a hundred small
    kernels, which costs seconds per run. On a mesh the program writes each device's shard
    where it lives, which is also how a multi-process run gets global arrays (`jax.device_put`
    cannot place data on another process's devices)."""

    def build_state():
        keys = member_keys(jax.random.key(config.seed), config)
        params = jax.vmap(model.init)(keys)
        intervention = interventions.get(config.initial_state)
        carry = jax.vmap(lambda p: intervention.init_carry(
            model.initial_state(p, (config.batch_size,))))(params)
        return TrainState(params, jax.vmap(tx.init)(params), carry,
                          jnp.ones((config.members,), bool),
                          jnp.full((config.members,), -1, jnp.int32), jnp.zeros((), jnp.int32))

    shardings = None if mesh is None else state_shardings(mesh)
    return jax.jit(build_state, out_shardings=shardings)()


def cast_floats(tree, dtype):
    """Real float32 leaves of `tree` cast to `dtype` (complex and integer leaves unchanged)."""
    return jax.tree_util.tree_map(
        lambda x: x.astype(dtype) if x.dtype == jnp.float32 else x, tree)


def make_loss(config: Config, task, model):
    """loss(params, state, batch) -> (loss, (accuracy, final_state, solver)) on whole sequences,
    masked means over the batch; `solver` is {} or, for cells solved in parallel over time, the
    worst iteration count and residual of the forward pass (`cells.parallel_in_time.summarize`).
    (`config.tbptt` is `make_value_and_grad`'s.)

    With `config.precision = "bfloat16"` the parameters are cast to bf16 for the forward pass
    (their gradients reach the fp32 master copy); the recurrent states stay fp32.
    """
    vocab = task.output_vocab

    def loss(params, state, batch):
        if config.precision == "bfloat16":
            params = cast_floats(params, jnp.bfloat16)
        with parallel_in_time.collecting() as found:
            loss, (accuracy, final) = evaluate.loss_and_accuracy(model, vocab, params, batch,
                                                                 state)
        return loss, (accuracy, final, parallel_in_time.summarize(found))

    return loss


def make_value_and_grad(config: Config, task, model):
    """value_and_grad(params, state, batch) -> ((loss, (accuracy, final_state, solver)), grads)
    of `make_loss`'s loss, the gradient as `config.tbptt` and `config.gradient` say.

    tbptt = 0: `jax.value_and_grad` of the whole sequence (BPTT). tbptt = K: the (padded, the
    tail masked out) sequence runs in K-step segments, one `lax.scan` step each, whose start
    state is a constant to autodiff; each segment's gradient is taken inside the scan and
    summed, so memory grows with K, not T, and the loss is the same. With gradient = "bptt"
    the gradient is then truncated at the segment boundaries; with "rtrl"/"rtrl_layerwise" the
    cells carry their traces dh/dθ across them (`cells.rtrl`), so what crosses is exact for
    each layer's own recurrence (the whole gradient, for the one-layer models "rtrl" allows).
    """
    loss = make_loss(config, task, model)
    if not config.tbptt:
        return jax.value_and_grad(loss, has_aux=True)
    vocab = task.output_vocab
    traced = config.gradient != "bptt"
    if traced:
        traced_model = model.with_cell(rtrl.with_rtrl(model.cell))

    def segment_sum(params, state, segment, count):
        """(Σ masked loss / count, (hits, final state, solver)) of one segment."""
        forward = traced_model if traced else model
        if config.precision == "bfloat16":
            params = cast_floats(params, jnp.bfloat16)
        with parallel_in_time.collecting() as found:
            state, outputs = forward.apply(params, state, segment.inputs)
        nll, hits = evaluate.masked_loss_and_hits(outputs, segment.targets, segment.mask, vocab)
        total = jnp.sum(jnp.where(segment.mask, nll, 0.0)) / count
        return total, (jnp.sum(hits), state, parallel_in_time.summarize(found))

    def value_and_grad(params, state, batch):
        steps = batch.inputs.shape[1]
        padded = -(-steps // config.tbptt) * config.tbptt

        def segments(x):  # (B, T, ...) -> (T/K, B, K, ...)
            x = jnp.pad(x, [(0, 0), (0, padded - steps)] + [(0, 0)] * (x.ndim - 2))
            x = x.reshape(x.shape[0], padded // config.tbptt, config.tbptt, *x.shape[2:])
            return jnp.moveaxis(x, 1, 0)

        count = jnp.maximum(jnp.sum(batch.mask), 1).astype(jnp.float32)

        def body(carry, segment):
            state, total_loss, total_hits, grads = carry
            (piece, (hits, state, solver)), piece_grads = jax.value_and_grad(
                segment_sum, has_aux=True)(params, jax.lax.stop_gradient(state), segment, count)
            grads = jax.tree_util.tree_map(jnp.add, grads, piece_grads)
            return (state, total_loss + piece, total_hits + hits, grads), solver

        if traced:
            state = [rtrl.start(model.cell, block["cell"], h)
                     for block, h in zip(params["blocks"], state)]
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        (final, total_loss, total_hits, grads), solver = jax.lax.scan(
            body, (state, jnp.zeros(()), jnp.zeros((), jnp.int32), zeros),
            jax.tree_util.tree_map(segments, batch))
        if traced:
            final = [layer.h for layer in final]
        worst = jax.tree_util.tree_map(jnp.max, solver)  # over the segments
        return (total_loss, (total_hits / count, final, worst)), grads

    return value_and_grad


def device_mesh(config: Config) -> Mesh:
    """A ("seed", "batch") mesh over as many devices as divide the seeds and the batch.

    The seed axis takes gcd(seeds, devices); the batch axis the rest, which must divide
    `batch_size` — otherwise fewer devices are used (never an error).
    """
    devices = jax.devices()
    for count in range(len(devices), 0, -1):
        seed_axis = math.gcd(config.members, count)
        if config.batch_size % (count // seed_axis) == 0:
            grid = np.array(devices[:count]).reshape(seed_axis, count // seed_axis)
            return Mesh(grid, ("seed", "batch"))
    raise AssertionError("unreachable: one device always fits")


def state_shardings(mesh: Mesh) -> TrainState:
    """The placement of a `TrainState` on `mesh`: per-seed leaves split over its "seed" axis,
    the step counter replicated."""
    per_seed = NamedSharding(mesh, P("seed"))
    return TrainState(**{**{name: per_seed for name in TrainState._fields},
                         "step": NamedSharding(mesh, P())})


def shard_state(state: TrainState, mesh: Mesh) -> TrainState:
    """`state` placed on `mesh` (`state_shardings`): leaves placed so already (a checkpoint
    restored into the running state's placement) as they are; the others, which every process
    holds whole (e.g. a source run's parameters), given to each device shard by shard."""
    def place(tree, sharding):
        def one(x):
            if isinstance(x, jax.Array) and x.sharding.is_equivalent_to(sharding, x.ndim):
                return x
            host = np.asarray(x)
            return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

        return jax.tree_util.tree_map(one, tree)

    return TrainState(*(place(part, sharding)
                        for part, sharding in zip(state, state_shardings(mesh))))


def start_state(config: Config, model, tx) -> tuple[Mesh | None, TrainState, jax.Array]:
    """(mesh, state, seed_keys) at step 0: the mesh is None on one device; with several (over
    every process of a multi-process run), the state and the per-seed keys are placed on it."""
    mesh = None if jax.device_count() == 1 else device_mesh(config)
    state = init_state(config, model, tx, mesh)
    make_keys = lambda: member_keys(jax.random.key(config.seed + 1), config)
    if mesh is None:
        return None, state, make_keys()
    return mesh, state, jax.jit(make_keys, out_shardings=NamedSharding(mesh, P("seed")))()


def fetch(tree):
    """NumPy copies of a tree of arrays, whole on every process: `jax.device_get`, or, in a
    multi-process run whose per-seed arrays are split over the processes, an all-gather."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def make_train_step(config: Config, task, model, tx, mesh: Mesh | None = None,
                    bucket: int | None = None):
    """The jitted `train_step(state, seed_keys, batch_length) -> (state, metrics)`, vmapped
    over seeds.

    Args:
      config, task, model, tx: the run (`config.build`, `optimizer`).
      mesh: seeds are split over its "seed" axis and each seed's batch rows over its "batch"
        axis (`device_mesh`); the numbers are those of one device (up to summation order).
      bucket: the padded input length of the step's batches (default `config.train_length`);
        a per-batch curriculum compiles one step per bucket (`curricula.buckets`).
    `batch_length` (int32 scalar) is the curriculum's host-chosen length of this step
    (`Curriculum.batch_length`), <= `bucket`; per-sequence curricula ignore it.
    """
    value_and_grad = make_value_and_grad(config, task, model)
    rows = NamedSharding(mesh, P("batch")) if mesh is not None else None
    curriculum = curricula.CURRICULA[config.curriculum]
    intervention = interventions.get(config.initial_state)
    bucket = config.train_length if bucket is None else bucket

    grid = bool(config.learning_rates)
    member_rates = jnp.asarray(config.member_learning_rates, jnp.float32)

    def one_seed(params, opt_state, carry, alive, diverged_at, key, step, batch_length, rate):
        batch_key, length_key, state_key = jax.random.split(jax.random.fold_in(key, step), 3)
        lengths = curriculum.row_lengths(config.min_train_length, config.train_length,
                                         length_key, step, config.steps, batch_length,
                                         config.batch_size)
        batch = task.sample_bucket(batch_key, lengths, bucket)
        if rows is not None:
            batch = jax.lax.with_sharding_constraint(batch, rows)
        zero = model.initial_state(params, (config.batch_size,))
        start = intervention.initial_state(state_key, zero, carry, config.initial_state_std)
        (loss, (accuracy, final, solver)), grads = value_and_grad(params, start, batch)
        member_tx = optimizer(config, rate) if grid else tx  # a grid member's own peak rate
        updates, new_opt_state = member_tx.update(grads, opt_state, params)
        grad_norm = optax.tree.norm(grads)
        ok = alive & jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        keep_if_ok = functools.partial(jax.tree_util.tree_map,
                                       lambda new, old: jnp.where(ok, new, old))
        params = keep_if_ok(optax.apply_updates(params, updates), params)
        opt_state = keep_if_ok(new_opt_state, opt_state)
        carry = keep_if_ok(intervention.update_carry(carry, final), carry)
        diverged_at = jnp.where(alive & ~ok, step + 1, diverged_at)
        metrics = {"loss": loss, "accuracy": accuracy, "grad_norm": grad_norm, **solver}
        return params, opt_state, carry, ok, diverged_at, metrics

    def train_step(state: TrainState, seed_keys: jax.Array, batch_length: jax.Array):
        per_seed = (state.params, state.opt_state, state.carry, state.alive, state.diverged_at,
                    seed_keys)
        if config.members == 1:
            # The same program without the size-1 seed axis: XLA:CPU runs the batch-1 matmuls
            # that vmap would leave in the recurrence about 10% slower than plain ones.
            squeezed = jax.tree_util.tree_map(lambda x: x[0], per_seed)
            outputs = jax.tree_util.tree_map(lambda x: x[None], one_seed(
                *squeezed, state.step, batch_length, member_rates[0]))
        else:
            outputs = jax.vmap(one_seed, in_axes=(0, 0, 0, 0, 0, 0, None, None, 0),
                               spmd_axis_name="seed" if mesh is not None else None,
                               )(*per_seed, state.step, batch_length, member_rates)
        params, opt_state, carry, alive, diverged_at, metrics = outputs
        return TrainState(params, opt_state, carry, alive, diverged_at, state.step + 1), metrics

    return jax.jit(train_step, donate_argnums=0)


