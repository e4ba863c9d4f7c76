"""Run every configuration of a preset one after another: the experiments' runner.

    python -m seqbench.sweep --config=experiments/configs/chomsky.py --runs=experiments/runs/chomsky
    python -m seqbench.sweep --config=experiments/configs/mqar.py:smoke --runs=/tmp/smoke --only=mamba-
    python -m seqbench.sweep --config=experiments/configs/state_tracking.py --runs=runs --dry_run

A preset file is plain Python (big_vision's convention, as `seqbench.train --config`) defining

    get_config(arg="full") -> dict   # Config fields shared by every run of the sweep
    get_sweep(arg="full") -> list[dict]  # one dict per run: {"name": "lstm-parity_check", **overrides}

where ARG (after the colon in `--config=PATH.py:ARG`; none: the functions' default) picks a
variant such as "full", "smoke" or "paper". Run k trains `Config(**{**get_config(arg),
**get_sweep(arg)[k] minus "name"})` into `--runs/NAME`; names must be unique folder names.
`seqbench.train --config=PATH.py[:ARG]` reads the same file and uses `get_config` alone, so a
preset's `get_config` is itself a complete, representative run.

Runs go sequentially. Every configuration is built (`engine.build`) before the first one trains,
so a bad run fails the sweep before anything is spent. A run whose folder already holds a
`result.json` of the same configuration (same `config_hash`, base seed and seed count: the
leaderboard's notion of identical) is skipped, so an interrupted sweep resumes where it stopped;
a run interrupted mid-training resumes from its checkpoints (`engine.run`). A folder holding a
different configuration is an error, never overwritten. A run may post-train another run of the
sweep (`init_from="NAME"`, resolved to `--runs/NAME`; it must be listed after it). One progress
line per run: `[i/n] NAME: score S (mean over seeds), T s; K runs left, ETA E` (the ETA: the
mean time of the runs this process trained, a resumed one's scaled to all its steps, times the
runs left; or `skipped, already done`).
Workers: several processes may run the same command (or `--only` slices of it) at once; each
skips the runs another one is training (each run folder is locked, `.lock`) and reads those
it finished, so N processes share a sweep without coordinating. `--dry_run` lists each run's
state (done with its score, training in process PID, to run; the last logged step of an
unfinished one) and the counts, training nothing.
`--tensorboard`: every run also writes TensorBoard files (`seqbench.tensorboard`).
`--launcher=ray`: every run a Ray task on a cluster, the same semantics (`seqbench.ray_launcher`).

Bad input (no such file, no get_config/get_sweep, a run without a name, duplicate names, unknown
Config fields, an invalid configuration, a folder of another configuration): exit status 2 and
one line, as `seqbench.train`. A sweep stopped by SIGTERM/SIGINT exits 143 after the running
run saved its checkpoint; rerunning the command resumes it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import re
import sys
import time
from typing import Any

from absl import app, flags
from absl import logging as absl_logging

from seqbench import cli, engine, ray_launcher, tensorboard
from seqbench.engine import workdir as workdir_lib

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]*")  # one folder name, no path separators

logger = logging.getLogger("seqbench.sweep")  # not __name__: "__main__" under python -m


def load(spec: str) -> list[tuple[str, engine.Config]]:
    """(name, Config) of every run of the preset `PATH.py[:ARG]`, in the sweep's order.

    Raises ValueError naming the problem (and the valid choices where there are some).
    """
    shared, namespace = engine.load_config_file(spec)  # the file, get_config and its fields
    path, _, arg = spec.partition(":")
    if "get_sweep" not in namespace:
        raise ValueError(f"--config: {path} defines no get_sweep() (a list of per-run dicts, "
                         f"each with a 'name')")
    try:
        overrides = namespace["get_sweep"](arg) if arg else namespace["get_sweep"]()
    except Exception as e:  # noqa: BLE001 -- a user's file: any error is reported in one line
        raise ValueError(f"--config: {path}: get_sweep({arg!r}) raised {type(e).__name__}: "
                         f"{e}") from None
    if not isinstance(overrides, (list, tuple)) or not overrides:
        raise ValueError(f"--config: {path}: get_sweep() must return a non-empty list of dicts")
    runs, seen = [], set()
    for index, override in enumerate(overrides):
        if not isinstance(override, dict) or "name" not in override:
            raise ValueError(f"--config: {path}: run {index} of get_sweep() has no 'name'")
        fields = dict(override)
        name = fields.pop("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ValueError(f"--config: {path}: run name {name!r} is not a folder name "
                             f"(letters, digits and ._+=- only)")
        if name in seen:
            raise ValueError(f"--config: {path}: duplicate run name {name!r}")
        seen.add(name)
        runs.append((name, engine.from_fields({**shared, **fields},
                                              f"--config: {path}: run {name!r}")))
    return runs


def read_json(path: str) -> dict[str, Any] | None:
    """The JSON object at `path`, or None when the file is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def finished(workdir: str, config_json: dict[str, Any]) -> dict[str, Any] | None:
    """The folder's result record when it is the run of `config_json` (`engine.config_json`),
    else None.

    Raises ValueError when the folder holds a run (result.json or config.json) of another
    configuration (`workdir.identity`: the hashed fields, base seed and seed count; the
    differing ones named): resuming its checkpoints would mix two runs.
    """
    advice = "move it away or use another --runs"
    record = read_json(os.path.join(workdir, "result.json"))
    if record is not None and isinstance(record.get("config"), dict):
        shown = workdir_lib.differences(record["config"], config_json)
        if not shown:
            return record
        raise ValueError(f"{workdir} holds a result of another configuration ({shown}); "
                         f"{advice}")
    workdir_lib.check(config_json, workdir, advice)
    return None


