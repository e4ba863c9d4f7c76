"""Classic cells (elman, lstm, gru, lem, bilinear, scrn, the combo nets) against float64 NumPy
references.

Each reference is written from the paper's equations (see the factory docstrings for the
parameter layout) and run step by step on fresh random inputs, parameters and a random
nonzero initial state. Tolerance: max |scan - ref| / max(1, max |ref|) <= 1e-5 (fp32 compute
over a handful of steps of O(1) values rounds at ~1e-7 per op); the same for the parallel-in-time
`scan_impl`s solved to tol = 1e-7, and 1e-4 for their gradients against the sequential scan's.
"""

import math
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import seqbench
from seqbench.cells import base, classic

TOL = 1e-5
T = 7
D_IN, D_HIDDEN = 3, 8

CONFIGS = [
    ("elman", {}),
    ("lstm", {}),
    ("gru", {}),
    ("lem", {}),
    ("lem", {"dt": 0.3}),
    ("bilinear", {}),
    ("bilinear", {"normalize": False}),
    ("bilinear", {"rank": 3}),
    ("bilinear", {"rank": 5, "normalize": False}),
    ("bilinear", {"block_size": 1}),
    ("bilinear", {"block_size": 2, "normalize": False}),
    ("bilinear", {"block_size": 4}),
    ("scrn", {}),
    ("scrn", {"d_context": 5, "alpha": 0.5}),
    ("elman", {"recurrent_rank": 3}),
    ("lstm", {"recurrent_rank": 4, "recurrent_sparsity": 0.5}),
    ("gru", {"recurrent_sparsity": 0.3, "mask_seed": 7}),
    ("sparse_combo_net", {}),
    ("sparse_combo_net", {"num_modules": 2, "feedback_density": 0.5, "dt": 0.5,
                          "module_seed": 3}),
    ("svd_combo_net", {}),
    ("svd_combo_net", {"num_modules": 2, "feedback_density": 0.5, "dt": 0.5, "radius": 0.5,
                       "module_seed": 3}),
]
BLOCKS = {"elman": 1, "lstm": 4, "gru": 3}  # gate/candidate blocks G of W_h (D, G·D)
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in hp.items()) or 'default'}" for name, hp in CONFIGS]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def f64(tree):
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


# ---------------------------------------------------------------------------------------------
# float64 references: one step each, on a single sequence (x: (d_in,), state fields: (H,))


def ref_elman(p, hp, state, x):
    (h,) = state
    h = np.tanh(x @ p["w_x"] + h @ p["w_h"] + p["b"])
    return (h,), h


def ref_lstm(p, hp, state, x):
    c, h = state
    pre = x @ p["w_x"] + h @ p["w_h"] + p["b"]
    i, f, g, o = np.split(pre, 4)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h = sigmoid(o) * np.tanh(c)
    return (c, h), h


def ref_gru(p, hp, state, x):
    (h,) = state
    W_x, W_h, b = p["w_x"], p["w_h"], p["b"]
    H = h.shape[0]
    Wxr, Wxz, Wxn = W_x[:, :H], W_x[:, H : 2 * H], W_x[:, 2 * H :]
    Whr, Whz, Whn = W_h[:, :H], W_h[:, H : 2 * H], W_h[:, 2 * H :]
    br, bz, bn = b[:H], b[H : 2 * H], b[2 * H :]
    r = sigmoid(x @ Wxr + br + h @ Whr)
    z = sigmoid(x @ Wxz + bz + h @ Whz)
    n = np.tanh(x @ Wxn + bn + r * (h @ Whn + p["b_hn"]))
    h = (1 - z) * n + z * h
    return (h,), h


def ref_lem(p, hp, state, u):
    y, z = state
    dt = hp.get("dt", 1.0)
    V1, V2, Vz, Vy = np.split(p["w_x"], 4, axis=1)
    b1, b2, bz, by = np.split(p["b"], 4)
    W1, W2, Wz = np.split(p["w_h"], 3, axis=1)
    Wy = p["w_zy"]
    dt_n = dt * sigmoid(y @ W1 + u @ V1 + b1)
    dt_bar = dt * sigmoid(y @ W2 + u @ V2 + b2)
    z = (1 - dt_n) * z + dt_n * np.tanh(y @ Wz + u @ Vz + bz)
    y = (1 - dt_bar) * y + dt_bar * np.tanh(z @ Wy + u @ Vy + by)
    return (y, z), y


