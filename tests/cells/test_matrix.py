"""Matrix-state cells (linear attention, RetNet, GLA, Mamba-2) against float64 NumPy references
(the delta-rule cells: test_delta.py).

Each reference is written from the paper's equations and shares no code with the cells: linear
attention and GLA step their recurrences, RetNet is its parallel (quadratic) form with the
rotation done by complex numbers at absolute positions, Mamba-2 steps Mamba2Simple's equations
in the paper's orientation. Inputs and parameters are fresh random draws
(biases and gates spread out, so every branch is exercised); scan runs 37 steps so the chunked
kernels cross a chunk boundary. Tolerance: fp32 against float64, errors scaled by
max(1, max|reference|) must stay below 2e-5 (the head norms divide by a per-head RMS or std
that can be small, so a little headroom over 1e-5). Both head norms ("rms", "group") and every
option (rotary, negative_eigenvalues, chunked/sequential, scan_impl) are covered.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqbench.cells import base, matrix

H, K, V = 2, 4, 4  # heads and per-head dims (d_hidden = H·K gives the default dims)
D_IN, D_HIDDEN, STEPS, BATCH = 3, 8, 37, 2
TOL = 2e-5


# ----------------------------------------------------------------------------- float64 helpers


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def silu(x):
    return x * sigmoid(x)


def group_norm(o, eps=1e-5):  # one group per head = LayerNorm over the head's features
    mu = o.mean(-1, keepdims=True)
    return (o - mu) / np.sqrt(((o - mu) ** 2).mean(-1, keepdims=True) + eps)


def rms_norm(o, eps=1e-5):
    return o / np.sqrt((o**2).mean(-1, keepdims=True) + eps)


NORMS = {"rms": rms_norm, "group": group_norm}


def heads(x, w, num_heads):
    y = x @ w
    return y.reshape(y.shape[:-1] + (num_heads, -1))


def merge(o, w_o):  # (B, T, H, V) -> (B, T, d_hidden)
    return o.reshape(o.shape[:-2] + (-1,)) @ w_o


def f64(params):
    return {name: np.asarray(leaf, np.float64) for name, leaf in params.items()}


def scaled_error(x, ref):
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    return np.max(np.abs(x - ref)) / max(1.0, np.max(np.abs(ref)))


def random_params(cell, seed, d_in=D_IN, overrides=None):
    """init, then every leaf nudged by N(0, 0.3²) so biases are not zero; `overrides` replace."""
    params = cell.init(jax.random.key(seed), d_in)
    rng = np.random.default_rng(seed)
    params = {
        name: leaf + 0.3 * rng.standard_normal(leaf.shape).astype(np.float32)
        for name, leaf in params.items()
    }
    for name, sample in (overrides or {}).items():
        params[name] = jnp.asarray(sample(rng, params[name].shape), jnp.float32)
    return params


def run_scan(cell, params, seed, steps=STEPS, d_in=D_IN):
    xs = jax.random.normal(jax.random.key(seed + 100), (BATCH, steps, d_in))
    _, ys = jax.jit(cell.scan)(params, cell.initial_state(params, (BATCH,)), xs)
    return np.asarray(xs, np.float64), ys


# ----------------------------------------------------------------------------- references


def ref_linear_attention(p, xs, num_heads, eps=1e-6):
    phi = lambda u: np.where(u > 0, u + 1.0, np.exp(u))  # elu(u) + 1
    q, k = phi(heads(xs, p["w_q"], num_heads)), phi(heads(xs, p["w_k"], num_heads))
    v = heads(xs, p["w_v"], num_heads)
    s = np.zeros(q.shape[:1] + q.shape[2:] + v.shape[-1:])
    z = np.zeros(q.shape[:1] + q.shape[2:])
    out = np.zeros(v.shape)
    for t in range(xs.shape[1]):
        s = s + np.einsum("bhk,bhv->bhkv", k[:, t], v[:, t])
        z = z + k[:, t]
        numerator = np.einsum("bhkv,bhk->bhv", s, q[:, t])
        out[:, t] = numerator / ((q[:, t] * z).sum(-1) + eps)[..., None]
    return merge(out, p["w_o"])


def ref_retnet(p, xs, num_heads, rotary, head_norm="rms"):
    q, k, v = (heads(xs, p[w], num_heads) for w in ("w_q", "w_k", "w_v"))
    key_dim, steps = q.shape[-1], xs.shape[1]
    k = k / np.sqrt(key_dim)
    gamma = 1.0 - 2.0 ** (-5.0 - np.arange(num_heads))
    half = key_dim // 2
    theta = 10000.0 ** (-np.arange(half) / max(half - 1, 1)) if rotary else np.zeros(half)
    # pairs (2i, 2i+1) as complex numbers, turned by e^{i n θ_i} at absolute position n
    phase = np.exp(1j * np.arange(steps)[:, None] * theta)  # (T, K/2)
    qc = (q[..., 0::2] + 1j * q[..., 1::2]) * phase[None, :, None, :]
    kc = (k[..., 0::2] + 1j * k[..., 1::2]) * phase[None, :, None, :]
    scores = np.einsum("bnhi,bmhi->bhnm", qc, np.conj(kc)).real  # (R(n)q_n)·(R(m)k_m)
    n, m = np.arange(steps)[:, None], np.arange(steps)[None, :]
    decay = np.where(m <= n, gamma[:, None, None] ** np.maximum(n - m, 0), 0.0)  # (H, T, T)
    o = np.einsum("bhnm,bmhv->bnhv", scores * decay, v)
    gate = silu(heads(xs, p["w_g"], num_heads))
    return merge(gate * NORMS[head_norm](o), p["w_o"])


def ref_gla(p, xs, num_heads, negative_eigenvalues, head_norm="rms", tau=16.0):
    q, k, v = (heads(xs, p[w], num_heads) for w in ("w_q", "w_k", "w_v"))
    alpha = sigmoid(xs @ p["w_a1"] @ p["w_a2"] + p["b_a"]) ** (1.0 / tau)
    alpha = alpha.reshape(k.shape)
    if negative_eigenvalues:
        alpha = 2.0 * alpha - 1.0
    s = np.zeros(q.shape[:1] + q.shape[2:] + v.shape[-1:])
    o = np.zeros(v.shape)
    for t in range(xs.shape[1]):
        s = alpha[:, t, :, :, None] * s + np.einsum("bhk,bhv->bhkv", k[:, t], v[:, t])
        o[:, t] = np.einsum("bhkv,bhk->bhv", s, q[:, t]) / np.sqrt(q.shape[-1])
    gate = silu(xs @ p["w_r"] + p["b_r"]).reshape(o.shape)
    return merge(gate * NORMS[head_norm](o), p["w_o"])


def ref_hgrn2(p, xs, num_heads, negative_eigenvalues):
    """fla's HGRN2Attention with its GLA recurrence stepped: q = SiLU(x W_q), f = σ(x W_f),
    k = 1 − f, v = x W_i; S = f S + k vᵀ (2f − 1 with negative eigenvalues), o = Sᵀq / sqrt(K);
    y = W_o (RMSNorm over all heads ⊙ w_norm)."""
    q, v = silu(heads(xs, p["w_q"], num_heads)), heads(xs, p["w_i"], num_heads)
    forget = sigmoid(heads(xs, p["w_f"], num_heads))
    decay = 2.0 * forget - 1.0 if negative_eigenvalues else forget
    s = np.zeros(q.shape[:1] + q.shape[2:] + v.shape[-1:])
    o = np.zeros(v.shape)
    for t in range(xs.shape[1]):
        s = decay[:, t, :, :, None] * s + np.einsum("bhk,bhv->bhkv", 1.0 - forget[:, t], v[:, t])
        o[:, t] = np.einsum("bhkv,bhk->bhv", s, q[:, t]) / np.sqrt(q.shape[-1])
    o = o.reshape(o.shape[:2] + (-1,))
    return o / np.sqrt((o ** 2).mean(-1, keepdims=True) + 1e-5) * p["w_norm"] @ p["w_o"]


def ref_mamba2(p, xs, d_state, head_dim, d_conv):
    """Mamba2Simple's equations (state-spaces/mamba) step by step in float64, in the paper's
    orientation: per head h_t (P x N) = exp(Δ_t A) h_{t-1} + Δ_t x_t B_tᵀ, y_t = h_t C_t."""
    batch, steps, _ = xs.shape
    channels, heads, n = p["w_norm"].size, p["a_log"].size, d_state
    proj = xs @ p["w_in"]
    z, xbc, dt = proj[..., :channels], proj[..., channels:2 * channels + 2 * n], \
        proj[..., 2 * channels + 2 * n:]
    dt = np.log1p(np.exp(dt + p["b_dt"]))
    padded = np.concatenate([np.zeros((batch, d_conv - 1, xbc.shape[-1])), xbc], axis=1)
    conv = p["conv_b"] + sum(padded[:, j:j + steps] * p["conv_w"][j] for j in range(d_conv))
    xbc = silu(conv)
    x = xbc[..., :channels].reshape(batch, steps, heads, head_dim)
    b, c = xbc[..., channels:channels + n], xbc[..., channels + n:]
    a = -np.exp(p["a_log"])
    h = np.zeros((batch, heads, head_dim, n))
    ys = np.zeros((batch, steps, heads, head_dim))
    for t in range(steps):
        h = (np.exp(dt[:, t] * a)[..., None, None] * h
             + dt[:, t, :, None, None] * x[:, t, :, :, None] * b[:, t, None, None, :])
        ys[:, t] = np.einsum("bhpn,bn->bhp", h, c[:, t]) + p["d"][:, None] * x[:, t]
    gated = ys.reshape(batch, steps, channels) * silu(z)
    normed = gated / np.sqrt(np.mean(gated ** 2, -1, keepdims=True) + 1e-5) * p["w_norm"]
    return normed @ p["w_out"]


# ----------------------------------------------------------------------------- reference tests


@pytest.mark.parametrize("scan_impl", ["sequential", "chunked", "pallas"])
def test_mamba2_matches_the_reference_equations(scan_impl):
    """The SSD recurrence on matrix_scan (sequential, the chunked SSD algorithm, the fused
    kernel) equals Mamba2Simple's equations in float64; 37 steps = chunks of 32 and 5."""
    cell = matrix.make_mamba2(d_hidden=D_HIDDEN, d_state=4, head_dim=4, d_conv=3,
                              scan_impl=scan_impl)
    params = random_params(cell, 7)
    params["a_log"] = np.log(np.asarray([1.5, 4.0, 0.5, 8.0], np.float32))  # varied decays
    xs, ys = run_scan(cell, params, 7)
    assert scaled_error(ys, ref_mamba2(f64(params), xs, 4, 4, 3)) < TOL


