"""Flax users bring their recurrent cells: `from_flax` wraps a `flax.linen` cell as a Cell.

    import flax.linen as nn
    from seqbench import cells

    cell = cells.from_flax(nn.OptimizedLSTMCell(features=64))
    cells.register("flax_lstm", lambda *, d_hidden=64: cells.from_flax(
        nn.OptimizedLSTMCell(features=d_hidden), name="flax_lstm", hparams={"d_hidden": d_hidden}))

Any `flax.linen.RNNCellBase` works, i.e. a module with `initialize_carry(rng, input_shape)` and
`__call__(carry, x) -> (carry, y)` (`LSTMCell`, `OptimizedLSTMCell`, `GRUCell`, `SimpleCell`,
`MGUCell` or a researcher's own): `init` is the module's `init` on a one-row input, `step` its
`apply`, `scan` `lax.scan` over `step`, and `initial_state` its `initialize_carry` (so a carry
initialiser that draws random numbers gets a fixed key: the contract's initial state is a
function of the parameters only). The wrapped cell passes the same contract tests as the
built-in ones and trains, evaluates and reaches the leaderboard like them
(`tests/cells/test_flax_adapter.py`). Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from seqbench.cells.base import Cell, make_cell

CARRY_KEY_SEED = 0  # the key initialize_carry gets (flax's carries are zeros by default)


def kernel_input_dim(params: Any, d_out: int) -> int:
    """d_in of a cell whose 2-D kernels are (d_in, d_out) or (d_out, d_out): the one first
    dimension that is not d_out, else d_out (flax's LSTM, GRU and simple cells)."""
    firsts = {leaf.shape[0] for leaf in jax.tree_util.tree_leaves(params) if leaf.ndim == 2}
    others = firsts - {d_out}
    if len(others) > 1:
        raise ValueError(f"from_flax: cannot tell d_in from the kernel shapes {sorted(firsts)}; "
                         f"pass input_dim=")
    return others.pop() if others else d_out


def from_flax(module, *, name: str | None = None, family: str = "classic",
              hparams: dict[str, Any] | None = None,
              input_dim: Callable[[Any], int] | None = None) -> Cell:
    """A seqbench Cell computing the flax.linen recurrent cell `module`.

    Args:
      module: a flax.linen cell with `features` (its output width), `initialize_carry(rng,
        input_shape)` and `__call__(carry, x) -> (carry, y)`.
      name: the cell's name (default: "flax_" + the module's class name, lower case).
      family: one of `cells.base.FAMILIES` (default "classic": a nonlinear recurrence).
      hparams: what the registered factory was called with (default {"features": ...}).
      input_dim: params -> d_in (default `kernel_input_dim`).
    Returns:
      A Cell whose state is the module's carry, (*B, ...) per leaf, and whose parameters are
      the module's `params` collection.
    """
    d_out = int(module.features)
    name = name or "flax_" + type(module).__name__.lower()
    input_dim = input_dim or (lambda params: kernel_input_dim(params, d_out))

    def init(key, d_in):
        x = jnp.zeros((1, d_in))
        carry = module.initialize_carry(jax.random.key(CARRY_KEY_SEED), x.shape)
        return module.init(key, carry, x)["params"]

    def initial_state(params, batch_shape):
        shape = (*batch_shape, input_dim(params))
        return module.initialize_carry(jax.random.key(CARRY_KEY_SEED), shape)

    def step(params, carry, x_t):
        return module.apply({"params": params}, carry, x_t)

    return make_cell(name=name, family=family, d_out=d_out, init=init,
                     initial_state=initial_state, step=step, input_dim=input_dim,
                     hparams=dict(hparams) if hparams is not None else {"features": d_out})
