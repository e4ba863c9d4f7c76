"""Classic nonlinear recurrent cells: Elman, LSTM, GRU, LEM, the bilinear RNN, SCRN and the
Sparse and SVD Combo Nets (RNNs of RNNs).

Every cell here is written as two pure functions:

    project(params, x) -> u        the input-only part, affine in x (any leading axes)
    recur(params, state, u_t) -> (state, y_t)   the part that needs the previous state

`step` is `recur(project(x_t))`, and `scan` is `lax.scan` of `step` over the time-major inputs
(with `prepare(params)`, matrices derived from the parameters, computed once before the loop):
the projection stays inside the loop. Hoisting it out (one (B·T, d_in) x (d_in, G·D) matmul
before the scan, as cuDNN does) made the LSTM's forward and backward pass 1.5x slower on
XLA:CPU: the projected (T, B, G·D) array round-trips through memory (BUILD_NOTES, "Cells and
models"). None of these cells has a closed parallel form in general (the one exception,
`bilinear` with block_size=1 and normalize=False, is a diagonal linear recurrence; it too runs
sequentially here), but every one takes the solver hyperparameters `scan_impl` ("sequential",
the default; "jacobi", "deer", "quasi_deer"), `damping`, `tol` and `max_iters`, which compute
the same scan by iterations that are parallel over time (`cells.parallel_in_time`).

Initialisation: PyTorch's `nn.RNN`/`nn.LSTM`/`nn.GRU` default, every weight and bias
U(-1/sqrt(d_hidden), 1/sqrt(d_hidden)) (`base.uniform_init` with fan_in = d_hidden), except
where a factory's docstring says otherwise. Shape letters: see `kernels/typing.py` (here
D = d_hidden, R = rank; G is the number of gate/candidate blocks of a cell and b the bilinear
cell's block size).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from seqbench.cells import base, parallel_in_time


def _uniform_all(key, shapes: dict, fan_in: int) -> dict:
    """A dict of U(±1/sqrt(fan_in)) arrays, one independent key per entry."""
    keys = jax.random.split(key, len(shapes))
    return {
        name: base.uniform_init(k, shape, fan_in) for k, (name, shape) in zip(keys, shapes.items())
    }


def _zeros_state(state_type, batch_shape, d_hidden: int):
    """A `state_type` NamedTuple whose every field is float32 zeros of shape (*B, D)."""
    zeros = jnp.zeros((*batch_shape, d_hidden), jnp.float32)
    return state_type(*([zeros] * len(state_type._fields)))


def _build(*, name, d_hidden, hparams, solver, init, state_type, project, recur, input_dim,
           prepare=None):
    """A `Cell` whose step is `recur(project(x_t))` and whose scan is `lax.scan` of that step,
    or the parallel-in-time solve `solver` names (`parallel_in_time.solver_scan`).

    `prepare(params)`, when given, derives what `project` and `recur` read (matrices built
    from the trained parameters) once per `scan` or `step` call, not once per time step."""
    parallel_in_time.check_hparams(name, **solver)
    prepare = prepare or (lambda params: params)

    def initial_state(params, batch_shape):
        return _zeros_state(state_type, tuple(batch_shape), d_hidden)

    def prepared_step(prepared, state, x_t):
        return recur(prepared, state, project(prepared, x_t))

    def step(params, state, x_t):
        return prepared_step(prepare(params), state, x_t)

    def sequential_scan(prepared, state, xs):
        xs = jnp.moveaxis(xs, -2, 0)
        state, ys = lax.scan(lambda carry, x_t: prepared_step(prepared, carry, x_t), state, xs)
        return state, jnp.moveaxis(ys, 0, -2)

    solve = sequential_scan
    if solver["scan_impl"] != "sequential":
        solve = parallel_in_time.solver_scan(state_type, project, recur, **solver)

    def scan(params, state, xs):
        return solve(prepare(params), state, xs)

    return base.make_cell(
        name=name, family="classic", d_out=d_hidden, init=init, initial_state=initial_state,
        step=step, scan=scan, input_dim=input_dim, hparams={**hparams, **solver},
    )


def _affine_projection(params, x):
    """x W_x + b: (..., d_in) -> (..., G·D) for the G gate/candidate blocks of a cell."""
    return base.dense(x, params["w_x"]) + params["b"]


def _gated_params(key, d_in: int, d_hidden: int, blocks: int) -> dict:
    """w_x (d_in, G·D), w_h (D, G·D), b (G·D): PyTorch's U(±1/sqrt(D)) for all three."""
    gh = blocks * d_hidden
    return _uniform_all(key, {"w_x": (d_in, gh), "w_h": (d_hidden, gh), "b": (gh,)}, d_hidden)


# --------------------------------------------------------------------------------------------
# Low-rank and sparse recurrent connectivity (Tumma, Lechner, Loo, Hasani & Rus 2024)


class Connectivity(NamedTuple):
    """How a classic cell's recurrent matrix W_h (D, G·D) is parameterised.

    `factorise(params)`: the params of the full cell (w_h drawn at its usual init) -> the params
    this parameterisation trains; `matrix(params)` -> W_h (D, G·D).
    """

    factorise: Callable[[dict], dict]
    matrix: Callable[[dict], jax.Array]


