"""A user's own cell, registered on import: the README's example of `--user_module`.

    python -m seqbench.train --user_module=experiments/my_cell.py --cell=my_cell \
        --task=parity_check --width=16 --depth=1 --steps=100 --workdir=runs/my_cell
    python -m seqbench.leaderboard --runs=runs --out=runs/leaderboard

A leaky tanh unit, h_t = leak * h_{t-1} + (1 - leak) * tanh(W x_t + U h_{t-1}): `make_cell`
gives it the shape checks every cell has, and `scan` defaults to `lax.scan` over `step`.
"""

import jax
import jax.numpy as jnp

from seqbench import cells


def make_my_cell(*, d_hidden: int = 64, leak: float = 0.5):
    def init(key, d_in):
        k_x, k_h = jax.random.split(key)
        return {"w": jax.random.normal(k_x, (d_in, d_hidden)) / jnp.sqrt(d_in),
                "u": jax.random.normal(k_h, (d_hidden, d_hidden)) / jnp.sqrt(d_hidden)}

    def initial_state(params, batch_shape):
        return jnp.zeros((*batch_shape, d_hidden))

    def step(params, h, x_t):
        h = leak * h + (1 - leak) * jnp.tanh(x_t @ params["w"] + h @ params["u"])
        return h, h

    return cells.make_cell(name="my_cell", family="classic", d_out=d_hidden, init=init,
                           initial_state=initial_state, step=step,
                           input_dim=lambda p: p["w"].shape[0],
                           hparams={"d_hidden": d_hidden, "leak": leak})


cells.register("my_cell", make_my_cell, overwrite=True)