@pytest.mark.parametrize(
    "scan_impl, d_key, d_value",
    [("chunked", None, None), ("sequential", None, None), ("auto", 3, 5),
     ("pallas", None, None)],  # on a CPU: the GPU kernel in Pallas' interpreter
)
def test_linear_attention_matches_reference(scan_impl, d_key, d_value):
    cell = matrix.make_linear_attention(
        d_hidden=D_HIDDEN, num_heads=H, d_key=d_key, d_value=d_value, scan_impl=scan_impl
    )
    params = random_params(cell, 1)
    xs, ys = run_scan(cell, params, 1)
    assert scaled_error(ys, ref_linear_attention(f64(params), xs, H)) < TOL


@pytest.mark.parametrize(
    "rotary, head_norm, scan_impl, d_key",
    [(True, "rms", "chunked", None), (False, "group", "sequential", None),
     (True, "group", "auto", 6), (True, "rms", "pallas", None)],
)
def test_retnet_matches_reference(rotary, head_norm, scan_impl, d_key):
    cell = matrix.make_retnet(
        d_hidden=D_HIDDEN, num_heads=H, d_key=d_key, rotary=rotary, head_norm=head_norm,
        scan_impl=scan_impl,
    )
    params = random_params(cell, 2)
    xs, ys = run_scan(cell, params, 2)
    assert scaled_error(ys, ref_retnet(f64(params), xs, H, rotary, head_norm)) < TOL


