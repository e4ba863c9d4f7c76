"""Run outputs: config hash, atomic JSON writes, metrics lines, and the result record.

A run's workdir holds `config.json`, `metrics.jsonl` (one JSON object per logged step, appended),
`result.json` (one record, schema `SCHEMA_VERSION`) and `checkpoints/`. JSON files are written to
a temporary file in the same folder and renamed, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import tempfile
from typing import Any

import jax
import jaxlib

SCHEMA_VERSION = 3  # 3: config holds the model-body fields (mlp_expand, norm, residual, ...)


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


def write_json(path: str, obj: Any) -> None:
    """Writes `obj` as indented strict JSON to `path` atomically (temporary file + rename);
    non-finite floats (a diverged seed's loss) are written as null."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(finite_or_null(obj), f, indent=1, sort_keys=True, default=str,
                      allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def append_jsonl(path: str, obj: Any) -> None:
    """Appends one JSON line (big_vision's metrics format) and flushes it to disk."""
    with open(path, "a") as f:
        f.write(json.dumps(obj, sort_keys=True, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def environment() -> dict[str, str]:
    """Versions and device: recorded in every result so numbers stay traceable."""
    from seqbench import __version__

    device = jax.devices()[0]
    return {
        "seqbench": __version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": str(jax.device_count()),
    }
