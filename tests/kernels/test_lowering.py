"""GPU and TPU readiness from a CPU host: every kernel lowers for CUDA and TPU.

`jax.jit(f).trace(...).lower(lowering_platforms=(p,))` runs platform p's own lowering on this
host: Pallas' Triton lowering for "cuda" and Mosaic for "tpu", with their hardware rules
(power-of-two Triton blocks, TPU tiling), which Pallas' interpreter does not apply. Nothing is
compiled or run; shapes are `jax.ShapeDtypeStruct`s, so T = 65,536 x D = 4,096 costs nothing.
The implementation is picked at lowering time (`lax.platform_dependent`), so each test asserts
the lowered module holds the kernel's own call: never a fallback.
"""

from __future__ import annotations

import itertools
import re

import jax
import jax.numpy as jnp
import pytest

from seqbench import engine
from seqbench.kernels import linear_scan, matrix_scan

PLATFORMS = ("cuda", "tpu")
KERNEL_CALL = {"cuda": "__gpu$xla.gpu.triton", "tpu": "tpu_custom_call"}
LENGTHS = (1, 7, 256, 4096, 65536)
FEATURES = (24, 128, 1000, 4096)
BATCHES = (1, 2, 4)
DTYPES = ("float32", "bfloat16", "complex64")
# Every (T, D) pair once, the batch, dtype and direction rotating through their values, so each
# value of every axis meets several of the others (20 shapes, fwd + bwd, two platforms).
SHAPES = [(T, D, BATCHES[(i + j) % 3], DTYPES[(i + 2 * j) % 3], (i + j) % 2 == 1)
          for (i, T), (j, D) in itertools.product(enumerate(LENGTHS), enumerate(FEATURES))]


def lowered(fn, platform, *args) -> str:
    return jax.jit(fn).trace(*args).lower(lowering_platforms=(platform,)).as_text()


def calls(text: str, target: str) -> int:
    return len(re.findall(rf"custom_call @{re.escape(target)}\(", text))


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("steps,features,batch,dtype,reverse", SHAPES,
                         ids=[f"T{s[0]}-D{s[1]}-B{s[2]}-{s[3]}-{'rev' if s[4] else 'fwd'}"
                              for s in SHAPES])
def test_the_pallas_scan_and_its_gradient_lower_to_the_kernel(platform, steps, features, batch,
                                                              dtype, reverse):
    """impl="pallas": the forward scan is one kernel call, the gradient adds the reverse scan's
    (the VJP of h_t = a_t h_{t-1} + b_t is itself a linear scan)."""
    x = jax.ShapeDtypeStruct((batch, steps, features), jnp.dtype(dtype))

    def loss(a, b):
        h, h_last = linear_scan(a, b, impl="pallas", reverse=reverse)
        return jnp.sum(jnp.abs(h).astype(jnp.float32)) + jnp.sum(jnp.abs(h_last))

    forward = lowered(lambda a, b: linear_scan(a, b, impl="pallas", reverse=reverse), platform,
                      x, x)
    assert calls(forward, KERNEL_CALL[platform]) == 1
    backward = lowered(jax.grad(loss, argnums=(0, 1)), platform, x, x)
    assert calls(backward, KERNEL_CALL[platform]) == 2


@pytest.mark.parametrize("platform", ("cpu", *PLATFORMS))
def test_auto_picks_the_implementation_of_the_platform_it_is_lowered_for(platform):
    """One traced program, lowered three ways: the CPU gets the sequential loop (a while op),
    the accelerators the associative scan (no loop); no kernel call on any."""
    x = jax.ShapeDtypeStruct((2, 256, 24), jnp.float32)
    text = lowered(lambda a, b: linear_scan(a, b, impl="auto"), platform, x, x)
    assert ("stablehlo.while" in text) == (platform == "cpu")
    assert not any(calls(text, target) for target in KERNEL_CALL.values())


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("steps,key,value", [(7, 24, 40), (4096, 128, 128), (65536, 64, 256)])
def test_the_chunked_matrix_scan_and_its_gradient_lower(platform, steps, key, value):
    """matrix_scan's chunked form is XLA matmuls (no Pallas kernel): it must lower, gradient
    included, for either accelerator."""
    q = jax.ShapeDtypeStruct((2, steps, key), jnp.float32)
    v = jax.ShapeDtypeStruct((2, steps, value), jnp.float32)
    log_a = jax.ShapeDtypeStruct((2, steps, key), jnp.float32)

    def loss(q, k, v, log_a):
        y, _ = matrix_scan(q, k, v, log_a, impl="chunked")
        return jnp.sum(y)

    text = lowered(jax.grad(loss, argnums=(0, 1, 2, 3)), platform, q, q, v, log_a)
    assert "stablehlo.dot_general" in text


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("steps,key,value,dtype", [
    (1, 24, 20, "float32"), (7, 64, 1000, "bfloat16"), (256, 16, 64, "float32"),
    (4096, 128, 128, "bfloat16"), (65536, 64, 256, "float32")])
def test_the_pallas_matrix_scan_and_its_gradient_lower_to_the_kernel(platform, steps, key, value,
                                                                     dtype):
    """impl="pallas" (scalar gates): one fused kernel call forward; a loss's value and
    gradient hold it and the backward kernel."""
    q = jax.ShapeDtypeStruct((2, steps, key), jnp.dtype(dtype))
    v = jax.ShapeDtypeStruct((2, steps, value), jnp.dtype(dtype))
    log_a = jax.ShapeDtypeStruct((2, steps), jnp.float32)
    forward = lambda q, k, v, log_a: matrix_scan(q, k, v, log_a, impl="pallas")
    assert calls(lowered(forward, platform, q, q, v, log_a), KERNEL_CALL[platform]) == 1
    loss = lambda *args: jnp.sum(forward(*args)[0].astype(jnp.float32))
    backward = lowered(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)), platform, q, q, v, log_a)
    assert calls(backward, KERNEL_CALL[platform]) == 2


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("cell,scan_impl", [("lru", "auto"), ("mamba", "pallas"),
                                            ("mamba", "auto"), ("gla", "auto"),
                                            ("retnet", "pallas"),
                                            ("attention", None), ("path_attention", None)])
def test_a_whole_training_step_lowers(platform, cell, scan_impl):
    """`engine.make_train_step` (3 seeds vmapped, AdamW, on-device sampling) lowers for each
    accelerator; with scan_impl="pallas" the step holds the kernel, forward and backward."""
    hparams = {"scan_impl": scan_impl} if scan_impl else {}
    config = engine.Config(cell=cell, task="parity_check", width=16, depth=2, seeds=3,
                           batch_size=4, train_length=16, cell_hparams=hparams)
    _, task, model = engine.build(config)
    tx = engine.optimizer(config)
    state = jax.eval_shape(lambda: engine.step.init_state(config, model, tx))
    keys = jax.eval_shape(lambda: engine.step.member_keys(jax.random.key(0), config))
    step = engine.make_train_step(config, task, model, tx)
    text = step.trace(state, keys, jnp.int32(16)).lower(lowering_platforms=(platform,)).as_text()
    assert calls(text, KERNEL_CALL[platform]) == (2 * config.depth if scan_impl == "pallas"
                                                  else 0)