def bilinear_tensor(p, hp):
    """The full 3-tensor W (d_in, H, H), A(x)_ij = sum_k x_k W_kij, for every structure."""
    if hp.get("rank") is not None:
        X, V, U = p["w_xr"], p["w_hr"], p["w_rh"]
        return np.einsum("kr,ri,jr->kij", X, U, V)
    w = p["w"]  # (d_in, n_blocks, b, b)
    d_in, n_blocks, b, _ = w.shape
    W = np.zeros((d_in, n_blocks * b, n_blocks * b))
    for n in range(n_blocks):
        W[:, n * b : (n + 1) * b, n * b : (n + 1) * b] = w[:, n]
    return W


def ref_bilinear(p, hp, state, x):
    (h,) = state
    A = np.einsum("k,kij->ij", x, bilinear_tensor(p, hp))
    h = A @ h + x @ p["w_in"]
    if hp.get("normalize", True):
        h = h / np.sqrt(np.mean(h**2) + 1e-6)
    return (h,), h


REFERENCES = {
    "elman": ref_elman, "lstm": ref_lstm, "gru": ref_gru, "lem": ref_lem, "bilinear": ref_bilinear,
}


def ref_scrn(p, hp, state, x):
    """Mikolov et al. 2015, section 3: s = (1 − α) B x + α s, h = σ(A x + P s + R h + b)."""
    (hs,) = state
    context = hp.get("d_context") or D_HIDDEN // 4
    fast, alpha = hs.size - context, hp.get("alpha", 0.95)
    a, b = p["w_x"][:, :fast], p["w_x"][:, fast:]
    s = (1 - alpha) * (x @ b) + alpha * hs[fast:]
    h = sigmoid(x @ a + s @ p["w_p"] + hs[:fast] @ p["w_h"] + p["b"])
    hs = np.concatenate([h, s])
    return (hs,), hs


REFERENCES["scrn"] = ref_scrn


def low_rank_sparse(name, hp, params):
    """params with W_h = (W1 W2) ⊙ M written out (Tumma et al. 2024; the mask as documented:
    M_ij = [u_ij >= s], u = numpy default_rng(mask_seed).random((D, G·D)))."""
    if not (hp.get("recurrent_rank") or hp.get("recurrent_sparsity")):
        return params
    params = dict(params)
    w = (params.pop("w_h1") @ params.pop("w_h2") if hp.get("recurrent_rank")
         else params["w_h"])
    u = np.random.default_rng(hp.get("mask_seed", 0)).random(w.shape)
    params["w_h"] = w * (u >= hp.get("recurrent_sparsity", 0.0))
    return params


def combo_constants(hp):
    """The fixed modules W and feedback mask M of a sparse_combo_net (D = D_HIDDEN), from the
    cell's own constructors (their properties are tested in test_combo_net_constants)."""
    k, seed = hp.get("num_modules", 4), hp.get("module_seed", 0)
    size = D_HIDDEN // k
    modules = classic._contracting_modules(k, size, hp.get("density", 0.5),
                                           hp.get("radius", 0.9), seed)
    return (np.asarray(modules, np.float64),
            np.asarray(classic._feedback_mask(k, size, hp.get("feedback_density", 1.0), seed),
                       np.float64))


def ref_sparse_combo_net(p, hp, state, x):
    (h,) = state
    modules, mask = combo_constants(hp)
    feedback = p["w_b"] * mask - (p["w_b"] * mask).T
    dt = hp.get("dt", 0.1)
    h = h + dt * (-h + modules @ np.maximum(h, 0.0) + feedback @ h + x @ p["w_x"] + p["b"])
    return (h,), h


REFERENCES["sparse_combo_net"] = ref_sparse_combo_net


