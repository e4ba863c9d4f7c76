"""Streaming evaluation against slow references: the whole sequence at once, and a step-by-step
NumPy loop over `model.step` that recomputes every metric from its definition.

Tolerances (float32 model, float64 references): losses and state norms rtol 1e-4 (float32
rounding accumulated over <= 64 steps); accuracies within one hit per count (an argmax may flip
where two logits tie to float32 precision), in practice exact.
"""

import functools
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqbench import cells, evaluate, logs, models, tasks

SEEDS, SIZE = 2, 3
TASK = tasks.get("cyclic")  # every step scored; one test-set compilation serves lengths 33..64
ADDING = tasks.get("adding")  # regression, real-valued inputs
LENGTH = 45  # T = 45 steps > 32 bins


def model_and_params(cell_name, task=TASK, **hparams):
    """A depth-1 width-8 model for `task` and SEEDS random parameter sets of its shapes (on a
    seed axis), N(0, 0.5²): cheaper than compiling each cell's init, and the evaluation does not
    care how parameters were drawn."""
    cell = cells.get(cell_name, d_hidden=8, **hparams)
    model = models.build(cell, input_dim=task.input_vocab,
                         output_dim=max(task.output_vocab, 1) * task.num_heads, depth=1,
                         real_inputs=task.real_inputs)
    rng = np.random.default_rng(len(cell_name) + task.input_vocab)
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    draw = lambda leaf: jnp.asarray(0.5 * rng.standard_normal((SEEDS, *leaf.shape)), leaf.dtype)
    return model, jax.tree_util.tree_map(draw, shapes)


@functools.cache
def counted(cell_name, task_name="cyclic"):
    """(model, seed params, traced piece sizes, the model uncounted): one model per cell and
    task shared by the tests, so the programs one test compiles serve the next; its `apply`
    records the piece size of every trace."""
    task = {TASK.name: TASK, ADDING.name: ADDING}[task_name]
    model, seed_params = model_and_params(cell_name, task)
    traces = []

    def apply(params, state, inputs):
        traces.append(inputs.shape[1])
        return model.apply(params, state, inputs)

    return model._replace(apply=apply), seed_params, traces, model


def seed_slice(tree, seed):
    return jax.tree_util.tree_map(lambda x: x[seed], tree)


def numpy_norm(state):
    """Mean over rows of the L2 norm of every float leaf, in float64."""
    squares = 0.0
    for leaf in jax.tree_util.tree_leaves(state):
        leaf = np.asarray(leaf)
        if np.issubdtype(leaf.dtype, np.inexact):
            modulus = np.abs(leaf.astype(np.complex128))
            squares = squares + (modulus**2).reshape(len(leaf), -1).sum(1)
    return float(np.mean(np.sqrt(squares)))


