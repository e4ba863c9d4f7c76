"""Tests for seqbench.tasks.memory: copy, selective_copy, mqar, induction_heads, adding, passkey.

Each task has a slow NumPy reference written from the task's definition (not from the generator):
it reads one row's inputs and length, checks that the input is well formed, and recomputes the
targets and the mask. Hypothesis drives it over seeds, settings and per-row lengths in a bucket.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import seqbench.tasks as tasks

BATCH = 4
MEMORY_TASKS = ("copy", "selective_copy", "mqar", "induction_heads", "adding", "passkey")


@functools.lru_cache(maxsize=None)
def _compiled(name: str, kwargs: tuple):
    task = tasks.get(name, **dict(kwargs))
    return task, jax.jit(task.sample_bucket, static_argnums=2)


def _batch(name: str, kwargs: dict, seed: int, lengths, bucket: int):
    """(task, lengths, inputs, targets, mask) as NumPy via `task.sample_bucket`, compiled once per
    (settings, bucket) and shared by all tests (eager generation costs seconds per call)."""
    task, sample_bucket = _compiled(name, tuple(sorted(kwargs.items())))
    lengths = np.asarray(lengths, np.int32)
    assert lengths.min() >= task.min_length and lengths.max() <= bucket
    batch = sample_bucket(jax.random.key(seed), jnp.asarray(lengths), bucket)
    return (task, lengths, *[np.asarray(a) for a in batch])


def _sample(name: str, kwargs: dict, seed: int, batch_size: int, length: int):
    """(task, inputs, targets, mask): `batch_size` rows of one length, in the bucket `length`."""
    task, _, inputs, targets, mask = _batch(name, kwargs, seed, [length] * batch_size, length)
    return task, inputs, targets, mask


# --- references: one row at a time, from the definitions --------------------------------------


def ref_copy(x, length, vocab_size):
    """x: L content tokens in 2..V-1, delimiter 1, L blanks, then zeros."""
    n = len(x)
    content = x[:length]
    assert np.all((content >= 2) & (content < vocab_size))
    assert x[length] == 1
    assert not np.any(x[length + 1 :])
    targets, mask = np.zeros(n, np.int64), np.zeros(n, bool)
    for j in range(length):
        targets[length + 1 + j] = content[j]
        mask[length + 1 + j] = True
    return targets, mask


def ref_selective_copy(x, length, vocab_size, num_tokens):
    """x: L steps of noise 0 with num_tokens content tokens, delimiter 1, blanks, zeros."""
    n = len(x)
    region = x[:length]
    assert np.all((region == 0) | ((region >= 2) & (region < vocab_size)))
    content = [int(v) for v in region if v != 0]
    assert len(content) == num_tokens
    assert x[length] == 1
    assert not np.any(x[length + 1 :])
    targets, mask = np.zeros(n, np.int64), np.zeros(n, bool)
    for j, token in enumerate(content):
        targets[length + 1 + j] = token
        mask[length + 1 + j] = True
    return targets, mask


def ref_mqar(x, length, vocab_size, num_kv_pairs, mask, random_non_queries=True):
    """Recomputes the targets at the scored positions and checks where they may be.

    Noise may repeat a key, so the query positions cannot be read off the inputs alone: the
    reference takes the mask, checks that it marks exactly one query of every key, each on a query
    slot inside the row, and recomputes the targets from the key-value pairs.
    """
    n, half, k = len(x), vocab_size // 2, num_kv_pairs
    keys, values = x[0 : 2 * k : 2], x[1 : 2 * k : 2]
    assert len(set(keys.tolist())) == k and np.all((keys >= 1) & (keys < half))
    assert len(set(values.tolist())) == k and np.all((values >= half) & (values < vocab_size))
    assert np.all((x[:length] >= 0) & (x[:length] < vocab_size))
    assert not np.any(x[length:])
    table = dict(zip(keys.tolist(), values.tolist()))
    scored = np.flatnonzero(mask)
    slots = [2 * k + 2 * g for g in range((length - 2 * k) // 2)]
    assert set(scored.tolist()) <= set(slots)
    assert sorted(x[scored].tolist()) == sorted(keys.tolist())
    if not random_non_queries:  # every position after the pairs but the queries holds 0
        others = np.setdiff1d(np.arange(2 * k, length), scored)
        assert not np.any(x[others])
    targets = np.zeros(n, np.int64)
    for t in scored:
        targets[t] = table[int(x[t])]
    return targets, mask


def ref_induction_heads(x, length, vocab_size):
    """x: content tokens with the trigger 1 exactly twice, the second at L-1, then zeros."""
    n = len(x)
    row = x[:length]
    triggers = np.flatnonzero(row == 1)
    assert len(triggers) == 2 and triggers[1] == length - 1 and triggers[0] <= length - 3
    others = np.delete(row, triggers)
    assert np.all((others >= 2) & (others < vocab_size))
    assert not np.any(x[length:])
    targets, mask = np.zeros(n, np.int64), np.zeros(n, bool)
    targets[length - 1] = row[triggers[0] + 1]
    mask[length - 1] = True
    return targets, mask


def ref_adding(x, length):
    """x: (T, 2); values in [0, 1), exactly one marker in each half, zeros after L."""
    n = len(x)
    values, marker = x[:length, 0], x[:length, 1]
    assert np.all((values >= 0) & (values < 1))
    marked = np.flatnonzero(marker)
    assert np.all((marker == 0) | (marker == 1)) and len(marked) == 2
    assert marked[0] < length // 2 <= marked[1]
    assert not np.any(x[length:])
    targets, mask = np.zeros(n, np.float64), np.zeros(n, bool)
    targets[length - 1] = values[marked[0]] + values[marked[1]]
    mask[length - 1] = True
    return targets, mask


def ref_passkey(x, length, num_digits, filler_period):
    """x: periodic filler 13 + t % P, one block [2, digit tokens 3..12], query 1, blanks, zeros."""
    n = len(x)
    row = x[:length]
    starts = np.flatnonzero(row == 2)
    assert len(starts) == 1
    start = int(starts[0])
    assert start + num_digits < length
    key = row[start + 1 : start + 1 + num_digits]
    assert np.all((key >= 3) & (key <= 12))
    for t in range(length):
        if not start <= t <= start + num_digits:
            assert row[t] == 13 + t % filler_period
    assert x[length] == 1
    assert not np.any(x[length + 1 :])
    targets, mask = np.zeros(n, np.int64), np.zeros(n, bool)
    targets[length + 1 : length + 1 + num_digits] = key
    mask[length + 1 : length + 1 + num_digits] = True
    return targets, mask


def reference(name, kwargs, x, length, mask):
    """The reference's (targets, mask) for one row."""
    if name == "copy":
        return ref_copy(x, length, kwargs["vocab_size"])
    if name == "selective_copy":
        return ref_selective_copy(x, length, kwargs["vocab_size"], kwargs["num_tokens"])
    if name == "mqar":
        return ref_mqar(x, length, kwargs["vocab_size"], kwargs["num_kv_pairs"], mask,
                        kwargs.get("random_non_queries", True))
    if name == "induction_heads":
        return ref_induction_heads(x, length, kwargs["vocab_size"])
    if name == "adding":
        return ref_adding(x, length)
    if name == "passkey":
        return ref_passkey(x, length, kwargs["num_digits"], kwargs["filler_period"])
    raise AssertionError(name)


