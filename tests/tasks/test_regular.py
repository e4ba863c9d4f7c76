"""Regular Chomsky tasks against pure-Python references written from the paper's definitions."""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import seqbench.tasks as tasks
from tests.tasks._chomsky_ref import ROWS, check_rows, compilations, fill_lengths, one_class, sample

BUCKET = 13


def parity(tokens):
    assert set(tokens) <= {0, 1}
    return one_class(sum(tokens) % 2)


def even_pairs(tokens):
    assert set(tokens) <= {0, 1}
    changes = sum(1 for a, b in zip(tokens, tokens[1:]) if a != b)
    return one_class(changes % 2)


def cycle(length_of_cycle):
    def reference(tokens):
        assert set(tokens) <= {0, 1, 2}
        position = 0
        for action in tokens:  # 0: one step left, 1: stay, 2: one step right
            position = (position + {0: -1, 1: 0, 2: 1}[action]) % length_of_cycle
        return one_class(position)

    return reference


def modular(modulus):
    names = {modulus: "+", modulus + 1: "-", modulus + 2: "*"}

    def reference(tokens):
        assert len(tokens) % 2 == 1
        assert all(t < modulus for t in tokens[::2]), tokens
        assert all(t in names for t in tokens[1::2]), tokens
        text = "".join(str(t) if i % 2 == 0 else names[t] for i, t in enumerate(tokens))
        return one_class(eval(text) % modulus)  # Python's precedence: * before + and -

    return reference


def odd(length):
    return length if length % 2 else length - 1


CASES = {  # name: (hparams, reference, used input length)
    "parity_check": ({}, parity, None),
    "even_pairs": ({}, even_pairs, None),
    "cycle_navigation": ({}, cycle(5), None),
    "cycle_navigation/7": ({"cycle_length": 7}, cycle(7), None),
    "modular_arithmetic": ({}, modular(5), odd),
    "modular_arithmetic/3": ({"modulus": 3}, modular(3), odd),
}


@pytest.mark.parametrize("case", sorted(CASES))
@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), chosen=st.lists(st.integers(1, BUCKET), max_size=6))
def test_matches_reference(case, seed, chosen):
    hparams, reference, used = CASES[case]
    task = tasks.get(case.split("/")[0], **hparams)
    assert task.group == "regular" and task.output_vocab >= 2
    lengths = fill_lengths(seed, chosen, task.min_length, BUCKET)
    batch = sample(task, seed, lengths, BUCKET)
    assert batch.inputs.shape == (ROWS, task.seq_len(BUCKET))
    assert batch.inputs.max() < task.input_vocab and batch.targets.max() < task.output_vocab
    check_rows(batch, lengths, blank=task.input_vocab - 1, reference=reference,
               used=used or (lambda n: n))


def _targets(task, length, draws=16):
    """The scored targets of draws * ROWS rows of one length."""
    found = []
    for seed in range(draws):
        batch = sample(task, seed, [length] * ROWS, BUCKET)
        found.append(batch.targets[batch.mask])
    return np.concatenate(found)


@pytest.mark.parametrize("name", ["parity_check", "even_pairs"])
def test_binary_classes_are_balanced(name):
    task = tasks.get(name)
    targets = _targets(task, 11)
    assert len(targets) == 16 * ROWS
    assert abs(targets.mean() - 0.5) < 0.06
    assert task.chance == 0.5


def test_cycle_navigation_follows_the_exact_walk_distribution():
    task = tasks.get("cycle_navigation")
    length = 4
    exact = np.zeros(5)
    for moves in itertools.product((-1, 0, 1), repeat=length):
        exact[sum(moves) % 5] += 1 / 3**length
    found = np.bincount(_targets(task, length), minlength=5) / (16 * ROWS)
    np.testing.assert_allclose(found, exact, atol=0.05)


def test_modular_arithmetic_samples_all_operators_and_digits():
    task = tasks.get("modular_arithmetic")
    batch = sample(task, 3, [BUCKET] * ROWS, BUCKET)
    tokens = batch.inputs[:, :BUCKET]
    assert set(np.unique(tokens[:, ::2])) == set(range(5))
    assert set(np.unique(tokens[:, 1::2])) == {5, 6, 7}  # + - *; `_` (8) is never sampled
    assert set(np.unique(batch.targets[batch.mask])) == set(range(5))


def test_even_length_drops_a_token_and_ends_early():
    task = tasks.get("modular_arithmetic")
    batch = sample(task, 0, [12] * ROWS, BUCKET)
    assert (batch.inputs[:, 11] == task.input_vocab - 1).all()  # blank right after 11 tokens
    assert batch.mask[:, 11].all() and not batch.mask[:, 12:].any()
    assert task.difficulty(12)["input_tokens"] == 11


def test_one_compilation_for_many_keys_and_lengths():
    task = tasks.get("parity_check")
    for seed in range(3):
        sample(task, seed, fill_lengths(seed, [], 1, BUCKET), BUCKET)
    assert compilations(task, BUCKET) == 1


def test_vocabularies_and_chance():
    assert tasks.get("parity_check").input_vocab == 3  # 0, 1, blank
    assert tasks.get("cycle_navigation").output_vocab == 5
    task = tasks.get("modular_arithmetic", modulus=7)
    assert (task.input_vocab, task.output_vocab, task.chance) == (12, 7, 1 / 7)
    assert task.seq_len(10) == 11


@pytest.mark.parametrize(
    "name, hparams, message",
    [
        ("cycle_navigation", {"cycle_length": 1}, "cycle_length=1 must be an int >= 2"),
        ("modular_arithmetic", {"modulus": 1}, "modulus=1 must be an int >= 2"),
        ("modular_arithmetic", {"modulus": 2.5}, "modulus=2.5 must be an int"),
    ],
)
def test_bad_settings_are_rejected(name, hparams, message):
    with pytest.raises(ValueError, match=message):
        tasks.get(name, **hparams)


def test_too_short_length_is_rejected():
    with pytest.raises(ValueError, match="needs length >= 1"):
        tasks.get("parity_check").sample(jax.random.key(0), 2, 0)