def result_text(record: dict) -> str:
    """A finished run in a few words: its mean score over the seeds that did not diverge
    ("score 0.584 over 5 seeds"), or for a run scored at its training length only (MQAR: no
    length beyond training, so no score) its mean in-distribution accuracy; a grid run
    (`learning_rates`) gives one mean per rate ("... 0.600 at lr 0.00215 over 2 seeds; 0.250
    at lr 0.000464 over 2 seeds")."""
    ok = [status == "ok" for status in record["seed_status"]]

    def finite(value):
        return value is not None and math.isfinite(value)

    scored = any(finite(value) for value in record.get("score") or [])
    measure, values = (("score", record["score"]) if scored
                       else ("in-distribution accuracy", record.get("in_distribution_accuracy")
                             or [None] * len(ok)))
    rates = [member.get("learning_rate") for member in record.get("members") or [{}] * len(ok)]
    parts = []
    for rate in dict.fromkeys(rates):  # in the members' order
        kept = [value for value, alive, r in zip(values, ok, rates)
                if alive and r == rate and finite(value)]
        if kept:
            at = f" at lr {rate:.3g}" if len(set(rates)) > 1 else ""
            parts.append(f"{sum(kept) / len(kept):.3f}{at} over {len(kept)} "
                         f"seed{'s' * (len(kept) != 1)}")
    return f"{measure} " + "; ".join(parts) if parts else "no result (every seed diverged)"


def progress(index: int, total: int, name: str, record: dict | None, seconds: float | None,
             left: int = 0, eta: float | None = None) -> str:
    """The one line printed per run: with `seconds` (it trained), the sweep's runs `left` to
    train and their `eta` in seconds."""
    head = f"[{index}/{total}] {name}:"
    if seconds is None:
        return f"{head} skipped, already done ({result_text(record)})"
    line = f"{head} {result_text(record)}, {seconds:.1f} s"
    if left and eta is not None:
        line += f"; {left} run{'s' * (left > 1)} left, ETA {duration(eta)}"
    return line


def whole_run_seconds(seconds: float, steps: int, resumed_at: int) -> float | None:
    """What a run of `steps` steps would take whole, from the `seconds` this process spent on it
    after resuming at step `resumed_at` (0: from the start): seconds x steps / (steps -
    resumed_at). None when it trained no step here (it only evaluated)."""
    trained = steps - resumed_at
    return seconds * steps / trained if trained > 0 else None


