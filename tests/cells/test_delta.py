"""Delta-rule cells (DeltaNet, Gated DeltaNet, DeltaProduct) against float64 NumPy references.

The references share no code with the cells. DeltaNet's steps the papers' V×K convention
S ← S (I − β k kᵀ) + β v kᵀ, o = S q. Gated DeltaNet's and DeltaProduct's transcribe
flash-linear-attention's layers (`GatedDeltaNet`, `GatedDeltaProduct`: short conv + SiLU, L2
norm, q / sqrt(K), β, the Mamba-2 gate, the gated RMSNorm) and its fused recurrent kernel,
token by token and Householder step by step (decay at a token's first step, the read after its
last), where the cells run the chunked WY/UT form on interleaved sub-steps. Tolerance as in
test_matrix.py: fp32 against float64, errors scaled by max(1, max|reference|) below 2e-5.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqbench.cells import base, delta
from tests.cells.test_matrix import (
    BATCH,
    D_HIDDEN,
    D_IN,
    NORMS,
    TOL,
    H,
    K,
    V,
    f64,
    heads,
    merge,
    random_params,
    run_scan,
    scaled_error,
    sigmoid,
    silu,
)


def l2(u):
    return u / np.sqrt((u**2).sum(-1, keepdims=True) + 1e-6)


def ref_deltanet(p, xs, num_heads, negative_eigenvalues, head_norm="rms", convention="paper"):
    """Papers' convention: S (V×K), S ← S (I − β k kᵀ) + β v kᵀ, o = S q. Returns (y, S_T).
    convention="fla": q / sqrt(K) after the L2 norm and SiLU on v (flash-linear-attention)."""
    q, k = l2(heads(xs, p["w_q"], num_heads)), l2(heads(xs, p["w_k"], num_heads))
    v = heads(xs, p["w_v"], num_heads)
    if convention == "fla":
        q, v = q / np.sqrt(q.shape[-1]), silu(v)
    beta = sigmoid(xs @ p["w_beta"] + p["b_beta"]) * (2.0 if negative_eigenvalues else 1.0)
    batch, _, _, key_dim = q.shape
    s = np.zeros((batch, num_heads, v.shape[-1], key_dim))
    o = np.zeros(v.shape)
    for t in range(xs.shape[1]):
        for b in range(batch):
            for h in range(num_heads):
                kk, bt = k[b, t, h], beta[b, t, h]
                s[b, h] = s[b, h] @ (np.eye(key_dim) - bt * np.outer(kk, kk)) + bt * np.outer(
                    v[b, t, h], kk
                )
                o[b, t, h] = s[b, h] @ q[b, t, h]
    return merge(NORMS[head_norm](o), p["w_o"]), s


def ref_householder(p, xs, num_heads, num_householder, forget_gate, negative_eigenvalues,
                    d_conv, output_gate):
    """flash-linear-attention's GatedDeltaProduct layer (GatedDeltaNet at one step with the
    gate), its fused recurrent kernel written out: per token, h *= exp(g); then per
    Householder step h += k (β (v − hᵀk))ᵀ; o = hᵀ q (h: K×V as the kernel's)."""
    batch, steps, _ = xs.shape
    n, hk = num_householder, p["w_q"].shape[1]
    qkv = np.concatenate([xs @ p["w_q"], xs @ p["w_k"], xs @ p["w_v"]], -1)
    if d_conv:  # fla's ShortConvolution: depthwise, causal, no bias, SiLU
        padded = np.concatenate([np.zeros((batch, d_conv - 1, qkv.shape[-1])), qkv], axis=1)
        qkv = sum(padded[:, j:j + steps] * p["conv_w"][j] for j in range(d_conv))
    qkv = silu(qkv)
    q, k, v = qkv[..., :hk], qkv[..., hk:hk * (1 + n)], qkv[..., hk * (1 + n):]
    key_dim = hk // num_heads
    q = l2(q.reshape(batch, steps, num_heads, key_dim)) / np.sqrt(key_dim)
    k = l2(k.reshape(batch, steps, n, num_heads, key_dim))
    v = v.reshape(batch, steps, n, num_heads, -1)
    beta = sigmoid(xs @ p["w_beta"]).reshape(batch, steps, n, num_heads)
    beta = beta * (2.0 if negative_eigenvalues else 1.0)
    g = (-np.exp(p["a_log"]) * np.log1p(np.exp(xs @ p["w_a"] + p["b_dt"])) if forget_gate
         else np.zeros((batch, steps, num_heads)))
    h = np.zeros((batch, num_heads, key_dim, v.shape[-1]))
    o = np.zeros((batch, steps, num_heads, v.shape[-1]))
    for t in range(steps):
        h = h * np.exp(g[:, t])[..., None, None]
        for j in range(n):
            kj = k[:, t, j]
            error = beta[:, t, j, :, None] * (v[:, t, j] - np.einsum("bhkv,bhk->bhv", h, kj))
            h = h + kj[..., :, None] * error[..., None, :]
        o[:, t] = np.einsum("bhkv,bhk->bhv", h, q[:, t])
    gate = silu(heads(xs, p["w_g"], num_heads)) if output_gate else 1.0
    return merge(NORMS["rms"](o) * p["w_norm"] * gate, p["w_o"])


# ----------------------------------------------------------------------------- DeltaNet


@pytest.mark.parametrize(
    "negative_eigenvalues, head_norm, chunked, chunk_size, convention",
    [(False, "rms", True, 32, "paper"), (False, "group", True, 5, "paper"),
     (True, "rms", True, 4, "paper"), (True, "rms", False, 32, "paper"),
     (False, "rms", True, 5, "fla")],
)
def test_deltanet_matches_reference(negative_eigenvalues, head_norm, chunked, chunk_size,
                                    convention):
    cell = delta.make_deltanet(
        d_hidden=D_HIDDEN, num_heads=H, negative_eigenvalues=negative_eigenvalues,
        head_norm=head_norm, chunked=chunked, chunk_size=chunk_size, convention=convention,
    )
    params = random_params(cell, 5)
    xs, ys = run_scan(cell, params, 5, steps=13)
    ref, _ = ref_deltanet(f64(params), xs, H, negative_eigenvalues, head_norm, convention)
    assert scaled_error(ys, ref) < TOL


def test_deltanet_final_state_is_the_transposed_paper_state():
    cell = delta.make_deltanet(d_hidden=D_HIDDEN, num_heads=H, chunk_size=4)
    params = random_params(cell, 6)
    xs = jax.random.normal(jax.random.key(6), (BATCH, 9, D_IN))
    state, _ = jax.jit(cell.scan)(params, cell.initial_state(params, (BATCH,)), xs)
    _, s_ref = ref_deltanet(f64(params), np.asarray(xs, np.float64), H, False)
    assert scaled_error(state.s, np.swapaxes(s_ref, -1, -2)) < 1e-5


# ----------------------------------------------------------------------------- the recurrence


@pytest.mark.parametrize("chunk_size, gated", [(3, False), (16, False), (4, True), (16, True)])
def test_chunked_equals_sequential_with_state(chunk_size, gated):
    """The WY/UT chunkwise form equals the sequential (gated) delta rule: outputs, final state
    and gradients, entering with a non-zero state, β in (0, 2) and, gated, decays log α from
    0 to −30 (products over a chunk underflow to 0 in float32: no NaN, no division)."""
    rng = np.random.default_rng(chunk_size)
    shape = (BATCH, H, 10)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    q = jnp.asarray(unit(rng.standard_normal(shape + (K,))), jnp.float32)
    k = jnp.asarray(unit(rng.standard_normal(shape + (K,))), jnp.float32)
    v = jnp.asarray(rng.standard_normal(shape + (V,)), jnp.float32)
    beta = jnp.asarray(rng.uniform(0.0, 2.0, shape), jnp.float32)
    log_alpha = (rng.uniform(-3.0, 0.0, shape) * (rng.uniform(size=shape) < 0.5)
                 + np.where(rng.uniform(size=shape) < 0.1, -30.0, 0.0)) if gated else \
        np.zeros(shape)
    log_alpha = jnp.asarray(log_alpha, jnp.float32)
    s0 = jnp.asarray(rng.standard_normal((BATCH, H, K, V)), jnp.float32)

    def loss(fn, *args):
        y, s = fn(*args)
        return jnp.sum(jnp.sin(y)) + jnp.sum(jnp.cos(s))

    def outputs_and_grads(fn):
        grads = jax.grad(lambda *a: loss(fn, *a), argnums=(0, 1, 2, 3, 4, 5))
        return jax.jit(lambda *a: (fn(*a), grads(*a)))(q, k, v, beta, log_alpha, s0)

    (y_c, s_c), g_c = outputs_and_grads(lambda *a: delta._delta_chunked(*a, chunk_size))
    (y_s, s_s), g_s = outputs_and_grads(delta._delta_sequential)
    assert scaled_error(y_c, y_s) < 1e-5 and scaled_error(s_c, s_s) < 1e-5
    for a, b in zip(g_c, g_s):
        assert np.all(np.isfinite(a)) and scaled_error(a, b) < 1e-4


@pytest.mark.parametrize("n", [1, 2, 5, 16, 32])
def test_unit_lower_inverse_matches_numpy(n):
    """The blocked inverse used by the chunked delta rule (instead of LAPACK trsm) against
    float64 `np.linalg.inv`, for power-of-two and padded sizes, with a batch of matrices whose
    strictly lower entries are like the chunk's β kᵢ·kⱼ (|entries| < 2)."""
    rng = np.random.default_rng(n)
    lower = np.tril(rng.uniform(-1.0, 1.0, (3, 2, n, n)), -1) + np.eye(n)
    inverse = delta._unit_lower_inverse(jnp.asarray(lower, jnp.float32))
    expected = np.linalg.inv(lower)
    assert inverse.shape == lower.shape
    assert scaled_error(inverse, expected) < 1e-5
    assert np.all(np.triu(np.asarray(inverse), 1) == 0)  # exactly lower-triangular


# ----------------------------------------------------------------------------- Gated DeltaNet, DeltaProduct

# A_log spread so the per-head decays range from slow to fast
DECAYS = {"a_log": lambda rng, shape: np.log(rng.uniform(0.5, 8.0, shape))}


@pytest.mark.parametrize(
    "name, hparams",
    [("gated_deltanet", {}),
     ("gated_deltanet", {"negative_eigenvalues": True, "chunk_size": 5, "d_conv": 2}),
     ("gated_deltanet", {"chunked": False, "d_key": 3, "d_value": 5}),
     ("deltaproduct", {"negative_eigenvalues": True}),
     ("deltaproduct", {"num_householder": 3, "forget_gate": True, "chunk_size": 4}),
     ("deltaproduct", {"forget_gate": True, "negative_eigenvalues": True, "chunked": False}),
     ("deltaproduct", {"negative_eigenvalues": True, "d_conv": 0, "output_gate": False})],
)
def test_householder_cells_match_reference(name, hparams):
    cell = delta.CELLS[name](d_hidden=D_HIDDEN, num_heads=H, **hparams)
    full = cell.hparams
    gated = name == "gated_deltanet" or full["forget_gate"]
    params = random_params(cell, 9, overrides=DECAYS if gated else None)
    xs, ys = run_scan(cell, params, 9)
    ref = ref_householder(f64(params), xs, H, full.get("num_householder", 1), gated,
                          full["negative_eigenvalues"], full["d_conv"], full["output_gate"])
    assert scaled_error(ys, ref) < TOL


# ----------------------------------------------------------------------------- counts and errors


@pytest.mark.parametrize(
    "name, hparams, d_in, d, h, k, v",
    [("deltanet", {}, 3, 8, 2, 4, 4),
     ("deltanet", {"d_key": 2, "d_value": 6}, 5, 12, 3, 2, 6),
     ("gated_deltanet", {"d_key": 2, "d_value": 6}, 5, 12, 3, 2, 6),
     ("gated_deltanet", {"d_conv": 0, "output_gate": False}, 3, 8, 2, 4, 4),
     ("deltaproduct", {"num_householder": 3}, 5, 12, 3, 4, 4),
     ("deltaproduct", {"num_householder": 2, "forget_gate": True, "d_conv": 2}, 3, 8, 2, 4, 4)],
)
def test_param_count(name, hparams, d_in, d, h, k, v):
    cell = delta.CELLS[name](d_hidden=d, num_heads=h, **hparams)
    params = cell.init(jax.random.key(0), d_in)
    if name == "deltanet":
        expected = d_in * h * (2 * k + v + 1) + h + h * v * d
    else:
        full = cell.hparams
        n, c = full.get("num_householder", 1), full["d_conv"]
        expected = (d_in * (h * k + n * h * (k + v + 1)) + c * (h * k + n * h * (k + v))
                    + v + h * v * d)  # q, k, v, β; the conv; w_norm; W_o
        if full.get("forget_gate", True):
            expected += d_in * h + 2 * h  # W_a, A_log, b_dt
        if full["output_gate"]:
            expected += d_in * h * v  # W_g
    assert base.param_count(params) == expected
    assert cell.input_dim(params) == d_in and cell.d_out == d


def test_init_follows_the_reference_layers():
    """DeltaNet's β starts near 0.5 (b_β = 0); the gated cells' A = exp(A_log) ∈ (0, 16) and
    softplus(b_dt) ∈ [1e-3, 0.1] (fla's GatedDeltaNet), w_norm = 1."""
    assert np.all(np.asarray(delta.make_deltanet().init(jax.random.key(8), D_IN)["b_beta"]) == 0)
    params = f64(delta.make_gated_deltanet(num_heads=64).init(jax.random.key(8), D_IN))
    a, dt = np.exp(params["a_log"]), np.log1p(np.exp(params["b_dt"]))
    assert np.all((0 < a) & (a < 16)) and a.max() > 8
    assert np.all((1e-3 - 1e-9 <= dt) & (dt <= 0.1 + 1e-9)) and np.all(params["w_norm"] == 1)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("deltanet", {"chunk_size": 0}, "chunk_size must be a positive int"),
        ("deltanet", {"chunked": "no"}, "chunked must be True or False"),
        ("deltanet", {"head_norm": "layer"}, r"head_norm must be one of \('rms', 'group'\)"),
        ("deltanet", {"convention": "torch"}, r"convention must be one of \('paper', 'fla'\)"),
        ("gated_deltanet", {"d_conv": -1}, "d_conv must be an int >= 0"),
        ("gated_deltanet", {"output_gate": "yes"}, "output_gate must be True or False"),
        ("gated_deltanet", {"d_hidden": 10, "num_heads": 4}, "multiple of num_heads"),
        ("deltaproduct", {"num_householder": 0}, "num_householder must be a positive int"),
        ("deltaproduct", {"forget_gate": 1}, "forget_gate must be True or False"),
    ],
)
def test_bad_hparams(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        delta.CELLS[name](**kwargs)
