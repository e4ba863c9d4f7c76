"""Train a cell on a task, evaluate it far past the training length, write the result.

    python -m seqbench.train --cell=lru --task=parity_check --train_length=40 --workdir=runs/x
    python -m seqbench.train --preset=smoke --workdir=runs/smoke      # under a minute on a CPU

The flow, readable top to bottom:
1. `Config` (flags or a preset) -> cell, task, model.
2. One jitted `train_step(state, seed_keys)`: every seed samples its own batch on the device
   (`fold_in(key, step)`), starts it from the initial state its intervention gives
   (`seqbench.interventions`), computes the masked loss (cross-entropy, or MSE for real-valued
   targets; with `tbptt=K` the gradient stops at the state every K steps) and applies AdamW
   (linear warm-up, cosine decay, global-norm clipping). Seeds are `vmap`ped inside the one
   compiled program, so `--seeds=5` costs about one run; seeds and batch rows are sharded over
   every device. A seed whose loss or gradient stops being finite is frozen at its last good
   parameters and marked diverged; the others go on. Lengths: fixed, uniform in
   [min_train_length, train_length] per sequence, or increasing; all padded to one bucket (one
   compilation). With `init_from=RUN` the models start from another finished run's final
   parameters instead of fresh ones (post-training, `post_train_start`).
3. Every `log_every` steps a metrics line (stdout and `metrics.jsonl`); checkpoints every
   `checkpoint_every` steps and on SIGTERM/SIGINT; a rerun resumes.
4. `evaluate.length_grid` scores every seed at every evaluation length from the zero state.
5. `result.json` (atomic) with per-length metrics per seed, score, effective length, sizes,
   throughput and versions.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import runpy
import sys
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags, logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from seqbench import cells, cli, evaluate, interventions, models, results, tasks
from seqbench.checkpoint import Checkpointer, StopRequested

PRESETS = {
    # ~20 s on a 2-core CPU: an LSTM learns even_pairs on lengths 1..16, tested up to 64.
    "smoke": dict(cell="lstm", task="even_pairs", width=16, depth=1, train_length=16,
                  min_train_length=1, curriculum="uniform", steps=300, batch_size=16, seeds=2,
                  learning_rate=1e-2, eval_lengths=(8, 16, 32, 64), eval_size=64, log_every=50),
}

CURRICULA = ("fixed", "uniform", "increasing")
PRECISIONS = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that defines a run (hashed into `config_hash`)."""

    cell: str = "lru"  # a seqbench.cells name
    task: str = "parity_check"  # a seqbench.tasks name
    cell_hparams: tuple = ()  # extra cell hyperparameters as (name, value) pairs
    task_hparams: tuple = ()  # task difficulty settings as (name, value) pairs
    width: int = 64  # model width (the cell's d_hidden)
    depth: int = 2  # residual blocks
    train_length: int = 40  # (maximum) input length in training
    min_train_length: int = 1  # lower end of the "uniform" and "increasing" curricula
    # "fixed": every sequence train_length; "uniform": U[min, max] per sequence; "increasing":
    # one length per step, linear from min_train_length (step 1) to train_length (step steps//2)
    curriculum: str = "fixed"
    steps: int = 1000  # optimiser steps
    batch_size: int = 32  # sequences per seed per step
    seeds: int = 1  # independent models trained together (vmap)
    seed: int = 0  # base random seed
    learning_rate: float = 1e-3  # AdamW peak learning rate
    warmup_steps: int = 50  # linear warm-up, then cosine decay to 0
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    clip_norm: float = 1.0  # global gradient-norm clipping
    initial_state: str = "zero"  # training-time intervention: one of interventions.INITIAL_STATES
    initial_state_std: float = 1.0  # std of the "noise" intervention
    tbptt: int = 0  # truncated BPTT: stop the gradient at the state every K steps (0: off)
    # post-training: a finished run's folder whose final parameters this run starts from
    # ("": fresh parameters); see `post_train_start`
    init_from: str = ""
    precision: str = "float32"  # "bfloat16": bf16 parameters/activations, fp32 state/optimiser
    eval_lengths: tuple = ()  # () = evaluate.default_lengths(task, train_length)
    eval_size: int = 256  # sequences per evaluation length
    log_every: int = 100  # steps between metrics lines
    checkpoint_every: int = 500  # steps between checkpoints (also saved on SIGTERM/SIGINT)
    keep_checkpoints: int = 3  # checkpoints kept in workdir/checkpoints

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["cell_hparams"] = dict(self.cell_hparams)
        out["task_hparams"] = dict(self.task_hparams)
        out["eval_lengths"] = list(self.eval_lengths)
        return out




