"""State-space cells: S4D, S5 and LRU, diagonal linear recurrences run by `kernels.linear_scan`.

Every cell here has the same form. A (learned, input-independent) diagonal transition `a` acts
on a state of `state_dim` features (complex modes, or real ones for the real-eigenvalue
variants; S4D: D·N/2 or D·N, S5: N/2, LRU: N):

    h_t = a ⊙ h_{t-1} + b(x_t),        y_t = readout(h_t, x_t)

so `scan` is one `kernels.linear_scan(broadcast(a), b(xs), h0)` and `step` is one line of the
same recurrence. The state is the complex (complex64) or real (float32) vector h of shape
(*B, state_dim); the parameters are float32 arrays, complex numbers stored as `_re`/`_im` pairs.

The input feeds the state through the paper's B; the skip term `D` of S5 and LRU (a diagonal
d_in = d_hidden matrix in the papers) is a dense (d_in, d_hidden) matrix here, so the cells
accept any d_in; S4D, a bank of single-input channels, maps x to d_hidden channels first.

`negative_eigenvalues` (Grazzi et al. 2025, "Unlocking State-Tracking in Linear RNNs Through
Negative Eigenvalues"): the paper's point is that a REAL diagonal transition confined to
[0, 1] cannot represent parity at finite precision; the fix maps a gate g ∈ [0, 1] to
2g − 1 ∈ [−1, 1]. These cells' default transitions are complex, exp(i·phase) times a magnitude
in [0, 1), and their learnable phase already reaches the negative real axis (phase = π), so
the map would not change the set of reachable eigenvalues. The flag is therefore implemented
exactly where the eigenvalues are real: S4D with init="real" (S4D-Real) and LRU with
theta_max=0 (no phase), and raises ValueError elsewhere (complex S4D, S5, the "stable" LRU
whose map already spans [−1, 1)) rather than being a silent no-op.

Shape letters: see `kernels/typing.py` (here D = d_hidden, N = d_state). The papers' A, B, C, D
(the SSM's matrices, `D` the skip term) keep their names in formulas; they are not sizes.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from seqbench import kernels
from seqbench.cells import base

S5_CONVENTIONS = ("seqbench", "s5")  # make_s5: this docstring's choices or the S5 code's
_S5_MAX_REAL = -1e-4  # S5's `clip_eigs`: Re Λ <= -1e-4 keeps every mode strictly stable


# ----------------------------------------------------------------------------- shared helpers






def _check_dt(cell: str, dt_min, dt_max) -> None:
    if not (isinstance(dt_min, (int, float)) and isinstance(dt_max, (int, float))
            and 0 < dt_min <= dt_max):
        raise ValueError(
            f"{cell}: need 0 < dt_min <= dt_max (defaults 0.001, 0.1); got dt_min={dt_min!r}, "
            f"dt_max={dt_max!r}"
        )


def _log_uniform(key, shape, low: float, high: float) -> jax.Array:
    """log of a step size drawn log-uniformly in [low, high] (S4D's and S5's Δ init)."""
    return jax.random.uniform(key, shape, jnp.float32, math.log(low), math.log(high))


def _expm1(z: jax.Array) -> jax.Array:
    """exp(z) − 1 without cancellation for small |z| (jnp.expm1 is real-only).

    ZOH needs (exp(ΔA) − 1)/A with ΔA as small as 5e-4; the naive difference loses ~4 of fp32's
    7 digits there. For z = x + iy: exp(z) − 1 = expm1(x)·cos y − 2 sin²(y/2) + i·exp(x)·sin y.
    """
    if not jnp.iscomplexobj(z):
        return jnp.expm1(z)
    x, y = z.real, z.imag
    return base.complex64(
        jnp.expm1(x) * jnp.cos(y) - 2.0 * jnp.sin(y / 2) ** 2, jnp.exp(x) * jnp.sin(y)
    )


def _zoh(lam: jax.Array, dt: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Zero-order hold of x' = λx + βu: returns (λ̄, (λ̄ − 1)/λ) so that B̄ = (λ̄ − 1)/λ · β."""
    z = lam * dt
    return jnp.exp(z), _expm1(z) / lam


def _complex(params, name: str) -> jax.Array:
    return base.complex64(params[name + "_re"], params[name + "_im"])


