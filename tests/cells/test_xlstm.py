"""sLSTM against a float64 transcription of the xlstm package's layer and vanilla kernel.

The reference steps `slstm_forward_pointwise` of NX-AI/xlstm (its first-step rule included:
m = ĩ when every n is 0, which the cell does not copy, so the test also checks that the
stabiliser changes no output), the causal conv with SiLU before the input and forget gates,
the head-wise recurrent matrix and the per-head LayerNorm with weight 1 + w. Parameters are
fresh random draws (R and w_norm nonzero); tolerance 2e-5 after scaling by max(1, |ref|).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqbench.cells import base, xlstm

BATCH, STEPS, D_IN, D, HEADS = 2, 13, 3, 8, 2
TOL = 2e-5


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def ref_slstm(p, xs, heads, d_conv, state=None):
    batch, steps, d_in = xs.shape
    d = p["b"].shape[1]
    head_dim = d // heads
    gated = xs
    if d_conv:
        padded = np.concatenate([np.zeros((batch, d_conv - 1, d_in)), xs], axis=1)
        conv = p["conv_b"] + sum(padded[:, j:j + steps] * p["conv_w"][j] for j in range(d_conv))
        gated = conv * sigmoid(conv)
    w = p["w"].reshape(d_in, 4, d)
    pre = np.concatenate([np.einsum("btd,dgk->btgk", gated, w[:, :2]),
                          np.einsum("btd,dgk->btgk", xs, w[:, 2:])], axis=2) + p["b"]
    c, n, m, h = state if state is not None else [np.zeros((batch, d)) for _ in range(4)]
    ys = []
    for t in range(steps):
        r_h = np.einsum("bhp,hpgq->bghq", h.reshape(batch, heads, head_dim), p["r"])
        i_raw, f_raw, z_raw, o_raw = np.moveaxis(pre[:, t] + r_h.reshape(batch, 4, d), 1, 0)
        log_f_plus_m = m - np.log1p(np.exp(-f_raw))
        m_new = i_raw if np.all(n == 0.0) else np.maximum(i_raw, log_f_plus_m)
        i_gate, f_gate = np.exp(i_raw - m_new), np.exp(log_f_plus_m - m_new)
        c = f_gate * c + i_gate * np.tanh(z_raw)
        n = f_gate * n + i_gate
        m = m_new
        h = sigmoid(o_raw) * c / n
        per_head = h.reshape(batch, heads, head_dim)
        centred = per_head - per_head.mean(-1, keepdims=True)
        normed = centred / np.sqrt((centred ** 2).mean(-1, keepdims=True) + 1e-5)
        ys.append(normed.reshape(batch, d) * (1.0 + p["w_norm"]))
    return np.stack(ys, 1), (c, n, m, h)


def random_params(cell, seed, d_in=D_IN):
    """init, then every leaf nudged by N(0, 0.3²) (float64): biases and gates spread out."""
    params = cell.init(jax.random.key(seed), d_in)
    rng = np.random.default_rng(seed)
    return {name: np.asarray(leaf, np.float64) + 0.3 * rng.standard_normal(leaf.shape)
            for name, leaf in params.items()}


def scaled_error(x, ref):
    x = np.asarray(x, np.float64)
    return np.max(np.abs(x - ref)) / max(1.0, np.max(np.abs(ref)))


@pytest.mark.parametrize("d_conv", [4, 0])
def test_slstm_matches_the_xlstm_package(d_conv):
    cell = xlstm.make_slstm(d_hidden=D, num_heads=HEADS, d_conv=d_conv)
    p = random_params(cell, 3 + d_conv)
    xs = np.random.default_rng(d_conv).standard_normal((BATCH, STEPS, D_IN))
    f32 = {name: jnp.asarray(leaf, jnp.float32) for name, leaf in p.items()}
    state, ys = jax.jit(cell.scan)(f32, cell.initial_state(f32, (BATCH,)),
                                   jnp.asarray(xs, jnp.float32))
    ref_ys, (c, n, m, h) = ref_slstm(p, xs, HEADS, d_conv)
    assert scaled_error(ys, ref_ys) < TOL
    assert scaled_error(state.h, h) < TOL
    # c and n are stabilised differently at the first step (see the module docstring): their
    # ratio, and every output, agree
    assert scaled_error(state.c / state.n, c / n) < TOL


def test_slstm_forget_bias_is_the_power_law_and_the_param_count():
    cell = xlstm.make_slstm(d_hidden=12, num_heads=3, d_conv=4)
    params = cell.init(jax.random.key(0), 5)
    expected = 5.0 - 12.0 * (np.arange(4) / 3) ** 0.3
    np.testing.assert_allclose(np.asarray(params["b"][1]), np.tile(expected, 3), rtol=1e-6)
    assert np.all(np.asarray(params["b"])[[0, 2, 3]] == 0) and np.all(np.asarray(params["r"]) == 0)
    d_in, d, p_dim = 5, 12, 4
    assert base.param_count(params) == (4 * d_in * d + 4 * d * p_dim + 4 * d + d
                                        + (4 + 1) * d_in)


@pytest.mark.parametrize("kwargs, message", [
    ({"d_hidden": 10, "num_heads": 4}, "multiple of num_heads=4"),
    ({"d_conv": -1}, "d_conv must be an int >= 0"),
])
def test_bad_hparams(kwargs, message):
    with pytest.raises(ValueError, match=message):
        xlstm.make_slstm(**kwargs)


# ----------------------------------------------------------------------------- mLSTM


def ref_mlstm(p, xs, heads):
    """The xlstm package's `recurrent_step_stabilized_simple` stepped in float64, then the
    per-head LayerNorm with weight 1 + w and the output gate σ(x W_o)."""
    batch, steps, _ = xs.shape
    d = p["w_q"].shape[1]
    dim = d // heads
    split = lambda u: u.reshape(batch, steps, heads, dim)
    q, k, v = split(xs @ p["w_q"]), split(xs @ p["w_k"]) / np.sqrt(dim), split(xs @ p["w_v"])
    i_raw = xs @ p["w_i"] + p["b_i"]
    log_f = -np.log1p(np.exp(-(xs @ p["w_f"] + p["b_f"])))
    c, n, m = np.zeros((batch, heads, dim, dim)), np.zeros((batch, heads, dim)), np.zeros((batch, heads))
    ys = []
    for t in range(steps):
        m_new = np.maximum(log_f[:, t] + m, i_raw[:, t])
        f_gate, i_gate = np.exp(log_f[:, t] + m - m_new), np.exp(i_raw[:, t] - m_new)
        c = f_gate[..., None, None] * c + i_gate[..., None, None] * np.einsum(
            "bhk,bhv->bhkv", k[:, t], v[:, t])
        n = f_gate[..., None] * n + i_gate[..., None] * k[:, t]
        m = m_new
        h = np.einsum("bhk,bhkv->bhv", q[:, t], c) / (
            np.maximum(np.abs((q[:, t] * n).sum(-1)), np.exp(-m)) + 1e-6)[..., None]
        centred = h - h.mean(-1, keepdims=True)
        normed = centred / np.sqrt((centred ** 2).mean(-1, keepdims=True) + 1e-5)
        ys.append(normed.reshape(batch, d) * (1.0 + p["w_norm"]) * sigmoid(xs[:, t] @ p["w_o"]))
    return np.stack(ys, 1), (c, n, m)


@pytest.mark.parametrize("chunked, chunk_size", [(True, 4), (True, 32), (False, 32)])
def test_mlstm_matches_the_xlstm_recurrence(chunked, chunk_size):
    cell = xlstm.make_mlstm(d_hidden=D, num_heads=HEADS, chunked=chunked, chunk_size=chunk_size)
    p = random_params(cell, 11)
    rng = np.random.default_rng(11)
    p["w_i"] = rng.standard_normal(p["w_i"].shape)  # input gates ĩ over roughly ±4
    p["w_f"] = rng.standard_normal(p["w_f"].shape)
    xs = rng.standard_normal((BATCH, STEPS, D_IN))
    f32 = {name: jnp.asarray(leaf, jnp.float32) for name, leaf in p.items()}
    state, ys = jax.jit(cell.scan)(f32, cell.initial_state(f32, (BATCH,)),
                                   jnp.asarray(xs, jnp.float32))
    ref_ys, (c, n, m) = ref_mlstm(p, xs, HEADS)
    assert scaled_error(ys, ref_ys) < TOL
    assert scaled_error(state.m, m) < TOL
    assert scaled_error(state.c, c) < TOL and scaled_error(state.n, n) < TOL


@pytest.mark.parametrize("chunk_size", [3, 8])
def test_mlstm_chunked_equals_sequential_with_large_input_gates(chunk_size):
    """Input gates ĩ up to 60 (exp(60) overflows float32) and forget gates down to log σ = −20,
    entering with a non-zero state: chunked and sequential agree in values and gradients, and
    everything stays finite."""
    rng = np.random.default_rng(chunk_size)
    shape = (BATCH, HEADS, 11)
    q, k, v = (jnp.asarray(rng.standard_normal(shape + (4,)), jnp.float32) for _ in range(3))
    i_raw = jnp.asarray(rng.uniform(-10.0, 60.0, shape), jnp.float32)
    log_f = jnp.asarray(-rng.exponential(2.0, shape) * (rng.uniform(size=shape) < 0.7),
                        jnp.float32).clip(-20.0, 0.0)
    state = (jnp.asarray(rng.standard_normal((BATCH, HEADS, 4, 4)), jnp.float32),
             jnp.asarray(rng.uniform(0.5, 1.0, (BATCH, HEADS, 4)), jnp.float32),
             jnp.asarray(rng.uniform(-1.0, 1.0, (BATCH, HEADS)), jnp.float32))

    def loss(fn, *args):
        h, (c, n, m) = fn(*args)
        return jnp.sum(jnp.sin(h)) + jnp.sum(jnp.cos(c)) + jnp.sum(n) + jnp.sum(m)

    def values_and_grads(fn):
        grads = jax.grad(lambda *a: loss(fn, *a), argnums=(0, 1, 2, 3, 4, 5))
        return jax.jit(lambda *a: (fn(*a), grads(*a)))(q, k, v, i_raw, log_f, state)

    (h_c, s_c), g_c = values_and_grads(lambda *a: xlstm._mlstm_chunked(*a, chunk_size))
    (h_s, s_s), g_s = values_and_grads(xlstm._mlstm_sequential)
    assert scaled_error(h_c, np.asarray(h_s, np.float64)) < 1e-5
    for a, b in zip(s_c, s_s):
        assert scaled_error(a, np.asarray(b, np.float64)) < 1e-5
    for a, b in zip(jax.tree_util.tree_leaves(g_c), jax.tree_util.tree_leaves(g_s)):
        assert np.all(np.isfinite(np.asarray(a)))
        assert scaled_error(a, np.asarray(b, np.float64)) < 1e-4


def test_mlstm_init_and_param_count():
    cell = xlstm.make_mlstm(d_hidden=12, num_heads=3)
    params = cell.init(jax.random.key(0), 5)
    np.testing.assert_allclose(np.asarray(params["b_f"]), [3.0, 4.5, 6.0], rtol=1e-6)
    assert np.all(np.asarray(params["w_i"]) == 0) and np.all(np.asarray(params["w_f"]) == 0)
    assert base.param_count(params) == 4 * 5 * 12 + 2 * 5 * 3 + 2 * 3 + 12
