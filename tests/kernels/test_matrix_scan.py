"""matrix_scan (sequential, chunked, and the Pallas kernels in the interpreter) against the
float64 NumPy reference.

Tolerances (max |x - ref| / max(1, max |ref|)): float32 2e-5 forward, 1e-4 gradients;
bfloat16 inputs 2e-2 (the reference sees the same bf16-rounded inputs; the output is bf16).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util as jtu

from seqbench.kernels import MATRIX_IMPLS, matrix_scan
from tests.kernels import reference

PATHS = {
    "sequential": dict(impl="sequential"),
    "chunked": dict(impl="chunked", chunk_size=8),
    "chunked_default": dict(impl="chunked"),
    # the fused kernels (scalar gates only), C = 16, the GPU's smallest: "pallas" is the
    # platform's own (on a CPU the GPU kernel in Pallas' interpreter; on a GPU, compiled
    # Triton: experiments/device_check.sh), "pallas_tpu" the TPU kernel in the interpreter
    "pallas": dict(impl="pallas", chunk_size=16),
    "pallas_tpu": dict(impl="pallas", chunk_size=16, interpret="tpu"),
}
SCALAR_ONLY = ("pallas", "pallas_tpu")
# The kernels (slow in the interpreter) at 1 step, a partial chunk, and 7 chunks with a tail.
CASES = [(path, steps, gate) for path in PATHS
         for steps in ((1, 7, 100) if path in SCALAR_ONLY else (1, 2, 7, 64, 100))
         for gate in ("none", "scalar", "per_key")
         if not (gate == "per_key" and path in SCALAR_ONLY)]


def random_inputs(seed, steps, gate, dtype="float32", with_s0=True, lead=(2,), key_dim=4, value_dim=3):
    rng = np.random.default_rng(seed)
    q = jnp.asarray(rng.normal(size=lead + (steps, key_dim)), dtype)
    k = jnp.asarray(rng.normal(size=lead + (steps, key_dim)) / 2, dtype)
    v = jnp.asarray(rng.normal(size=lead + (steps, value_dim)), dtype)
    log_a = {
        "none": None,
        "scalar": jnp.asarray(-rng.uniform(0, 0.5, lead + (steps,)), "float32"),
        "per_key": jnp.asarray(-rng.uniform(0, 2.0, lead + (steps, key_dim)), "float32"),
    }[gate]
    s0 = jnp.asarray(rng.normal(size=lead + (key_dim, value_dim)), "float32") if with_s0 else None
    return q, k, v, log_a, s0


def np32(x):
    return None if x is None else np.asarray(jnp.asarray(x, jnp.float32))


def error(x, ref):
    return np.max(np.abs(np32(x) - ref)) / max(1.0, np.max(np.abs(ref)))


@pytest.mark.parametrize("path,steps,gate", CASES)
def test_forward_matches_reference(path, steps, gate):
    for with_s0 in (True, False):
        # value_dim 70: the GPU kernel's value blocks of 64 split it in two
        q, k, v, log_a, s0 = random_inputs(steps, steps, gate, with_s0=with_s0,
                                           value_dim=70 if path == "pallas" else 3)
        y, s_last = jax.jit(functools.partial(matrix_scan, **PATHS[path]))(q, k, v, log_a, s0)
        ref_y, ref_s = reference.matrix_recurrence(*map(np32, (q, k, v, log_a, s0)))
        assert y.shape == ref_y.shape and y.dtype == q.dtype and s_last.dtype == jnp.float32
        assert error(y, ref_y) < 2e-5 and error(s_last, ref_s) < 2e-5


@pytest.mark.parametrize("path", list(PATHS))
def test_bfloat16_inputs(path):
    gate = "scalar" if path in SCALAR_ONLY else "per_key"
    q, k, v, log_a, s0 = random_inputs(0, 37, gate, dtype="bfloat16")
    y, s_last = jax.jit(functools.partial(matrix_scan, **PATHS[path]))(q, k, v, log_a, s0)
    ref_y, ref_s = reference.matrix_recurrence(*map(np32, (q, k, v, log_a, s0)))
    assert y.dtype == jnp.bfloat16 and s_last.dtype == jnp.float32
    assert error(y, ref_y) < 2e-2 and error(s_last, ref_s) < 1e-4


def test_strong_decay_stays_finite_and_exact():
    """log_a = -60 per step: exp(+L) would overflow float32 after two steps; differences do not."""
    q, k, v, _, s0 = random_inputs(1, 50, "none")
    log_a = jnp.full(q.shape, -60.0)
    y, s_last = jax.jit(functools.partial(matrix_scan, impl="chunked", chunk_size=16))(
        q, k, v, log_a, s0)
    ref_y, ref_s = reference.matrix_recurrence(*map(np32, (q, k, v, log_a, s0)))
    assert np.all(np.isfinite(np32(y))) and error(y, ref_y) < 2e-5 and error(s_last, ref_s) < 2e-5
    grads = jax.jit(jax.grad(
        lambda q, k, v: matrix_scan(q, k, v, log_a, s0, impl="chunked")[0].sum(),
        argnums=(0, 1, 2)))(q, k, v)
    assert all(np.all(np.isfinite(np32(g))) for g in grads)


@pytest.mark.parametrize("path,gate", [("chunked", "scalar"), ("chunked", "per_key"),
                                       ("pallas", "scalar"), ("pallas_tpu", "scalar")])
def test_gradients_match_sequential(path, gate):
    """Every cotangent (q, k, v, the gates, s0) of the chunked form and of the fused kernels'
    backward (over 3 chunks of 16) against the sequential scan's."""
    q, k, v, log_a, s0 = random_inputs(3, 40, gate, value_dim=70 if path == "pallas" else 3)
    rng = np.random.default_rng(0)
    dy = jnp.asarray(rng.normal(size=v.shape), jnp.float32)
    ds = jnp.asarray(rng.normal(size=s0.shape), jnp.float32)

    def cotangents(options):
        _, vjp = jax.vjp(jax.jit(functools.partial(matrix_scan, **options)), q, k, v, log_a, s0)
        return vjp((dy, ds))

    for got, want in zip(cotangents(PATHS[path]), cotangents(PATHS["sequential"])):
        assert error(got, np32(want)) < 1e-4


