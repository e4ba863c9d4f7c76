"""nonlinear_scan: every method against a float64 NumPy loop, gradients against BPTT.

Tolerances (float32 solves; max |x - ref| / max(1, max |ref|)): 2e-5 for the states at
tol = 1e-7, 1e-4 for gradients (the implicit-function gradient and BPTT through the
sequential scan round differently); 1e-5 for one damped step against a float64 Kalman filter;
1e-4 for a damped solve stopped at tol = 5e-6 (damping converges geometrically, so it stops
short of a float32 fixed point).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqbench.kernels.nonlinear_scan import (
    DAMPED_METHODS,
    DIAGONAL,
    FULL,
    METHODS,
    _damped_solve,
    gauss_jordan_solve,
    nonlinear_scan,
    sequential_scan,
)

D, X = 6, 3  # state and input widths


def elman(p, h, x):
    return jnp.tanh(h @ p["W"] + x @ p["U"] + p["b"])


def gru(p, h, x):
    z = jax.nn.sigmoid(h @ p["Wz"] + x @ p["Uz"])
    r = jax.nn.sigmoid(h @ p["Wr"] + x @ p["Ur"])
    candidate = jnp.tanh((r * h) @ p["W"] + x @ p["U"] + p["b"])
    return (1 - z) * h + z * candidate


def numpy_reference(cell, p, h0, xs):
    """The same recurrence step by step in float64."""
    p = {k: np.asarray(v, np.float64) for k, v in p.items()}
    sigmoid = lambda v: 1 / (1 + np.exp(-v))
    h, out = np.asarray(h0, np.float64), []
    for x in np.asarray(xs, np.float64):
        if cell == "elman":
            h = np.tanh(h @ p["W"] + x @ p["U"] + p["b"])
        else:
            z, r = sigmoid(h @ p["Wz"] + x @ p["Uz"]), sigmoid(h @ p["Wr"] + x @ p["Ur"])
            h = (1 - z) * h + z * np.tanh((r * h) @ p["W"] + x @ p["U"] + p["b"])
        out.append(h)
    return np.stack(out)


CELLS = {"elman": elman, "gru": gru}


def random_problem(cell, steps, seed, gain=0.9):
    """Parameters with recurrent matrices of spectral scale ~gain, inputs N(0, 1)."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape, scale=1.0: jnp.asarray(scale * rng.normal(size=shape), jnp.float32)
    recurrent = lambda: normal(D, D, scale=gain / np.sqrt(D))
    p = {"W": recurrent(), "U": normal(X, D, scale=1 / np.sqrt(X)), "b": normal(D, scale=0.1)}
    if cell == "gru":
        p.update(Wz=recurrent(), Uz=normal(X, D), Wr=recurrent(), Ur=normal(X, D))
    return p, normal(D), normal(steps, X)


def error(x, ref):
    ref = np.asarray(ref, np.float64)
    return float(np.max(np.abs(np.asarray(x, np.float64) - ref)) / max(1.0, np.max(np.abs(ref))))


@functools.cache
def solver(cell, method, tol, damping=0.0, max_iters=None):
    return jax.jit(lambda p, h0, xs: nonlinear_scan(CELLS[cell], p, h0, xs, method=method,
                                                    tol=tol, damping=damping,
                                                    max_iters=max_iters))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("steps", [1, 7, 300, pytest.param(1024, marks=pytest.mark.slow)])
def test_every_method_reaches_the_sequential_states(cell, method, steps):
    p, h0, xs = random_problem(cell, steps, seed=steps)
    states, info = solver(cell, method, 1e-7)(p, h0, xs)
    assert error(states, numpy_reference(cell, p, h0, xs)) < 2e-5
    assert 1 <= int(info.iterations) <= steps and float(info.residual) <= 1e-6


@pytest.mark.parametrize("method", METHODS)
def test_an_expansive_recurrence_is_exact_after_at_most_t_iterations(method):
    """Recurrent gain 3: far from contractive, so Jacobi gains about one exact state per
    iteration; with tol = 0 every method still ends, within T = 12 iterations, at the
    sequential states (each iteration makes at least one more state exact)."""
    p, h0, xs = random_problem("elman", 12, seed=1, gain=3.0)
    states, info = solver("elman", method, 0.0)(p, h0, xs)
    assert error(states, numpy_reference("elman", p, h0, xs)) < 2e-5
    assert int(info.iterations) <= 12


