"""Gated cells (seqbench/cells/gated.py) against float64 NumPy references of their equations.

Each reference below is written from the equations (Mamba/S6, RG-LRU, GateLoop, minGRU,
minLSTM), loops over time one step at a time in float64 (complex128 for GateLoop), and shares no
code with the cells. The cells compute in float32, so outputs are compared at 1e-5 relative to
the largest reference value (fp32 round-off over ~10 steps of small matmuls stays well below).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kernels
import seqbench
from seqbench.cells import gated
from seqbench.cells.base import param_count

BATCH, STEPS, D_IN, D_HIDDEN = 2, 9, 5, 16


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    return np.logaddexp(0.0, x)


def silu(x):
    return x * sigmoid(x)


# ----------------------------------------------------------------------------- references


def ref_mamba(p, xs, h, conv, *, block, negative):
    """S6 (Gu & Dao 2023, Alg. 2) step by step; with `block` the Mamba block around it."""
    a_cont = -np.exp(p["a_log"])  # (E, N), S4D-Real init gives -(n+1)
    history = list(np.moveaxis(conv, 1, 0)) if block else []  # earlier conv inputs x'
    ys, transitions = [], []
    for t in range(xs.shape[1]):
        if block:
            xz = xs[:, t] @ p["w_in"]
            e = xz.shape[-1] // 2
            x_branch, z = xz[:, :e], xz[:, e:]
            history.append(x_branch)
            taps = p["conv_w"].shape[0]
            # causal depthwise conv: weight row taps-1 multiplies the newest input
            conv_out = p["conv_b"] + sum(
                p["conv_w"][taps - 1 - j] * history[-1 - j] for j in range(taps)
            )
            u = silu(conv_out)
        else:
            u = xs[:, t] @ p["w_in"]
        delta = softplus((u @ p["w_r"]) @ p["w_dt"] + p["b_dt"])  # (B, E)
        b_sel, c_sel = u @ p["w_b"], u @ p["w_c"]  # (B, N)
        a_bar = np.exp(delta[:, :, None] * a_cont[None])  # ZOH on A
        if negative:
            a_bar = 2.0 * a_bar - 1.0
        b_bar_u = delta[:, :, None] * b_sel[:, None, :] * u[:, :, None]  # Euler on B
        h = a_bar * h + b_bar_u
        y = np.einsum("ben,bn->be", h, c_sel) + p["d"] * u
        if block:
            y = (y * silu(z)) @ p["w_out"]
        ys.append(y)
        transitions.append(a_bar)
    taps_kept = p["conv_w"].shape[0] - 1 if block else 0
    conv_last = np.stack(history[len(history) - taps_kept :], axis=1) if block else None
    return np.stack(ys, 1), (h, conv_last), np.min(transitions)


def ref_rg_lru(p, xs, h, *, c, negative, first_token_reset=False):
    """Griffin eq. (1)-(4) with a = sigmoid(Λ), a_t = a^(c r_t), computed directly in float64.
    `first_token_reset`: RecurrentGemma's rule at segment_pos == 0, h_0 = i_0 ⊙ x̃_0."""
    ys, transitions = [], []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        r = sigmoid(x @ p["w_a"] + p["b_a"])
        i = sigmoid(x @ p["w_x"] + p["b_x"])
        a = sigmoid(p["lam"]) ** (c * r)
        if negative:
            a = 2.0 * a - 1.0
        if first_token_reset and t == 0:
            h = i * (x @ p["w_in"])
        else:
            h = a * h + np.sqrt(1.0 - a**2) * (i * (x @ p["w_in"]))
        ys.append(h)
        transitions.append(a)
    return np.stack(ys, 1), h, np.min(transitions)