class TrainState(NamedTuple):
    """Everything a step changes; leading axis = seed except `step`."""

    params: Any  # model parameters (float32 master copy)
    opt_state: Any  # optax state
    carry: Any  # what the initial-state intervention carries between steps (or None)
    alive: jax.Array  # shape=(S,) bool: False once the seed's loss or gradient was not finite
    diverged_at: jax.Array  # shape=(S,) int32: the step it diverged at, -1 while alive
    step: jax.Array  # shape=(), int32: steps done


def build(config: Config):
    """(cell, task, model) for `config`, checked before anything compiles."""
    task = tasks.get(config.task, **dict(config.task_hparams))
    for name, value, valid in (("curriculum", config.curriculum, CURRICULA),
                               ("precision", config.precision, PRECISIONS),
                               ("initial_state", config.initial_state,
                                interventions.INITIAL_STATES)):
        if value not in valid:
            raise ValueError(f"{name} must be one of {valid}; got {value!r}")
    low = config.train_length if config.curriculum == "fixed" else config.min_train_length
    if low < task.min_length or config.train_length < low:
        raise ValueError(
            f"training lengths [{low}, {config.train_length}] must lie within "
            f"[task min_length={task.min_length}, train_length]"
        )
    for length in config.eval_lengths:
        task.check_length(length)
    if config.tbptt < 0:
        raise ValueError(f"tbptt must be >= 0 (0: off); got {config.tbptt}")
    cell_hparams = dict(config.cell_hparams)
    if "max_length" in cells.hparams(config.cell) and "max_length" not in cell_hparams:
        # attention: a KV cache as long as the training sequences (evaluation rebuilds it longer)
        cell_hparams["max_length"] = task.seq_len(config.train_length)
    cell = cells.get(config.cell, d_hidden=config.width, **cell_hparams)
    if cell.family == "attention" and (config.initial_state != "zero" or config.tbptt):
        raise ValueError(f"initial_state={config.initial_state!r} and tbptt need a recurrent "
                         f"state; {config.cell!r} is attention: use initial_state='zero', tbptt=0")
    return cell, task, model_for(cell, task, config)


# ---------------------------------------------------------------------------- post-training

# Fields a post-training run must share with the run it starts from: the same models (structure
# and task vocabularies) and the same seeds, so that seed i continues seed i.
POST_TRAIN_SHARED = ("cell", "cell_hparams", "task", "task_hparams", "width", "depth", "seed",
                     "seeds")


def check_post_train(config: Config, source_json: dict[str, Any]) -> None:
    """Raises ValueError when the run recorded as `source_json` (a `config_json`) is not one
    `config` can post-train: fields of `POST_TRAIN_SHARED` differ (both values named)."""
    mine = config.to_json()
    differ = [f"{name}={source_json.get(name)!r} there, {mine[name]!r} here"
              for name in POST_TRAIN_SHARED if source_json.get(name) != mine[name]]
    if differ:
        raise ValueError(f"init_from: {config.init_from!r} is another model; post-training keeps "
                         f"{list(POST_TRAIN_SHARED)}, but {'; '.join(differ)}")


def source_record(config: Config) -> dict[str, Any]:
    """The `result.json` of the finished run `config.init_from`, checked against `config`.

    Raises ValueError naming the problem: no finished run there, or another model
    (`check_post_train`)."""
    try:
        with open(os.path.join(config.init_from, "result.json")) as f:
            record = json.load(f)
        source_json = record["config"]
        record["steps_run"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"init_from: {config.init_from!r} holds no finished run (no readable "
                         f"result.json); give the folder of a run that has finished") from None
    check_post_train(config, source_json)
    return record


