"""seqbench.bench.rtrl: its two gradients agree, and its memory columns show what RTRL is for."""

import jax
import numpy as np
import pytest

from seqbench.bench import rtrl as bench


def test_rtrl_memory_is_flat_in_t_where_bptt_grows():
    short, long = (bench.measure(width=4, steps=steps, repeats=1) for steps in (64, 1024))
    column = lambda row, i: float(row.split("|")[i].replace(",", ""))
    assert column(long, 3) > 8 * column(short, 3)  # BPTT: states kept for the backward pass
    assert column(long, 5) == column(short, 5)  # RTRL: parameter-shaped traces only


def test_the_two_gradients_it_times_are_equal():
    args = bench.problem(width=4, steps=50)
    bptt, rtrl = jax.jit(bench.bptt_grad)(*args), jax.jit(bench.rtrl_grad)(*args)
    for name in bptt:
        scale = max(1.0, float(np.max(np.abs(bptt[name]))))
        assert float(np.max(np.abs(rtrl[name] - bptt[name]))) / scale <= 1e-5


@pytest.mark.slow
def test_training_step_memory_grows_with_t_for_bptt_only():
    """`--train_step`: BPTT's compiled temporaries grow with T; RTRL's over segments stay at the
    segment's (up to the batch's own (B, T) arrays)."""
    column = lambda row, i: float(row.split("|")[i].replace(",", ""))
    short, long = (bench.train_step_row(width=4, steps=steps, segment=16, repeats=1, timed=False,
                                        runs=(("bptt", False), ("rtrl", True)))
                   for steps in (64, 1024))
    growth = lambda i: column(long, i) - column(short, i)
    assert column(long, 3) > 8 * column(short, 3)
    assert growth(5) < 0.05 * growth(3)  # RTRL; seen: 2.4% of BPTT's growth (0.26 vs 11 MiB)