def ref_gateloop(p, xs, s, *, heads, negative):
    """GateLoop recurrent mode per head: S = a ⊙ S + k vᵀ, o = Re(q S), y = W_o [o_1..o_H]."""
    batch, steps, _ = xs.shape
    d = p["w_q"].shape[1] // heads
    ys, transitions = [], []
    for t in range(steps):
        x = xs[:, t]
        outs = np.zeros((batch, heads * d))
        new_s = np.empty_like(s)
        for b in range(batch):
            for hd in range(heads):
                cols = slice(hd * d, (hd + 1) * d)
                q, k, v = (x[b] @ p[w][:, cols] for w in ("w_q", "w_k", "w_v"))
                magnitude = sigmoid(x[b] @ p["w_m"][:, cols])
                if negative:
                    magnitude = 2.0 * magnitude - 1.0
                a = magnitude * np.exp(1j * (x[b] @ p["w_theta"][:, cols]))
                new_s[b, hd] = a[:, None] * s[b, hd] + np.outer(k, v)
                outs[b, cols] = np.real(q @ new_s[b, hd])
                transitions.append(magnitude)
        s = new_s
        ys.append(outs @ p["w_out"])
    return np.stack(ys, 1), s, np.min(transitions)


def ref_mingru(p, xs, h, *, negative):
    """minGRU (Feng et al. 2024, Alg. 'minGRU' sequential mode)."""
    ys, transitions = [], []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        z = sigmoid(x @ p["w_z"] + p["b_z"])
        h_tilde = x @ p["w_h"] + p["b_h"]
        keep = 1.0 - z
        if negative:
            keep = 2.0 * keep - 1.0
        h = keep * h + z * h_tilde
        ys.append(h)
        transitions.append(keep)
    return np.stack(ys, 1), h, np.min(transitions)


def ref_minlstm(p, xs, h, *, negative):
    """minLSTM (Feng et al. 2024, Alg. 'minLSTM' sequential mode) with normalised f, i."""
    ys, transitions = [], []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        f = sigmoid(x @ p["w_f"] + p["b_f"])
        i = sigmoid(x @ p["w_i"] + p["b_i"])
        h_tilde = x @ p["w_h"] + p["b_h"]
        f_n, i_n = f / (f + i), i / (f + i)
        if negative:
            f_n = 2.0 * f_n - 1.0
        h = f_n * h + i_n * h_tilde
        ys.append(h)
        transitions.append(f_n)
    return np.stack(ys, 1), h, np.min(transitions)


# ----------------------------------------------------------------------------- reference tests


def _random_params(cell, rng):
    """Fresh random params with the shapes `init` gives (no init values, so the references do
    not lean on them): weights w_* ~ N(0, 1/fan_in), every other leaf ~ N(0, 1)."""
    shapes = jax.eval_shape(lambda key: cell.init(key, D_IN), jax.random.PRNGKey(0))
    return {
        name: rng.standard_normal(s.shape) / (math.sqrt(s.shape[0]) if name.startswith("w") else 1)
        for name, s in shapes.items()
    }


def _random_state(cell, params, rng):
    """A random (nonzero) state of the cell's structure: zeros + N(0, 1) (complex: both parts)."""

    def draw(leaf):
        x = rng.standard_normal(leaf.shape)
        if jnp.iscomplexobj(leaf):
            x = x + 1j * rng.standard_normal(leaf.shape)
        return x

    return jax.tree_util.tree_map(draw, cell.initial_state(params, (BATCH,)))


def _f32(tree):
    """`tree`'s arrays in float32 (complex64 where complex)."""
    return jax.tree_util.tree_map(
        lambda x: jnp.asarray(x, jnp.complex64 if np.iscomplexobj(x) else jnp.float32), tree)


def _run(cell, seed):
    """Random params, state and inputs in float64, and the cell's scan of them in float32."""
    rng = np.random.default_rng(seed)
    params = _random_params(cell, rng)
    state = _random_state(cell, params, rng)
    xs = rng.standard_normal((BATCH, STEPS, D_IN))
    state_last, ys = jax.jit(cell.scan)(_f32(params), _f32(state), _f32(xs))
    return params, state, xs, (state_last, ys)


def _close(got, want):
    got = np.asarray(got)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(want).max()))


def _check(result, ys_ref, state_ref, state_of):
    state, ys = result
    _close(ys, ys_ref)
    for got, want in zip(state_of(state), state_ref):
        _close(got, want)


NEG = pytest.mark.parametrize("negative", [False, True], ids=["pos", "neg"])


