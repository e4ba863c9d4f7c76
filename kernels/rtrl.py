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

    run = segment_rtrl(coefficients, unit_axes)
    hs, traces = run(params, h0, traces0, xs)          # one segment, batched, real or complex

The same exact gradient for a model trained on K-step segments (the engine's `gradient="rtrl"`,
`seqbench.cells.rtrl`): the states are computed by `kernels.linear_scan`, the gradient inside
the segment by ordinary backpropagation, and the segment's start state h_0, a constant to
autodiff, enters the parameters' gradient through its carried sensitivity e_0 = dh_0/dθ:

    dL/dθ_k  +=  Re(λ_0[u(k)] · e_0[k])        (λ_0: the cotangent autodiff gives h_0)

(Re: JAX's cotangent of a complex state z = x + iy is ∂L/∂x − i ∂L/∂y, so the chain rule
through dz/dθ = e is Re(λ e)). The traces are carried to the next segment in closed form:
with the suffix products w_t = Π_{s>t} a_s and P = Π_{s≥1} a_s (elementwise over units),

    e_T[k] = P[u(k)] e_0[k] + Σ_t w_t[u(k)] ∂f_t[u(k)]/∂θ_k,   f_t = a_t(θ) ⊙ h_{t-1} + b_t(θ),

and, by the columnar rule, the sum is the gradient of the scalar S(θ) = Σ_t Σ_i w_t[i] f_t[i]
(h_{t-1} and w held fixed): one backward pass per sequence over the whole segment (for a
complex state, of Re S and Im S), parallel in time.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

from .linear_recurrence import linear_scan


def _spread(vector: jax.Array, param_ndim: int, axis: int) -> jax.Array:
    """E(v): (*B, D) -> (*B, 1.., D, 1..), D at `axis` of a trailing parameter-shaped block of
    `param_ndim` axes (broadcasts against a parameter, or a batch of traces)."""
    shape = vector.shape[:-1] + (1,) * axis + vector.shape[-1:] + (1,) * (param_ndim - axis - 1)
    return vector.reshape(shape)


def segment_rtrl(
    coefficients: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]],
    unit_axes: dict[str, int],
    impl: str = "auto",
) -> Callable[[dict, jax.Array, dict, jax.Array], tuple[jax.Array, dict]]:
    """`run(params, h0, traces0, xs) -> (hs, traces)`: one segment of h_t = a_t ⊙ h_{t-1} + b_t
    whose gradient w.r.t. `params` counts the start state's carried sensitivity (module
    docstring).

    Args:
      coefficients: `coefficients(params, xs) -> (a, b)` with xs (*B, T, d_in) and a, b
        broadcasting to (*B, T, D), real or complex; every parameter named in `unit_axes` is
        columnar (module docstring) and feeds the recurrence only through them.
      unit_axes: {parameter name: the axis of that array that indexes the state unit}. Named
        parameters get traces; the others (e.g. a read-out's) get none, as they do not move h.
      impl: `kernels.linear_scan`'s implementation.

    `run`'s arguments: params, a dict of arrays; h0 (*B, D); traces0 {name: (*B, *shape of
    params[name])}, the start state's sensitivities (zeros when h0 does not depend on θ); xs
    (*B, T, d_in). Returns hs (*B, T, D), differentiable in params, h0 and xs, and the traces
    after the segment (same structure as traces0; not differentiable).
    """

    def states(params, h0, xs):
        a, b = coefficients(params, xs)
        return linear_scan(jnp.broadcast_to(a, b.shape), b, h0, impl=impl)[0]

    @jax.custom_vjp
    def run_states(params, h0, traces0, xs):
        return states(params, h0, xs)

    def forward(params, h0, traces0, xs):
        return states(params, h0, xs), (params, h0, traces0, xs)

    def backward(saved, hs_bar):
        params, h0, traces0, xs = saved
        _, vjp = jax.vjp(states, params, h0, xs)
        params_bar, h0_bar, xs_bar = vjp(hs_bar)
        batch_axes = tuple(range(h0.ndim - 1))
        params_bar = dict(params_bar)
        for name, axis in unit_axes.items():
            carried = _spread(h0_bar, params[name].ndim, axis) * traces0[name]
            params_bar[name] = params_bar[name] + jnp.sum(jnp.real(carried), batch_axes).astype(
                params_bar[name].dtype)
        return params_bar, h0_bar, jax.tree_util.tree_map(jnp.zeros_like, traces0), xs_bar

    run_states.defvjp(forward, backward)

    def carried_traces(params, h0, traces0, xs, hs):
        a, b = coefficients(params, xs)
        a = jnp.broadcast_to(a, b.shape)
        suffix = jnp.flip(jnp.cumprod(jnp.flip(a, -2), axis=-2), -2)  # Π_{s>=t} a_s
        after = jnp.concatenate([suffix[..., 1:, :], jnp.ones_like(suffix[..., :1, :])], -2)
        before = jnp.concatenate([h0[..., None, :], hs[..., :-1, :]], -2)  # h_{t-1}
        batch = h0.shape[:-1]
        flat = lambda x: x.reshape((-1,) + x.shape[len(batch):])

        def increment(x, h_prev, w):  # one sequence: Σ_t w_t ∂f_t/∂θ over the named params
            def total(named):
                a, b = coefficients({**params, **named}, x)
                return jnp.sum(w * (a * h_prev + b))

            named = {name: params[name] for name in unit_axes}
            if not jnp.iscomplexobj(h0):
                return jax.grad(total)(named)
            real = jax.grad(lambda p: jnp.real(total(p)))(named)
            imag = jax.grad(lambda p: jnp.imag(total(p)))(named)
            return jax.tree_util.tree_map(
                lambda r, i: lax.complex(r.astype(jnp.float32), i.astype(jnp.float32)), real, imag)

        fresh = jax.vmap(increment)(flat(xs), flat(before), flat(after))
        through = suffix[..., 0, :]  # P = Π_t a_t, (*B, D)
        return {name: (_spread(through, params[name].ndim, axis) * traces0[name]
                       + fresh[name].reshape(traces0[name].shape)).astype(traces0[name].dtype)
                for name, axis in unit_axes.items()}

    def run(params, h0, traces0, xs):
        hs = run_states(params, h0, traces0, xs)
        constant = jax.lax.stop_gradient
        traces = carried_traces(constant(params), constant(h0), constant(traces0),
                                constant(xs), constant(hs))
        return hs, traces

    return run


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
    spread = lambda v, arrays: [_spread(v, x.ndim, ax) for x, ax in zip(arrays, axes)]

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