def _diagonal_cell(
    *, name, d_hidden, hparams, init, discretize, drive, readout, input_dim, state_dim,
    complex_state, scan_impl, unit_axes=None,
) -> base.Cell:
    """Builds a Cell for h_t = a ⊙ h_{t−1} + b_t, y_t = readout(h_t, u_t).

    With F = state_dim(params): discretize(params) -> (a (F,), aux); drive(params, aux, x) ->
    (b (..., F), u); readout(params, h (..., F), u) -> y (..., D). `u` is whatever the readout
    needs of the input (x itself, or its projection), computed once for both uses.
    `unit_axes` (cells whose a and b parameters are columnar over the F state units):
    {parameter: its unit axis}, which makes the cell trainable by exact RTRL
    (`base.DiagonalForm`).
    """
    dtype = jnp.complex64 if complex_state else jnp.float32

    def initial_state(params, batch_shape):
        return jnp.zeros(tuple(batch_shape) + (state_dim(params),), dtype)  # (*B, F)

    def coefficients(params, x):  # x (..., d_in), with or without a time axis
        a, aux = discretize(params)
        b, u = drive(params, aux, x)
        return a, b, u

    def step(params, h, x_t):
        a, b, u = coefficients(params, x_t)
        h = a * h + b
        return h, readout(params, h, u)

    def scan(params, h0, xs):
        a, b, u = coefficients(params, xs)
        hs, h_last = kernels.linear_scan(jnp.broadcast_to(a, b.shape), b, h0, impl=scan_impl)
        return h_last, readout(params, hs, u)

    diagonal = None if unit_axes is None else base.DiagonalForm(
        coefficients, readout, unit_axes, scan_impl)
    return base.make_cell(
        name=name, family="ssm", d_out=d_hidden, init=init, initial_state=initial_state,
        step=step, scan=scan, input_dim=input_dim, hparams=hparams, diagonal=diagonal,
    )


# ----------------------------------------------------------------------------- S4D

S4D_INITS = ("lin", "inv", "real")
S4D_SCAN_IMPLS = ("conv",) + base.SCAN_IMPLS  # "conv": the convolution view (`_s4d_conv_scan`)


def causal_conv(u: jax.Array, kernel: jax.Array) -> jax.Array:
    """y_t = Σ_{s ≤ t} K_{t−s} u_s per channel, by FFT.

    Zero-padding both to n = 2T makes the circular convolution of the FFT a linear one, whose
    first T outputs are the causal ones. Computed in float32 (error about eps·log n relative
    to |u|·|K|).

    Args:
      u: real inputs, shape (..., T, D).
      kernel: the real kernel K, shape (D, T).

    Returns:
      y, shape (..., T, D), float32.
    """
    steps = u.shape[-2]
    n = 2 * steps
    u_f = jnp.fft.rfft(u.astype(jnp.float32), n, axis=-2)  # (..., n/2 + 1, D)
    k_f = jnp.fft.rfft(kernel.astype(jnp.float32), n, axis=-1).T  # (n/2 + 1, D)
    return jnp.fft.irfft(u_f * k_f, n, axis=-2)[..., :steps, :]


