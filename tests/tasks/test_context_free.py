"""Context-free Chomsky tasks against pure-Python references written from the definitions."""

from __future__ import annotations

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

BUCKET = 24


def reverse(vocab):
    def reference(tokens):
        assert set(tokens) <= set(range(vocab))
        return everything_scored(tokens[::-1])

    return reference


def initial_stack_size(tokens):
    """The initial stack is the run of bits (0/1) before the first action (2, 3, 4)."""
    size = 0
    while size < len(tokens) and tokens[size] in (0, 1):
        size += 1
    return size


def stack_manipulation(tokens):
    size = initial_stack_size(tokens)
    assert 1 <= size <= max(len(tokens) - 1, 1), tokens
    assert set(tokens[size:]) <= {2, 3, 4}
    stack = list(tokens[:size])
    for action in tokens[size:]:
        if action == 2:
            if stack:
                stack.pop()
        else:
            stack.append(action - 3)
    answer = stack[::-1] + [2]
    outputs = answer + [0] * (len(tokens) + 1 - len(answer))
    return outputs, [j < len(answer) for j in range(len(outputs))]


def as_text(tokens, modulus, symbols):
    """Render tokens as a Python expression string; `symbols` maps token -> character."""
    return "".join(str(t) if t < modulus else symbols[t] for t in tokens)


def expression_end(text, i=0):
    """Index after the expression of the paper's grammar starting at text[i]; fails if none.

    E := d | -d | (d) | (-d) | (E op E), where d is a digit (or the unknown `x`).
    """
    def digit(k):
        return k < len(text) and (text[k].isdigit() or text[k] == "x")

    if digit(i):
        return i + 1
    if text[i] == "-":
        assert digit(i + 1), text
        return i + 2
    assert text[i] == "(", text
    if digit(i + 1) and text[i + 2] == ")":
        return i + 3
    if text[i + 1] == "-" and digit(i + 2) and text[i + 3] == ")":
        return i + 4
    k = expression_end(text, i + 1)
    assert text[k] in "+-*", text
    k = expression_end(text, k + 1)
    assert text[k] == ")", text
    return k + 1


def top_left_size(text):
    """Length of the left operand of an expression `(E op E)`."""
    return expression_end(text, 1) - 1


def brackets(modulus, mult):
    symbols = {modulus: "+", modulus + 1: "-", modulus + 2: "*", modulus + 3: "(", modulus + 4: ")"}

    def reference(tokens):
        text = as_text(tokens, modulus, symbols)
        assert expression_end(text) == len(text), text
        assert mult or "*" not in text
        return one_class(eval(text) % modulus)

    return reference


def solve_equation(modulus):
    symbols = {modulus: "+", modulus + 1: "-", modulus + 2: "(", modulus + 3: ")",
               modulus + 4: "x", modulus + 5: "="}

    def reference(tokens):
        text = as_text(tokens, modulus, symbols)
        left, _, right = text.rpartition("=")
        assert text.count("=") == 1 and left.count("x") == 1 and len(right) == 1, text
        assert expression_end(left) == len(left) and "*" not in left, text
        value = int(right)
        solutions = [
            d for d in range(modulus) if eval(left.replace("x", str(d))) % modulus == value
        ]
        assert len(solutions) == 1, text
        return one_class(solutions[0])

    return reference


CASES = {  # name: (hparams, reference)
    "reverse_string": ({}, reverse(2)),
    "reverse_string/3": ({"vocab_size": 3}, reverse(3)),
    "stack_manipulation": ({}, stack_manipulation),
    "modular_arithmetic_brackets": ({}, brackets(5, True)),
    "modular_arithmetic_brackets/7": ({"modulus": 7, "mult": False}, brackets(7, False)),
    "solve_equation": ({}, solve_equation(5)),
    "solve_equation/3": ({"modulus": 3}, solve_equation(3)),
}


