"""The task contract, checked on every registered task (a user-registered task gets the same)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqbench
from seqbench import tasks
from seqbench.tasks import Batch, Task
from seqbench.tasks import base as task_base
from seqbench.tasks.base import content_hash

GROUPS = {"memory", "state_tracking", "regular", "context_free", "context_sensitive", "real"}
BATCH = 6


def bucket_of(task: Task) -> int:
    return max(task.min_length + 5, 12)


_SAMPLERS = {}


def sampler(name):
    """One jitted `sample_bucket` per task, with a trace counter (compiled once per bucket)."""
    if name not in _SAMPLERS:
        task = tasks.get(name)
        traces = []

        def sample(key, lengths):
            traces.append(1)
            return task.sample_bucket(key, lengths, bucket_of(task))

        _SAMPLERS[name] = (task, jax.jit(sample), traces)
    return _SAMPLERS[name]


def lengths_for(task, seed):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.integers(task.min_length, bucket_of(task) + 1, BATCH), jnp.int32)


ISSUE_TASKS = {  # every task the task-suite issue (and issue 18: text_lm) asks for
    "copy", "selective_copy", "mqar", "induction_heads", "adding", "n_parity", "n_dms",
    "flip_flop", "noisy_recall", "fuzzy_recall", "set_disjointness", "passkey",
    "parity_check", "even_pairs", "cycle_navigation", "modular_arithmetic",
    "reverse_string", "stack_manipulation", "modular_arithmetic_brackets", "solve_equation",
    "duplicate_string", "missing_duplicate_string", "odds_first", "binary_addition",
    "binary_multiplication", "compute_sqrt", "bucket_sort", "s3", "s5", "a5", "cyclic", "digits",
    "text_lm",
}


def test_registry_lists_every_task_and_group():
    names = tasks.names()
    assert set(names) == ISSUE_TASKS and names == sorted(names)
    assert {tasks.get(n).group for n in names} == GROUPS


@pytest.mark.parametrize("name", tasks.names())
def test_contract(name):
    task, sample, traces = sampler(name)
    assert isinstance(task, Task) and task.name == name and task.group in GROUPS
    assert task.min_length >= 1 and 0.0 <= task.chance <= 1.0 or task.output_vocab == 0
    # hparams are exactly the factory's kwargs: the task can be rebuilt from a result file.
    rebuilt = tasks.get(name, **task.hparams)
    assert rebuilt.hparams == task.hparams and set(task.hparams) <= set(tasks.hparams(name))
    assert rebuilt.seq_len(bucket_of(task)) == task.seq_len(bucket_of(task))

    key = jax.random.key(1)
    lengths = lengths_for(task, 0)
    batch = sample(key, lengths)
    again = sample(key, lengths)
    other = sample(jax.random.key(2), lengths_for(task, 1))
    assert len(traces) == 1, "recompiled across keys or lengths within one bucket"
    for x, y in zip(batch, again):
        np.testing.assert_array_equal(x, y)  # same key, same batch
    assert any(not np.array_equal(x, y) for x, y in zip(batch, other))

    steps = task.seq_len(bucket_of(task))
    inputs, targets, mask = (np.asarray(x) for x in batch)
    if task.real_inputs:
        assert inputs.shape == (BATCH, steps, task.input_vocab) and inputs.dtype == np.float32
    else:
        assert inputs.shape == (BATCH, steps) and inputs.dtype == np.int32
        assert inputs.min() >= 0 and inputs.max() < task.input_vocab
    head_shape = () if task.num_heads == 1 else (task.num_heads,)
    assert targets.shape == mask.shape == (BATCH, steps) + head_shape
    assert mask.dtype == bool
    assert mask.reshape(BATCH, -1).any(axis=1).all(), "every row must score something"
    if task.output_vocab:
        assert targets.dtype == np.int32
        assert targets[mask].min() >= 0 and targets[mask].max() < task.output_vocab
    else:
        assert targets.dtype == np.float32 and np.isfinite(targets[mask]).all()
    # Padding is at the end only: the last scored step of each row comes before its padding.
    last_scored = np.where(mask.reshape(BATCH, steps, -1).any(-1), np.arange(steps), -1).max(1)
    row_ends = np.array([task.seq_len(int(n)) for n in lengths])
    assert (last_scored < row_ends).all()
    assert not mask.reshape(BATCH, steps, -1).any(-1)[np.arange(steps)[None] >= row_ends[:, None]].any()


@pytest.mark.parametrize("name", tasks.names())
def test_too_short_length_is_a_clear_error(name):
    task = tasks.get(name)
    if task.min_length <= 1:
        with pytest.raises(ValueError, match="needs length >= 1"):
            task.sample(jax.random.key(0), 2, 0)
    else:
        with pytest.raises(ValueError, match=f"needs length >= {task.min_length}"):
            task.sample(jax.random.key(0), 2, task.min_length - 1)


def test_test_set_is_fixed_and_hashed():
    task = tasks.get("parity_check")
    batch, digest = task.test_set(length=9, size=16, seed=3)
    again, digest_again = task.test_set(length=9, size=16, seed=3)
    _, other_digest = task.test_set(length=10, size=16, seed=3)
    assert digest == digest_again and digest != other_digest and len(digest) == 16
    assert isinstance(batch, Batch)
    for x, y in zip(batch, again):
        np.testing.assert_array_equal(x, y)
    assert content_hash(batch) == digest  # the hash is over the arrays returned (the cut ones)


@pytest.mark.parametrize("name, lengths", [
    ("parity_check", (9, 16)),  # tokens; lengths 9..16 share the bucket 16
    ("n_parity", (11,)),  # multi-head targets (B, T, H)
    ("adding", (21,)),  # real-valued inputs (B, T, 2) and targets
])
def test_test_set_is_the_unpadded_sequence_cut_from_one_bucket(name, lengths):
    """`test_set` generates in a power-of-two bucket and cuts to seq_len(length) steps: the cut
    has the shapes and dtypes of the task's own unpadded batch at that length and scores exactly
    the same positions (these tasks' masks depend on the length only, so they must be equal),
    and every length of a bucket shares one compilation. (That the cut drops padding only, for
    every task, is `test_contract`'s padding check: no scored step past a row's seq_len.)"""
    task = tasks.get(name)
    compiled = None  # the generator is shared per (name, hparams): count what this test adds
    for length in lengths:
        batch, _ = task.test_set(length, size=BATCH, seed=5)
        compiled = compiled or task_base._jitted(task)._cache_size()
        unpadded = jax.device_get(jax.jit(task.sample, static_argnums=(1, 2))(
            jax.random.key(5), BATCH, length))
        assert batch.mask.shape[1] == task.seq_len(length) > 0
        for got, want in zip(batch, unpadded):
            assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(batch.mask, unpadded.mask)
    assert task_base._jitted(task)._cache_size() == compiled  # the lengths share a bucket


def test_unknown_task_and_hparam_list_valid_choices():
    with pytest.raises(ValueError, match="unknown task 'mqr'; valid tasks: .*mqar"):
        tasks.get("mqr")
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['pairs'\].*num_kv_pairs="):
        tasks.get("mqar", pairs=4)


def test_user_registered_task_works_through_the_registry():
    def make_last_token(*, vocab_size: int = 8) -> Task:
        def generate(key, lengths, max_length):
            tokens = jax.random.randint(key, (lengths.shape[0], max_length), 0, vocab_size)
            last = jnp.arange(max_length)[None, :] == lengths[:, None] - 1
            return Batch(tokens, tokens, last)

        return Task(name="last_token", group="memory", generate=generate, seq_len=lambda n: n,
                    input_vocab=vocab_size, output_vocab=vocab_size, min_length=1,
                    chance=1 / vocab_size, difficulty=lambda n: {},
                    hparams={"vocab_size": vocab_size})

    registry = seqbench.registry.Registry("task")
    registry.register("last_token", make_last_token)
    task = registry.get("last_token", vocab_size=5)
    batch = task.sample_bucket(jax.random.key(0), jnp.array([3, 5]), 6)
    assert np.asarray(batch.mask).sum(1).tolist() == [1, 1] and np.asarray(batch.mask)[0, 2]
    with pytest.raises(ValueError, match="already registered"):
        registry.register("last_token", make_last_token)


def test_test_sets_of_one_task_configuration_share_one_compilation():
    """Each `tasks.get` builds a new generate closure; the jitted test-set generator is keyed
    on (name, hparams), so rebuilding the task (a sweep does, every run) compiles nothing new,
    and the cache stays bounded."""
    from seqbench.tasks import base
    first, again = tasks.get("even_pairs"), tasks.get("even_pairs")
    assert first.generate is not again.generate
    assert base._jitted(first) is base._jitted(again)
    assert base._jitted(tasks.get("cycle_navigation")) is not base._jitted(first)
    for length in range(1, 3 * base.MAX_JITTED):
        base._jitted(tasks.get("modular_arithmetic", modulus=length + 1))
    assert len(base._JITTED) <= base.MAX_JITTED
