"""Initial-state interventions for length generalisation (Buitrago & Gu 2025).

"Understanding and Improving Length Generalization in Recurrent Models" argues that recurrent
models fail beyond the training length because training only ever starts from the zero state and
so visits a small part of the states they reach on long sequences (the *unexplored states
hypothesis*). Its cures change the state each training sequence starts from:

- `zero`: h_0 = 0 (the usual training; the baseline).
- `noise`: h_0 ~ N(0, std²) i.i.d. per float entry of every layer's state (complex entries: the
  real and imaginary parts each get std²).
- `fitted_noise`: h_0 ~ N(μ, σ²) per entry, where μ and σ are the mean and standard deviation of
  the *final* states of the training sequences (per layer and per state entry, over the batch),
  tracked as exponential moving averages with decay `FIT_DECAY` and bias correction
  (m̂_k = m_k / (1 − decay^k)); until the first update the state is zero.
- `state_passing`: h_0 of row i is the final state of row i of the previous batch — the final
  state of another sequence (zero at the first step). No gradient flows through it.

Truncated BPTT, the paper's fourth intervention, is `Config.tbptt` in `seqbench.train`.
Interventions apply during training only; evaluation always starts from zeros. Non-float state
leaves (attention's int32 position) are never perturbed; the engine refuses interventions for
attention, which has no recurrent state to perturb.

Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

FIT_DECAY = 0.99  # EMA decay of the fitted final-state moments (about the last 100 steps)


class StateMoments(NamedTuple):
    """EMA moments of the final state, per entry of one sequence's state (batch axis reduced)."""

    mean: Any  # like one sequence's state; float32 (complex: real/imag stacked on a last axis)
    mean_sq: Any  # same structure: EMA of the squares
    updates: jax.Array  # shape=(), int32: EMAs taken so far (for bias correction)


def _is_float(x) -> bool:
    return jnp.issubdtype(x.dtype, jnp.inexact)


def _as_real(x: jax.Array) -> jax.Array:
    """Complex entries as (..., 2) real/imaginary planes; real entries unchanged."""
    return jnp.stack([x.real, x.imag], -1) if jnp.iscomplexobj(x) else x.astype(jnp.float32)


def _from_real(r: jax.Array, like: jax.Array) -> jax.Array:
    if jnp.iscomplexobj(like):
        return (r[..., 0] + 1j * r[..., 1]).astype(like.dtype)
    return r.astype(like.dtype)


def _gaussian_like(key, zero_state, mean_fn, std_fn):
    """zero_state with every float leaf replaced by mean + std·N(0, 1) (per real component)."""
    leaves, treedef = jax.tree_util.tree_flatten(zero_state)
    keys = jax.random.split(key, max(len(leaves), 1))
    out = []
    for i, (k, x) in enumerate(zip(keys, leaves)):
        if not _is_float(x):
            out.append(x)
            continue
        real = _as_real(x)
        draw = mean_fn(i, real) + std_fn(i, real) * jax.random.normal(k, real.shape, jnp.float32)
        out.append(_from_real(draw, x))
    return jax.tree_util.tree_unflatten(treedef, out)


class Intervention(NamedTuple):
    """One initial-state intervention, as pure functions (optax's pattern): adding one is one
    `Intervention` in `INTERVENTIONS`.

    init_carry(zero_state) -> carry: what it carries between steps, for a zero state whose
      leaves are (B, ...) (None when nothing).
    initial_state(key, zero_state, carry, std) -> state: the state a training batch starts from,
      of zero_state's structure, shapes and dtypes.
    update_carry(carry, final_state) -> carry: after a batch that ended in `final_state`
      (leaves (B, ...)).
    """

    init_carry: Callable[[Any], Any]
    initial_state: Callable[[jax.Array, Any, Any, float], Any]
    update_carry: Callable[[Any, Any], Any]


def _nothing(zero_state):
    return None


def _unchanged(carry, final_state):
    return carry


def _zero(key, zero_state, carry, std):
    return zero_state


def _noise(key, zero_state, carry, std):
    return _gaussian_like(key, zero_state, lambda i, x: 0.0, lambda i, x: std)


def _stopped(tree):
    return jax.tree_util.tree_map(jax.lax.stop_gradient, tree)


def _passed_state(key, zero_state, carry, std):
    return _stopped(carry)


def _last_final_state(carry, final_state):
    return _stopped(final_state)


def _init_moments(zero_state):
    moments = jax.tree_util.tree_map(
        lambda x: jnp.zeros_like(_as_real(x[0])) if _is_float(x) else jnp.zeros(()), zero_state)
    return StateMoments(moments, moments, jnp.zeros((), jnp.int32))


def _fitted_noise(key, zero_state, carry, std):
    correction = 1.0 - FIT_DECAY ** jnp.maximum(carry.updates, 1).astype(jnp.float32)
    started = (carry.updates > 0).astype(jnp.float32)
    means = jax.tree_util.tree_leaves(carry.mean)
    squares = jax.tree_util.tree_leaves(carry.mean_sq)

    def mean(i, x):
        return started * means[i] / correction

    def std_fit(i, x):
        mu = means[i] / correction
        return started * jnp.sqrt(jnp.maximum(squares[i] / correction - mu * mu, 0.0))

    return _stopped(_gaussian_like(key, zero_state, mean, std_fit))


def _update_moments(carry, final_state):
    final_state = _stopped(final_state)

    def ema(old, x, power):
        if not _is_float(x):
            return old
        value = jnp.mean(_as_real(x) ** power, axis=0)
        return FIT_DECAY * old + (1.0 - FIT_DECAY) * value

    mean = jax.tree_util.tree_map(lambda m, x: ema(m, x, 1), carry.mean, final_state)
    mean_sq = jax.tree_util.tree_map(lambda m, x: ema(m, x, 2), carry.mean_sq, final_state)
    return StateMoments(mean, mean_sq, carry.updates + 1)


INTERVENTIONS = {
    "zero": Intervention(_nothing, _zero, _unchanged),
    "noise": Intervention(_nothing, _noise, _unchanged),
    "fitted_noise": Intervention(_init_moments, _fitted_noise, _update_moments),
    "state_passing": Intervention(lambda zero_state: zero_state, _passed_state,
                                  _last_final_state),
}
INITIAL_STATES = tuple(INTERVENTIONS)


def get(kind: str) -> Intervention:
    """The intervention called `kind`; ValueError naming the valid ones."""
    try:
        return INTERVENTIONS[kind]
    except KeyError:
        raise ValueError(f"initial_state must be one of {INITIAL_STATES}; got {kind!r}") from None