@pytest.mark.parametrize("case", sorted(CASES))
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), chosen=st.lists(st.integers(1, BUCKET), max_size=6))
def test_matches_reference(case, seed, chosen):
    hparams, reference = CASES[case]
    task = tasks.get(case.split("/")[0], **hparams)
    assert task.group == "context_free"
    chosen = [max(n, task.min_length) for n in chosen]
    lengths = fill_lengths(seed, chosen, task.min_length, BUCKET)
    batch = sample(task, seed, lengths, BUCKET)
    assert batch.inputs.shape == (ROWS, task.seq_len(BUCKET))
    assert batch.inputs.max() < task.input_vocab and batch.targets.max() < task.output_vocab
    check_rows(batch, lengths, blank=task.input_vocab - 1, reference=reference)


def _inputs(task, length, draws=16):
    """The input tokens (rows of `length`) of draws * ROWS sequences."""
    return [row[:length].tolist() for seed in range(draws)
            for row in sample(task, seed, [length] * ROWS, BUCKET).inputs]


def test_stack_manipulation_initial_stack_size_is_uniform():
    sizes = np.array([initial_stack_size(t) for t in _inputs(tasks.get("stack_manipulation"), 12)])
    assert set(sizes) == set(range(1, 12))  # uniform in [1, L-1]
    assert abs(sizes.mean() - 6) < 0.5


def test_bracket_expressions_split_uniformly_and_favour_zero():
    task = tasks.get("modular_arithmetic_brackets")
    symbols = {5: "+", 6: "-", 7: "*", 8: "(", 9: ")"}
    texts = [as_text(t, 5, symbols) for t in _inputs(task, 20)]
    left = np.array([top_left_size(text) for text in texts])
    assert set(left) == set(range(1, 17))  # len(E1) uniform in [1, L-4]
    assert abs(left.mean() - 8.5) < 0.6
    joined = "".join(texts)
    assert abs(joined.count("+") / joined.count("*") - 1) < 0.2  # operators uniform
    values = np.array([eval(text) % 5 for text in texts])
    share = np.bincount(values, minlength=5) / len(values)
    assert 0.24 < share[0] < 0.42 and share[1:].max() < share[0]  # products favour 0
    assert abs(task.chance - 1 / 3) < 1e-9


def test_solve_equation_picks_the_papers_digit():
    # L = 7: the expression is `(a op b)` (5 tokens); a uniform start in 0..4 then the next
    # digit (wrapping) picks position 1 from starts 0, 1, 4 and position 3 from 2, 3: 3/5.
    first = np.mean([t.index(9) == 1 for t in _inputs(tasks.get("solve_equation"), 7)])
    assert abs(first - 0.6) < 0.05


def test_one_compilation_for_many_keys_and_lengths():
    task = tasks.get("modular_arithmetic_brackets")
    for seed in range(3):
        sample(task, seed, fill_lengths(seed, [], 1, BUCKET), BUCKET)
    assert compilations(task, BUCKET) == 1


def test_vocabularies():
    assert tasks.get("reverse_string").input_vocab == 3
    stack = tasks.get("stack_manipulation")
    assert (stack.input_vocab, stack.output_vocab, stack.seq_len(10)) == (6, 3, 21)
    brackets_task = tasks.get("modular_arithmetic_brackets")
    assert (brackets_task.input_vocab, brackets_task.output_vocab) == (12, 5)
    equation = tasks.get("solve_equation")
    assert (equation.input_vocab, equation.min_length, equation.seq_len(10)) == (12, 3, 11)


@pytest.mark.parametrize(
    "name, hparams, message",
    [
        ("reverse_string", {"vocab_size": 1}, "vocab_size=1 must be an int >= 2"),
        ("modular_arithmetic_brackets", {"modulus": 0}, "modulus=0 must be an int >= 2"),
        ("solve_equation", {"modulus": 1}, "modulus=1 must be an int >= 2"),
    ],
)
def test_bad_settings_are_rejected(name, hparams, message):
    with pytest.raises(ValueError, match=message):
        tasks.get(name, **hparams)


def test_too_short_equation_is_rejected():
    with pytest.raises(ValueError, match="needs length >= 3"):
        tasks.get("solve_equation").sample(jax.random.key(0), 2, 2)
