"""Benchmark of `kernels.linear_scan`: every implementation x shape x dtype, in one run.

    python -m seqbench.kernels.bench                              # small CPU table (under a minute)
    python -m seqbench.kernels.bench --shapes=8x4096x4096 --dtypes=float32,bfloat16 --device-report

Columns: forward ms and forward+backward ms (median of --repeats timed calls after a warm-up),
achieved GB/s counting the minimum bytes (forward reads a, b and writes h: 3 arrays; backward
reads dh, a, h and writes da, db: 5 more), that bandwidth as a share of this machine's own copy
bandwidth measured in the same run, compile seconds, and the time relative to the fastest
implementation on the same shape and dtype. Only ratios within one run are comparable.
Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from typing import Sequence

import jax
import jax.numpy as jnp
from absl import app, flags

from .linear_recurrence import IMPLS, auto_impl, linear_scan
from .timing import median_ms

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command-line flags (only when run as a program, so modules import cleanly)."""
    flags.DEFINE_list(
        "shapes", ["16x1024x256", "1x16384x64", "64x256x512"], "Shapes BxTxD to time."
    )
    flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Input dtypes: float32, bfloat16.")
    flags.DEFINE_list(
        "impls", ["auto", *IMPLS], "Implementations; 'pallas' is skipped off GPU/TPU."
    )
    flags.DEFINE_integer("repeats", 5, "Timed calls per measurement (median).", lower_bound=1)
    flags.DEFINE_string("json", None, "Also write the rows to this JSON file.")
    flags.DEFINE_boolean(
        "device_report", False, "Print the device, JAX version and the copy-bandwidth probe in detail."
    )


@dataclasses.dataclass
class Row:
    impl: str
    shape: str
    dtype: str
    forward_ms: float
    train_ms: float  # forward + backward
    forward_gbs: float
    train_gbs: float
    forward_copy_share: float
    train_copy_share: float
    compile_s: float
    vs_best: float = float("nan")  # train_ms / fastest train_ms on this shape and dtype


def parse_shape(text: str) -> tuple[int, int, int]:
    """"BxTxD" (e.g. "8x4096x4096") -> (B, T, D) as ints; UsageError otherwise."""
    try:
        batch, steps, features = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise app.UsageError(f"--shapes entries look like 8x4096x4096 (BxTxD); got {text!r}")
    return batch, steps, features




def copy_bandwidth_gbs(repeats: int) -> float:
    """GB/s of y = x * s over a 256 MiB (accelerator) or 64 MiB (CPU) float32 buffer."""
    size = (256 if jax.default_backend() != "cpu" else 64) * 2**20 // 4
    x = jnp.ones((size,), jnp.float32)
    scale = jnp.float32(1.0001)
    fn = jax.jit(lambda x, s: x * s)
    ms = median_ms(fn, x, scale, repeats=max(repeats, 5))
    return 2 * size * 4 / (ms * 1e-3) / 1e9


def measure(impl: str, shape, dtype: str, repeats: int, copy_gbs: float) -> Row:
    """One `Row`: `linear_scan(impl=impl)` timed on random a, b of shape (B, T, D) and `dtype`."""
    key_a, key_b, key_g = jax.random.split(jax.random.key(0), 3)
    a = jax.random.uniform(key_a, shape, jnp.float32, 0.9, 1.0).astype(dtype)
    b = jax.random.normal(key_b, shape, jnp.float32).astype(dtype)
    dh = jax.random.normal(key_g, shape, jnp.float32).astype(dtype)
    scan = functools.partial(linear_scan, impl=impl)

    forward = jax.jit(lambda a, b: scan(a, b)[0])

    @jax.jit
    def train(a, b, dh):
        (h, _), vjp = jax.vjp(scan, a, b)
        return vjp((dh, jnp.zeros_like(h[..., 0, :], jnp.float32)))

    start = time.perf_counter()
    forward.lower(a, b).compile()
    train.lower(a, b, dh).compile()
    compile_s = time.perf_counter() - start
    forward_ms = median_ms(forward, a, b, repeats=repeats)
    train_ms = median_ms(train, a, b, dh, repeats=repeats)
    elements = a.size * jnp.dtype(dtype).itemsize
    forward_gbs = 3 * elements / (forward_ms * 1e-3) / 1e9
    train_gbs = 8 * elements / (train_ms * 1e-3) / 1e9
    return Row(
        impl=impl if impl != "auto" else f"auto={auto_impl(jax.default_backend())}",
        shape="x".join(map(str, shape)),
        dtype=dtype,
        forward_ms=forward_ms,
        train_ms=train_ms,
        forward_gbs=forward_gbs,
        train_gbs=train_gbs,
        forward_copy_share=forward_gbs / copy_gbs,
        train_copy_share=train_gbs / copy_gbs,
        compile_s=compile_s,
    )


