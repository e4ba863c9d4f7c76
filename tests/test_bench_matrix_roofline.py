"""seqbench.bench.matrix_roofline: XLA's flop count is the chunked form's analytic one, so the
roofline in BUILD_NOTES rests on the right work; the unfused form moves more than a fused
kernel must."""

from seqbench.bench import matrix_roofline as bench


def test_xla_counts_the_analytic_flops_and_more_bytes_than_the_fused_floor():
    forward, both = bench.costs(batch=2, steps=128, key_dim=8, value_dim=16, chunk=16,
                                per_key=False)
    want = bench.analytic_flops(2, 128, 8, 16, 16)
    assert 0.95 * want <= forward["flops"] <= 1.15 * want  # plus the gates' elementwise work
    assert both["flops"] > 2 * forward["flops"]
    assert forward["bytes"] > 2 * bench.minimal_bytes(2, 128, 8, 16, False, backward=False)
    assert forward["ms"] > 0 and both["ms"] > 0  # measured on this backend
