"""RWKV-7 against a float64 transcription of flash-linear-attention's `RWKV7Attention` (layer 0)
with its naive recurrent DPLR delta rule: h ← h·exp(w) + b (aᵀh) + k vᵀ, o = hᵀ r, stepped
token by token, where the cell runs the chunked UT form or a sequential scan. Parameters are
fresh random draws (LoRA down-projections nonzero, decays near their bound); tolerance 2e-5
after scaling by max(1, |ref|). (κ̂ is normalised as torch's F.normalize, u / max(|u|, 1e-12):
with seqbench's delta-rule L2 norm, u / sqrt(|u|² + 1e-6), the outputs differed by 2e-4
where the per-head GroupNorm amplifies the difference.)
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqbench.cells import base, rwkv
from tests.cells.test_xlstm import random_params, scaled_error

BATCH, STEPS, D_IN, D, HEADS = 2, 37, 3, 8, 2
TOL = 2e-5


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def ref_rwkv7(p, xs, heads):
    batch, steps, _ = xs.shape
    d = p["w_r"].shape[1]
    dim = d // heads
    shifted = np.concatenate([np.zeros((batch, 1, xs.shape[-1])), xs[:, :-1]], axis=1)
    xr, xw, xk, xv, xa, xg = (xs + (shifted - xs) * p["mix"][c] for c in range(6))
    lora = lambda x, which, f: f(x @ p[f"lora_{which}_a"]) @ p[f"lora_{which}_b"]
    w = -np.exp(-0.5) * sigmoid(lora(xw, "w", np.tanh) + p["b_w"])
    alpha = sigmoid(lora(xa, "a", lambda u: u) + p["b_a"])
    g = lora(xg, "g", sigmoid)
    r, k, v = xr @ p["w_r"], xk @ p["w_k"], xv @ p["w_v"]
    split = lambda u: u.reshape(batch, steps, heads, dim)
    kk = split(k * p["k_k"])
    kk = kk / np.maximum(np.linalg.norm(kk, axis=-1, keepdims=True), 1e-12)
    k = k * (1 + (alpha - 1) * p["k_a"])
    r, w, k, v, a, b = split(r), split(w), split(k), split(v), -kk, kk * split(alpha)
    h = np.zeros((batch, heads, dim, dim))
    o = np.zeros((batch, steps, heads, dim))
    for t in range(steps):
        h = (h * np.exp(w[:, t])[..., None]
             + b[:, t][..., :, None] * np.einsum("bhk,bhkv->bhv", a[:, t], h)[..., None, :]
             + k[:, t][..., :, None] * v[:, t][..., None, :])
        o[:, t] = np.einsum("bhk,bhkv->bhv", r[:, t], h)
    centred = o - o.mean(-1, keepdims=True)
    normed = centred / np.sqrt((centred ** 2).mean(-1, keepdims=True) + dim * 1e-5)
    normed = normed.reshape(batch, steps, d) * p["norm_w"] + p["norm_b"]
    bonus = ((r * k * p["r_k"]).sum(-1, keepdims=True) * v).reshape(batch, steps, d)
    return ((normed + bonus) * g) @ p["w_o"], h


@pytest.mark.parametrize("chunked, chunk_size", [(True, 16), (True, 5), (False, 16)])
def test_rwkv7_matches_the_fla_layer(chunked, chunk_size):
    cell = rwkv.make_rwkv7(d_hidden=D, num_heads=HEADS, chunked=chunked, chunk_size=chunk_size)
    p = random_params(cell, 4, D_IN)
    xs = np.random.default_rng(4).standard_normal((BATCH, STEPS, D_IN))
    f32 = {name: jnp.asarray(leaf, jnp.float32) for name, leaf in p.items()}
    state, ys = jax.jit(cell.scan)(f32, cell.initial_state(f32, (BATCH,)),
                                   jnp.asarray(xs, jnp.float32))
    ref_ys, h = ref_rwkv7(p, xs, HEADS)
    assert scaled_error(ys, ref_ys) < TOL
    assert scaled_error(state.s, h) < TOL
    np.testing.assert_array_equal(np.asarray(state.x_prev), np.asarray(xs[:, -1], np.float32))


@pytest.mark.parametrize("chunk_size", [4, 16])
def test_dplr_chunked_equals_sequential_with_state(chunk_size):
    """Values and gradients, entering with a non-zero state, decays at RWKV-7's bound (log w
    down to −0.6065) and a, b of a normalised key scaled by α ∈ (0, 1) (rows can leave the
    unit ball transiently)."""
    rng = np.random.default_rng(chunk_size)
    shape = (BATCH, HEADS, 23, 4)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    kappa = unit(rng.standard_normal(shape))
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    args = (f32(rng.standard_normal(shape)), f32(rwkv.LOG_DECAY_BOUND * rng.uniform(size=shape)),
            f32(rng.standard_normal(shape)), f32(rng.standard_normal(shape)), f32(-kappa),
            f32(kappa * rng.uniform(size=shape)), f32(rng.standard_normal((BATCH, HEADS, 4, 4))))

    def loss(fn, *a):
        o, s = fn(*a)
        return jnp.sum(jnp.sin(o)) + jnp.sum(jnp.cos(s))

    def values_and_grads(fn):
        grads = jax.grad(lambda *a: loss(fn, *a), argnums=tuple(range(7)))
        return jax.jit(lambda *a: (fn(*a), grads(*a)))(*args)

    (o_c, s_c), g_c = values_and_grads(lambda *a: rwkv._dplr_chunked(*a, chunk_size))
    (o_s, s_s), g_s = values_and_grads(rwkv._dplr_sequential)
    assert scaled_error(o_c, np.asarray(o_s, np.float64)) < 1e-5
    assert scaled_error(s_c, np.asarray(s_s, np.float64)) < 1e-5
    for a, b in zip(g_c, g_s):
        assert np.all(np.isfinite(np.asarray(a)))
        assert scaled_error(a, np.asarray(b, np.float64)) < 1e-4


def test_rwkv7_init_and_param_count():
    d_in, d, heads = 5, 16, 2
    cell = rwkv.make_rwkv7(d_hidden=d, num_heads=heads)
    params = cell.init(jax.random.key(0), d_in)
    assert np.all(np.asarray(params["w_o"]) == 0) and np.allclose(params["k_a"], 1.02)
    log_w = rwkv.LOG_DECAY_BOUND * jax.nn.sigmoid(params["b_w"])
    assert np.all((np.asarray(log_w) < 0) & (np.asarray(log_w) > -0.61))
    rank = 32
    assert base.param_count(params) == (6 * d_in + 3 * d_in * d + d * d + 2 * d + d
                                        + 2 * d + 2 * d + 3 * (d_in * rank + rank * d))


def test_rwkv7_bad_hparams():
    with pytest.raises(ValueError, match="multiple of num_heads=3"):
        rwkv.make_rwkv7(d_hidden=8, num_heads=3)
