"""Exact real-time recurrent learning (RTRL) for diagonal linear recurrences.

    states, loss, grads = diagonal_rtrl(coefficients, params, unit_axes, h0, xs, targets,
                                        loss_fn)

The recurrence h_t = a_t ⊙ h_{t-1} + b_t with (a_t, b_t) = coefficients(θ, x_t), h of shape
(D,). BPTT stores all T states and runs backwards; RTRL carries the sensitivities e_t = dh_t/dθ
forward with the state and accumulates the gradient of L = Σ_t ℓ(h_t, y_t) online, so memory
does not grow with T and a stream can be learned without truncating the gradient (Williams &
Zipser 1989; for element-wise recurrences, exact at the cost of the parameters: Irie et al. 2023,
"Exploring the Promise and Limits of Real-Time Recurrent Learning"; Javed et al. 2023,
"Scalable Real-Time Recurrent Learning Using Columnar-Constructive Networks"; Zucchet et al.
2023, "Online learning of long-range dependencies").

Columnar parameters. Every parameter entry θ_k must feed one state unit u(k) only (the LRU's
ν_i, an input projection's column i, a gate's bias b_i): then dh_t[i]/dθ_k = 0 unless i = u(k),
and the sensitivities have exactly the parameters' shape. `unit_axes` names, for each parameter
array, the axis that indexes the unit. The trace of entry k obeys

    e_t[k] = a_t[u(k)] e_{t-1}[k] + h_{t-1}[u(k)] ∂a_t[u(k)]/∂θ_k + ∂b_t[u(k)]/∂θ_k,

whose last two terms are one VJP of `coefficients` at the cotangents (h_{t-1}, 1) (exact because
of the columnar structure), and the gradient is Σ_t ∂ℓ_t/∂h_t[u(k)] e_t[k]. Cost per step: one
VJP of `coefficients` and O(parameters) element-wise work. A parameter shared by several units
(e.g. a projection whose output all units read) breaks the rule: its true trace is (D x its
size) and this function would return a wrong gradient for it, so `unit_axes` must not claim it.

Shapes (one sequence; vmap for a batch): h0 (D,), xs and targets pytrees with a leading time
axis T, states (T, D). Real-valued states only. Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax


def _spread(vector: jax.Array, like: jax.Array, axis: int) -> jax.Array:
    """E(v): the (D,) vector laid along `axis` of an array shaped like `like` (broadcast)."""
    shape = [1] * like.ndim
    shape[axis] = vector.shape[0]
    return vector.reshape(shape)


def diagonal_rtrl(
    coefficients: Callable[[Any, Any], tuple[jax.Array, jax.Array]],
    params: Any,
    unit_axes: Any,
    h0: jax.Array,
    xs: Any,
    targets: Any,
    loss_fn: Callable[[jax.Array, Any], jax.Array],
) -> tuple[jax.Array, jax.Array, Any]:
    """States, total loss and its exact gradient w.r.t. `params`, all computed forward in time.

    Args:
      coefficients: `coefficients(params, x_t) -> (a_t, b_t)`, each (D,); every parameter
        columnar (module docstring).
      params: a pytree of real arrays.
      unit_axes: a pytree of ints with `params`' structure: the axis of each array that indexes
        the state unit its entries feed.
      h0: the state before the first step, (D,) (treated as a constant).
      xs, targets: pytrees with a leading time axis T.
      loss_fn: `loss_fn(h_t, y_t) -> scalar`, the loss at one step.

    Returns:
      (states (T, D), Σ_t ℓ(h_t, y_t), d/dparams of that sum), the gradient equal to BPTT's.
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)
    axes = treedef.flatten_up_to(unit_axes)
    spread = lambda v, arrays: [_spread(v, x, ax) for x, ax in zip(arrays, axes)]

    def body(carry, inputs):
        h, traces, grads, total = carry
        x_t, y_t = inputs
        (a, b), vjp = jax.vjp(lambda p: coefficients(p, x_t), params)
        fresh = treedef.flatten_up_to(vjp((h, jnp.ones_like(b)))[0])
        traces = [d * e + f for d, e, f in zip(spread(a, leaves), traces, fresh)]
        h = a * h + b
        loss, d_h = jax.value_and_grad(loss_fn)(h, y_t)
        grads = [g + w * e for g, w, e in zip(grads, spread(d_h, leaves), traces)]
        return (h, traces, grads, total + loss), h

    zeros = [jnp.zeros_like(x) for x in leaves]
    (_, _, grads, total), states = lax.scan(body, (h0, zeros, zeros, jnp.zeros(())),
                                            (xs, targets))
    return states, total, jax.tree_util.tree_unflatten(treedef, grads)
