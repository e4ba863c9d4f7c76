"""Sequential digits: pixels read one per step, label at the row's last step."""

from __future__ import annotations

import functools
import importlib.util
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import seqbench.tasks as tasks

needs_sklearn = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None, reason="scikit-learn (seqbench[real]) missing"
)
BATCH = 8
BUCKET = 72


@functools.lru_cache(maxsize=None)
def _raw_digits():
    """{64 pixels scaled to [0, 1], as bytes -> label} for all 1797 images (no duplicates)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = (data.data / 16.0).astype(np.float32)
    table = {row.tobytes(): int(label) for row, label in zip(pixels, data.target)}
    assert len(table) == len(pixels)
    return table


@functools.lru_cache(maxsize=None)
def _compiled(split: str):
    """The task and its jitted training ("train") or held-out ("test") generator."""
    task = tasks.get("digits")
    draw = task.generate if split == "train" else task.held_out
    traces = []

    def generate(key, lengths, max_length):
        traces.append(max_length)
        return draw(key, lengths, max_length)

    return task, jax.jit(generate, static_argnums=2), traces


def _draw(split, seed, lengths):
    task, generate, traces = _compiled(split)
    lengths = np.clip(np.asarray(lengths), task.min_length, BUCKET).astype(np.int32)
    batch = generate(jax.random.key(seed), jnp.asarray(lengths), BUCKET)
    assert traces == [BUCKET], "new keys or lengths must not recompile"
    return task, lengths, *(np.asarray(a) for a in batch)


@needs_sklearn
@settings(max_examples=15, deadline=None)
@given(
    split=st.sampled_from(["train", "test"]),
    seed=st.integers(0, 2**16),
    lengths=st.lists(st.integers(64, BUCKET), min_size=BATCH, max_size=BATCH),
)
def test_digits_match_reference(split, seed, lengths):
    task, lengths, inputs, targets, mask = _draw(split, seed, lengths)
    assert inputs.shape == (BATCH, BUCKET, 1) and inputs.dtype == np.float32
    assert targets.dtype == np.int32 and mask.dtype == bool
    labels = _raw_digits()
    for row, length in enumerate(lengths):
        steps = inputs[row, :, 0]
        blank = length - 64
        assert not steps[:blank].any(), "blank steps lead the image"
        assert not steps[length:].any() and not targets[row, length:].any()
        image = steps[blank:length]
        assert image.min() >= 0.0 and image.max() <= 1.0
        want_mask = np.arange(BUCKET) == length - 1
        np.testing.assert_array_equal(mask[row], want_mask)
        assert targets[row, length - 1] == labels[image.tobytes()]
        assert not targets[row][~want_mask].any()


def _images_seen(split: str, draws: int = 6) -> set[bytes]:
    seen = set()
    for seed in range(draws):
        _, _, inputs, _, _ = _draw(split, seed, [64] * BATCH)
        seen.update(inputs[row, :64, 0].tobytes() for row in range(BATCH))
    return seen


@needs_sklearn
def test_splits_are_disjoint_and_sized():
    task = tasks.get("digits")
    assert not _images_seen("train") & _images_seen("test")
    # 20% of the 1797 images are held out; chance is their majority-class rate
    assert 0.09 < task.chance < 0.13
    assert task.real_inputs and task.group == "real" and task.output_vocab == 10
    assert task.difficulty(100) == {"pixels": 64, "blank_steps_before_image": 36}


@needs_sklearn
def test_test_split_covers_its_images():
    """Sampling draws from the whole split: many distinct images, every class present."""
    seen = _images_seen("test", draws=40)
    assert len(seen) > 170  # 320 draws from 359 images: about 212 distinct expected
    labels = _raw_digits()
    assert len({labels[image] for image in seen}) == 10


@needs_sklearn
def test_digits_errors():
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['split'\]"):
        tasks.get("digits", split="test")  # the split is not a choice: test sets are held out
    with pytest.raises(ValueError, match="needs length >= 64"):
        tasks.get("digits").sample(jax.random.key(0), 2, 63)


def test_digits_without_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'seqbench\[real\]'"):
        tasks.get("digits")


@needs_sklearn
def test_the_test_sets_runs_are_scored_on_hold_only_held_out_images():
    """`Task.test_set` is what every run is scored on: it must draw from the 20% of images that
    training never samples, or a run's "test accuracy" is its training accuracy."""
    task = tasks.get("digits")
    batch, _ = task.test_set(64, 256, seed=1234)
    scored = {batch.inputs[row, :64, 0].tobytes() for row in range(256)}
    trained = _images_seen("train", draws=40)
    assert not scored & trained
    assert len(scored) > 150  # 256 draws from the 359 held-out images
