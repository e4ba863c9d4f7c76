"""Context-sensitive Chomsky tasks against pure-Python references (Python ints for arithmetic)."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import seqbench.tasks as tasks
from tests.tasks._chomsky_ref import (
    ROWS,
    check_rows,
    compilations,
    everything_scored,
    fill_lengths,
    one_class,
    sample,
)

SHORT = 13  # bucket of the string tasks
LONG = 75  # bucket of the arithmetic tasks: operands and results well past 64 bits


def strings(vocab, rearrange):
    def reference(tokens):
        assert set(tokens) <= set(range(vocab))
        return everything_scored(rearrange(tokens))

    return reference


def missing_duplicate(tokens):
    half = len(tokens) // 2
    body = tokens[: 2 * half]
    assert tokens[2 * half:] == ([3] if len(tokens) % 2 else [])
    assert body.count(2) == 1 and set(body) <= {0, 1, 2}
    hole = body.index(2)
    twin = hole + half if hole < half else hole - half
    first, second = body[:half], body[half:]
    assert all(a == b for i, (a, b) in enumerate(zip(first, second)) if i != hole % half)
    return one_class(body[twin])


def little_endian(bits):
    return sum(bit << i for i, bit in enumerate(bits))


def binary_operation(combine, output_length):
    def reference(tokens):
        assert tokens.count(2) == 1 and set(tokens) <= {0, 1, 2}
        split = tokens.index(2)
        n, m = little_endian(tokens[:split]), little_endian(tokens[split + 1:])
        assert split >= 1 and split <= len(tokens) - 2 and n > 0 and m > 0, tokens
        answer = [int(c) for c in reversed(format(combine(n, m), "b"))] + [2]
        width = output_length(len(tokens))
        return answer + [0] * (width - len(answer)), [j < len(answer) for j in range(width)]

    return reference


def square_root(tokens):
    assert set(tokens) <= {0, 1}
    number = int("".join(map(str, tokens)), 2)
    assert number > 0
    digits = math.ceil(len(tokens) / 2)
    return everything_scored([int(c) for c in format(math.isqrt(number), f"0{digits}b")])


CASES = {  # name: (hparams, reference, bucket)
    "duplicate_string": ({}, strings(2, lambda s: s + s), SHORT),
    "duplicate_string/4": ({"vocab_size": 4}, strings(4, lambda s: s + s), SHORT),
    "missing_duplicate_string": ({}, missing_duplicate, SHORT),
    "odds_first": ({}, strings(2, lambda s: s[1::2] + s[::2]), SHORT),
    "odds_first/3": ({"vocab_size": 3}, strings(3, lambda s: s[1::2] + s[::2]), SHORT),
    "bucket_sort": ({}, strings(5, sorted), SHORT),
    "bucket_sort/3": ({"vocab_size": 3}, strings(3, sorted), SHORT),
    "binary_addition": ({}, binary_operation(lambda a, b: a + b, lambda n: n + 1), LONG),
    "binary_multiplication": ({}, binary_operation(lambda a, b: a * b, lambda n: n), LONG),
    "compute_sqrt": ({}, square_root, LONG),
}


@pytest.mark.parametrize("case", sorted(CASES))
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), chosen=st.lists(st.integers(1, SHORT), max_size=6))
def test_matches_reference(case, seed, chosen):
    hparams, reference, bucket = CASES[case]
    task = tasks.get(case.split("/")[0], **hparams)
    assert task.group == "context_sensitive"
    chosen = [max(n, task.min_length) for n in chosen]
    lengths = fill_lengths(seed, chosen, task.min_length, bucket)
    batch = sample(task, seed, lengths, bucket)
    assert batch.inputs.shape == (ROWS, task.seq_len(bucket))
    assert batch.inputs.max() < task.input_vocab and batch.targets.max() < task.output_vocab
    check_rows(batch, lengths, blank=task.input_vocab - 1, reference=reference)


def _batches(task, length, bucket, draws=16):
    return [sample(task, seed, [length] * ROWS, bucket) for seed in range(draws)]


def test_missing_bit_is_balanced():
    batches = _batches(tasks.get("missing_duplicate_string"), 9, SHORT)
    answers = np.concatenate([b.targets[b.mask] for b in batches])
    assert abs(answers.mean() - 0.5) < 0.06


@pytest.mark.parametrize("length", [8, 9])
def test_missing_bit_is_the_parity_of_the_visible_bits(length):
    """Every bit of w w occurs twice, so the hidden one is the XOR of the others: the regular
    shortcut that lets an LSTM solve this context-sensitive task (BUILD_NOTES.md)."""
    for batch in _batches(tasks.get("missing_duplicate_string"), length, SHORT, draws=4):
        visible = np.where(batch.inputs[:, :length] < 2, batch.inputs[:, :length], 0)
        hidden = np.where(batch.mask, batch.targets, 0).sum(axis=1)
        np.testing.assert_array_equal(hidden, visible.sum(axis=1) % 2)


@pytest.mark.parametrize("name", ["binary_addition", "binary_multiplication"])
def test_operand_lengths_are_uniform(name):
    length = 12
    splits = np.concatenate(
        [np.argmax(b.inputs[:, :length] == 2, axis=1)
         for b in _batches(tasks.get(name), length, LONG)]
    )
    assert set(splits) == set(range(1, length - 1))  # len(n) uniform in [1, L-2]
    assert abs(splits.mean() - (length - 1) / 2) < 0.4


def test_sqrt_numbers_are_uniform():
    bits = np.concatenate([b.inputs[:, :10] for b in _batches(tasks.get("compute_sqrt"), 10, LONG)])
    assert np.all(np.abs(bits.mean(axis=0) - 0.5) < 0.06)  # every bit of n ~ fair


def test_bit_arithmetic_on_extreme_operands():
    """All-ones operands: the longest carry chains and the largest column sums."""
    from seqbench.tasks.context_sensitive import _add_bits, _isqrt_bits, _multiply_bits

    def bits(value, width):
        return [(value >> i) & 1 for i in range(width)]

    width = 75
    ones = 2**width - 1
    pairs = [
        (ones, ones), (ones, 1), (2**74, 2**74), (2**74, 2**74 - 1), (1234567890123456789012, 98765)
    ]
    a = np.array([bits(x, width) for x, _ in pairs], np.int32)
    b = np.array([bits(y, width) for _, y in pairs], np.int32)
    total, carry = _add_bits(a, b)
    for row, (x, y) in enumerate(pairs):
        assert little_endian(np.asarray(total[row]).tolist()) + (int(carry[row]) << width) == x + y
        product = little_endian(np.asarray(_multiply_bits(a, b)[row]).tolist())
        assert product == x * y
    squares = [4**38 - 1, ones, 4**37, 4**37 - 1, (2**37 - 1) ** 2, 1]
    number = np.array([bits(n, 76) for n in squares], np.int32)
    roots = _isqrt_bits(number)
    found = [little_endian(np.asarray(r).tolist()) for r in roots]
    assert found == [math.isqrt(n) for n in squares]


def test_one_compilation_for_many_keys_and_lengths():
    task = tasks.get("compute_sqrt")
    for seed in range(3):
        sample(task, seed, fill_lengths(seed, [], 1, LONG), LONG)
    assert compilations(task, LONG) == 1


def test_output_lengths():
    assert tasks.get("duplicate_string").seq_len(10) == 30
    assert tasks.get("binary_addition").seq_len(10) == 21
    assert tasks.get("binary_multiplication").seq_len(10) == 20
    assert [tasks.get("compute_sqrt").seq_len(n) for n in (1, 2, 5)] == [2, 3, 8]
    assert tasks.get("missing_duplicate_string").input_vocab == 5


@pytest.mark.parametrize(
    "name, hparams, message",
    [
        ("duplicate_string", {"vocab_size": 1}, "vocab_size=1 must be an int >= 2"),
        ("bucket_sort", {"vocab_size": 0}, "vocab_size=0 must be an int >= 2"),
    ],
)
def test_bad_settings_are_rejected(name, hparams, message):
    with pytest.raises(ValueError, match=message):
        tasks.get(name, **hparams)


@pytest.mark.parametrize(
    "name, length, minimum",
    [
        ("binary_addition", 2, 3),
        ("binary_multiplication", 1, 3),
        ("missing_duplicate_string", 1, 2),
    ],
)
def test_too_short_length_is_rejected(name, length, minimum):
    with pytest.raises(ValueError, match=f"needs length >= {minimum}"):
        tasks.get(name).sample(jax.random.key(0), 2, length)
