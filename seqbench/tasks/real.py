"""Real data read as a sequence: scikit-learn's bundled 8x8 digits, pixel by pixel.

scikit-learn is an optional dependency (`pip install 'seqbench[real]'`): it is imported only
when a task of this module is built, and the data it ships is read from disk, never downloaded.
Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from seqbench.tasks.base import Batch, Task, positions

DIGITS_PIXELS = 64  # 8x8 images, read row by row
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0  # legacy RandomState: its permutation stream is frozen across NumPy versions


def _require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "the 'real' tasks read scikit-learn's bundled datasets; install it with "
            "pip install 'seqbench[real]'"
        ) from error


@functools.lru_cache(maxsize=None)
def _digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (rows, 64) float32 in [0, 1], labels (rows,) int32) of one deterministic split."""
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.RandomState(DIGITS_SPLIT_SEED).permutation(len(data.target))
    num_test = int(round(DIGITS_TEST_FRACTION * len(order)))
    rows = order[:num_test] if split == "test" else order[num_test:]
    images = (data.data[rows] / 16.0).astype(np.float32)
    return images, data.target[rows].astype(np.int32)


def _digits_generate(images_np: np.ndarray, labels_np: np.ndarray):
    """A GenerateFn drawing, with replacement, the images of one split (see `make_digits`)."""
    images, labels = jnp.asarray(images_np), jnp.asarray(labels_np)

    def generate(key: jax.Array, lengths: jax.Array, max_length: int) -> Batch:
        batch = lengths.shape[0]
        pick = jax.random.randint(key, (batch,), 0, images.shape[0])
        pos = positions(batch, max_length)
        pixel = pos - (lengths[:, None] - DIGITS_PIXELS)  # index into the image, per step
        in_image = (pixel >= 0) & (pixel < DIGITS_PIXELS)
        values = jnp.take_along_axis(images[pick], jnp.clip(pixel, 0, DIGITS_PIXELS - 1), axis=1)
        inputs = jnp.where(in_image, values, 0.0)[..., None]
        mask = pos == lengths[:, None] - 1
        targets = jnp.where(mask, labels[pick][:, None], 0)
        return Batch(inputs, targets, mask)

    return generate


def make_digits() -> Task:
    """Sequential digits: classify an 8x8 handwritten digit read one pixel per step.

    Inputs are float32 (B, T, 1): the 64 pixels of a scikit-learn digit (row by row, scaled
    from 0..16 to [0, 1]); the target is its class 0..9, scored only at the last real step.
    The natural length is 64 (`min_length`); a longer length L puts L - 64 blank (zero) steps
    BEFORE the image, so the image still ends on the row's last step and the answer is asked
    right after the last pixel: length generalization probes whether the model's state stays
    usable after a long blank lead-in. Examples are drawn uniformly, with replacement, inside
    jit from a split held as a device constant: training batches (`generate`) from 80% of the
    1797 images, test sets (`held_out`) from the other 20%, split once by a fixed permutation,
    so evaluation images are never trained on.

    Example, L = 66 (two blank steps, pixels p_0..p_63 of a "3"):
        inputs   0 0 p_0 p_1 ... p_63
        targets  0 0 0   0   ... 3
        mask     F F F   F   ... T
    Chance: the frequency of the most common class among the held-out images (about 0.10; the
    best input-blind guess). Difficulty does not grow with the image; only the blank lead-in
    grows. Data: the UCI optical recognition of handwritten digits test set, as shipped with
    scikit-learn (`sklearn.datasets.load_digits`); sequential reading as in pixel-by-pixel
    MNIST (Le, Jaitly, Hinton 2015).
    """
    _require_sklearn()
    test_labels = _digits_split("test")[1]
    chance = float(np.bincount(test_labels, minlength=10).max() / len(test_labels))

    def difficulty(length: int) -> dict[str, Any]:
        return {"pixels": DIGITS_PIXELS, "blank_steps_before_image": length - DIGITS_PIXELS}

    return Task(
        name="digits",
        group="real",
        generate=_digits_generate(*_digits_split("train")),
        seq_len=lambda length: length,
        input_vocab=1,
        output_vocab=10,
        min_length=DIGITS_PIXELS,
        chance=chance,
        difficulty=difficulty,
        hparams={},
        real_inputs=True,
        held_out=_digits_generate(*_digits_split("test")),
    )


TASKS = {"digits": make_digits}
