"""cells.rtrl: a cell trained on K-step segments with carried traces gets the gradient of the
whole sequence, on fresh random parameters and inputs, for every cell with a diagonal form.

Reference: BPTT through the plain cell's `scan` over the whole sequence (float32; the cells
compute in float32/complex64). Tolerance: max |rtrl - bptt| / max(1, max |bptt|) <= 1e-4 per
parameter (the traces sum the same terms in another order)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqbench import cells
from seqbench.cells import rtrl

D_IN, BATCH, STEPS = 3, 2, 15
CELLS = [("rg_lru", {"negative_eigenvalues": True}), ("mingru", {}), ("minlstm", {}),
         ("lru", {"d_state": 6}), ("lru", {"d_state": 6, "theta_max": 0.0})]


def error(x, ref):
    ref = np.asarray(ref, np.complex128)
    return float(np.max(np.abs(np.asarray(x, np.complex128) - ref))
                 / max(1.0, np.max(np.abs(ref))))


def problem(name, hparams, seed):
    cell = cells.get(name, d_hidden=4, **hparams)
    keys = jax.random.split(jax.random.key(seed), 4)
    params = cell.init(keys[0], D_IN)
    xs = jax.random.normal(keys[1], (BATCH, STEPS, D_IN))
    weights = jax.random.normal(keys[2], (BATCH, STEPS, cell.d_out))
    h0 = jax.tree_util.tree_map(  # a nonzero start state, a constant to the parameters
        lambda z: (jax.random.normal(keys[3], z.shape) * 0.5).astype(z.dtype),
        cell.initial_state(params, (BATCH,)))
    return cell, params, xs, weights, h0


def segmented_value_and_grad(cell, params, xs, weights, h0, segment, carry_traces=True):
    """Σ weights · ys and its gradient, summed over `segment`-step pieces whose start state is
    a constant; `carry_traces=False` restarts the traces at zero (truncated BPTT)."""
    traced = rtrl.with_rtrl(cell)
    pieces = lambda x: jnp.moveaxis(x.reshape(BATCH, STEPS // segment, segment, -1), 1, 0)

    def body(carry, piece):
        state, total, grads = carry
        x, w = piece
        if not carry_traces:
            state = rtrl.start(cell, params, state.h)

        def loss(p):
            end, ys = traced.scan(p, jax.lax.stop_gradient(state), x)
            return jnp.sum(w * ys), end

        (value, state), g = jax.value_and_grad(loss, has_aux=True)(params)
        return (state, total + value, jax.tree_util.tree_map(jnp.add, grads, g)), None

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    (final, total, grads), _ = jax.lax.scan(
        body, (rtrl.start(cell, params, h0), jnp.zeros(()), zeros),
        (pieces(xs), pieces(weights)))
    return total, grads, final


@pytest.mark.parametrize("name,hparams", CELLS)
def test_segmented_rtrl_gradient_equals_full_bptt(name, hparams):
    cell, params, xs, weights, h0 = problem(name, hparams, seed=len(name) + len(hparams))
    full = lambda p: jnp.sum(weights * cell.scan(p, h0, xs)[1])
    want, want_grads = jax.jit(jax.value_and_grad(full))(params)
    plain_final = cell.scan(params, h0, xs)[0]
    for segment in (1, 5):
        total, grads, final = jax.jit(lambda p: segmented_value_and_grad(
            cell, p, xs, weights, h0, segment))(params)
        assert error(total, want) <= 1e-5
        assert error(final.h, plain_final) <= 1e-5
        for key in params:
            assert error(grads[key], want_grads[key]) <= 1e-4, (segment, key)


def test_without_the_traces_the_gradient_is_truncated():
    """The same segments with the traces restarted at zero (what truncated BPTT computes) give
    another gradient, so the test above can fail."""
    cell, params, xs, weights, h0 = problem("mingru", {}, seed=1)
    want_grads = jax.grad(lambda p: jnp.sum(weights * cell.scan(p, h0, xs)[1]))(params)
    _, grads, _ = jax.jit(lambda p: segmented_value_and_grad(
        cell, p, xs, weights, h0, 5, carry_traces=False))(params)
    assert max(error(grads[k], want_grads[k]) for k in params) > 1e-2


def test_step_equals_scan_and_carries_the_same_traces():
    cell, params, xs, _, h0 = problem("lru", {"d_state": 6}, seed=4)
    traced = rtrl.with_rtrl(cell)
    start = rtrl.start(cell, params, h0)
    final, ys = jax.jit(traced.scan)(params, start, xs)
    state, stepped = jax.jit(lambda s: jax.lax.scan(
        lambda s, x: traced.step(params, s, x), s, jnp.moveaxis(xs, 1, 0)))(start)
    assert error(jnp.moveaxis(stepped, 0, 1), ys) <= 1e-5
    for key in final.traces:
        assert error(state.traces[key], final.traces[key]) <= 1e-4, key
    assert error(ys, cell.scan(params, h0, xs)[1]) <= 1e-6  # the same function as the cell


def test_cells_without_a_diagonal_form_are_refused_by_name():
    assert rtrl.supported_cells() == ["lru", "mingru", "minlstm", "rg_lru"]
    for name in ("lstm", "mamba", "gateloop", "s4d", "attention"):
        with pytest.raises(ValueError, match="lru, mingru, minlstm, rg_lru"):
            rtrl.with_rtrl(cells.get(name, d_hidden=8))
