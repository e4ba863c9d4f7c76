"""`python -m seqbench.train`: flags -> Config -> `loop.run`.

    python -m seqbench.train --cell=lru --task=parity_check --train_length=40 --workdir=runs/x
    python -m seqbench.train --preset=smoke --workdir=runs/smoke      # under a minute on a CPU
    python -m seqbench.train --config=experiments/configs/chomsky.py:regular --workdir=runs/x

Every flag but --workdir, --preset, --config and --distributed is a `Config` field, declared
once in `seqbench.engine.config` with its help text and bounds. Bad input (a flag, a value, a
config file, a post-training source) is one line on stderr and exit status 2, before anything
compiles; a run stopped by SIGTERM/SIGINT saves a checkpoint and exits 143.
"""

from __future__ import annotations

import functools
import sys

import jax
from absl import app, flags, logging

from seqbench import cli
from seqbench.engine import config as config_lib
from seqbench.engine.loop import check_workdir, run
from seqbench.engine.post_train import check_post_train_start

fail = functools.partial(cli.fail, "seqbench.train")


def main(argv):
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    if len(argv) > 1:
        fail(f"unexpected arguments: {argv[1:]}")
    workdir = flags.FLAGS.workdir
    if not workdir:
        fail("--workdir is required (where config.json and result.json go)")
    if flags.FLAGS.distributed:
        jax.distributed.initialize()  # before any other JAX call: every host joins the mesh
    try:
        config = config_lib.from_flags()
        config_lib.build(config)  # every check that can fail runs before anything compiles
        check_post_train_start(config, workdir)
        if not flags.FLAGS.overwrite:
            check_workdir(config, workdir)
        record = run(config, workdir, overwrite=flags.FLAGS.overwrite)
    except (ValueError, TypeError) as e:
        fail(str(e))
    if record is None:
        sys.exit(143)  # stopped by a signal after saving: 128 + SIGTERM, as an unhandled kill


def entry_point() -> None:
    config_lib.define_flags()
    app.run(main, flags_parser=cli.flags_parser("seqbench.train"))