def _svd_factors(w: jax.Array, rank: int) -> tuple[jax.Array, jax.Array]:
    """(U_r Σ_r^½, Σ_r^½ V_rᵀ) from the rank-r truncated SVD of w (D, G·D), in float64 on the
    host (numpy, through `jax.pure_callback`; init only): XLA:CPU's batched LAPACK calls can
    deadlock when two run at once (BUILD_NOTES, "Cells and models")."""

    def host(w):
        u, s, vt = np.linalg.svd(np.asarray(w, np.float64), full_matrices=False)
        root = np.sqrt(s[:rank])
        return ((u[:, :rank] * root).astype(np.float32),
                (root[:, None] * vt[:rank]).astype(np.float32))

    shapes = (jax.ShapeDtypeStruct((w.shape[0], rank), jnp.float32),
              jax.ShapeDtypeStruct((rank, w.shape[1]), jnp.float32))
    return jax.pure_callback(host, shapes, w, vmap_method="sequential")


def _connectivity(name: str, d_hidden: int, blocks: int, recurrent_rank: int,
                  recurrent_sparsity: float, mask_seed: int) -> Connectivity:
    """W_h = (W1 W2) ⊙ M (Tumma et al. 2024, "Leveraging Low-Rank and Sparse Recurrent
    Connectivity for Robust Closed-Loop Control"): rank r = `recurrent_rank` (0: W_h itself,
    full rank), sparsity s = `recurrent_sparsity`.

    W1 (D, r) = U_r Σ_r^½ and W2 (r, G·D) = Σ_r^½ V_rᵀ come from the rank-r truncated SVD of the
    cell's usual initial W_h, and both are trained. M (D, G·D) is fixed, not a parameter:
    M_ij = [u_ij >= s] with u = numpy.random.default_rng(mask_seed).random((D, G·D)), so about
    a fraction s of the entries of W_h are zero (every seed of a run shares the mask; vary
    `mask_seed` across runs for other masks). s = 0: no mask. The paper's text could not be
    read here; this follows its published summary and reviews (BUILD_NOTES, "Cells and models").
    Parameters: r·(D + G·D) in place of G·D² when r > 0.
    """
    base.check_int(name, "recurrent_rank", recurrent_rank, minimum=0)
    if recurrent_rank > d_hidden:
        raise ValueError(f"{name}: recurrent_rank must be at most d_hidden={d_hidden}; "
                         f"got {recurrent_rank}")
    if (isinstance(recurrent_sparsity, bool) or not isinstance(recurrent_sparsity, (int, float))
            or not 0.0 <= recurrent_sparsity < 1.0):
        raise ValueError(f"{name}: recurrent_sparsity must be a number in [0, 1); "
                         f"got {recurrent_sparsity!r}")
    base.check_int(name, "mask_seed", mask_seed, minimum=0)
    shape = (d_hidden, blocks * d_hidden)
    mask = None
    if recurrent_sparsity:
        uniform = np.random.default_rng(mask_seed).random(shape)
        mask = jnp.asarray(uniform >= recurrent_sparsity, jnp.float32)

    def factorise(params):
        if recurrent_rank:
            params = dict(params)
            params["w_h1"], params["w_h2"] = _svd_factors(params.pop("w_h"), recurrent_rank)
        return params

    def matrix(params):
        w = params["w_h1"] @ params["w_h2"] if recurrent_rank else params["w_h"]
        return w if mask is None else w * mask

    return Connectivity(factorise, matrix)


# --------------------------------------------------------------------------------------------
# Elman


class ElmanState(NamedTuple):
    h: jax.Array  # shape=(*B, D), dtype=float32


def make_elman(
    *, d_hidden: int = 64, recurrent_rank: int = 0, recurrent_sparsity: float = 0.0,
    mask_seed: int = 0, scan_impl: str = "sequential", damping: float = 0.0, tol: float = 1e-6,
    max_iters: int | None = None,
) -> base.Cell:
    """Elman RNN (Elman 1990, "Finding structure in time").

        h_t = tanh(W_x x_t + W_h h_{t-1} + b),      y_t = h_t

    One bias (PyTorch's b_ih + b_hh is the same function with a redundant parameter).
    `recurrent_rank`, `recurrent_sparsity`, `mask_seed`: W_h = (W1 W2) ⊙ M, low-rank and sparse
    (`_connectivity`); by default W_h itself.
    Init: every weight and bias U(±1/sqrt(D)) (PyTorch `nn.RNN`).
    Parameters: D·(d_in + D + 1).
    """
    base.check_int("elman", "d_hidden", d_hidden)
    connectivity = _connectivity("elman", d_hidden, 1, recurrent_rank, recurrent_sparsity,
                                 mask_seed)

    def init(key, d_in):
        return connectivity.factorise(_gated_params(key, d_in, d_hidden, blocks=1))

    def recur(params, state, u_t):
        h = jnp.tanh(u_t + state.h @ connectivity.matrix(params))
        return ElmanState(h), h

    return _build(
        name="elman", d_hidden=d_hidden,
        hparams=dict(d_hidden=d_hidden, recurrent_rank=recurrent_rank,
                     recurrent_sparsity=recurrent_sparsity, mask_seed=mask_seed), init=init,
        solver=dict(scan_impl=scan_impl, damping=damping, tol=tol, max_iters=max_iters),
        state_type=ElmanState, project=_affine_projection, recur=recur,
        input_dim=lambda p: p["w_x"].shape[0],
    )


# --------------------------------------------------------------------------------------------
# LSTM


class LSTMState(NamedTuple):
    c: jax.Array  # shape=(*B, D), dtype=float32: the memory cell
    h: jax.Array  # shape=(*B, D), dtype=float32: the output