def _s4d_conv_scan(a, b_scale, c, factor, d, h0, u):
    """The S4D scan computed in the convolution view the S4 papers train with (Gu, Goel, Ré 2022,
    "Efficiently Modeling Long Sequences with Structured State Spaces"; S4D) instead of step by
    step.

    Per channel h and mode n, h_t = a h_{t−1} + B̄ u_t unrolls to
        h_t = a^{t+1} h_{−1} + Σ_{s ≤ t} a^{t−s} B̄ u_s,
    so with the kernel K_l = factor·Re(Σ_n C_n B̄_n a_n^l), l = 0..T−1,
        y_t = Σ_{s ≤ t} K_{t−s} u_s  +  factor·Re(Σ_n C_n a_n^{t+1} h_{−1,n})  +  D u_t,
        h_{T−1} = a^T h_{−1} + B̄ Σ_s a^{T−1−s} u_s.
    The convolution is an FFT (`causal_conv`), the other two are matmuls over time, so the
    (B, T, D, modes) states are never formed: the recurrent scan forms and stores them for the
    backward pass, which made S4D the slowest cell, 1.8× behind the next (BUILD_NOTES "Cells:
    scan vs step speed").
    The powers a^1..a^T are a cumulative product, as exact as the recurrence's multiplications.

    a, b_scale, c: (D, modes); factor: 2 (conjugate pairs) or 1 (real modes); d: (D,);
    h0: (..., D, modes); u: (..., T, D). Returns (h_last (..., D, modes), y (..., T, D))."""
    steps = u.shape[-2]
    powers = jnp.cumprod(jnp.broadcast_to(a[..., None], a.shape + (steps,)), axis=-1)  # a^1..a^T
    before = jnp.concatenate([jnp.ones_like(powers[..., :1]), powers[..., :-1]], axis=-1)
    kernel = factor * jnp.real(jnp.einsum("hn,hnl->hl", c * b_scale, before))  # (D, T)
    from_h0 = factor * jnp.real(jnp.einsum("hn,hnt,...hn->...th", c, powers, h0))
    y = causal_conv(u, kernel) + from_h0 + d * u
    h_last = powers[..., -1] * h0 + b_scale * jnp.einsum("...sh,hns->...hn", u,
                                                         before[..., ::-1])
    return h_last.astype(h0.dtype), y


