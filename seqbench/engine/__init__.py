"""The training engine: configuration, compiled step, run loop, post-training, command line.

    config.py      Config, declared once (flags, files, checks, hashes), build, model_for
    curricula.py   training-length strategies (fixed, uniform, uniform_batch, increasing)
    step.py        TrainState, optimizer, loss, mesh, make_train_step
    post_train.py  starting a run from another finished run's parameters
    workdir.py     a run's folder: lock, configuration check, torn metrics, stale files
    loop.py        run(config, workdir): orchestration, metrics lines, result record
    cli.py         python -m seqbench.train

Imports point one way: cli -> loop -> (post_train -> step, workdir) -> config -> curricula.
"""

from seqbench.engine.config import (
                                    HASHED_FIELDS,
                                    POST_TRAIN_SHARED,
                                    PRESETS,
                                    Config,
                                    build,
                                    config_hash,
                                    from_fields,
                                    from_json,
                                    load_config_file,
                                    model_for,
)
from seqbench.engine.loop import check_workdir, reevaluate, run, summary_table
from seqbench.engine.post_train import (
                                    check_post_train,
                                    check_post_train_start,
                                    config_json,
                                    post_train_start,
                                    source_record,
)
from seqbench.engine.step import (
                                    TrainState,
                                    cast_floats,
                                    device_mesh,
                                    init_state,
                                    make_loss,
                                    make_train_step,
                                    make_value_and_grad,
                                    optimizer,
                                    shard_state,
                                    start_state,
)
from seqbench.engine.workdir import InUse

__all__ = [
    "Config", "HASHED_FIELDS", "InUse", "POST_TRAIN_SHARED", "PRESETS", "TrainState", "build",
    "cast_floats", "check_post_train", "check_workdir", "check_post_train_start", "config_hash", "config_json",
    "device_mesh", "from_fields", "from_json", "init_state", "load_config_file", "make_loss",
    "make_train_step", "make_value_and_grad", "model_for", "optimizer", "post_train_start", "reevaluate", "run", "shard_state",
    "source_record", "start_state", "summary_table",
]