def test_newton_needs_fewer_iterations_than_jacobi():
    p, h0, xs = random_problem("gru", 300, seed=3)
    counts = {m: int(solver("gru", m, 1e-6)(p, h0, xs)[1].iterations) for m in METHODS}
    assert counts["newton"] < counts["quasi_newton"] <= counts["jacobi"], counts


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cell", list(CELLS))
def test_implicit_gradients_equal_bptt(cell, method):
    """dL/dθ, dL/dh0 and dL/dx from the implicit function theorem against BPTT through the
    sequential scan, for a loss reading every state."""
    p, h0, xs = random_problem(cell, 64, seed=7)
    weights = jnp.asarray(np.random.default_rng(8).normal(size=(64, D)), jnp.float32)
    loss = lambda states: jnp.sum(jnp.sin(states) * weights)
    ours = jax.grad(lambda p, h0, xs: loss(nonlinear_scan(CELLS[cell], p, h0, xs, method=method,
                                                         tol=1e-7)[0]), argnums=(0, 1, 2))
    bptt = jax.grad(lambda p, h0, xs: loss(sequential_scan(CELLS[cell], p, h0, xs)),
                    argnums=(0, 1, 2))
    for got, want in zip(jax.tree_util.tree_leaves(jax.jit(ours)(p, h0, xs)),
                         jax.tree_util.tree_leaves(jax.jit(bptt)(p, h0, xs))):
        assert error(got, want) < 1e-4


def kalman_filter_reference(matrices, offsets, h0, guess, damping):
    """The filter means of H_t = F_t H_{t-1} + u_t + N(0, I), G_t = H_t + N(0, I/λ), H_{-1} = h0
    exactly, step by step in float64 (predict, then update with gain K = P (P + I/λ)^-1)."""
    mean, cov, out = np.asarray(h0, np.float64), np.zeros((D, D)), []
    for f, u, g in zip(*(np.asarray(a, np.float64) for a in (matrices, offsets, guess))):
        mean, cov = f @ mean + u, f @ cov @ f.T + np.eye(D)
        gain = cov @ np.linalg.inv(cov + np.eye(D) / damping)
        mean, cov = mean + gain @ (g - mean), cov - gain @ cov
        out.append(mean)
    return np.stack(out)


@pytest.mark.parametrize("damping", [0.05, 1.0, 20.0])
@pytest.mark.parametrize("algebra", ["full", "diagonal"])
def test_a_damped_step_is_the_kalman_filter_mean(algebra, damping):
    """ELK's step (full Jacobians) and quasi-ELK's (diagonal ones) against the sequential
    filter, on random F (scale ~0.7 per step), u, h0 and previous guess G."""
    rng = np.random.default_rng(int(damping * 100))
    steps = 37
    normal = lambda *shape: rng.normal(size=shape)
    if algebra == "full":
        matrices = 0.7 * normal(steps, D, D) / np.sqrt(D)
        dense, ops = matrices, FULL
    else:
        matrices = 0.9 * normal(steps, D)
        dense, ops = np.stack([np.diag(f) for f in matrices]), DIAGONAL
    offsets, h0, guess = normal(steps, D), normal(D), normal(steps, D)
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    got = jax.jit(_damped_solve, static_argnums=(0, 5))(ops, f32(matrices), f32(offsets),
                                                         f32(h0), f32(guess), damping)
    assert error(got, kalman_filter_reference(dense, offsets, h0, guess, damping)) < 1e-5


@pytest.mark.parametrize("width", [1, 2, 7, 16])
def test_gauss_jordan_solve_equals_lapack_in_float64(width):
    """The filter's solves, (I + C J)^-1 X with C SPD and J PSD (well conditioned: eigenvalues
    >= 1), plus a zero leading entry that only pivoting gets past."""
    rng = np.random.default_rng(width)
    root_c, root_j = rng.normal(size=(2, 3, 5, width, width)) / np.sqrt(width)
    c = root_c @ np.swapaxes(root_c, -1, -2) + 0.1 * np.eye(width)
    j = root_j @ np.swapaxes(root_j, -1, -2)
    matrices, rhs = np.eye(width) + c @ j, rng.normal(size=(3, 5, width, 4))
    if width > 1:
        matrices[0, 0] = np.roll(np.eye(width), 1, axis=0) + 0.1 * matrices[0, 0]
        matrices[0, 0, 0, 0] = 0.0
    got = jax.jit(gauss_jordan_solve)(jnp.asarray(matrices, jnp.float32),
                                      jnp.asarray(rhs, jnp.float32))
    assert error(got, np.linalg.solve(matrices, rhs)) < 1e-5