@pytest.mark.parametrize("impl", MATRIX_IMPLS)
def test_check_grads_finite_differences(impl):
    with jax.enable_x64(True):
        rng = np.random.default_rng(5)
        q, k = (jnp.asarray(rng.normal(size=(5, 3))) for _ in range(2))
        v = jnp.asarray(rng.normal(size=(5, 2)))
        gates = (5,) if impl == "pallas" else (5, 3)  # the kernel: one gate per step
        log_a = jnp.asarray(-rng.uniform(0.1, 1.0, size=gates))
        s0 = jnp.asarray(rng.normal(size=(3, 2)))
        fn = jax.jit(functools.partial(matrix_scan, impl=impl, chunk_size=2))
        jtu.check_grads(fn, (q, k, v, log_a, s0), order=1, modes=["rev"], atol=1e-5, rtol=1e-5)


def test_streaming_in_pieces_equals_whole():
    q, k, v, log_a, s0 = random_inputs(4, 40, "per_key")
    whole, whole_last = matrix_scan(q, k, v, log_a, s0, impl="chunked", chunk_size=8)
    cut = 13
    first, carry = matrix_scan(q[:, :cut], k[:, :cut], v[:, :cut], log_a[:, :cut], s0, chunk_size=8)
    second, last = matrix_scan(q[:, cut:], k[:, cut:], v[:, cut:], log_a[:, cut:], carry, chunk_size=8)
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(last, whole_last, rtol=2e-5, atol=2e-5)


def test_compiles_once_per_shape():
    traces = []

    @jax.jit
    def fn(*args):
        traces.append(1)
        return matrix_scan(*args)

    for seed in range(3):
        jax.block_until_ready(fn(*random_inputs(seed, 9, "scalar")))
    assert len(traces) == 1


def test_bad_input_messages():
    q = jnp.ones((2, 5, 4))
    with pytest.raises(ValueError, match=r"q.shape=\(2, 5, 4\) and k.shape=\(2, 5, 3\)"):
        matrix_scan(q, jnp.ones((2, 5, 3)), jnp.ones((2, 5, 2)))
    with pytest.raises(ValueError, match=r"v must have shape \(\.\.\., T, V\) with .*\(2, 5\)"):
        matrix_scan(q, q, jnp.ones((2, 4, 2)))
    with pytest.raises(ValueError, match=r"log_a must have shape .*\(2, 5\) or .*\(2, 5, 4\)"):
        matrix_scan(q, q, jnp.ones((2, 5, 2)), jnp.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match=r"s0 must have shape \(\.\.\., K, V\) = \(2, 4, 2\)"):
        matrix_scan(q, q, jnp.ones((2, 5, 2)), s0=jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="unknown impl 'fast'; valid: 'auto', 'sequential', "
                                         "'chunked', 'pallas'"):
        matrix_scan(q, q, jnp.ones((2, 5, 2)), impl="fast")
    with pytest.raises(ValueError, match=r"impl='pallas' takes one gate per step.*use "
                                         r"impl='chunked'"):
        matrix_scan(q, q, jnp.ones((2, 5, 2)), jnp.zeros((2, 5, 4)), impl="pallas")
    with pytest.raises(ValueError, match="interpret must be 'gpu' or 'tpu' and needs "
                                         "impl='pallas'"):
        matrix_scan(q, q, jnp.ones((2, 5, 2)), impl="chunked", interpret="gpu")
    with pytest.raises(TypeError, match="one real floating dtype"):
        matrix_scan(q, q, jnp.ones((2, 5, 2), jnp.bfloat16))
