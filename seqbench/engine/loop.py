"""One run from start to finish: `run(config, workdir)`, orchestration only.

1. `config.build`: cell, task and model, every check that can fail before anything compiles.
2. `step.start_state`, or the newest readable checkpoint (resume), or `post_train.post_train_
   start` (post-training); one compiled `step.make_train_step` per curriculum bucket.
3. The loop: every `log_every` steps a metrics line (`metrics.jsonl`, and a progress line on
   the `seqbench` logger: `seqbench.logs`); checkpoints every `checkpoint_every` steps and on
   SIGTERM/SIGINT; a rerun resumes bit for bit.
4. `evaluate.length_grid` scores every seed at every evaluation length from the zero state.
5. `result.json` (atomic) with per-length metrics per seed, score, effective length, sizes,
   throughput and versions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from seqbench import evaluate, models, results, tensorboard
from seqbench.checkpoint import Checkpointer, StopRequested
from seqbench.engine import curricula
from seqbench.engine import workdir as workdir_lib
from seqbench.engine.config import Config, build, config_hash, from_json
from seqbench.engine.post_train import RETRAIN_HINT, config_json, post_train_start
from seqbench.engine.step import (
    cast_floats,
    fetch,
    make_train_step,
    optimizer,
    shard_state,
    start_state,
)

logger = logging.getLogger(__name__)


def check_workdir(config: Config, workdir: str) -> None:
    """Raises ValueError when `workdir` holds a run of another configuration (`workdir.check`)."""
    workdir_lib.check(config_json(config), workdir)


def run(config: Config, workdir: str, *, overwrite: bool = False,
        keep_finished: bool = False) -> dict[str, Any] | None:
    """Trains, evaluates and writes `config.json`, `metrics.jsonl`, `result.json`.

    Resumes from the newest readable checkpoint in `workdir/checkpoints` (the per-step keys
    depend only on the step, so a resumed run ends with the same parameters as an uninterrupted
    one). SIGTERM/SIGINT save a checkpoint at the next step boundary and return None. In a
    multi-process run only process 0 writes the JSON files (and holds the folder's lock).
    Raises ValueError before anything is written when `workdir` holds a run of another
    configuration (unless `overwrite`, which deletes it) or another process trains there
    (`workdir.InUse`). `keep_finished`: a folder already holding this run's result, as seen
    once its lock is held (another process may have just finished it), is returned as it is
    rather than evaluated again.
    """
    run_start = time.perf_counter()
    cell, task, model = build(config)
    if config.tensorboard:
        tensorboard.require()
    writer = jax.process_index() == 0
    record_config = config_json(config)
    with workdir_lib.lock(workdir) if writer else contextlib.nullcontext():
        if overwrite and writer:
            workdir_lib.clear(workdir)
        workdir_lib.check(record_config, workdir)
        if keep_finished and writer:
            record = workdir_lib.finished_record(record_config, workdir)
            if record is not None:
                return record
        if writer:
            workdir_lib.remove_stale_temporaries(workdir)
        with StopRequested() as stop:  # from here on, SIGTERM/SIGINT stop cleanly
            return _run(config, workdir, cell, task, model, record_config, writer, run_start,
                        stop)


def _run(config, workdir, cell, task, model, record_config, writer, run_start, stop):
    """`run` once the folder is checked and locked; `stop.requested` once a signal came (a
    signal during compilation stops after the first step, during evaluation between two
    lengths: the final checkpoint is saved either way)."""
    os.makedirs(workdir, exist_ok=True)
    if writer:
        results.write_json(os.path.join(workdir, "config.json"), record_config)
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    tx = optimizer(config)
    mesh, state, seed_keys = start_state(config, model, tx)
    if mesh is not None:
        logger.info(f"devices: {dict(mesh.shape)} (seeds x batch rows)")
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), keep=config.keep_checkpoints)
    restored = checkpointer.restore(state)
    first_step = 1
    if writer:  # lines logged past the restored step (all, on a fresh start) are recomputed
        workdir_lib.drop_metrics_after(metrics_path, 0 if restored is None else restored[0])
    if restored is not None:
        first_step, state = restored[0] + 1, restored[1]
        logger.info(f"resumed from the checkpoint at step {restored[0]}")
    elif config.init_from:
        state = post_train_start(config, state)
        logger.info(f"post-training from the final parameters of {config.init_from}")
    if mesh is not None and (restored is not None or config.init_from):
        state = shard_state(state, mesh)

    start = time.perf_counter()
    curriculum = curricula.CURRICULA[config.curriculum]
    low, high = config.min_train_length, config.train_length
    programs = {bucket: make_train_step(config, task, model, tx, mesh, bucket).lower(
                    state, seed_keys, jnp.int32(high)).compile()
                for bucket in curricula.buckets(curriculum, low, high)
                if first_step <= config.steps}  # resumed after the last step: evaluate only
    compile_s = time.perf_counter() - start
    board = None
    if config.tensorboard and writer:  # a resumed run discards the lines past its checkpoint
        board = tensorboard.Writer(workdir, tensorboard.member_names(
            members(config), bool(config.learning_rates)), purge_step=first_step)
    tokens = 0  # padded tokens trained on since this process started
    train_start = time.perf_counter()
    step = first_step - 1
    for step in range(first_step, config.steps + 1):
        batch_length = curriculum.batch_length(low, high, config.seed, step - 1, config.steps)
        bucket = curricula.bucket(curriculum, batch_length, high)
        state, metrics = programs[bucket](state, seed_keys, jnp.int32(batch_length))
        tokens += config.members * config.batch_size * task.seq_len(bucket)
        all_diverged = False
        if step % config.log_every == 0 or step == config.steps:
            line = _metrics_line(step, batch_length if curriculum.per_batch else None,
                                 *fetch((metrics, state.alive)), tokens,
                                 time.perf_counter() - train_start)
            if writer:
                results.append_jsonl(metrics_path, line)
            if board is not None:
                board.metrics(line)
            eta = line["train_s"] / (step - first_step + 1) * (config.steps - step)
            logger.info(_progress(line, config.steps, eta))
            all_diverged = not any(line["alive"])
        if (step % config.checkpoint_every == 0 or step == config.steps or stop.requested
                or all_diverged):
            checkpointer.save(step, state)
        if stop.requested:
            logger.warning(f"stopped by signal {stop.signum}; checkpoint saved at step {step}; "
                           f"rerun the same command to resume")
            checkpointer.close()
            if board is not None:
                board.close()
            return None
        if all_diverged:
            logger.warning(f"every seed diverged; stopped at step {step}")
            break
    checkpointer.close()
    jax.block_until_ready(state)
    train_s = time.perf_counter() - train_start
    steps_run = step - first_step + 1

    eval_start = time.perf_counter()
    per_length, eval_params = evaluate_trained(config, cell, task, model, state,
                                               eval_lengths(config, task),
                                               stop=lambda: stop.requested)
    if stop.requested:
        logger.warning(f"stopped by signal {stop.signum} during evaluation; the checkpoint of "
                       f"step {step} is saved; rerun the same command to evaluate")
        if board is not None:
            board.close()
        return None
    diverged = fetch(state.diverged_at)
    summary = evaluate.summarise(per_length, config.train_length, ok=[s < 0 for s in diverged],
                                 chance=evaluate.chance_accuracy(task))
    diverged_at = [int(s) if s >= 0 else None for s in diverged]
    one_seed_params = jax.tree_util.tree_map(lambda x: x[0], eval_params)
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
        "config_hash": config_hash(record_config),
        "seeds": config.members,  # entries of every per-seed list: seeds x learning rates
        "members": members(config),
        "steps_run": step,
        "per_length": {str(n): v for n, v in per_length.items()},
        **summary,
        "param_count": int(models.count_params(model)),
        "state_size": int(sum(cell.state_size(block["cell"], config.train_length)
                              for block in one_seed_params["blocks"])),
        "tokens_per_s": tokens / train_s if steps_run else None,
        "compile_s": compile_s,
        "train_s": train_s,
        "eval_s": time.perf_counter() - eval_start,
        "wall_s": time.perf_counter() - run_start,  # this process (a resumed run: since resuming)
        "environment": results.environment(),
    }
    results.check_fields(record)
    if writer:
        results.write_json(os.path.join(workdir, "result.json"), record)
    if board is not None:
        board.result(record)
        board.close()
    logger.info(summary_table(per_length, summary, config.train_length, record["seed_status"]))
    return record


def eval_lengths(config: Config, task) -> list[int]:
    """The run's evaluation lengths: `eval_lengths`, or the task's default grid."""
    return list(config.eval_lengths) or evaluate.default_lengths(task, config.train_length)


def evaluate_trained(config: Config, cell, task, model, state, lengths, stop=None):
    """(per_length, the evaluated parameters) of a trained state at `lengths`: attention's cache
    sized for the run's longest length, every seed on this process's first device, bf16 weights
    for a bf16 run (the model that was trained)."""
    eval_model = model
    if not cell.recurrent:  # a state that grows with time (attention's cache) must fit
        longest = max(eval_lengths(config, task))
        eval_model = model.with_cell(cell.sized_for(task.seq_len(longest)))
    eval_params = state.params
    if jax.process_count() > 1:  # every process evaluates every seed, on its first device
        eval_params = jax.device_put(fetch(eval_params), jax.local_devices()[0])
    if config.precision == "bfloat16":  # score the model that was trained: bf16 weights
        eval_params = cast_floats(eval_params, jnp.bfloat16)
    per_length = evaluate.length_grid(eval_model, eval_params, task, lengths, config.eval_size,
                                      stop=stop)
    return per_length, eval_params


def reevaluate(workdir: str) -> dict[str, Any] | None:
    """Brings a finished run's `result.json` up to the current schema and evaluator, in two
    steps, each written when done:

    1. a record of an older schema (`results.UPGRADABLE_SCHEMAS`) has its summary recomputed
       from its per-length metrics and, when it has none, its `members` read off its config
       (no checkpoint needed);
    2. lengths it recorded as skipped (attention over the memory limit of the evaluator it
       ran with) are evaluated from its final checkpoint and merged in, the summary
       recomputed, and `reevaluated` says which lengths, when and with which code.

    Every other field is kept. Returns the new record, or None when there was nothing to do.
    Raises ValueError when the run has no result, its schema cannot be upgraded, or it has
    skipped lengths and its final checkpoint is gone (after step 1 is written)."""
    path = os.path.join(workdir, "result.json")
    if not os.path.exists(path):
        raise ValueError(f"{workdir}: no result.json (not a finished run)")
    with open(path) as f:
        record = json.load(f)
    version = record.get("schema_version")
    if version not in (results.SCHEMA_VERSION, *results.UPGRADABLE_SCHEMAS):
        raise ValueError(f"{workdir}: schema_version {version!r} cannot be upgraded (expected "
                         f"one of {(*results.UPGRADABLE_SCHEMAS, results.SCHEMA_VERSION)})")
    per_length = {int(n): entry for n, entry in record["per_length"].items()}
    missing = sorted(n for n, entry in per_length.items() if "skipped" in entry)
    if version != results.SCHEMA_VERSION:
        config = from_json(record["config"])
        record.setdefault("members", members(config))  # absent from the first schema-3 records
        _write_summary(path, record, per_length, config, build(config)[1])
    elif not missing:
        return None
    if missing:
        config, cell, task, model, state = final_state(workdir, record)
        start = time.perf_counter()
        found, _ = evaluate_trained(config, cell, task, model, state, missing)
        per_length.update(found)
        record["reevaluated"] = {"lengths": missing, "eval_s": time.perf_counter() - start,
                                 "environment": results.environment()}
        _write_summary(path, record, per_length, config, task)
    return record


def _write_summary(path, record, per_length, config, task) -> None:
    """Writes `record` to `path` with `per_length` and the summary recomputed from it, at the
    current schema."""
    summary = evaluate.summarise(per_length, config.train_length,
                                 ok=[s == "ok" for s in record["seed_status"]],
                                 chance=evaluate.chance_accuracy(task))
    record.pop("in_distribution_note", None)
    record.update(per_length={str(n): per_length[n] for n in sorted(per_length)}, **summary,
                  schema_version=results.SCHEMA_VERSION)
    results.check_fields(record)
    results.write_json(path, record)


def final_state(workdir: str, record: dict[str, Any]):
    """(config, cell, task, model, state) of the finished run in `workdir` whose result is
    `record`, the state read from its final checkpoint. Raises ValueError when the newest
    readable checkpoint is not the run's last step (checkpoints are not committed)."""
    config = from_json(record["config"])
    cell, task, model = build(config)
    _, state, _ = start_state(config, model, optimizer(config))
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"))
    restored = checkpointer.restore(state)
    checkpointer.close()
    if restored is None or restored[0] != record["steps_run"]:
        raise ValueError(f"{workdir}: the checkpoint of its last step {record['steps_run']} is "
                         f"gone (checkpoints are not committed): {RETRAIN_HINT}")
    return config, cell, task, model, restored[1]


def members(config: Config) -> list[dict[str, Any]]:
    """result.json's `members`: the seed and learning rate of each trained model, in order."""
    return [{"seed": m % config.seeds, "learning_rate": rate}
            for m, rate in enumerate(config.member_learning_rates)]


def _metrics_line(step, batch_length, metrics, alive, tokens, seconds) -> dict[str, Any]:
    """One `metrics.jsonl` object: per-seed loss/accuracy/grad norm (null once not finite) of
    the step's batch; under a curriculum of one length per batch (`uniform_batch`) the length
    L it was drawn at, `batch_length` (a step's numbers are those of one length: a batch of
    length 1 scores near 1 whatever the model learned); and for cells solved in parallel over
    time the per-seed solver iterations and residual."""
    per_seed = lambda xs: [float(x) if np.isfinite(x) else None for x in xs]
    line = {"step": step, "loss": per_seed(metrics["loss"]),
            "accuracy": per_seed(metrics["accuracy"]), "grad_norm": per_seed(metrics["grad_norm"]),
            "alive": [bool(a) for a in alive], "tokens_per_s": tokens / seconds,
            "train_s": seconds}
    if batch_length is not None:
        line["batch_length"] = int(batch_length)
    if "solver_iterations" in metrics:
        line["solver_iterations"] = [int(x) for x in metrics["solver_iterations"]]
        line["solver_residual"] = per_seed(metrics["solver_residual"])
    return line


def _progress(line, steps, eta) -> str:
    live = [i for i, a in enumerate(line["alive"]) if a]
    mean = lambda xs: np.mean([xs[i] for i in live]) if live else float("nan")
    dead = f"  diverged seeds {[i for i, a in enumerate(line['alive']) if not a]}" if len(
        live) < len(line["alive"]) else ""
    solver = ""
    if "solver_iterations" in line:  # the worst seed's solve
        residuals = [r for r in line["solver_residual"] if r is not None]
        worst = max(residuals) if len(residuals) == len(line["solver_residual"]) else float("nan")
        solver = f"  solver {max(line['solver_iterations'])} it, residual {worst:.1e}"
    length = f" (length {line['batch_length']})" if "batch_length" in line else ""
    return (f"step {line['step']:>6}/{steps}  loss {mean(line['loss']):.4f}  "
            f"acc {mean(line['accuracy']):.3f}{length}  "
            f"{line['tokens_per_s']:,.0f} tok/s{solver}  ETA {eta:.0f}s{dead}")


def summary_table(per_length, summary, train_length, seed_status) -> str:
    """Mean accuracy over the seeds that did not diverge, per evaluation length."""
    ok = [i for i, status in enumerate(seed_status) if status == "ok"]
    lines = [f"{'length':>8}  {'accuracy (mean over seeds)':>27}  {'':8}"]
    for n in sorted(per_length):
        accuracy = [per_length[n]["accuracy"][i] for i in ok]
        value = (f"{np.mean(accuracy):>27.3f}" if ok and None not in accuracy
                 else f"{per_length[n].get('skipped', 'no seed converged'):>27}")
        lines.append(f"{n:>8}  {value}  {'train' if n <= train_length else ''}")
    score = summary["score_mean"]
    over = f"over {len(ok)} seed{'s' if len(ok) != 1 else ''} that did not diverge"
    lines.append(f"score (mean accuracy beyond {train_length} {over}): "
                 f"{'n/a' if score is None else f'{score:.3f}'}; "
                 f"effective length per seed: {summary['effective_length']}; "
                 f"seeds: {seed_status}")
    return "\n".join(lines)


