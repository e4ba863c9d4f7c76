"""diagonal_rtrl: the forward-in-time gradient against BPTT through lax.scan, on fresh random
columnar recurrences. Tolerance (float32): max |rtrl - bptt| / max(1, max |bptt|) <= 1e-5 for
the gradients, 1e-6 for the states and the loss (both sums run in the same order)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqbench.bench.rtrl import UNIT_AXES, bptt_loss, coefficients, loss_fn
from seqbench.kernels.rtrl import diagonal_rtrl

D, X = 5, 3


def random_problem(steps, seed):
    rng = np.random.default_rng(seed)
    f32 = lambda *shape, scale=1.0: jnp.asarray(scale * rng.normal(size=shape), jnp.float32)
    p = {"nu": f32(D, scale=0.5) - 1.0, "w_gate": f32(X, D), "b_gate": f32(D),
         "w_in": f32(X, D, scale=1 / np.sqrt(X))}
    return p, f32(D), f32(steps, X), f32(steps, D)


def error(x, ref):
    ref = np.asarray(ref, np.float64)
    return float(np.max(np.abs(np.asarray(x, np.float64) - ref)) / max(1.0, np.max(np.abs(ref))))


@pytest.mark.parametrize("steps", [1, 7, 500])
def test_rtrl_gradient_equals_bptt(steps):
    p, h0, xs, ys = random_problem(steps, seed=steps)
    states, total, grads = jax.jit(lambda p: diagonal_rtrl(coefficients, p, UNIT_AXES, h0, xs,
                                                           ys, loss_fn))(p)
    (want_total, want_states), want_grads = jax.jit(jax.value_and_grad(
        lambda p: bptt_loss(p, h0, xs, ys), has_aux=True))(p)
    assert error(states, want_states) <= 1e-6 and error(total, want_total) <= 1e-6
    for name in p:
        assert error(grads[name], want_grads[name]) <= 1e-5, name


def test_a_wrong_unit_axis_gives_a_wrong_gradient():
    """The trace rule needs each entry's unit: with a square input projection, claiming its
    input axis instead of its unit axis must give another (wrong) gradient, so the test above
    can fail."""
    rng = np.random.default_rng(3)
    f32 = lambda *shape: jnp.asarray(rng.normal(size=shape), jnp.float32)
    p = {"nu": f32(D) - 1.0, "w_gate": f32(D, D), "b_gate": f32(D), "w_in": f32(D, D) / D}
    h0, xs, ys = f32(D), f32(20, D), f32(20, D)
    want = jax.grad(lambda p: bptt_loss(p, h0, xs, ys)[0])(p)["w_in"]
    right = diagonal_rtrl(coefficients, p, UNIT_AXES, h0, xs, ys, loss_fn)[2]["w_in"]
    wrong = diagonal_rtrl(coefficients, p, {**UNIT_AXES, "w_in": 0}, h0, xs, ys,
                          loss_fn)[2]["w_in"]
    assert error(right, want) <= 1e-5 and error(wrong, want) > 1e-2
