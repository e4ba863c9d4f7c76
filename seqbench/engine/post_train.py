"""Post-training: a run that starts from another finished run's final parameters.

Buitrago Ruiz & Gu 2025 ("Understanding and Improving Length Generalization in Recurrent
Models") post-train a trained model for a short phase with an initial-state intervention.
`Config.init_from` names the finished run's folder; the post-training run must share the fields
`config.POST_TRAIN_SHARED` with it (the same models and seeds, so seed i continues seed i), and
records the source's config hash as `post_trained_from`, so its own hash says what it started
from, not where that folder lies.
"""

from __future__ import annotations

import json
import os
from typing import Any

from seqbench.checkpoint import Checkpointer
from seqbench.engine import config as config_lib
from seqbench.engine.config import POST_TRAIN_SHARED, Config
from seqbench.engine.step import TrainState, init_state, optimizer


def check_post_train(config: Config, source_json: dict[str, Any]) -> None:
    """Raises ValueError when the run recorded as `source_json` (a `config_json`) is not one
    `config` can post-train: fields of `POST_TRAIN_SHARED` differ (both values named)."""
    mine, theirs = config.to_json(), config_lib.from_json(source_json).to_json()
    differ = [f"{name}={theirs[name]!r} there, {mine[name]!r} here"
              for name in POST_TRAIN_SHARED if theirs[name] != mine[name]]
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


# What to do about a finished run whose final checkpoint is gone (checkpoints are not committed)
RETRAIN_HINT = "move its result.json away to train it again from its seeds"


def check_source_checkpoint(config: Config, record: dict[str, Any]) -> None:
    """Raises ValueError unless the run `config.init_from` (whose `result.json` is `record`)
    still holds the checkpoint of its final step, which post-training starts from."""
    final = os.path.join(config.init_from, "checkpoints", str(record["steps_run"]))
    if not os.path.isdir(final):
        raise ValueError(f"init_from: {config.init_from!r} has no checkpoint of its final step "
                         f"{record['steps_run']} (checkpoints are not committed with results): "
                         f"{RETRAIN_HINT}, then post-train it")


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
        out["post_trained_from"] = config_lib.config_hash(source_json)
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
    source = config_lib.from_json(record["config"])
    _, _, source_model = config_lib.build(source)
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


