"""kernels.bench runs end to end on a tiny shape and rejects bad flags with a clear message."""

import jax
import pytest
from absl import app

from seqbench.kernels import bench


def test_run_produces_one_row_per_impl_with_ratios():
    """One row per impl and dtype; "pallas" only where it compiles (a GPU or TPU)."""
    rows, copy_gbs = bench.run([(2, 16, 4)], ["float32", "bfloat16"], ["auto", "sequential", "pallas"], 1)
    compiled = ("auto", "sequential") + (("pallas",) if jax.default_backend() in ("gpu", "tpu")
                                         else ())
    assert copy_gbs > 0
    assert {(r.impl.split("=")[0], r.dtype) for r in rows} == {
        (i, d) for i in compiled for d in ("float32", "bfloat16")}
    assert min(r.vs_best for r in rows) == 1.0
    assert all(r.forward_ms > 0 and r.train_ms > 0 for r in rows)
    assert "vs best" in bench.format_table(rows)


def test_bad_flags():
    with pytest.raises(app.UsageError, match="BxTxD"):
        bench.parse_shape("8x4096")
    with pytest.raises(app.UsageError, match="unknown \\['fast'\\]; valid: auto, sequential"):
        bench.run([(1, 4, 2)], ["float32"], ["fast"], 1)
    with pytest.raises(app.UsageError, match="valid: float32, bfloat16"):
        bench.run([(1, 4, 2)], ["int8"], ["auto"], 1)
