"""seqbench.bench.nonlinear: one row per method at a tiny size, full Newton skipped past its cap."""

from seqbench.bench import nonlinear as bench
from seqbench.kernels.nonlinear_scan import METHODS


def test_rows_for_every_method_and_the_jacobian_cap():
    rows = bench.measure(width=4, steps=8, batch=2, repeats=1, max_jacobian=8 * 4 * 4)
    assert [row.split("|")[3].strip() for row in rows] == ["sequential", *METHODS]
    capped = bench.measure(width=4, steps=8, batch=2, repeats=1, max_jacobian=8 * 4 * 4 - 1)
    assert "skipped (T·D² > 127)" in capped[2]
    iterations = int(rows[2].split("|")[6])
    assert 1 <= iterations <= 8  # Newton: at most T iterations
    damped = bench.measure(width=4, steps=8, batch=2, repeats=1, max_jacobian=128, damping=1.0)
    assert [row.split("|")[3].strip() for row in damped[-2:]] == ["elk", "quasi_elk"]
    assert 1 <= int(damped[-1].split("|")[6]) <= 32  # at most 4T iterations
