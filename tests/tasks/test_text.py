"""text_lm: byte windows of real text, split by document, test text never trained on."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqbench.tasks as tasks
from seqbench.tasks import text

BATCH, BUCKET = 16, 40


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """60 documents of distinct random letters, so any 12 bytes identify their document."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    for i in range(60):
        folder = root / f"part{i % 3}"
        folder.mkdir(exist_ok=True)
        body = bytes(rng.integers(ord("a"), ord("z") + 1, rng.integers(200, 400)).tolist())
        (folder / f"doc{i}.txt").write_bytes(body)
    (root / ".hidden").write_bytes(b"never read")
    return str(root)


def windows(generate, seed, lengths):
    lengths = jnp.asarray(lengths, jnp.int32)
    batch = jax.jit(generate, static_argnums=2)(jax.random.key(seed), lengths, BUCKET)
    return np.asarray(lengths), *(np.asarray(x) for x in batch)


def test_windows_are_consecutive_bytes_of_their_own_split(corpus):
    """Reference: each row's L inputs and the byte after them are L + 1 consecutive bytes of
    its split; the target at t is input t + 1; steps after L are unscored zeros. A window of
    the test split is never found in the training text, nor the reverse."""
    task = tasks.get("text_lm", corpus=corpus)
    split = text.text_split(corpus)
    train, test = split.train.tobytes(), split.test.tobytes()
    rng = np.random.default_rng(1)
    for generate, own, other in ((task.generate, train, test), (task.held_out, test, train)):
        for seed in range(3):
            lengths, inputs, targets, mask = windows(generate, seed,
                                                     rng.integers(12, BUCKET + 1, BATCH))
            for row, length in enumerate(lengths):
                read = bytes(inputs[row, :length].tolist()) + bytes([targets[row, length - 1]])
                assert read in own and read not in other
                np.testing.assert_array_equal(targets[row, :length - 1], inputs[row, 1:length])
                np.testing.assert_array_equal(mask[row], np.arange(BUCKET) < length)
                assert not inputs[row, length:].any() and not targets[row, length:].any()


def test_the_split_is_by_document_path_and_stable(corpus, tmp_path):
    documents = text.corpus_documents(corpus)
    assert len(documents) == 60 and not any(".hidden" in rel for rel, _ in documents)
    held_out = {rel for rel, _ in documents if text.is_test_document(rel)}
    split = text.text_split(corpus)
    assert split.test_documents == len(held_out) and split.train_documents == 60 - len(held_out)
    # the split bytes are the documents of each side, in path order, joined by NUL
    by_side = {True: [], False: []}
    for rel, path in documents:
        by_side[rel in held_out].append(open(path, "rb").read())
    assert split.test.tobytes() == b"\0".join(by_side[True])
    assert split.train.tobytes() == b"\0".join(by_side[False])
    # a document's side depends on its path alone: more documents move none of the others
    assert {f"x/{i}" for i in range(2000) if text.is_test_document(f"x/{i}")} == {
        f"x/{i}" for i in range(3000) if text.is_test_document(f"x/{i}")} & {
        f"x/{i}" for i in range(2000)}
    share = np.mean([text.is_test_document(f"doc/{i}.py") for i in range(20_000)])
    assert abs(share - text.TEXT_TEST_FRACTION) < 0.01


def test_stdlib_corpus_is_the_interpreter_s_source_held_out_by_document():
    task = tasks.get("text_lm")
    info = task.difficulty(256)
    assert info["train_bytes"] > 10_000_000 and info["test_bytes"] > 1_000_000
    share = info["test_documents"] / (info["test_documents"] + info["train_documents"])
    assert 0.07 < share < 0.13
    assert task.held_out is not None and task.max_length == info["test_bytes"] - 1
    assert 0.1 < task.chance < 0.5  # the most common byte (a space) in the test split
    a, hash_a = task.test_set(64, 8, seed=3)
    b, hash_b = task.test_set(64, 8, seed=3)
    assert hash_a == hash_b and np.array_equal(a.inputs, b.inputs)


def test_bad_corpora_and_lengths_are_one_line_errors(corpus, tmp_path):
    with pytest.raises(ValueError, match="corpus must be 'stdlib'.*an existing file or directory"):
        tasks.get("text_lm", corpus=str(tmp_path / "missing"))
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a.txt").write_bytes(b"only one document")
    with pytest.raises(ValueError, match="needs documents in both splits"):
        tasks.get("text_lm", corpus=str(tmp_path / "one"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no document"):
        tasks.get("text_lm", corpus=str(tmp_path / "empty"))
    task = tasks.get("text_lm", corpus=corpus)
    with pytest.raises(ValueError, match=f"can produce lengths up to {task.max_length}"):
        task.check_length(task.max_length + 1)


def test_a_run_asking_for_more_text_than_the_corpus_holds_fails_before_compiling(corpus):
    from seqbench import engine, evaluate

    task = tasks.get("text_lm", corpus=corpus)
    too_long = task.max_length + 1
    for fields in ({"eval_lengths": (16, too_long)}, {"train_length": too_long}):
        config = engine.Config(**{"cell": "lru", "task": "text_lm", "train_length": 16,
                                  "task_hparams": {"corpus": corpus}, **fields})
        with pytest.raises(ValueError, match=f"up to {task.max_length} .*length={too_long}"):
            engine.build(config)
    assert max(evaluate.default_lengths(task, 64)) <= task.max_length < 64 * 64