@NEG
@pytest.mark.parametrize("block", [False, True], ids=["s6", "block"])
def test_mamba_matches_reference(block, negative):
    cell = seqbench.cells.get(
        "mamba", d_hidden=D_HIDDEN, d_state=4, block=block, d_conv=3,
        negative_eigenvalues=negative,
    )
    p, s, xs, result = _run(cell, seed=1)
    ys, (h, conv), a_min = ref_mamba(p, xs, s.ssm, s.conv, block=block, negative=negative)
    want = (h, conv) if block else (h,)
    _check(result, ys, want, lambda st: (st.ssm, st.conv) if block else (st.ssm,))
    assert (a_min < 0) == negative  # the option really produces negative transitions


@NEG
def test_rg_lru_matches_reference(negative):
    cell = seqbench.cells.get("rg_lru", d_hidden=D_HIDDEN, negative_eigenvalues=negative)
    # Random Λ ~ N(0, 1) (the init has a^c >= 0.9): a_t spans (0, 1) and 2a - 1 < 0 occurs.
    p, s, xs, result = _run(cell, seed=2)
    ys, h, a_min = ref_rg_lru(p, xs, s, c=8.0, negative=negative)
    _check(result, ys, (h,), lambda st: (st,))
    assert (a_min < 0) == negative


def test_rg_lru_recurrentgemma_resets_at_the_first_token_only():
    """convention="recurrentgemma": from a random state, h_0 = i_0 ⊙ x̃_0 (the state is erased),
    then Griffin's recurrence; scanning in two pieces or stepping resets once, as the whole."""
    cell = seqbench.cells.get("rg_lru", d_hidden=D_HIDDEN, convention="recurrentgemma")
    rng = np.random.default_rng(2)
    p = _random_params(cell, rng)
    xs = rng.standard_normal((BATCH, STEPS, D_IN))
    params = {name: jnp.asarray(leaf, jnp.float32) for name, leaf in p.items()}
    xs32 = jnp.asarray(xs, jnp.float32)
    fresh = cell.initial_state(params, (BATCH,))
    h_before = rng.standard_normal((BATCH, D_HIDDEN))
    state, ys = jax.jit(cell.scan)(params, fresh._replace(h=jnp.asarray(h_before, jnp.float32)),
                                   xs32)
    ref_ys, ref_h, _ = ref_rg_lru(p, xs, h_before, c=8.0, negative=False, first_token_reset=True)
    _close(ys, ref_ys)
    _close(state.h, ref_h)
    assert np.all(np.asarray(state.started) == 1)
    middle, first = jax.jit(cell.scan)(params, fresh, xs32[:, :4])
    _, second = jax.jit(cell.scan)(params, middle, xs32[:, 4:])
    _close(np.concatenate([first, second], 1), ref_ys)
    stepped, h = fresh, None
    for t in range(STEPS):
        stepped, h = cell.step(params, stepped, xs32[:, t])
    _close(h, ref_ys[:, -1])
    griffin = seqbench.cells.get("rg_lru", d_hidden=D_HIDDEN)
    _, ys_griffin = jax.jit(griffin.scan)(params, fresh.h, xs32)
    assert np.abs(np.asarray(ys_griffin[:, 0]) - ref_ys[:, 0]).max() > 1e-2  # a real difference


@NEG
def test_gateloop_matches_reference(negative):
    cell = seqbench.cells.get(
        "gateloop", d_hidden=D_HIDDEN, num_heads=2, negative_eigenvalues=negative
    )
    p, s, xs, result = _run(cell, seed=3)
    ys, s_last, m_min = ref_gateloop(p, xs, s, heads=2, negative=negative)
    _check(result, ys, (s_last,), lambda st: (st,))
    assert (m_min < 0) == negative


@NEG
@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_min_rnns_match_reference(name, negative):
    cell = seqbench.cells.get(name, d_hidden=D_HIDDEN, negative_eigenvalues=negative)
    p, s, xs, result = _run(cell, seed=4)
    reference = ref_mingru if name == "mingru" else ref_minlstm
    ys, h, a_min = reference(p, xs, s, negative=negative)
    _check(result, ys, (h,), lambda st: (st,))
    assert (a_min < 0) == negative