def make_lstm(
    *, d_hidden: int = 64, recurrent_rank: int = 0, recurrent_sparsity: float = 0.0,
    mask_seed: int = 0, scan_impl: str = "sequential", damping: float = 0.0, tol: float = 1e-6,
    max_iters: int | None = None,
) -> base.Cell:
    """LSTM with a forget gate (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000).

        [i, f, g, o] = W_x x_t + W_h h_{t-1} + b        (four blocks of D, in this order)
        c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
        h_t = σ(o) ⊙ tanh(c_t),                         y_t = h_t;   state (c, h)

    No peepholes; one bias per gate. `recurrent_rank`, `recurrent_sparsity`, `mask_seed`: the
    (D, 4D) W_h = (W1 W2) ⊙ M, low-rank and sparse (`_connectivity`); by default W_h itself.
    Init: weights and the i, g, o biases U(±1/sqrt(D)) (PyTorch `nn.LSTM`); the forget-gate bias
    is 1 (Gers et al. 2000; Jozefowicz et al. 2015), so the cell starts out remembering.
    Parameters: 4D·(d_in + D + 1).
    """
    base.check_int("lstm", "d_hidden", d_hidden)
    h_ = d_hidden
    connectivity = _connectivity("lstm", d_hidden, 4, recurrent_rank, recurrent_sparsity,
                                 mask_seed)

    def init(key, d_in):
        params = _gated_params(key, d_in, d_hidden, blocks=4)
        params["b"] = params["b"].at[h_ : 2 * h_].set(1.0)
        return connectivity.factorise(params)

    def recur(params, state, u_t):
        i, f, g, o = jnp.split(u_t + state.h @ connectivity.matrix(params), 4, axis=-1)
        c = jax.nn.sigmoid(f) * state.c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return LSTMState(c, h), h

    return _build(
        name="lstm", d_hidden=d_hidden,
        hparams=dict(d_hidden=d_hidden, recurrent_rank=recurrent_rank,
                     recurrent_sparsity=recurrent_sparsity, mask_seed=mask_seed), init=init,
        solver=dict(scan_impl=scan_impl, damping=damping, tol=tol, max_iters=max_iters),
        state_type=LSTMState, project=_affine_projection, recur=recur,
        input_dim=lambda p: p["w_x"].shape[0],
    )


# --------------------------------------------------------------------------------------------
# GRU


class GRUState(NamedTuple):
    h: jax.Array  # shape=(*B, D), dtype=float32


def make_gru(
    *, d_hidden: int = 64, recurrent_rank: int = 0, recurrent_sparsity: float = 0.0,
    mask_seed: int = 0, scan_impl: str = "sequential", damping: float = 0.0, tol: float = 1e-6,
    max_iters: int | None = None,
) -> base.Cell:
    """GRU (Cho et al. 2014), in the "reset after" form of cuDNN, PyTorch and Keras 2.

        [r̂, ẑ, n̂] = W_x x_t + b                          (three blocks of D, in this order)
        r = σ(r̂ + W_hr h_{t-1}),   z = σ(ẑ + W_hz h_{t-1})
        n = tanh(n̂ + r ⊙ (W_hn h_{t-1} + b_hn))
        h_t = (1 − z) ⊙ n + z ⊙ h_{t-1},                  y_t = h_t

    Choice: the reset gate multiplies the recurrent matmul's output (W_hn h + b_hn), as cuDNN and
    PyTorch do, not its input (Cho et al. 2014 wrote W (r ⊙ h)); the two forms are equally
    expressive in practice and this one lets all three recurrent matmuls run as one. It needs
    the separate recurrent bias b_hn (b_hr, b_hz would be redundant and are folded into b).
    `recurrent_rank`, `recurrent_sparsity`, `mask_seed`: W_h = [W_hr W_hz W_hn] (D, 3D) =
    (W1 W2) ⊙ M, low-rank and sparse (`_connectivity`); by default W_h itself.
    Init: every weight and bias U(±1/sqrt(D)) (PyTorch `nn.GRU`).
    Parameters: 3D·(d_in + D + 1) + D.
    """
    base.check_int("gru", "d_hidden", d_hidden)
    connectivity = _connectivity("gru", d_hidden, 3, recurrent_rank, recurrent_sparsity,
                                 mask_seed)

    def init(key, d_in):
        key_gates, key_bias = jax.random.split(key)
        params = _gated_params(key_gates, d_in, d_hidden, blocks=3)
        params["b_hn"] = base.uniform_init(key_bias, (d_hidden,), d_hidden)
        return connectivity.factorise(params)

    def recur(params, state, u_t):
        r_x, z_x, n_x = jnp.split(u_t, 3, axis=-1)
        r_h, z_h, n_h = jnp.split(state.h @ connectivity.matrix(params), 3, axis=-1)
        r = jax.nn.sigmoid(r_x + r_h)
        z = jax.nn.sigmoid(z_x + z_h)
        n = jnp.tanh(n_x + r * (n_h + params["b_hn"]))
        h = (1.0 - z) * n + z * state.h
        return GRUState(h), h

    return _build(
        name="gru", d_hidden=d_hidden,
        hparams=dict(d_hidden=d_hidden, recurrent_rank=recurrent_rank,
                     recurrent_sparsity=recurrent_sparsity, mask_seed=mask_seed), init=init,
        solver=dict(scan_impl=scan_impl, damping=damping, tol=tol, max_iters=max_iters),
        state_type=GRUState, project=_affine_projection, recur=recur,
        input_dim=lambda p: p["w_x"].shape[0],
    )


