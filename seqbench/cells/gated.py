"""Gated (input-dependent) diagonal linear recurrences: Mamba/S6, RG-LRU, GateLoop, minGRU, minLSTM.

Every cell here is a first-order recurrence whose transition depends on the input only,

    h_t = a(x_t) * h_{t-1} + b(x_t)          (elementwise over the state's feature axes)

so `scan` computes all coefficients at once and runs `kernels.linear_scan` over the flattened
state features (the parallel form), while `step` applies the same update once; both share the
coefficient and read-out functions below, so they compute the same function.

`negative_eigenvalues=True` (Grazzi et al. 2025, "Unlocking State-Tracking in Linear RNNs
Through Negative Eigenvalues") maps each transition a in [0, 1] to 2a - 1 in [-1, 1] (for
GateLoop: its magnitude), leaving the input term unchanged; this is the recipe of the authors'
Mamba code (`deltaA = exp(delta * A) * 2 - 1`, input `delta * B * x` as before). With it a
diagonal linear RNN can flip the sign of its state, which parity needs.

Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from seqbench import kernels
from seqbench.cells.base import (
    SCAN_IMPLS,
    Cell,
    DiagonalForm,
    causal_depthwise_conv,
    check_bool,
    check_choice,
    check_int,
    check_scan_impl,
    complex64,
    dense,
    lecun_normal,
    make_cell,
    uniform_init,
)

FAMILY = "gated"
_MAX_SQRT_GRADIENT = 1000.0  # RG-LRU: d sqrt(x)/dx clipped here near x = 0 (as in RecurrentGemma)


# ----------------------------------------------------------------------------- shared helpers


def _check_common(cell: str, d_hidden, negative_eigenvalues, scan_impl) -> None:
    check_int(cell, "d_hidden", d_hidden)
    check_bool(cell, "negative_eigenvalues", negative_eigenvalues)
    check_scan_impl(cell, scan_impl, SCAN_IMPLS)


def _compiled(init):
    """`init` as one compiled program per d_in (eagerly, each op of a fresh shape compiles)."""
    return jax.jit(init, static_argnums=1)


def _signed(a: jax.Array, negative_eigenvalues: bool) -> jax.Array:
    """Grazzi et al. 2025: a transition in [0, 1] becomes 2a - 1 in [-1, 1]."""
    return 2.0 * a - 1.0 if negative_eigenvalues else a


def _scan_features(a, b, h0, feature_ndim: int, impl: str):
    """`kernels.linear_scan` over a state with `feature_ndim` trailing feature axes *F.

    a broadcasts against b (..., T, *F); h0 is (..., *F). Returns (h (..., T, *F), h_last
    (..., *F)).
    """
    a = jnp.broadcast_to(a, b.shape)
    lead = b.shape[: b.ndim - feature_ndim]  # (..., T)
    flat = lambda x, shape: x.reshape(shape + (-1,))
    h, h_last = kernels.linear_scan(
        flat(a, lead), flat(b, lead), flat(h0, h0.shape[: h0.ndim - feature_ndim]), impl=impl
    )
    return h.reshape(b.shape), h_last.reshape(h0.shape)


def _diagonal_cell(
    *, name, hparams, state_shape, state_dtype, init, input_dim, coefficients, readout,
    unit_axes=None,
) -> Cell:
    """A cell whose state (*B, *state_shape) follows h = a(x) * h + b(x), y = readout(h, aux).

    `coefficients(params, x) -> (a, b, aux)` and `readout(params, h, aux) -> y` act
    elementwise over the leading axes of x, with or without a time axis. `unit_axes` (cells
    with one state axis whose coefficient parameters are columnar): {parameter: its unit axis},
    which makes the cell trainable by exact RTRL (`base.DiagonalForm`).
    """
    feature_ndim = len(state_shape)

    def initial_state(params, batch_shape):
        return jnp.zeros(tuple(batch_shape) + state_shape, state_dtype)

    def step(params, h, x_t):
        a, b, aux = coefficients(params, x_t)
        h = a * h + b
        return h, readout(params, h, aux)

    def scan(params, h0, xs):
        a, b, aux = coefficients(params, xs)
        hs, h_last = _scan_features(a, b, h0, feature_ndim, hparams["scan_impl"])
        return h_last, readout(params, hs, aux)

    diagonal = None if unit_axes is None else DiagonalForm(
        coefficients, readout, unit_axes, hparams["scan_impl"])
    return make_cell(
        name=name, family=FAMILY, d_out=hparams["d_hidden"], init=_compiled(init),
        initial_state=initial_state, step=step, scan=scan, input_dim=input_dim, hparams=hparams,
        diagonal=diagonal,
    )


# ----------------------------------------------------------------------------- Mamba / S6


class MambaState(NamedTuple):
    ssm: jax.Array  # shape=(*B, E, N), dtype=float32
    conv: jax.Array | None  # shape=(*B, d_conv - 1, E): the conv's last inputs; None without block


def make_mamba(
    *,
    d_hidden: int = 64,
    d_state: int = 16,
    block: bool = False,
    expand: int = 2,
    d_conv: int = 4,
    negative_eigenvalues: bool = False,
    scan_impl: str = "auto",
):
    """Mamba's selective state-space model S6 (Gu & Dao 2023), optionally inside the Mamba block.

    S6 on E channels u_t (E = D = d_hidden; E = expand·D with `block`), N = d_state each:

        Δ_t = softplus(W_Δ (W_r u_t) + b_Δ)            (E,)   low rank R = ceil(D / 16)
        B_t = W_B u_t,  C_t = W_C u_t                  (N,)
        A   = -exp(A_log)                              (E, N)
        h_t = Ā_t ⊙ h_{t-1} + Δ_t B_t u_t,   Ā_t = exp(Δ_t A)    (B̄ u ≈ Δ B u, as in Mamba)
        y_t = C_t h_t + D ⊙ u_t

    Without `block`, u_t = W_in x_t (d_in -> d_hidden, no bias) and y_t is the output. With
    `block` (Mamba's block, minus the residual and norm): [x'; z] = W_in x_t (d_in -> 2E),
    u = SiLU(causal depthwise conv_{d_conv}(x') + conv bias), output = W_out (y_t ⊙ SiLU(z))
    (E -> D). The conv's last d_conv - 1 inputs x' are carried in the state, so stepping
    and scanning (in pieces) agree; `expand` and `d_conv` are used with `block` only.
    `negative_eigenvalues`: Ā_t = 2 exp(Δ_t A) - 1 (Grazzi et al. 2025's Mamba code), the input
    term unchanged. `scan_impl`: on a CPU ("auto", "sequential") one fused loop over time that
    never materialises the (T, E, N) coefficients; "associative", "chunked", "pallas" (and
    "auto" on an accelerator) run `kernels.linear_scan` over E * N features (`_selective_scan`).

    Initialisation (Mamba's reference code): A_n = -(n + 1) (S4D-Real) for every channel,
    D = 1, b_Δ = softplus⁻¹(Δ₀) with Δ₀ log-uniform in [0.001, 0.1] (floored at 1e-4);
    W_Δ ~ U(±R^-1/2); every other weight and the conv bias ~ U(±1/sqrt(fan_in)) (PyTorch's
    default; the conv's fan_in is d_conv). Projections have no bias.

    Here B_t, C_t, A and D are S6's parameters (the paper's names), not shape letters.

    Parameters (E as above, R = ceil(D / 16), N = d_state):
        without block:  d_in*E + E*(R + 2N) + R*E + E + E*N + E
        with block:     d_in*2E + (d_conv*E + E) + E*(R + 2N) + R*E + E + E*N + E + E*D
    """
    name = "mamba"
    _check_common(name, d_hidden, negative_eigenvalues, scan_impl)
    check_int(name, "d_state", d_state)
    check_bool(name, "block", block)
    check_int(name, "expand", expand)
    check_int(name, "d_conv", d_conv)
    hparams = dict(
        d_hidden=d_hidden, d_state=d_state, block=block, expand=expand, d_conv=d_conv,
        negative_eigenvalues=negative_eigenvalues, scan_impl=scan_impl,
    )
    channels = expand * d_hidden if block else d_hidden
    rank = math.ceil(d_hidden / 16)

    def init(key, d_in):
        keys = jax.random.split(key, 9)
        e, n = channels, d_state
        dt = jnp.exp(
            jax.random.uniform(keys[0], (e,), minval=math.log(1e-3), maxval=math.log(1e-1))
        )
        dt = jnp.maximum(dt, 1e-4)
        params = {
            "w_in": uniform_init(keys[1], (d_in, 2 * e if block else e), d_in),
            "w_r": uniform_init(keys[2], (e, rank), e),  # Δ's low-rank down-projection
            "w_b": uniform_init(keys[3], (e, n), e),
            "w_c": uniform_init(keys[4], (e, n), e),
            "w_dt": uniform_init(keys[5], (rank, e), rank),
            "b_dt": dt + jnp.log(-jnp.expm1(-dt)),  # softplus⁻¹(dt)
            "a_log": jnp.log(jnp.broadcast_to(jnp.arange(1, n + 1, dtype=jnp.float32), (e, n))),
            "d": jnp.ones((e,), jnp.float32),
        }
        if block:
            params["conv_w"] = uniform_init(keys[6], (d_conv, e), d_conv)
            params["conv_b"] = uniform_init(keys[7], (e,), d_conv)
            params["w_out"] = uniform_init(keys[8], (e, d_hidden), e)
        return params

    def initial_state(params, batch_shape):
        batch_shape = tuple(batch_shape)
        ssm = jnp.zeros(batch_shape + (channels, d_state), jnp.float32)
        conv = jnp.zeros(batch_shape + (d_conv - 1, channels), jnp.float32) if block else None
        return MambaState(ssm, conv)

    def inputs(params, conv, xs):
        """xs (*B, T, d_in) -> u (*B, T, E), gate z (*B, T, E) or None, new conv buffer."""
        if not block:
            return dense(xs, params["w_in"]), None, None
        x, z = jnp.split(dense(xs, params["w_in"]), 2, axis=-1)
        x, conv = causal_depthwise_conv(params["conv_w"], params["conv_b"], conv, x)
        return jax.nn.silu(x), z, conv

    def outputs(params, read, u, z):
        """The cell's output from S6's readout C_t h_t (..., E)."""
        y = read + params["d"] * u
        if block:
            y = dense(y * jax.nn.silu(z), params["w_out"])
        return y

    def step(params, state, x_t):
        u, z, conv = inputs(params, state.conv, x_t[..., None, :])
        u, z = u[..., 0, :], None if z is None else z[..., 0, :]
        h, read = _s6_step(params, negative_eigenvalues, state.ssm, _s6_inputs(params, u))
        return MambaState(h, conv), outputs(params, read, u, z)

    def scan(params, state, xs):
        u, z, conv = inputs(params, state.conv, xs)
        read, h_last = _selective_scan(params, u, state.ssm, negative_eigenvalues, scan_impl)
        return MambaState(h_last, conv), outputs(params, read, u, z)

    return make_cell(
        name=name, family=FAMILY, d_out=d_hidden, init=_compiled(init), initial_state=initial_state,
        step=step, scan=scan, input_dim=lambda p: p["w_in"].shape[0], hparams=hparams,
    )


def _s6_inputs(params, u):
    """S6's per-token inputs for u (..., E): (Δ (..., E), Δ ⊙ u (..., E), B (..., N),
    C (..., N))."""
    dt = jax.nn.softplus(dense(dense(u, params["w_r"]), params["w_dt"]) + params["b_dt"])
    return dt, dt * u, dense(u, params["w_b"]), dense(u, params["w_c"])


def _s6_coefficients(params, negative_eigenvalues, dt, du, b):
    """Ā = exp(Δ A) (or 2 exp(Δ A) − 1) and the input term Δ B u, each (..., E, N)."""
    a = _signed(jnp.exp(dt[..., None] * -jnp.exp(params["a_log"])), negative_eigenvalues)
    return a, du[..., None] * b[..., None, :]


def _s6_step(params, negative_eigenvalues, h, token):
    """One step of S6 from h (..., E, N) on `token` = `_s6_inputs` of one step: (h_t, C_t h_t)."""
    dt, du, b, c = token
    a, bu = _s6_coefficients(params, negative_eigenvalues, dt, du, b)
    h = a * h + bu
    return h, jnp.einsum("...en,...n->...e", h, c)


def _selective_scan(params, u, h0, negative_eigenvalues, impl):
    """S6 over the time axis of u (..., T, E) from h0 (..., E, N): (C_t h_t (..., T, E), h_T).

    impl "sequential" is one loop over time whose step forms Ā_t and Δ_t B_t u_t and reads
    C_t h_t out (`_s6_step`, the cell's `step`), so the only (T, E, N)-sized array is the states
    the loop saves for the gradient (the step is rematerialised, `jax.checkpoint`, in the
    backward pass): on a CPU the scan runs forward and backward 2.4x faster than over the
    materialised coefficients, a training step 1.5-1.7x (BUILD_NOTES, "Mamba's fused
    sequential scan"). "associative", "chunked" and "pallas" run
    `kernels.linear_scan` on the materialised (..., T, E, N) coefficients, the layout a
    parallel kernel needs. "auto": the fused loop when compiled for a CPU, else the kernel's
    own choice for the platform (`lax.platform_dependent`, as `kernels.linear_scan`).
    """
    fused = lambda params, u, h0: _fused_selective_scan(params, u, h0, negative_eigenvalues)
    kernel = lambda params, u, h0: _kernel_selective_scan(params, u, h0, negative_eigenvalues,
                                                          impl)
    if impl == "sequential":
        return fused(params, u, h0)
    if impl == "auto":
        return jax.lax.platform_dependent(params, u, h0, cpu=fused, default=kernel)
    return kernel(params, u, h0)


def _fused_selective_scan(params, u, h0, negative_eigenvalues):
    """`_selective_scan`'s fused loop: `_s6_step` under `lax.scan`, time-major."""
    tokens = tuple(jnp.moveaxis(x, -2, 0) for x in _s6_inputs(params, u))
    step = jax.checkpoint(lambda h, token: _s6_step(params, negative_eigenvalues, h, token))
    h_last, read = jax.lax.scan(step, h0, tokens)
    # the readout in the input dtype, as the kernel path's (platform_dependent needs both equal)
    return jnp.moveaxis(read, 0, -2).astype(u.dtype), h_last


def _kernel_selective_scan(params, u, h0, negative_eigenvalues, impl):
    """`_selective_scan` on `kernels.linear_scan` (impl) over materialised coefficients."""
    dt, du, b, c = _s6_inputs(params, u)
    a, bu = _s6_coefficients(params, negative_eigenvalues, dt, du, b)
    hs, h_last = _scan_features(a, bu, h0, 2, impl)
    return jnp.einsum("...en,...n->...e", hs, c), h_last


# ----------------------------------------------------------------------------- RG-LRU


def make_rg_lru(
    *,
    d_hidden: int = 64,
    c: float = 8.0,
    negative_eigenvalues: bool = False,
    scan_impl: str = "auto",
    convention: str = "griffin",
    a_min: float = 0.9,
    a_max: float = 0.999,
):
    """The Real-Gated Linear Recurrent Unit of Griffin/Hawk (De et al. 2024; RecurrentGemma).

        x̃_t = W_in x_t                                   (d_in -> D = d_hidden, no bias)
        r_t = σ(W_a x_t + b_a),   i_t = σ(W_x x_t + b_x)   (recurrence and input gates)
        log a_t = c · r_t · log σ(Λ) = -c · r_t · softplus(-Λ)          (c = 8)
        h_t = a_t ⊙ h_{t-1} + sqrt(1 - a_t²) ⊙ (i_t ⊙ x̃_t),   y_t = h_t

    In Griffin the RG-LRU sits after a linear layer and a conv inside the recurrent block and
    its gates read the same (d_rnn-wide) input as the recurrence; here the cell is the RG-LRU
    with its own input projection x̃ = W_in x, and the gates read x itself (a linear map of x
    either way, without capping their rank at D). sqrt(1 - a²) is computed as
    sqrt(-expm1(2 log a)) (exact near a = 1), with RecurrentGemma's square-root whose gradient
    is clipped at 1000 near 0. `negative_eigenvalues`: a_t -> 2 a_t - 1 in (-1, 1), and the
    normaliser stays sqrt(1 - (2a - 1)²) = 2 sqrt(a (1 - a)). Runs on `kernels.linear_scan`.

    Initialisation: Λ such that a^c = σ(Λ)^c is uniform in [a_min, a_max] = [0.9, 0.999], as the
    paper states (RecurrentGemma's code instead draws a itself with a² uniform in [0.81, 0.998],
    which puts a^c in [0.43, 0.992]). Since r_t ∈ (0, 1), every a_t = (a^c)^{r_t} starts in
    [a_min, 1): with `negative_eigenvalues` a lower `a_min` lets 2 a_t − 1 start below 0.
    W_in, W_a, W_x ~ N(0, 1/d_in) (LeCun normal, RecurrentGemma's choice), b_a = b_x = 0.

    `convention`: "griffin" (default) applies the paper's equation at every step.
    "recurrentgemma" follows RecurrentGemma's code, which at the first token of a document
    (`segment_pos == 0`) sets a_0 = 0 and the input multiplier to 1: h_0 = i_0 ⊙ x̃_0, whatever
    the state before, without the sqrt(1 − a²) factor (the outputs then differ by up to 0.54 at
    t = 0, less after). The state then carries a flag per sequence (`RecurrentGemmaState`), so
    a sequence scanned in pieces resets once; an initial-state intervention is erased at the
    first token; there is no RTRL form.

    Parameters: 3*d_in*D + 3*D (W_in, W_a, W_x; b_a, b_x, Λ).
    """
    name = "rg_lru"
    _check_common(name, d_hidden, negative_eigenvalues, scan_impl)
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
        raise ValueError(f"{name}: c must be a positive number (the paper uses 8); got {c!r}")
    check_choice(name, "convention", convention, RG_LRU_CONVENTIONS)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a_min, a_max)) \
            or not 0 < a_min < a_max < 1:
        raise ValueError(f"{name}: a_min and a_max bound a^c at init and need "
                         f"0 < a_min < a_max < 1 (the paper: 0.9, 0.999); got {a_min!r}, {a_max!r}")
    hparams = dict(
        d_hidden=d_hidden, c=c, negative_eigenvalues=negative_eigenvalues, scan_impl=scan_impl,
        convention=convention, a_min=a_min, a_max=a_max,
    )

    def init(key, d_in):
        keys = jax.random.split(key, 4)
        # a^c ~ U[a_min, a_max]  =>  log a = log(u) / c,  Λ = logit(a) = log a - log(1 - a).
        u = jax.random.uniform(keys[0], (d_hidden,), minval=a_min, maxval=a_max)
        log_a = jnp.log(u) / c
        return {
            "w_in": lecun_normal(keys[1], (d_in, d_hidden), d_in),
            "w_a": lecun_normal(keys[2], (d_in, d_hidden), d_in),
            "b_a": jnp.zeros((d_hidden,), jnp.float32),
            "w_x": lecun_normal(keys[3], (d_in, d_hidden), d_in),
            "b_x": jnp.zeros((d_hidden,), jnp.float32),
            "lam": log_a - jnp.log(-jnp.expm1(log_a)),
        }

    def gated_input(params, x):  # i ⊙ x̃
        return jax.nn.sigmoid(dense(x, params["w_x"]) + params["b_x"]) * dense(x, params["w_in"])

    def coefficients(params, x):
        r = jax.nn.sigmoid(dense(x, params["w_a"]) + params["b_a"])
        log_a = -c * r * jax.nn.softplus(-params["lam"])
        a = jnp.exp(log_a)
        if negative_eigenvalues:  # 1 - (2a - 1)² = 4 a (1 - a)
            a, norm = 2.0 * a - 1.0, 2.0 * _sqrt_bounded_grad(a * -jnp.expm1(log_a))
        else:
            norm = _sqrt_bounded_grad(-jnp.expm1(2.0 * log_a))
        return a, norm * gated_input(params, x), None

    if convention == "recurrentgemma":
        return _first_token_reset_cell(name, hparams, init, coefficients, gated_input)
    return _diagonal_cell(
        name=name, hparams=hparams, state_shape=(d_hidden,), state_dtype=jnp.float32, init=init,
        input_dim=lambda p: p["w_in"].shape[0], coefficients=coefficients,
        readout=lambda params, h, aux: h,
        unit_axes={"w_in": 1, "w_a": 1, "w_x": 1, "b_a": 0, "b_x": 0, "lam": 0},
    )


RG_LRU_CONVENTIONS = ("griffin", "recurrentgemma")


class RecurrentGemmaState(NamedTuple):
    h: jax.Array  # shape=(*B, D), dtype=float32
    started: jax.Array  # shape=(*B,), dtype=int32: 1 once the sequence's first token is in


def _first_token_reset_cell(name, hparams, init, coefficients, gated_input) -> Cell:
    """The RG-LRU with RecurrentGemma's first-token rule: where `started` is 0, the step's
    coefficients become a = 0, b = gated_input (h = i ⊙ x̃); everywhere else the recurrence
    h = a h + b of `coefficients`."""

    def initial_state(params, batch_shape):
        batch_shape = tuple(batch_shape)
        return RecurrentGemmaState(jnp.zeros(batch_shape + (hparams["d_hidden"],), jnp.float32),
                                   jnp.zeros(batch_shape, jnp.int32))

    def first_step(params, state, a, b, x):
        first = (state.started == 0)[..., None]
        return jnp.where(first, 0.0, a), jnp.where(first, gated_input(params, x), b)

    def step(params, state, x_t):
        a, b, _ = coefficients(params, x_t)
        a, b = first_step(params, state, a, b, x_t)
        h = a * state.h + b
        return RecurrentGemmaState(h, jnp.ones_like(state.started)), h

    def scan(params, state, xs):
        a, b, _ = coefficients(params, xs)
        a0, b0 = first_step(params, state, a[..., 0, :], b[..., 0, :], xs[..., 0, :])
        a, b = a.at[..., 0, :].set(a0), b.at[..., 0, :].set(b0)
        hs, h_last = _scan_features(a, b, state.h, 1, hparams["scan_impl"])
        return RecurrentGemmaState(h_last, jnp.ones_like(state.started)), hs

    return make_cell(
        name=name, family=FAMILY, d_out=hparams["d_hidden"], init=_compiled(init),
        initial_state=initial_state, step=step, scan=scan,
        input_dim=lambda p: p["w_in"].shape[0], hparams=hparams,
    )


@jax.custom_jvp
def _sqrt_bounded_grad(x):
    """sqrt(x) whose derivative is clipped at _MAX_SQRT_GRADIENT (finite at x = 0)."""
    return jnp.sqrt(x)


@_sqrt_bounded_grad.defjvp
def _sqrt_bounded_grad_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    floor = 1.0 / (4.0 * _MAX_SQRT_GRADIENT**2)
    return jnp.sqrt(x), 0.5 * dx / jnp.sqrt(jnp.maximum(x, floor))


# ----------------------------------------------------------------------------- GateLoop


def make_gateloop(
    *,
    d_hidden: int = 64,
    num_heads: int = 4,
    negative_eigenvalues: bool = False,
    scan_impl: str = "auto",
):
    """GateLoop (Katsch 2023, "GateLoop: Fully Data-Controlled Linear Recurrence for Sequence
    Modeling"): data-controlled complex transitions on an outer-product state, per head.

    With H = num_heads heads of K = V = D / H dimensions (D = d_hidden), per head h:

        q_t, k_t = W_q x_t, W_k x_t  (K,)     v_t = W_v x_t  (V,)      (real)
        a_t = σ(W_m x_t) · exp(i · W_θ x_t)   (K,) complex
        S_t = a_t ⊙ S_{t-1} + k_t v_tᵀ        (K, V) complex, a_t broadcast over V
        o_t = Re(q_tᵀ S_t) = q_tᵀ Re(S_t)     (V,)
        y_t = W_o [o_t^1; ...; o_t^H]         (H·V -> D)

    The complex output is made real by taking its real part (q is real, so this is q against
    Re(S)); the phases still act through the rotations S carries forward. The paper's model
    also gates the output (RetNet-style) and normalises; here the cell is the GateLoop operator
    with its projections only. `negative_eigenvalues`: the magnitude σ(W_m x) -> 2σ(W_m x) - 1
    in (-1, 1). As `kernels.matrix_scan` takes real gates only, this runs `kernels.linear_scan`
    on the H·K·V complex entries of S (a broadcast over V): memory O(T·H·K·V).

    Initialisation: every weight ~ U(±1/sqrt(fan_in)) (PyTorch's default); no biases.
    Parameters: 5*d_in*D + D² (W_q, W_k, W_v, W_m, W_θ; W_o).
    """
    name = "gateloop"
    _check_common(name, d_hidden, negative_eigenvalues, scan_impl)
    check_int(name, "num_heads", num_heads)
    if d_hidden % num_heads:
        raise ValueError(
            f"{name}: num_heads must divide d_hidden={d_hidden}; got num_heads={num_heads}"
        )
    hparams = dict(
        d_hidden=d_hidden, num_heads=num_heads, negative_eigenvalues=negative_eigenvalues,
        scan_impl=scan_impl,
    )
    heads, dim = num_heads, d_hidden // num_heads  # K = V = dim

    def init(key, d_in):
        keys = jax.random.split(key, 6)
        names = ("w_q", "w_k", "w_v", "w_m", "w_theta")
        params = {n: uniform_init(k, (d_in, d_hidden), d_in) for n, k in zip(names, keys)}
        params["w_out"] = uniform_init(keys[5], (d_hidden, d_hidden), d_hidden)
        return params

    def coefficients(params, x):
        per_head = lambda w: dense(x, params[w]).reshape(x.shape[:-1] + (heads, dim))
        q, k, v = per_head("w_q"), per_head("w_k"), per_head("w_v")
        magnitude = _signed(jax.nn.sigmoid(per_head("w_m")), negative_eigenvalues)
        phase = per_head("w_theta")
        a = complex64(magnitude * jnp.cos(phase), magnitude * jnp.sin(phase))
        b = (k[..., :, None] * v[..., None, :]).astype(jnp.complex64)
        return a[..., None], b, q  # a (..., H, K, 1) broadcasts over V

    def readout(params, s, q):
        o = jnp.einsum("...hk,...hkv->...hv", q, jnp.real(s))
        return dense(o.reshape(o.shape[:-2] + (d_hidden,)), params["w_out"])

    return _diagonal_cell(
        name=name, hparams=hparams, state_shape=(heads, dim, dim), state_dtype=jnp.complex64,
        init=init, input_dim=lambda p: p["w_q"].shape[0], coefficients=coefficients,
        readout=readout,
    )


# ----------------------------------------------------------------------------- minGRU / minLSTM


def make_mingru(
    *, d_hidden: int = 64, negative_eigenvalues: bool = False, scan_impl: str = "auto"
):
    """minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gates see x only.

        z_t = σ(W_z x_t + b_z),   h̃_t = W_h x_t + b_h
        h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t,   y_t = h_t

    The plain (not log-space) version, run in parallel by `kernels.linear_scan` with
    a = 1 - z, b = z ⊙ h̃; the paper's log-space variant (h̃ = g(W_h x), g(x) = x + 0.5 for
    x >= 0 else σ(x), for a positive state) is not implemented. `negative_eigenvalues`:
    a = 2(1 - z) - 1 = 1 - 2z in (-1, 1), the input term z ⊙ h̃ unchanged.

    Initialisation: weights and biases ~ U(±1/sqrt(d_in)) (PyTorch's nn.Linear, the paper's).
    Parameters: 2*(d_in*D + D) (D = d_hidden).
    """
    name = "mingru"
    _check_common(name, d_hidden, negative_eigenvalues, scan_impl)
    hparams = dict(
        d_hidden=d_hidden, negative_eigenvalues=negative_eigenvalues, scan_impl=scan_impl
    )

    def coefficients(params, x):
        z = jax.nn.sigmoid(dense(x, params["w_z"]) + params["b_z"])
        h_tilde = dense(x, params["w_h"]) + params["b_h"]
        return _signed(1.0 - z, negative_eigenvalues), z * h_tilde, None

    return _min_rnn(name, hparams, ("z", "h"), coefficients)


def make_minlstm(
    *, d_hidden: int = 64, negative_eigenvalues: bool = False, scan_impl: str = "auto"
):
    """minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): an LSTM whose gates see x only.

        f_t = σ(W_f x_t + b_f),   i_t = σ(W_i x_t + b_i),   h̃_t = W_h x_t + b_h
        f'_t, i'_t = f_t / (f_t + i_t), i_t / (f_t + i_t)
        h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t,   y_t = h_t

    The plain (not log-space) version on `kernels.linear_scan` (a = f', b = i' ⊙ h̃); see
    `make_mingru` for the log-space variant left out. `negative_eigenvalues`: a = 2f' - 1 in
    (-1, 1), the input term i' ⊙ h̃ unchanged.

    Initialisation: weights and biases ~ U(±1/sqrt(d_in)) (PyTorch's nn.Linear, the paper's).
    Parameters: 3*(d_in*D + D) (D = d_hidden).
    """
    name = "minlstm"
    _check_common(name, d_hidden, negative_eigenvalues, scan_impl)
    hparams = dict(
        d_hidden=d_hidden, negative_eigenvalues=negative_eigenvalues, scan_impl=scan_impl
    )

    def coefficients(params, x):
        f = jax.nn.sigmoid(dense(x, params["w_f"]) + params["b_f"])
        i = jax.nn.sigmoid(dense(x, params["w_i"]) + params["b_i"])
        h_tilde = dense(x, params["w_h"]) + params["b_h"]
        return _signed(f / (f + i), negative_eigenvalues), i / (f + i) * h_tilde, None

    return _min_rnn(name, hparams, ("f", "i", "h"), coefficients)


def _min_rnn(name, hparams, gates, coefficients):
    """minGRU/minLSTM: one linear map d_in -> D (weight w_<g>, bias b_<g>) per gate."""
    d_hidden = hparams["d_hidden"]

    def init(key, d_in):
        params = {}
        for gate, k in zip(gates, jax.random.split(key, len(gates))):
            kw, kb = jax.random.split(k)
            params[f"w_{gate}"] = uniform_init(kw, (d_in, d_hidden), d_in)
            params[f"b_{gate}"] = uniform_init(kb, (d_hidden,), d_in)
        return params

    return _diagonal_cell(
        name=name, hparams=hparams, state_shape=(d_hidden,), state_dtype=jnp.float32, init=init,
        input_dim=lambda p: p["w_h"].shape[0], coefficients=coefficients,
        readout=lambda params, h, aux: h,
        unit_axes={name: axis for gate in gates for name, axis in ((f"w_{gate}", 1),
                                                                   (f"b_{gate}", 0))},
    )


CELLS = {
    "mamba": make_mamba,
    "rg_lru": make_rg_lru,
    "gateloop": make_gateloop,
    "mingru": make_mingru,
    "minlstm": make_minlstm,
}
