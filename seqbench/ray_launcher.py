"""A preset's runs as Ray tasks: `python -m seqbench.sweep ... --launcher=ray`.

    ray start --head                                   # or a cluster's head node
    python -m seqbench.sweep --config=experiments/configs/chomsky.py:paper --runs=/shared/runs \
        --launcher=ray --ray_address=auto --gpus_per_run=1

Each run still to do becomes one Ray task calling `engine.run` on whichever node has the
resources the run declares (`cpus_per_run`, `gpus_per_run`); Ray decides how many run at once.
The semantics are the local launcher's (`seqbench.sweep.sweep`):
- finished runs are skipped and interrupted ones resume from their checkpoints (the task calls
  the same `engine.run` on the same folder);
- a post-training run is given its source's task as a dependency, so Ray starts it only once
  the source has finished;
- a run that raises (or whose worker dies) is retried up to `retries` times, then reported with
  its error while the other runs go on (a post-training run whose source failed is reported
  as not run);
- results land in `root/NAME/` as locally. On a filesystem every node shares (the setting
  this is for: checkpoints must survive a task moving to another node), the task writes them
  there itself; without one, the task returns its `config.json`, `metrics.jsonl` and
  `result.json` and the driver writes them into its own `root/NAME/` (checkpoints then stay on
  the node that trained, and a retry elsewhere starts afresh).

Ray is optional: `pip install -e '.[ray]'`.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from seqbench import engine
from seqbench.engine.workdir import RUN_FILES

logger = logging.getLogger(__name__)
INSTALL_HINT = "pip install -e '.[ray]'"


def require():
    """The `ray` module, or ValueError (one line, how to install it)."""
    try:
        import ray
    except ImportError:
        raise ValueError(f"--launcher=ray needs the ray package: {INSTALL_HINT}") from None
    return ray


def train(config: engine.Config, workdir: str, *sources) -> dict[str, Any]:
    """The Ray task: `engine.run` (resuming what is there), then the run's files. `sources`:
    the finished source runs' outputs (only there to order the tasks)."""
    del sources
    record = engine.run(config, workdir)
    if record is None:
        raise RuntimeError("stopped by a signal before finishing (its checkpoint is saved)")
    files = {}
    for name in RUN_FILES:
        with open(os.path.join(workdir, name)) as f:
            files[name] = f.read()
    return {"record": record, "files": files}


def _write_missing(workdir: str, files: dict[str, str]) -> None:
    """Writes the run's files into the driver's `workdir` when they are not there (no shared
    filesystem), result.json last so a half-copied folder is never taken for a finished run."""
    if os.path.exists(os.path.join(workdir, "result.json")):
        return
    os.makedirs(workdir, exist_ok=True)
    for name in sorted(files, key=lambda n: n == "result.json"):
        with open(os.path.join(workdir, name), "w") as f:
            f.write(files[name])


def _failed(ray, ref) -> bool:
    """Whether the finished Ray task `ref` raised."""
    try:
        ray.get(ref)
    except Exception:  # noqa: BLE001 - any failure of the task counts
        return True
    return False


def sweep(resolved, root: str, *, address: str | None = None, cpus_per_run: float = 1.0,
          gpus_per_run: float = 0.0, retries: int = 2) -> list[dict | None]:
    """Trains `resolved` (`seqbench.sweep.check`'s runs) as Ray tasks; returns the records in
    order, None for a run that failed after its retries (each reported on the logger).

    `address`: a running cluster ("auto", "HOST:PORT", "ray://HOST:PORT"); None starts a local
    Ray instance for the sweep and shuts it down after. One line per run as the local
    launcher's (`seqbench.sweep.progress`), in the order they finish; the ETA is the wall time
    so far per finished run, times the runs left.
    """
    from seqbench import sweep as sweep_lib

    ray = require()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, configure_logging=False,
                 log_to_driver=False)
    try:
        task = ray.remote(train).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run,
                                         max_retries=retries, retry_exceptions=True)
        records: dict[str, dict | None] = {}
        pending: dict[Any, tuple[int, str, float]] = {}
        refs: dict[str, Any] = {}
        sources: dict[str, str] = {}  # a post-training run -> the run it starts from
        for index, (name, config, config_json) in enumerate(resolved, 1):
            workdir = os.path.abspath(os.path.join(root, name))
            record = sweep_lib.finished(workdir, config_json)
            if record is not None:
                records[name] = record
                logger.info(sweep_lib.progress(index, len(resolved), name, record, None))
                continue
            source = os.path.basename(os.path.normpath(config.init_from or ""))
            after = [refs[source]] if config.init_from and source in refs else []
            if after:
                sources[name] = source
            refs[name] = task.remote(config, workdir, *after)
            pending[refs[name]] = (index, name, time.perf_counter())
        submitted, finished_runs = time.perf_counter(), 0
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            index, name, start = pending.pop(ref)
            try:
                out = ray.get(ref)
            except Exception as e:  # noqa: BLE001 - a run's failure must not stop the sweep
                source = sources.get(name)
                if source is not None and _failed(ray, refs[source]):
                    logger.error(f"[{index}/{len(resolved)}] {name}: not run: the run it "
                                 f"post-trains, {source}, failed")
                else:
                    cause = getattr(e, "cause", None) or e
                    message = f"{type(cause).__name__}: {cause}".splitlines()[0][:500]
                    logger.error(f"[{index}/{len(resolved)}] {name}: failed after "
                                 f"{retries + 1} tries: {message}")
                records[name] = None
                continue
            _write_missing(os.path.join(root, name), out["files"])
            records[name] = out["record"]
            finished_runs += 1
            now = time.perf_counter()
            logger.info(sweep_lib.progress(index, len(resolved), name, out["record"], now - start,
                                           len(pending),
                                           (now - submitted) / finished_runs * len(pending)))
        return [records[name] for name, _, _ in resolved]
    finally:
        if started_here:
            ray.shutdown()
