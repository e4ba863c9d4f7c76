"""The cost of a reproduction: the Chomsky paper's protocol, seqbench against the usual Flax way.

    python -m seqbench.bench.reproduction                        # 2 seeds x 3 rates, 20 steps
    python -m seqbench.bench.reproduction --seeds=10 --steps=50  # the paper's 30 members

The protocol (Delétang et al. 2023; `experiments/configs/chomsky.py`, variant "paper"): a bare
one-layer LSTM of 256 units on one-hot tokens with a linear readout, trained on parity_check
with one length per batch drawn from U[1, 40], batch 128, Adam at a constant rate after
global-norm clipping at 1, for every member of a grid of seeds x learning rates
(`--seeds` x `--learning_rates`).

- seqbench: `engine.make_train_step` with every member vmapped in one program per curriculum
  bucket (lengths padded up to a multiple of 8: 5 programs for 1..40), as `engine.run` trains.
- Flax, written the usual way: `one_hot -> nn.RNN(nn.OptimizedLSTMCell(256)) -> nn.Dense`, an
  `optax.chain(clip_by_global_norm(1), adam(rate))` `TrainState`, one jitted step per member
  fed batches of the exact drawn length, so jit compiles one program per length and per member
  (each member is its own run, as a loop over the grid or one job per member would have it;
  here the members share the compiled programs, their rate being an injected hyperparameter,
  and the compile time of one run is counted once per member).
  Batches come from the same on-device sampler (`task.sample`), so only the training programs
  differ.

Measured: compile seconds (seqbench: every bucket; Flax: one run's 40 lengths, times the
members), and seconds per step of the whole grid: the median over --steps curriculum steps
of seqbench's step against the sum of the Flax members' steps at the same length, interleaved
step by step so that load drifting on a shared machine skews neither side. The projection
multiplies by the paper's 1,000,000 steps.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from absl import app, flags
from flax.training import train_state

from seqbench import engine, evaluate
from seqbench.engine import curricula

PAPER_STEPS = 1_000_000
PAPER_FIELDS = dict(cell="lstm", task="parity_check", width=256, depth=1, mlp_expand=0,
                    norm=False, residual=False, input_encoding="one_hot", train_length=40,
                    min_train_length=1, curriculum="uniform_batch", batch_size=128,
                    lr_schedule="constant", weight_decay=0.0, clip_norm=1.0)


class PaperLSTM(nn.Module):
    """The paper's model the usual Flax way: one-hot (B, T, vocab) -> LSTM -> Dense (B, T, O)."""

    vocab: int
    hidden: int
    output_dim: int

    @nn.compact
    def __call__(self, tokens):
        x = jax.nn.one_hot(tokens, self.vocab)
        return nn.Dense(self.output_dim)(nn.RNN(nn.OptimizedLSTMCell(self.hidden))(x))


def flax_model(task, hidden: int) -> PaperLSTM:
    return PaperLSTM(task.input_vocab, hidden, task.output_vocab * task.num_heads)


def flax_optimizer() -> optax.GradientTransformation:
    """Adam after global-norm clipping at 1, its rate an injected hyperparameter (a value in
    the optimiser state, set per member by `flax_state`): one transformation, hence one compiled
    program per length, for every member. A rate baked in as a constant would change nothing
    but how often jit compiles."""
    return optax.chain(optax.clip_by_global_norm(1.0),
                       optax.inject_hyperparams(optax.adam)(learning_rate=0.0))


def flax_state(module: PaperLSTM, tx, rate: float, seed: int, batch_size: int):
    """A member's `TrainState` (`tx` from `flax_optimizer`) at learning rate `rate`."""
    params = module.init(jax.random.key(seed), jnp.zeros((batch_size, 1), jnp.int32))["params"]
    state = train_state.TrainState.create(apply_fn=module.apply, params=params, tx=tx)
    clip, adam = state.opt_state
    rate = jnp.asarray(rate, jnp.float32)
    return state.replace(opt_state=(clip, adam._replace(
        hyperparams={**adam.hyperparams, "learning_rate": rate})))


def flax_step(task):
    """The usual jitted `step(state, batch) -> state`: jit traces again for every new batch
    length, as the usual training loop does."""
    vocab = task.output_vocab

    def step(state, batch):
        def loss_fn(params):
            logits = state.apply_fn({"params": params}, batch.inputs)
            nll, _ = evaluate.masked_loss_and_hits(logits, batch.targets, batch.mask, vocab)
            return evaluate.masked_mean(nll, batch.mask)

        return state.apply_gradients(grads=jax.grad(loss_fn)(state.params))

    return jax.jit(step, donate_argnums=0)


