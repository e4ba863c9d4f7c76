"""State-space cells (seqbench/cells/ssm.py) against float64 NumPy references of their papers.

Each reference below is written from the papers' equations (S4D, S5, LRU, StableSSM's map,
Grazzi et al.'s 2g − 1), loops over time one step at a time in complex128 and shares no code
with the cells. Parameters are the cell's own init plus fresh Gaussian noise on every leaf, so
the references see generic values, not just the structured init. The cells compute in fp32, so
outputs and final states are compared at 1e-5 relative to the largest reference value (fp32
round-off over 12 steps of small complex products stays well below). A separate test holds the
ZOH input gain (exp(ΔA) − 1)/A to fp32 precision at small Δ, where the naive difference cancels.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kernels
import seqbench
from seqbench.cells import ssm
from seqbench.cells.base import param_count

BATCH, STEPS, D_IN, D_HIDDEN, D_STATE = 2, 12, 3, 4, 6
TOL = 1e-5


def to_numpy(params):
    return {k: np.asarray(v, np.float64) for k, v in params.items()}


def init(cell, seed, d_in=D_IN):
    return cell.init(jax.random.key(seed), d_in)


def fresh_params(cell, seed, noise=0.3):
    """The cell's init plus N(0, noise²) on every parameter."""
    rng = np.random.default_rng(seed)
    return {k: v + jnp.asarray(noise * rng.normal(size=v.shape), v.dtype)
            for k, v in init(cell, seed).items()}


def random_state(cell, params, seed):
    """A random h0 of the cell's state shape and dtype."""
    zeros = cell.initial_state(params, (BATCH,))
    h = np.random.default_rng(seed).normal(size=(2,) + zeros.shape)
    return jnp.asarray(h[0] + 1j * h[1] if jnp.iscomplexobj(zeros) else h[0], zeros.dtype)


def assert_close(x, ref):
    x, ref = np.asarray(x), np.asarray(ref)
    np.testing.assert_allclose(x, ref, rtol=TOL, atol=TOL * np.max(np.abs(ref)))


def run_against(cell, params, ref_fn, seed=7):
    """Scans fresh inputs from a random h0 and compares outputs and last state with ref_fn."""
    xs = jnp.asarray(np.random.default_rng(seed).normal(size=(BATCH, STEPS, D_IN)), jnp.float32)
    h0 = random_state(cell, params, seed + 1)
    h_last, ys = jax.jit(cell.scan)(params, h0, xs)
    ys_ref, h_ref = ref_fn(to_numpy(params), np.asarray(xs, np.float64), np.asarray(h0))
    assert ys.shape == (BATCH, STEPS, cell.d_out) == ys_ref.shape
    assert_close(ys, ys_ref)
    assert_close(h_last, h_ref)


# ----------------------------------------------------------------------------- references


def ref_s4d(p, xs, h0, *, complex_modes, negative):
    """S4D: u = x W_in; per channel ZOH Ā = exp(ΔA), B̄ = (Ā − 1)/A (B = 1); y = 2Re(Ch) + Du."""
    H = p["W_in"].shape[1]
    if complex_modes:
        A = -np.exp(p["log_A_real"]) + 1j * p["A_imag"]
        C = p["C_re"] + 1j * p["C_im"]
        factor = 2.0
    else:
        A = -np.exp(p["log_A_real"]) + 0j
        C = p["C"] + 0j
        factor = 1.0
    dt = np.exp(p["log_dt"])[:, None]
    a_cont = np.exp(dt * A)
    b_bar = (a_cont - 1.0) / A
    a_bar = 2.0 * a_cont - 1.0 if negative else a_cont
    h = h0.astype(np.complex128).reshape(BATCH, H, -1)
    ys = []
    for t in range(xs.shape[1]):
        u = xs[:, t] @ p["W_in"]  # (B, H)
        h = a_bar * h + b_bar * u[:, :, None]
        ys.append(factor * np.real(np.sum(C * h, axis=-1)) + p["D"] * u)
    return np.stack(ys, 1), h.reshape(BATCH, -1), a_bar


