"""Exact real-time recurrent learning for cells with a diagonal, columnar recurrence.

    traced = with_rtrl(cell)                   # the same function; the state grows the traces
    state = traced.initial_state(params, (B,)) # RtrlState(h, traces), traces zero
    state, ys = traced.scan(params, state, xs) # carries e_t = dh_t/dθ forward

For a cell whose recurrence is h_t = a_t ⊙ h_{t-1} + b_t with every parameter of a_t, b_t
feeding one state unit (`base.DiagonalForm`: lru, rg_lru, mingru, minlstm), the state carries
the sensitivities e_t = dh_t/dθ of those parameters, at the parameters' own cost per sequence
(Irie et al. 2023, "Exploring the Promise and Limits of Real-Time Recurrent Learning"; Zucchet
et al. 2023, "Online learning of long-range dependencies"). A model trained on K-step segments
whose start states are constants to autodiff (the engine's `tbptt=K`) then still gets the exact
gradient of the whole sequence for these parameters: each segment's backward pass adds the
start state's cotangent times its carried trace (`kernels.rtrl.segment_rtrl`), so nothing is
truncated and nothing before the segment is stored.

What is exact in a model (the engine's `gradient`): a parameter's gradient across segment
boundaries flows only through the traces, i.e. through the carried state of the layer it
belongs to. So for one recurrent layer with nothing trainable below it (one-hot inputs, no norm
before the cell: `gradient="rtrl"`), the gradient equals full BPTT's; with more layers, or an
embedding or norm below the cell (`gradient="rtrl_layerwise"`), each layer's own recurrence
parameters still see their whole past through their own state, while the influence of a lower
layer's parameters on a higher layer's carried state is cut at the boundaries, as truncated
BPTT cuts it (Zucchet et al. 2023's per-layer approximation, at the segment boundaries only).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from seqbench import cells as cells_lib
from seqbench.cells.base import Cell, make_cell
from seqbench.kernels.rtrl import segment_rtrl


class RtrlState(NamedTuple):
    h: Any  # the cell's state, (*B, D)
    traces: dict  # {parameter name: (*B, *parameter shape)}: dh/dθ, in h's dtype


def supported_cells() -> list[str]:
    """Registered cells whose default instance has a `DiagonalForm` (exact RTRL trains them)."""
    return [name for name in cells_lib.names() if cells_lib.get(name).diagonal is not None]


def with_rtrl(cell: Cell) -> Cell:
    """`cell` computing the same outputs, whose state is `RtrlState(h, traces)`.

    The traced cell has the same parameters, `d_out` and hyperparameters; `scan` is the
    segment of `kernels.rtrl.segment_rtrl` (states by `kernels.linear_scan`, gradients exact
    through the carried traces) and `step` the same with T = 1. Raises ValueError for a cell
    without a `DiagonalForm`, naming those that have one.
    """
    form = cell.diagonal
    if form is None:
        raise ValueError(
            f"exact RTRL needs a diagonal recurrence with columnar parameters; {cell.name!r} has "
            f"none. Cells that have one: {', '.join(supported_cells())}")
    run = segment_rtrl(lambda params, xs: form.coefficients(params, xs)[:2], form.unit_axes,
                       form.scan_impl)

    def initial_state(params, batch_shape):
        return start(cell, params, cell.initial_state(params, batch_shape))

    def scan(params, state, xs):
        hs, traces = run(params, state.h, state.traces, xs)
        aux = form.coefficients(params, xs)[2]
        return RtrlState(hs[..., -1, :], traces), form.readout(params, hs, aux)

    def step(params, state, x_t):
        state, ys = scan(params, state, x_t[..., None, :])
        return state, ys[..., 0, :]

    return make_cell(
        name=cell.name, family=cell.family, d_out=cell.d_out, init=cell.init,
        initial_state=initial_state, step=step, scan=scan, input_dim=cell.input_dim,
        hparams=cell.hparams, state_size=cell.state_size, diagonal=form,
    )


def start(cell: Cell, params, h) -> RtrlState:
    """The traced state of `cell` (one with a `DiagonalForm`) that starts from h (*B, D), a
    constant to the parameters: zero traces, shaped by the cell's `params`."""
    return RtrlState(h, {name: jnp.zeros(h.shape[:-1] + params[name].shape, h.dtype)
                         for name in cell.diagonal.unit_axes})