def step_by_step(model, seed_params, length):
    """Every metric of one length from a Python loop over `model.step`, NumPy float64."""
    batch, _ = TASK.test_set(length, SIZE, seed=evaluate.EVAL_SEED)
    inputs, targets, mask = (np.asarray(x) for x in batch)
    steps = mask.shape[1]
    step = jax.jit(model.step)
    out = {"accuracy": [], "loss": [], "bins": [], "loss_bins": [], "norms": []}
    edges = [0, 1]  # log-spaced: 0 | 1 | 2-3 | 4-7 | ... (written out, not evaluate's helper)
    while edges[-1] < steps:
        edges.append(min(2 * edges[-1], steps))
    bins = min(32, steps)
    bin_of = np.array([t * bins // steps for t in range(steps)])
    for seed in range(SEEDS):
        params = seed_slice(seed_params, seed)
        state = model.initial_state(params, (SIZE,))
        logits, norms = [], []
        for t in range(steps):
            state, y = step(params, state, jnp.asarray(inputs[:, t]))
            logits.append(np.asarray(y, np.float64))
            norms.append(numpy_norm(state))
        logits = np.stack(logits, axis=1)  # (SIZE, steps, vocab)
        shifted = logits - logits.max(-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        nll = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
        hits = (logits.argmax(-1) == targets) & mask
        out["accuracy"].append(hits.sum() / mask.sum())
        out["loss"].append(nll[mask].mean())
        out["bins"].append([hits[:, bin_of == b].sum() / mask[:, bin_of == b].sum()
                            for b in range(bins)])
        out["loss_bins"].append([nll[:, lo:hi][mask[:, lo:hi]].mean()
                                 for lo, hi in zip(edges, edges[1:])])
        out["norms"].append(norms)
    out["loss_edges"] = edges
    return out, mask


@pytest.mark.parametrize("cell_name", ["lru", "attention", "path_attention"])
def test_metrics_equal_a_step_by_step_numpy_loop(cell_name):
    """lru (a complex state) streamed in pieces of <= 4 steps; attention and PaTH attention
    whole under a memory limit that one row of LENGTH just fits (so its rows go through one at
    a time and the sums and norms add up over the groups), with a second length that not even
    one row fits: skipped, not evaluated. PaTH's cache is rewritten (no state norms)."""
    attention, too_long = cell_name in ("attention", "path_attention"), 200
    if attention:
        model, seed_params = model_and_params(cell_name, max_length=64)
        limit = evaluate.attention_eval_bytes(model, SEEDS, 1, LENGTH)
        assert evaluate.attention_rows(model, SEEDS, SIZE, LENGTH, limit) == 1
        assert evaluate.attention_rows(model, SEEDS, SIZE, LENGTH, limit * SIZE) == SIZE
        with logs.captured() as lines:
            got = evaluate.length_grid(model, seed_params, TASK, [LENGTH, too_long], SIZE,
                                       max_eval_bytes=limit)
    else:
        model, seed_params, traces, _ = counted(cell_name)
        with logs.captured() as lines:
            got = evaluate.length_grid(model, seed_params, TASK, [LENGTH], SIZE, chunk_size=4)
    ref, mask = step_by_step(model, seed_params, LENGTH)
    entry = got[LENGTH]
    np.testing.assert_allclose(entry["accuracy"], ref["accuracy"], atol=1 / mask.sum())
    np.testing.assert_allclose(entry["loss"], ref["loss"], rtol=1e-4)
    assert len(entry["per_position_accuracy"]["accuracy"]) == 32
    # one hit of a bin of 3 or 6 scored positions
    np.testing.assert_allclose(np.array(entry["per_position_accuracy"]["accuracy"]).T, ref["bins"],
                               atol=1 / 3)
    assert entry["loss_by_position"]["bin_edges"] == ref["loss_edges"] == [0, 1, 2, 4, 8, 16,
                                                                           32, 45]
    np.testing.assert_allclose(np.array(entry["loss_by_position"]["loss"]).T, ref["loss_bins"],
                               rtol=1e-4)
    positions = entry["state_norm"]["positions"]
    if cell_name == "path_attention":
        assert positions == [] and entry["state_norm"]["norm"] == []
    elif attention:  # log-spaced in 1..45, read off the final KV cache
        assert len(positions) <= 32 and positions[:3] == [1, 2, 3] and positions[-1] == LENGTH
    else:  # the piece ends: 1 1 2, then 4 at a time, then 1
        assert positions == [1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 45]
        assert set(traces) >= {1, 2, 4} and len(traces) == len(set(traces))
    if positions:
        ref_norms = np.array(ref["norms"])[:, np.array(positions) - 1]
        np.testing.assert_allclose(np.array(entry["state_norm"]["norm"]).T, ref_norms,
                                   rtol=1e-4)
    assert lines[0].startswith(f"eval length {LENGTH}: accuracy ")
    if attention:
        assert got[too_long]["accuracy"] == [None] * SEEDS and "GiB >" in got[too_long]["skipped"]
        assert "skipped" in lines[1] and len(lines) == 2
        summary = evaluate.summarise(got, train_length=LENGTH)  # the skipped length left out
        assert summary["in_distribution_accuracy"] == got[LENGTH]["accuracy"]
    else:
        assert len(lines) == 1


def whole_sequence(model, vocab, seed_params, batch):
    """(loss, accuracy, final state norm) per seed from one `loss_and_accuracy` on the batch."""
    loss, (accuracy, final_state) = jax.jit(jax.vmap(
        lambda p: evaluate.loss_and_accuracy(model, vocab, p, batch)))(seed_params)
    return loss, accuracy, [numpy_norm(seed_slice(final_state, s)) for s in range(SEEDS)]


def test_streaming_equals_the_whole_sequence_for_every_chunk_size():
    """Chunks that do not divide the lengths (3, 5) and longer than them (64); one program
    per piece size across lengths, chunk sizes and calls."""
    model, seed_params, traces, uncounted = counted("lru")
    lengths = [40, LENGTH]
    runs = {chunk: evaluate.length_grid(model, seed_params, TASK, lengths, SIZE, chunk_size=chunk)
            for chunk in (3, 5, 64)}
    for length in lengths:
        batch, digest = TASK.test_set(length, SIZE, seed=evaluate.EVAL_SEED)
        loss, accuracy, final_norm = whole_sequence(uncounted, TASK.output_vocab, seed_params,
                                                    batch)
        for got in runs.values():
            entry = got[length]
            assert entry["test_set_hash"] == digest
            np.testing.assert_allclose(entry["accuracy"], accuracy, atol=1 / batch.mask.sum())
            np.testing.assert_allclose(entry["loss"], loss, rtol=1e-4)
            assert entry["state_norm"]["positions"][-1] == length
            np.testing.assert_allclose(entry["state_norm"]["norm"][-1], final_norm, rtol=1e-4)
    # pieces: chunk 3 -> 1 1 2 3 ...; chunk 5 -> 1 1 2 4 5 ...; chunk 64 -> 1 1 2 4 8 16 + 8 4 1
    assert sorted(traces) == [1, 2, 3, 4, 5, 8, 16]


def test_streaming_a_regression_task_with_real_inputs():
    model, seed_params, traces, uncounted = counted("lru", "adding")
    got = evaluate.length_grid(model, seed_params, ADDING, [37], SIZE, chunk_size=1)[37]
    batch, _ = ADDING.test_set(37, SIZE, seed=evaluate.EVAL_SEED)
    loss, accuracy, final_norm = whole_sequence(uncounted, 0, seed_params, batch)
    np.testing.assert_allclose(got["loss"], loss, rtol=1e-4)
    np.testing.assert_allclose(got["accuracy"], accuracy)
    np.testing.assert_allclose(got["state_norm"]["norm"][-1], final_norm, rtol=1e-4)
    # adding scores the last step only: every bin but the last is null
    assert got["per_position_accuracy"]["accuracy"][:-1] == [None] * 31
    assert traces == [1]


def test_regression_loss_and_hits_against_numpy():
    batch, _ = ADDING.test_set(37, 6, seed=3)
    rng = np.random.default_rng(0)
    # outputs near the targets, so some are within the 0.04 tolerance and some are not
    outputs = (batch.targets + rng.uniform(-0.08, 0.08, batch.targets.shape))[..., None]
    loss, hits = evaluate.masked_loss_and_hits(jnp.asarray(outputs, jnp.float32),
                                               batch.targets, batch.mask, vocab=0)
    error = outputs[..., 0].astype(np.float32).astype(np.float64) - batch.targets
    np.testing.assert_allclose(loss, error**2, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(hits, (np.abs(error) < 0.04) & batch.mask)
    # Through a stand-in linear "model" y = x W whose state counts its calls: the loss is the
    # masked MSE of its outputs, and the state goes in and comes back out.
    linear = types.SimpleNamespace(initial_state=lambda params, shape: jnp.zeros(shape),
                                   apply=lambda params, state, x: (state + 1, x @ params))
    weights = jnp.asarray(rng.normal(size=(2, 1)), jnp.float32)
    mse, (accuracy, final_state) = evaluate.loss_and_accuracy(linear, 0, weights, batch)
    outputs = batch.inputs.astype(np.float64) @ np.asarray(weights, np.float64)
    error = outputs[..., 0] - batch.targets
    np.testing.assert_allclose(mse, np.mean(error[batch.mask] ** 2), rtol=1e-5)
    np.testing.assert_allclose(accuracy, np.mean(np.abs(error[batch.mask]) < 0.04))
    np.testing.assert_array_equal(final_state, np.ones(6))
    assert 0 < np.asarray(hits).sum() < batch.mask.sum()
    _, (_, carried) = evaluate.loss_and_accuracy(linear, 0, weights, batch, state=final_state)
    np.testing.assert_array_equal(carried, np.full(6, 2.0))


def test_multi_head_cross_entropy_against_numpy():
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 3, (2, 5, 4)).astype(np.int32)  # (B, T, H), vocab 3
    mask = rng.random((2, 5, 4)) < 0.6
    logits = rng.normal(size=(2, 5, 4 * 3)).astype(np.float32)
    nll, hits = evaluate.masked_loss_and_hits(logits, targets, mask, vocab=3)
    heads = logits.astype(np.float64).reshape(2, 5, 4, 3)
    log_probs = heads - np.log(np.exp(heads).sum(-1, keepdims=True))
    np.testing.assert_allclose(nll, -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0],
                               rtol=1e-5)
    np.testing.assert_array_equal(hits, (heads.argmax(-1) == targets) & mask)


def test_bins_and_schedule_hand_computed():
    # T = 40 steps, 32 bins: step t is in bin floor(0.8 t); bin b starts at ceil(1.25 b).
    edges = evaluate.bin_edges(40)
    assert len(edges) == 33 and edges[:6] == [0, 2, 3, 4, 5, 7] and edges[-2:] == [39, 40]
    assert evaluate.bin_edges(64) == list(range(0, 65, 2))
    assert evaluate.bin_edges(5) == [0, 1, 2, 3, 4, 5]  # fewer steps than bins: one step each
    assert evaluate.schedule(41, 16) == [1, 1, 2, 4, 8, 16, 8, 1]
    assert evaluate.schedule(10, 3) == [1, 1, 2, 3, 3]  # doubling stops at 4 >= 3
    assert evaluate.schedule(1, 4096) == [1]


def test_summarise_leaves_out_skipped_lengths():
    per_length = {4: {"accuracy": [1.0, 0.8]}, 8: {"accuracy": [0.96, 0.5]},
                  16: {"accuracy": [None, None], "skipped": "too big"},
                  32: {"accuracy": [0.95, 0.75]}}
    summary = evaluate.summarise(per_length, train_length=4)
    np.testing.assert_allclose(summary["score"], [(0.96 + 0.95) / 2, (0.5 + 0.75) / 2])
    # seed 0 never drops below 0.9: 32 is its effective length; seed 1 fails at 8 (0.5 < 0.72).
    assert summary["effective_length"] == [32, 4]
    skipped_only = evaluate.summarise({8: {"accuracy": [None]}}, train_length=4)
    assert skipped_only["effective_length"] == [None] and skipped_only["score_mean"] is None
    # No evaluated length in distribution: said so, never silently redefined.
    beyond_only = evaluate.summarise({8: {"accuracy": [0.5]}}, train_length=4)
    assert beyond_only["in_distribution_accuracy"] == [None]
    assert beyond_only["effective_length"] == [None]
    assert beyond_only["in_distribution_note"] == "no evaluated length <= train_length 4"
    # Diverged seeds are never averaged.
    assert evaluate.summarise(per_length, 4, ok=[False, True])["score_mean"] == 0.625


def test_a_seed_that_does_not_fit_its_training_lengths_has_no_effective_length():
    # Five-way task (chance 0.2). Seed 0 fits the training lengths (0.98, a gain of 0.78) and
    # keeps 90% of that gain (acc >= 0.902) to 51; seed 1 sits at chance in and beyond them:
    # its noise (0.18 in, 0.19-0.23 beyond) would "keep" 90% of its noise to any length.
    per_length = {10: {"accuracy": [1.0, 0.2]}, 40: {"accuracy": [0.96, 0.16]},
                  41: {"accuracy": [0.95, 0.23]}, 51: {"accuracy": [0.91, 0.19]},
                  61: {"accuracy": [0.9, 0.2]}, 101: {"accuracy": [0.3, 0.21]}}
    summary = evaluate.summarise(per_length, train_length=40, chance=0.2)
    assert summary["effective_length"] == [51, 0]
    # The bar: a gain of 10% of the way from chance to 1 (0.28 here).
    near = {10: {"accuracy": [0.3, 0.27]}, 41: {"accuracy": [0.3, 0.27]}}
    assert evaluate.summarise(near, train_length=40, chance=0.2)["effective_length"] == [41, 0]
    # Measured from chance, not from 0: 0.6 at 41 is 90% of 0.65 but not of its gain 0.45.
    assert evaluate.summarise({10: {"accuracy": [0.65]}, 41: {"accuracy": [0.6]}}, 40,
                              chance=0.2)["effective_length"] == [10]
    # The accuracy of an input-blind guess: the task's chance, 0 for regression (an MSE).
    assert evaluate.chance_accuracy(tasks.get("cycle_navigation")) == 0.2
    assert evaluate.chance_accuracy(tasks.get("adding")) == 0.0


def test_default_lengths_add_the_chomsky_range_for_formal_language_tasks():
    chomsky = evaluate.default_lengths(tasks.get("parity_check"), 40)
    assert set(range(41, 501)) <= set(chomsky) and {40, 80, 2560} <= set(chomsky)
    assert min(chomsky) == 40 and max(chomsky) == 2560 and len(chomsky) == 460 + 4
    memory = evaluate.default_lengths(tasks.get("mqar"), 8)
    assert memory == [32, 64, 128, 256, 512]  # 8 x {1..64}, raised to mqar's minimum of 32


def test_eval_bench_imports_without_defining_flags():
    from absl import flags

    from seqbench.bench import eval as eval_bench

    assert callable(eval_bench.define_flags) and "chunk_size" not in flags.FLAGS