def ref_svd_combo_net(p, hp, state, x):
    """W_i = Θ_i⁻¹ U_i Σ_i V_iᵀ Θ_i with U, V = expm(skew) (scipy), Σ = radius exp(−z²),
    Θ = diag(exp θ); L = B̃ − M⁻¹ B̃ᵀ M in the metric M = Θ²; written with explicit matrices."""
    (h,) = state
    k, radius = hp.get("num_modules", 4), hp.get("radius", 0.9)
    size = D_HIDDEN // k
    theta = np.diag(np.exp(p["theta"]))
    blocks = []
    for i in range(k):
        u, v = (scipy.linalg.expm(np.triu(z, 1) - np.triu(z, 1).T)
                for z in (p["skew_u"][i], p["skew_v"][i]))
        th = theta[i * size:(i + 1) * size, i * size:(i + 1) * size]
        blocks.append(np.linalg.inv(th) @ u @ np.diag(radius * np.exp(-p["z"][i] ** 2)) @ v.T
                      @ th)
    modules = scipy.linalg.block_diag(*blocks)
    mask = combo_constants(hp)[1]
    metric = theta @ theta
    feedback = p["w_b"] * mask - np.linalg.inv(metric) @ (p["w_b"] * mask).T @ metric
    dt = hp.get("dt", 0.1)
    h = h + dt * (-h + modules @ np.maximum(h, 0.0) + feedback @ h + x @ p["w_x"] + p["b"])
    return (h,), h


REFERENCES["svd_combo_net"] = ref_svd_combo_net


def run_reference(name, hp, params, state, xs):
    """xs (B, T, d_in), state fields (B, H) -> (final state fields, ys (B, T, H))."""
    ref = REFERENCES[name]
    params, xs = low_rank_sparse(name, hp, f64(params)), np.asarray(xs, np.float64)
    finals, outputs = [], []
    for row in range(xs.shape[0]):
        s = tuple(np.asarray(f, np.float64)[row] for f in state)
        ys = []
        for t in range(xs.shape[1]):
            s, y = ref(params, hp, s, xs[row, t])
            ys.append(y)
        finals.append(s)
        outputs.append(np.stack(ys))
    finals = tuple(np.stack([f[i] for f in finals]) for i in range(len(state)))
    return finals, np.stack(outputs)


def rel_err(x, ref):
    return float(np.max(np.abs(np.asarray(x, np.float64) - ref)) / max(1.0, np.max(np.abs(ref))))


# ---------------------------------------------------------------------------------------------


def random_setup(name, hp, steps=T):
    """A cell, fresh random params, inputs (2, steps, d_in) and a random nonzero state."""
    seed = zlib.crc32(repr((name, sorted(hp.items()), steps)).encode())
    k_param, k_x, k_state = jax.random.split(jax.random.PRNGKey(seed), 3)
    cell = seqbench.cells.get(name, d_hidden=D_HIDDEN, **hp)
    params = cell.init(k_param, D_IN)
    if name == "svd_combo_net":  # θ starts at 0 (the identity metric): draw a metric too
        params["theta"] = 0.5 * jax.random.normal(jax.random.fold_in(k_param, 1), (D_HIDDEN,))
    xs = jax.random.normal(k_x, (2, steps, D_IN))
    zeros = cell.initial_state(params, (2,))
    state_keys = jax.random.split(k_state, len(zeros))
    state = type(zeros)(*(0.5 * jax.random.normal(k, z.shape) for k, z in zip(state_keys, zeros)))
    return cell, params, state, xs


def assert_matches_reference(name, hp, cell, params, state, xs):
    final, ys = jax.jit(cell.scan)(params, state, xs)
    ref_final, ref_ys = run_reference(name, hp, params, state, xs)
    assert rel_err(ys, ref_ys) <= TOL
    for got, want in zip(final, ref_final):
        assert rel_err(got, want) <= TOL


@pytest.mark.parametrize("name,hp", CONFIGS, ids=IDS)
def test_scan_matches_float64_reference(name, hp):
    assert_matches_reference(name, hp, *random_setup(name, hp))


PARALLEL = ["jacobi", "deer", "quasi_deer"]


@pytest.mark.parametrize("scan_impl", PARALLEL)
@pytest.mark.parametrize("steps", [1, 33])
@pytest.mark.parametrize("name", ["elman", "lstm", "gru", "lem", "bilinear", "scrn",
                                  "sparse_combo_net", "svd_combo_net"])
def test_parallel_in_time_scan_matches_float64_reference(name, steps, scan_impl):
    hp = {"scan_impl": scan_impl, "tol": 1e-7}
    assert_matches_reference(name, hp, *random_setup(name, hp, steps))


@pytest.mark.parametrize("name,hp", [("lstm", {"scan_impl": "quasi_deer"}),
                                     ("gru", {"scan_impl": "deer"})])
