"""A run's folder: one run, one process, nothing half-written.

    workdir/config.json      the run's configuration (`post_train.config_json`)
    workdir/metrics.jsonl    one line per logged step (appended)
    workdir/result.json      the run record (written last, atomically)
    workdir/checkpoints/     orbax checkpoints (`seqbench.checkpoint`)
    workdir/.lock            held (flock) by the process training in the folder; holds its PID

`check(config_json, workdir)` refuses a folder that holds a run of another configuration
(a hashed field, `seed` or `seeds` differs): resuming it would label one run's numbers with
another's settings. Logging and checkpoint knobs (the fields declared `hashed=False` other than
the seeds and `init_from`) may change on resume. `clear` empties a folder for `--overwrite`.
`lock` takes an exclusive `fcntl.flock` on `.lock`: the OS releases it when the process dies,
so a SIGKILL never leaves a stale lock, and a second process is refused at once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import json
import os
import shutil
import time
from typing import Any, Iterator

from seqbench import results
from seqbench.engine import config as config_lib

LOCK = ".lock"
RUN_FILES = ("config.json", "metrics.jsonl", "result.json")


def identity(config_json: dict[str, Any]) -> dict[str, Any]:
    """What makes two runs the same models: the hashed fields, the base seed and the seeds."""
    config = config_lib.from_json(config_json)
    return {**config_lib.hashed_json(config_json), "seed": config.seed, "seeds": config.seeds}


def differences(stored_json: dict[str, Any], config_json: dict[str, Any]) -> str:
    """Where two configurations' `identity` differs, as "field=THERE there, HERE here" pairs
    joined by "; " ("" when they are the same models)."""
    stored, wanted = identity(stored_json), identity(config_json)
    differ = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
    return "; ".join(f"{k}={stored.get(k)!r} there, {wanted.get(k)!r} here" for k in differ)


def check(config_json: dict[str, Any], workdir: str,
          advice: str = "use another --workdir, or --overwrite to delete that run and start "
                        "afresh") -> None:
    """Raises ValueError when `workdir` is not a folder this run can start or resume in: a
    file, or a folder whose `config.json` is another configuration's (the differing fields
    named) or unreadable; the message ends with `advice`."""
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ValueError(f"workdir {workdir!r} is a file, not a folder")
    checkpoints = os.path.join(workdir, "checkpoints")
    if os.path.exists(checkpoints) and not os.path.isdir(checkpoints):
        raise ValueError(f"{checkpoints!r} is a file, not the run's checkpoint folder; move it "
                         f"away")
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return
    try:
        with open(path) as f:
            shown = differences(json.load(f), config_json)
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"workdir {workdir!r} holds an unreadable config.json ({e}); "
                         f"{advice}") from None
    if shown:
        raise ValueError(f"workdir {workdir!r} holds a run of another configuration ({shown}); "
                         f"{advice}")


def finished_record(config_json: dict[str, Any], workdir: str) -> dict[str, Any] | None:
    """The folder's `result.json` when it is a finished run of `config_json` (same `identity`),
    else None (none, unreadable, or another configuration's)."""
    try:
        with open(os.path.join(workdir, "result.json")) as f:
            record = json.load(f)
        same = identity(record["config"]) == identity(config_json)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return record if same else None


def clear(workdir: str) -> None:
    """Deletes a previous run from `workdir` (its files and checkpoints), keeping the folder."""
    for name in RUN_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(workdir, name))
    shutil.rmtree(os.path.join(workdir, "checkpoints"), ignore_errors=True)


class InUse(ValueError):
    """The folder's lock is held by another process (`holder`: its PID as it wrote it)."""

    def __init__(self, workdir: str, holder: str):
        super().__init__(f"workdir {workdir!r} is in use by process {holder} (a run trains "
                         f"there now); wait for it or use another --workdir")
        self.holder = holder


@contextlib.contextmanager
def lock(workdir: str) -> Iterator[None]:
    """Holds the folder's lock for the block; `InUse` (a ValueError) naming the holder's PID
    when another process holds it."""
    try:
        os.makedirs(workdir, exist_ok=True)
    except OSError as e:
        raise ValueError(f"workdir {workdir!r} cannot be created ({e.strerror})") from None
    try:
        fd = os.open(os.path.join(workdir, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:  # checked before any training, not at the first checkpoint
        raise ValueError(f"workdir {workdir!r} is not writable ({e.strerror})") from None
    try:
        if not _take(fd, fcntl.LOCK_EX, patience_s=0.5):  # a `holder` look lasts microseconds
            raise InUse(workdir, os.read(fd, 32).decode(errors="replace").strip() or "unknown")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def _take(fd: int, kind: int, patience_s: float = 0.0) -> bool:
    """Takes the flock `kind` on `fd` without blocking, retrying for `patience_s` (every 10
    ms); False when another process holds a conflicting one. Raises ValueError (one line) when
    the file system cannot lock at all."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise ValueError(f"cannot lock a run folder's {LOCK} here ({e.strerror}); "
                                 f"use a local folder for --workdir/--runs") from None
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def holder(workdir: str) -> str | None:
    """The PID (as it wrote it) of the process that holds the folder's lock, or None when no
    process does (or there is no folder). Looks by taking a shared lock and releasing it at
    once; `lock` waits out such a look rather than call the folder in use."""
    try:
        fd = os.open(os.path.join(workdir, LOCK), os.O_RDONLY)
    except OSError:
        return None
    try:
        if _take(fd, fcntl.LOCK_SH):
            return None
        return os.read(fd, 32).decode(errors="replace").strip() or "unknown"
    finally:
        os.close(fd)  # releases the shared lock when it was taken


def logged_steps(path: str) -> Iterator[tuple[int, str]]:
    """(step, line) of each whole line of the metrics file at `path` (none when it is missing),
    skipping a torn one (written partly when the process died)."""
    with contextlib.suppress(FileNotFoundError), open(path) as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("step"), int):
                yield entry["step"], line


def last_logged_step(workdir: str) -> int | None:
    """The step of the folder's last whole metrics line, or None when it has none."""
    steps = [step for step, _ in logged_steps(os.path.join(workdir, "metrics.jsonl"))]
    return steps[-1] if steps else None


def newest_checkpoint_step(workdir: str) -> int | None:
    """The step of the folder's newest checkpoint (`checkpoints/STEP`), or None when it has
    none: where a rerun resumes (or before it, when that checkpoint cannot be restored). Read
    from the folder names, not `checkpoint.Checkpointer.steps`, which opens orbax and creates the
    folder."""
    folder = os.path.join(workdir, "checkpoints")
    steps = [int(name) for name in os.listdir(folder) if name.isdigit()] \
        if os.path.isdir(folder) else []
    return max(steps, default=None)


def remove_stale_temporaries(workdir: str) -> None:
    """Deletes the `.tmp-*` files `results.write_atomic` left when killed mid-write."""
    for path in glob.glob(os.path.join(workdir, ".tmp-*")):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def drop_metrics_after(path: str, step: int) -> None:
    """Keeps the metrics lines up to `step` (later ones are recomputed after resuming) and
    drops a torn last line (a crash mid-write)."""
    if not os.path.exists(path):
        return
    kept = [line if line.endswith("\n") else line + "\n"
            for logged, line in logged_steps(path) if logged <= step]
    results.write_atomic(path, "".join(kept).encode())