@pytest.mark.parametrize("impl", kernels.IMPLS)
def test_scan_impls_match_reference(impl):
    """scan_impl reaches the kernel: with every implementation of `kernels.linear_scan`
    ("pallas": the GPU kernel in Pallas' interpreter on a CPU, the compiled kernel on an
    accelerator) every kernel-backed gated cell matches its float64 reference, and "pallas"
    really runs the Pallas kernel (a `pallas_call` in the program)."""
    def run(cell, seed):
        p, s, xs, result = _run(cell, seed)
        program = str(jax.make_jaxpr(cell.scan)(*_f32((p, s, xs))))
        assert ("pallas_call" in program) == (impl == "pallas")
        return p, s, xs, result

    cell = seqbench.cells.get("mamba", d_hidden=D_HIDDEN, d_state=4, block=True, scan_impl=impl)
    p, s, xs, result = run(cell, seed=5)
    ys, (h, conv), _ = ref_mamba(p, xs, s.ssm, s.conv, block=True, negative=False)
    _check(result, ys, (h, conv), lambda st: (st.ssm, st.conv))
    cell = seqbench.cells.get("gateloop", d_hidden=D_HIDDEN, num_heads=2, scan_impl=impl)
    p, s, xs, result = run(cell, seed=6)
    ys, s_last, _ = ref_gateloop(p, xs, s, heads=2, negative=False)
    _check(result, ys, (s_last,), lambda st: (st,))
    cell = seqbench.cells.get("rg_lru", d_hidden=D_HIDDEN, scan_impl=impl)
    p, s, xs, result = run(cell, seed=2)
    ys, h, _ = ref_rg_lru(p, xs, s, c=8.0, negative=False)
    _check(result, ys, (h,), lambda st: (st,))
    for name, reference in (("mingru", ref_mingru), ("minlstm", ref_minlstm)):
        cell = seqbench.cells.get(name, d_hidden=D_HIDDEN, scan_impl=impl)
        p, s, xs, result = run(cell, seed=4)
        ys, h, _ = reference(p, xs, s, negative=False)
        _check(result, ys, (h,), lambda st: (st,))


@NEG
@pytest.mark.parametrize("block", [False, True], ids=["s6", "block"])
@pytest.mark.parametrize("impl", ["sequential", "auto", "associative"])
def test_mamba_gradients_match_float64_central_differences(impl, block, negative):
    """The fused loop's rematerialised backward pass ("sequential"; "auto" on this CPU) and the
    kernel's, against the float64 reference's central difference along a random direction of
    (params, state, inputs). Tolerance 1e-4 of the derivative's scale: float32 gradients over
    9 steps; the float64 difference (step 1e-6) is exact to ~1e-9."""
    cell = seqbench.cells.get("mamba", d_hidden=D_HIDDEN, d_state=4, block=block, d_conv=3,
                              negative_eigenvalues=negative, scan_impl=impl)
    rng = np.random.default_rng(7)
    params = _random_params(cell, rng)
    state = _random_state(cell, params, rng)
    xs = rng.standard_normal((BATCH, STEPS, D_IN))
    weights = (rng.standard_normal((BATCH, STEPS, D_HIDDEN)),
               jax.tree_util.tree_map(lambda x: rng.standard_normal(x.shape), state))
    point = (params, state, xs)
    direction = jax.tree_util.tree_map(lambda x: rng.standard_normal(x.shape), point)

    def reference_loss(params, state, xs):
        ys, (h, conv), _ = ref_mamba(params, xs, state.ssm, state.conv, block=block,
                                     negative=negative)
        return ((ys * weights[0]).sum() + (h * weights[1].ssm).sum()
                + ((conv * weights[1].conv).sum() if block else 0.0))

    def cell_loss(params, state, xs):
        state, ys = cell.scan(params, state, xs)
        pairs = zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(weights[1]))
        return (ys * weights[0]).sum() + sum((x * w).sum() for x, w in pairs)

    eps = 1e-6
    moved = lambda sign: jax.tree_util.tree_map(lambda x, d: x + sign * eps * d, point, direction)
    want = (reference_loss(*moved(1.0)) - reference_loss(*moved(-1.0))) / (2 * eps)
    grads = jax.jit(jax.grad(cell_loss, argnums=(0, 1, 2)))(*_f32(point))
    got = sum(float((np.asarray(g, np.float64) * d).sum()) for g, d in
              zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(direction)))
    scale = sum(float(np.abs(np.asarray(g, np.float64) * d).sum()) for g, d in
                zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(direction)))
    assert abs(got - want) <= 1e-4 * scale, (got, want, scale)


