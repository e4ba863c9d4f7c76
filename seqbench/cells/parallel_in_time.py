"""`scan_impl` for the classic nonlinear cells: the sequential loop, or a parallel-in-time solve.

    cell = seqbench.cells.get("lstm", d_hidden=64, scan_impl="deer")          # Newton (DEER)
    cell = seqbench.cells.get("gru", d_hidden=64, scan_impl="quasi_deer", damping=1.0)  # quasi-ELK

A classic cell computes h_t = f(θ, h_{t-1}, x_t) with a nonlinear f, so its `scan` is a
`lax.scan` over time (T sequential steps). The other implementations solve for all T states at
once with `kernels.nonlinear_scan` (its docstring has the math and the papers):

    scan_impl      method               per iteration                 memory per sequence
    "sequential"   lax.scan (default)   -                             O(T·D)
    "jacobi"       fixed point          one parallel f                O(T·D)
    "deer"         Newton               full Jacobians, an affine     O(T·D²)
                                        scan of D x D matrices        (O(T·D³) work)
    "quasi_deer"   quasi-Newton         diagonal Jacobians (D jvps),  O(T·D)
                                        a diagonal linear scan

`damping = λ > 0` turns "deer" into ELK and "quasi_deer" into quasi-ELK (Levenberg-Marquardt
steps by a parallel Kalman filter): slower to converge, but finite where undamped Newton
overflows. Each solve stops when the residual max_t |f(θ, H_{t-1}, x_t) − H_t| is at most `tol`
or after `max_iters` iterations (None: T, which makes every undamped method exact). The state
NamedTuple's fields (e.g. the LSTM's c and h) are solved as one vector of F·D numbers per
sequence, each sequence of the batch on its own (vmap). Gradients come from the implicit
function theorem at the solution: BPTT's gradient at those states, without backpropagating
through the iterations.

Where it pays: on an accelerator, for long T and small D, where the sequential loop's T
dependent steps leave the device idle. On this CPU every parallel method is slower than the
loop (BUILD_NOTES, "Parallel-in-time nonlinear RNNs").

Diagnostics. Every solve reports its iteration count and final residual. Inside
`with collecting() as found:` each parallel scan traced appends its `Diagnostics` (the worst
over the batch) to `found`; `summarize(found)` reduces them to {"solver_iterations",
"solver_residual"} (the worst over layers). The training step does this, so metrics.jsonl and
the progress line report them. Outside `collecting`, nothing is recorded.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import jax
import jax.numpy as jnp

from seqbench import kernels
from seqbench.cells import base

SCAN_IMPLS = ("sequential", "jacobi", "deer", "quasi_deer")
_METHOD = {"jacobi": "jacobi", "deer": "newton", "quasi_deer": "quasi_newton"}
_DAMPED = ("deer", "quasi_deer")

_collectors: list[list] = []  # the open `collecting()` blocks, innermost last


@contextlib.contextmanager
def collecting():
    """Collects the `Diagnostics` of every parallel scan traced inside the block (a list)."""
    found: list = []
    _collectors.append(found)
    try:
        yield found
    finally:
        _collectors.pop()


def summarize(found: list) -> dict[str, jax.Array]:
    """The worst solve of `found`: {"solver_iterations": int32, "solver_residual": float32}
    (a NaN residual: some state was not finite); {} when nothing was collected."""
    if not found:
        return {}
    return {"solver_iterations": jnp.max(jnp.stack([d.iterations for d in found])),
            "solver_residual": jnp.max(jnp.stack([d.residual for d in found]))}


def check_hparams(cell: str, scan_impl, damping, tol, max_iters) -> None:
    """One-line ValueErrors for the solver hyperparameters of a classic cell."""
    base.check_choice(cell, "scan_impl", scan_impl, SCAN_IMPLS)
    for name, value in (("damping", damping), ("tol", tol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{cell}: {name} must be a number >= 0; got {value!r}")
    if damping and scan_impl not in _DAMPED:
        raise ValueError(f"{cell}: damping applies to scan_impl {_DAMPED} (ELK / quasi-ELK); "
                         f"got scan_impl={scan_impl!r}")
    if max_iters is not None:
        base.check_int(cell, "max_iters", max_iters)


def solver_scan(state_type, project, recur, *, scan_impl, damping, tol, max_iters) -> Callable:
    """`scan(params, state, xs)` of a classic cell by `kernels.nonlinear_scan`.

    Args:
      state_type: the cell's state NamedTuple; every field (*B, D) float32.
      project: `project(params, xs) -> u`, the input-only part (any leading axes).
      recur: `recur(params, state, u_t) -> (state, y_t)`.
      scan_impl, damping, tol, max_iters: as in the module docstring (checked).

    Returns:
      scan: xs (*B, T, d_in) -> (state (*B, D) per field, ys (*B, T, d_out)), the same function
      as `lax.scan` of `recur(project(x_t))` up to the solver's tolerance.
    """
    method = _METHOD[scan_impl]

    def pack(state):  # fields (..., D) -> (..., F·D)
        return jnp.concatenate(list(state), axis=-1)

    def unpack(vector):
        return state_type(*jnp.split(vector, len(state_type._fields), axis=-1))

    def transition(params, h, u_t):
        return pack(recur(params, unpack(h), u_t)[0])

    def one_sequence(params, h0, u):  # h0 (F·D,), u leaves (T, ...)
        states, diagnostics = kernels.nonlinear_scan(
            transition, params, h0, u, method=method, max_iters=max_iters, tol=tol,
            damping=damping)
        previous = jnp.concatenate([h0[None], states[:-1]], axis=0)
        ys = jax.vmap(lambda h, u_t: recur(params, unpack(h), u_t)[1])(previous, u)
        return states[-1], ys, diagnostics

    def scan(params, state, xs: jax.Array):
        batch_shape = xs.shape[:-2]
        flat = lambda x: x.reshape(-1, *x.shape[len(batch_shape):])
        u = jax.tree_util.tree_map(flat, project(params, xs))  # leaves (B', T, ...)
        h0 = flat(pack(state))
        last, ys, diagnostics = jax.vmap(one_sequence, in_axes=(None, 0, 0))(params, h0, u)
        if _collectors:
            _collectors[-1].append(kernels.Diagnostics(jnp.max(diagnostics.iterations),
                                                       jnp.max(diagnostics.residual)))
        unflat = lambda x: x.reshape(*batch_shape, *x.shape[1:])
        return unpack(unflat(last)), unflat(ys)

    return scan
