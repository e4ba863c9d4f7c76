"""`cells.from_flax`: flax's own cells through the cell contract, against ours, and trained by
the engine into a result record."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqbench import cells, engine

D_IN, WIDTH, STEPS = 3, 8, 9


def lstm_params_from_flax(flax_params):
    """flax's OptimizedLSTMCell parameters in seqbench's LSTM layout: both order the gates i, f,
    g, o; flax keeps one kernel per gate (inputs: no bias; hidden: with bias)."""
    gates = ("i", "f", "g", "o")
    return {"w_x": jnp.concatenate([flax_params[f"i{g}"]["kernel"] for g in gates], axis=1),
            "w_h": jnp.concatenate([flax_params[f"h{g}"]["kernel"] for g in gates], axis=1),
            "b": jnp.concatenate([flax_params[f"h{g}"]["bias"] for g in gates])}


@pytest.fixture
def local_registry(monkeypatch):
    monkeypatch.setattr(cells._REGISTRY, "_factories", dict(cells._REGISTRY._factories))


@pytest.mark.parametrize("module", [nn.OptimizedLSTMCell(WIDTH), nn.LSTMCell(WIDTH),
                                    nn.GRUCell(WIDTH), nn.SimpleCell(WIDTH)],
                         ids=["OptimizedLSTMCell", "LSTMCell", "GRUCell", "SimpleCell"])
def test_flax_cells_keep_the_contract(module):
    """step = scan = scan in two pieces, shapes and metadata, as every built-in cell."""
    cell = cells.from_flax(module)
    params = cell.init(jax.random.key(0), D_IN)
    assert cell.input_dim(params) == D_IN and cell.d_out == WIDTH
    xs = jax.random.normal(jax.random.key(1), (2, STEPS, D_IN))
    state0 = cell.initial_state(params, (2,))
    _, ys = jax.jit(cell.scan)(params, state0, xs)
    state, stepped = state0, []
    for t in range(STEPS):
        state, y = cell.step(params, state, xs[:, t])
        stepped.append(y)
    np.testing.assert_allclose(jnp.stack(stepped, 1), ys, rtol=1e-5, atol=1e-5)
    middle, first = cell.scan(params, state0, xs[:, :4])
    _, second = cell.scan(params, middle, xs[:, 4:])
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), ys, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="must end in d_in=3"):
        cell.scan(params, state0, jnp.ones((2, STEPS, D_IN + 1)))


def test_flax_s_lstm_computes_seqbench_s_lstm_with_the_same_weights():
    flax_cell = cells.from_flax(nn.OptimizedLSTMCell(WIDTH))
    ours = cells.get("lstm", d_hidden=WIDTH)
    flax_params = flax_cell.init(jax.random.key(0), D_IN)
    xs = jax.random.normal(jax.random.key(1), (2, STEPS, D_IN))
    _, want = flax_cell.scan(flax_params, flax_cell.initial_state(flax_params, (2,)), xs)
    params = lstm_params_from_flax(flax_params)
    _, got = ours.scan(params, ours.initial_state(params, (2,)), xs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_registered_flax_cell_trains_and_is_scored(local_registry, tmp_path):
    cells.register("flax_gru", lambda *, d_hidden=64: cells.from_flax(
        nn.GRUCell(d_hidden), name="flax_gru", hparams={"d_hidden": d_hidden}))
    record = engine.run(engine.Config(cell="flax_gru", task="parity_check", width=8, depth=1,
                                      train_length=4, steps=3, batch_size=4, seeds=2,
                                      eval_lengths=(4, 8), eval_size=8, log_every=3),
                        str(tmp_path))
    assert record["cell"] == "flax_gru" and record["family"] == "classic"
    assert all(0 <= a <= 1 for a in record["per_length"]["8"]["accuracy"])
