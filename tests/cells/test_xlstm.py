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


def random_params(cell, seed):
    params = cell.init(jax.random.key(seed), D_IN)
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