def test_retnet_rotation_is_relative_across_calls():
    """Streaming in pieces continues the absolute positions: pieces of 5 + 32 equal the whole."""
    cell = matrix.make_retnet(d_hidden=D_HIDDEN, num_heads=H)
    params = random_params(cell, 3)
    xs = jnp.asarray(np.random.default_rng(3).standard_normal((BATCH, STEPS, D_IN)), jnp.float32)
    scan = jax.jit(cell.scan)
    state, ya = scan(params, cell.initial_state(params, (BATCH,)), xs[:, :5])
    _, yb = scan(params, state, xs[:, 5:])
    ref = ref_retnet(f64(params), np.asarray(xs, np.float64), H, True)
    assert scaled_error(np.concatenate([ya, yb], 1), ref) < TOL


# log σ(b)/16 spans gates α from ~0.2 to ~1, so 2α − 1 takes both signs
GATE_BIAS = {"b_a": lambda rng, shape: rng.uniform(-25.0, 3.0, shape)}


@pytest.mark.parametrize(
    "negative_eigenvalues, scan_impl, d_key",
    [(False, "chunked", None), (True, "chunked", 3), (True, "sequential", None)],
)
def test_hgrn2_matches_reference(negative_eigenvalues, scan_impl, d_key):
    cell = matrix.make_hgrn2(d_hidden=D_HIDDEN, num_heads=H, d_key=d_key,
                             negative_eigenvalues=negative_eigenvalues, scan_impl=scan_impl)
    params = random_params(cell, 11)
    xs, ys = run_scan(cell, params, 11)
    if negative_eigenvalues:  # the test means something only if some gates are negative
        assert np.mean(sigmoid(xs @ f64(params)["w_f"]) < 0.5) > 0.1
    assert scaled_error(ys, ref_hgrn2(f64(params), xs, H, negative_eigenvalues)) < TOL


