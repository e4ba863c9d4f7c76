"""Real text: next-byte language modelling over a corpus present on every machine.

The default corpus is the source of the Python standard library of the running interpreter
(every `.py` file under `sysconfig.get_paths()["stdlib"]`, `site-packages` excluded): real,
varied text, about 30 MB, licence-clean (PSF), on every machine that runs seqbench and never
downloaded. It differs between Python versions; every test set's content hash is recorded, so
the leaderboard never merges runs scored on different text. `corpus=PATH` reads a file, or
every file under a directory, of the user's own text instead.

Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sysconfig
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from seqbench.tasks.base import Batch, Task, positions

TEXT_VOCAB = 256  # bytes
TEXT_TEST_FRACTION = 0.1  # of the documents, chosen by a hash of their path
DOCUMENT_SEPARATOR = 0  # the byte between two documents (NUL: absent from text)


class TextSplit(NamedTuple):
    """A corpus split by document: each split's documents joined by `DOCUMENT_SEPARATOR`."""

    train: np.ndarray  # shape=(train bytes,) uint8
    test: np.ndarray  # shape=(test bytes,) uint8
    train_documents: int
    test_documents: int
    test_sha256: str  # of the test split's bytes (16 hex)


def corpus_documents(corpus: str) -> list[tuple[str, str]]:
    """(path relative to the corpus root, absolute path) of every document, sorted by the
    relative path. Raises ValueError naming what is valid when `corpus` is neither "stdlib" nor
    an existing file or directory, or holds no document."""
    if corpus == "stdlib":
        root, keep = sysconfig.get_paths()["stdlib"], lambda name: name.endswith(".py")
    elif os.path.isfile(corpus):
        return [(os.path.basename(corpus), os.path.abspath(corpus))]
    elif os.path.isdir(corpus):
        root, keep = corpus, lambda name: not name.startswith(".")
    else:
        raise ValueError(f"text_lm: corpus must be 'stdlib' (the Python standard library's "
                         f"source) or an existing file or directory; got {corpus!r}")
    documents = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders
                               if d not in ("site-packages", "__pycache__") and d[0] != ".")
        for name in names:
            path = os.path.join(folder, name)
            if keep(name) and os.path.isfile(path):
                documents.append((os.path.relpath(path, root), path))
    if not documents:
        raise ValueError(f"text_lm: corpus {corpus!r} holds no document")
    return sorted(documents)


def is_test_document(relative_path: str) -> bool:
    """Whether a document is held out: the first 8 bytes of sha256(path) as a fraction of 2^64
    fall below `TEXT_TEST_FRACTION`. It depends on the path alone, so adding, removing or
    editing other documents never moves one between the splits."""
    digest = hashlib.sha256(relative_path.encode()).digest()
    return int.from_bytes(digest[:8], "big") < TEXT_TEST_FRACTION * 2**64


@functools.lru_cache(maxsize=4)
def text_split(corpus: str) -> TextSplit:
    """The corpus read and split by `is_test_document` (cached per corpus)."""
    parts: dict[bool, list[bytes]] = {False: [], True: []}
    for relative, path in corpus_documents(corpus):
        with open(path, "rb") as f:
            parts[is_test_document(relative)].append(f.read())
    if not parts[False] or not parts[True]:
        raise ValueError(f"text_lm: corpus {corpus!r} needs documents in both splits (about "
                         f"{TEXT_TEST_FRACTION:.0%} are held out, chosen by a hash of their "
                         f"path); it has {len(parts[False])} training and {len(parts[True])} "
                         f"test documents: add documents")
    joined = {test: np.frombuffer(bytes([DOCUMENT_SEPARATOR]).join(docs), np.uint8)
              for test, docs in parts.items()}
    return TextSplit(joined[False], joined[True], len(parts[False]), len(parts[True]),
                     hashlib.sha256(joined[True].tobytes()).hexdigest()[:16])


def _windows(text_np: np.ndarray):
    """A GenerateFn over one split: row b reads the window text[o_b : o_b + L_b + 1], inputs
    its first L_b bytes and targets the next byte at each of them; o_b is uniform over the
    offsets where a `max_length` window fits. Steps after L_b are padding (0, unscored)."""
    text = jnp.asarray(text_np)

    def generate(key: jax.Array, lengths: jax.Array, max_length: int) -> Batch:
        batch = lengths.shape[0]
        offsets = jax.random.randint(key, (batch,), 0, text.shape[0] - max_length)
        window = text[offsets[:, None] + jnp.arange(max_length + 1)].astype(jnp.int32)
        mask = positions(batch, max_length) < lengths[:, None]
        inputs = jnp.where(mask, window[:, :-1], 0)
        targets = jnp.where(mask, window[:, 1:], 0)
        return Batch(inputs, targets, mask)

    return generate


def make_text_lm(*, corpus: str = "stdlib") -> Task:
    """Next-byte prediction on real text (byte-level language modelling), every position scored.

    A sequence of input length L is a window of L + 1 consecutive bytes of the corpus at a
    uniformly random offset: inputs its first L bytes, targets the L bytes after them, so the
    target at step t is byte t + 1 (loss by position is the language model's loss at context
    length t + 1). Training windows (`generate`) come from the training documents and test
    sets (`held_out`) from the held-out ones: about 10% of the documents, chosen by a hash of
    their path (`is_test_document`), never by position, so no test text is trained on. Each
    split's documents are joined by a NUL byte; a window may span two documents, as packed
    language-model batches do. `max_length`: the longest window both splits hold.

    Example (corpus text "def f(): ..."):
        inputs   d e f ␣ f ( ) :
        targets  e f ␣ f ( ) : ␣
        mask     T T T T T T T T
    Chance: the frequency of the test split's most common byte (the best context-blind
    guess). Sampling is a gather from the split held as a device constant, inside jit.
    """
    split = text_split(corpus)
    chance = float(np.bincount(split.test, minlength=TEXT_VOCAB).max() / split.test.size)

    def difficulty(length: int) -> dict[str, Any]:
        return {"context_bytes": length, "train_bytes": int(split.train.size),
                "test_bytes": int(split.test.size), "train_documents": split.train_documents,
                "test_documents": split.test_documents, "test_split_sha256": split.test_sha256}

    return Task(
        name="text_lm",
        group="real",
        generate=_windows(split.train),
        seq_len=lambda length: length,
        input_vocab=TEXT_VOCAB,
        output_vocab=TEXT_VOCAB,
        min_length=1,
        chance=chance,
        difficulty=difficulty,
        hparams={"corpus": corpus},
        held_out=_windows(split.test),
        max_length=int(min(split.train.size, split.test.size)) - 1,
    )


TASKS = {"text_lm": make_text_lm}