def format_table(rows: Sequence[Row]) -> str:
    header = (
        f"{'impl':<22}{'shape BxTxD':<16}{'dtype':<10}{'fwd ms':>9}{'fwd+bwd ms':>12}"
        f"{'fwd GB/s':>10}{'f+b GB/s':>10}{'fwd %copy':>10}{'f+b %copy':>10}"
        f"{'compile s':>10}{'vs best':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.impl:<22}{r.shape:<16}{r.dtype:<10}{r.forward_ms:>9.3f}{r.train_ms:>12.3f}"
            f"{r.forward_gbs:>10.2f}{r.train_gbs:>10.2f}{100 * r.forward_copy_share:>9.1f}%"
            f"{100 * r.train_copy_share:>9.1f}%{r.compile_s:>10.2f}{r.vs_best:>8.2f}x"
        )
    return "\n".join(lines)


def mark_best(rows: list[Row]) -> None:
    """Fills `vs_best`: each row's forward+backward time over the fastest on its shape/dtype."""
    for row in rows:
        peers = [r.train_ms for r in rows if (r.shape, r.dtype) == (row.shape, row.dtype)]
        row.vs_best = row.train_ms / min(peers)


def run(shapes, dtypes, impls, repeats) -> tuple[list[Row], float]:
    """Measures every shape (B, T, D) x dtype x impl; returns (rows, copy bandwidth GB/s)."""
    backend = jax.default_backend()
    unknown = sorted(set(impls) - {"auto", *IMPLS})
    if unknown:
        raise app.UsageError(f"--impls: unknown {unknown}; valid: auto, {', '.join(IMPLS)}")
    for dtype in dtypes:
        if dtype not in ("float32", "bfloat16"):
            raise app.UsageError(f"--dtypes: unknown {dtype!r}; valid: float32, bfloat16")
    if "pallas" in impls and backend not in ("gpu", "tpu"):
        print(f"# skipping impl=pallas: it compiles for GPU/TPU and this backend is {backend}")
        impls = [i for i in impls if i != "pallas"]
    copy_gbs = copy_bandwidth_gbs(repeats)
    rows = []
    for shape in shapes:
        for dtype in dtypes:
            for impl in impls:
                rows.append(measure(impl, shape, dtype, repeats, copy_gbs))
                print(f"# measured {rows[-1].impl} {rows[-1].shape} {dtype}", flush=True)
    mark_best(rows)
    return rows, copy_gbs


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    shapes = [parse_shape(s) for s in FLAGS.shapes]
    device = jax.devices()[0]
    print(f"# seqbench.kernels.bench: jax {jax.__version__}, backend {jax.default_backend()}, "
          f"device {device.device_kind}, {jax.local_device_count()} device(s)")
    rows, copy_gbs = run(shapes, FLAGS.dtypes, FLAGS.impls, FLAGS.repeats)
    print(f"# copy bandwidth (y = x * s, float32): {copy_gbs:.2f} GB/s")
    if FLAGS.device_report:
        print(f"# device: {device}; platform version: {device.client.platform_version}")
    print(format_table(rows))
    auto = [r for r in rows if r.impl.startswith("auto")]
    if auto:
        worst = max(auto, key=lambda r: r.vs_best)
        print(f"# auto vs fastest (fwd+bwd): worst {worst.vs_best:.2f}x at {worst.shape} "
              f"{worst.dtype} (CPU target <= 1.2x; repeat runs vary by a few percent)")
    if FLAGS.json:
        with open(FLAGS.json, "w") as f:
            json.dump(
                {"copy_gbs": copy_gbs, "jax": jax.__version__, "backend": jax.default_backend(),
                 "rows": [dataclasses.asdict(r) for r in rows]},
                f,
                indent=1,
            )


if __name__ == "__main__":
    define_flags()
    app.run(main)
