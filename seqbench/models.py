"""Sequence models: a stack of one cell type, as pure functions.

    inputs -> embed (tokens) or project (real-valued) -> depth x block -> RMSNorm -> linear head

    block(x) = x + cell(RMSNorm(x));  x = x + MLP(RMSNorm(x))
    MLP(x)   = W_down (GeLU(W_gate x) ⊙ (W_up x))         (gated MLP, expansion `mlp_expand`)

The residual pre-norm layout is the one Griffin, Mamba and the LRU paper use around their
recurrent layers, so that cells are compared inside the same body. Each part can be switched
off to build a paper's exact model: `norm=False` drops every RMSNorm, `residual=False` every
skip connection, `mlp_expand=0` the MLPs, and `input_encoding="one_hot"` feeds one-hot tokens
(or the raw features of real-valued inputs) straight to the first cell. The Chomsky-hierarchy
models of Delétang et al. 2023 are `depth=1, mlp_expand=0, norm=False, residual=False,
input_encoding="one_hot"`: one-hot tokens -> RNN/LSTM -> linear readout. The cell is any registered
`seqbench.cells.Cell` with d_out = width; its state is carried per layer, so the whole model can
be stepped token by token or scanned over a sequence, and the two agree.

`width_for_param_budget` and `width_for_state_size` pick the width that gives a requested
parameter count (LRA's equal-parameters rule) or state size (Zoology's equal-state rule).

Shape letters: see `kernels/typing.py` (D = width, O = output_dim).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from seqbench import cells as cells_lib
from seqbench.cells.base import Cell, dense, lecun_normal, param_count

RMS_EPS = 1e-6
INPUT_ENCODINGS = ("embedding", "one_hot")


class Model(NamedTuple):
    """A sequence model. inputs: (B, T) int32 tokens or (B, T, input_dim) float32.

    `apply(params, state, inputs)` -> (state, outputs (B, T, O)); `step(params, state, x_t)`
    with x_t (B,) int32 or (B, input_dim) float32 -> (state, outputs (B, O)); the state is a
    list with one cell state per layer, from `initial_state(params, (B,))`.
    """

    cell: Cell
    depth: int
    width: int
    output_dim: int
    init: Callable[[jax.Array], Any]
    initial_state: Callable[[Any, tuple[int, ...]], list]
    apply: Callable[[Any, list, jax.Array], tuple[list, jax.Array]]  # whole sequence (scan)
    step: Callable[[Any, list, jax.Array], tuple[list, jax.Array]]  # one time step
    with_cell: Callable[[Cell], "Model"]  # the same body around another cell of the same width


def rms_norm(x, scale):
    """x / sqrt(mean(x²) + eps) * scale (Zhang & Sennrich 2019), over the last axis.

    Args:
      x: shape (..., D), any float dtype (normalised in float32).
      scale: shape (D,).

    Returns:
      The normalised x, shape (..., D), in x's dtype.
    """
    x32 = x.astype(jnp.float32)
    normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + RMS_EPS)
    return (normed * scale).astype(x.dtype)


def _mlp(params, x):
    hidden = jax.nn.gelu(dense(x, params["w_gate"])) * dense(x, params["w_up"])
    return dense(hidden, params["w_down"])


def build(
    cell: Cell,
    *,
    input_dim: int,
    output_dim: int,
    depth: int = 2,
    real_inputs: bool = False,
    mlp_expand: int = 2,
    norm: bool = True,
    residual: bool = True,
    input_encoding: str = "embedding",
) -> Model:
    """Stacks `depth` blocks of `cell` (width = cell.d_out) between an input and output layer.

    Args:
      cell: a Cell, e.g. `seqbench.cells.get("lru", d_hidden=64)`; its d_out is the width.
      input_dim: the token vocabulary (token inputs) or the input features (real_inputs=True).
      output_dim: logits per step (output_vocab x num_heads for multi-head tasks).
      depth: number of residual blocks.
      real_inputs: inputs are (B, T, input_dim) floats, projected; otherwise embedded tokens.
      mlp_expand: hidden width of the gated MLP, as a multiple of the width (0: no MLP).
      norm: RMSNorm before every cell, MLP and the head.
      residual: skip connections around every cell and MLP.
      input_encoding: "embedding" (a learned table; real inputs: a learned projection) or
        "one_hot" (one-hot tokens; real inputs: the raw features) fed to the first cell, whose
        input is then input_dim wide; needs residual=False (no skip across the widths).

    Parameters: input (input_dim·D [+ D bias when real], none for one-hot) + depth·(cell + 2D
    norms + 3·e·D² MLP) + D final norm + D·O + O head (D = width, O = output_dim,
    e = mlp_expand).

    Returns:
      A `Model` whose `apply` maps inputs (B, T) int32 tokens (or (B, T, input_dim) float32 with
      `real_inputs`) to outputs (B, T, O), O = output_dim, and whose `step` does the
      same for one step, (B,) or (B, input_dim) -> (B, O).
    """
    for name, value, low in (("depth", depth, 1), ("input_dim", input_dim, 1),
                             ("output_dim", output_dim, 1), ("mlp_expand", mlp_expand, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"models.build: {name} must be an int >= {low}; got {value!r}")
    if input_encoding not in INPUT_ENCODINGS:
        raise ValueError(f"models.build: input_encoding must be one of {INPUT_ENCODINGS}; "
                         f"got {input_encoding!r}")
    one_hot = input_encoding == "one_hot"
    if one_hot and residual:
        raise ValueError("models.build: input_encoding='one_hot' feeds the first cell "
                         f"{input_dim}-wide inputs, so there is no residual around it: set "
                         "residual=False")
    width = cell.d_out
    hidden = mlp_expand * width
    settings = dict(input_dim=input_dim, output_dim=output_dim, depth=depth,
                    real_inputs=real_inputs, mlp_expand=mlp_expand, norm=norm, residual=residual,
                    input_encoding=input_encoding)

    def init(key):
        keys = jax.random.split(key, depth + 2)
        if one_hot:
            embed = {}
        elif real_inputs:
            embed = {"w": lecun_normal(keys[0], (input_dim, width), input_dim),
                     "b": jnp.zeros((width,))}
        else:
            embed = {"table": jax.random.normal(keys[0], (input_dim, width))}
        blocks = []
        for layer, block_key in enumerate(keys[1:-1]):
            cell_key, up, gate, down = jax.random.split(block_key, 4)
            d_in = input_dim if one_hot and layer == 0 else width
            block = {"cell": cell.init(cell_key, d_in)}
            if norm:
                block["norm_cell"] = jnp.ones((d_in,))
            if mlp_expand:
                if norm:
                    block["norm_mlp"] = jnp.ones((width,))
                block["mlp"] = {
                    "w_up": lecun_normal(up, (width, hidden), width),
                    "w_gate": lecun_normal(gate, (width, hidden), width),
                    # scaled down by sqrt(2 depth) so the residual stream keeps its scale
                    "w_down": lecun_normal(down, (hidden, width), hidden) / math.sqrt(2 * depth),
                }
            blocks.append(block)
        head = {"w": lecun_normal(keys[-1], (width, output_dim), width),
                "b": jnp.zeros((output_dim,))}
        if norm:
            head["norm"] = jnp.ones((width,))
        return {"embed": embed, "blocks": blocks, "head": head}

    def initial_state(params, batch_shape):
        return [cell.initial_state(block["cell"], tuple(batch_shape)) for block in params["blocks"]]

    def embed(params, inputs):
        if one_hot and real_inputs:
            return inputs.astype(jnp.float32)
        if one_hot:
            return jax.nn.one_hot(inputs, input_dim, dtype=jnp.float32)
        if real_inputs:
            return dense(inputs.astype(jnp.float32), params["embed"]["w"]) + params["embed"]["b"]
        return jnp.take(params["embed"]["table"], inputs, axis=0)

    def normed(x, scale_params, name):
        return rms_norm(x, scale_params[name]) if norm else x

    def run(params, state, inputs, cell_fn):
        x = embed(params, inputs)
        new_state = []
        for block, block_state in zip(params["blocks"], state):
            block_state, y = cell_fn(block["cell"], block_state, normed(x, block, "norm_cell"))
            x = x + y if residual else y
            if mlp_expand:
                y = _mlp(block["mlp"], normed(x, block, "norm_mlp"))
                x = x + y if residual else y
            new_state.append(block_state)
        head = params["head"]
        return new_state, dense(normed(x, head, "norm"), head["w"]) + head["b"]

    def apply(params, state, inputs):
        return run(params, state, inputs, cell.scan)

    def step(params, state, x_t):
        return run(params, state, x_t, cell.step)

    return Model(cell=cell, depth=depth, width=width, output_dim=output_dim, init=init,
                 initial_state=initial_state, apply=apply, step=step,
                 with_cell=lambda other: build(other, **settings))


def count_params(model: Model) -> int:
    """Parameters of `model` (complex entries count twice), without allocating them."""
    return param_count(jax.eval_shape(model.init, jax.random.key(0)))


def model_state_size(model: Model, length: int = 0) -> int:
    """Floats carried per sequence by all layers after `length` steps."""
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    return sum(model.cell.state_size(block["cell"], length) for block in shapes["blocks"])


def _largest_width(measure: Callable[[int], int], target: int, what: str, multiple: int) -> int:
    """Largest width (a multiple of `multiple`) with measure(width) <= target, by doubling and bisection."""
    if measure(multiple) > target:
        raise ValueError(
            f"{what} {target} is below the smallest model's ({measure(multiple)} at width {multiple})"
        )
    low, high = 1, 2
    while measure(high * multiple) <= target:
        low, high = high, high * 2
        if high > 2**16:
            return low * multiple
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if measure(mid * multiple) <= target else (low, mid)
    return low * multiple


def width_for_param_budget(cell_name: str, budget: int, *, multiple: int = 8,
                           cell_hparams: dict | None = None, **build_kwargs) -> int:
    """The largest width whose model has at most `budget` parameters (equal-parameter comparisons)."""
    def measure(width):
        cell = cells_lib.get(cell_name, **{**(cell_hparams or {}), "d_hidden": width})
        return count_params(build(cell, **build_kwargs))

    return _largest_width(measure, budget, "parameter budget", multiple)


def width_for_state_size(cell_name: str, state_floats: int, *, length: int = 0, multiple: int = 8,
                         cell_hparams: dict | None = None, **build_kwargs) -> int:
    """The largest width whose model carries at most `state_floats` floats (equal-state comparisons)."""
    def measure(width):
        cell = cells_lib.get(cell_name, **{**(cell_hparams or {}), "d_hidden": width})
        return model_state_size(build(cell, **build_kwargs), length)

    return _largest_width(measure, state_floats, "state size", multiple)