def make_s4d(
    *,
    d_hidden: int = 64,
    d_state: int = 64,
    init: str = "lin",
    dt_min: float = 0.001,
    dt_max: float = 0.1,
    negative_eigenvalues: bool = False,
    scan_impl: str = "conv",
) -> base.Cell:
    """S4D: a bank of d_hidden independent single-input diagonal SSMs (Gu, Gupta, Goel, Ré 2022,
    "On the Parameterization and Initialization of Diagonal State Space Models").

    Input projection (a choice of this benchmark: S4D maps D channels to D channels, so a cell
    that accepts any d_in needs one; no bias): u_t = x_t W_in ∈ R^D, D = d_hidden. Then per
    channel c and mode n, with Δ_c = exp(log_dt_c), A = −exp(log_A_real) + i·A_imag, B = 1:

        Ā = exp(Δ A),   B̄ = (Ā − 1)/A · B                         (zero-order hold)
        h_t = Ā ⊙ h_{t−1} + B̄ u_t
        y_t = 2·Re(Σ_n C_n h_{t,n}) + D ⊙ u_t      (init "lin"/"inv": N/2 complex modes)
        y_t =      Σ_n C_n h_{t,n}  + D ⊙ u_t      (init "real": N real modes)

    With N = d_state complex modes the conjugate pairs are implied: N/2 modes are kept and the
    output takes 2·Re, as in S4D. B is fixed to 1 as in the paper's minimal S4D: for a
    single-input diagonal SSM only the products C_n B_n matter, so a trained B is redundant.

    Initialisation (S4D paper, Sec. 4):
      - "lin" (S4D-Lin):  A_n = −1/2 + iπn,                     n = 0..N/2−1
      - "inv" (S4D-Inv):  A_n = −1/2 + i(N/π)(N/(2n+1) − 1),    n = 0..N/2−1
      - "real" (S4D-Real): A_n = −(n+1), n = 0..N−1, real state; here A stays real during
        training (no imaginary parameter), as Mamba uses it. (The authors' code keeps N/2
        complex modes with a trainable imaginary part initialised to 0.)
      Δ log-uniform in [dt_min, dt_max]; C complex normal with E|C_n|² = 1 (real N(0, 1) for
      "real"); D ~ N(0, 1); W_in ~ N(0, 1/d_in).

    negative_eigenvalues (Grazzi et al. 2025), only with init="real": Ā = 2·exp(ΔA) − 1 ∈ (−1, 1)
    while B̄ = (exp(ΔA) − 1)/A is unchanged, the gate map the paper applies to Mamba's exp(ΔA)
    (the init is unchanged, so initial eigenvalues are 2·exp(ΔA) − 1). With "lin"/"inv" it raises
    ValueError: the complex Ā = exp(ΔA) already reaches the negative real axis (Δ·Im A = π).

    scan_impl: "conv" (default) computes a whole sequence in the convolution view
    (`_s4d_conv_scan`: an FFT convolution with the kernel K_l = factor·Re(Σ_n C_n B̄_n Ā_n^l),
    as the S4 papers train), any other value runs the recurrence on that `kernels.linear_scan`
    implementation; `step` is always the recurrence. Same numbers up to float32 rounding.

    Parameters (d_in inputs, D = d_hidden, N = d_state; the same count for every init):
        d_in·D + 2·D·(N + 1)
      = W_in (d_in·D) + log_dt (D) + log_A_real, A_imag, C_re, C_im (D·N/2 each) + the skip D (D);
      "real": log_A_real and C are D·N each and there is no A_imag.
    """
    cell = "s4d"
    base.check_int(cell, "d_hidden", d_hidden)
    base.check_int(cell, "d_state", d_state)
    if init not in S4D_INITS:
        raise ValueError(f"{cell}: init must be one of {S4D_INITS}; got {init!r}")
    complex_modes = init != "real"
    if complex_modes and d_state % 2:
        raise ValueError(
            f"{cell}: d_state must be even with init={init!r} (N/2 conjugate pairs); "
            f"got {d_state}"
        )
    _check_dt(cell, dt_min, dt_max)
    if negative_eigenvalues and complex_modes:
        raise ValueError(
            f"{cell}: negative_eigenvalues=True needs init='real'; with init={init!r} the "
            f"eigenvalues exp(ΔA) are complex and already reach the negative real axis"
        )
    base.check_scan_impl(cell, scan_impl, S4D_SCAN_IMPLS)
    hparams = dict(
        d_hidden=d_hidden, d_state=d_state, init=init, dt_min=dt_min, dt_max=dt_max,
        negative_eigenvalues=negative_eigenvalues, scan_impl=scan_impl,
    )
    H, N = d_hidden, d_state  # the legend's D and N
    modes = N // 2 if complex_modes else N

    def init_fn(key, d_in):
        k_w, k_dt, k_c, k_d = jax.random.split(key, 4)
        n = jnp.arange(modes, dtype=jnp.float32)
        params = {
            "W_in": base.lecun_normal(k_w, (d_in, H), d_in),
            "log_dt": _log_uniform(k_dt, (H,), dt_min, dt_max),
            "D": jax.random.normal(k_d, (H,), jnp.float32),
        }
        if complex_modes:
            imag = math.pi * n if init == "lin" else (N / math.pi) * (N / (2 * n + 1) - 1)
            c = jax.random.normal(k_c, (2, H, modes), jnp.float32) * math.sqrt(0.5)
            params.update(
                log_A_real=jnp.full((H, modes), math.log(0.5), jnp.float32),
                A_imag=jnp.broadcast_to(imag, (H, modes)),
                C_re=c[0],
                C_im=c[1],
            )
        else:
            params.update(
                log_A_real=jnp.broadcast_to(jnp.log(n + 1), (H, modes)),
                C=jax.random.normal(k_c, (H, modes), jnp.float32),
            )
        return params

    def discretize(params):
        A = -jnp.exp(params["log_A_real"])  # (D, modes)
        if complex_modes:
            A = base.complex64(A, params["A_imag"])
        a, b_scale = _zoh(A, jnp.exp(params["log_dt"])[:, None])
        if negative_eigenvalues:
            a = 2 * a - 1
        return a.reshape(-1), b_scale

    def drive(params, b_scale, x):
        u = base.dense(x, params["W_in"])  # (..., D)
        b = b_scale * u[..., None]  # (..., D, modes)
        return b.reshape(u.shape[:-1] + (-1,)), u

    def readout(params, h, u):
        h = h.reshape(h.shape[:-1] + (H, modes))
        if complex_modes:
            y = 2 * jnp.sum(h.real * params["C_re"] - h.imag * params["C_im"], axis=-1)
        else:
            y = jnp.sum(h * params["C"], axis=-1)
        return y + params["D"] * u

    recurrent = _diagonal_cell(
        name=cell, d_hidden=d_hidden, hparams=hparams, init=init_fn, discretize=discretize,
        drive=drive, readout=readout, input_dim=lambda p: p["W_in"].shape[0],
        state_dim=lambda p: p["log_A_real"].size, complex_state=complex_modes,
        scan_impl="auto" if scan_impl == "conv" else scan_impl,
    )
    if scan_impl != "conv":
        return recurrent

    def conv_scan(params, h0, xs):
        a, b_scale = discretize(params)
        if complex_modes:
            c, factor = _complex(params, "C"), 2.0
        else:
            c, factor = params["C"], 1.0
        h_last, y = _s4d_conv_scan(a.reshape(H, modes), b_scale, c, factor, params["D"],
                                   h0.reshape(h0.shape[:-1] + (H, modes)),
                                   base.dense(xs, params["W_in"]))
        return h_last.reshape(h0.shape), y

    return base.make_cell(
        name=cell, family="ssm", d_out=d_hidden, init=init_fn,
        initial_state=recurrent.initial_state, step=recurrent.step, scan=conv_scan,
        input_dim=lambda p: p["W_in"].shape[0], hparams=hparams,
    )


