"""Reading result files for `seqbench.leaderboard`: find them, read only what is safe to read,
and check every record against the one run-record declaration (`seqbench.results.RECORD`).

Every input is a record or a one-line reason to skip it, never an exception: only regular files
up to 64 MiB are read (a FIFO would block, /dev/zero never end), JSON nested too deeply or with
overlong integers is refused, and `check` verifies types and ranges (accuracies in [0, 1],
finite losses, lengths up to `engine.config.MAX_LENGTH`, sane counts, string-valued environment
entries) and that `config_hash` is the hash of the record's own `config`.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from typing import Any

from seqbench import engine, results

SUPPORTED_SCHEMAS = (results.SCHEMA_VERSION,)  # result.json versions this reader understands
NUMBER = (int, float)
# The fields a reader needs, with their JSON types: `results.RECORD`, declared once.
REQUIRED = {name: f.kinds for name, f in results.RECORD.items() if f.required}
PER_SEED = tuple(name for name, f in results.RECORD.items() if f.per_seed and f.required)

def find_results(folders: list[str]) -> list[tuple[str, str]]:
    """(folder given, path) of every `result.json` under `folders`, sorted, each file once."""
    found, seen = [], set()
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            path = os.path.join(root, "result.json")
            if "result.json" in files and os.path.realpath(path) not in seen:
                seen.add(os.path.realpath(path))
                found.append((folder, path))
    return found


MAX_FILE_BYTES = 64 * 2**20  # a result.json larger than this is not read
MAX_COUNT = 2**53  # integers above this are not counts of anything a run has
FRACTIONS = ("in_distribution_accuracy", "score")  # per-seed lists of accuracies in [0, 1]


def _bad_values(name: str, values: list) -> str | None:
    """Why the per-seed list `name` holds an impossible value, or None."""
    def number(v):
        return isinstance(v, NUMBER) and not isinstance(v, bool) and math.isfinite(v)
    if name == "seed_status":
        return None
    if name in FRACTIONS or name.endswith(".accuracy"):
        if not all(v is None or (number(v) and 0 <= v <= 1) for v in values):
            return f"{name} must hold numbers in [0, 1] or null"
    elif name == "effective_length":
        if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)
                                 and 0 <= v <= engine.config.MAX_LENGTH) for v in values):
            return f"{name} must hold lengths or null"
    elif not all(v is None or (number(v) and v >= 0) for v in values):
        return f"{name} must hold finite numbers >= 0 or null"
    return None


def check(record: Any) -> str | None:
    """Why `record` is not a usable result (one line), or None when it is: the fields, their
    types and ranges (accuracies in [0, 1], finite losses, lengths up to
    `engine.config.MAX_LENGTH`, sane counts), a valid configuration whose hash is its
    `config_hash`, and string-valued environment entries."""
    if not isinstance(record, dict):
        return f"expected a JSON object; got {type(record).__name__}"
    version = record.get("schema_version")
    if version not in SUPPORTED_SCHEMAS:
        upgrade = ("; `python -m seqbench.reevaluate --runs=DIR` upgrades it"
                   if version in results.UPGRADABLE_SCHEMAS else "")
        return (f"schema_version {version!r} not supported (expected one of "
                f"{SUPPORTED_SCHEMAS}){upgrade}")
    for name, kind in REQUIRED.items():
        if name not in record:
            return f"missing field {name!r}"
        value = record[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"field {name!r} has type {type(value).__name__}"
    seeds = record["seeds"]
    if not 1 <= seeds <= 10**6:
        return f"seeds must be in [1, 1000000]; got {seeds}"
    for name in ("param_count", "state_size"):
        if not 0 <= record[name] <= MAX_COUNT:
            return f"{name} must be in [0, 2^53]; got a number of {len(str(record[name]))} digits"
    throughput = record["tokens_per_s"]
    if throughput is not None and not (math.isfinite(throughput) and throughput >= 0):
        return f"tokens_per_s must be a finite number >= 0 or null; got {throughput}"
    per_length = record["per_length"]
    lists = {name: record[name] for name in PER_SEED}
    for length, entry in per_length.items():
        if (len(length) > 8 or not re.fullmatch(r"[1-9][0-9]*", length)
                or int(length) > engine.config.MAX_LENGTH or not isinstance(entry, dict)):
            shown = length if len(length) <= 20 else f"{length[:20]}... ({len(length)} chars)"
            return f"per_length entry {shown!r} is not a length with a metrics object"
        for metric in ("accuracy", "loss"):
            lists[f"per_length[{length}].{metric}"] = entry.get(metric)
    for name, values in lists.items():
        if not isinstance(values, list) or len(values) != seeds:
            return f"{name} must be a list of {seeds} values (one per seed)"
        if name != "seed_status" and not all(
                v is None or (isinstance(v, NUMBER) and not isinstance(v, bool)) for v in values):
            return f"{name} must hold numbers or null"
        bad = _bad_values(name, values)
        if bad:
            return bad
    if not all(isinstance(v, str) and v in ("ok", "diverged") for v in record["seed_status"]):
        return f"seed_status values must be 'ok' or 'diverged'; got {record['seed_status']}"
    if record["status"] != ("diverged" if "diverged" in record["seed_status"] else "ok"):
        return f"status {record['status']!r} disagrees with seed_status {record['seed_status']}"
    if not per_length:
        return "per_length is empty"
    if not isinstance(record["config"].get("train_length"), int):
        return "config.train_length is missing"
    if not isinstance(record["environment"].get("seqbench"), str):
        return "environment.seqbench (the code version) is missing"
    for key, value in record["environment"].items():
        if not isinstance(value, str):
            return f"environment.{key} must be a string; got {type(value).__name__}"
    source = record["config"].get("post_trained_from")
    if source is not None and not (isinstance(source, str) and re.fullmatch("[0-9a-f]{12}",
                                                                           source)):
        return "config.post_trained_from must be a config hash (12 hex characters)"
    try:
        recomputed = engine.config_hash(record["config"])
        rates = engine.from_json(record["config"]).learning_rates
    except (ValueError, TypeError, AttributeError, KeyError, RecursionError) as e:
        return f"config is not a valid configuration ({e})"
    if rates and seeds % len(rates):
        return f"seeds {seeds} is not a multiple of the {len(rates)} learning rates of the grid"
    if record["config_hash"] != recomputed:
        return (f"config_hash {record['config_hash']!r} does not match its config (which "
                f"hashes to {recomputed!r})")
    return None


def load(path: str) -> tuple[dict | None, str | None, bytes]:
    """(record, None, raw bytes) for a usable file; (None, reason, raw bytes) otherwise. Only
    regular files up to `MAX_FILE_BYTES` are read (a FIFO would block, /dev/zero never end)."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return None, "not a regular file (a FIFO, device or socket is never read)", b""
        if info.st_size > MAX_FILE_BYTES:
            return None, f"larger than {MAX_FILE_BYTES // 2**20} MiB", b""
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
        record = json.loads(raw)
    except OSError as e:
        return None, f"unreadable ({e.strerror})", b""
    except RecursionError:
        return None, "not valid JSON (nested too deeply)", b""
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an integer too long
        return None, f"not valid JSON ({str(e)[:200]})", b""
    reason = check(record)
    return (None, reason, raw) if reason else (record, None, raw)
