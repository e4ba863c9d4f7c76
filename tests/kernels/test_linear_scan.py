"""Every linear_scan implementation against the float64 NumPy reference, on fresh random inputs.

Tolerances (error measured as max |x - ref| / max(1, max |ref|)):
  float32 / complex64: 2e-5 forward, 1e-4 gradients (T = 1000 sums a thousand roundings)
  bfloat16: the reference sees the same bf16-rounded inputs; outputs are rounded to bf16
    (relative step 2^-8), so 1e-2 forward and 2e-2 gradients.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util as jtu

from seqbench.kernels import IMPLS, linear_scan, pallas_linear
from tests.kernels import reference

# (impl, options) for every code path: the Pallas kernels run in Pallas' interpreter.
PATHS = {
    "sequential": dict(impl="sequential"),
    "sequential_unroll4": dict(impl="sequential", unroll=4),
    "associative": dict(impl="associative"),
    "chunked": dict(impl="chunked", chunk_size=16),
    "pallas_gpu": dict(impl="pallas", interpret="gpu"),
    "pallas_tpu": dict(impl="pallas", interpret="tpu"),
}
if jax.default_backend() in ("gpu", "tpu"):  # the compiled kernel (Triton / Mosaic) itself;
    PATHS["pallas"] = dict(impl="pallas")  # on a CPU this is the interpreted GPU kernel above
FORWARD_TOL = {"float32": 2e-5, "complex64": 2e-5, "bfloat16": 1e-2}
GRAD_TOL = {"float32": 1e-4, "complex64": 1e-4, "bfloat16": 2e-2}
LENGTHS = (1, 2, 7, 64, 1000)


def random_inputs(seed, shape, dtype, with_h0=True, with_reset=False):
    """a with |a| in [0.7, 1) and both signs, b ~ N(0, 1), h0 ~ N(0, 1); reset ~ Bernoulli(0.1)."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.7, 1.0, shape) * rng.choice([-1.0, 1.0], shape)
    b = rng.normal(size=shape)
    h0 = rng.normal(size=shape[:-2] + shape[-1:])
    if dtype == "complex64":
        a = a * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))
        b = b + 1j * rng.normal(size=shape)
        h0 = h0 + 1j * rng.normal(size=h0.shape)
    a, b = jnp.asarray(a, dtype), jnp.asarray(b, dtype)
    h0 = jnp.asarray(h0, "complex64" if dtype == "complex64" else "float32") if with_h0 else None
    reset = jnp.asarray(rng.random(shape[:-1]) < 0.1) if with_reset else None
    return a, b, h0, reset


def error(x, ref):
    x = np.asarray(jnp.asarray(x).astype(jnp.complex64 if np.iscomplexobj(ref) else jnp.float32))
    return np.max(np.abs(x - ref), initial=0.0) / max(1.0, np.max(np.abs(ref), initial=0.0))


def as64(x):
    return None if x is None else np.asarray(jnp.asarray(x).astype(
        jnp.complex64 if jnp.iscomplexobj(x) else jnp.float32))


@functools.cache
def jitted(path, reverse):
    return jax.jit(functools.partial(linear_scan, reverse=reverse, **PATHS[path]))


def check_forward(path, steps, dtype, reverse, with_h0=True, with_reset=False, seed=0):
    a, b, h0, reset = random_inputs(seed + steps, (2, 3, steps, 5), dtype, with_h0, with_reset)
    h, h_last = jitted(path, reverse)(a, b, h0, reset=reset)
    ref_h, ref_last = reference.linear_recurrence(as64(a), as64(b), as64(h0), reverse, reset)
    assert h.dtype == a.dtype and h.shape == a.shape
    assert h_last.dtype == (jnp.complex64 if dtype == "complex64" else jnp.float32)
    tol = FORWARD_TOL[dtype]
    assert error(h, ref_h) < tol, (path, steps, dtype, reverse, error(h, ref_h))
    # h_last is carried in fp32 even for bf16 inputs.
    assert error(h_last, ref_last) < min(tol, 2e-5), error(h_last, ref_last)


XLA_PATHS = [p for p in PATHS if p != "pallas_tpu"]


@pytest.mark.parametrize("dtype", ["float32", "complex64"])
@pytest.mark.parametrize("steps", LENGTHS)
@pytest.mark.parametrize("path", XLA_PATHS)
def test_forward_matches_reference(path, steps, dtype):
    for reverse in (False, True):
        check_forward(path, steps, dtype, reverse)


@pytest.mark.parametrize("steps", (7, 1000))
@pytest.mark.parametrize("path", XLA_PATHS)
def test_bfloat16_forward_matches_reference(path, steps):
    for reverse in (False, True):
        check_forward(path, steps, "bfloat16", reverse)