# ----------------------------------------------------------------------------- S5


def hippo_n_eigs(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors of HiPPO-N, the normal part of HiPPO-LegS, one per pair.

    HiPPO-LegS: A_nk = −sqrt((2n+1)(2k+1)) for n > k, −(n+1) for n = k, 0 for n < k. Adding
    p pᵀ with p_n = sqrt(n + 1/2) leaves S = −I/2 + K with K skew-symmetric (normal), whose
    eigenvalues are −1/2 + iω with iω the eigenvalues of K. As S5 does, ω and the unitary
    eigenvectors come from `eigh(−iK)`; of each conjugate pair the one with ω < 0 is kept.

    Args:
      size: the state size N of the HiPPO matrix (even).

    Returns:
      λ: the kept eigenvalues, shape (N/2,), complex128.
      V: their unit eigenvectors as columns, shape (N, N/2), complex128.
    """
    n = np.arange(size)
    q = np.sqrt(2 * n + 1.0)
    legs = -np.tril(np.outer(q, q)) + np.diag(n)
    normal = legs + np.outer(np.sqrt(n + 0.5), np.sqrt(n + 0.5))
    skew = normal - np.diag(np.diag(normal))
    omega, vectors = np.linalg.eigh(-1j * skew)  # ascending: the first half has ω < 0
    lam = np.mean(np.diag(normal)) + 1j * omega  # Re = −1/2 exactly
    return lam[: size // 2], vectors[:, : size // 2]


def make_s5(
    *,
    d_hidden: int = 64,
    d_state: int = 64,
    blocks: int = 1,
    dt_min: float = 0.001,
    dt_max: float = 0.1,
    scan_impl: str = "auto",
    convention: str = "seqbench",
) -> base.Cell:
    """S5: one multi-input multi-output diagonal SSM (Smith, Warrington, Linderman 2023,
    "Simplified State Space Layers for Sequence Modeling").

    With N = d_state, the continuous system x' = Ax + Bu, y = Cx + Du with A = HiPPO-N is
    diagonalised, A = VΛV⁻¹, B̃ = V⁻¹B, C̃ = CV, and discretised by zero-order hold with a
    learnable step Δ_n = exp(log_step_n) per state:

        Λ̄ = exp(ΔΛ),   B̄ = ((Λ̄ − 1)/Λ) ⊙ B̃
        h_t = Λ̄ ⊙ h_{t−1} + B̄ u_t
        y_t = 2·Re(C̃ h_t) + D u_t

    Conjugate symmetry as S5's `conj_sym`: the N eigenvalues come in conjugate pairs, N/2 are
    kept and the output takes 2·Re, so the state is N/2 complex numbers. Re Λ is clipped to
    <= −1e-4 (S5's `clip_eigs`) so every mode stays strictly stable in training. D is a dense
    (d_in, d_hidden) matrix (S5's is diagonal with d_in = d_hidden).

    Initialisation (S5 Sec. 4 and its code): Λ = the eigenvalues −1/2 + iω of HiPPO-N, computed
    in NumPy (`hippo_n_eigs`); with `blocks` = J > 1 the block-diagonal init: J copies of the
    HiPPO-N of size N/J on the diagonal (Λ tiled J times, V block-diagonal). B ~ N(0, 1/d_in)
    of shape (N, d_in) then B̃ = V⁻¹B (V unitary, so V⁻¹ = Vᴴ restricted to the kept modes);
    C complex (D, N) with real and imaginary parts N(0, 1/N) (S5's
    "trunc_standard_normal" without the truncation) then C̃ = CV; Δ log-uniform in
    [dt_min, dt_max]; D ~ N(0, 1/d_in).

    `convention="s5"` follows the S5 authors' code (lindermanlab/S5) in the two places it
    differs from the above: B is drawn by `jax.nn.initializers.lecun_normal()` on its (N, d_in)
    array, whose fan-in is then N (a truncated normal of variance 1/N, not 1/d_in), and Re Λ is
    not clipped (their `clip_eigs` defaults to False).

    No `negative_eigenvalues`: HiPPO-N's eigenvalues are complex and the learnable phase Δ·Im Λ
    already reaches the negative real axis (phase π), so Grazzi et al.'s map of a real gate
    [0, 1] -> [−1, 1] has nothing to extend (asking for it is an unknown-hyperparameter error).

    Parameters (d_in inputs, D = d_hidden, N = d_state):
        3·N/2 + N·(d_in + D) + d_in·D
      = Lambda_re, Lambda_im, log_step (N/2 each) + B̃ (N/2·d_in complex) + C̃ (N/2·D complex)
        + the skip D (d_in·D).
    """
    cell = "s5"
    base.check_int(cell, "d_hidden", d_hidden)
    base.check_int(cell, "d_state", d_state)
    base.check_int(cell, "blocks", blocks)
    if d_state % (2 * blocks):
        raise ValueError(
            f"{cell}: d_state must be a multiple of 2*blocks (each block holds conjugate "
            f"pairs); got d_state={d_state}, blocks={blocks}"
        )
    _check_dt(cell, dt_min, dt_max)
    base.check_scan_impl(cell, scan_impl, base.SCAN_IMPLS)
    base.check_choice(cell, "convention", convention, S5_CONVENTIONS)
    hparams = dict(
        d_hidden=d_hidden, d_state=d_state, blocks=blocks, dt_min=dt_min, dt_max=dt_max,
        scan_impl=scan_impl, convention=convention,
    )
    max_real = _S5_MAX_REAL if convention == "seqbench" else jnp.inf
    H, P = d_hidden, d_state  # the legend's D and N
    lam_block, v_block = hippo_n_eigs(P // blocks)
    lam = np.tile(lam_block, blocks)  # (N/2,)
    v = np.kron(np.eye(blocks), v_block)  # (N, N/2), block-diagonal
    v_inv = v.conj().T  # (N/2, N)

    def init_fn(key, d_in):
        k_b, k_c, k_d, k_dt = jax.random.split(key, 4)
        if convention == "s5":
            b = jax.nn.initializers.lecun_normal()(k_b, (P, d_in), jnp.float32)  # fan_in = P
        else:
            b = jax.random.normal(k_b, (P, d_in), jnp.float32) / math.sqrt(d_in)
        c = jax.random.normal(k_c, (2, H, P), jnp.float32) / math.sqrt(P)
        b_tilde = jnp.matmul(v_inv.astype(np.complex64), b).T  # (d_in, N/2)
        c_tilde = jnp.matmul(base.complex64(c[0], c[1]), v.astype(np.complex64)).T  # (N/2, D)
        return {
            "Lambda_re": jnp.asarray(lam.real, jnp.float32),  # −1/2
            "Lambda_im": jnp.asarray(lam.imag, jnp.float32),
            "log_step": _log_uniform(k_dt, (P // 2,), dt_min, dt_max),
            "B_re": b_tilde.real,
            "B_im": b_tilde.imag,
            "C_re": c_tilde.real,
            "C_im": c_tilde.imag,
            "D": base.lecun_normal(k_d, (d_in, H), d_in),
        }

    def discretize(params):
        eig = base.complex64(
            jnp.minimum(params["Lambda_re"], max_real), params["Lambda_im"]
        )
        a, b_scale = _zoh(eig, jnp.exp(params["log_step"]))
        return a, _complex(params, "B") * b_scale  # B̄: (d_in, N/2)

    def drive(params, b_bar, x):
        return base.dense(x, b_bar), x

    def readout(params, h, x):
        y = base.dense(h.real, params["C_re"]) - base.dense(h.imag, params["C_im"])
        return 2 * y + base.dense(x, params["D"])

    return _diagonal_cell(
        name=cell, d_hidden=d_hidden, hparams=hparams, init=init_fn, discretize=discretize,
        drive=drive, readout=readout, input_dim=lambda p: p["B_re"].shape[0],
        state_dim=lambda p: p["Lambda_re"].size, complex_state=True, scan_impl=scan_impl,
    )


# ----------------------------------------------------------------------------- LRU

LRU_PARAMETERIZATIONS = ("exp", "stable")


def lru_magnitude(nu: jax.Array, parameterization: str) -> jax.Array:
    """The (signed) radius f(ν) of λ: "exp" exp(−exp(ν)) ∈ (0, 1); "stable" 1 − 1/(ν² + 1/2).

    `nu`: an array of any shape ((N,) in the LRU); the result has its shape and dtype.
    """
    if parameterization == "exp":
        return jnp.exp(-jnp.exp(nu))
    return 1 - 1 / (nu**2 + 0.5)


def _lru_magnitude_inverse(m: jax.Array, parameterization: str) -> jax.Array:
    """ν with f(ν) = m for m ∈ (0, 1) (the positive root for "stable")."""
    if parameterization == "exp":
        return jnp.log(-jnp.log(m))
    return jnp.sqrt(1 / (1 - m) - 0.5)


def make_lru(
    *,
    d_hidden: int = 64,
    d_state: int = 64,
    r_min: float = 0.9,
    r_max: float = 0.999,
    theta_max: float = 2 * math.pi,
    parameterization: str = "exp",
    negative_eigenvalues: bool = False,
    scan_impl: str = "auto",
) -> base.Cell:
    """LRU, the Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural
    Networks for Long Sequences"), with N = d_state complex modes:

        λ = f(ν) · exp(i·θ),   θ = exp(θ_log)
        h_t = λ ⊙ h_{t−1} + γ ⊙ (B x_t),   γ = exp(γ_log)
        y_t = Re(C h_t) + D x_t

    f(ν) = exp(−exp(ν)) ("exp", the paper's) or the StableSSM map f(ν) = 1 − 1/(ν² + 1/2)
    ("stable": Wang & Li 2024, "StableSSM: Alleviating the Curse of Memory in State-space
    Models through Stable Reparameterization"; the discrete-time "best" map of the authors'
    code, radarFudan/StableSSM notebooks/stable_reparameterizations.ipynb). The stable map
    spans [−1, 1): it reaches λ → 1 only as ν → ∞, and is a signed radius (negative values are
    a phase shift by π; f(0) = −1). θ and γ are stored as logs as in the paper's code; γ is a
    free parameter initialised to sqrt(1 − |λ|²), not recomputed from λ. D is a dense
    (d_in, d_hidden) matrix (the paper's is diagonal with d_in = d_hidden).

    Initialisation (the paper's Appendix A): |λ|² uniform in [r_min², r_max²] (uniform on the
    ring's area), θ uniform in (0, θ_max] (θ_max = 2π, the paper's default `max_phase=6.28`;
    the paper uses π/10 on PathX), inverted through f so every parameterization starts from the
    same λ; γ_log = log sqrt(1 − |λ|²); B re/im ~ N(0, 1/(2 d_in)); C re/im ~ N(0, 1/N);
    D ~ N(0, 1/d_in).

    theta_max = 0 gives the real-eigenvalue LRU: no θ parameter, λ = f(ν) ∈ R. This is the
    limit of the paper's parameterization (θ_log = log 0 = −∞ has zero gradient, so θ stays 0).

    negative_eigenvalues (Grazzi et al. 2025), only with theta_max = 0 and "exp":
    λ = 2·exp(−exp(ν)) − 1 ∈ (−1, 1), with ν initialised so λ is still in [r_min, r_max]
    (the map is inverted at init, like the stable map). Otherwise it raises ValueError: with a
    phase, λ already reaches the negative real axis (θ = π); the "stable" map already spans
    [−1, 1).

    Parameters (d_in inputs, D = d_hidden, N = d_state):
        N·(3 if theta_max > 0 else 2) + 2·N·(d_in + D) + d_in·D
      = ν, θ_log, γ_log (N each; no θ_log when theta_max = 0) + B (N·d_in complex)
        + C (N·D complex) + the skip D (d_in·D).
    """
    cell = "lru"
    base.check_int(cell, "d_hidden", d_hidden)
    base.check_int(cell, "d_state", d_state)
    if not (isinstance(r_min, (int, float)) and isinstance(r_max, (int, float))
            and 0 <= r_min <= r_max < 1 and r_max > 0):
        raise ValueError(
            f"{cell}: need 0 <= r_min <= r_max < 1 and r_max > 0 (defaults 0.9, 0.999); got "
            f"r_min={r_min!r}, r_max={r_max!r}"
        )
    if not (isinstance(theta_max, (int, float)) and 0 <= theta_max <= 2 * math.pi):
        raise ValueError(
            f"{cell}: theta_max must be in [0, 2π] (0: real eigenvalues); got {theta_max!r}"
        )
    if parameterization not in LRU_PARAMETERIZATIONS:
        raise ValueError(
            f"{cell}: parameterization must be one of {LRU_PARAMETERIZATIONS}; "
            f"got {parameterization!r}"
        )
    if negative_eigenvalues and (theta_max > 0 or parameterization != "exp"):
        raise ValueError(
            f"{cell}: negative_eigenvalues=True needs theta_max=0 and parameterization='exp' "
            f"(real eigenvalues); with a phase λ already reaches the negative real axis, and the "
            f"'stable' map already spans [-1, 1); got theta_max={theta_max!r}, "
            f"parameterization={parameterization!r}"
        )
    base.check_scan_impl(cell, scan_impl, base.SCAN_IMPLS)
    hparams = dict(
        d_hidden=d_hidden, d_state=d_state, r_min=r_min, r_max=r_max, theta_max=theta_max,
        parameterization=parameterization, negative_eigenvalues=negative_eigenvalues,
        scan_impl=scan_impl,
    )
    H, N = d_hidden, d_state  # the legend's D and N
    has_phase = theta_max > 0

    def init_fn(key, d_in):
        k_r, k_th, k_b, k_c, k_d = jax.random.split(key, 5)
        # 1 − U(0, 1) ∈ (0, 1]: keeps |λ| > 0 and θ > 0 so the logs stay finite.
        u = 1 - jax.random.uniform(k_r, (N,), jnp.float32)
        radius_sq = r_min**2 + u * (r_max**2 - r_min**2)
        radius = jnp.sqrt(radius_sq)
        m = (radius + 1) / 2 if negative_eigenvalues else radius
        b = jax.random.normal(k_b, (2, d_in, N), jnp.float32) / math.sqrt(2 * d_in)
        c = jax.random.normal(k_c, (2, N, H), jnp.float32) / math.sqrt(N)
        params = {
            "nu": _lru_magnitude_inverse(m, parameterization),
            "gamma_log": 0.5 * jnp.log1p(-radius_sq),
            "B_re": b[0],
            "B_im": b[1],
            "C_re": c[0],
            "C_im": c[1],
            "D": base.lecun_normal(k_d, (d_in, H), d_in),
        }
        if has_phase:
            theta = theta_max * (1 - jax.random.uniform(k_th, (N,), jnp.float32))
            params["theta_log"] = jnp.log(theta)
        return params

    def discretize(params):
        r = lru_magnitude(params["nu"], parameterization)
        if negative_eigenvalues:
            r = 2 * r - 1
        if not has_phase:
            return r.astype(jnp.complex64), None
        theta = jnp.exp(params["theta_log"])
        return base.complex64(r * jnp.cos(theta), r * jnp.sin(theta)), None

    def drive(params, _, x):
        bx = base.complex64(base.dense(x, params["B_re"]), base.dense(x, params["B_im"]))
        return jnp.exp(params["gamma_log"]) * bx, x

    def readout(params, h, x):
        return (base.dense(h.real, params["C_re"]) - base.dense(h.imag, params["C_im"])
                + base.dense(x, params["D"]))

    return _diagonal_cell(
        name=cell, d_hidden=d_hidden, hparams=hparams, init=init_fn, discretize=discretize,
        drive=drive, readout=readout, input_dim=lambda p: p["B_re"].shape[0],
        state_dim=lambda p: p["nu"].size, complex_state=True, scan_impl=scan_impl,
        unit_axes={"nu": 0, "gamma_log": 0, "B_re": 1, "B_im": 1,
                   **({"theta_log": 0} if has_phase else {})},
    )


CELLS = {"s4d": make_s4d, "s5": make_s5, "lru": make_lru}