def test_mamba_auto_scan_runs_in_bfloat16_as_the_kernel_path():
    """Mixed precision (`precision="bfloat16"`: bf16 params and inputs, an fp32 state): "auto"
    (the fused loop on this CPU) returns the kernel path's dtypes, as `lax.platform_dependent`
    requires of its branches, and the same values to bf16 rounding."""
    bf16 = lambda tree: jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.bfloat16), tree)
    xs = np.random.default_rng(10).standard_normal((BATCH, STEPS, D_IN))
    outputs = {}
    for impl in ("auto", "associative"):
        cell = seqbench.cells.get("mamba", d_hidden=D_HIDDEN, d_state=4, scan_impl=impl)
        params = _random_params(cell, np.random.default_rng(9))  # the same for both
        state = cell.initial_state(params, (BATCH,))
        outputs[impl] = jax.jit(cell.scan)(bf16(params), state, bf16(xs))
    (s_auto, y_auto), (s_kernel, y_kernel) = outputs["auto"], outputs["associative"]
    assert y_auto.dtype == y_kernel.dtype == jnp.bfloat16
    assert s_auto.ssm.dtype == s_kernel.ssm.dtype == jnp.float32
    scale = float(jnp.abs(y_kernel.astype(jnp.float32)).max())
    np.testing.assert_allclose(np.asarray(y_auto, np.float32), np.asarray(y_kernel, np.float32),
                               atol=3e-2 * scale)


# ----------------------------------------------------------------------------- initialisation


@pytest.mark.parametrize("block", [False, True])
def test_mamba_init(block):
    d_hidden, n = 128, 16
    cell = seqbench.cells.get("mamba", d_hidden=d_hidden, d_state=n, block=block)
    p = cell.init(jax.random.PRNGKey(0), 7)
    e = 2 * d_hidden if block else d_hidden
    # S4D-Real: A_n = -(n + 1) in every channel; D = 1.
    a = -np.exp(np.asarray(p["a_log"], np.float64))
    np.testing.assert_allclose(a, -np.tile(np.arange(1, n + 1), (e, 1)), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(p["d"]), np.ones(e))
    # Δ = softplus(b_Δ) log-uniform in [0.001, 0.1]: log10 Δ ~ U[-3, -1].
    log_dt = np.log10(softplus(np.asarray(p["b_dt"], np.float64)))
    assert p["b_dt"].shape == (e,)
    assert log_dt.min() >= -3 - 1e-5 and log_dt.max() <= -1 + 1e-5
    assert abs(log_dt.mean() + 2) < 0.15 and log_dt.min() < -2.8 and log_dt.max() > -1.2
    assert p["w_r"].shape == (e, math.ceil(d_hidden / 16)) and p["w_dt"].shape[0] == 8


@pytest.mark.parametrize("bounds", [None, (0.05, 0.6)])
def test_rg_lru_init_a_pow_c_uniform(bounds):
    """Griffin: Λ initialised so that a^c = σ(Λ)^c is uniform in [0.9, 0.999] (by default), or
    in [a_min, a_max]."""
    low, high = bounds or (0.9, 0.999)
    hparams = {} if bounds is None else {"a_min": low, "a_max": high}
    cell = seqbench.cells.get("rg_lru", d_hidden=2048, **hparams)
    p = cell.init(jax.random.PRNGKey(0), 3)
    a_c = sigmoid(np.asarray(p["lam"], np.float64)) ** 8
    assert a_c.min() >= low - 1e-6 and a_c.max() <= high + 1e-6
    quartiles = np.quantile(a_c, [0.25, 0.5, 0.75])
    expected = low + (high - low) * np.array([0.25, 0.5, 0.75])
    np.testing.assert_allclose(quartiles, expected, atol=0.06 * (high - low))
    np.testing.assert_array_equal(np.asarray(p["b_a"]), 0.0)
    np.testing.assert_array_equal(np.asarray(p["b_x"]), 0.0)


def test_rg_lru_sqrt_gradient_is_bounded():
    """sqrt(1 - a²) at a = 1 (r = 0) has a finite gradient, clipped at 1000."""
    grad = jax.grad(gated._sqrt_bounded_grad)
    assert float(grad(0.0)) == pytest.approx(1000.0)
    assert float(grad(4.0)) == pytest.approx(0.25)


