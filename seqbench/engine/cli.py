"""`python -m seqbench.train`: flags -> Config -> `loop.run`.

    python -m seqbench.train --cell=lru --task=parity_check --train_length=40 --workdir=runs/x
    python -m seqbench.train --preset=smoke --workdir=runs/smoke      # under a minute on a CPU
    python -m seqbench.train --config=experiments/configs/chomsky.py:regular --workdir=runs/x

Every flag but --workdir, --preset, --config, --overwrite and --distributed (with its
--coordinator_address, --num_processes, --process_id) is a `Config` field, declared
once in `seqbench.engine.config` with its help text and bounds. Bad input (a flag, a value, a
config file, a post-training source) is one line on stderr and exit status 2, before anything
compiles; a run stopped by SIGTERM/SIGINT saves a checkpoint and exits 143.
"""

from __future__ import annotations

import functools
import logging
import os
import sys

import jax
from absl import app, flags
from absl import logging as absl_logging

from seqbench import cli, models
from seqbench.checkpoint import CheckpointError
from seqbench.engine import config as config_lib
from seqbench.engine.loop import check_workdir, run
from seqbench.engine.post_train import check_post_train_start

fail = functools.partial(cli.fail, "seqbench.train")
BYTES_PER_PARAMETER = 16  # float32 parameters, gradients and AdamW's two moments

logger = logging.getLogger(__name__)


def check_memory(config: config_lib.Config, model: models.Model) -> None:
    """Raises ValueError when the members' parameters and optimiser state alone exceed this
    machine's memory (an estimate made without allocating: `jax.eval_shape`)."""
    need = models.count_params(model) * config.members * BYTES_PER_PARAMETER
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > total:
        raise ValueError(f"the model needs ~{need / 2**30:,.1f} GiB for the parameters and "
                         f"optimiser state of {config.members} member(s) alone "
                         f"({models.count_params(model):,} parameters each); this machine has "
                         f"{total / 2**30:,.1f} GiB: use a smaller --width or --depth")


def main(argv, values: flags.FlagValues = flags.FLAGS):
    """The command: `values` are the parsed flags (`config.define_flags`)."""
    absl_logging.set_verbosity(absl_logging.WARNING)  # orbax logs every save at INFO
    if len(argv) > 1:
        fail(f"unexpected arguments: {argv[1:]}")
    workdir = values.workdir
    if not workdir:
        fail("--workdir is required (where config.json and result.json go)")
    if values.distributed:  # before any other JAX call: every process joins the mesh
        jax.distributed.initialize(coordinator_address=values.coordinator_address,
                                   num_processes=values.num_processes,
                                   process_id=values.process_id)
    elif values.coordinator_address or values.num_processes or values.process_id is not None:
        fail("--coordinator_address, --num_processes and --process_id need --distributed")
    try:
        config = config_lib.from_flags(values)
        _, _, model = config_lib.build(config)  # every check that can fail, before compiling
        check_memory(config, model)
        check_post_train_start(config, workdir)
        if not values.overwrite:
            check_workdir(config, workdir)
        record = run(config, workdir, overwrite=values.overwrite)
    except (ValueError, TypeError) as e:
        fail(str(e))
    except CheckpointError as e:
        fail(f"{e}; move {workdir}/checkpoints away (or use --overwrite) to start afresh")
    except KeyboardInterrupt:  # before the run could install its handler: nothing to save
        logger.warning("seqbench.train: stopped before training started; nothing to save")
        sys.exit(143)
    if record is None:
        sys.exit(143)  # stopped by a signal after saving: 128 + SIGTERM, as an unhandled kill


def entry_point() -> None:
    config_lib.define_flags()
    app.run(main, flags_parser=cli.flags_parser("seqbench.train"))