def hippo_n(size):
    """HiPPO-LegS (Gu et al. 2020) plus p pᵀ, p_n = sqrt(n + 1/2): the normal HiPPO-N matrix."""
    A = np.zeros((size, size))
    for n in range(size):
        for k in range(size):
            if n > k:
                A[n, k] = -math.sqrt((2 * n + 1) * (2 * k + 1))
            elif n == k:
                A[n, k] = -(n + 1)
    p = np.sqrt(np.arange(size) + 0.5)
    return A + np.outer(p, p)


def ref_s5(p, xs, h0, clip=True):
    """S5 with conj. symmetry: Λ̄ = exp(ΔΛ), B̄ = (Λ̄ − 1)/Λ B̃, y = 2Re(C̃h) + Du; `clip`:
    Re Λ <= −1e-4 (S5's clip_eigs)."""
    lam = (np.minimum(p["Lambda_re"], -1e-4) if clip else p["Lambda_re"]) + 1j * p["Lambda_im"]
    lam_bar = np.exp(np.exp(p["log_step"]) * lam)
    b_tilde = (p["B_re"] + 1j * p["B_im"]).T  # (P/2, d_in)
    c_tilde = (p["C_re"] + 1j * p["C_im"]).T  # (H, P/2)
    b_bar = ((lam_bar - 1.0) / lam)[:, None] * b_tilde
    h = h0.astype(np.complex128)
    ys = []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        h = lam_bar * h + x @ b_bar.T
        ys.append(2.0 * np.real(h @ c_tilde.T) + x @ p["D"])
    return np.stack(ys, 1), h


def lru_radius(p, *, parameterization, negative):
    """The signed radius of λ: the LRU's exp(−exp(ν)) or StableSSM's 1 − 1/(ν² + 0.5)."""
    nu = p["nu"]
    r = np.exp(-np.exp(nu)) if parameterization == "exp" else 1.0 - 1.0 / (nu**2 + 0.5)
    return 2.0 * r - 1.0 if negative else r


def lru_lambda(p, **options):
    """λ = radius·e^{iθ}, θ = exp(θ_log) (0 without a phase)."""
    theta = np.exp(p["theta_log"]) if "theta_log" in p else 0.0
    return lru_radius(p, **options) * np.exp(1j * theta)


def ref_lru(p, xs, h0, *, parameterization, negative):
    """LRU: h = λ ⊙ h + γ ⊙ (B x), y = Re(C h) + D x."""
    lam = lru_lambda(p, parameterization=parameterization, negative=negative)
    gamma = np.exp(p["gamma_log"])
    B = p["B_re"] + 1j * p["B_im"]  # (d_in, N)
    C = p["C_re"] + 1j * p["C_im"]  # (N, H)
    h = h0.astype(np.complex128)
    ys = []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        h = lam * h + gamma * (x @ B)
        ys.append(np.real(h @ C) + x @ p["D"])
    return np.stack(ys, 1), h


# ----------------------------------------------------------------------------- S4D


@pytest.mark.parametrize("scan_impl", ["conv", "sequential"])
@pytest.mark.parametrize("init", ["lin", "inv", "real"])
def test_s4d_matches_reference(init, scan_impl):
    cell = ssm.make_s4d(d_hidden=D_HIDDEN, d_state=D_STATE, init=init, scan_impl=scan_impl)
    params = fresh_params(cell, seed=1)
    ref = lambda p, xs, h0: ref_s4d(p, xs, h0, complex_modes=init != "real", negative=False)[:2]
    run_against(cell, params, ref)