def duration(seconds: float) -> str:
    """'42 s', '17 min' or '3.2 h'."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


Run = tuple[str, engine.Config, dict[str, Any]]  # name, config, its `engine.config_json`


def resolve(runs: list[tuple[str, engine.Config]], root: str) -> list[Run]:
    """Every run with its `engine.config_json`; an `init_from` that is a run name (no "/")
    becomes the folder `root/NAME`.

    A post-training run whose source is a run of this sweep must come after it (the source's
    config is then known before it has run); a source left out (by --only) or given as a path
    must have finished. Raises ValueError naming the run and the problem."""
    order = [name for name, _ in runs]
    known: dict[str, dict[str, Any]] = {}
    out = []
    for name, config in runs:
        source_json = None
        if config.init_from and "/" not in config.init_from:
            source = config.init_from
            if source in order and source not in known:
                raise ValueError(f"run {name!r}: init_from={source!r} must name a run listed "
                                 f"before it")
            config = dataclasses.replace(config, init_from=os.path.join(root, source))
            if source in known:
                engine.check_post_train(config, known[source])
                source_json = known[source]
        try:
            known[name] = engine.config_json(config, source_json)
        except ValueError as e:
            raise ValueError(f"run {name!r}: {e}") from None
        out.append((name, config, known[name]))
    return out


def check(runs: list[tuple[str, engine.Config]], root: str) -> list[Run]:
    """Builds every configuration, resolves post-training sources (`resolve`) and checks every
    folder; raises ValueError on the first bad one, so a sweep fails before anything is spent.
    Returns the resolved runs."""
    for name, config in runs:
        try:
            engine.build(config)
        except (ValueError, TypeError) as e:
            raise ValueError(f"run {name!r}: {e}") from None
    resolved = resolve(runs, root)
    to_run = set()
    for name, config, config_json in resolved:
        workdir = os.path.join(root, name)
        if finished(workdir, config_json) is not None:
            continue
        to_run.add(os.path.normpath(workdir))
        if config.init_from and os.path.normpath(config.init_from) in to_run:
            continue  # its source trains earlier in this sweep
        try:
            engine.check_post_train_start(config, workdir)
        except ValueError as e:
            raise ValueError(f"run {name!r}: {e}") from None
    return resolved


def sweep(runs: list[tuple[str, engine.Config]], root: str) -> list[dict[str, Any] | None] | None:
    """Trains every run not finished yet into `root/NAME`; returns the result records in order.

    `check`s everything first. Several processes may sweep one preset into one folder at once
    (each a worker): a run whose folder another process holds (`workdir.InUse`) is skipped, and
    so is a post-training run whose source is such a run; their records are None. A run another
    process finished meanwhile is read, not trained again. Returns None when a run was stopped
    by a signal (its checkpoint saved; rerun to resume).
    """
    resolved = check(runs, root)
    done = [finished(os.path.join(root, name), config_json) for name, _, config_json in resolved]
    left = sum(record is None for record in done)
    records, spent = [], []  # each run this process trained: its `whole_run_seconds`
    elsewhere = {}  # folder of a run another process trains -> its name
    for index, ((name, config, config_json), record) in enumerate(zip(resolved, done), 1):
        workdir = os.path.join(root, name)
        head = f"[{index}/{len(runs)}] {name}:"
        if record is None:
            left -= 1  # ETA: the mean of the runs trained so far (whole), times the runs left
            record = finished(workdir, config_json)  # another process may have finished it
        if record is not None:
            logger.info(progress(index, len(runs), name, record, None))
            records.append(record)
            continue
        source = os.path.normpath(config.init_from) if config.init_from else None
        if source in elsewhere:
            logger.info(f"{head} skipped, its source {elsewhere[source]} trains in another "
                        f"process")
            elsewhere[os.path.normpath(workdir)] = elsewhere[source]  # and so do its own
            records.append(None)
            continue
        resumed_at = workdir_lib.newest_checkpoint_step(workdir) or 0
        start = time.perf_counter()
        try:
            record = engine.run(config, workdir, keep_finished=True)
        except engine.InUse as e:
            logger.info(f"{head} skipped, in use by process {e.holder} (another sweep trains "
                        f"it)")
            elsewhere[os.path.normpath(workdir)] = name
            records.append(None)
            continue
        if record is None:
            return None
        seconds = time.perf_counter() - start
        whole = whole_run_seconds(seconds, config.steps, resumed_at)
        if whole is not None:
            spent.append(whole)
        logger.info(progress(index, len(runs), name, record, seconds, left,
                             sum(spent) / len(spent) * left if spent else None))
        records.append(record)
    if elsewhere:
        logger.info(f"{len(elsewhere)} run(s) left to other processes: "
                    f"{', '.join(os.path.basename(path) for path in elsewhere)}; rerun this "
                    f"command once they finish to collect their results")
    return records


def plan(resolved: list[Run], root: str) -> list[str]:
    """`--dry_run`'s lines: each run's state, then the counts. A run is "done (score S)",
    "training in process PID" (another process holds its folder) or "to run"; an unfinished
    one names its last logged step (it resumes from its last checkpoint, at or before it)."""
    lines, counts = [], {"done": 0, "training": 0, "to run": 0}
    for name, config, config_json in resolved:
        workdir = os.path.join(root, name)
        record = finished(workdir, config_json)
        if record is not None:
            state, kind = f"done ({result_text(record)})", "done"
        else:
            pid = workdir_lib.holder(workdir)
            kind = "to run" if pid is None else "training"
            state = kind if pid is None else f"training in process {pid}"
            step = workdir_lib.last_logged_step(workdir)
            if step is not None:
                state += f", step {step} of {config.steps} logged"
        counts[kind] += 1
        lines.append(f"{name}: {config.cell} on {config.task}, {state}")
    lines.append(", ".join(f"{n} {kind}" for kind, n in counts.items()) + f" of {len(resolved)}")
    return lines


# ----------------------------------------------------------------------------- command line

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("config", None, "Preset file PATH.py[:ARG] defining get_config(ARG) and "
                        "get_sweep(ARG).")
    flags.DEFINE_string("runs", None, "Folder the runs go to, one subfolder per run name.")
    flags.DEFINE_string("only", None, "Run only the runs whose name contains this substring.")
    flags.DEFINE_bool("dry_run", False, "Check every run and list them; train nothing.")
    flags.DEFINE_bool("tensorboard", False, "Every run also writes TensorBoard event files "
                      "(`tensorboard --logdir=RUNS` shows the whole sweep).")
    flags.DEFINE_enum("launcher", "local", ["local", "ray"], "local: the runs one after "
                      "another in this process; ray: each run a Ray task (seqbench.ray_launcher).")
    flags.DEFINE_string("ray_address", None, "--launcher=ray: the cluster (auto, HOST:PORT, "
                        "ray://HOST:PORT); default: a local Ray started for the sweep.")
    flags.DEFINE_float("cpus_per_run", 1.0, "--launcher=ray: CPUs each run reserves.",
                       lower_bound=0.0)
    flags.DEFINE_float("gpus_per_run", 0.0, "--launcher=ray: GPUs each run reserves.",
                       lower_bound=0.0)
    flags.DEFINE_integer("retries", 2, "--launcher=ray: retries of a run that fails before it "
                         "is reported failed.", lower_bound=0)


fail = functools.partial(cli.fail, "seqbench.sweep")


def main(argv):
    absl_logging.set_verbosity(absl_logging.WARNING)  # orbax logs every save at INFO
    if len(argv) > 1:
        fail(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.config:
        fail("--config is required (a preset file PATH.py[:ARG])")
    if not FLAGS.runs:
        fail("--runs is required (the folder the run folders go to)")
    ray_flags = [f"--{name}" for name in ("ray_address", "cpus_per_run", "gpus_per_run",
                                          "retries") if FLAGS[name].present]
    if FLAGS.launcher == "local" and ray_flags:
        fail(f"{', '.join(ray_flags)} need --launcher=ray")
    if FLAGS.launcher == "ray":
        try:
            ray_launcher.require()
        except ValueError as e:
            fail(str(e))
    try:
        runs = load(FLAGS.config)
        if FLAGS.only is not None:
            names = [name for name, _ in runs]
            runs = [(name, config) for name, config in runs if FLAGS.only in name]
            if not runs:
                raise ValueError(f"--only={FLAGS.only!r} matches no run; runs: {names}")
        if FLAGS.tensorboard:  # not hashed: finished runs are still recognised
            tensorboard.require()
            runs = [(name, dataclasses.replace(config, tensorboard=True)) for name, config in runs]
        resolved = check(runs, FLAGS.runs)
    except (ValueError, TypeError) as e:
        fail(str(e))
    if FLAGS.dry_run:
        for line in plan(resolved, FLAGS.runs):
            logger.info(line)
        return
    if FLAGS.launcher == "ray":
        try:
            records = ray_launcher.sweep(resolved, FLAGS.runs, address=FLAGS.ray_address,
                                         cpus_per_run=FLAGS.cpus_per_run,
                                         gpus_per_run=FLAGS.gpus_per_run, retries=FLAGS.retries)
        except ValueError as e:
            fail(str(e))
        failed = [name for (name, _, _), record in zip(resolved, records) if record is None]
        if failed:
            logger.error(f"seqbench.sweep: {len(failed)} run(s) failed: {', '.join(failed)}; "
                         f"the others are in {FLAGS.runs}; rerun the command to retry them")
            sys.exit(1)
        return
    try:
        records = sweep(runs, FLAGS.runs)
    except ValueError as e:
        fail(str(e))
    except KeyboardInterrupt:  # between two runs: every finished run is on disk
        logger.warning("seqbench.sweep: stopped between runs; rerun the same command to go on")
        sys.exit(143)
    if records is None:
        sys.exit(143)  # stopped by a signal after saving: 128 + SIGTERM, as train.py


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=cli.flags_parser("seqbench.sweep"))