# (task, settings, bucket): one compilation each, shared by the hypothesis and the fixed tests.
CONFIGS = [
    ("copy", {"vocab_size": 3}, 9),
    ("copy", {"vocab_size": 10}, 16),
    ("selective_copy", {"vocab_size": 5, "num_tokens": 3}, 16),
    ("selective_copy", {"vocab_size": 16, "num_tokens": 1}, 9),
    ("mqar", {"vocab_size": 10, "num_kv_pairs": 3, "power_a": 0.01}, 19),
    ("mqar", {"vocab_size": 64, "num_kv_pairs": 1, "power_a": 1.0}, 13),
    ("mqar", {"vocab_size": 16, "num_kv_pairs": 2, "random_non_queries": False}, 16),
    ("induction_heads", {"vocab_size": 3}, 9),
    ("induction_heads", {"vocab_size": 16}, 16),
    ("adding", {}, 13),
    ("passkey", {"num_digits": 1, "filler_period": 1}, 9),
    ("passkey", {"num_digits": 4, "filler_period": 3}, 16),
]
CONFIG_IDS = [f"{name}-{i}" for i, (name, *_) in enumerate(CONFIGS)]


def _check_against_reference(name, kwargs, seed, lengths, bucket):
    task, lengths, inputs, targets, mask = _batch(name, kwargs, seed, lengths, bucket)
    steps = task.seq_len(bucket)
    assert inputs.shape[:2] == targets.shape == mask.shape == (len(lengths), steps)
    assert mask.dtype == bool
    if task.real_inputs:
        assert inputs.dtype == np.float32 and targets.dtype == np.float32
        assert inputs.shape[2] == task.input_vocab
    else:
        assert inputs.dtype == np.int32 and targets.dtype == np.int32
        assert inputs.min() >= 0 and inputs.max() < task.input_vocab
        assert targets.min() >= 0 and targets.max() < task.output_vocab
    for row, length in enumerate(lengths):
        want_targets, want_mask = reference(name, kwargs, inputs[row], int(length), mask[row])
        np.testing.assert_array_equal(mask[row], want_mask, err_msg=f"row {row}, L={length}")
        np.testing.assert_allclose(targets[row], want_targets, rtol=0, atol=1e-6)
        real_extent = task.seq_len(int(length))
        assert not np.any(mask[row, real_extent:]) and not np.any(targets[row, real_extent:])