def test_hgrn2_param_count():
    d_in, d, h, k = 5, 12, 3, 2
    cell = matrix.make_hgrn2(d_hidden=d, num_heads=h, d_key=k)
    params = cell.init(jax.random.key(0), d_in)
    assert base.param_count(params) == d_in * (2 * h * k + d) + d + d * d
    assert cell.input_dim(params) == d_in and cell.d_out == d


@pytest.mark.parametrize(
    "negative_eigenvalues, head_norm, scan_impl",
    [(False, "rms", "chunked"), (True, "rms", "chunked"), (True, "group", "sequential")],
)
def test_gla_matches_reference(negative_eigenvalues, head_norm, scan_impl):
    cell = matrix.make_gla(
        d_hidden=D_HIDDEN, num_heads=H, negative_eigenvalues=negative_eigenvalues,
        head_norm=head_norm, scan_impl=scan_impl,
    )
    params = random_params(cell, 4, overrides=GATE_BIAS)
    xs, ys = run_scan(cell, params, 4)
    if negative_eigenvalues:  # the test means something only if some gates are negative
        alpha = sigmoid(xs @ f64(params)["w_a1"] @ f64(params)["w_a2"] + f64(params)["b_a"])
        assert np.mean(2.0 * alpha ** (1 / 16) - 1.0 < 0) > 0.1
    assert scaled_error(ys, ref_gla(f64(params), xs, H, negative_eigenvalues, head_norm)) < TOL


# ----------------------------------------------------------------------------- decays and init


def test_retnet_decays():
    np.testing.assert_allclose(
        matrix.retnet_decays(4), [1 - 1 / 32, 1 - 1 / 64, 1 - 1 / 128, 1 - 1 / 256], rtol=0
    )
    # the decay the cell applies: after an impulse, zero inputs shrink head h's state by γ_h
    cell = matrix.make_retnet(d_hidden=D_HIDDEN, num_heads=H, rotary=False)
    params = random_params(cell, 7)
    state = cell.initial_state(params, ())
    state, _ = jax.jit(cell.step)(params, state, jnp.ones((D_IN,)))
    later, _ = jax.jit(cell.scan)(params, state, jnp.zeros((5, D_IN)))
    ratio = np.asarray(later.s / state.s)
    expected = np.broadcast_to((1 - 2.0 ** (-5.0 - np.arange(H)))[:, None, None] ** 5, ratio.shape)
    np.testing.assert_allclose(ratio, expected, rtol=1e-5)


def test_rotary_frequencies():
    expected = np.repeat(10000.0 ** -(np.arange(4) / 3), 2)
    np.testing.assert_allclose(matrix.rotary_frequencies(8), expected, rtol=1e-12)


def test_gate_initialisation():
    """GLA α = σ(b_α + ·)^(1/16) starts near 0.5^(1/16) ≈ 0.958."""
    gla = matrix.make_gla(d_hidden=D_HIDDEN, num_heads=H)
    params = f64(gla.init(jax.random.key(8), D_IN))
    assert np.all(params["b_a"] == 0) and np.all(params["b_r"] == 0)
    xs = np.random.default_rng(8).standard_normal((256, D_IN))
    alpha = sigmoid(xs @ params["w_a1"] @ params["w_a2"] + params["b_a"]) ** (1 / 16)
    assert 0.9 < np.median(alpha) < 0.99 and np.all(alpha > 0.5)


# ----------------------------------------------------------------------------- parameter counts


