"""seqbench.models: whole-sequence apply equals token-by-token stepping; sizing helpers."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqbench import cells, models
from tests.cells.test_contract import make_toy_cell

MODEL_CELLS = ["toy", "lstm", "lru", "mamba", "gla", "attention"]


def get_cell(name, **hparams):
    """A built-in cell, or the user-style toy cell (built directly, never registered)."""
    return make_toy_cell(**hparams) if name == "toy" else cells.get(name, **hparams)


def step_loop(model, params, state, inputs):
    """`model.step` on each token in order (a `lax.scan` over time: one step in the program)."""
    state, outputs = jax.lax.scan(lambda s, x_t: model.step(params, s, x_t), state,
                                  jnp.moveaxis(inputs, 1, 0))
    return state, jnp.moveaxis(outputs, 0, 1)


@pytest.mark.parametrize("name", MODEL_CELLS)
def test_apply_equals_step_loop_tokens(name):
    model = models.build(get_cell(name, d_hidden=8), input_dim=7, output_dim=5, depth=2)
    params = model.init(jax.random.key(0))
    tokens = jax.random.randint(jax.random.key(1), (2, 6), 0, 7)
    state0 = model.initial_state(params, (2,))
    _, logits = jax.jit(model.apply)(params, state0, tokens)
    _, stepped = jax.jit(functools.partial(step_loop, model))(params, state0, tokens)
    assert logits.shape == (2, 6, 5)
    # float32: 1e-5 relative to the largest logit, as the cell contract (chunked GLA's division
    # by cumulative decays leaves ~1e-5 absolute rounding on logits of size ~2 after two layers)
    scale = float(jnp.max(jnp.abs(logits)))
    np.testing.assert_allclose(stepped, logits, rtol=1e-5, atol=1e-5 * max(1.0, scale))


def test_real_inputs_and_compile_once():
    model = models.build(make_toy_cell(d_hidden=8), input_dim=3, output_dim=1, real_inputs=True)
    params = model.init(jax.random.key(0))
    traces = []

    @jax.jit
    def run(params, xs):
        traces.append(1)
        return model.apply(params, model.initial_state(params, (4,)), xs)[1]

    for seed in range(2):
        out = run(params, jax.random.normal(jax.random.key(seed), (4, 10, 3)))
    assert out.shape == (4, 10, 1) and len(traces) == 1


def test_param_count_formula():
    width, vocab, out, depth, expand = 8, 7, 5, 3, 2
    model = models.build(make_toy_cell(d_hidden=width), input_dim=vocab, output_dim=out,
                         depth=depth, mlp_expand=expand)
    cell_params = width * width  # toy cell: one (d_in = width) x d_hidden matrix
    per_block = cell_params + 2 * width + 3 * expand * width * width
    expected = vocab * width + depth * per_block + width + width * out + out
    assert models.count_params(model) == expected
    assert models.model_state_size(model) == depth * width


def test_width_for_param_budget_is_the_largest_that_fits():
    kwargs = dict(input_dim=10, output_dim=10, depth=2)
    width = models.width_for_param_budget("elman", 20_000, **kwargs)
    count = lambda w: models.count_params(models.build(cells.get("elman", d_hidden=w), **kwargs))
    assert width % 8 == 0 and count(width) <= 20_000 < count(width + 8)
    state_width = models.width_for_state_size("elman", 100, **kwargs)
    assert state_width == 48  # depth 2 x width floats <= 100, multiple of 8
    with pytest.raises(ValueError, match="parameter budget 10 is below the smallest model"):
        models.width_for_param_budget("elman", 10, **kwargs)


def test_bad_arguments():
    with pytest.raises(ValueError, match="depth must be an int >= 1; got 0"):
        models.build(make_toy_cell(), input_dim=3, output_dim=2, depth=0)


def test_data_bench_measures_a_task():
    from seqbench.bench import data as data_bench

    length, sample_ms, step_ms = data_bench.measure("copy", "elman", 8, 2, 6, 1)
    assert length == 6 and sample_ms > 0 and step_ms > 0


def test_bare_one_hot_model_is_the_cell_and_a_linear_readout():
    """The Chomsky paper's model (no norm, residual or MLP; one-hot inputs): logits equal a
    hand-written one-hot -> LSTM -> linear readout with the same parameters."""
    cell = cells.get("lstm", d_hidden=6)
    model = models.build(cell, input_dim=3, output_dim=2, depth=1, mlp_expand=0, norm=False,
                         residual=False, input_encoding="one_hot")
    params = model.init(jax.random.key(0))
    assert params["embed"] == {} and set(params["blocks"][0]) == {"cell"}
    assert set(params["head"]) == {"w", "b"}
    tokens = jax.random.randint(jax.random.key(1), (2, 5), 0, 3)
    _, logits = model.apply(params, model.initial_state(params, (2,)), tokens)
    block = params["blocks"][0]["cell"]
    _, hidden = cell.scan(block, cell.initial_state(block, (2,)), jax.nn.one_hot(tokens, 3))
    want = hidden @ params["head"]["w"] + params["head"]["b"]
    np.testing.assert_allclose(logits, want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="set residual=False"):
        models.build(cell, input_dim=3, output_dim=2, input_encoding="one_hot")
    # the same body around a cell sized for longer sequences (attention's cache)
    attention = cells.get("attention", d_hidden=8, max_length=16)
    wide = models.build(attention, input_dim=3, output_dim=2).with_cell(attention.sized_for(64))
    assert wide.cell.hparams["max_length"] == 64 and not wide.cell.recurrent
