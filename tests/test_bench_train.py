"""seqbench.bench.train: its tables on a tiny size, the Flax baseline against the seqbench model
it is compared with, and the table formatting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl import app

from seqbench import engine, models, tasks
from seqbench.bench import train as bench

TINY = bench.Reference(task="copy", train_length=8, width=8, depth=1, batch_size=4)


def test_run_gives_rows_with_consistent_numbers_for_two_cells():
    out = bench.run(["cells"], TINY, ["elman", "mingru"], repeats=2, seeds=2, seed_cells=["elman"])
    assert list(out) == ["cells"]
    rows = out["cells"]
    assert [(r.cell, r.family) for r in rows] == [("elman", "classic"), ("mingru", "gated")]
    # elman, by the count in models.build's docstring: embed 10·8 + one block (cell 8·(8 + 8 + 1),
    # 2 norms of 8, gated MLP 3·2·8²) + final norm 8 + head 8·10 + 10
    assert rows[0].params == 10 * 8 + (8 * 17 + 2 * 8 + 3 * 2 * 8**2) + 8 + 8 * 10 + 10
    steps = tasks.get("copy").seq_len(TINY.train_length)  # 2L + 1 = 17 tokens per sequence
    for row in rows:
        assert row.ms_per_step > 0 and row.compile_s > 0
        np.testing.assert_allclose(row.tokens_per_s * row.ms_per_step / 1e3,
                                   TINY.batch_size * steps, rtol=1e-9)
    lines = bench.format_table(rows, bench.CELL_COLUMNS).splitlines()
    assert len(lines) == 4 and [h.strip() for h in lines[0].strip("|").split("|")] == [
        "cell", "family", "params", "ms/step", "tokens/s", "compile s"]


def test_the_impls_table_times_each_scan_impl_of_a_cell():
    out = bench.run(["impls"], TINY, [], 2, 2, [], impl_cells=["mamba"],
                    impls=["sequential", "associative"])
    rows = out["impls"]
    assert [(r.cell, r.impl) for r in rows] == [("mamba", "sequential"), ("mamba", "associative")]
    assert rows[0].vs_first == 1.0
    assert rows[1].vs_first == pytest.approx(rows[1].ms_per_step / rows[0].ms_per_step)
    with pytest.raises(app.UsageError, match="--impls: .*scan_impl must be one of"):
        bench.run(["impls"], TINY, [], 1, 2, [], impl_cells=["mamba"], impls=["fast"])
    with pytest.raises(app.UsageError, match="--impl_cells: unknown \\['mamb'\\]"):
        bench.run(["impls"], TINY, [], 1, 2, [], impl_cells=["mamb"])


def test_flax_train_step_traces_to_a_new_state_and_the_seqbench_metrics():
    """Shapes only (jax.eval_shape: nothing compiles); the timing itself runs in the bench."""
    config = TINY.config("lstm")
    task = tasks.get(config.task)
    module = bench.flax_model(task, config.width, seqbench_norms=False)
    tokens = jnp.zeros((config.batch_size, task.seq_len(config.train_length)), jnp.int32)
    state = jax.eval_shape(lambda: bench.train_state.TrainState.create(
        apply_fn=module.apply, params=module.init(jax.random.key(0), tokens)["params"],
        tx=engine.optimizer(config)))
    new_state, metrics = jax.eval_shape(bench.make_flax_train_step(config, task), state,
                                        jax.random.key(1))
    assert jax.tree_util.tree_structure(new_state) == jax.tree_util.tree_structure(state)
    assert {k: v.shape for k, v in metrics.items()} == {"loss": (), "accuracy": (),
                                                        "grad_norm": ()}


def _seqbench_params_from_flax(flax_params):
    """flax FlaxLSTM(seqbench_norms=True) parameters in models.build's layout. Both LSTMs order
    the gates i, f, g, o; flax keeps one kernel per gate (inputs: no bias; hidden: with bias)."""
    cell = flax_params["OptimizedLSTMCell_0"]
    gates = ("i", "f", "g", "o")
    return {
        "embed": {"table": flax_params["Embed_0"]["embedding"]},
        "blocks": [{
            "norm_cell": flax_params["RMSNorm_0"]["scale"],
            "cell": {"w_x": jnp.concatenate([cell[f"i{g}"]["kernel"] for g in gates], axis=1),
                     "w_h": jnp.concatenate([cell[f"h{g}"]["kernel"] for g in gates], axis=1),
                     "b": jnp.concatenate([cell[f"h{g}"]["bias"] for g in gates])},
        }],
        "head": {"norm": flax_params["RMSNorm_1"]["scale"],
                 "w": flax_params["Dense_0"]["kernel"], "b": flax_params["Dense_0"]["bias"]},
    }


def test_flax_model_with_seqbench_norms_computes_the_seqbench_model():
    task = tasks.get("copy")
    width, batch, steps = 8, 3, 11
    module = bench.flax_model(task, width, seqbench_norms=True)
    usual = bench.flax_model(task, width, seqbench_norms=False)
    model = bench.seqbench_lstm_model(task, width)
    rng = np.random.default_rng(7)
    tokens = rng.integers(0, task.input_vocab, (batch, steps)).astype(np.int32)
    # Random values everywhere (flax starts biases at 0 and norm scales at 1), so a swapped gate,
    # a missing bias or a misplaced norm all change the logits.
    flax_params = jax.tree_util.tree_map(
        lambda x: (0.5 * rng.standard_normal(x.shape)).astype(np.float32),
        jax.eval_shape(module.init, jax.random.key(0), tokens)["params"])
    params = _seqbench_params_from_flax(flax_params)
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(
        jax.eval_shape(model.init, jax.random.key(0)))

    @jax.jit
    def logits(flax_params, params, tokens):
        usual_params = {k: v for k, v in flax_params.items() if not k.startswith("RMSNorm")}
        _, ours = model.apply(params, model.initial_state(params, (batch,)), tokens)
        return (ours, module.apply({"params": flax_params}, tokens),
                usual.apply({"params": usual_params}, tokens))

    ours, flax_same, flax_usual = logits(flax_params, params, tokens)
    assert ours.shape == (batch, steps, task.output_vocab)
    np.testing.assert_allclose(ours, flax_same, rtol=1e-5, atol=1e-5)
    # ... while the usual Flax model is another function: the norms and residual matter.
    assert not np.allclose(flax_usual, flax_same, atol=1e-2)


@pytest.mark.parametrize("task_name, width", [("copy", 8), ("parity_check", 12)])
def test_flax_parameter_counts_differ_from_seqbench_by_the_norm_scales(task_name, width):
    task = tasks.get(task_name)
    model = bench.seqbench_lstm_model(task, width)
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    norm_scales = sum(leaf.size for path, leaf in jax.tree_util.tree_leaves_with_path(shapes)
                      if "norm" in jax.tree_util.keystr(path))
    seqbench_count = models.count_params(model)
    assert bench.flax_param_count(bench.flax_model(task, width, False), 2, 5) == (
        seqbench_count - norm_scales)
    assert bench.flax_param_count(bench.flax_model(task, width, True), 2, 5) == seqbench_count


def test_format_table_on_a_hand_made_row():
    row = bench.CellRow(cell="lstm", family="classic", params=1234567, ms_per_step=12.345,
                        tokens_per_s=98765.4, compile_s=1.5)
    assert bench.format_table([row], bench.CELL_COLUMNS).splitlines() == [
        "| cell | family  |    params | ms/step | tokens/s | compile s |",
        "|:-----|:--------|----------:|--------:|---------:|----------:|",
        "| lstm | classic | 1,234,567 |    12.3 |   98,765 |       1.5 |",
    ]


def test_bad_names_fail_before_anything_compiles():
    with pytest.raises(app.UsageError, match="--cells: unknown \\['lsmt'\\]; valid: attention"):
        bench.run(["cells"], TINY, ["lsmt"], 1, 2, ["lstm"])
    with pytest.raises(app.UsageError, match="--seed_cells: unknown \\['x'\\]"):
        bench.run(["seeds"], TINY, ["lstm"], 1, 2, ["x"])
    with pytest.raises(app.UsageError, match="--table: unknown \\['speed'\\]; valid: all, cells"):
        bench.run(["speed"], TINY, ["lstm"], 1, 2, ["lstm"])
    with pytest.raises(app.UsageError, match="--task: unknown 'cpy'"):
        bench.run(["cells"], bench.Reference(task="cpy"), ["lstm"], 1, 2, ["lstm"])
