"""Bring finished runs' `result.json` up to the current evaluator and schema.

    python -m seqbench.reevaluate --runs=experiments/runs/chomsky

Until 2026-12-01 the evaluator skipped every attention length whose memory estimate was over
`evaluate.MAX_EVAL_BYTES`; it now evaluates such lengths in groups of rows. Until 2026-12-04
(schema 3) a seed at chance got an effective length from its noise. For each run folder under
`--runs`, this evaluates skipped lengths from the run's final checkpoint with the current
evaluator, recomputes the summary of a schema-3 record from its per-length metrics, and
rewrites `result.json` (`engine.reevaluate`); runs already up to date are left alone. One line
per run.
"""

from __future__ import annotations

import functools
import os

from absl import app, flags
from absl import logging as absl_logging

from seqbench import engine
from seqbench.engine import cli

FLAGS = flags.FLAGS
fail = functools.partial(cli.fail, "seqbench.reevaluate")


def define_flags() -> None:
    flags.DEFINE_string("runs", None, "A folder of run folders (a sweep's --runs).")


def main(argv) -> int:
    absl_logging.set_verbosity(absl_logging.WARNING)  # orbax logs every restore at INFO
    if len(argv) > 1:
        fail(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.runs or not os.path.isdir(FLAGS.runs):
        fail(f"--runs must be a folder of run folders; got {FLAGS.runs!r}")
    failures = 0
    for name in sorted(os.listdir(FLAGS.runs)):
        workdir = os.path.join(FLAGS.runs, name)
        if not os.path.exists(os.path.join(workdir, "result.json")):
            continue
        try:
            record = engine.reevaluate(workdir)
        except ValueError as e:
            print(f"{name}: not re-evaluated: {e}", flush=True)
            failures += 1
            continue
        if record is None:
            print(f"{name}: up to date", flush=True)
            continue
        print(f"{name}: rewritten; score {record['score_mean']}, effective length "
              f"{record['effective_length']}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