def check_source_checkpoint(config: Config, record: dict[str, Any]) -> None:
    """Raises ValueError unless the run `config.init_from` (whose `result.json` is `record`)
    still holds the checkpoint of its final step, which post-training starts from."""
    final = os.path.join(config.init_from, "checkpoints", str(record["steps_run"]))
    if not os.path.isdir(final):
        raise ValueError(f"init_from: {config.init_from!r} has no checkpoint of its final step "
                         f"{record['steps_run']} (checkpoints are not committed with results): "
                         f"rerun that run, then post-train it")


def check_post_train_start(config: Config, workdir: str) -> None:
    """Raises ValueError when `config` would post-train (`init_from` set, `workdir` holding no
    checkpoint of its own to resume) from a run that is unfinished, another model, or without
    its final checkpoint: the checks a post-training run needs before anything compiles."""
    if config.init_from and not os.path.exists(os.path.join(workdir, "checkpoints")):
        check_source_checkpoint(config, source_record(config))


def config_json(config: Config, source_json: dict[str, Any] | None = None) -> dict[str, Any]:
    """`config.to_json()` as a run records it: a post-training run adds `post_trained_from`,
    the config hash of the run it started from (`source_json`, read from `config.init_from`
    when not given), so that its own hash says what it started from, not where that folder
    lies (`init_from`, the path, is left out of the hash)."""
    out = config.to_json()
    if config.init_from:
        if source_json is None:
            source_json = source_record(config)["config"]
        out["post_trained_from"] = results.config_hash(results.hashed_fields(source_json))
    return out


def post_train_start(config: Config, state: TrainState) -> TrainState:
    """`state` (step 0 of `config`) with the final parameters of the run `config.init_from`.

    Post-training (Buitrago Ruiz & Gu 2025, "Understanding and Improving Length Generalization
    in Recurrent Models": a short phase of training with an initial-state intervention
    after normal training). Only the parameters carry over, and the seeds' divergence marks (a
    seed that diverged there stays frozen here, its `diverged_at_step` counting the source's
    steps); the optimiser state, its schedule (warm-up and
    cosine decay over `config.steps`) and the intervention's carry start afresh.
    Raises ValueError when the run's newest readable checkpoint is not its final step."""
    record = source_record(config)
    check_source_checkpoint(config, record)
    fields = {name: value for name, value in record["config"].items()
              if name in Config.__dataclass_fields__}
    source = config_from_fields(fields)
    _, _, source_model = build(source)
    like = init_state(source, source_model, optimizer(source))
    checkpointer = Checkpointer(os.path.join(config.init_from, "checkpoints"))
    restored = checkpointer.restore(like)
    checkpointer.close()
    if restored is None or restored[0] != record["steps_run"]:
        found = "none" if restored is None else f"step {restored[0]}"
        raise ValueError(f"init_from: {config.init_from!r} ended at step {record['steps_run']} "
                         f"but its newest readable checkpoint is {found}")
    final = restored[1]
    return state._replace(params=final.params, alive=final.alive, diverged_at=final.diverged_at)


def model_for(cell, task, config: Config) -> models.Model:
    """The model stacking `cell` with the input and output layers `task` needs."""
    return models.build(cell, input_dim=task.input_vocab,
                        output_dim=max(task.output_vocab, 1) * task.num_heads, depth=config.depth,
                        real_inputs=task.real_inputs)


def optimizer(config: Config) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, config.learning_rate, min(config.warmup_steps, config.steps - 1), config.steps)
    return optax.chain(optax.clip_by_global_norm(config.clip_norm),
                       optax.adamw(schedule, weight_decay=config.weight_decay))


def init_state(config: Config, model, tx) -> TrainState:
    """Step 0 of `config.seeds` independent models (seed i's key: split(key(config.seed))[i]).

    Built by one jitted program: run op by op, the initialisers compile about a hundred small
    kernels, which costs seconds per run."""

    def build_state():
        keys = jax.random.split(jax.random.key(config.seed), config.seeds)
        params = jax.vmap(model.init)(keys)
        carry = jax.vmap(lambda p: interventions.init_carry(
            config.initial_state, model.initial_state(p, (config.batch_size,))))(params)
        return TrainState(params, jax.vmap(tx.init)(params), carry,
                          jnp.ones((config.seeds,), bool),
                          jnp.full((config.seeds,), -1, jnp.int32), jnp.zeros((), jnp.int32))

    return jax.jit(build_state)()