@pytest.mark.parametrize(
    "steps, dtype, reverse",
    [(1, "float32", False), (7, "complex64", True), (64, "float32", True), (64, "bfloat16", False)],
)
def test_pallas_tpu_forward_matches_reference(steps, dtype, reverse):
    # The TPU interpreter simulates every op (seconds per call): a few cases cover its paths,
    # T = 1000 is marked slow, and the multi-tile carry is tested below on small tiles.
    check_forward("pallas_tpu", steps, dtype, reverse)


@pytest.mark.slow
def test_pallas_tpu_long_sequence_matches_reference():
    check_forward("pallas_tpu", 1000, "float32", reverse=False)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "complex64"])
@pytest.mark.parametrize("target", ["tpu", "gpu"])
def test_pallas_state_crosses_time_tiles_and_feature_blocks(target, dtype, reverse):
    """Small tiles force many time blocks (TPU: the VMEM carry) and feature blocks; D = 20 is
    padded to the GPU's power-of-two blocks (block_d 12 -> 8) and masked off again."""
    a, b, h0, _ = random_inputs(3, (2, 53, 20), dtype)
    acc = h0.dtype
    h, h_last = jax.jit(
        functools.partial(
            pallas_linear.linear_scan, reverse=reverse, out_dtype=a.dtype, target=target,
            interpret=True, block_t=8, block_d=12 if target == "gpu" else 8,
        )
    )(a, b, h0)
    ref_h, ref_last = reference.linear_recurrence(as64(a), as64(b), as64(h0), reverse)
    assert h_last.dtype == acc
    assert error(h, ref_h) < 2e-5 and error(h_last, ref_last) < 2e-5


@pytest.mark.parametrize("path", list(PATHS))
def test_without_h0_and_with_resets(path):
    for steps, dtype, reverse in ((64, "float32", False), (7, "complex64", True)):
        check_forward(path, steps, dtype, reverse, with_h0=False, with_reset=True)


def test_every_impl_is_tested():
    assert {options["impl"] for options in PATHS.values()} == set(IMPLS)


GRAD_CASES = [(1, False, False), (7, True, True), (64, False, True)]  # (T, reverse, reset)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "complex64"])
@pytest.mark.parametrize("path", XLA_PATHS)
def test_gradients_match_reference(path, dtype):
    check_gradients(path, dtype, GRAD_CASES)


def test_pallas_tpu_gradients_match_reference():
    check_gradients("pallas_tpu", "float32", [(7, True, True)])
    check_gradients("pallas_tpu", "complex64", [(7, False, False)])


def check_gradients(path, dtype, cases):
    for steps, reverse, with_reset in cases:
        a, b, h0, reset = random_inputs(steps, (2, steps, 3), dtype, with_reset=with_reset)
        rng = np.random.default_rng(steps)
        dh = jnp.asarray(rng.normal(size=a.shape), a.dtype)
        dh_last = jnp.asarray(rng.normal(size=h0.shape), h0.dtype)
        if dtype == "complex64":
            dh = dh + 1j * jnp.asarray(rng.normal(size=a.shape), "float32")
        fn = functools.partial(linear_scan, reverse=reverse, reset=reset, **PATHS[path])
        _, vjp = jax.vjp(jax.jit(fn), a, b, h0)
        da, db, dh0 = jax.jit(vjp)((dh, dh_last))
        ref = reference.linear_recurrence_vjp(
            as64(a), as64(b), as64(h0), as64(dh), as64(dh_last), reverse, reset
        )
        for name, got, want in zip(("da", "db", "dh0"), (da, db, dh0), ref):
            assert error(got, want) < GRAD_TOL[dtype], (path, steps, reverse, name)


