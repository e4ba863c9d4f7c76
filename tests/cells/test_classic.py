"""Classic cells (elman, lstm, gru, lem, bilinear, scrn) against float64 NumPy references.

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

import seqbench
from seqbench.cells import base

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
]
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


def run_reference(name, hp, params, state, xs):
    """xs (B, T, d_in), state fields (B, H) -> (final state fields, ys (B, T, H))."""
    ref = REFERENCES[name]
    params, xs = f64(params), np.asarray(xs, np.float64)
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
@pytest.mark.parametrize("name", ["elman", "lstm", "gru", "lem", "bilinear", "scrn"])
def test_parallel_in_time_scan_matches_float64_reference(name, steps, scan_impl):
    hp = {"scan_impl": scan_impl, "tol": 1e-7}
    assert_matches_reference(name, hp, *random_setup(name, hp, steps))


@pytest.mark.parametrize("name,hp", [("lstm", {"scan_impl": "quasi_deer"}),
                                     ("gru", {"scan_impl": "deer"})])
def test_parallel_in_time_scan_on_a_long_sequence(name, hp):
    """1,024 steps through the cells (the kernel's own tests go to 4,096: test_nonlinear_scan)."""
    hp = {**hp, "tol": 1e-7}
    assert_matches_reference(name, hp, *random_setup(name, hp, 1024))


@pytest.mark.parametrize("scan_impl", PARALLEL)
def test_parallel_in_time_gradients_equal_the_sequential_scans(scan_impl):
    """Implicit-function gradients (params, initial state, inputs) against BPTT."""
    cell, params, state, xs = random_setup("lstm", {"scan_impl": scan_impl, "tol": 1e-7}, 50)
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
    ],
)
def test_bad_hparams_raise(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        seqbench.cells.get(name, **kwargs)