def test_parallel_in_time_scan_on_a_long_sequence(name, hp):
    """1,024 steps through the cells (the kernel's own tests go to 4,096: test_nonlinear_scan)."""
    hp = {**hp, "tol": 1e-7}
    assert_matches_reference(name, hp, *random_setup(name, hp, 1024))


# ELK and quasi-ELK (`damping` > 0): no state is exact after T iterations any more (at λ = 1 the
# LSTM's 33 steps are 1e-2 off after 33), so they stop on the residual alone: tol 1e-6 (41-91
# iterations here, outputs within 2e-6 of the reference; at 1e-7 the float32 residual stalls
# at its rounding floor and the solve runs to max_iters).
DAMPED = [{"scan_impl": s, "damping": 1.0, "tol": 1e-6, "max_iters": 200}
          for s in ("deer", "quasi_deer")]


@pytest.mark.parametrize("hp", DAMPED, ids=["elk", "quasi_elk"])
@pytest.mark.parametrize("name", ["elman", "lstm", "gru"])
def test_damped_parallel_in_time_scan_matches_float64_reference(name, hp):
    assert_matches_reference(name, hp, *random_setup(name, hp, 33))


@pytest.mark.parametrize("hp", [{"scan_impl": s, "tol": 1e-7} for s in PARALLEL] + DAMPED,
                         ids=str)
def test_parallel_in_time_gradients_equal_the_sequential_scans(hp):
    """Implicit-function gradients (params, initial state, inputs) against BPTT."""
    cell, params, state, xs = random_setup("lstm", hp, 50)
    sequential = seqbench.cells.get("lstm", d_hidden=D_HIDDEN)
    weights = jax.random.normal(jax.random.PRNGKey(5), (2, 50, D_HIDDEN))

    def loss(scan, params, state, xs):
        final, ys = scan(params, state, xs)
        return jnp.sum(jnp.sin(ys) * weights) + jnp.sum(final.c ** 2)

    grad = lambda c: jax.jit(jax.grad(lambda *a: loss(c.scan, *a), argnums=(0, 1, 2)))(
        params, state, xs)
    for got, want in zip(jax.tree_util.tree_leaves(grad(cell)),
                         jax.tree_util.tree_leaves(grad(sequential))):
        assert rel_err(got, np.asarray(want, np.float64)) <= 1e-4


def test_parallel_in_time_reports_its_solve():
    """Inside `collecting`, each parallel scan leaves its worst iteration count and residual."""
    from seqbench.cells import parallel_in_time

    cell, params, state, xs = random_setup("gru", {"scan_impl": "deer", "tol": 1e-6}, 20)
    with parallel_in_time.collecting() as found:
        solve = jax.jit(lambda *a: (cell.scan(*a), parallel_in_time.summarize(found)))
        _, summary = solve(params, state, xs)
    assert 1 <= int(summary["solver_iterations"]) <= 20
    assert 0 <= float(summary["solver_residual"]) <= 1e-6
    cell.scan(params, state, xs)  # outside the block nothing is collected
    assert len(found) == 1 and parallel_in_time.summarize([]) == {}


