"""Regular-language tasks of the Chomsky hierarchy benchmark (Delétang et al., ICLR 2023).

"Neural Networks and the Chomsky Hierarchy", tasks/regular/*: parity_check, even_pairs,
cycle_navigation, modular_arithmetic. Each is a classification: the model reads the input, then
one blank step at which the class is scored (the paper's code appends output_length = 1 empty
token and reads the output there; see `_chomsky.py` for the tape). Protocol: train on lengths
1..40, test on 41..500. Length is the only difficulty knob, as in the paper: a finite automaton
solves every length, so long lengths are neither trivial nor impossible, they test whether the
state is tracked exactly. Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from seqbench.tasks._chomsky import Tape, check_at_least, chomsky_task, one_step, uniform_tokens
from seqbench.tasks.base import Task, positions


def _one(value: jax.Array) -> jax.Array:
    """A (B,) class as the (B, 1) outputs of a single-output task."""
    return value[:, None].astype(jnp.int32)


def make_parity_check() -> Task:
    """Parity check: is the number of 1s in a binary string odd?

    Input: L i.i.d. uniform bits (tokens 0, 1); token 2 is the blank. Target at the one blank
    step after the input: (number of 1s) mod 2. L = 5:

        inputs   1 0 1 1 0 2
        targets  0 0 0 0 0 1
        mask     . . . . . T

    Chance 0.5 (the class is uniform at every L >= 1).
    Paper: Delétang et al. 2023, tasks/regular/parity_check.py.
    """

    def core(key, lengths, max_length):
        bits = uniform_tokens(key, lengths, max_length, 2)
        return Tape(bits, _one(bits.sum(axis=1) % 2))

    return chomsky_task(
        "parity_check", "regular", core,
        input_size=2, output_size=2, output_length=one_step, min_length=1,
        chance=0.5, hparams={},
        describe=lambda n: {"bits": n, "states": 2},
    )


def make_even_pairs() -> Task:
    """Even pairs: is the number of adjacent unequal pairs ("01" or "10") odd?

    Input: L i.i.d. uniform bits; token 2 is the blank. Target at the blank step: (number of
    positions i with s_i != s_{i+1}) mod 2, which is 1 exactly when s_1 != s_L. L = 6:

        inputs   0 0 1 1 1 0 2
        targets  0 0 0 0 0 0 0
        mask     . . . . . . T

    (one "01" and one "10": even, class 0). Chance 0.5 for L >= 2 (L = 1 is always class 0).
    Paper: Delétang et al. 2023, tasks/regular/even_pairs.py.
    """

    def core(key, lengths, max_length):
        bits = uniform_tokens(key, lengths, max_length, 2)
        inside = positions(lengths.shape[0], max_length)[:, 1:] < lengths[:, None]
        unequal = (bits[:, 1:] != bits[:, :-1]) & inside
        return Tape(bits, _one(unequal.sum(axis=1) % 2))

    return chomsky_task(
        "even_pairs", "regular", core,
        input_size=2, output_size=2, output_length=one_step, min_length=1,
        chance=0.5, hparams={},
        describe=lambda n: {"bits": n, "states": 4},
    )


def make_cycle_navigation(*, cycle_length: int = 5) -> Task:
    """Cycle navigation: the final position of a walk on a cycle of `cycle_length` states.

    Input: L i.i.d. uniform actions, token a in {0, 1, 2} moves by a - 1 (0: left, 1: stay,
    2: right; the paper's code, whose docstring differs); token 3 is the blank. The walk starts
    at 0; target at the blank step: (sum of moves) mod cycle_length. L = 5, cycle 5:

        inputs   2 0 1 0 0 3
        targets  0 0 0 0 0 3
        mask     . . . . . T

    (+1 -1 0 -1 -1 = -2 = 3 mod 5). Chance 1/cycle_length at long L (the sum mixes to uniform;
    short walks favour states near 0). The paper uses cycle_length = 5.
    Paper: Delétang et al. 2023, tasks/regular/cycle_navigation.py.
    """
    check_at_least("cycle_navigation", "cycle_length", cycle_length, 2, "a cycle needs 2 states")

    def core(key, lengths, max_length):
        actions = uniform_tokens(key, lengths, max_length, 3)
        inside = positions(lengths.shape[0], max_length) < lengths[:, None]
        moves = jnp.where(inside, actions - 1, 0)
        return Tape(actions, _one(moves.sum(axis=1) % cycle_length))

    return chomsky_task(
        "cycle_navigation", "regular", core,
        input_size=3, output_size=cycle_length, output_length=one_step,
        min_length=1, chance=1.0 / cycle_length, hparams={"cycle_length": cycle_length},
        describe=lambda n: {"moves": n, "states": cycle_length},
    )


def _odd_length(lengths: Any) -> Any:
    """The paper drops the last token of an even length: expressions have odd length."""
    return lengths - (1 - lengths % 2)


def _evaluate_modular(tokens: jax.Array, lengths: jax.Array, modulus: int) -> jax.Array:
    """Value mod `modulus` of `d op d op ... d` with * before + and - (left to right scan)."""
    plus, minus, times = modulus, modulus + 1, modulus + 2
    batch = tokens.shape[0]

    def step(carry, xs):
        total, term, sign, multiply = carry
        token, active = xs
        is_digit = active & (token < modulus)
        is_sum = active & ((token == plus) | (token == minus))
        new_term = jnp.where(multiply, term * token, token) % modulus
        total = jnp.where(is_sum, (total + sign * term) % modulus, total)
        sign = jnp.where(is_sum, jnp.where(token == minus, -1, 1), sign)
        term = jnp.where(is_digit, new_term, term)
        multiply = jnp.where(active, token == times, multiply)
        return (total, term, sign, multiply), None

    zeros = jnp.zeros((batch,), jnp.int32)
    init = (zeros, zeros, zeros + 1, zeros.astype(bool))
    active = positions(batch, tokens.shape[1]) < lengths[:, None]
    (total, term, sign, _), _ = jax.lax.scan(step, init, (tokens.T, active.T))
    return (total + sign * term) % modulus


def make_modular_arithmetic(*, modulus: int = 5) -> Task:
    """Modular arithmetic without brackets: reduce `d op d op ... d` modulo `modulus`.

    Tokens: digits 0..m-1, `+` = m, `-` = m+1, `*` = m+2, `_` = m+3 (in the paper's vocabulary,
    never sampled), blank = m+4. Input: an odd number of tokens alternating uniform digits and
    uniform operators from {+, -, *}; an even requested length L uses L - 1 tokens (as the
    paper does), the row then ends one step earlier. Usual precedence: * before + and -.
    Target at the blank step: the value mod m. L = 5, m = 5, "1 + 2 * 3" = 7 = 2:

        inputs   1 5 2 7 3 9
        targets  0 0 0 0 0 2
        mask     . . . . . T

    Chance 1/m at long L (short expressions favour 0 through products). The paper uses m = 5.
    Paper: Delétang et al. 2023, tasks/regular/modular_arithmetic.py.
    """
    check_at_least("modular_arithmetic", "modulus", modulus, 2, "residues need 2 classes")

    def core(key, lengths, max_length):
        used = _odd_length(lengths)
        k_digit, k_op = jax.random.split(key)
        digits = uniform_tokens(k_digit, used, max_length, modulus)
        ops = modulus + uniform_tokens(k_op, used, max_length, 3)
        odd = positions(lengths.shape[0], max_length) % 2 == 1
        tokens = jnp.where(odd, ops, digits)
        tokens = jnp.where(positions(*tokens.shape) < used[:, None], tokens, 0)
        return Tape(tokens, _one(_evaluate_modular(tokens, used, modulus)), lengths=used)

    return chomsky_task(
        "modular_arithmetic", "regular", core,
        input_size=modulus + 4, output_size=modulus, output_length=one_step,
        min_length=1, chance=1.0 / modulus, hparams={"modulus": modulus},
        describe=lambda n: {"numbers": n // 2 + 1, "operators": n // 2, "modulus": modulus},
        input_length=_odd_length,
    )


TASKS = {
    "parity_check": make_parity_check,
    "even_pairs": make_even_pairs,
    "cycle_navigation": make_cycle_navigation,
    "modular_arithmetic": make_modular_arithmetic,
}