@pytest.mark.parametrize("name", sorted(gated.CELLS))
def test_params_are_real_float32(name):
    cell = seqbench.cells.get(name, d_hidden=8, **({"num_heads": 2} if name == "gateloop" else {}))
    params = jax.eval_shape(lambda key: cell.init(key, 3), jax.random.PRNGKey(0))
    for leaf in jax.tree_util.tree_leaves(params):
        assert leaf.dtype == jnp.float32


# ----------------------------------------------------------------------------- parameter counts


def expected_params(name, d_in, d, **h):
    if name == "mamba":
        n, block = h.get("d_state", 16), h.get("block", False)
        e = h.get("expand", 2) * d if block else d
        r = math.ceil(d / 16)
        ssm = e * (r + 2 * n) + r * e + e + e * n + e
        if not block:
            return d_in * e + ssm
        k = h.get("d_conv", 4)
        return d_in * 2 * e + (k * e + e) + ssm + e * d
    if name == "rg_lru":
        return 3 * d_in * d + 3 * d
    if name == "gateloop":
        return 5 * d_in * d + d * d
    if name == "mingru":
        return 2 * (d_in * d + d)
    if name == "minlstm":
        return 3 * (d_in * d + d)
    raise AssertionError(name)


@pytest.mark.parametrize(
    "name, hparams",
    [
        ("mamba", {}),
        ("mamba", {"d_state": 8}),
        ("mamba", {"block": True}),
        ("mamba", {"block": True, "expand": 3, "d_conv": 2, "d_state": 4}),
        ("rg_lru", {}),
        ("gateloop", {"num_heads": 4}),
        ("mingru", {}),
        ("minlstm", {}),
    ],
)
@pytest.mark.parametrize("d_in, d_hidden", [(3, 16), (20, 40)])
def test_param_count(name, hparams, d_in, d_hidden):
    cell = seqbench.cells.get(name, d_hidden=d_hidden, **hparams)
    params = jax.eval_shape(lambda key: cell.init(key, d_in), jax.random.PRNGKey(0))
    assert param_count(params) == expected_params(name, d_in, d_hidden, **hparams)
    assert cell.input_dim(params) == d_in and cell.d_out == d_hidden


# ----------------------------------------------------------------------------- bad hparams


@pytest.mark.parametrize(
    "name, hparams, message",
    [
        ("mamba", {"d_hidden": 0}, "d_hidden must be a positive int"),
        ("mamba", {"d_state": 0}, "d_state must be a positive int"),
        ("mamba", {"expand": 1.5}, "expand must be a positive int"),
        ("mamba", {"d_conv": 0}, "d_conv must be a positive int"),
        ("mamba", {"block": "yes"}, "block must be True or False"),
        ("mamba", {"scan_impl": "fast"}, "scan_impl must be one of"),
        ("rg_lru", {"c": 0.0}, "c must be a positive number"),
        ("rg_lru", {"convention": "hawk"}, r"convention must be one of \('griffin', "
                                           r"'recurrentgemma'\)"),
        ("rg_lru", {"negative_eigenvalues": 1}, "negative_eigenvalues must be True or False"),
        ("rg_lru", {"a_min": 0.0}, r"need 0 < a_min < a_max < 1 \(the paper: 0.9, 0.999\)"),
        ("rg_lru", {"a_min": 0.5, "a_max": 0.4}, "need 0 < a_min < a_max < 1"),
        ("rg_lru", {"a_max": "0.99"}, "need 0 < a_min < a_max < 1"),
        ("gateloop", {"d_hidden": 10, "num_heads": 4}, "num_heads must divide d_hidden=10"),
        ("gateloop", {"num_heads": 0}, "num_heads must be a positive int"),
        ("mingru", {"d_hidden": True}, "d_hidden must be a positive int"),
        ("minlstm", {"scan_impl": None}, "scan_impl must be one of"),
        ("mingru", {"scan_impl": "deer"},
         r"for the classic cells \(elman, lstm, gru, lem, bilinear, scrn, sparse_combo_net, "
         r"svd_combo_net\); "
         r"mingru's recurrence is linear"),
    ],
)
def test_bad_hparams(name, hparams, message):
    with pytest.raises(ValueError, match=message):
        seqbench.cells.get(name, **hparams)