@pytest.mark.parametrize("name,kwargs,bucket", CONFIGS, ids=CONFIG_IDS)
@settings(max_examples=15, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_matches_reference(name, kwargs, bucket, data, seed):
    min_length = tasks.get(name, **kwargs).min_length
    lengths = data.draw(st.lists(st.integers(min_length, bucket), min_size=BATCH, max_size=BATCH))
    _check_against_reference(name, kwargs, seed, lengths, bucket)


@pytest.mark.parametrize("name,kwargs,bucket", CONFIGS, ids=CONFIG_IDS)
def test_mixed_lengths_in_one_bucket(name, kwargs, bucket):
    min_length = tasks.get(name, **kwargs).min_length
    lengths = [min_length, bucket, (min_length + bucket) // 2, bucket - 1]
    _check_against_reference(name, kwargs, 3, lengths, bucket)
    *_, mask = _batch(name, kwargs, 3, lengths, bucket)
    assert mask.sum(axis=1).min() >= 1  # every row asks something


def test_registered_in_memory_group():
    assert set(MEMORY_TASKS) <= set(tasks.names())
    for name in MEMORY_TASKS:
        task = tasks.get(name)
        assert task.name == name and task.group == "memory"
        assert isinstance(task.difficulty(64), dict)


@pytest.mark.parametrize("name", MEMORY_TASKS)
def test_one_compilation_for_every_key_and_length(name):
    task = tasks.get(name) if name not in ("selective_copy", "mqar") else tasks.get(
        name, **({"num_tokens": 2} if name == "selective_copy" else {"num_kv_pairs": 2})
    )
    traces = []

    def generate(key, lengths):
        traces.append(1)
        return task.generate(key, lengths, 16)

    generate = jax.jit(generate)
    for seed, length in [(0, 16), (1, task.min_length), (2, 11)]:
        lengths = jnp.array([length, 16, task.min_length], jnp.int32)
        jax.block_until_ready(generate(jax.random.key(seed), lengths))
    assert len(traces) == 1


# --- statistics: balance, chance and the documented distributions ------------------------------


def _assert_uniform(samples, support: int):
    """Every value in 0..support-1 occurs, each within 5 sigma of n/support; nothing outside."""
    samples = np.asarray(samples).ravel()
    assert samples.min() >= 0 and samples.max() < support
    counts = np.bincount(samples, minlength=support)
    expected = len(samples) / support
    sigma = np.sqrt(expected * (1 - 1 / support))
    assert np.all(np.abs(counts - expected) < 5 * sigma + 1), counts


BALANCE = [
    ("copy", {"vocab_size": 6}, 8, 2),
    ("selective_copy", {"vocab_size": 6, "num_tokens": 4}, 12, 2),
    ("induction_heads", {"vocab_size": 6}, 12, 2),
    ("passkey", {"num_digits": 3, "filler_period": 2}, 12, 3),
]


@pytest.mark.parametrize("name,kwargs,length,first", BALANCE, ids=[b[0] for b in BALANCE])
def test_scored_targets_uniform_and_chance(name, kwargs, length, first):
    task, _, targets, mask = _sample(name, kwargs, 7, 512, length)
    scored = targets[mask]
    support = round(1 / task.chance)
    _assert_uniform(scored - first, support)
    best_blind = np.bincount(scored).max() / len(scored)
    assert abs(best_blind - task.chance) < 0.05


def test_mqar_values_uniform_and_chance():
    kwargs = {"vocab_size": 12, "num_kv_pairs": 2}
    task, inputs, targets, mask = _sample("mqar", kwargs, 7, 1024, 16)
    scored = targets[mask]
    _assert_uniform(scored - 6, 6)
    assert task.chance == pytest.approx(1 / 6)
    _assert_uniform(inputs[:, 0:4:2] - 1, 5)  # keys over 1..5


def _first_pair_slots(power_a, n=3000, length=24, num_kv_pairs=2):
    kwargs = {"vocab_size": 16, "num_kv_pairs": num_kv_pairs, "power_a": power_a}
    _, inputs, _, mask = _sample("mqar", kwargs, 11, n, length)
    context = 2 * num_kv_pairs
    slots = []
    for x, m in zip(inputs, mask):
        query = [t for t in np.flatnonzero(m) if x[t] == x[0]]
        assert len(query) == 1
        slots.append((query[0] - context) // 2)
    return np.array(slots), (length - context) // 2


@pytest.mark.parametrize("power_a", [0.01, 0.5])
def test_mqar_first_query_slot_follows_power_law(power_a):
    """The first pair's slot is the first draw: P(g) = (g+1)^(a-1) / sum over the row's slots."""
    slots, num_slots = _first_pair_slots(power_a)
    p = np.arange(1, num_slots + 1, dtype=float) ** (power_a - 1)
    p /= p.sum()
    freq = np.bincount(slots, minlength=num_slots) / len(slots)
    sigma = np.sqrt(p * (1 - p) / len(slots))
    assert np.all(np.abs(freq - p) < 5 * sigma + 1e-3), (freq, p)


def test_mqar_uniform_slots_when_power_a_is_one():
    slots, num_slots = _first_pair_slots(1.0)
    _assert_uniform(slots, num_slots)


def test_selective_copy_positions_uniform():
    _, inputs, _, _ = _sample("selective_copy", {"vocab_size": 5, "num_tokens": 3}, 5, 1024, 10)
    inputs = inputs[:, :10]
    _assert_uniform(np.nonzero(inputs)[1], 10)


def test_induction_first_trigger_uniform():
    _, inputs, _, _ = _sample("induction_heads", {"vocab_size": 8}, 5, 2048, 10)
    _assert_uniform(np.argmax(inputs == 1, axis=1), 8)  # positions 0..L-3


def test_passkey_start_uniform():
    _, inputs, _, _ = _sample("passkey", {"num_digits": 3}, 5, 2048, 10)
    _assert_uniform(np.argmax(inputs == 2, axis=1), 7)  # positions 0..L-D-1


def test_adding_chance_and_marker_halves():
    length = 11
    task, inputs, targets, mask = _sample("adding", {}, 5, 4096, length)
    sums = targets[mask]
    assert task.chance == pytest.approx(1 / 6, abs=1e-12)
    assert np.mean((sums - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.015)
    assert np.mean(sums) == pytest.approx(1.0, abs=0.03)
    rows, cols = np.nonzero(inputs[:, :, 1])
    assert np.all(np.bincount(rows) == 2)
    first, second = cols[0::2], cols[1::2]
    _assert_uniform(first, length // 2)
    _assert_uniform(second - length // 2, length - length // 2)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,kwargs,length",
    [
        ("copy", {}, 0),
        ("selective_copy", {"num_tokens": 4}, 3),
        ("mqar", {"num_kv_pairs": 4}, 15),
        ("induction_heads", {}, 2),
        ("adding", {}, 1),
        ("passkey", {"num_digits": 5}, 5),
    ],
)
def test_too_short_length_raises(name, kwargs, length):
    task = tasks.get(name, **kwargs)
    assert task.min_length == length + 1
    with pytest.raises(ValueError, match=f"needs length >= {length + 1}"):
        task.sample(jax.random.key(0), 2, length)
    task.check_length(length + 1)  # the limit itself is fine (and generated in the tests above)


@pytest.mark.parametrize(
    "name,kwargs,message",
    [
        ("copy", {"vocab_size": 2}, "copy: vocab_size must be an int >= 3"),
        ("selective_copy", {"vocab_size": 1}, "selective_copy: vocab_size must be"),
        ("selective_copy", {"num_tokens": 0}, "num_tokens must be an int >= 1"),
        ("mqar", {"num_kv_pairs": 40, "vocab_size": 64}, r"num_kv_pairs=40 needs vocab_size >= 82"),
        ("mqar", {"num_kv_pairs": 4, "vocab_size": 9}, r"needs vocab_size >= 10 .*got 9"),
        ("mqar", {"num_kv_pairs": 0}, "num_kv_pairs must be an int >= 1"),
        ("mqar", {"power_a": 0.0}, "power_a must be > 0"),
        ("induction_heads", {"vocab_size": 2}, "induction_heads: vocab_size must be"),
        ("passkey", {"num_digits": 0}, "num_digits must be an int >= 1"),
        ("passkey", {"filler_period": 0}, "filler_period must be an int >= 1"),
    ],
)
def test_impossible_settings_raise(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tasks.get(name, **kwargs)


def test_mqar_smallest_vocab_is_accepted():
    task = tasks.get("mqar", num_kv_pairs=4, vocab_size=10)
    _check_against_reference("mqar", {"num_kv_pairs": 4, "vocab_size": 10}, 1, [16, 17], 17)
    assert task.chance == pytest.approx(1 / 5)
