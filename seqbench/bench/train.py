"""Training throughput: tokens/s per cell, seqbench's LSTM against Flax's, and seeds via vmap.

    python -m seqbench.bench.train                          # all three tables
    python -m seqbench.bench.train --table=cells --cells=lstm,lru,mamba
    python -m seqbench.bench.train --table=flax --width=128 --steps=10
    python -m seqbench.bench.train --table=impls --impl_cells=mamba --impls=sequential,associative

Every number times one whole training step, `engine.make_train_step` (the batch sampled on the
device, masked cross-entropy, AdamW with global-norm clipping, jitted with the state donated):
compile seconds are `lower(...).compile()` alone; ms/step is the median of --steps timed steps
after one warm-up step, each waited for with `jax.block_until_ready` on the state (the method of
`kernels.timing.median_ms`, with the state threaded through: a donated state cannot be passed
twice). The programs of one comparison (the flax table's three rows, a seeds pair) are timed
interleaved, one step of each per round, so that load drifting on a shared machine does not
skew their ratio. tokens/s = seeds · batch · T / (ms/step), where T =
task.seq_len(train_length) is the number of tokens the model reads per sequence.

Reference size (the defaults): task `copy` (token inputs and class targets, valid for every
cell) at L = 128, so T = 2L + 1 = 257; width 64, depth 2, batch 32, 1 seed.

Tables:
1. `cells`: every registered cell (or --cells) at the reference size.
2. `flax`: the same one-layer LSTM model trained through seqbench and written the usual Flax way
   (`nn.Embed` -> `nn.RNN(nn.OptimizedLSTMCell)` -> `nn.Dense`, `flax.training.train_state`),
   with the same optimizer, the same on-device batches and the same masked cross-entropy. The
   seqbench model (`models.build(lstm, depth=1, mlp_expand=0)`) also has a pre-norm residual
   block and a final RMSNorm, x + LSTM(RMSNorm(x)) -> RMSNorm -> Dense; a third row adds exactly
   those to the Flax model, so the two compute the same function (tests/test_bench_train.py
   maps the weights and checks equal logits).
3. `seeds`: --seed_cells with 1 seed against --seeds seeds vmapped in one program; the target
   is under 2x the one-seed step time.
4. `impls`: each of --impl_cells trained with each of its --impls (`scan_impl`), timed
   interleaved; "÷ first" is each row's ms/step over the first impl's.

Only ratios within one run are comparable; on a shared machine rerun before quoting numbers.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from absl import app, flags
from flax.training import train_state

from seqbench import cells, engine, evaluate, models, tasks

TABLES = ("cells", "flax", "seeds", "impls")


@dataclasses.dataclass(frozen=True)
class Reference:
    """The size every table measures at (each field is a flag)."""

    task: str = "copy"  # token inputs and class targets: valid for every cell
    train_length: int = 128  # the task length L; copy reads T = 2L + 1 = 257 tokens
    width: int = 64  # model width (d_hidden)
    depth: int = 2  # residual blocks (the flax table uses 1: its model has one LSTM)
    batch_size: int = 32  # sequences per seed per step

    def config(self, cell: str, *, seeds: int = 1, depth: int | None = None,
               cell_hparams: dict | None = None) -> engine.Config:
        return engine.Config(cell=cell, task=self.task, width=self.width,
                            depth=depth or self.depth, train_length=self.train_length,
                            curriculum="fixed", batch_size=self.batch_size, seeds=seeds,
                            cell_hparams=tuple((cell_hparams or {}).items()))


# ------------------------------------------------------------------------------------ timing


@dataclasses.dataclass
class Timing:
    compile_s: float  # lower + compile of the step
    ms_per_step: float  # median of the timed steps
    tokens_per_s: float  # seeds * batch * T / step time


@dataclasses.dataclass
class Runner:
    """One training program to time: `step(state, key) -> (state, metrics)`, donating `state`."""

    step: Any  # a jitted function
    state: Any
    key: jax.Array
    tokens_per_step: int


def time_runners(runners: Sequence[Runner], repeats: int) -> list[Timing]:
    """Compiles every runner, runs one warm-up step of each, then `repeats` rounds in which each
    runner takes one step in turn, each waited for with `block_until_ready`.

    Interleaving puts the programs being compared under the same machine load, round by round,
    so their ratio is not skewed by the load drifting between two back-to-back measurements."""
    compiled, states, compile_s = [], [], []
    for runner in runners:
        start = time.perf_counter()
        compiled.append(runner.step.lower(runner.state, runner.key).compile())
        compile_s.append(time.perf_counter() - start)
        state, _ = compiled[-1](runner.state, runner.key)
        states.append(jax.block_until_ready(state))
    times = [[] for _ in runners]
    for _ in range(repeats):
        for i, runner in enumerate(runners):
            start = time.perf_counter()
            states[i], _ = compiled[i](states[i], runner.key)
            jax.block_until_ready(states[i])
            times[i].append(time.perf_counter() - start)
    timings = []
    for runner, seconds, compile_seconds in zip(runners, times, compile_s):
        median = statistics.median(seconds)
        timings.append(Timing(compile_seconds, 1e3 * median, runner.tokens_per_step / median))
    return timings


def seqbench_runner(config: engine.Config, task, model) -> Runner:
    """`engine.make_train_step` for `model` (one program, `config.seeds` vmapped seeds), placed on
    the local devices as `engine.run` places it."""
    tx = engine.optimizer(config)
    mesh, state, seed_keys = engine.start_state(config, model, tx)
    full_step = engine.make_train_step(config, task, model, tx, mesh)
    length = jnp.int32(config.train_length)
    step = jax.jit(lambda state, keys: full_step(state, keys, length), donate_argnums=0)
    tokens = config.seeds * config.batch_size * task.seq_len(config.train_length)
    return Runner(step, state, seed_keys, tokens)


# ------------------------------------------------------------------------------- table 1: cells


@dataclasses.dataclass
class CellRow:
    cell: str
    family: str
    params: int  # one seed's model
    ms_per_step: float
    tokens_per_s: float
    compile_s: float


CELL_COLUMNS = (("cell", "cell", ""), ("family", "family", ""), ("params", "params", ",d"),
                ("ms_per_step", "ms/step", ".1f"), ("tokens_per_s", "tokens/s", ",.0f"),
                ("compile_s", "compile s", ".1f"))


def time_configs(configs: Sequence[engine.Config], repeats: int) -> list[Timing]:
    """`time_runners` over one seqbench training program per config, timed interleaved."""
    runners = []
    for config in configs:
        _, task, model = engine.build(config)
        runners.append(seqbench_runner(config, task, model))
    return time_runners(runners, repeats)


def measure_cell(name: str, reference: Reference, repeats: int) -> CellRow:
    config = reference.config(name)
    cell, task, model = engine.build(config)
    (timing,) = time_runners([seqbench_runner(config, task, model)], repeats)
    return CellRow(name, cell.family, models.count_params(model), timing.ms_per_step,
                   timing.tokens_per_s, timing.compile_s)


# -------------------------------------------------------------------------------- table 2: flax


class FlaxLSTM(nn.Module):
    """An LSTM sequence model written the usual Flax way: Embed -> RNN(OptimizedLSTMCell) -> Dense.

    With `seqbench_norms`, seqbench's one-block body instead (`models.build(lstm, depth=1,
    mlp_expand=0)`): x = Embed(tokens); x = x + LSTM(RMSNorm(x)); logits = Dense(RMSNorm(x)).
    """

    vocab: int
    width: int
    output_dim: int
    seqbench_norms: bool = False

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(self.vocab, self.width)(tokens)
        lstm = nn.RNN(nn.OptimizedLSTMCell(self.width))
        if self.seqbench_norms:
            x = x + lstm(nn.RMSNorm(epsilon=models.RMS_EPS)(x))
            x = nn.RMSNorm(epsilon=models.RMS_EPS)(x)
        else:
            x = lstm(x)
        return nn.Dense(self.output_dim)(x)


def make_flax_train_step(config: engine.Config, task):
    """The usual Flax step: sample on the device, masked cross-entropy, `apply_gradients`.

    The loss is seqbench's (`evaluate.masked_loss_and_hits`), and so are the metrics."""
    vocab = task.output_vocab

    def step(state: train_state.TrainState, key):
        batch = task.sample(jax.random.fold_in(key, state.step), config.batch_size,
                            config.train_length)

        def loss_fn(params):
            logits = state.apply_fn({"params": params}, batch.inputs)
            nll, hits = evaluate.masked_loss_and_hits(logits, batch.targets, batch.mask, vocab)
            return (evaluate.masked_mean(nll, batch.mask),
                    evaluate.masked_mean(hits, batch.mask))

        (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        metrics = {"loss": loss, "accuracy": accuracy, "grad_norm": optax.tree.norm(grads)}
        return state.apply_gradients(grads=grads), metrics

    return jax.jit(step, donate_argnums=0)


def flax_model(task, width: int, seqbench_norms: bool) -> FlaxLSTM:
    return FlaxLSTM(task.input_vocab, width, task.output_vocab * task.num_heads, seqbench_norms)


def seqbench_lstm_model(task, width: int) -> models.Model:
    """seqbench's side of the flax table: one LSTM block, no MLP."""
    return models.build(cells.get("lstm", d_hidden=width), input_dim=task.input_vocab,
                        output_dim=task.output_vocab * task.num_heads, depth=1, mlp_expand=0)


def flax_param_count(module: FlaxLSTM, batch_size: int, length: int) -> int:
    shapes = jax.eval_shape(module.init, jax.random.key(0),
                            jnp.zeros((batch_size, length), jnp.int32))
    return cells.param_count(shapes["params"])


def flax_runner(config: engine.Config, task, module: FlaxLSTM) -> Runner:
    steps = task.seq_len(config.train_length)
    tokens = jnp.zeros((config.batch_size, steps), jnp.int32)
    state = jax.jit(lambda: train_state.TrainState.create(
        apply_fn=module.apply, params=module.init(jax.random.key(config.seed), tokens)["params"],
        tx=engine.optimizer(config)))()
    step = make_flax_train_step(config, task)
    return Runner(step, state, jax.random.key(config.seed + 1), config.batch_size * steps)


@dataclasses.dataclass
class FlaxRow:
    model: str
    params: int
    ms_per_step: float
    tokens_per_s: float
    compile_s: float
    vs_seqbench: float = float("nan")  # ms/step over seqbench's (>= 1: seqbench as fast)


FLAX_COLUMNS = (("model", "model", ""), ("params", "params", ",d"),
                ("ms_per_step", "ms/step", ".1f"), ("tokens_per_s", "tokens/s", ",.0f"),
                ("compile_s", "compile s", ".1f"), ("vs_seqbench", "÷ seqbench", ".2f"))


def measure_flax(reference: Reference, repeats: int) -> list[FlaxRow]:
    """seqbench's one-layer LSTM model, then the Flax model without and with seqbench's norms."""
    config = reference.config("lstm", depth=1)
    task = tasks.get(config.task)
    if task.real_inputs:
        raise app.UsageError(f"--table=flax needs a token-input task (nn.Embed); "
                             f"{config.task!r} has real-valued inputs")
    model = seqbench_lstm_model(task, config.width)
    labelled = [("seqbench: models.build(lstm, depth=1, mlp_expand=0)", models.count_params(model),
                 seqbench_runner(config, task, model))]
    for norms, label in ((False, "flax: Embed -> RNN(OptimizedLSTMCell) -> Dense"),
                         (True, "flax + seqbench's residual and RMSNorms")):
        module = flax_model(task, config.width, norms)
        params = flax_param_count(module, config.batch_size, task.seq_len(config.train_length))
        labelled.append((label, params, flax_runner(config, task, module)))
    timings = time_runners([runner for _, _, runner in labelled], repeats)
    rows = [FlaxRow(label, params, t.ms_per_step, t.tokens_per_s, t.compile_s)
            for (label, params, _), t in zip(labelled, timings)]
    for row in rows:
        row.vs_seqbench = row.ms_per_step / rows[0].ms_per_step
    return rows


# ------------------------------------------------------------------------------- table 3: seeds


@dataclasses.dataclass
class SeedsRow:
    cell: str
    seeds: int
    ms_per_step: float
    tokens_per_s: float
    compile_s: float
    vs_one_seed: float = float("nan")  # ms/step over the same cell's 1-seed ms/step


SEEDS_COLUMNS = (("cell", "cell", ""), ("seeds", "seeds", "d"),
                 ("ms_per_step", "ms/step", ".1f"), ("tokens_per_s", "tokens/s", ",.0f"),
                 ("compile_s", "compile s", ".1f"), ("vs_one_seed", "÷ 1 seed", ".2f"))


def measure_seeds(name: str, seeds: int, reference: Reference, repeats: int) -> list[SeedsRow]:
    timings = time_configs([reference.config(name, seeds=count) for count in (1, seeds)],
                           repeats)
    rows = [SeedsRow(name, count, t.ms_per_step, t.tokens_per_s, t.compile_s)
            for count, t in zip((1, seeds), timings)]
    for row in rows:
        row.vs_one_seed = row.ms_per_step / rows[0].ms_per_step
    return rows


# ------------------------------------------------------------------------------ table 4: impls


@dataclasses.dataclass
class ImplRow:
    cell: str
    impl: str
    ms_per_step: float
    tokens_per_s: float
    compile_s: float
    vs_first: float = 1.0  # ms/step over the first impl's


IMPL_COLUMNS = (("cell", "cell", ""), ("impl", "scan_impl", ""), ("ms_per_step", "ms/step", ".1f"),
                ("tokens_per_s", "tokens/s", ",.0f"), ("compile_s", "compile s", ".1f"),
                ("vs_first", "÷ first", ".2f"))


def measure_impls(name: str, impls: Sequence[str], reference: Reference,
                  repeats: int) -> list[ImplRow]:
    """One training program per `scan_impl` of cell `name`, timed interleaved."""
    timings = time_configs([reference.config(name, cell_hparams={"scan_impl": impl})
                            for impl in impls], repeats)
    rows = [ImplRow(name, impl, t.ms_per_step, t.tokens_per_s, t.compile_s)
            for impl, t in zip(impls, timings)]
    for row in rows:
        row.vs_first = row.ms_per_step / rows[0].ms_per_step
    return rows


# ----------------------------------------------------------------------------------- the command


def format_table(rows: Sequence[Any], columns) -> str:
    """A markdown table of dataclass `rows`; `columns` are (field, header, format spec) triples.

    Text columns (empty spec) are left-aligned, numbers right-aligned; every column is padded
    to its widest entry so the raw text reads as a table too."""
    headers = [header for _, header, _ in columns]
    body = [[format(getattr(row, field), spec) for field, _, spec in columns] for row in rows]
    widths = [max([len(h)] + [len(line[i]) for line in body]) for i, h in enumerate(headers)]
    right = [bool(spec) for _, _, spec in columns]

    def line(entries):
        padded = (e.rjust(w) if r else e.ljust(w) for e, w, r in zip(entries, widths, right))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if r else (":" + "-" * (w + 1))
                          for w, r in zip(widths, right)) + "|"
    return "\n".join([line(headers), rule] + [line(entries) for entries in body])


def run(tables: Sequence[str], reference: Reference, cell_names: Sequence[str], repeats: int,
        seeds: int, seed_cells: Sequence[str], impl_cells: Sequence[str] = ("mamba",),
        impls: Sequence[str] = ("sequential", "associative")) -> dict[str, list]:
    """{table name: rows} for each of `tables`, printing a line as each measurement ends."""
    valid = cells.names()
    for flag, names in (("cells", cell_names), ("seed_cells", seed_cells),
                        ("impl_cells", impl_cells)):
        unknown = sorted(set(names) - set(valid))
        if unknown:
            raise app.UsageError(f"--{flag}: unknown {unknown}; valid: {', '.join(valid)}")
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise app.UsageError(f"--table: unknown {unknown}; valid: all, {', '.join(TABLES)}")
    if reference.task not in tasks.names():
        raise app.UsageError(f"--task: unknown {reference.task!r}; valid: "
                             f"{', '.join(tasks.names())}")
    out = {}
    if "cells" in tables:
        out["cells"] = []
        for name in cell_names:
            out["cells"].append(measure_cell(name, reference, repeats))
            print(f"# measured {name}: {out['cells'][-1].ms_per_step:.1f} ms/step", flush=True)
    if "flax" in tables:
        out["flax"] = measure_flax(reference, repeats)
        print("# measured the flax comparison", flush=True)
    if "seeds" in tables:
        out["seeds"] = []
        for name in seed_cells:
            out["seeds"] += measure_seeds(name, seeds, reference, repeats)
            print(f"# measured {name} with 1 and {seeds} seeds", flush=True)
    if "impls" in tables:
        for name in impl_cells:  # a bad impl fails here, before anything compiles
            for impl in impls:
                try:
                    cells.get(name, scan_impl=impl)
                except (ValueError, TypeError) as e:
                    raise app.UsageError(f"--impls: {e}") from None
        out["impls"] = []
        for name in impl_cells:
            out["impls"] += measure_impls(name, impls, reference, repeats)
            print(f"# measured {name} with scan_impl {', '.join(impls)}", flush=True)
    return out


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command-line flags (only when run as a program, so modules import cleanly)."""
    defaults = Reference()
    flags.DEFINE_enum("table", "all", ["all", *TABLES], "Which table(s) to measure.")
    flags.DEFINE_list("cells", None, "Cells of the cells table (default: every registered cell).")
    flags.DEFINE_string("task", defaults.task, "Task (token inputs, class targets).")
    flags.DEFINE_integer("train_length", defaults.train_length, "Task length L.", lower_bound=1)
    flags.DEFINE_integer("width", defaults.width, "Model width.", lower_bound=1)
    flags.DEFINE_integer("depth", defaults.depth, "Blocks (cells and seeds tables).",
                         lower_bound=1)
    flags.DEFINE_integer("batch_size", defaults.batch_size, "Sequences per seed per step.",
                         lower_bound=1)
    flags.DEFINE_integer("steps", 15, "Timed steps per measurement (median).", lower_bound=1)
    flags.DEFINE_integer("seeds", 5, "Seeds vmapped in the seeds table.", lower_bound=2)
    flags.DEFINE_list("seed_cells", ["lstm", "lru"], "Cells of the seeds table.")
    flags.DEFINE_list("impl_cells", ["mamba"], "Cells of the impls table.")
    flags.DEFINE_list("impls", ["sequential", "associative"], "The scan_impls of the impls "
                      "table, the first the baseline of its ÷ column.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    reference = Reference(FLAGS.task, FLAGS.train_length, FLAGS.width, FLAGS.depth,
                          FLAGS.batch_size)
    tables = TABLES if FLAGS.table == "all" else (FLAGS.table,)
    start = time.perf_counter()
    print(f"# seqbench.bench.train: jax {jax.__version__}, backend {jax.default_backend()}, "
          f"device {jax.devices()[0].device_kind}; {reference}; median of {FLAGS.steps} steps")
    out = run(tables, reference, FLAGS.cells or cells.names(), FLAGS.steps, FLAGS.seeds,
              FLAGS.seed_cells, FLAGS.impl_cells, FLAGS.impls)
    seq_len = tasks.get(reference.task).seq_len(reference.train_length)
    size = (f"{reference.task} L={reference.train_length} (T={seq_len}), width {reference.width}, "
            f"batch {reference.batch_size}")
    if "cells" in out:
        print(f"\nTraining throughput per cell: {size}, depth {reference.depth}, 1 seed.\n")
        print(format_table(out["cells"], CELL_COLUMNS))
    if "flax" in out:
        print(f"\nOne-layer LSTM, seqbench vs Flax: {size}. ÷ seqbench = ms/step over "
              f"seqbench's (>= 1: seqbench at least as fast). The usual Flax model lacks "
              f"seqbench's residual and two RMSNorm scales (2 x width parameters); the last row "
              f"adds them.\n")
        print(format_table(out["flax"], FLAX_COLUMNS))
    if "seeds" in out:
        print(f"\nSeeds vmapped in one program: {size}, depth {reference.depth}. "
              f"÷ 1 seed = ms/step over the 1-seed ms/step (target < 2).\n")
        print(format_table(out["seeds"], SEEDS_COLUMNS))
    if "impls" in out:
        print(f"\nScan implementations: {size}, depth {reference.depth}, 1 seed. ÷ first = "
              f"ms/step over the first impl's (timed interleaved).\n")
        print(format_table(out["impls"], IMPL_COLUMNS))
    print(f"\n# wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    define_flags()
    app.run(main)