@pytest.mark.parametrize("init", ["lin", "real"])
def test_s4d_convolution_view_matches_reference_over_a_long_sequence(init):
    """300 steps from a random state, slow modes (Δ down to 1e-3) and fast ones: the FFT
    convolution, the h0 term and the final state stay at fp32 accuracy (1e-5 of the largest
    reference value; measured about 1e-6)."""
    cell = ssm.make_s4d(d_hidden=D_HIDDEN, d_state=D_STATE, init=init, dt_min=1e-3, dt_max=0.5)
    params = fresh_params(cell, seed=3, noise=0.1)
    rng = np.random.default_rng(4)
    xs = jnp.asarray(rng.normal(size=(BATCH, 300, D_IN)), jnp.float32)
    h0 = random_state(cell, params, 5)
    h_last, ys = jax.jit(cell.scan)(params, h0, xs)
    p = to_numpy(params)
    ys_ref, h_ref, _ = ref_s4d(p, np.asarray(xs, np.float64), np.asarray(h0),
                               complex_modes=init != "real", negative=False)
    assert_close(ys, ys_ref)
    assert_close(h_last, h_ref)


def test_s4d_negative_eigenvalues_matches_reference_and_goes_negative():
    cell = ssm.make_s4d(d_hidden=D_HIDDEN, d_state=D_STATE, init="real", negative_eigenvalues=True)
    params = fresh_params(cell, seed=2)
    # steps of 0.03..3 put exp(ΔA) = exp(−Δ(n+1)) on both sides of 1/2, so 2·exp(ΔA) − 1 < 0 too
    params["log_dt"] = jnp.linspace(math.log(0.03), math.log(3.0), D_HIDDEN)
    _, _, a_bar = ref_s4d(to_numpy(params), np.zeros((BATCH, 1, D_IN)),
                          np.zeros((BATCH, D_HIDDEN * D_STATE)), complex_modes=False, negative=True)
    assert a_bar.real.min() < -0.5 and a_bar.real.max() > 0.5
    ref = lambda p, xs, h0: ref_s4d(p, xs, h0, complex_modes=False, negative=True)[:2]
    run_against(cell, params, ref)


