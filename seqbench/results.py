"""Run outputs: config hash, atomic JSON writes, metrics lines, and the result record.

A run's workdir holds `config.json`, `metrics.jsonl` (one JSON object per logged step, appended),
`result.json` (one record, schema `SCHEMA_VERSION`) and `checkpoints/`. JSON files are written to
a temporary file in the same folder and renamed, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import platform
import subprocess
import tempfile
from typing import Any, NamedTuple

import jax
import jaxlib

SCHEMA_VERSION = 4  # 3: config holds the model-body fields (mlp_expand, norm, residual, ...);
# 4: effective_length measured from chance, 0 for a seed that did not fit (`evaluate.summarise`)
UPGRADABLE_SCHEMAS = (3,)  # older records `python -m seqbench.reevaluate` brings to this one


class Field(NamedTuple):
    """One field of `result.json`: its JSON types, whether it is a per-seed list (one entry per
    member), whether a reader needs it, and what it means (the README's table says the same;
    `tests/test_repository.py` holds the two together)."""

    kinds: tuple[type, ...]
    per_seed: bool
    required: bool
    doc: str


NULL = type(None)
# The run record (`result.json`), declared once: the engine writes exactly these fields
# (`check_fields`), the leaderboard reads them by this declaration.
RECORD = {
    "schema_version": Field((int,), False, False, "the record's schema (`SCHEMA_VERSION`)"),
    "status": Field((str,), False, True, '"ok", or "diverged" when any seed diverged'),
    "seed_status": Field((list,), True, True, '"ok" or "diverged"'),
    "diverged_at_step": Field((list,), True, False, "the step a seed diverged at, or null"),
    "cell": Field((str,), False, True, "the cell's registered name"),
    "family": Field((str,), False, True, "the cell's family"),
    "task": Field((str,), False, True, "the task's registered name"),
    "task_group": Field((str,), False, True, "the task's group"),
    "config": Field((dict,), False, True, "the run's full configuration"),
    "config_hash": Field((str,), False, True, "sha256 (12 hex) of its hashed non-default "
                         "fields"),
    "seeds": Field((int,), False, True, "entries of every per-seed list (seeds x learning "
                   "rates)"),
    "members": Field((list,), True, False, "each entry's seed and learning rate"),
    "steps_run": Field((int,), False, False, "the last step trained"),
    "per_length": Field((dict,), False, True, 'metrics per evaluation length ("<n>")'),
    "in_distribution_accuracy": Field((list,), True, True, "mean accuracy over lengths <= "
                                      "train_length"),
    "in_distribution_note": Field((str,), False, False, "why there is no in-distribution "
                                  "accuracy (no such length evaluated)"),
    "score": Field((list,), True, True, "mean accuracy over lengths > train_length"),
    "score_mean": Field((int, float, NULL), False, False, "the mean score over non-diverged "
                        "seeds"),
    "effective_length": Field((list,), True, True, "longest length keeping 90% of the "
                              "in-distribution gain over chance (0: did not fit)"),
    "param_count": Field((int,), False, True, "parameters of one member's model"),
    "state_size": Field((int,), False, True, "floats of state per sequence"),
    "tokens_per_s": Field((int, float, NULL), False, True, "training throughput, all members"),
    "compile_s": Field((int, float), False, False, "seconds compiling the training steps"),
    "train_s": Field((int, float), False, False, "seconds training (this process)"),
    "eval_s": Field((int, float), False, False, "seconds evaluating"),
    "wall_s": Field((int, float), False, False, "seconds of the whole run (this process)"),
    "environment": Field((dict,), False, True, "code version, machine and library versions"),
    "reevaluated": Field((dict,), False, False, "lengths evaluated after training, from the "
                         "final checkpoint (`python -m seqbench.reevaluate`): which, the seconds "
                         "and the environment"),
}
OPTIONAL_FIELDS = ("in_distribution_note", "reevaluated")  # present only when they say something


def check_fields(record: dict[str, Any]) -> None:
    """Raises AssertionError when `record` has other fields than `RECORD` declares: the engine
    calls it before writing, so the declaration cannot drift from what is written."""
    missing = set(RECORD) - set(OPTIONAL_FIELDS) - set(record)
    extra = set(record) - set(RECORD)
    assert not missing and not extra, f"result record: missing {missing}, undeclared {extra}"


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace: equal configs give equal strings (and hashes)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: dict[str, Any]) -> str:
    """First 12 hex characters of sha256 over the canonical JSON of `config`."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:12]