def expected_param_count(name, hp, d_in, h):
    if name == "sparse_combo_net":
        return h * (d_in + 1) + h * h
    if name == "svd_combo_net":
        k = hp.get("num_modules", 4)
        return h * (d_in + 1) + h * h + k * (2 * (h // k) ** 2 + h // k) + h
    if hp.get("recurrent_rank"):
        blocks, rank = BLOCKS[name], hp["recurrent_rank"]
        full = expected_param_count(name, {}, d_in, h)
        return full - blocks * h * h + rank * (h + blocks * h)
    if name == "scrn":
        fast = h - (hp.get("d_context") or h // 4)
        return d_in * h + fast * fast + (h - fast) * fast + fast
    if name == "elman":
        return h * (d_in + h + 1)
    if name == "lstm":
        return 4 * h * (d_in + h + 1)
    if name == "gru":
        return 3 * h * (d_in + h + 1) + h
    if name == "lem":
        return 4 * h * (d_in + h + 1)
    if hp.get("rank") is not None:
        return hp["rank"] * (d_in + 2 * h) + d_in * h
    return d_in * h * (hp.get("block_size") or h) + d_in * h


@pytest.mark.parametrize("name,hp", CONFIGS, ids=IDS)
@pytest.mark.parametrize("d_in,d_hidden", [(3, 8), (5, 12)])
def test_param_count_matches_docstring(name, hp, d_in, d_hidden):
    cell = seqbench.cells.get(name, d_hidden=d_hidden, **hp)
    params = jax.eval_shape(lambda: cell.init(jax.random.PRNGKey(0), d_in))
    assert base.param_count(params) == expected_param_count(name, hp, d_in, d_hidden)


@pytest.mark.parametrize("name", ["elman", "lstm", "gru", "lem"])
def test_pytorch_uniform_init(name):
    h = 32
    params = seqbench.cells.get(name, d_hidden=h).init(jax.random.PRNGKey(1), 5)
    bound = 1 / math.sqrt(h)
    for key, value in params.items():
        value = np.asarray(value)
        if name == "lstm" and key == "b":
            value = np.concatenate([value[:h], value[2 * h :]])  # the forget bias is checked below
        assert np.all(np.abs(value) <= bound), key
        assert np.max(np.abs(value)) > 0.8 * bound, key  # spread over the interval, not tiny


def test_lstm_forget_bias_is_one():
    h = 16
    params = seqbench.cells.get("lstm", d_hidden=h).init(jax.random.PRNGKey(2), 3)
    np.testing.assert_array_equal(np.asarray(params["b"][h : 2 * h]), np.ones(h))


@pytest.mark.parametrize("hp", [{}, {"rank": 16}, {"block_size": 4}, {"block_size": 1}])
def test_bilinear_init_preserves_norm_in_expectation(hp):
    """E ||A(x) h||^2 / ||h||^2 = 1 for x of unit RMS (the documented init)."""
    d_in, h = 16, 32
    cell = seqbench.cells.get("bilinear", d_hidden=h, **hp)
    rng = np.random.default_rng(0)
    ratios = []
    for seed in range(4):
        W = bilinear_tensor(f64(cell.init(jax.random.PRNGKey(seed), d_in)), hp)
        x = rng.normal(size=(64, d_in))
        x /= np.sqrt(np.mean(x**2, axis=-1, keepdims=True))
        h0 = rng.normal(size=(64, h))
        h1 = np.einsum("bk,kij,bj->bi", x, W, h0)
        ratios.append(np.sum(h1**2, -1) / np.sum(h0**2, -1))
    assert 0.85 < np.mean(ratios) < 1.15


def test_bilinear_normalize_gives_unit_rms_and_handles_zero():
    cell = seqbench.cells.get("bilinear", d_hidden=8)
    params = cell.init(jax.random.PRNGKey(3), 4)
    state = cell.initial_state(params, (3,))
    xs = jax.random.normal(jax.random.PRNGKey(4), (3, 5, 4)).at[0].set(0.0)  # row 0: zero input
    _, ys = jax.jit(cell.scan)(params, state, xs)
    rms = np.sqrt(np.mean(np.asarray(ys) ** 2, axis=-1))
    np.testing.assert_allclose(rms[1:], 1.0, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(ys[0]), 0.0)  # zero state and input stay 0, no NaN
    grads = jax.jit(jax.grad(lambda p: jnp.sum(cell.scan(p, state, xs)[1] * xs[..., :1])))(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads))


@pytest.mark.parametrize(
    "name,kwargs,match",
    [
        ("elman", {"d_hidden": 0}, "d_hidden must be a positive int"),
        ("lstm", {"d_hidden": 2.5}, "d_hidden must be a positive int"),
        ("gru", {"d_hidden": True}, "d_hidden must be a positive int"),
        ("lem", {"dt": 0.0}, r"dt must be a number in \(0, 1\]"),
        ("lem", {"dt": 1.5}, r"dt must be a number in \(0, 1\]"),
        ("bilinear", {"rank": 0}, "rank must be a positive int"),
        ("bilinear", {"block_size": 3}, "block_size must divide d_hidden=64"),
        ("bilinear", {"rank": 2, "block_size": 2}, "at most one of rank and block_size"),
        ("bilinear", {"normalize": "yes"}, "normalize must be True or False"),
        ("lstm", {"scan_impl": "newton"}, r"scan_impl must be one of \('sequential', 'jacobi'"),
        ("gru", {"scan_impl": "jacobi", "damping": 1.0}, "damping applies to scan_impl"),
        ("elman", {"scan_impl": "deer", "tol": -1}, "tol must be a number >= 0"),
        ("lem", {"scan_impl": "deer", "max_iters": 0}, "max_iters must be a positive int"),
        ("scrn", {"d_context": 64}, "d_context must be below d_hidden=64"),
        ("scrn", {"alpha": 1.5}, r"alpha must be a number in \[0, 1\]"),
        ("elman", {"recurrent_rank": 65}, "recurrent_rank must be at most d_hidden=64"),
        ("lstm", {"recurrent_rank": -1}, "recurrent_rank must be an int >= 0"),
        ("gru", {"recurrent_sparsity": 1.0}, r"recurrent_sparsity must be a number in \[0, 1\)"),
        ("elman", {"mask_seed": -2}, "mask_seed must be an int >= 0"),
        ("sparse_combo_net", {"num_modules": 5}, "num_modules must divide d_hidden=64"),
        ("sparse_combo_net", {"radius": 1.0}, r"radius must be a number in \[0, 1\)"),
        ("sparse_combo_net", {"dt": 0.0}, r"dt must be a number in \(0, 1\]"),
        ("sparse_combo_net", {"density": 1.5}, r"density must be a number in \(0, 1\]"),
        ("svd_combo_net", {"num_modules": 3}, "num_modules must divide d_hidden=64"),
        ("svd_combo_net", {"radius": -0.1}, r"radius must be a number in \[0, 1\)"),
        ("svd_combo_net", {"feedback_density": 0}, r"feedback_density must be a number in"),
    ],
)
def test_bad_hparams_raise(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        seqbench.cells.get(name, **kwargs)


@pytest.mark.parametrize("name", ["elman", "lstm", "gru"])
def test_low_rank_sparse_connectivity(name):
    """W_h = (W1 W2) ⊙ M: the factors start as the rank-r truncated SVD of the cell's usual
    initial W_h (so at full rank and no mask the cell computes what the plain cell computes),
    the product has rank r, a fraction ~s of W_h is exactly zero, and the mask is fixed by
    mask_seed, not trained."""
    h, blocks = 16, BLOCKS[name]
    key = jax.random.PRNGKey(5)
    plain = seqbench.cells.get(name, d_hidden=h)
    w_plain = np.asarray(plain.init(key, 3)["w_h"], np.float64)
    full = seqbench.cells.get(name, d_hidden=h, recurrent_rank=h).init(key, 3)
    np.testing.assert_allclose(np.asarray(full["w_h1"] @ full["w_h2"], np.float64), w_plain,
                               atol=1e-6)
    low = seqbench.cells.get(name, d_hidden=h, recurrent_rank=3).init(key, 3)
    u, sv, vt = np.linalg.svd(w_plain)
    truncated = (u[:, :3] * sv[:3]) @ vt[:3]
    product = np.asarray(low["w_h1"] @ low["w_h2"], np.float64)
    np.testing.assert_allclose(product, truncated, atol=1e-6)
    assert np.linalg.matrix_rank(product, tol=1e-5) == 3

    sparse = seqbench.cells.get(name, d_hidden=h, recurrent_sparsity=0.75, mask_seed=3)
    params = sparse.init(key, 3)
    state = sparse.initial_state(params, (2,))
    xs = jax.random.normal(jax.random.PRNGKey(6), (2, 4, 3))
    grads = jax.grad(lambda p: jnp.sum(sparse.scan(p, state, xs)[1] ** 2))(params)["w_h"]
    zero = np.asarray(grads) == 0  # masked entries get no gradient
    assert zero.shape == (h, blocks * h) and 0.65 < zero.mean() < 0.85
    again = seqbench.cells.get(name, d_hidden=h, recurrent_sparsity=0.75, mask_seed=3)
    other = seqbench.cells.get(name, d_hidden=h, recurrent_sparsity=0.75, mask_seed=4)
    zero_again = np.asarray(jax.grad(
        lambda p: jnp.sum(again.scan(p, state, xs)[1] ** 2))(params)["w_h"]) == 0
    zero_other = np.asarray(jax.grad(
        lambda p: jnp.sum(other.scan(p, state, xs)[1] ** 2))(params)["w_h"]) == 0
    np.testing.assert_array_equal(zero_again, zero)
    assert np.mean(zero_other != zero) > 0.2


@pytest.mark.parametrize("k,size,density,seed", [(4, 8, 0.5, 0), (3, 10, 0.2, 7)])
def test_combo_net_constants(k, size, density, seed):
    """The fixed modules: block-diagonal, zero diagonal, about `density` of the off-diagonal
    places filled, ‖|W_i|‖₂ = radius, hence ρ(|W_i|) <= radius (Kozachkov et al.'s Theorem 1)
    and ‖W_i‖₂ <= radius; the feedback mask: the blocks (i, j), i > j, of coupled pairs."""
    radius = 0.7
    w = classic._contracting_modules(k, size, density, radius, seed).astype(np.float64)
    filled = []
    for i in range(k):
        for j in range(k):
            block = w[i * size:(i + 1) * size, j * size:(j + 1) * size]
            if i != j:
                assert not np.any(block)
                continue
            assert not np.any(np.diag(block))
            assert np.linalg.norm(np.abs(block), 2) == pytest.approx(radius, rel=1e-6)
            assert np.max(np.abs(np.linalg.eigvals(np.abs(block)))) <= radius * (1 + 1e-6)
            assert np.linalg.norm(block, 2) <= radius * (1 + 1e-6)
            filled.append(np.count_nonzero(block) / (size * (size - 1)))
    assert abs(np.mean(filled) - density) < 0.1
    mask = classic._feedback_mask(k, size, 1.0, seed)
    np.testing.assert_array_equal(mask, np.kron(np.tril(np.ones((k, k)), -1),
                                                np.ones((size, size))))
    assert not np.any(np.triu(classic._feedback_mask(k, size, 0.5, seed)))


def test_combo_net_contracts_whatever_the_feedback():
    """Two different states under the same inputs converge (the point of the construction),
    with the trained feedback B replaced by a large random one and dt set by the documented
    sufficient condition dt < 2(1 − radius) / (1 + radius + ‖L‖₂)²: per-step contraction
    factor sqrt(1 − 2dt(1 − r) + dt²(1 + r + ‖L‖)²), checked over 2,000 steps."""
    radius = 0.5
    w_b = 3.0 * np.asarray(jax.random.normal(jax.random.PRNGKey(1), (16, 16)), np.float64)
    mask = classic._feedback_mask(4, 4, 1.0, 0)
    feedback_norm = np.linalg.norm(w_b * mask - (w_b * mask).T, 2)
    assert feedback_norm > 10  # a feedback far larger than the modules
    dt = 0.5 * 2 * (1 - radius) / (1 + radius + feedback_norm) ** 2
    cell = seqbench.cells.get("sparse_combo_net", d_hidden=16, radius=radius, dt=dt)
    params = cell.init(jax.random.PRNGKey(0), 3)
    params["w_b"] = jnp.asarray(w_b, jnp.float32)
    steps = 2000
    xs = jax.random.normal(jax.random.PRNGKey(2), (1, steps, 3))
    h0 = [5.0 * jax.random.normal(jax.random.PRNGKey(seed), (1, 16)) for seed in (3, 4)]
    state_type = type(cell.initial_state(params, (1,)))
    finals = [jax.jit(cell.scan)(params, state_type(h), xs)[0].h for h in h0]
    factor = math.sqrt(1 - 2 * dt * (1 - radius) + dt**2 * (1 + radius + feedback_norm) ** 2)
    ratio = float(jnp.linalg.norm(finals[0] - finals[1]) / jnp.linalg.norm(h0[0] - h0[1]))
    assert ratio <= factor**steps * (1 + 1e-3) and factor**steps < 0.6


@pytest.mark.parametrize("scale, bound", [(0.01, 1e-5), (1.0, 1e-5), (10.0, 1e-5),
                                          (1000.0, 3e-3)])
def test_orthogonal_is_the_matrix_exponential(scale, bound):
    """`_orthogonal` (Taylor terms and squarings, no LAPACK) against scipy's expm in float64,
    for skew matrices of Frobenius norm 0.2 to 1.7e4; float32 rounding grows with the
    squarings (measured 2e-6 at norm 45, 3e-6 at 150: bound 1e-5; at 1.3e4-1.7e4, 14-15
    squarings, 5e-4 from expm and 1.5e-3 in QᵀQ − I: bound 3e-3)."""
    z = scale * np.random.default_rng(1).normal(size=(4, 16, 16))
    got = np.asarray(classic._orthogonal(jnp.asarray(z, jnp.float32)), np.float64)
    skew = np.triu(z, 1) - np.swapaxes(np.triu(z, 1), -1, -2)
    want = np.stack([scipy.linalg.expm(s) for s in skew])
    assert np.max(np.abs(got - want)) <= bound
    assert np.max(np.abs(np.swapaxes(got, -1, -2) @ got - np.eye(16))) <= bound


def test_svd_combo_net_contracts_whatever_its_parameters():
    """Two different states under the same inputs converge in the metric Θ², with every
    parameter drawn large (the skew parameters, a metric spread over e^±1, a feedback far
    larger than the modules) and dt set by the documented sufficient condition in the
    coordinates Θ h: dt < 2(1 − radius) / (1 + radius + ‖C − Cᵀ‖₂)², C = Θ B̃ Θ⁻¹. Also: the
    modules' singular values in that metric are radius·exp(−z²), and Θ² L is skew-symmetric."""
    radius, d = 0.5, 16
    cell = seqbench.cells.get("svd_combo_net", d_hidden=d, radius=radius)
    keys = jax.random.split(jax.random.PRNGKey(7), 5)
    params = cell.init(keys[0], 3)
    params.update(skew_u=3.0 * jax.random.normal(keys[1], (4, 4, 4)),
                  skew_v=3.0 * jax.random.normal(keys[2], (4, 4, 4)),
                  theta=jax.random.uniform(keys[3], (d,), minval=-1.0, maxval=1.0),
                  w_b=1.5 * jax.random.normal(keys[4], (d, d)))
    theta = np.exp(np.asarray(params["theta"], np.float64))
    mask = classic._feedback_mask(4, 4, 1.0, 0)
    coupled = theta[:, None] * (np.asarray(params["w_b"], np.float64) * mask) / theta[None, :]
    feedback_norm = np.linalg.norm(coupled - coupled.T, 2)
    assert feedback_norm > 10, feedback_norm

    # the prepared matrices, read through the recurrence at h >= 0 (relu = identity there):
    # one Euler step from h is h + dt(−h + (W + L) h + u), so W + L = columns of that map
    prepared = jax.jit(lambda p: cell.step(p, type(cell.initial_state(p, (d,)))(
        jnp.eye(d)), jnp.zeros((d, 3)))[1])(params)
    dt = 0.1
    u0 = np.asarray(params["b"], np.float64)
    linear = (np.asarray(prepared, np.float64).T - u0[:, None] * dt - np.eye(d)) / dt + np.eye(d)
    scaled = theta[:, None] * linear / theta[None, :]  # Θ (W + L) Θ⁻¹ = U Σ Vᵀ + C − Cᵀ
    modules = scaled - (coupled - coupled.T)
    z = np.asarray(params["z"], np.float64)
    for i in range(4):
        block = modules[4 * i:4 * i + 4, 4 * i:4 * i + 4]
        np.testing.assert_allclose(np.sort(np.linalg.svd(block, compute_uv=False)),
                                   np.sort(radius * np.exp(-z[i] ** 2)), atol=1e-4)
    off_diagonal = modules - scipy.linalg.block_diag(
        *[modules[4 * i:4 * i + 4, 4 * i:4 * i + 4] for i in range(4)])
    assert np.max(np.abs(off_diagonal)) <= 1e-4  # the feedback is exactly C − Cᵀ

    dt = 0.5 * 2 * (1 - radius) / (1 + radius + feedback_norm) ** 2
    cell = seqbench.cells.get("svd_combo_net", d_hidden=d, radius=radius, dt=dt)
    steps = 2000
    xs = jax.random.normal(jax.random.PRNGKey(2), (1, steps, 3))
    h0 = [5.0 * jax.random.normal(jax.random.PRNGKey(seed), (1, d)) for seed in (3, 4)]
    state_type = type(cell.initial_state(params, (1,)))
    finals = [jax.jit(cell.scan)(params, state_type(h), xs)[0].h for h in h0]
    factor = math.sqrt(1 - 2 * dt * (1 - radius) + dt**2 * (1 + radius + feedback_norm) ** 2)
    in_metric = lambda v: float(np.linalg.norm(theta * np.asarray(v, np.float64)))
    ratio = in_metric(finals[0] - finals[1]) / in_metric(h0[0] - h0[1])
    assert ratio <= factor**steps * (1 + 1e-3) and factor**steps < 0.6