# --------------------------------------------------------------------------------------------
# LEM


class LEMState(NamedTuple):
    y: jax.Array  # shape=(*B, D), dtype=float32: the fast, output state
    z: jax.Array  # shape=(*B, D), dtype=float32: the slow state


def make_lem(
    *, d_hidden: int = 64, dt: float = 1.0, scan_impl: str = "sequential", damping: float = 0.0, tol: float = 1e-6,
    max_iters: int | None = None,
) -> base.Cell:
    """Long Expressive Memory (Rusch, Mishra, Erichson & Mahoney, ICLR 2022).

        Δt_n = dt · σ(W_1 y_{n-1} + V_1 u_n + b_1)          (multiscale step of z)
        Δt̄_n = dt · σ(W_2 y_{n-1} + V_2 u_n + b_2)          (multiscale step of y)
        z_n = (1 − Δt_n) ⊙ z_{n-1} + Δt_n ⊙ tanh(W_z y_{n-1} + V_z u_n + b_z)
        y_n = (1 − Δt̄_n) ⊙ y_{n-1} + Δt̄_n ⊙ tanh(W_y z_n + V_y u_n + b_y)
        output y_n;  state (y, z)

    Note y_n reads the new z_n (the paper's IMEX discretisation). Parameters are stored as
    w_x = [V_1 V_2 V_z V_y] (d_in, 4D), b = [b_1 b_2 b_z b_y] (4D), w_h = [W_1 W_2 W_z] (D, 3D)
    and w_zy = W_y (D, D); the authors' code has the same function with the bias of W_y
    separate. `dt` must lie in (0, 1] so every update is a convex combination.
    Init: every weight and bias U(±1/sqrt(D)), as the authors' code does.
    Parameters: 4D·(d_in + D + 1).
    """
    base.check_int("lem", "d_hidden", d_hidden)
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not 0.0 < dt <= 1.0:
        raise ValueError(f"cell 'lem': dt must be a number in (0, 1]; got {dt!r}")

    def init(key, d_in):
        h_ = d_hidden
        shapes = {"w_x": (d_in, 4 * h_), "w_h": (h_, 3 * h_), "w_zy": (h_, h_), "b": (4 * h_,)}
        return _uniform_all(key, shapes, h_)

    def recur(params, state, u_t):
        p_1, p_2, p_z, p_y = jnp.split(u_t, 4, axis=-1)
        q_1, q_2, q_z = jnp.split(state.y @ params["w_h"], 3, axis=-1)
        dt_z = dt * jax.nn.sigmoid(p_1 + q_1)
        dt_y = dt * jax.nn.sigmoid(p_2 + q_2)
        z = (1.0 - dt_z) * state.z + dt_z * jnp.tanh(p_z + q_z)
        y = (1.0 - dt_y) * state.y + dt_y * jnp.tanh(base.dense(z, params["w_zy"]) + p_y)
        return LEMState(y, z), y

    return _build(
        name="lem", d_hidden=d_hidden, hparams=dict(d_hidden=d_hidden, dt=dt), init=init,
        solver=dict(scan_impl=scan_impl, damping=damping, tol=tol, max_iters=max_iters),
        state_type=LEMState, project=_affine_projection, recur=recur,
        input_dim=lambda p: p["w_x"].shape[0],
    )


# --------------------------------------------------------------------------------------------
# Bilinear RNN


class BilinearState(NamedTuple):
    h: jax.Array  # shape=(*B, D), dtype=float32


_RMS_EPS = 1e-6


