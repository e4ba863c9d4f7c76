"""Initial-state interventions against NumPy float64 references and their statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqbench import interventions

# Jitted (eager op-by-op dispatch made these tests several times slower).
draw = jax.jit(lambda kind, *args: interventions.get(kind).initial_state(*args),
               static_argnums=0)
update = jax.jit(lambda kind, *args: interventions.get(kind).update_carry(*args),
                 static_argnums=0)


def toy_state(batch=4096):
    """A layered state with a real leaf, a complex leaf, an int leaf and a None entry."""
    return [{"h": jnp.zeros((batch, 3)), "z": jnp.zeros((batch, 2), jnp.complex64)},
            (jnp.zeros((batch,), jnp.int32), None)]


def test_zero_is_the_zero_state_and_noise_has_the_requested_std():
    zero = toy_state()
    key = jax.random.key(0)
    assert interventions.get("zero").initial_state(key, zero, None, 1.0) is zero
    noisy = draw("noise", key, zero, None, 0.5)
    h, z = np.asarray(noisy[0]["h"]), np.asarray(noisy[0]["z"])
    for part in (h, z.real, z.imag):  # 8192-12288 draws: std within ~3% of 0.5
        assert abs(part.mean()) < 0.03 and abs(part.std() - 0.5) < 0.02
    assert noisy[0]["z"].dtype == jnp.complex64 and noisy[1][1] is None
    np.testing.assert_array_equal(noisy[1][0], 0)  # integer leaves are never perturbed


def test_fitted_noise_moments_follow_the_ema_of_final_states():
    zero = toy_state(batch=8)
    carry = interventions.get("fitted_noise").init_carry(zero)
    rng = np.random.default_rng(0)
    mean = np.zeros(3)
    mean_sq = np.zeros(3)
    for k in range(1, 6):
        final_h = rng.normal(2.0, 3.0, size=(8, 3))
        final = [{"h": jnp.asarray(final_h, jnp.float32), "z": zero[0]["z"]}, zero[1]]
        carry = update("fitted_noise", carry, final)
        d = interventions.FIT_DECAY
        mean = d * mean + (1 - d) * final_h.mean(0)
        mean_sq = d * mean_sq + (1 - d) * (final_h ** 2).mean(0)
    np.testing.assert_allclose(carry.mean[0]["h"], mean, rtol=1e-5)
    np.testing.assert_allclose(carry.mean_sq[0]["h"], mean_sq, rtol=1e-5)
    assert int(carry.updates) == 5
    # Draws from the bias-corrected moments: mean m/(1-d^5), std sqrt(sq/(1-d^5) - mean²).
    correction = 1 - interventions.FIT_DECAY ** 5
    want_mean = mean / correction
    want_std = np.sqrt(mean_sq / correction - want_mean ** 2)
    big = toy_state(batch=20000)
    draws = draw("fitted_noise", jax.random.key(1), big, carry, 1.0)
    h = np.asarray(draws[0]["h"])
    np.testing.assert_allclose(h.mean(0), want_mean, atol=0.06 * want_std.max())
    np.testing.assert_allclose(h.std(0), want_std, rtol=0.03)
    np.testing.assert_array_equal(draws[1][0], 0)


def test_fitted_noise_starts_from_zero_before_any_final_state():
    zero = toy_state(batch=16)
    carry = interventions.get("fitted_noise").init_carry(zero)
    draws = draw("fitted_noise", jax.random.key(0), zero, carry, 1.0)
    for got in jax.tree_util.tree_leaves(draws):
        np.testing.assert_array_equal(got, 0)


def test_state_passing_carries_the_final_state_without_gradient():
    zero = toy_state(batch=4)
    carry = interventions.get("state_passing").init_carry(zero)
    final = jax.tree_util.tree_map(lambda x: x + 1, zero)
    carry = interventions.get("state_passing").update_carry(carry, final)
    start = interventions.get("state_passing").initial_state(jax.random.key(0), zero, carry, 1.0)
    np.testing.assert_array_equal(start[0]["h"], 1)

    def loss(c):
        s = interventions.get("state_passing").initial_state(jax.random.key(0), zero, c, 1.0)
        return jnp.sum(s[0]["h"] ** 2)

    np.testing.assert_array_equal(jax.grad(loss, allow_int=True)(carry)[0]["h"], 0)


def test_unknown_intervention_names_the_valid_ones():
    with pytest.raises(ValueError, match="initial_state must be one of"):
        interventions.get("nosie")
