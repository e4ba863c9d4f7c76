"""The cell contract: a NamedTuple of pure functions built by a factory (optax's pattern).

Shape letters: see `kernels/typing.py`.

    cell = seqbench.cells.get("lru", d_hidden=64)
    params = cell.init(key, d_in)
    state = cell.initial_state(params, batch_shape)     # batch_shape = *B, e.g. (32,)
    state, y_t = cell.step(params, state, x_t)          # x_t: (*B, d_in) -> y_t: (*B, d_out)
    state, ys = cell.scan(params, state, xs)            # xs: (*B, T, d_in) -> ys: (*B, T, d_out)

`step` and `scan` compute the same function: stepping T times equals one scan, and scanning two
halves with the carried state equals scanning the whole (streaming evaluation depends on it).
`make_cell` wraps a family's raw functions with the shape checks every cell shares, so a bad
input fails at trace time with a message that names the expected and received shapes.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from seqbench import kernels

Params = Any  # a pytree of arrays
State = Any  # a pytree of arrays with leading axes *B

FAMILIES = ("classic", "ssm", "gated", "matrix", "attention")


class DiagonalForm(NamedTuple):
    """A cell's recurrence as h_t = a_t ⊙ h_{t-1} + b_t with (*B, D) states (real or complex),
    y_t = readout(h_t), and every parameter of a_t, b_t "columnar": each entry feeds one state
    unit only (what exact RTRL at the parameters' cost needs: `kernels.rtrl`,
    `seqbench.cells.rtrl`).

    `coefficients(params, xs) -> (a, b, aux)`: xs (*B, T, d_in); a, b broadcast to (*B, T, D);
    `readout(params, hs, aux) -> ys` (*B, T, d_out); `unit_axes`: {parameter name: the axis that
    indexes the state unit} for the parameters of a and b (the others only read the state out);
    `scan_impl`: the cell's `kernels.linear_scan` implementation.
    """

    coefficients: Callable[[Params, jax.Array], tuple[jax.Array, jax.Array, Any]]
    readout: Callable[[Params, jax.Array, Any], jax.Array]
    unit_axes: dict[str, int]
    scan_impl: str


class Cell(NamedTuple):
    """A recurrent cell: hyperparameters are closed over; everything else is explicit.

    `init(key, d_in)` -> params; `initial_state(params, batch_shape)` -> a state whose leaves
    lead with the axes *B = batch_shape; `step(params, state, x_t)`: x_t (*B, d_in) -> (state,
    y_t (*B, d_out)); `scan(params, state, xs)`: xs (*B, T, d_in) -> (state, ys (*B, T, d_out)).
    """

    name: str
    family: str  # one of FAMILIES
    d_out: int  # features of y_t
    init: Callable[[jax.Array, int], Params]
    initial_state: Callable[[Params, tuple[int, ...]], State]
    step: Callable[[Params, State, jax.Array], tuple[State, jax.Array]]
    scan: Callable[[Params, State, jax.Array], tuple[State, jax.Array]]
    state_size: Callable[[Params, int], int]  # floats carried per sequence after T steps
    hparams: dict[str, Any]  # exactly the factory's kwargs: get(name, **hparams) rebuilds it
    input_dim: Callable[[Params], int]  # d_in the params were made for
    # Cells whose state grows with the sequence (attention's KV cache) give `sized_for(T)`: the
    # same cell (same parameters) with a state that holds T steps. The engine sizes them for the
    # longest sequence they will see, evaluates them whole instead of streaming, and gives them
    # no initial-state interventions. None: a recurrent cell with a fixed-size state.
    sized_for: Callable[[int], "Cell"] | None = None
    # Cells whose recurrence is diagonal with columnar parameters give its form (exact RTRL
    # trains them: `seqbench.cells.rtrl`); None for the others.
    diagonal: DiagonalForm | None = None
    # Growing-state cells whose cache slots change after they are written (PaTH attention
    # carries every cached key through each new token) set this: the slots < t of the final
    # cache are then not the cache after t tokens, so the evaluator reports no state norms.
    cache_rewritten: bool = False

    @property
    def recurrent(self) -> bool:
        """A fixed-size state carried from step to step: streamable, and interventions apply."""
        return self.sized_for is None


def param_count(params: Params) -> int:
    """Real parameters in a pytree of arrays (a complex entry counts as two); returns an int."""
    return sum(
        x.size * (2 if jnp.iscomplexobj(x) else 1) for x in jax.tree_util.tree_leaves(params)
    )


def state_floats(state: State) -> int:
    """Real numbers in one sequence's state: a pytree whose leading *B axes have size 1 (or
    are absent, batch_shape = ()); a complex entry counts as two. Returns an int."""
    return sum(
        x.size * (2 if jnp.iscomplexobj(x) else 1) for x in jax.tree_util.tree_leaves(state)
    )


def dense(x: jax.Array, w: jax.Array) -> jax.Array:
    """x @ w over the last axis, computed as one 2-D matmul.

    Args:
      x: shape (..., d_in).
      w: shape (d_in, d_out).

    Returns:
      x @ w, shape (..., d_out), in the dtype `x @ w` has.

    The same numbers as `x @ w`; the reason is speed. On a (B, T, d_in) input, `x @ w` is a
    dot_general whose weight gradient contracts two axes (B and T), which XLA:CPU lays out with
    transposed copies of the incoming gradient fused into the elementwise work before it:
    flattening to (B·T, d_in) first made a GeGLU MLP's forward and backward 3.8× faster
    (24.4 -> 6.4 ms at B = 32, T = 257, 64 -> 128 -> 64; BUILD_NOTES "Training throughput")."""
    return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[-1])


def complex64(real: jax.Array, imag: jax.Array) -> jax.Array:
    """real + i·imag as complex64, whatever the real dtype (bf16 parameters under mixed
    precision included): complex recurrences are always computed in single precision.

    `real` and `imag` broadcast against each other; the result has their broadcast shape."""
    return lax.complex(jnp.asarray(real, jnp.float32), jnp.asarray(imag, jnp.float32))


def scan_with_steps(step):
    """`scan` for cells with no parallel form: `lax.scan` over `step` on the time axis -2.

    Args:
      step: `step(params, state, x_t)` with x_t (*B, d_in), returning (state, y_t (*B, d_out)).

    Returns:
      `scan(params, state, xs)` with xs (*B, T, d_in), returning (state, ys (*B, T, d_out)).
    """

    def scan(params, state, xs):
        def body(carry, x_t):
            return step(params, carry, x_t)

        state, ys = lax.scan(body, state, jnp.moveaxis(xs, -2, 0))
        return state, jnp.moveaxis(ys, 0, -2)

    return scan


def make_cell(
    *,
    name: str,
    family: str,
    d_out: int,
    init,
    initial_state,
    step,
    input_dim,
    hparams: dict[str, Any],
    scan=None,
    state_size=None,
    sized_for=None,
    diagonal=None,
    cache_rewritten=False,
) -> Cell:
    """Builds a `Cell` whose step/scan check shapes first; scan defaults to `scan_with_steps`.

    `input_dim(params) -> d_in` reads d_in off a weight (e.g. `lambda p: p["w_x"].shape[0]`).
    `state_size(params, length)` defaults to the floats in `initial_state(params, ())`, right
    for every cell whose state does not grow with time. Every leaf of a state has the leading
    axes *B. `sized_for(T) -> Cell`: for cells whose state grows with time (see `Cell`).
    `diagonal`: a `DiagonalForm`, for cells exact RTRL can train. `cache_rewritten`: see `Cell`.
    The raw `step` and `scan` take and return the shapes of `Cell.step` and `Cell.scan`; the
    checked ones raise ValueError on an x whose last axis is not d_in or whose *B does not
    match the state's.
    """
    if family not in FAMILIES:
        raise ValueError(f"cell {name!r}: family must be one of {FAMILIES}; got {family!r}")
    scan = scan or scan_with_steps(step)
    if state_size is None:
        state_size = lambda params, length=0: state_floats(
            jax.eval_shape(lambda p: initial_state(p, ()), params)
        )

    def checked_init(key, d_in):
        if isinstance(d_in, bool) or not isinstance(d_in, int) or d_in < 1:
            raise ValueError(f"cell {name!r}: d_in must be a positive int; got {d_in!r}")
        return init(key, d_in)

    def checked_step(params, state, x_t):
        _check_input(name, input_dim(params), state, x_t, time_axis=False)
        return step(params, state, x_t)

    def checked_scan(params, state, xs):
        _check_input(name, input_dim(params), state, xs, time_axis=True)
        return scan(params, state, xs)

    return Cell(
        name=name, family=family, d_out=d_out, init=checked_init, initial_state=initial_state,
        step=checked_step, scan=checked_scan, state_size=state_size, hparams=hparams,
        input_dim=input_dim, sized_for=sized_for, diagonal=diagonal,
        cache_rewritten=cache_rewritten,
    )


def _check_input(name, d_in, state, x, *, time_axis: bool):
    what = "xs (*batch, T, d_in)" if time_axis else "x_t (*batch, d_in)"
    min_rank = 2 if time_axis else 1
    if x.ndim < min_rank or x.shape[-1] != d_in:
        raise ValueError(
            f"cell {name!r}: {what} must end in d_in={d_in}; got shape {tuple(x.shape)}"
        )
    batch_shape = tuple(x.shape[: x.ndim - min_rank])
    leaves = jax.tree_util.tree_leaves(state)
    if leaves and tuple(leaves[0].shape[: len(batch_shape)]) != batch_shape:
        raise ValueError(
            f"cell {name!r}: batch shape of {what} is {batch_shape} but the state was made for "
            f"batch shape {tuple(leaves[0].shape[: len(batch_shape)])} (state leaf shape "
            f"{tuple(leaves[0].shape)}); call initial_state(params, {batch_shape})"
        )


def causal_depthwise_conv(w, bias, buffer, x):
    """Depthwise causal conv: w (d_conv, E), buffer (*B, d_conv-1, E) earlier inputs, x (*B, T, E).

    With k = d_conv: out_t = bias + sum_i w[i] * x_{t-k+1+i} (w[k-1] weighs the current input,
    PyTorch's cross-correlation with k-1 zeros of left padding); returns (out (*B, T, E), the
    last k-1 inputs (*B, d_conv-1, E)), so a sequence convolved in pieces equals it whole
    (the Mamba blocks' conv).
    """
    k, steps = w.shape[0], x.shape[-2]
    full = jnp.concatenate([buffer.astype(x.dtype), x], axis=-2)  # (*B, K-1+T, E)
    out = bias + sum(full[..., i : i + steps, :] * w[i] for i in range(k))
    return out, full[..., steps:, :]


def layer_norm(x, eps: float):
    """(x − mean(x)) / sqrt(var(x) + eps) over the last axis, no affine part (a per-head
    GroupNorm when the last axis is a head's features)."""
    centred = x - jnp.mean(x, axis=-1, keepdims=True)
    return centred * lax.rsqrt(jnp.mean(jnp.square(centred), axis=-1, keepdims=True) + eps)


def uniform_init(key, shape, fan_in, dtype=jnp.float32):
    """An array of `shape` and `dtype` drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's
    default for RNN and linear weights."""
    bound = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def lecun_normal(key, shape, fan_in, dtype=jnp.float32):
    """An array of `shape` and `dtype` drawn from N(0, 1/fan_in) (LeCun normal)."""
    return jax.random.normal(key, shape, dtype) / math.sqrt(fan_in)


# ----------------------------------------------------------------------------- hparam checks
# One-line ValueErrors naming the cell, the hyperparameter and what is valid.


def check_int(cell: str, name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        need = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{cell}: {name} must be {need}; got {value!r}")
    return int(value)


def head_dim(cell: str, d_hidden, num_heads) -> int:
    """d_hidden // num_heads, after checking both are positive ints and the heads divide it."""
    check_int(cell, "d_hidden", d_hidden)
    check_int(cell, "num_heads", num_heads)
    if d_hidden % num_heads:
        raise ValueError(f"{cell}: d_hidden={d_hidden} must be a multiple of num_heads="
                         f"{num_heads}")
    return d_hidden // num_heads


def check_bool(cell: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{cell}: {name} must be True or False; got {value!r}")
    return value


def check_choice(cell: str, name: str, value, choices) -> None:
    if value not in tuple(choices):
        raise ValueError(f"{cell}: {name} must be one of {tuple(choices)}; got {value!r}")


def check_scan_impl(cell: str, value, choices) -> None:
    """`check_choice` for `scan_impl`, which names the cells that take a parallel nonlinear
    solver when a linear-recurrence cell is asked for one."""
    from seqbench.cells import classic, parallel_in_time  # only on the error path (cycle)

    if value not in tuple(choices) and value in parallel_in_time.SCAN_IMPLS:
        raise ValueError(
            f"{cell}: scan_impl={value!r} solves a nonlinear recurrence in parallel over time, "
            f"for the classic cells ({', '.join(classic.CELLS)}); {cell}'s recurrence is linear "
            f"and its scan parallel already: scan_impl must be one of {tuple(choices)}")
    check_choice(cell, "scan_impl", value, choices)


SCAN_IMPLS = ("auto",) + tuple(kernels.IMPLS)  # `scan_impl` of cells on kernels.linear_scan
MATRIX_SCAN_IMPLS = ("auto",) + tuple(kernels.MATRIX_IMPLS)  # ... on kernels.matrix_scan
# ... with per-key gates (GLA): the fused "pallas" kernel takes one gate per step only
PER_KEY_MATRIX_SCAN_IMPLS = tuple(i for i in MATRIX_SCAN_IMPLS if i != "pallas")
