"""The attention cell against a float64 NumPy causal attention over the whole sequence.

The reference applies RoPE as a complex rotation of the pairs (i, i + E/2) and takes a full
T × T causal softmax; the cell must match it scanning the whole sequence, stepping token by
token, scanning in uneven pieces with the carried KV cache, and with rows of one batch at
different positions. Tolerance: max |cell - ref| / max(1, max |ref|) <= 1e-5 (fp32).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqbench
from seqbench.cells import attention, base
from tests.cells.whole_sequence import scan_step_and_pieces

TOL = 1e-5
D_IN = 5


def f64(tree):
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


def rope_ref(x, positions):
    """x (T, N, E): rotate the complex number x_i + i·x_{i+E/2} by positions · 10000^(-2i/E)."""
    half = x.shape[-1] // 2
    theta = 10000.0 ** (-2.0 * np.arange(half) / x.shape[-1])
    z = (x[..., :half] + 1j * x[..., half:]) * np.exp(1j * positions[:, None, None] * theta)
    return np.concatenate([z.real, z.imag], axis=-1)


def attention_ref(params, xs, num_heads, positional):
    """One sequence xs (T, d_in) -> ys (T, H), and the rotated keys and values (T, N, E)."""
    p = f64(params)
    xs = np.asarray(xs, np.float64)
    length, d_hidden = xs.shape[0], p["w_q"].shape[1]
    e = d_hidden // num_heads
    q, k, v = ((xs @ p[w]).reshape(length, num_heads, e) for w in ("w_q", "w_k", "w_v"))
    if positional == "rope":
        positions = np.arange(length, dtype=np.float64)
        q, k = rope_ref(q, positions), rope_ref(k, positions)
    ys = np.zeros((length, d_hidden))
    for t in range(length):
        heads = []
        for n in range(num_heads):
            scores = k[: t + 1, n] @ q[t, n] / math.sqrt(e)
            w = np.exp(scores - scores.max())
            heads.append((w / w.sum()) @ v[: t + 1, n])
        ys[t] = np.concatenate(heads) @ p["w_o"]
    return ys, k, v


def batched_ref(params, xs, num_heads, positional):
    flat = np.asarray(xs).reshape(-1, *xs.shape[-2:])
    ys = np.stack([attention_ref(params, x, num_heads, positional)[0] for x in flat])
    return ys.reshape(*xs.shape[:-1], -1)


def rel_err(x, ref):
    return float(np.max(np.abs(np.asarray(x, np.float64) - ref)) / max(1.0, np.max(np.abs(ref))))


def setup(seed, batch_shape, length, d_hidden=8, **hp):
    """A cell whose scan and step are jitted (the path training uses), params and inputs."""
    cell = seqbench.cells.get("attention", d_hidden=d_hidden, **hp)
    cell = cell._replace(scan=jax.jit(cell.scan), step=jax.jit(cell.step))
    rng = np.random.default_rng(seed)
    params = cell.init(jax.random.PRNGKey(seed), D_IN)
    xs = jnp.asarray(rng.normal(size=(*batch_shape, length, D_IN)), jnp.float32)
    return cell, params, xs


CASES = [
    (1, "rope", (2,)),
    (2, "rope", ()),
    (4, "rope", (2, 3)),
    (2, "none", (2,)),
]


@pytest.mark.parametrize("num_heads,positional,batch_shape", CASES)
def test_scan_step_and_pieces_match_float64_reference(num_heads, positional, batch_shape):
    length = 7
    cell, params, xs = setup(num_heads, batch_shape, length, num_heads=num_heads,
                             positional=positional, max_length=10)
    ref = batched_ref(params, xs, num_heads, positional)
    final, *outputs = scan_step_and_pieces(cell, params, cell.initial_state(params, batch_shape),
                                           xs)
    assert all(rel_err(ys, ref) <= TOL for ys in outputs)
    np.testing.assert_array_equal(np.asarray(final.position), np.full(batch_shape, length))

    # the cache holds the rotated keys and the values of the 7 tokens, then zeros
    x_row = np.asarray(xs).reshape(-1, length, D_IN)[0]
    _, k_ref, v_ref = attention_ref(params, x_row, num_heads, positional)
    keys = np.asarray(final.keys).reshape(-1, *final.keys.shape[-3:])[0]
    values = np.asarray(final.values).reshape(-1, *final.values.shape[-3:])[0]
    assert rel_err(keys[:length], k_ref) <= TOL and rel_err(values[:length], v_ref) <= TOL
    assert not np.any(keys[length:]) and not np.any(values[length:])


def test_rows_at_different_positions():
    """A batch whose rows have seen 2 and 5 tokens continues each row correctly."""
    num_heads, total = 2, 8
    cell, params, xs = setup(11, (2,), total, num_heads=num_heads, max_length=total)
    prefixes = (2, 5)
    row_states = [
        cell.scan(params, cell.initial_state(params, ()), xs[row, :n])[0]
        for row, n in enumerate(prefixes)
    ]
    state = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *row_states)
    chunk = jnp.stack([xs[row, n : n + 3] for row, n in enumerate(prefixes)])
    final, ys = cell.scan(params, state, chunk)
    for row, n in enumerate(prefixes):
        ref = attention_ref(params, xs[row, : n + 3], num_heads, "rope")[0][n:]
        assert rel_err(ys[row], ref) <= TOL
    np.testing.assert_array_equal(np.asarray(final.position), [5, 8])


def test_cache_limits():
    cell, params, xs = setup(3, (2,), 6, max_length=4)
    state = cell.initial_state(params, (2,))
    with pytest.raises(ValueError, match="does not fit the KV cache of max_length=4"):
        cell.scan(params, state, xs)
    # a chunk of exactly max_length fits; tokens past the cache are dropped, never NaN
    full, ys = cell.scan(params, state, xs[:, :4])
    assert rel_err(ys, batched_ref(params, xs[:, :4], 4, "rope")) <= TOL
    over, ys_over = cell.scan(params, full, xs[:, 4:])
    assert bool(jnp.all(jnp.isfinite(ys_over)))
    np.testing.assert_array_equal(np.asarray(over.keys), np.asarray(full.keys))
    np.testing.assert_array_equal(np.asarray(over.position), [6, 6])


def test_masked_softmax_is_stable_and_safe_when_all_masked():
    scores = jnp.array([[1e4, 1e4 - 1.0, -3.0], [5.0, 2.0, 1.0]])
    mask = jnp.array([[True, True, False], [False, False, False]])
    probs = attention.masked_softmax(scores, mask)
    np.testing.assert_allclose(np.asarray(probs[0]), [1 / (1 + np.exp(-1)), 1 / (1 + np.e), 0],
                               rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(probs[1]), 0.0)
    grads = jax.grad(lambda s: jnp.sum(attention.masked_softmax(s, mask) * s))(scores)
    assert bool(jnp.all(jnp.isfinite(grads)))
    np.testing.assert_array_equal(np.asarray(grads[1]), 0.0)


def test_gradients_are_finite_with_a_mostly_empty_cache():
    cell, params, xs = setup(5, (2,), 3, max_length=16)
    state = cell.initial_state(params, (2,))
    grads = jax.grad(lambda p: jnp.sum(cell.scan(p, state, xs)[1] ** 2))(params)
    for g in jax.tree_util.tree_leaves(grads):
        assert bool(jnp.all(jnp.isfinite(g))) and bool(jnp.any(g != 0))


def test_rope_preserves_norms_and_is_identity_at_position_zero():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 3, 8))
    positions = jnp.broadcast_to(jnp.arange(5), (2, 5))
    rotated = attention.rope(x, positions)
    np.testing.assert_allclose(jnp.linalg.norm(rotated, axis=-1), jnp.linalg.norm(x, axis=-1),
                               rtol=1e-5)
    np.testing.assert_allclose(rotated[:, 0], x[:, 0], rtol=0, atol=0)


@pytest.mark.parametrize("d_in,d_hidden,num_heads", [(3, 8, 2), (5, 12, 3)])
def test_param_count_and_state_size(d_in, d_hidden, num_heads):
    cell = seqbench.cells.get("attention", d_hidden=d_hidden, num_heads=num_heads,
                              positional="none", max_length=32)
    params = cell.init(jax.random.PRNGKey(0), d_in)
    assert base.param_count(params) == 3 * d_in * d_hidden + d_hidden**2
    assert cell.state_size(params, 100) == 2 * 100 * d_hidden
    assert cell.state_size(params, 0) == 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"d_hidden": 0}, "d_hidden must be a positive int"),
        ({"num_heads": 3}, "num_heads must divide d_hidden=64"),
        ({"positional": "alibi"}, r"positional must be one of \('rope', 'none'\)"),
        ({"d_hidden": 6, "num_heads": 2}, "needs an even head_dim"),
        ({"max_length": 0}, "max_length must be a positive int"),
    ],
)
def test_bad_hparams_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        seqbench.cells.get("attention", **kwargs)