def measure(seeds: int, rates: tuple[float, ...], steps: int) -> dict[str, Any]:
    """Compile seconds and median seconds per grid step of both implementations."""
    config = engine.Config(**PAPER_FIELDS, seeds=seeds, learning_rates=rates, steps=PAPER_STEPS)
    _, task, model = engine.build(config)
    tx = engine.optimizer(config)
    _, state, seed_keys = engine.start_state(config, model, tx)
    curriculum = curricula.CURRICULA[config.curriculum]
    low, high = config.min_train_length, config.train_length

    start = time.perf_counter()
    programs = {bucket: engine.make_train_step(config, task, model, tx, None, bucket).lower(
                    state, seed_keys, jnp.int32(high)).compile()
                for bucket in curricula.buckets(curriculum, low, high)}
    ours_compile = time.perf_counter() - start

    sample = jax.jit(task.sample, static_argnums=(1, 2))
    module, tx, step_fn = flax_model(task, config.width), flax_optimizer(), flax_step(task)
    states = [flax_state(module, tx, rate, seed, config.batch_size)
              for rate in rates for seed in range(seeds)]
    start = time.perf_counter()  # a run's programs, one per length; each run compiles its own
    for length in range(low, high + 1):
        states[0] = step_fn(states[0], sample(jax.random.key(length), config.batch_size, length))
    jax.block_until_ready(states[0])
    flax_compile = (time.perf_counter() - start) * len(states)

    ours, theirs, lengths = [], [], []
    for step in range(steps):
        length = curriculum.batch_length(low, high, config.seed, step, config.steps)
        lengths.append(length)
        program = programs[curricula.bucket(curriculum, length, high)]
        start = time.perf_counter()
        state, _ = program(state, seed_keys, jnp.int32(length))
        jax.block_until_ready(state)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        for i, member_state in enumerate(states):
            batch = sample(jax.random.fold_in(jax.random.key(i), step), config.batch_size, length)
            states[i] = jax.block_until_ready(step_fn(member_state, batch))
        theirs.append(time.perf_counter() - start)
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    return {"members": len(states), "lengths": lengths, "seqbench_compile_s": ours_compile,
            "flax_compile_s": flax_compile, "seqbench_s_per_step": ours_s,
            "flax_s_per_step": theirs_s, "speedup": theirs_s / ours_s,
            "seqbench_paper_h": (ours_compile + PAPER_STEPS * ours_s) / 3600,
            "flax_paper_h": (flax_compile + PAPER_STEPS * theirs_s) / 3600}


def report(result: dict[str, Any], seeds: int, rates) -> str:
    m = result["members"]
    return "\n".join([
        f"The Chomsky protocol (bare LSTM 256, one-hot, U[1, 40] one length per batch, batch "
        f"128): {m} members = {seeds} seeds x rates {list(rates)}; median of "
        f"{len(result['lengths'])} curriculum steps.",
        "",
        "| implementation | compile s | s / grid step | paper's 1M steps, h |",
        "|:--|--:|--:|--:|",
        f"| seqbench (members vmapped, 5 length buckets) | {result['seqbench_compile_s']:.1f} | "
        f"{result['seqbench_s_per_step']:.4f} | {result['seqbench_paper_h']:.1f} |",
        f"| Flax, usual way ({m} runs, one program per length) | {result['flax_compile_s']:.1f} "
        f"| {result['flax_s_per_step']:.4f} | {result['flax_paper_h']:.1f} |",
        "",
        f"seqbench per grid step: {result['speedup']:.2f}x faster (Flax s / seqbench s).",
    ])


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer("seeds", 2, "Seeds per learning rate.", lower_bound=1)
    flags.DEFINE_list("learning_rates", ["1e-4", "3e-4", "5e-4"], "The grid's learning rates.")
    flags.DEFINE_integer("steps", 20, "Timed curriculum steps (median).", lower_bound=1)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        rates = tuple(float(rate) for rate in FLAGS.learning_rates)
    except ValueError:
        raise app.UsageError(f"--learning_rates must be numbers; got {FLAGS.learning_rates}")
    print(f"# seqbench.bench.reproduction: jax {jax.__version__}, backend "
          f"{jax.default_backend()}, device {jax.devices()[0].device_kind}", flush=True)
    print(report(measure(FLAGS.seeds, rates, FLAGS.steps), FLAGS.seeds, rates))


if __name__ == "__main__":
    define_flags()
    app.run(main)