def finite_or_null(obj: Any) -> Any:
    """`obj` with every NaN/inf float replaced by None, so files are strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    return obj


def write_atomic(path: str, data: bytes) -> None:
    """Writes `data` to `path` atomically: a temporary file `.tmp-*-NAME` in the same folder,
    flushed to disk, mode 0644 (results are meant to be shared; mkstemp creates 0600), then
    renamed over `path`, so a crash never leaves a half-written file (`engine.workdir` removes
    a killed write's temporary on the next start). The one atomic writer of the package."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=f"-{os.path.basename(path)}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path: str, obj: Any) -> None:
    """Writes `obj` as indented strict JSON to `path` atomically (`write_atomic`); non-finite
    floats (a diverged seed's loss) are written as null."""
    text = json.dumps(finite_or_null(obj), indent=1, sort_keys=True, default=str,
                      allow_nan=False)
    write_atomic(path, (text + "\n").encode())


def append_jsonl(path: str, obj: Any) -> None:
    """Appends one JSON line (big_vision's metrics format) and flushes it to disk."""
    with open(path, "a") as f:
        f.write(json.dumps(obj, sort_keys=True, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def source_hash() -> str:
    """12 hex characters of sha256 over the package's Python sources (`seqbench/`, including
    `seqbench/kernels/`, by relative path), so results from different code never look alike."""
    digest = hashlib.sha256()
    for package in ("seqbench",):
        root = os.path.dirname(importlib.import_module(package).__file__)
        for folder, dirs, files in os.walk(root, followlinks=True):
            dirs.sort()
            for name in sorted(f for f in files if f.endswith(".py")):
                path = os.path.join(folder, name)
                digest.update(os.path.relpath(path, os.path.dirname(root)).encode() + b"\0")
                with open(path, "rb") as f:
                    digest.update(f.read() + b"\0")
    return digest.hexdigest()[:12]


SOURCE_HASH = source_hash()  # of the code this process imported, not of later edits


def git_commit() -> str | None:
    """The checkout's commit (with "+dirty" when tracked files changed) when the package runs
    from a git checkout; None otherwise."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.exists(os.path.join(root, ".git")):
        return None
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty.strip() else "")


GIT_COMMIT = git_commit() or ""  # likewise: the checkout as this process found it


def cpu() -> tuple[str, str]:
    """(processor model, vector ISA level) of this machine: XLA:CPU's float rounding differs
    between processor generations, so a result records which one produced it. The ISA level is
    the widest x86 vector extension the processor reports (avx512f, avx2, avx, sse4_2) or the
    machine name elsewhere."""
    model, isa = platform.processor() or platform.machine(), platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return model, isa
    for line in info.splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            isa = next((x for x in ("avx512f", "avx2", "avx", "sse4_2") if x in present), isa)
            break
    return model, isa


def environment() -> dict[str, str]:
    """Versions, code and machine: recorded in every result so numbers stay traceable.

    `seqbench` is the package version plus the hash of its sources ("0.1.0+src.<12 hex>"), so
    the leaderboard never merges results of different code; `git_commit` is the checkout's
    commit when there is one."""
    from seqbench import __version__

    device = jax.devices()[0]
    processor, isa = cpu()
    return {
        "seqbench": f"{__version__}+src.{SOURCE_HASH}",
        "git_commit": GIT_COMMIT,
        "cpu": processor,
        "cpu_isa": isa,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": str(jax.device_count()),
    }