def test_the_damped_solve_calls_no_lapack():
    """jnp.linalg.solve's LAPACK call deadlocked XLA:CPU inside the vmapped iteration loop
    (`gauss_jordan_solve`'s docstring); the compiled ELK solve must not contain one."""
    p, h0, xs = random_problem("elman", 16, seed=0)
    batched = jax.vmap(lambda h0, xs: nonlinear_scan(elman, p, h0, xs, method="newton",
                                                     damping=1.0, max_iters=3))
    hlo = jax.jit(batched).lower(jnp.stack([h0] * 2), jnp.stack([xs] * 2)).as_text()
    assert "lapack" not in hlo.lower() and "custom_call" not in hlo


def bistable_problem(steps):
    """W ≈ 3 I: at the zero guess every Jacobian is ≈ 3 I, so an undamped Newton step multiplies
    ~3^T and overflows float32 for T >= 81; the solution saturates (|h| ≈ 1, Jacobians ≈ 0.03)."""
    p, h0, xs = random_problem("elman", steps, seed=2)
    noise = np.random.default_rng(0).normal(size=(D, D))
    return {**p, "W": jnp.asarray(3 * np.eye(D) + 0.1 * noise, jnp.float32)}, h0, xs


@pytest.mark.parametrize("method", DAMPED_METHODS)
def test_damping_recovers_where_undamped_newton_diverges(method):
    """Gonzalez et al. 2024's case for ELK: undamped (quasi-)Newton's first step is not finite
    (the residual reports NaN), the damped solve stays finite and reaches the sequential
    states (here within 4T iterations at λ = 1)."""
    p, h0, xs = bistable_problem(100)
    states, info = solver("elman", method, 0.0)(p, h0, xs)
    assert not np.all(np.isfinite(states)) and np.isnan(float(info.residual))
    states, info = solver("elman", method, 5e-6, damping=1.0, max_iters=400)(p, h0, xs)
    assert error(states, numpy_reference("elman", p, h0, xs)) < 1e-4
    assert float(info.residual) <= 5e-6 and int(info.iterations) < 400


def test_damped_gradients_equal_bptt():
    """The implicit-function gradient does not depend on how the states were found."""
    p, h0, xs = random_problem("gru", 40, seed=9)
    loss = lambda states: jnp.sum(jnp.cos(states))
    ours = jax.grad(lambda p: loss(nonlinear_scan(gru, p, h0, xs, method="quasi_newton",
                                                  damping=0.5, tol=1e-7)[0]))
    bptt = jax.grad(lambda p: loss(sequential_scan(gru, p, h0, xs)))
    for got, want in zip(jax.tree_util.tree_leaves(jax.jit(ours)(p)),
                         jax.tree_util.tree_leaves(jax.jit(bptt)(p))):
        assert error(got, want) < 1e-4


def test_bad_arguments_are_one_line_errors():
    p, h0, xs = random_problem("elman", 5, seed=0)
    with pytest.raises(ValueError, match="unknown method 'deer'; valid: 'jacobi', 'newton'"):
        nonlinear_scan(elman, p, h0, xs, method="deer")
    with pytest.raises(ValueError, match=r"h0 must be one state of shape \(D,\)"):
        nonlinear_scan(elman, p, h0[None], xs)
    with pytest.raises(ValueError, match="max_iters must be a positive int; got 0"):
        nonlinear_scan(elman, p, h0, xs, max_iters=0)
    with pytest.raises(ValueError, match="damping must be a number >= 0; got -1"):
        nonlinear_scan(elman, p, h0, xs, damping=-1)
    with pytest.raises(ValueError, match="damping applies to the methods 'newton', "
                                         "'quasi_newton'; got method 'jacobi'"):
        nonlinear_scan(elman, p, h0, xs, method="jacobi", damping=1.0)