def training_lengths(config: Config, key: jax.Array, step: jax.Array) -> jax.Array:
    """Input lengths (B,) int32 of the batch at `step` under `config.curriculum`."""
    shape = (config.batch_size,)
    low, high = config.min_train_length, config.train_length
    if config.curriculum == "uniform":
        return jax.random.randint(key, shape, low, high + 1)
    if config.curriculum == "increasing":
        ramp = max(config.steps // 2, 1)
        return jnp.full(shape, low + (high - low) * jnp.minimum(step, ramp) // ramp, jnp.int32)
    return jnp.full(shape, high, jnp.int32)


def cast_floats(tree, dtype):
    """Real float32 leaves of `tree` cast to `dtype` (complex and integer leaves unchanged)."""
    return jax.tree_util.tree_map(
        lambda x: x.astype(dtype) if x.dtype == jnp.float32 else x, tree)


def make_loss(config: Config, task, model):
    """loss(params, state, batch) -> (loss, (accuracy, final_state)), masked means over the batch.

    With `config.tbptt = K` the sequence is processed in K-step segments and the gradient is
    stopped at the state between them (the padded tail is masked out); the loss is the same.
    With `config.precision = "bfloat16"` the parameters are cast to bf16 for the forward pass
    (their gradients reach the fp32 master copy); the recurrent states stay fp32.
    """
    vocab = task.output_vocab

    def loss(params, state, batch):
        if config.precision == "bfloat16":
            params = cast_floats(params, jnp.bfloat16)
        if not config.tbptt:
            return evaluate.loss_and_accuracy(model, vocab, params, batch, state)
        steps = batch.inputs.shape[1]
        padded = -(-steps // config.tbptt) * config.tbptt

        def segments(x):  # (B, T, ...) -> (T/K, B, K, ...)
            x = jnp.pad(x, [(0, 0), (0, padded - steps)] + [(0, 0)] * (x.ndim - 2))
            x = x.reshape(x.shape[0], padded // config.tbptt, config.tbptt, *x.shape[2:])
            return jnp.moveaxis(x, 1, 0)

        def body(carry, segment):
            state, total_loss, total_hits = carry
            state = jax.tree_util.tree_map(jax.lax.stop_gradient, state)
            state, outputs = model.apply(params, state, segment.inputs)
            nll, hits = evaluate.masked_loss_and_hits(outputs, segment.targets, segment.mask,
                                                      vocab)
            mask = segment.mask.astype(jnp.float32)
            return (state, total_loss + jnp.sum(nll * mask), total_hits + jnp.sum(hits)), None

        (final, total_loss, total_hits), _ = jax.lax.scan(
            body, (state, 0.0, 0), jax.tree_util.tree_map(segments, batch))
        count = jnp.maximum(jnp.sum(batch.mask), 1).astype(jnp.float32)
        return total_loss / count, (total_hits / count, final)

    return loss


def device_mesh(config: Config) -> Mesh:
    """A ("seed", "batch") mesh over as many devices as divide the seeds and the batch.

    The seed axis takes gcd(seeds, devices); the batch axis the rest, which must divide
    `batch_size` — otherwise fewer devices are used (never an error).
    """
    devices = jax.devices()
    for count in range(len(devices), 0, -1):
        seed_axis = math.gcd(config.seeds, count)
        if config.batch_size % (count // seed_axis) == 0:
            grid = np.array(devices[:count]).reshape(seed_axis, count // seed_axis)
            return Mesh(grid, ("seed", "batch"))
    raise AssertionError("unreachable: one device always fits")


def shard_state(state: TrainState, mesh: Mesh) -> TrainState:
    """Per-seed leaves split over the mesh's "seed" axis; the step counter replicated."""
    per_seed = NamedSharding(mesh, P("seed"))
    return jax.device_put(state, TrainState(*([per_seed] * 5), NamedSharding(mesh, P())))


def start_state(config: Config, model, tx) -> tuple[Mesh | None, TrainState, jax.Array]:
    """(mesh, state, seed_keys) at step 0: the mesh is None on one device; with several, the
    state and the per-seed keys are placed on it (`device_mesh`, `shard_state`)."""
    state = init_state(config, model, tx)
    seed_keys = jax.random.split(jax.random.key(config.seed + 1), config.seeds)
    if jax.device_count() == 1:
        return None, state, seed_keys
    mesh = device_mesh(config)
    return (mesh, shard_state(state, mesh),
            jax.device_put(seed_keys, NamedSharding(mesh, P("seed"))))


def make_train_step(config: Config, task, model, tx, mesh: Mesh | None = None):
    """The jitted `train_step(state, seed_keys) -> (state, metrics)`, vmapped over seeds.

    With a `mesh` (see `device_mesh`), seeds are split over its "seed" axis and each seed's batch
    rows over its "batch" axis; the numbers are those of one device (up to summation order).
    """
    loss_fn = make_loss(config, task, model)
    rows = NamedSharding(mesh, P("batch")) if mesh is not None else None

    def one_seed(params, opt_state, carry, alive, diverged_at, key, step):
        batch_key, length_key, state_key = jax.random.split(jax.random.fold_in(key, step), 3)
        lengths = training_lengths(config, length_key, step)
        batch = task.sample_bucket(batch_key, lengths, config.train_length)
        if rows is not None:
            batch = jax.lax.with_sharding_constraint(batch, rows)
        zero = model.initial_state(params, (config.batch_size,))
        start = interventions.initial_state(config.initial_state, state_key, zero, carry,
                                            config.initial_state_std)
        (loss, (accuracy, final)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, start, batch)
        updates, new_opt_state = tx.update(grads, opt_state, params)
        grad_norm = optax.tree.norm(grads)
        ok = alive & jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        keep_if_ok = functools.partial(jax.tree_util.tree_map,
                                       lambda new, old: jnp.where(ok, new, old))
        params = keep_if_ok(optax.apply_updates(params, updates), params)
        opt_state = keep_if_ok(new_opt_state, opt_state)
        carry = keep_if_ok(interventions.update_carry(config.initial_state, carry, final), carry)
        diverged_at = jnp.where(alive & ~ok, step + 1, diverged_at)
        metrics = {"loss": loss, "accuracy": accuracy, "grad_norm": grad_norm}
        return params, opt_state, carry, ok, diverged_at, metrics

    def train_step(state: TrainState, seed_keys: jax.Array):
        per_seed = (state.params, state.opt_state, state.carry, state.alive, state.diverged_at,
                    seed_keys)
        if config.seeds == 1:
            # The same program without the size-1 seed axis: XLA:CPU runs the batch-1 matmuls
            # that vmap would leave in the recurrence about 10% slower than plain ones.
            squeezed = jax.tree_util.tree_map(lambda x: x[0], per_seed)
            outputs = jax.tree_util.tree_map(lambda x: x[None], one_seed(*squeezed, state.step))
        else:
            outputs = jax.vmap(one_seed, in_axes=(0, 0, 0, 0, 0, 0, None),
                               spmd_axis_name="seed" if mesh is not None else None,
                               )(*per_seed, state.step)
        params, opt_state, carry, alive, diverged_at, metrics = outputs
        return TrainState(params, opt_state, carry, alive, diverged_at, state.step + 1), metrics

    return jax.jit(train_step, donate_argnums=0)


def run(config: Config, workdir: str) -> dict[str, Any] | None:
    """Trains, evaluates and writes `config.json`, `metrics.jsonl`, `result.json`.

    Resumes from the newest readable checkpoint in `workdir/checkpoints` (the per-step keys
    depend only on the step, so a resumed run ends with the same parameters as an uninterrupted
    one). SIGTERM/SIGINT save a checkpoint at the next step boundary and return None. In a
    multi-process run only process 0 writes the JSON files.
    """
    run_start = time.perf_counter()
    cell, task, model = build(config)
    writer = jax.process_index() == 0
    os.makedirs(workdir, exist_ok=True)
    record_config = config_json(config)
    if writer:
        results.write_json(os.path.join(workdir, "config.json"), record_config)
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    tx = optimizer(config)
    mesh, state, seed_keys = start_state(config, model, tx)
    if mesh is not None:
        print(f"devices: {dict(mesh.shape)} (seeds x batch rows)", flush=True)
    train_step = make_train_step(config, task, model, tx, mesh)
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), keep=config.keep_checkpoints)
    restored = checkpointer.restore(state)
    first_step = 1
    if restored is not None:
        first_step, state = restored[0] + 1, restored[1]
        if writer:
            _drop_metrics_after(metrics_path, restored[0])
        print(f"resumed from the checkpoint at step {restored[0]}", flush=True)
    elif config.init_from:
        state = post_train_start(config, state)
        print(f"post-training from the final parameters of {config.init_from}", flush=True)
    if mesh is not None and (restored is not None or config.init_from):
        state = shard_state(state, mesh)

    start = time.perf_counter()
    compiled = train_step.lower(state, seed_keys).compile()
    compile_s = time.perf_counter() - start
    tokens_per_step = config.seeds * config.batch_size * task.seq_len(config.train_length)
    train_start = time.perf_counter()
    step = first_step - 1
    with StopRequested() as stop:
        for step in range(first_step, config.steps + 1):
            state, metrics = compiled(state, seed_keys)
            all_diverged = False
            if step % config.log_every == 0 or step == config.steps:
                line = _metrics_line(step, jax.device_get(metrics), jax.device_get(state.alive),
                                     tokens_per_step * (step - first_step + 1),
                                     time.perf_counter() - train_start)
                if writer:
                    results.append_jsonl(metrics_path, line)
                eta = line["train_s"] / (step - first_step + 1) * (config.steps - step)
                print(_progress(line, config.steps, eta), flush=True)
                all_diverged = not any(line["alive"])
            if (step % config.checkpoint_every == 0 or step == config.steps or stop.requested
                    or all_diverged):
                checkpointer.save(step, state)
            if stop.requested:
                print(f"stopped by signal {stop.signum}; checkpoint saved at step {step}; rerun "
                      f"the same command to resume", flush=True)
                checkpointer.close()
                return None
            if all_diverged:
                print(f"every seed diverged; stopped at step {step}", flush=True)
                break
    checkpointer.close()
    jax.block_until_ready(state)
    train_s = time.perf_counter() - train_start
    steps_run = step - first_step + 1

    eval_start = time.perf_counter()
    lengths = list(config.eval_lengths) or evaluate.default_lengths(task, config.train_length)
    if "max_length" in cells.hparams(config.cell):  # attention: the KV cache must fit
        eval_cell = cells.get(config.cell, **{**cell.hparams,
                                              "max_length": task.seq_len(max(lengths))})
        eval_model = model_for(eval_cell, task, config)
    else:
        eval_model = model
    eval_params = state.params
    if config.precision == "bfloat16":  # score the model that was trained: bf16 weights
        eval_params = cast_floats(eval_params, jnp.bfloat16)
    per_length = evaluate.length_grid(eval_model, eval_params, task, lengths, config.eval_size,
                                      log=lambda text: print(text, flush=True))
    summary = evaluate.summarise(per_length, config.train_length)
    diverged_at = [int(s) if s >= 0 else None for s in jax.device_get(state.diverged_at)]
    one_seed_params = jax.tree_util.tree_map(lambda x: x[0], state.params)
    record = {
        "schema_version": results.SCHEMA_VERSION,
        "status": "ok" if all(s is None for s in diverged_at) else "diverged",
        "seed_status": ["ok" if s is None else "diverged" for s in diverged_at],
        "diverged_at_step": diverged_at,
        "cell": config.cell,
        "family": cell.family,
        "task": config.task,
        "task_group": task.group,
        "config": record_config,
        "config_hash": results.config_hash(results.hashed_fields(record_config)),
        "seeds": config.seeds,
        "steps_run": step,
        "per_length": {str(n): v for n, v in per_length.items()},
        **summary,
        "param_count": int(models.count_params(model)),
        "state_size": int(sum(cell.state_size(block["cell"], config.train_length)
                              for block in one_seed_params["blocks"])),
        "tokens_per_s": tokens_per_step * steps_run / train_s if steps_run else None,
        "compile_s": compile_s,
        "train_s": train_s,
        "eval_s": time.perf_counter() - eval_start,
        "wall_s": time.perf_counter() - run_start,  # this process (a resumed run: since resuming)
        "environment": results.environment(),
    }
    if writer:
        results.write_json(os.path.join(workdir, "result.json"), record)
    print(summary_table(per_length, summary, config.train_length, record["seed_status"]))
    return record


def _metrics_line(step, metrics, alive, tokens, seconds) -> dict[str, Any]:
    """One `metrics.jsonl` object: per-seed loss/accuracy/grad norm (null once not finite)."""
    per_seed = lambda xs: [float(x) if np.isfinite(x) else None for x in xs]
    return {"step": step, "loss": per_seed(metrics["loss"]),
            "accuracy": per_seed(metrics["accuracy"]), "grad_norm": per_seed(metrics["grad_norm"]),
            "alive": [bool(a) for a in alive], "tokens_per_s": tokens / seconds,
            "train_s": seconds}


def _progress(line, steps, eta) -> str:
    live = [i for i, a in enumerate(line["alive"]) if a]
    mean = lambda xs: np.mean([xs[i] for i in live]) if live else float("nan")
    dead = f"  diverged seeds {[i for i, a in enumerate(line['alive']) if not a]}" if len(
        live) < len(line["alive"]) else ""
    return (f"step {line['step']:>6}/{steps}  loss {mean(line['loss']):.4f}  "
            f"acc {mean(line['accuracy']):.3f}  {line['tokens_per_s']:,.0f} tok/s  "
            f"ETA {eta:.0f}s{dead}")


def _drop_metrics_after(path: str, step: int) -> None:
    """Removes metrics lines past `step` (logged before a crash, recomputed after resuming)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        kept = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(kept)
    os.replace(tmp, path)


def summary_table(per_length, summary, train_length, seed_status) -> str:
    """Mean accuracy over the seeds that did not diverge, per evaluation length."""
    ok = [i for i, status in enumerate(seed_status) if status == "ok"]
    lines = [f"{'length':>8}  {'accuracy (mean over seeds)':>27}  {'':8}"]
    for n in sorted(per_length):
        accuracy = [per_length[n]["accuracy"][i] for i in ok]
        value = (f"{np.mean(accuracy):>27.3f}" if ok and None not in accuracy
                 else f"{per_length[n].get('skipped', 'no seed converged'):>27}")
        lines.append(f"{n:>8}  {value}  {'train' if n <= train_length else ''}")
    lines.append(f"score (mean accuracy beyond {train_length}): {summary['score_mean']:.3f}; "
                 f"effective length per seed: {summary['effective_length']}; "
                 f"seeds: {seed_status}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Flags mirror `Config`; only flags given on the command line override a preset/config."""
    defaults = Config()
    flags.DEFINE_string("workdir", None, "Run folder (config.json, metrics.jsonl, result.json).")
    flags.DEFINE_enum("preset", None, sorted(PRESETS), "Start from a preset; flags override it.")
    flags.DEFINE_string("config", None, "Start from a config file PATH.py[:ARG] whose "
                        "get_config(ARG) returns Config fields; flags override it.")
    flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() first (multi-host).")
    flags.DEFINE_string("cell", defaults.cell, "Cell name.")
    flags.DEFINE_string("task", defaults.task, "Task name.")
    flags.DEFINE_string("cell_hparams", "{}", "Extra cell hyperparameters as JSON.")
    flags.DEFINE_string("task_hparams", "{}", "Task difficulty settings as JSON.")
    flags.DEFINE_string("init_from", defaults.init_from, "Post-train: start from the final "
                        "parameters of the finished run in this folder (same cell, task, width, "
                        "depth, seed and seeds).")
    for name in ("width", "depth", "train_length", "min_train_length", "steps", "batch_size",
                 "seeds", "seed", "warmup_steps", "tbptt", "eval_size", "log_every",
                 "checkpoint_every", "keep_checkpoints"):
        flags.DEFINE_integer(name, getattr(defaults, name), f"Config.{name}.",
                             lower_bound=0 if name in ("seed", "warmup_steps", "tbptt") else 1)
    flags.DEFINE_enum("curriculum", defaults.curriculum, CURRICULA, "Training lengths.")
    flags.DEFINE_enum("initial_state", defaults.initial_state, interventions.INITIAL_STATES,
                      "Training-time initial-state intervention (Buitrago & Gu 2025).")
    flags.DEFINE_enum("precision", defaults.precision, PRECISIONS, "Parameter/activation dtype.")
    for name in ("learning_rate", "weight_decay", "clip_norm", "initial_state_std"):
        flags.DEFINE_float(name, getattr(defaults, name), f"Config.{name}.", lower_bound=0.0)
    flags.DEFINE_list("eval_lengths", [], "Evaluation lengths (default: train_length x 1..64, "
                      "plus 41..500 for formal-language tasks).")


def load_config_file(spec: str) -> dict[str, Any]:
    """Config fields from `PATH.py[:ARG]`: the file's `get_config()` or `get_config(ARG)`.

    The file is plain Python (big_vision's and ml_collections' convention) returning a dict
    whose keys are `Config` fields; unknown keys are an error naming the valid ones.
    """
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise ValueError(f"--config: no such file {path!r} (expected PATH.py[:ARG])")
    namespace = runpy.run_path(path)
    if "get_config" not in namespace:
        raise ValueError(f"--config: {path} defines no get_config()")
    fields = namespace["get_config"](arg) if arg else namespace["get_config"]()
    valid = sorted(f.name for f in dataclasses.fields(Config))
    unknown = sorted(set(fields) - set(valid))
    if unknown:
        raise ValueError(f"--config: {path} sets unknown fields {unknown}; valid: {valid}")
    return dict(fields)


def config_from_flags() -> Config:
    """Config defaults < --preset or --config < flags given on the command line."""
    if FLAGS.preset and FLAGS.config:
        raise ValueError("give --preset or --config, not both")
    fields = dict(PRESETS[FLAGS.preset]) if FLAGS.preset else {}
    if FLAGS.config:
        fields = load_config_file(FLAGS.config)
    for field in dataclasses.fields(Config):
        if field.name in FLAGS and (FLAGS[field.name].present or field.name not in fields):
            fields[field.name] = FLAGS[field.name].value
    return config_from_fields(fields)


def config_from_fields(fields: dict[str, Any]) -> Config:
    """A Config from plain values: hparams as dicts or JSON strings, eval lengths as a list."""
    fields = dict(fields)
    for name in ("cell_hparams", "task_hparams"):
        value = fields.get(name, "{}")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise ValueError(f"--{name} must be a JSON object; {e}") from None
        if isinstance(value, tuple):
            value = dict(value)
        if not isinstance(value, dict):
            raise ValueError(f"--{name} must be a JSON object; got {value!r}")
        fields[name] = tuple(sorted(value.items()))
    try:
        fields["eval_lengths"] = tuple(int(n) for n in fields.get("eval_lengths", ()))
    except ValueError:
        raise ValueError(f"--eval_lengths must be integers; got {fields['eval_lengths']}") from None
    return Config(**fields)


fail = functools.partial(cli.fail, "seqbench.train")


def main(argv):
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    if len(argv) > 1:
        fail(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.workdir:
        fail("--workdir is required (where config.json and result.json go)")
    if FLAGS.distributed:
        jax.distributed.initialize()  # before any other JAX call: every host joins the mesh
    try:
        config = config_from_flags()
        build(config)  # every check that can fail runs before anything compiles
        check_post_train_start(config, FLAGS.workdir)
    except (ValueError, TypeError) as e:
        fail(str(e))
    if run(config, FLAGS.workdir) is None:
        sys.exit(143)  # stopped by a signal after saving: 128 + SIGTERM, as an unhandled kill


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=cli.flags_parser("seqbench.train"))