@pytest.mark.parametrize("path", ["sequential", "associative", "chunked", "pallas_gpu"])
def test_check_grads_finite_differences(path):
    """Finite differences in float64 (x64 on): independent of both the code and the reference."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(7)
        shape = (2, 6, 3)
        a = jnp.asarray(rng.uniform(-0.9, 0.9, shape))
        b = jnp.asarray(rng.normal(size=shape))
        h0 = jnp.asarray(rng.normal(size=(2, 3)))
        fn = jax.jit(functools.partial(linear_scan, **PATHS[path]))
        jtu.check_grads(fn, (a, b, h0), order=2, modes=["rev"], atol=1e-5, rtol=1e-5)
        ac = a * jnp.exp(1j * jnp.asarray(rng.uniform(0, 1, shape)))
        bc = b + 1j * jnp.asarray(rng.normal(size=shape))
        jtu.check_grads(
            fn, (ac, bc, h0.astype(jnp.complex128)), order=1, modes=["rev"], atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize("path", list(PATHS))
def test_streaming_in_pieces_equals_whole(path):
    """h_last is fp32, so splitting a bf16 sequence and carrying the state is exact."""
    a, b, h0, _ = random_inputs(11, (2, 40, 4), "bfloat16")
    fn = jitted(path, False)
    whole, whole_last = fn(a, b, h0)
    first, carry = fn(a[:, :17], b[:, :17], h0)
    second, last = fn(a[:, 17:], b[:, 17:], carry)
    np.testing.assert_array_equal(np.asarray(jnp.concatenate([first, second], 1), np.float32),
                                  np.asarray(whole, np.float32))
    np.testing.assert_allclose(last, whole_last, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("path", list(PATHS))
def test_compiles_once_per_shape(path):
    traces = []

    @jax.jit
    def fn(a, b, h0):
        traces.append(1)
        return linear_scan(a, b, h0, **PATHS[path])

    for seed in range(3):
        a, b, h0, _ = random_inputs(seed, (2, 9, 4), "float32")
        jax.block_until_ready(fn(a, b, h0))
    assert len(traces) == 1


def test_auto_picks_an_implementation_and_matches_reference():
    a, b, h0, _ = random_inputs(5, (3, 33, 4), "float32")
    h, _ = jax.jit(linear_scan)(a, b, h0)
    assert error(h, reference.linear_recurrence(as64(a), as64(b), as64(h0))[0]) < 2e-5


# ----------------------------------------------------------------------------- bad input


def test_mismatched_shapes_name_both():
    with pytest.raises(ValueError, match=r"a.shape=\(2, 5, 3\).*b.shape=\(2, 4, 3\)"):
        linear_scan(jnp.ones((2, 5, 3)), jnp.ones((2, 4, 3)))


def test_mismatched_dtypes_name_both():
    with pytest.raises(TypeError, match="a.dtype=float32 and b.dtype=bfloat16"):
        linear_scan(jnp.ones((5, 3)), jnp.ones((5, 3), jnp.bfloat16))


def test_integer_inputs_rejected():
    with pytest.raises(TypeError, match="floating or complex"):
        linear_scan(jnp.ones((5, 3), jnp.int32), jnp.ones((5, 3), jnp.int32))


def test_rank_too_small():
    with pytest.raises(ValueError, match=r"at least 2 axes \(\.\.\., T, D\); got shape \(5,\)"):
        linear_scan(jnp.ones(5), jnp.ones(5))


def test_bad_h0_and_reset_shapes():
    with pytest.raises(ValueError, match=r"h0 must have shape .* \(2, 3\).*h0.shape=\(3,\)"):
        linear_scan(jnp.ones((2, 5, 3)), jnp.ones((2, 5, 3)), jnp.ones(3))
    with pytest.raises(ValueError, match=r"reset must have shape .* \(2, 5\).*\(2, 5, 3\)"):
        linear_scan(jnp.ones((2, 5, 3)), jnp.ones((2, 5, 3)), reset=jnp.ones((2, 5, 3), bool))


def test_unknown_impl_lists_valid():
    with pytest.raises(ValueError, match="unknown impl 'fast'.*'sequential', 'associative', "
                       "'chunked', 'pallas'"):
        linear_scan(jnp.ones((5, 3)), jnp.ones((5, 3)), impl="fast")


@pytest.mark.skipif(jax.default_backend() in ("gpu", "tpu"), reason="the CPU's branch")
def test_pallas_on_a_cpu_runs_the_gpu_kernel_in_the_interpreter():
    """impl="pallas" picks its kernel when the program is lowered (`lax.platform_dependent`);
    lowered for a CPU, no Pallas compiler exists, so it is the GPU kernel, interpreted: the
    same numbers as the reference, and the same as asking for the interpreter."""
    a, b, h0, _ = random_inputs(5, (2, 9, 6), "float32")
    h, h_last = jax.jit(functools.partial(linear_scan, impl="pallas"))(a, b, h0)
    ref_h, ref_last = reference.linear_recurrence(as64(a), as64(b), as64(h0), False)
    assert error(h, ref_h) < 2e-5 and error(h_last, ref_last) < 2e-5
    same, _ = jax.jit(functools.partial(linear_scan, impl="pallas", interpret="gpu"))(a, b, h0)
    np.testing.assert_array_equal(h, same)


def test_bad_knobs():
    with pytest.raises(ValueError, match="interpret='gpu' only applies to impl='pallas'"):
        linear_scan(jnp.ones((5, 3)), jnp.ones((5, 3)), impl="chunked", interpret="gpu")
    with pytest.raises(ValueError, match="interpret must be None, 'gpu' or 'tpu'"):
        linear_scan(jnp.ones((5, 3)), jnp.ones((5, 3)), impl="pallas", interpret="cuda")
    with pytest.raises(ValueError, match="chunk_size must be a positive int; got 0"):
        linear_scan(jnp.ones((5, 3)), jnp.ones((5, 3)), impl="chunked", chunk_size=0)
