"""Nonlinear recurrences h_t = f(θ, h_{t-1}, x_t) evaluated in parallel over time.

All T states at once solve one system of equations, H_t = f(θ, H_{t-1}, x_t) for t = 0..T-1
with H_{-1} = h0, by iterating from a guess (zeros):

- "jacobi" (Song et al. 2021, "Accelerating Feedforward Computation via Parallel Nonlinear
  Equation Solving"): H ← f(θ, shift(H), x), every step in parallel.
- "newton" (DEER: Lim et al. 2024, "Parallelizing non-linear sequential models over the
  sequence length"): linearise f at the guess, J_t = ∂f/∂h (θ, H_{t-1}, x_t), and solve the
  linear recurrence H_t = J_t H_{t-1} + (f_t − J_t H_{t-1}^old) exactly, by an associative scan
  over affine maps (D x D matrices: O(T·D³) work, O(log T) depth).
- "quasi_newton" (quasi-DEER: Gonzalez et al. 2024, "Towards Scalable and Stable
  Parallelization of Nonlinear RNNs"): the same with diag(J_t) only, a `linear_scan` (O(T·D)
  memory), the Jacobian's diagonal from D forward-mode products.

Every undamped method makes at least one more state exact per iteration (H_0 depends on h0
alone; once H_{t-1} is exact, so is H_t after the next update), so `max_iters = T` (the
default) always ends at the sequential scan's result; the loop stops earlier once the residual
max_t |f(θ, H_{t-1}, x_t) − H_t| is at most `tol`. Plain Newton can diverge on expansive f
before that (products of Jacobians overflow float32): the iterates are then not finite and the
reported residual is NaN.

Damping (`damping = λ > 0`, for "newton" and "quasi_newton": ELK and quasi-ELK, Gonzalez et
al. 2024, "Towards Scalable and Stable Parallelization of Nonlinear RNNs") makes each iteration
a Levenberg-Marquardt step: the new guess minimises

    Σ_t |H_t − J_t H_{t-1} − c_t|² + λ Σ_t |H_t − G_t|²        (G: the previous guess)

which is the MAP estimate of a linear-Gaussian state-space model with dynamics H_t = J_t H_{t-1}
+ c_t + N(0, I) and observations G_t = H_t + N(0, I/λ). As in the authors' code
(lindermanlab/elk, `elk/algs/elk.py`), the new guess is that model's Kalman *filter* mean (the
smoother would give the exact minimiser for one more reverse scan), computed over time by the
parallel Kalman filter of Särkkä & García-Fernández (2021, "Temporal Parallelization of
Bayesian Smoothers"): an associative scan whose elements (A, b, C, η, J) are D x D matrices for
"newton" and (D,) vectors for "quasi_newton". The step shrinks every Jacobian product by
(1 + λ)^-1 per step, so long products no longer overflow; the price is that no state is exact
after a given number of iterations any more (convergence is asymptotic: set `max_iters` and
`tol`). λ → 0 is the undamped method; the fixed point (the sequential states) is the same for
every λ.

Gradients come from the implicit function theorem at the solution, not from backpropagating
through the iterations: with λ_t = dL/dH_t + J_{t+1}ᵀ λ_{t+1} (one reverse affine scan with the
Jacobians at the solution), dL/dθ = Σ_t (∂f/∂θ)ᵀ λ_t, dL/dx_t = (∂f/∂x)ᵀ λ_t and
dL/dh0 = J_0ᵀ λ_0: exactly BPTT's gradient at the same states.

Shapes (one sequence; vmap for a batch): h0 (D,), xs a pytree of (T, ...) arrays, states
(T, D). Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .linear_recurrence import linear_scan

METHODS = ("jacobi", "newton", "quasi_newton")
DAMPED_METHODS = ("newton", "quasi_newton")  # the methods `damping` applies to


class Diagnostics(NamedTuple):
    """How the solve ended: int32 iterations and the float32 residual max_t |f_t − H_t|."""

    iterations: jax.Array
    residual: jax.Array


def nonlinear_scan(
    step: Callable[[Any, jax.Array, Any], jax.Array],
    params: Any,
    h0: jax.Array,
    xs: Any,
    *,
    method: str = "newton",
    max_iters: int | None = None,
    tol: float = 0.0,
    damping: float = 0.0,
) -> tuple[jax.Array, Diagnostics]:
    """The states of h_t = step(params, h_{t-1}, x_t), computed in parallel over time.

    Args:
      step: `step(params, h, x) -> h_new`, h and h_new of shape (D,), x one time slice of `xs`;
        differentiable (its Jacobians are taken with `jax.jacfwd` / `jax.jvp`).
      params: a pytree of parameters (differentiated through the implicit function theorem).
      h0: the state before the first step, shape (D,), a float dtype.
      xs: a pytree of inputs with a leading time axis T.
      method: "jacobi", "newton" or "quasi_newton" (module docstring).
      max_iters: at most this many iterations (default T: enough for the exact result).
      tol: stop once the residual max_t |f(params, H_{t-1}, x_t) − H_t| <= tol (0: only an
        exact fixed point, or `max_iters`, stops it).
      damping: λ >= 0 of ELK / quasi-ELK for "newton" / "quasi_newton" (module docstring);
        0 (the default): undamped DEER / quasi-DEER.

    Returns:
      (states, diagnostics): states (T, D) in h0's dtype; `Diagnostics` of the solve.
    """
    if method not in METHODS:
        raise ValueError(f"nonlinear_scan: unknown method {method!r}; valid: "
                         + ", ".join(repr(m) for m in METHODS))
    steps = jax.tree_util.tree_leaves(xs)[0].shape[0]
    if h0.ndim != 1:
        raise ValueError(f"nonlinear_scan: h0 must be one state of shape (D,) (vmap for a "
                         f"batch); got shape {h0.shape}")
    max_iters = steps if max_iters is None else max_iters
    if isinstance(max_iters, bool) or not isinstance(max_iters, int) or max_iters < 1:
        raise ValueError(f"nonlinear_scan: max_iters must be a positive int; got {max_iters!r}")
    if isinstance(damping, bool) or not isinstance(damping, (int, float)) or not damping >= 0:
        raise ValueError(f"nonlinear_scan: damping must be a number >= 0; got {damping!r}")
    if damping and method not in DAMPED_METHODS:
        raise ValueError(f"nonlinear_scan: damping applies to the methods "
                         f"{', '.join(repr(m) for m in DAMPED_METHODS)}; got method {method!r}")
    return _solve(step, method, max_iters, float(tol), float(damping), params, h0, xs)


def sequential_scan(step, params, h0, xs) -> jax.Array:
    """The reference: `lax.scan` of h_t = step(params, h_{t-1}, x_t); states (T, D)."""
    def body(h, x):
        h = step(params, h, x)
        return h, h

    return lax.scan(body, h0, xs)[1]


# ------------------------------------------------------------------------------- the solve


def _shifted(states, h0):
    """H_{t-1} for t = 0..T-1: h0, then the states but the last."""
    return jnp.concatenate([h0[None], states[:-1]], axis=0)


def _apply(step, params, states, h0, xs):
    """f(params, H_{t-1}, x_t) for every t at once, shape (T, D)."""
    return jax.vmap(step, in_axes=(None, 0, 0))(params, _shifted(states, h0), xs)


def _jacobians(step, params, states, h0, xs):
    """J_t = ∂f/∂h at (H_{t-1}, x_t), shape (T, D, D)."""
    jac = jax.jacfwd(step, argnums=1)
    return jax.vmap(jac, in_axes=(None, 0, 0))(params, _shifted(states, h0), xs)


def _jacobian_diagonals(step, params, states, h0, xs):
    """diag(J_t), shape (T, D): D forward-mode products, one per basis vector."""
    previous = _shifted(states, h0)

    def diagonal(h, x):
        basis = jnp.eye(h.shape[0], dtype=h.dtype)
        column = lambda e: jax.jvp(lambda h: step(params, h, x), (h,), (e,))[1]
        return jnp.diagonal(jax.vmap(column, out_axes=1)(basis))

    return jax.vmap(diagonal)(previous, xs)


def _affine_scan(matrices, offsets, h0, reverse=False):
    """h_t = A_t h_{t-1} + b_t (h before the first step: h0), all t by an associative scan.

    matrices (T, D, D), offsets (T, D), h0 (D,) -> states (T, D). Reverse: t runs from T-1 down.
    """
    first = -1 if reverse else 0
    offsets = offsets.at[first].add(matrices[first] @ h0)  # fold h0 into the first step

    def compose(earlier, later):  # apply `earlier`, then `later`
        a1, b1 = earlier
        a2, b2 = later
        return a2 @ a1, jnp.einsum("...ij,...j->...i", a2, b1) + b2

    # reverse=True scans the flipped sequence: `earlier` is then the larger t, as it should be
    return lax.associative_scan(compose, (matrices, offsets), reverse=reverse)[1]


def _iterate(step, method, damping, params, states, values, h0, xs):
    """One iteration of `method` from the guess `states`, whose f(θ, H_{t-1}, x_t) are `values`
    (computed once per guess, for the residual too); returns the new guess."""
    if method == "jacobi":
        return values
    previous = _shifted(states, h0)
    if method == "newton":
        jac = _jacobians(step, params, states, h0, xs)
        offsets = values - jnp.einsum("tij,tj->ti", jac, previous)
        if damping:
            return _damped_solve(FULL, jac, offsets, h0, states, damping)
        return _affine_scan(jac, offsets, h0)
    diag = _jacobian_diagonals(step, params, states, h0, xs)
    offsets = values - diag * previous
    if damping:
        return _damped_solve(DIAGONAL, diag, offsets, h0, states, damping)
    h, _ = linear_scan(diag[None], offsets[None], h0[None], impl="associative")
    return h[0]


class _Algebra(NamedTuple):
    """The operations of the Kalman-filter scan on D x D matrices or on their diagonals."""

    mul: Callable  # matrix times matrix (or vector, as a (..., D, 1) matrix)
    transpose: Callable
    solve: Callable  # solve(M, X) = M^-1 X
    identity: Callable  # identity(D, dtype)
    vector: Callable  # (..., D) -> the algebra's vector form
    unvector: Callable  # and back


def gauss_jordan_solve(matrices: jax.Array, rhs: jax.Array) -> jax.Array:
    """M^-1 X by Gauss-Jordan elimination with partial pivoting, in jnp ops only.

    Args:
      matrices: (..., D, D), nonsingular.
      rhs: (..., D, R).

    Returns:
      (..., D, R), as `jnp.linalg.solve`. Why not that: on XLA:CPU (jaxlib 0.10.2) its LAPACK
      call inside a vmapped `while_loop` deadlocked the runtime in 4 of 5 runs of a batched
      ELK solve (every worker thread parked, the executable waiting on a value never set;
      `--xla_cpu_multi_thread_eigen=false` did not help); this loop of D row operations never
      did (BUILD_NOTES, "Parallel-in-time nonlinear RNNs").
    """
    width = matrices.shape[-1]
    augmented = jnp.concatenate([matrices, rhs], axis=-1)
    rows = jnp.arange(width)

    def eliminate(k, augmented):
        column = jnp.where(rows >= k, jnp.abs(augmented[..., :, k]), -1.0)
        pivot = jnp.argmax(column, axis=-1)  # (...,): the largest entry at or below row k
        take = lambda i: jnp.take_along_axis(augmented, i[..., None, None], axis=-2)[..., 0, :]
        pivot_row, row_k = take(pivot), take(jnp.full_like(pivot, k))
        swapped = jnp.where((rows == pivot[..., None])[..., None], row_k[..., None, :],
                            augmented)  # row k moves to the pivot's place ...
        pivot_row = pivot_row / pivot_row[..., k][..., None]
        factors = jnp.where(rows == k, 0.0, swapped[..., :, k])
        eliminated = swapped - factors[..., :, None] * pivot_row[..., None, :]
        return jnp.where((rows == k)[..., None], pivot_row[..., None, :], eliminated)  # ... and
        # the normalised pivot row takes row k's

    return lax.fori_loop(0, width, eliminate, augmented)[..., width:]


FULL = _Algebra(
    mul=jnp.matmul, transpose=lambda m: jnp.swapaxes(m, -1, -2), solve=gauss_jordan_solve,
    identity=lambda d, dtype: jnp.eye(d, dtype=dtype), vector=lambda v: v[..., None],
    unvector=lambda v: v[..., 0])
DIAGONAL = _Algebra(
    mul=jnp.multiply, transpose=lambda m: m, solve=lambda m, x: x / m,
    identity=lambda d, dtype: jnp.ones((d,), dtype), vector=lambda v: v, unvector=lambda v: v)


def _damped_solve(algebra, matrices, offsets, h0, guess, damping):
    """The Kalman filter means of H_t = F_t H_{t-1} + u_t + N(0, I), G_t = H_t + N(0, I/λ),
    H_{-1} = h0 exactly, by the parallel filter of Särkkä & García-Fernández (2021, Lemmas 7-8).

    matrices F (T, D, D) (or their diagonals (T, D)), offsets u (T, D), h0 (D,), guess G
    (T, D), damping λ > 0 -> means (T, D). With gain κ = λ / (1 + λ), element t is A_t = (1−κ)
    F_t, b_t = u_t + κ (G_t − u_t), C_t = (1−κ) I, η_t = κ F_tᵀ (G_t − u_t), J_t = κ F_tᵀ F_t;
    the first step's prior is exact (F_0 h0 + u_0 with covariance I), so F_0 becomes 0 with
    u_0 + F_0 h0 as its offset. The scan's b is the filtered mean.
    """
    width = offsets.shape[-1]
    offsets = offsets.at[0].add(algebra.unvector(algebra.mul(matrices[0], algebra.vector(h0))))
    matrices = matrices.at[0].set(0.0)
    gain = damping / (1.0 + damping)
    innovation = algebra.vector(guess - offsets)
    eye = algebra.identity(width, offsets.dtype)
    tr = algebra.transpose
    elements = (
        (1.0 - gain) * matrices,
        algebra.vector(offsets) + gain * innovation,
        jnp.broadcast_to((1.0 - gain) * eye, matrices.shape),
        gain * algebra.mul(tr(matrices), innovation),
        gain * algebra.mul(tr(matrices), matrices),
    )

    def combine(earlier, later):  # Särkkä & García-Fernández 2021, Lemma 8
        a_i, b_i, c_i, eta_i, j_i = earlier
        a_j, b_j, c_j, eta_j, j_j = later
        forward = eye + algebra.mul(c_i, j_j)  # I + C_i J_j
        backward = eye + algebra.mul(j_j, c_i)  # I + J_j C_i
        a = algebra.mul(a_j, algebra.solve(forward, a_i))
        b = algebra.mul(a_j, algebra.solve(forward, b_i + algebra.mul(c_i, eta_j))) + b_j
        c = algebra.mul(a_j, algebra.mul(algebra.solve(forward, c_i), tr(a_j))) + c_j
        eta = algebra.mul(tr(a_i), algebra.solve(backward, eta_j - algebra.mul(j_j, b_i))) + eta_i
        j = algebra.mul(tr(a_i), algebra.solve(backward, algebra.mul(j_j, a_i))) + j_i
        return a, b, c, eta, j

    return algebra.unvector(lax.associative_scan(combine, elements)[1])


def _residual(values, states):
    """max_t |f(θ, H_{t-1}, x_t) − H_t| (`values` − `states`) as float32; NaN when any state is
    not finite."""
    gap = jnp.abs(values - states)
    return jnp.where(jnp.all(jnp.isfinite(gap)), jnp.max(gap), jnp.nan).astype(jnp.float32)


def _fixed_point(step, method, max_iters, tol, damping, params, h0, xs):
    steps = jax.tree_util.tree_leaves(xs)[0].shape[0]
    guess = jnp.zeros((steps, h0.shape[0]), h0.dtype)

    def unfinished(carry):
        *_, iteration, residual = carry
        return (iteration < max_iters) & (residual > tol)  # a NaN residual stops it too

    def body(carry):
        states, values, iteration, _ = carry
        states = _iterate(step, method, damping, params, states, values, h0, xs)
        values = _apply(step, params, states, h0, xs)
        return states, values, iteration + 1, _residual(values, states)

    values = _apply(step, params, guess, h0, xs)
    start = (guess, values, jnp.int32(0), _residual(values, guess))
    states, _, iterations, residual = lax.while_loop(unfinished, body, start)
    return states, Diagnostics(iterations, residual)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3, 4))
def _solve(step, method, max_iters, tol, damping, params, h0, xs):
    return _fixed_point(step, method, max_iters, tol, damping, params, h0, xs)


def _solve_fwd(step, method, max_iters, tol, damping, params, h0, xs):
    states, diagnostics = _fixed_point(step, method, max_iters, tol, damping, params, h0, xs)
    return (states, diagnostics), (params, h0, xs, states)


def _solve_bwd(step, method, max_iters, tol, damping, residuals, cotangents):
    """The implicit function theorem at the solution (module docstring)."""
    params, h0, xs, states = residuals
    d_states, _ = cotangents  # the diagnostics carry no gradient
    jac = _jacobians(step, params, states, h0, xs)
    # λ_t = G_t + J_{t+1}ᵀ λ_{t+1}: a reverse affine scan with A_t = J_{t+1}ᵀ (A_{T-1} = 0).
    transposed = jnp.concatenate([jnp.swapaxes(jac[1:], 1, 2), jnp.zeros_like(jac[:1])])
    lam = _affine_scan(transposed, d_states.astype(states.dtype), jnp.zeros_like(h0),
                       reverse=True)
    _, vjp = jax.vjp(lambda p, prev, x: jax.vmap(step, in_axes=(None, 0, 0))(p, prev, x),
                     params, _shifted(states, h0), xs)
    d_params, d_previous, d_xs = vjp(lam)
    return d_params, d_previous[0], d_xs


_solve.defvjp(_solve_fwd, _solve_bwd)