def count_formula(name, d_in, d_hidden, h, k, v, rank=16):
    base_count = d_in * h * (2 * k + v) + h * v * d_hidden
    return {
        "linear_attention": base_count,
        "retnet": d_in * h * (2 * k + 2 * v) + h * v * d_hidden,
        "gla": d_in * (h * (2 * k + 2 * v) + rank) + rank * h * k + h * k + h * v
        + h * v * d_hidden,
    }[name]


@pytest.mark.parametrize("name", sorted(set(matrix.CELLS) - {"mamba2", "hgrn2"}))  # q, k, v heads
@pytest.mark.parametrize(
    "d_in, d_hidden, hparams, dims",
    [(3, 8, {"num_heads": 2}, (2, 4, 4)),
     (5, 12, {"num_heads": 3, "d_key": 2, "d_value": 6}, (3, 2, 6))],
)
def test_param_count(name, d_in, d_hidden, hparams, dims):
    cell = matrix.CELLS[name](d_hidden=d_hidden, **hparams)
    params = cell.init(jax.random.key(0), d_in)
    assert base.param_count(params) == count_formula(name, d_in, d_hidden, *dims)
    assert cell.input_dim(params) == d_in and cell.d_out == d_hidden


def test_mamba2_param_count():
    d_in, d, n, e, heads, k = 5, 12, 6, 24, 3, 4  # expand 2, head_dim 8, d_conv 4
    cell = matrix.make_mamba2(d_hidden=d, d_state=n, head_dim=8, d_conv=k)
    params = cell.init(jax.random.key(0), d_in)
    assert base.param_count(params) == (d_in * (2 * e + 2 * n + heads) + k * (e + 2 * n)
                                        + (e + 2 * n) + 3 * heads + e + e * d)
    assert cell.input_dim(params) == d_in and cell.d_out == d


def test_gla_gate_rank_in_param_count():
    cell = matrix.make_gla(d_hidden=8, num_heads=2, gate_rank=3)
    assert base.param_count(cell.init(jax.random.key(0), 5)) == count_formula(
        "gla", 5, 8, 2, 4, 4, rank=3
    )


# ----------------------------------------------------------------------------- bad hparams


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("linear_attention", {"d_hidden": 0}, "d_hidden must be a positive int"),
        ("linear_attention", {"d_hidden": 8, "num_heads": 3}, "multiple of num_heads"),
        ("linear_attention", {"num_heads": True}, "num_heads must be a positive int"),
        ("retnet", {"d_key": 0}, "d_key"),
        ("retnet", {"d_value": 2.5}, "d_value"),
        ("retnet", {"d_key": 3}, "even d_key"),
        ("retnet", {"rotary": "yes"}, "rotary must be True or False"),
        ("gla", {"scan_impl": "fast"}, "scan_impl must be one of"),
        ("gla", {"gate_rank": 0}, "gate_rank must be a positive int"),
        ("gla", {"gate_tau": 0.0}, "gate_tau must be a number > 0"),
        ("gla", {"negative_eigenvalues": 1}, "negative_eigenvalues must be True or False"),
        ("gla", {"head_norm": "group", "d_value": 1}, "head_norm='group' needs d_value >= 2"),
        ("gla", {"scan_impl": "pallas"}, r"scan_impl must be one of \('auto', 'sequential', "
                                         r"'chunked'\)"),
        ("mamba2", {"head_dim": 5}, r"head_dim must divide expand \* d_hidden = 128"),
        ("hgrn2", {"d_hidden": 10, "num_heads": 4}, "d_hidden=10 must be a multiple of num_heads=4"),
        ("hgrn2", {"scan_impl": "pallas"}, r"scan_impl must be one of \('auto', 'sequential', "
                                           r"'chunked'\)"),
        ("mamba2", {"d_conv": 0}, "d_conv must be a positive int"),
        ("mamba2", {"scan_impl": "deer"}, "for the classic cells"),
    ],
)
def test_bad_hparams(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        matrix.CELLS[name](**kwargs)


def test_dims_default_to_d_hidden_over_heads():
    cell = matrix.make_retnet(d_hidden=12, num_heads=3)
    state = cell.initial_state(cell.init(jax.random.key(0), 2), (5,))
    assert state.s.shape == (5, 3, 4, 4)
    cell = matrix.make_linear_attention(d_hidden=7, num_heads=3, d_key=2, d_value=3)
    state = cell.initial_state(cell.init(jax.random.key(0), 2), ())
    assert state.s.shape == (3, 2, 3) and state.z.shape == (3, 2)
