"""The cell contract on every registered cell, a user-registered toy cell included.

On fresh random inputs and parameters (fp32):
- stepping `step` T times equals `scan` (rtol/atol 1e-5 after scaling by max(1, |ys|));
- scanning two halves with the carried state equals scanning the whole;
- gradients are finite and match between the two modes (1e-4);
- the jitted scan compiles once per input shape;
- bad shapes and unknown names/hparams give errors that name what is valid.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqbench import cells
from seqbench.cells import Cell, make_cell, param_count
from seqbench.cells.base import FAMILIES
from seqbench.registry import Registry

D_IN, WIDTH, STEPS = 3, 8, 9


def make_toy_cell(*, d_hidden: int = 8, leak: float = 0.5) -> Cell:
    """A user's cell: h_t = leak * h_{t-1} + tanh(W x_t), registered like any built-in one."""
    if not 0.0 <= leak <= 1.0:
        raise ValueError(f"toy: leak must be in [0, 1]; got {leak}")

    def init(key, d_in):
        return {"w": jax.random.normal(key, (d_in, d_hidden)) / np.sqrt(d_in)}

    def initial_state(params, batch_shape):
        return jnp.zeros((*batch_shape, d_hidden))

    def step(params, h, x_t):
        h = leak * h + jnp.tanh(x_t @ params["w"])
        return h, h

    return make_cell(name="toy", family="classic", d_out=d_hidden, init=init,
                     initial_state=initial_state, step=step,
                     input_dim=lambda p: p["w"].shape[0],
                     hparams={"d_hidden": d_hidden, "leak": leak})


# The user's cell goes into a registry of this module's own (the built-ins plus "toy"), so that
# no other test sees it: the contract runs on `REGISTRY`, built the way `cells.register` builds.
REGISTRY = Registry("cell")
REGISTRY.register_all({**{name: cells._REGISTRY._lookup(name) for name in cells.names()},
                       "toy": make_toy_cell})
NAMES = REGISTRY.names()


def scaled_error(x, ref):
    x, ref = np.asarray(x, np.complex128), np.asarray(ref, np.complex128)
    return np.max(np.abs(x - ref), initial=0.0) / max(1.0, np.max(np.abs(ref), initial=0.0))


@functools.cache
def setup(name):
    cell = REGISTRY.get(name, d_hidden=WIDTH)
    params = cell.init(jax.random.key(0), D_IN)
    xs = jax.random.normal(jax.random.key(1), (2, STEPS, D_IN))
    return cell, params, xs


def step_loop(cell, params, state, xs):
    """`cell.step` applied T times in order (a `lax.scan` over time: one step in the program)."""
    state, ys = jax.lax.scan(lambda h, x_t: cell.step(params, h, x_t), state,
                             jnp.moveaxis(xs, -2, 0))
    return state, jnp.moveaxis(ys, 0, -2)


def test_toy_and_builtins_registered():
    assert "toy" in NAMES
    assert NAMES == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_metadata(name):
    cell, params, _ = setup(name)
    assert cell.name == name and cell.family in FAMILIES and cell.d_out == WIDTH
    assert cell.input_dim(params) == D_IN
    assert param_count(params) > 0 and cell.state_size(params, STEPS) > 0
    rebuilt = REGISTRY.get(name, **cell.hparams)
    assert rebuilt.hparams == cell.hparams and set(cell.hparams) <= set(REGISTRY.hparams(name))


@pytest.mark.parametrize("name", NAMES)
def test_step_equals_scan_and_split_equals_whole(name):
    cell, params, xs = setup(name)
    state0 = cell.initial_state(params, (2,))
    scan = jax.jit(cell.scan)
    state_scan, ys_scan = scan(params, state0, xs)
    state_step, ys_step = jax.jit(functools.partial(step_loop, cell))(params, state0, xs)
    assert ys_scan.shape == (2, STEPS, WIDTH)
    assert np.all(np.isfinite(np.asarray(ys_scan)))
    assert scaled_error(ys_step, ys_scan) < 1e-5
    for a, b in zip(jax.tree_util.tree_leaves(state_step), jax.tree_util.tree_leaves(state_scan)):
        assert scaled_error(a, b) < 1e-5

    cut = 4
    mid_state, ys_first = scan(params, state0, xs[:, :cut])
    end_state, ys_second = jax.jit(cell.scan)(params, mid_state, xs[:, cut:])
    assert scaled_error(jnp.concatenate([ys_first, ys_second], 1), ys_scan) < 1e-5
    for a, b in zip(jax.tree_util.tree_leaves(end_state), jax.tree_util.tree_leaves(state_scan)):
        assert scaled_error(a, b) < 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_gradients_finite_and_equal_between_modes(name):
    cell, params, xs = setup(name)
    weights = jax.random.normal(jax.random.key(2), (2, STEPS, WIDTH))

    def loss(params, xs, use_scan):
        state0 = cell.initial_state(params, (2,))
        _, ys = cell.scan(params, state0, xs) if use_scan else step_loop(cell, params, state0, xs)
        return jnp.sum(ys * weights)

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)
    g_scan, g_step = grad(params, xs, True), grad(params, xs, False)
    leaves_scan, leaves_step = jax.tree_util.tree_leaves(g_scan), jax.tree_util.tree_leaves(g_step)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in leaves_scan)
    for a, b in zip(leaves_scan, leaves_step):
        assert scaled_error(a, b) < 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_compiles_once_per_input_shape(name):
    cell, params, xs = setup(name)
    traces = []

    @jax.jit
    def run(params, xs):
        traces.append(1)
        return cell.scan(params, cell.initial_state(params, (2,)), xs)

    jax.block_until_ready(run(params, xs))
    jax.block_until_ready(run(params, xs + 1.0))
    assert len(traces) == 1


@pytest.mark.parametrize("name", NAMES)
def test_bad_shapes_name_expected_and_received(name):
    cell, params, xs = setup(name)
    state = cell.initial_state(params, (2,))
    with pytest.raises(ValueError, match=rf"must end in d_in={D_IN}; got shape \(2, {STEPS}, 5\)"):
        cell.scan(params, state, jnp.ones((2, STEPS, 5)))
    with pytest.raises(ValueError, match=rf"must end in d_in={D_IN}; got shape \({D_IN},\)"):
        cell.scan(params, state, jnp.ones((D_IN,)))
    with pytest.raises(ValueError, match=r"batch shape of .* is \(3,\) but the state was made for"):
        cell.step(params, state, jnp.ones((3, D_IN)))
    with pytest.raises(ValueError, match="d_in must be a positive int"):
        cell.init(jax.random.key(0), 0)


def test_unknown_cell_and_hparam_list_valid_choices():
    with pytest.raises(ValueError, match="unknown cell 'lsmt'; valid cells: .*toy"):
        REGISTRY.get("lsmt")
    with pytest.raises(ValueError, match="unknown cell 'lsmt'; valid cells: attention, "):
        cells.get("lsmt")
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['width'\] for cell 'toy'; "
                                         r"valid: d_hidden=8, leak=0.5"):
        REGISTRY.get("toy", width=4)


def test_cells_table_lists_every_cell():
    from seqbench.cells.__main__ import table

    text = table(width=8, length=16)
    for name in cells.names():  # the registered cells (toy lives in this module's registry)
        assert f"\n{name} " in text