def make_bilinear(
    *,
    d_hidden: int = 64,
    rank: int | None = None,
    block_size: int | None = None,
    normalize: bool = True,
    scan_impl: str = "sequential", damping: float = 0.0, tol: float = 1e-6,
    max_iters: int | None = None,
) -> base.Cell:
    """Bilinear RNN (Ebrahimi & Memisevic 2025, "Revisiting Bi-Linear State Transitions in
    Recurrent Neural Networks", arXiv:2505.21749).

        A(x)_ij = Σ_k x_k W_kij                       (a 3-tensor W: d_in × D × D)
        ĥ_t = A(x_t) h_{t-1} + B x_t
        h_t = ĥ_t / sqrt(mean(ĥ_t²) + 1e-6)   if normalize,  else  h_t = ĥ_t;      y_t = h_t

    Structure of W (at most one of `rank`, `block_size`):
    - full (both None): W is d_in·D² free numbers.
    - `rank=R`: the paper's factorised (CP) form W_kij = Σ_r X_kr U_ri V_jr, i.e.
      A(x) h = Uᵀ((Xᵀx) ⊙ (Vᵀh)) with X (d_in, R), V (D, R), U (R, D).
    - `block_size=b` (must divide D): A(x) block-diagonal with D/b blocks of b × b, each bilinear
      in x as above; b = 1 is a diagonal, input-dependent (Mamba-like) transition, the bottom of
      the paper's hierarchy; b = D is the full model. (The paper's rotation-only 2×2 blocks are
      not offered.)

    Choices the paper leaves to us / deviations:
    - Additive input term B x_t (deviation). The paper's main model is purely linear in h (no
      B x, no bias), so it needs a nonzero h_0; the cell contract starts every state at zeros,
      from which that model would stay at zero forever, so the input also enters additively
      (the paper discusses when such additive terms help or hurt). No bias.
    - Normalisation: the paper normalises the hidden state (harmless there, as its update is
      scale-invariant in h); we rescale ĥ_t to unit RMS (norm sqrt(D), so y_t has O(1)
      entries), with ε = 1e-6 so a zero ĥ_t maps to 0 rather than NaN. With the additive term
      this makes the cell nonlinear. `normalize=False` gives the plain linear recurrence.
    - Init (so the state neither explodes nor vanishes at init): every transition is
      norm-preserving in expectation for inputs of unit RMS, E‖A(x)h‖² = (‖x‖²/d_in)·‖h‖²:
      full W_kij ~ N(0, 1/(d_in·D)); block W ~ N(0, 1/(d_in·b)); rank R: X ~ N(0, 1/d_in),
      V ~ N(0, 1/D), U ~ N(0, 1/R). B ~ N(0, 1/d_in) (LeCun normal).
    Parameters: full d_in·D² + d_in·D;  block d_in·D·b + d_in·D;  rank R·(d_in + 2D) + d_in·D.
    """
    name = "bilinear"
    base.check_int(name, "d_hidden", d_hidden)
    if rank is not None and block_size is not None:
        raise ValueError(
            f"cell {name!r}: set at most one of rank and block_size (the other must be None); "
            f"got rank={rank!r}, block_size={block_size!r}"
        )
    if rank is not None:
        base.check_int(name, "rank", rank)
    if block_size is not None:
        base.check_int(name, "block_size", block_size)
        if d_hidden % block_size:
            raise ValueError(
                f"cell {name!r}: block_size must divide d_hidden={d_hidden}; got {block_size}"
            )
    if not isinstance(normalize, bool):
        raise ValueError(f"cell {name!r}: normalize must be True or False; got {normalize!r}")
    h_ = d_hidden

    def init(key, d_in):
        key_b, key_1, key_2, key_3 = jax.random.split(key, 4)
        params = {"w_in": base.lecun_normal(key_b, (d_in, h_), d_in)}
        if rank is not None:
            params["w_xr"] = base.lecun_normal(key_1, (d_in, rank), d_in)  # X
            params["w_hr"] = base.lecun_normal(key_2, (h_, rank), h_)  # V
            params["w_rh"] = base.lecun_normal(key_3, (rank, h_), rank)  # U
        else:
            b = block_size or h_
            params["w"] = base.lecun_normal(key_1, (d_in, h_ // b, b, b), d_in * b)
        return params

    def project(params, x):
        u = {"bx": base.dense(x, params["w_in"])}
        u["x"] = base.dense(x, params["w_xr"]) if rank is not None else x
        return u

    def transition(params, x, h):
        """A(x) h for x (..., d_in) (or Xᵀx (..., R) in the low-rank form) and h (..., D)."""
        if rank is not None:
            return base.dense(x * base.dense(h, params["w_hr"]), params["w_rh"])
        n_blocks, b = params["w"].shape[1], params["w"].shape[2]
        hb = h.reshape(*h.shape[:-1], n_blocks, b)
        return jnp.einsum("...k,knij,...nj->...ni", x, params["w"], hb).reshape(h.shape)

    def recur(params, state, u_t):
        h = transition(params, u_t["x"], state.h) + u_t["bx"]
        if normalize:
            h = h * lax.rsqrt(jnp.mean(h * h, axis=-1, keepdims=True) + _RMS_EPS)
        return BilinearState(h), h

    return _build(
        name=name, d_hidden=d_hidden,
        hparams=dict(d_hidden=d_hidden, rank=rank, block_size=block_size, normalize=normalize),
        solver=dict(scan_impl=scan_impl, damping=damping, tol=tol, max_iters=max_iters),
        init=init, state_type=BilinearState, project=project, recur=recur,
        input_dim=lambda p: p["w_in"].shape[0],
    )


# --------------------------------------------------------------------------------------------
# SCRN


class SCRNState(NamedTuple):
    hs: jax.Array  # shape=(*B, D), dtype=float32: [h (D − C fast units); s (C context units)]


def make_scrn(
    *, d_hidden: int = 64, d_context: int | None = None, alpha: float = 0.95,
    scan_impl: str = "sequential", damping: float = 0.0, tol: float = 1e-6,
    max_iters: int | None = None,
) -> base.Cell:
    """Structurally Constrained Recurrent Network (Mikolov, Joulin, Chopra, Mathieu & Ranzato
    2015, "Learning Longer Memory in Recurrent Neural Networks", section 3): a fast sigmoid
    layer h beside a slow, near-identity context layer s,

        s_t = (1 − α) B x_t + α s_{t−1}                         (C = d_context units)
        h_t = σ(A x_t + P s_t + R h_{t−1} + b)                  (D − C units)
        y_t = [h_t; s_t]                                         (D = d_hidden features)

    with α fixed (0.95, the paper's value). The paper's output layer f(U h_t + V s_t) is the
    model's readout of y_t here; its hidden layer has no bias, this one has b (the function
    class of a model with biases elsewhere is the same). C defaults to D // 4; the state is y_t
    itself. Init: every weight and bias U(±1/sqrt(D)). Parameters: d_in·D + (D − C)² + C·(D − C)
    + (D − C) (A and B, R, P, b).
    """
    name = "scrn"
    base.check_int(name, "d_hidden", d_hidden)
    context = d_hidden // 4 if d_context is None else d_context
    base.check_int(name, "d_context (or None for d_hidden // 4)", context)
    if context >= d_hidden:
        raise ValueError(f"{name}: d_context must be below d_hidden={d_hidden} (the fast layer "
                         f"has d_hidden - d_context units); got {context}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"{name}: alpha must be a number in [0, 1] (the paper uses 0.95); "
                         f"got {alpha!r}")
    fast = d_hidden - context

    def init(key, d_in):
        return _uniform_all(key, {"w_x": (d_in, d_hidden), "w_h": (fast, fast),
                                  "w_p": (context, fast), "b": (fast,)}, d_hidden)

    def project(params, x):  # [A x; B x]
        return base.dense(x, params["w_x"])

    def recur(params, state, u_t):
        h, s = state.hs[..., :fast], state.hs[..., fast:]
        s = (1.0 - alpha) * u_t[..., fast:] + alpha * s
        h = jax.nn.sigmoid(u_t[..., :fast] + s @ params["w_p"] + h @ params["w_h"] + params["b"])
        hs = jnp.concatenate([h, s], axis=-1)
        return SCRNState(hs), hs

    return _build(
        name=name, d_hidden=d_hidden,
        hparams=dict(d_hidden=d_hidden, d_context=d_context, alpha=alpha), init=init,
        solver=dict(scan_impl=scan_impl, damping=damping, tol=tol, max_iters=max_iters),
        state_type=SCRNState, project=project, recur=recur,
        input_dim=lambda p: p["w_x"].shape[0],
    )


# --------------------------------------------------------------------------------------------
# Sparse Combo Net (RNNs of RNNs)


class ComboNetState(NamedTuple):
    h: jax.Array  # shape=(*B, D), dtype=float32: the modules' states side by side


def _contracting_modules(num_modules: int, size: int, density: float, radius: float,
                         seed: int) -> np.ndarray:
    """blockdiag(W_1, ..., W_k) (D, D), float32: each W_i (size × size) sparse with U(−1, 1)
    entries at a fraction `density` of the off-diagonal places, zero diagonal, scaled so that
    the spectral norm ‖|W_i|‖₂ is `radius` < 1 (drawn by numpy.random.default_rng(seed)).
    Then ρ(|W_i|) <= radius, Kozachkov et al.'s Theorem 1 for ReLU (|W_i| − I Hurwitz), and
    ‖W_i‖₂ <= radius, so ẋ = −x + W_i relu(x) + u contracts in the identity metric at rate
    1 − radius, the metric in which the skew-symmetric feedback keeps the assembly
    contracting."""
    rng = np.random.default_rng(seed)
    blocks = np.zeros((num_modules * size,) * 2)
    for i in range(num_modules):
        w = rng.uniform(-1.0, 1.0, (size, size)) * (rng.random((size, size)) < density)
        np.fill_diagonal(w, 0.0)
        norm = np.linalg.norm(np.abs(w), 2)
        if norm > 0.0:
            w *= radius / norm
        blocks[i * size:(i + 1) * size, i * size:(i + 1) * size] = w
    return blocks.astype(np.float32)


def _feedback_mask(num_modules: int, size: int, feedback_density: float,
                   seed: int) -> np.ndarray:
    """(D, D) float32: ones on the blocks (i, j), i > j, of the module pairs that are coupled,
    each pair with probability `feedback_density` (drawn by default_rng(seed + 1))."""
    rng = np.random.default_rng(seed + 1)
    pairs = np.tril(rng.random((num_modules, num_modules)) < feedback_density, -1)
    return np.kron(pairs, np.ones((size, size))).astype(np.float32)


def _check_combo(name: str, d_hidden: int, num_modules: int, module_seed: int, radius: float,
                 radius_meaning: str, **fractions: float) -> None:
    """The combo nets' shared checks; each of `fractions` must be a number in (0, 1]."""
    base.check_int(name, "d_hidden", d_hidden)
    base.check_int(name, "num_modules", num_modules)
    base.check_int(name, "module_seed", module_seed, minimum=0)
    if d_hidden % num_modules:
        raise ValueError(f"{name}: num_modules must divide d_hidden={d_hidden}; got {num_modules}")
    for field, value in fractions.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ValueError(f"{name}: {field} must be a number in (0, 1]; got {value!r}")
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not 0 <= radius < 1:
        raise ValueError(f"{name}: radius must be a number in [0, 1) ({radius_meaning}); "
                         f"got {radius!r}")


def make_sparse_combo_net(
    *, d_hidden: int = 64, num_modules: int = 4, density: float = 0.5, radius: float = 0.9,
    feedback_density: float = 1.0, dt: float = 0.1, module_seed: int = 0,
    scan_impl: str = "sequential", damping: float = 0.0, tol: float = 1e-6,
    max_iters: int | None = None,
) -> base.Cell:
    """Sparse Combo Net (Kozachkov, Ennis & Slotine 2022, "RNNs of RNNs: Recursive Construction
    of Stable Assemblies of Recurrent Neural Networks"): k fixed contracting RNN modules
    coupled by trained negative feedback, so the assembly contracts by construction.

        h_t = h_{t−1} + dt · (−h_{t−1} + W relu(h_{t−1}) + L h_{t−1} + W_x x_t + b)
        W = blockdiag(W_1, …, W_k)      fixed: sparse, ‖|W_i|‖₂ = radius < 1 (their Theorem 1)
        L = B̃ − B̃ᵀ,  B̃ = B ⊙ Ω          Ω: the blocks (i, j), i > j, of coupled module pairs
        y_t = h_t

    (Euler steps of τẋ = −x + W relu(x) + L x + u with dt = Δt/τ.) The modules contract in the
    identity metric, and the skew-symmetric feedback keeps the assembly contracting whatever B
    is (the authors' code uses the metric M = 0.5 I, where their L = B̃ − M B̃ᵀ M⁻¹ is this L);
    the Euler steps inherit it when dt < 2(1 − radius) / (1 + radius + ‖L‖₂)² (sufficient:
    forward Euler expands the rotations of a large L, where the continuous system does not).
    W and Ω are constants of the cell drawn from `module_seed` (numpy, at construction: every
    seed of a run shares them; `_contracting_modules`, `_feedback_mask`); B, W_x and b are
    trained.
    Module size D / k. The paper's text could not be read here: the construction follows the
    authors' helper code and reimplementations (BUILD_NOTES, "Cells and models"); their module
    density, weight scale and dt were not found, so `density`, `radius` (a scaling in place of
    their rejection sampling) and `dt` are this cell's own defaults.
    Init: W_x, b, B U(±1/sqrt(D)). Parameters: D·(d_in + 1) + D² (B is stored whole; only its
    masked blocks act).
    """
    name = "sparse_combo_net"
    _check_combo(name, d_hidden, num_modules, module_seed, radius, "Theorem 1 needs ρ(|W_i|) < 1",
                 density=density, feedback_density=feedback_density, dt=dt)
    size = d_hidden // num_modules
    modules = jnp.asarray(_contracting_modules(num_modules, size, density, radius, module_seed))
    mask = jnp.asarray(_feedback_mask(num_modules, size, feedback_density, module_seed))

    def init(key, d_in):
        return _uniform_all(key, {"w_x": (d_in, d_hidden), "b": (d_hidden,),
                                  "w_b": (d_hidden, d_hidden)}, d_hidden)

    def recur(params, state, u_t):
        coupled = params["w_b"] * mask
        feedback = coupled - coupled.T  # L, skew-symmetric
        h = state.h
        h = h + dt * (-h + jax.nn.relu(h) @ modules.T + h @ feedback.T + u_t)
        return ComboNetState(h), h

    return _build(
        name=name, d_hidden=d_hidden,
        hparams=dict(d_hidden=d_hidden, num_modules=num_modules, density=density,
                     radius=radius, feedback_density=feedback_density, dt=dt,
                     module_seed=module_seed), init=init,
        solver=dict(scan_impl=scan_impl, damping=damping, tol=tol, max_iters=max_iters),
        state_type=ComboNetState, project=_affine_projection, recur=recur,
        input_dim=lambda p: p["w_x"].shape[0],
    )


# Taylor terms and the most squarings of `_orthogonal` (the remainder after 12 terms at norm
# <= 1 is ~1/13!). Each squaring doubles the rounding error: in float32 (16 x 16, against
# scipy's expm, 2026-12-02) the largest entry error is 6e-8 at ‖S‖_F = 1, 1e-5 at 1e3, 3e-4 at
# 1e4 and 1e-3 at 6e4, and QᵀQ − I alike; past ~2^17 the series runs at norms above 2 and the
# result is wrong (NaN by 1e6). Trained parameters stay near their init norm (~1); the
# contraction holds up to that orthogonality error, which the margin 1 − radius absorbs.
_TAYLOR_TERMS = 12
_MAX_SQUARINGS = 16


def _orthogonal(z: jax.Array) -> jax.Array:
    """exp(S), S = triu(Z, 1) − triu(Z, 1)ᵀ skew-symmetric, for Z (..., n, n): an orthogonal
    matrix (the parameterisation of U and V in the SVD Combo Net reference code).

    Scaling and squaring with a Taylor series, in matmuls only: exp(S) = exp(S / 2^j)^(2^j)
    with j = ceil(log2 ‖S‖_F) (clipped to [0, 16]), exp(S / 2^j) by its first 12 Taylor terms.
    No LAPACK call (jax.scipy.linalg.expm solves a linear system; XLA:CPU's batched LAPACK can
    deadlock, BUILD_NOTES "Cells and models"); the squarings past j are skipped by a select,
    so the function is differentiable everywhere and its shape static.
    """
    upper = jnp.triu(z, 1)
    skew = upper - jnp.swapaxes(upper, -1, -2)
    norm = jnp.sqrt(jnp.sum(skew * skew, axis=(-2, -1), keepdims=True))
    squarings = jnp.clip(jnp.ceil(jnp.log2(jnp.maximum(norm, 1.0))), 0, _MAX_SQUARINGS)
    scaled = skew / 2.0**squarings
    eye = jnp.broadcast_to(jnp.eye(z.shape[-1], dtype=z.dtype), z.shape)
    term, total = eye, eye
    for k in range(1, _TAYLOR_TERMS + 1):
        term = term @ scaled / k
        total = total + term
    for i in range(_MAX_SQUARINGS):
        total = jnp.where(i < squarings, total @ total, total)
    return total


def make_svd_combo_net(
    *, d_hidden: int = 64, num_modules: int = 4, radius: float = 0.9,
    feedback_density: float = 1.0, dt: float = 0.1, module_seed: int = 0,
    scan_impl: str = "sequential", damping: float = 0.0, tol: float = 1e-6,
    max_iters: int | None = None,
) -> base.Cell:
    """SVD Combo Net (Kozachkov, Ennis & Slotine 2022, "RNNs of RNNs"): k trained RNN modules,
    each contracting by its parameterisation, coupled by trained negative feedback.

        h_t = h_{t−1} + dt · (−h_{t−1} + W relu(h_{t−1}) + L h_{t−1} + W_x x_t + b)
        W = blockdiag(W_1, …, W_k),  W_i = Θ_i⁻¹ U_i Σ_i V_iᵀ Θ_i
        U_i, V_i = exp(skew)  (orthogonal),  Σ_i = radius · diag(exp(−z_i²)),  Θ = diag(exp(θ))
        L = B̃ − Θ⁻² B̃ᵀ Θ²,   B̃ = B ⊙ Ω   (Ω: the blocks (i, j), i > j, of coupled module pairs)
        y_t = h_t

    Why it contracts: in the coordinates Θ h the Jacobian is −I + U Σ Vᵀ D + (C − Cᵀ), with
    D = diag(relu') ∈ [0, 1] (diagonal, so it commutes with Θ) and C = Θ B̃ Θ⁻¹; its symmetric
    part is at most −(1 − radius) I, so the flow contracts in the metric Θ² at rate
    1 − radius whatever U, V, z, θ and B are (the modules' metric Θ_i² is their Theorem 5's;
    L makes Θ² L skew-symmetric, the paper's negative-feedback coupling in that metric). The
    Euler steps contract too when dt < 2(1 − radius) / (1 + radius + ‖C − Cᵀ‖₂)², as for
    `sparse_combo_net`.
    Sources (BUILD_NOTES, "Cells and models"): the authors' repository's stability check (the
    singular values of Θ W Θ⁻¹ at most 1) and a third-party implementation of the network
    (U, V the matrix exponentials of skew matrices, Σ = exp(−z²) / g for a nonlinearity of
    slope <= g, a positive diagonal Θ). This cell's own choices: the leak fixed at −1 (the
    implementation trains a positive leak a, which contracts only while a > σ_max g), radius
    < 1 in place of 1/g (g = 1 for ReLU) for a strict margin, Θ = exp(θ) in place of |θ| + 1e-5
    (init θ = 0: the identity metric), the input drive W_x x + b, and the feedback of
    `sparse_combo_net`. `_orthogonal` computes the exponentials without LAPACK.
    Init: W_x, b, B U(±1/sqrt(D)); the skew and z parameters U(±1/sqrt(D / k)); θ = 0. Ω is
    drawn from `module_seed` (`_feedback_mask`). Parameters: D·(d_in + 1) + D² + k·(2 (D/k)² +
    D/k) + D (B and the skew parameters are stored whole; only their masked parts act).
    """
    name = "svd_combo_net"
    _check_combo(name, d_hidden, num_modules, module_seed, radius,
                 "the modules' largest singular value in their metric",
                 feedback_density=feedback_density, dt=dt)
    size = d_hidden // num_modules
    mask = jnp.asarray(_feedback_mask(num_modules, size, feedback_density, module_seed))

    def init(key, d_in):
        outer, inner = jax.random.split(key)
        params = _uniform_all(outer, {"w_x": (d_in, d_hidden), "b": (d_hidden,),
                                      "w_b": (d_hidden, d_hidden)}, d_hidden)
        params.update(_uniform_all(inner, {"skew_u": (num_modules, size, size),
                                           "skew_v": (num_modules, size, size),
                                           "z": (num_modules, size)}, size))
        params["theta"] = jnp.zeros((d_hidden,), jnp.float32)
        return params

    def prepare(params):
        """{w_x, b, modules W (D, D), feedback L (D, D)} from the trained parameters."""
        theta = jnp.exp(params["theta"]).reshape(num_modules, size)
        sigma = radius * jnp.exp(-params["z"] ** 2)
        core = (_orthogonal(params["skew_u"]) * sigma[:, None, :]) @ jnp.swapaxes(
            _orthogonal(params["skew_v"]), -1, -2)  # U Σ Vᵀ per module
        blocks = core * theta[:, None, :] / theta[:, :, None]  # Θ⁻¹ (U Σ Vᵀ) Θ
        modules = jax.scipy.linalg.block_diag(*blocks)
        metric = jnp.exp(2.0 * params["theta"])  # Θ²
        coupled = params["w_b"] * mask
        feedback = coupled - coupled.T * metric[None, :] / metric[:, None]
        return {"w_x": params["w_x"], "b": params["b"], "modules": modules,
                "feedback": feedback}

    def recur(prepared, state, u_t):
        h = state.h
        drive = jax.nn.relu(h) @ prepared["modules"].T + h @ prepared["feedback"].T
        h = h + dt * (-h + drive + u_t)
        return ComboNetState(h), h

    return _build(
        name=name, d_hidden=d_hidden,
        hparams=dict(d_hidden=d_hidden, num_modules=num_modules, radius=radius,
                     feedback_density=feedback_density, dt=dt, module_seed=module_seed),
        init=init, prepare=prepare,
        solver=dict(scan_impl=scan_impl, damping=damping, tol=tol, max_iters=max_iters),
        state_type=ComboNetState, project=_affine_projection, recur=recur,
        input_dim=lambda p: p["w_x"].shape[0],
    )


CELLS = {
    "elman": make_elman,
    "lstm": make_lstm,
    "gru": make_gru,
    "lem": make_lem,
    "bilinear": make_bilinear,
    "scrn": make_scrn,
    "sparse_combo_net": make_sparse_combo_net,
    "svd_combo_net": make_svd_combo_net,
}