def test_s4d_zoh_keeps_fp32_precision_at_small_steps():
    """With Δ = 1e-3, ΔA ≈ 5e-4: B̄ = (exp(ΔA) − 1)/A must not cancel (naive fp32 loses 1e-4)."""
    cell = ssm.make_s4d(d_hidden=D_HIDDEN, d_state=D_STATE, init="lin", dt_min=1e-3, dt_max=1e-3)
    params = dict(init(cell, 11), D=jnp.zeros(D_HIDDEN), C_im=jnp.zeros((D_HIDDEN, D_STATE // 2)),
                  C_re=jnp.ones((D_HIDDEN, D_STATE // 2)))  # y = 2 Σ_n Re(B̄_n) u: no D term
    xs = np.random.default_rng(11).normal(size=(BATCH, 1, D_IN))
    _, ys = cell.scan(params, cell.initial_state(params, (BATCH,)), jnp.asarray(xs, jnp.float32))
    ys_ref, _, _ = ref_s4d(to_numpy(params), xs, np.zeros((BATCH, D_HIDDEN * D_STATE // 2)),
                           complex_modes=True, negative=False)
    np.testing.assert_allclose(ys, ys_ref, rtol=2e-6)


@pytest.mark.parametrize("a_init", ["lin", "inv", "real"])
def test_s4d_init(a_init):
    H, N, dt_min, dt_max = 512, 8, 0.01, 0.05
    cell = ssm.make_s4d(d_hidden=H, d_state=N, init=a_init, dt_min=dt_min, dt_max=dt_max)
    p = to_numpy(init(cell, 3))
    A_re = -np.exp(p["log_A_real"])
    if a_init == "real":  # S4D-Real: A_n = −(n+1), n < N, no imaginary part
        np.testing.assert_allclose(A_re, np.broadcast_to(-(np.arange(N) + 1.0), (H, N)), rtol=1e-6)
        assert "A_imag" not in p
        assert abs(np.var(p["C"]) - 1.0) < 0.05
    else:
        n = np.arange(N // 2)
        imag = math.pi * n if a_init == "lin" else N / math.pi * (N / (2 * n + 1) - 1)
        np.testing.assert_allclose(A_re, -0.5, rtol=1e-6)
        np.testing.assert_allclose(p["A_imag"], np.broadcast_to(imag, (H, N // 2)), rtol=1e-6)
        assert abs(np.mean(p["C_re"] ** 2 + p["C_im"] ** 2) - 1.0) < 0.05  # E|C|² = 1
    dt = np.exp(p["log_dt"])
    assert dt.min() >= dt_min * (1 - 1e-6) and dt.max() <= dt_max * (1 + 1e-6)
    # log-uniform: log Δ rescaled to [0, 1] has mean 1/2 and variance 1/12
    z = (np.log(dt) - math.log(dt_min)) / (math.log(dt_max) - math.log(dt_min))
    assert abs(z.mean() - 0.5) < 0.05 and abs(z.var() - 1 / 12) < 0.02


# ----------------------------------------------------------------------------- S5


@pytest.mark.parametrize("blocks, convention", [(1, "seqbench"), (3, "seqbench"), (1, "s5")])
def test_s5_matches_reference(blocks, convention):
    """With an unstable mode (Re Λ = 0.2): clipped at −1e-4 by default, kept as it is under
    the S5 code's convention (clip_eigs=False)."""
    cell = ssm.make_s5(d_hidden=D_HIDDEN, d_state=D_STATE, blocks=blocks, convention=convention)
    params = fresh_params(cell, seed=4)
    params["Lambda_re"] = params["Lambda_re"].at[0].set(0.2)
    run_against(cell, params, lambda *a: ref_s5(*a, clip=convention == "seqbench"))


@pytest.mark.parametrize("d_state, blocks", [(16, 1), (16, 2), (12, 3)])
def test_s5_eigenvalues_are_hippo_n(d_state, blocks):
    dt_min, dt_max = 0.002, 0.02
    cell = ssm.make_s5(d_hidden=D_HIDDEN, d_state=d_state, blocks=blocks, dt_min=dt_min,
                       dt_max=dt_max)
    p = to_numpy(init(cell, 5))
    lam = p["Lambda_re"] + 1j * p["Lambda_im"]
    assert lam.shape == (d_state // 2,)
    block = d_state // blocks
    expected = np.tile(np.linalg.eigvals(hippo_n(block)), blocks)  # general, not Hermitian, solver
    kept_and_conjugates = np.concatenate([lam, lam.conj()])
    order = lambda z: z[np.lexsort((z.imag, np.round(z.real, 6)))]
    np.testing.assert_allclose(order(kept_and_conjugates), order(expected), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lam.real, -0.5, rtol=1e-6)
    steps = np.exp(p["log_step"])
    assert steps.shape == (d_state // 2,)
    assert steps.min() >= dt_min * (1 - 1e-6) and steps.max() <= dt_max * (1 + 1e-6)


@pytest.mark.parametrize("convention", ["seqbench", "s5"])
def test_s5_input_and_output_matrices_are_projected_on_the_eigenbasis(convention):
    """B̃ = V⁻¹B with V unitary keeps E|B̃|² = E B²: 1/d_in, or 1/N under the S5 code's
    lecun_normal on the (N, d_in) array (fan_in = N); C̃ = CV keeps E|C̃|² = 2/P."""
    d_in, P = 256, 64
    cell = ssm.make_s5(d_hidden=64, d_state=P, convention=convention)
    p = to_numpy(init(cell, 6, d_in))
    fan_in = d_in if convention == "seqbench" else P
    assert abs(np.mean(p["B_re"] ** 2 + p["B_im"] ** 2) * fan_in - 1.0) < 0.05
    assert abs(np.mean(p["C_re"] ** 2 + p["C_im"] ** 2) * P / 2 - 1.0) < 0.05


# ----------------------------------------------------------------------------- LRU

LRU_CONFIGS = [
    dict(),
    dict(parameterization="stable"),
    dict(theta_max=0.0),
    dict(theta_max=0.0, parameterization="stable"),
    dict(theta_max=0.0, negative_eigenvalues=True),
]


def lru_options(config):
    return dict(parameterization=config.get("parameterization", "exp"),
                negative=config.get("negative_eigenvalues", False))


@pytest.mark.parametrize("config", LRU_CONFIGS, ids=str)
def test_lru_matches_reference(config):
    cell = ssm.make_lru(d_hidden=D_HIDDEN, d_state=D_STATE, **config)
    params = fresh_params(cell, seed=8)
    ref = lambda p, xs, h0: ref_lru(p, xs, h0, **lru_options(config))
    run_against(cell, params, ref)


def test_lru_negative_eigenvalues_reach_minus_one():
    cell = ssm.make_lru(d_hidden=D_HIDDEN, d_state=D_STATE, theta_max=0.0,
                        negative_eigenvalues=True)
    params = fresh_params(cell, seed=9)
    params["nu"] = jnp.linspace(-4.0, 2.0, D_STATE)  # exp(−exp(ν)) from ~0.98 down to ~0.0006
    lam = lru_lambda(to_numpy(params), parameterization="exp", negative=True)
    assert np.all(lam.imag == 0) and lam.real.min() < -0.99 and lam.real.max() > 0.9
    run_against(cell, params, lambda p, xs, h0: ref_lru(p, xs, h0, parameterization="exp",
                                                        negative=True))


@pytest.mark.parametrize("config", LRU_CONFIGS, ids=str)
@pytest.mark.parametrize("r_min, r_max, theta_max", [(0.9, 0.999, 2 * math.pi),
                                                     (0.4, 0.8, math.pi / 10)])
def test_lru_ring_init(config, r_min, r_max, theta_max):
    config = dict(config)
    theta_max = config.pop("theta_max", theta_max)
    N = 2048
    cell = ssm.make_lru(d_hidden=D_HIDDEN, d_state=N, r_min=r_min, r_max=r_max,
                        theta_max=theta_max, **config)
    p = to_numpy(init(cell, 10))
    radius = lru_radius(p, **lru_options(config))  # every option starts on the same ring,
    assert radius.min() >= r_min - 1e-6 and radius.max() <= r_max + 1e-6  # radius > 0
    # |λ|² uniform on [r_min², r_max²] (uniform on the ring's area)
    z = (radius**2 - r_min**2) / (r_max**2 - r_min**2)
    assert abs(z.mean() - 0.5) < 0.03 and abs(z.var() - 1 / 12) < 0.01
    np.testing.assert_allclose(np.exp(p["gamma_log"]), np.sqrt(1 - radius**2), rtol=1e-3)
    if theta_max > 0:
        theta = np.exp(p["theta_log"])
        assert theta.min() > 0 and theta.max() <= theta_max * (1 + 1e-6)
        assert abs(theta.mean() / theta_max - 0.5) < 0.03
    else:
        assert "theta_log" not in p
    assert abs(np.var(p["B_re"]) * 2 * D_IN - 1) < 0.05  # B re/im ~ N(0, 1/(2 d_in))
    assert abs(np.var(p["C_re"]) * N - 1) < 0.05  # C re/im ~ N(0, 1/N)


# ----------------------------------------------------------------------------- every kernel


@pytest.mark.parametrize("scan_impl", kernels.IMPLS)
@pytest.mark.parametrize("name", ["s4d", "s5", "lru"])
def test_every_kernel_impl_matches_reference(name, scan_impl):
    """`scan_impl` reaches `kernels.linear_scan` with each of its implementations ("pallas":
    the GPU kernel in Pallas' interpreter on a CPU, compiled on an accelerator): the cell
    matches its float64 reference whichever runs the recurrence (s4d with real modes, as
    `negative_eigenvalues` needs; complex for s5 and lru), and "pallas" really runs the Pallas
    kernel (a `pallas_call` in the program)."""
    cell, ref = {
        "s4d": (ssm.make_s4d(d_hidden=D_HIDDEN, d_state=D_STATE, init="real", scan_impl=scan_impl),
                lambda p, xs, h0: ref_s4d(p, xs, h0, complex_modes=False, negative=False)[:2]),
        "s5": (ssm.make_s5(d_hidden=D_HIDDEN, d_state=D_STATE, scan_impl=scan_impl),
               lambda *a: ref_s5(*a, clip=True)),
        "lru": (ssm.make_lru(d_hidden=D_HIDDEN, d_state=D_STATE, scan_impl=scan_impl),
                lambda p, xs, h0: ref_lru(p, xs, h0, **lru_options({}))),
    }[name]
    params = fresh_params(cell, seed=9)
    run_against(cell, params, ref)
    xs = jnp.zeros((BATCH, STEPS, D_IN), jnp.float32)
    program = str(jax.make_jaxpr(cell.scan)(params, random_state(cell, params, 0), xs))
    assert ("pallas_call" in program) == (scan_impl == "pallas")


# ----------------------------------------------------------------------------- counts, errors


def expected_count(name, hp, d_in, H):
    N = hp.get("d_state", 64)
    if name == "s4d":
        return d_in * H + 2 * H * (N + 1)
    if name == "s5":
        return 3 * N // 2 + N * (d_in + H) + d_in * H
    phase = 0 if hp.get("theta_max", 1.0) == 0 else 1
    return N * (2 + phase) + 2 * N * (d_in + H) + d_in * H


@pytest.mark.parametrize("name, hp", [
    ("s4d", dict(d_state=8)), ("s4d", dict(d_state=5, init="real")),
    ("s5", dict(d_state=8)), ("s5", dict(d_state=12, blocks=3)),
    ("lru", dict(d_state=8)), ("lru", dict(d_state=7, theta_max=0.0)),
])
@pytest.mark.parametrize("d_in, H", [(3, 4), (7, 10)])
def test_param_count(name, hp, d_in, H):
    cell = seqbench.cells.get(name, d_hidden=H, **hp)
    params = jax.eval_shape(lambda key: cell.init(key, d_in), jax.random.key(0))  # shapes only
    assert param_count(params) == expected_count(name, hp, d_in, H)
    assert all(v.dtype == jnp.float32 for v in params.values())
    assert cell.input_dim(params) == d_in and cell.d_out == H and cell.family == "ssm"


@pytest.mark.parametrize("name, hp, match", [
    ("s4d", dict(init="hippo"), r"init must be one of \('lin', 'inv', 'real'\)"),
    ("s4d", dict(d_state=7), "d_state must be even"),
    ("s4d", dict(d_state=0), "d_state must be a positive int"),
    ("s4d", dict(dt_min=0.1, dt_max=0.01), "0 < dt_min <= dt_max"),
    ("s4d", dict(negative_eigenvalues=True), "needs init='real'"),
    ("s4d", dict(scan_impl="fast"), "scan_impl must be one of"),
    ("s5", dict(d_state=10, blocks=2), "multiple of 2\\*blocks"),
    ("s5", dict(blocks=0), "blocks must be a positive int"),
    ("s5", dict(convention="paper"), r"convention must be one of \('seqbench', 's5'\)"),
    ("s5", dict(dt_min=0.0), "0 < dt_min <= dt_max"),
    ("s5", dict(negative_eigenvalues=True), r"unknown hyperparameter\(s\) \['negative_eigen"),
    ("lru", dict(r_min=0.5, r_max=1.0), "0 <= r_min <= r_max < 1"),
    ("lru", dict(r_min=0.99, r_max=0.9), "0 <= r_min <= r_max < 1"),
    ("lru", dict(theta_max=7.0), r"theta_max must be in \[0, 2π\]"),
    ("lru", dict(parameterization="softplus"), r"one of \('exp', 'stable'\)"),
    ("lru", dict(negative_eigenvalues=True), "needs theta_max=0 and parameterization='exp'"),
    ("lru", dict(theta_max=0.0, parameterization="stable", negative_eigenvalues=True),
     "needs theta_max=0 and parameterization='exp'"),
    ("lru", dict(d_hidden=-1), "d_hidden must be a positive int"),
])
def test_bad_hparams(name, hp, match):
    with pytest.raises(ValueError, match=match):
        seqbench.cells.get(name, **hp)
