"""The three ways a cell runs a sequence, for tests that hold each to one reference."""

import jax.numpy as jnp


def scan_step_and_pieces(cell, params, state0, xs, split=3):
    """(final state of the scan, outputs of the scan, of T steps, of two scans in pieces [0,
    split) and [split, T)), each output (..., T, d_out)."""
    final, scanned = cell.scan(params, state0, xs)
    state, stepped = state0, []
    for t in range(xs.shape[-2]):
        state, y = cell.step(params, state, xs[..., t, :])
        stepped.append(y)
    state, first = cell.scan(params, state0, xs[..., :split, :])
    _, second = cell.scan(params, state, xs[..., split:, :])
    return (final, scanned, jnp.stack(stepped, axis=-2),
            jnp.concatenate([first, second], axis=-2))
