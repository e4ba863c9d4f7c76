"""seqbench.bench.reproduction: the usual-Flax side computes the paper's model as seqbench does,
and its step trains every member through one program."""

import jax
import jax.numpy as jnp
import numpy as np

from seqbench import engine
from seqbench.bench import reproduction as bench

GATES = ("i", "f", "g", "o")  # both LSTMs order the gates i, f, g, o


def test_the_flax_paper_lstm_computes_seqbench_s_bare_paper_model():
    """Random weights mapped from Flax's per-gate kernels to seqbench's layout: equal logits
    (float64 reference: both in float32, rtol 1e-5), so the benchmark compares one function."""
    config = engine.Config(**{**bench.PAPER_FIELDS, "width": 8})
    _, task, model = engine.build(config)
    module = bench.flax_model(task, config.width)
    rng = np.random.default_rng(3)
    tokens = rng.integers(0, task.input_vocab, (4, 13)).astype(np.int32)
    flax_params = jax.tree_util.tree_map(
        lambda x: (0.5 * rng.standard_normal(x.shape)).astype(np.float32),
        jax.eval_shape(module.init, jax.random.key(0), tokens)["params"])
    cell = flax_params["OptimizedLSTMCell_0"]
    params = {"embed": {}, "head": {"w": flax_params["Dense_0"]["kernel"],
                                    "b": flax_params["Dense_0"]["bias"]},
              "blocks": [{"cell": {
                  "w_x": jnp.concatenate([cell[f"i{g}"]["kernel"] for g in GATES], axis=1),
                  "w_h": jnp.concatenate([cell[f"h{g}"]["kernel"] for g in GATES], axis=1),
                  "b": jnp.concatenate([cell[f"h{g}"]["bias"] for g in GATES])}}]}
    _, ours = model.apply(params, model.initial_state(params, (4,)), jnp.asarray(tokens))
    theirs = module.apply({"params": flax_params}, jnp.asarray(tokens))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_members_at_different_rates_share_one_flax_program_and_keep_their_rates():
    config = engine.Config(**{**bench.PAPER_FIELDS, "width": 8})
    _, task, _ = engine.build(config)
    module, tx, step = bench.flax_model(task, 8), bench.flax_optimizer(), bench.flax_step(task)
    states = [bench.flax_state(module, tx, rate, seed, 4)
              for rate, seed in ((1e-3, 0), (5e-4, 1))]
    batch = task.sample(jax.random.key(0), 4, 5)
    states = [step(state, batch) for state in states]
    assert step._cache_size() == 1  # one length, one program for both rates
    rates = [float(s.opt_state[1].hyperparams["learning_rate"]) for s in states]
    np.testing.assert_allclose(rates, [1e-3, 5e-4], rtol=1e-7)
    assert [int(s.step) for s in states] == [1, 1]
