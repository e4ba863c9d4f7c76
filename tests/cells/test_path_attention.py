"""PaTH attention against a float64 NumPy transcription of the paper's definition.

The reference builds every Householder-like factor H_t = I − β_t w_t w_tᵀ as a K × K matrix and
scores q_tᵀ H_t ⋯ H_{s+1} k_s by explicit products, one query and key at a time (Yang et al.
2025, eq. 2; the forget-gate bias and the 1/sqrt(K) scale as flash-linear-attention's
`parallel_path_attention`). The cell must match it scanning whole with blocks of 1, 3 and 64
tokens (one block, several with padding, the sequential extreme), stepping token by token (the
in-place key updates of decoding), scanning in uneven pieces, with rows at different positions;
its cache must hold the keys carried to the last token. Tolerance: max |cell − ref| /
max(1, max |ref|) <= 1e-5 (fp32).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqbench
from seqbench.cells import base
from tests.cells.whole_sequence import scan_step_and_pieces

TOL = 1e-5
D_IN, WIDTH, HEADS = 5, 8, 2


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def features_ref(params, xs, hp):
    """One sequence xs (T, d_in) -> per head q, k, v, w (H, T, K), β and F (H, T)."""
    p = {name: np.asarray(value, np.float64) for name, value in params.items()}
    xs = np.asarray(xs, np.float64)
    length, width = xs.shape[0], p["w_q"].shape[1]
    heads = hp["num_heads"]
    split = lambda a: a.reshape(length, heads, width // heads).transpose(1, 0, 2)
    q, k, v = (split(xs @ p[f"w_{n}"]) for n in "qkv")
    w = xs @ p["w_w1"] @ p["w_w2"] if hp["w_rank"] else xs @ p["w_w"]
    if hp["d_conv"]:
        taps = p["conv_w"]  # (d_conv, D): taps[-1] weighs the current input
        padded = np.concatenate([np.zeros((len(taps) - 1, width)), w])
        w = sum(padded[i : i + length] * taps[i] for i in range(len(taps)))
        w = w * sigmoid(w)
    w = split(w)
    w = w / np.sqrt(np.sum(w**2, axis=-1, keepdims=True) + 1e-6)
    beta = sigmoid(xs @ p["w_beta"] + p["b_beta"]).T * (2.0 if hp["negative_eigenvalues"] else 1.0)
    if hp["forget_gate"]:
        forget = np.cumsum(np.log(sigmoid(xs @ p["w_f"] + p["b_f"])), axis=0).T
    else:
        forget = np.zeros((heads, length))
    return q, k, v, w, beta, forget


def carried(w, beta, s, t):
    """H_t H_{t−1} ⋯ H_{s+1} of one head (the identity for s = t)."""
    product = np.eye(w.shape[-1])
    for r in range(t, s, -1):
        product = product @ (np.eye(w.shape[-1]) - beta[r] * np.outer(w[r], w[r]))
    return product


def path_ref(params, xs, hp):
    """One sequence (T, d_in) -> (ys (T, D), the keys carried to the end (T, H, K), F_T − F_s)."""
    q, k, v, w, beta, forget = features_ref(params, xs, hp)
    heads, length, head_dim = q.shape
    out = np.zeros((length, heads, head_dim))
    keys = np.zeros((length, heads, head_dim))
    for n in range(heads):
        for t in range(length):
            logits = np.array([
                (q[n, t] @ carried(w[n], beta[n], s, t) @ k[n, s] + forget[n, t] - forget[n, s])
                / math.sqrt(head_dim) for s in range(t + 1)])
            weights = np.exp(logits - logits.max())
            out[t, n] = (weights / weights.sum()) @ v[n, : t + 1]
        for s in range(length):
            keys[s, n] = carried(w[n], beta[n], s, length - 1) @ k[n, s]
    ys = out.reshape(length, -1) @ np.asarray(params["w_o"], np.float64)
    return ys, keys, (forget[:, -1:] - forget).T


def batched_ref(params, xs, hp):
    flat = np.asarray(xs).reshape(-1, *xs.shape[-2:])
    ys = np.stack([path_ref(params, x, hp)[0] for x in flat])
    return ys.reshape(*xs.shape[:-1], -1)


def rel_err(x, ref):
    return float(np.max(np.abs(np.asarray(x, np.float64) - ref)) / max(1.0, np.max(np.abs(ref))))


def setup(seed, batch_shape, length, **hp):
    cell = seqbench.cells.get("path_attention", d_hidden=WIDTH, num_heads=HEADS, **hp)
    cell = cell._replace(scan=jax.jit(cell.scan), step=jax.jit(cell.step))
    params = cell.init(jax.random.key(seed), D_IN)
    if "b_f" in params:  # forget gates away from σ(0) = 1/2, so the bias matters in the test
        params["b_f"] = jnp.asarray([2.0, -1.0])
    xs = jnp.asarray(np.random.default_rng(seed).normal(size=(*batch_shape, length, D_IN)),
                     jnp.float32)
    return cell, params, xs


VARIANTS = [
    {},
    {"forget_gate": True},
    {"d_conv": 0, "w_rank": 0, "negative_eigenvalues": False},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=["default", "forget_gate", "plain"])
@pytest.mark.parametrize("block_size,batch_shape", [(64, (2,)), (3, ()), (1, (2, 3))])
def test_scan_step_and_pieces_match_float64_reference(variant, block_size, batch_shape):
    length = 7
    cell, params, xs = setup(block_size, batch_shape, length, max_length=10,
                             block_size=block_size, **variant)
    hp = cell.hparams
    ref = batched_ref(params, xs, hp)
    final, *outputs = scan_step_and_pieces(cell, params, cell.initial_state(params, batch_shape),
                                           xs)
    assert all(rel_err(ys, ref) <= TOL for ys in outputs)
    np.testing.assert_array_equal(np.asarray(final.position), np.full(batch_shape, length))

    # the cache: every key carried to the last token, the values, then zeros
    x_row = np.asarray(xs).reshape(-1, length, D_IN)[0]
    _, keys_ref, forget_ref = path_ref(params, x_row, hp)
    first_row = lambda a: np.asarray(a).reshape(-1, *a.shape[len(batch_shape):])[0]
    keys = first_row(final.keys)
    assert rel_err(keys[:length], keys_ref) <= TOL and not np.any(keys[length:])
    if hp["forget_gate"]:
        assert rel_err(first_row(final.log_forget)[:length], forget_ref) <= TOL
    else:
        assert final.log_forget is None


def test_rows_at_different_positions():
    """A batch whose rows have seen 2 and 5 tokens continues each row correctly."""
    total = 8
    cell, params, xs = setup(11, (2,), total, max_length=total, block_size=2,
                             forget_gate=True)
    prefixes = (2, 5)
    row_states = [cell.scan(params, cell.initial_state(params, ()), xs[row, :n])[0]
                  for row, n in enumerate(prefixes)]
    state = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *row_states)
    chunk = jnp.stack([xs[row, n : n + 3] for row, n in enumerate(prefixes)])
    final, ys = cell.scan(params, state, chunk)
    for row, n in enumerate(prefixes):
        ref = path_ref(params, xs[row, : n + 3], cell.hparams)[0][n:]
        assert rel_err(ys[row], ref) <= TOL
    np.testing.assert_array_equal(np.asarray(final.position), [5, 8])


def test_blockwise_gradients_equal_the_sequential_form():
    """Blocks of 16 (UT transform) and of 1 (rank-one key updates, the decoding form) are two
    algorithms; their gradients agree on a 40-token sequence with β near 2."""
    grads = []
    for block_size in (16, 1):
        cell, params, xs = setup(4, (2,), 40, max_length=40, block_size=block_size,
                                 forget_gate=True)
        params["b_beta"] = jnp.full((HEADS,), 3.0)  # β = 2σ(3 + ·) ≈ 1.9: near-reflections
        weights = jax.random.normal(jax.random.key(9), (2, 40, WIDTH))
        state = cell.initial_state(params, (2,))
        loss = lambda p: jnp.sum(cell.scan(p, state, xs)[1] * weights)
        grads.append(jax.jit(jax.grad(loss))(params))
    for name in grads[0]:
        assert rel_err(grads[0][name], np.asarray(grads[1][name], np.float64)) <= 1e-4, name


def test_householder_factors_keep_keys_bounded_over_long_sequences():
    """|1 − β| < 1 along w and 1 elsewhere: carried keys never grow, over 300 tokens."""
    cell, params, xs = setup(6, (2,), 300, max_length=300)
    final, ys = cell.scan(params, cell.initial_state(params, (2,)), xs)
    k = np.asarray(xs @ params["w_k"]).reshape(2, 300, HEADS, -1)
    carried_norm = np.linalg.norm(np.asarray(final.keys), axis=-1)
    assert np.all(carried_norm <= np.linalg.norm(k, axis=-1) * (1 + 1e-5))
    assert bool(jnp.all(jnp.isfinite(ys)))


def test_cache_limit():
    cell, params, xs = setup(3, (2,), 6, max_length=4)
    with pytest.raises(ValueError, match="does not fit the KV cache of max_length=4"):
        cell.scan(params, cell.initial_state(params, (2,)), xs)


@pytest.mark.parametrize("hp,expected", [
    ({}, 3 * D_IN * WIDTH + WIDTH**2 + 32 * (D_IN + WIDTH) + 3 * WIDTH + (D_IN + 1) * HEADS),
    ({"forget_gate": True, "w_rank": 0, "d_conv": 0},
     3 * D_IN * WIDTH + WIDTH**2 + D_IN * WIDTH + 2 * (D_IN + 1) * HEADS),
])
def test_param_count_and_state_size(hp, expected):
    cell = seqbench.cells.get("path_attention", d_hidden=WIDTH, num_heads=HEADS, **hp)
    params = cell.init(jax.random.key(0), D_IN)
    assert base.param_count(params) == expected
    gate = HEADS if hp.get("forget_gate") else 0
    conv = (hp.get("d_conv", 3) - 1) * WIDTH if hp.get("d_conv", 3) else 0
    assert cell.state_size(params, 100) == 100 * (2 * WIDTH + gate) + conv
    assert base.state_floats(jax.eval_shape(
        lambda: cell.sized_for(100).initial_state(params, ()))) == cell.state_size(params, 100) + 1
    # (+ 1: the position counter, which attention's state_size leaves out too)


@pytest.mark.parametrize("kwargs,match", [
    ({"num_heads": 3}, "d_hidden=64 must be a multiple of num_heads=3"),
    ({"block_size": 0}, "block_size must be a positive int"),
    ({"w_rank": -1}, "w_rank must be an int >= 0"),
    ({"d_conv": 1.5}, "d_conv must be an int >= 0"),
    ({"forget_gate": "yes"}, "forget_gate must be"),
    ({"max_length": 0}, "max_length must be a positive int"),
])
def test_bad_hparams_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        seqbench.cells.get("path_attention", **kwargs)
