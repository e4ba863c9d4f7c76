"""The training engine end to end on tiny runs, its summary math, and its bad-input path."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqbench import engine, evaluate, logs, results, tasks
from seqbench.engine import curricula, loop
from seqbench.engine import step as step_lib


def row_lengths(config, key, step):
    """The per-row training lengths (B,) of `config.curriculum` at `step`."""
    curriculum = curricula.CURRICULA[config.curriculum]
    return curriculum.row_lengths(config.min_train_length, config.train_length, key, step,
                                  config.steps, config.train_length, config.batch_size)


def tiny_config(**overrides):
    fields = dict(cell="lstm", task="parity_check", width=8, depth=1, train_length=6,
                  min_train_length=1, curriculum="uniform", steps=4, batch_size=4, seeds=2,
                  eval_lengths=(3, 6, 12), eval_size=8, log_every=2)
    return engine.Config(**{**fields, **overrides})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny two-seed run shared by the tests that only read its outputs (with TensorBoard
    files: `tensorboard` is not hashed, so it is the same run as `tiny_config()`'s)."""
    workdir = tmp_path_factory.mktemp("tiny")
    return engine.run(tiny_config(tensorboard=True), str(workdir)), workdir


def test_run_writes_config_metrics_and_result(tiny_run):
    record, workdir = tiny_run
    on_disk = json.loads((workdir / "result.json").read_text())
    assert on_disk["config_hash"] == record["config_hash"] and on_disk["status"] == "ok"
    assert set(on_disk["per_length"]) == {"3", "6", "12"}
    parity = tasks.get("parity_check")
    for length, entry in on_disk["per_length"].items():
        assert len(entry["accuracy"]) == 2 and all(0 <= a <= 1 for a in entry["accuracy"])
        assert entry["test_set_hash"] == parity.test_set(int(length), 8, seed=evaluate.EVAL_SEED)[1]
    assert len(on_disk["score"]) == 2 and on_disk["param_count"] > 0 and on_disk["state_size"] == 16
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["step"] for l in lines] == [2, 4]
    assert not any("batch_length" in json.loads(l) for l in lines)  # rows of many lengths
    assert json.loads((workdir / "config.json").read_text())["cell"] == "lstm"


def test_seeds_train_independently_and_deterministically(tiny_run, tmp_path):
    first, first_dir = tiny_run
    again = engine.run(tiny_config(), str(tmp_path))
    assert first["per_length"] == again["per_length"]  # same config, same numbers
    last = json.loads((first_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["loss"][0] != last["loss"][1]  # two seeds, two different models
    # Logging/saving knobs do not change the config hash (results stay mergeable).
    other = engine.run(tiny_config(log_every=4, checkpoint_every=2), str(tmp_path / "b"))
    assert other["config_hash"] == first["config_hash"]


@pytest.mark.slow
def test_post_training_at_learning_rate_zero_keeps_the_source_s_final_models(tiny_run, tmp_path):
    """Post-training starts from the source's final parameters: with a learning rate of 0 the
    models stay the source's, so every per-length loss and accuracy equals the source's (fresh
    parameters would give other losses). Its hash names the source's config, not its folder;
    a rerun after a crash resumes its own checkpoint, not the source."""
    source, source_dir = tiny_run
    post = tiny_config(init_from=str(source_dir), learning_rate=0.0, steps=2, checkpoint_every=1,
                       initial_state="noise", eval_lengths=(12,))
    record = engine.run(post, str(tmp_path / "post"))
    assert record["per_length"]["12"] == source["per_length"]["12"]
    assert record["config"]["post_trained_from"] == source["config_hash"]
    assert record["config_hash"] != source["config_hash"]
    # The same source in another folder: the same configuration.
    copy = tmp_path / "copy"
    shutil.copytree(source_dir, copy)
    moved = dataclasses.replace(post, init_from=str(copy))
    assert engine.config_json(moved) == {**record["config"], "init_from": str(copy)}
    # Crash after step 1: the rerun resumes from the post-training run's own checkpoint.
    shutil.rmtree(tmp_path / "post" / "checkpoints" / "2")
    os.remove(tmp_path / "post" / "result.json")
    with logs.captured() as lines:
        again = engine.run(post, str(tmp_path / "post"))
    assert lines[0] == "resumed from the checkpoint at step 1"
    assert again["per_length"] == record["per_length"]


def test_post_training_refuses_an_unfinished_or_another_model(tiny_run, tmp_path):
    _, source_dir = tiny_run
    with pytest.raises(ValueError, match="holds no finished run"):
        engine.source_record(tiny_config(init_from=str(tmp_path)))
    with pytest.raises(ValueError, match="width=8 there, 16 here; seeds=2 there, 3 here"):
        engine.source_record(tiny_config(init_from=str(source_dir), width=16, seeds=3))
    # Other lengths, steps, interventions and optimiser settings are what post-training changes.
    engine.source_record(tiny_config(init_from=str(source_dir), train_length=12, steps=9,
                                    initial_state="state_passing", learning_rate=1e-4))


def test_attention_gets_a_cache_long_enough_for_evaluation_and_skipped_lengths_a_second_one(
        tmp_path, monkeypatch):
    """Attention evaluated at 6 and 100 steps; a run whose evaluator skipped 100 (over a memory
    limit, as before 2026-12-01) is completed from its final checkpoint by `reevaluate`, which
    gives the numbers of the run evaluated in one go."""
    config = tiny_config(cell="attention", eval_lengths=(6, 100))
    whole = engine.run(config, str(tmp_path / "whole"))
    assert set(whole["per_length"]) == {"6", "100"} and "reevaluated" not in whole
    model = engine.build(config)[2]
    between = (evaluate.attention_eval_bytes(model, 2, 1, 6)
               + evaluate.attention_eval_bytes(model, 2, 1, 100)) // 2
    monkeypatch.setattr(evaluate, "MAX_EVAL_BYTES", between)  # one row of 100 does not fit
    skipped = engine.run(config, str(tmp_path / "skipped"))
    assert "skipped" in skipped["per_length"]["100"]
    monkeypatch.undo()
    record = engine.reevaluate(str(tmp_path / "skipped"))
    assert record["reevaluated"]["lengths"] == [100]
    on_disk = json.loads((tmp_path / "skipped" / "result.json").read_text())
    assert on_disk["reevaluated"]["lengths"] == [100]
    for field in ("accuracy", "loss", "test_set_hash"):
        assert on_disk["per_length"]["100"][field] == whole["per_length"]["100"][field]
    assert on_disk["score"] == whole["score"] and on_disk["score_mean"] == whole["score_mean"]
    assert engine.reevaluate(str(tmp_path / "skipped")) is None  # nothing left to do
    # without its final checkpoint (they are not committed) a finished run cannot be read back
    shutil.rmtree(tmp_path / "whole" / "checkpoints")
    with pytest.raises(ValueError, match="the checkpoint of its last step 4 is gone"):
        loop.final_state(str(tmp_path / "whole"), whole)
    # A schema-3 record (effective length from noise; the first ones had no `members`) is
    # upgraded without its checkpoint: the summary recomputed from its per-length metrics and
    # the members read off its config, nothing evaluated.
    old = {**whole, "schema_version": 3, "effective_length": [99, 99]}
    del old["members"]
    (tmp_path / "whole" / "result.json").write_text(json.dumps(old))
    upgraded = engine.reevaluate(str(tmp_path / "whole"))
    assert upgraded["schema_version"] == results.SCHEMA_VERSION and "reevaluated" not in upgraded
    assert upgraded["members"] == whole["members"]
    assert upgraded["effective_length"] == whole["effective_length"] != [99, 99]
    assert engine.reevaluate(str(tmp_path / "whole")) is None
    # With a skipped length and no checkpoint: upgraded and written, then the length refused.
    skipped_100 = {"skipped": "too big", "accuracy": [None, None], "loss": [None, None]}
    old["per_length"] = {**whole["per_length"], "100": skipped_100}
    (tmp_path / "whole" / "result.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match="the checkpoint of its last step 4 is gone"):
        engine.reevaluate(str(tmp_path / "whole"))
    on_disk = json.loads((tmp_path / "whole" / "result.json").read_text())
    assert on_disk["schema_version"] == results.SCHEMA_VERSION
    assert on_disk["per_length"]["100"] == skipped_100
    (tmp_path / "whole" / "result.json").write_text(json.dumps({**whole, "schema_version": 2}))
    with pytest.raises(ValueError, match="schema_version 2 cannot be upgraded"):
        engine.reevaluate(str(tmp_path / "whole"))


def test_summarise_against_hand_computed_numbers():
    per_length = {4: {"accuracy": [1.0, 0.8]}, 8: {"accuracy": [0.96, 0.5]},
                  16: {"accuracy": [0.85, 0.78]}, 32: {"accuracy": [0.95, 0.75]}}
    summary = evaluate.summarise(per_length, train_length=4)
    np.testing.assert_allclose(summary["in_distribution_accuracy"], [1.0, 0.8])
    np.testing.assert_allclose(summary["score"], [(0.96 + 0.85 + 0.95) / 3, (0.5 + 0.78 + 0.75) / 3])
    # seed 0: 0.85 < 0.9 at length 16 stops the scan; seed 1: 0.5 < 0.72 at length 8.
    assert summary["effective_length"] == [8, 4]


def test_default_eval_grid():
    assert evaluate.default_lengths(tasks.get("copy"), 10) == [10, 20, 40, 80, 160, 320, 640]


def run_cli(args, capsys):
    """`python -m seqbench.train ARGS` in this process: (exit status, stderr)."""
    from absl import flags

    from seqbench import cli
    from seqbench.engine import cli as engine_cli
    values = flags.FlagValues()
    engine.config.define_flags(values)
    with pytest.raises(SystemExit) as stopped:
        argv = cli.flags_parser("seqbench.train", values)(["seqbench.train", *args])
        engine_cli.main(argv, values)
    return stopped.value.code, capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--cell=lsmt"], "unknown cell 'lsmt'; valid cells: attention"),
    (["--cell=attention", "--initial_state=state_passing"], "need a recurrent state"),
    (["--config=no/such/file.py"], "--config: no such file"),
    (["--curriculum=sometimes"], "value should be one of <fixed|uniform|uniform_batch|increasing>"),
    (["--task=mqar", "--eval_lengths=8"], "needs length >= 32"),
    (["--task_hparams=[1]"], "must be a JSON object"),
    (["--init_from=no/such/run"], "init_from: 'no/such/run' holds no finished run"),
    (["--eval_lengths=8,100000000000"], "eval_lengths must be integers in [1, 1048576]"),
    (["--learning_rate=nan"], "learning_rate must be a finite number"),
    (["--width=200000", "--cell=lstm"], "GiB for the parameters and optimiser state"),
    ([], "--workdir is required"),
])
def test_bad_input_is_one_line_and_exit_status_2(args, message, tmp_path, capsys):
    workdir = [f"--workdir={tmp_path}"] if args else []
    status, err = run_cli([*args, *workdir], capsys)
    errors = [l for l in err.splitlines() if l.startswith("seqbench.train: error:")]
    assert status == 2 and len(errors) == 1 and message in errors[0], err


def test_bad_workdirs_are_one_line_before_anything_compiles(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    (tmp_path / "run" / "checkpoints").parent.mkdir()
    (tmp_path / "run" / "checkpoints").write_text("")
    for workdir, message in ((tmp_path / "file", "is a file, not a folder"),
                             (tmp_path / "file" / "below", "cannot be created"),
                             (tmp_path / "run", "is a file, not the run's checkpoint folder"),
                             ("/proc", "is not writable")):  # not even for root
        status, err = run_cli(["--preset=smoke", f"--workdir={workdir}"], capsys)
        assert status == 2 and err.count("\n") == 1 and message in err, err


def test_the_command_line_in_a_real_process(tmp_path):
    """One subprocess: the entry point, absl's parsing and the exit status end to end."""
    proc = subprocess.run([sys.executable, "-m", "seqbench.train", "--cell=lsmt",
                           f"--workdir={tmp_path}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("seqbench.train: error: unknown cell 'lsmt'; valid cells: attention, ")


@pytest.mark.slow
def test_sigkill_and_rerun_gives_the_uninterrupted_result(tmp_path):
    """A real process stopped by SIGTERM, rerun, killed by SIGKILL, rerun with the same command,
    ends with the same evaluation numbers (bit for bit) as a run never interrupted."""
    import os
    import signal

    args = ["--cell=gru", "--task=parity_check", "--width=8", "--depth=1", "--train_length=6",
            "--curriculum=uniform", "--steps=40", "--batch_size=4", "--seeds=2",
            "--eval_lengths=6,12", "--eval_size=8", "--log_every=2", "--checkpoint_every=4"]
    command = lambda workdir: [sys.executable, "-m", "seqbench.train", *args, f"--workdir={workdir}"]
    subprocess.run(command(tmp_path / "whole"), check=True, capture_output=True, timeout=300)

    killed = tmp_path / "killed"

    def start_and_signal(sig, at_step):
        proc = subprocess.Popen(command(killed), stdout=subprocess.PIPE, text=True)
        for line in proc.stdout:
            if line.startswith("step") and int(line.split()[1].split("/")[0]) >= at_step:
                os.kill(proc.pid, sig)
                break
        proc.communicate(timeout=120)
        return proc.returncode

    # SIGTERM: saves at the next step boundary and exits with 128 + 15.
    assert start_and_signal(signal.SIGTERM, 6) == 143
    # SIGKILL: no chance to save; the rerun resumes from the last periodic checkpoint.
    assert start_and_signal(signal.SIGKILL, 24) == -signal.SIGKILL
    assert not (killed / "result.json").exists()
    rerun = subprocess.run(command(killed), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resumed from the checkpoint at step" in rerun.stdout

    whole = json.loads((tmp_path / "whole" / "result.json").read_text())
    resumed = json.loads((killed / "result.json").read_text())
    timings = ("tokens_per_s", "compile_s", "train_s", "eval_s", "wall_s")
    assert {k: v for k, v in resumed.items() if k not in timings} == {
        k: v for k, v in whole.items() if k not in timings}  # the same result file, bit for bit
    steps = [json.loads(l)["step"] for l in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 40  # no duplicated lines after resuming


def parts(config):
    """(task, model, optimizer) of a config, as the engine builds them."""
    _, task, model = engine.build(config)
    return task, model, engine.optimizer(config)


def test_tbptt_keeps_the_loss_and_truncates_the_gradient_segment_by_segment():
    config = tiny_config(cell="gru", train_length=11, curriculum="fixed", tbptt=4)
    task, model, _ = parts(config)
    params = model.init(jax.random.key(0))
    batch = task.sample(jax.random.key(1), 3, 11)  # 12 steps: three 4-step segments
    zero = model.initial_state(params, (3,))
    truncated = engine.make_value_and_grad(config, task, model)
    full = engine.make_value_and_grad(dataclasses.replace(config, tbptt=0), task, model)
    (loss_t, (acc_t, final_t, _)), grad_t = jax.jit(truncated)(params, zero, batch)
    (loss_f, (acc_f, final_f, _)), grad_f = jax.jit(full)(params, zero, batch)
    np.testing.assert_allclose(loss_t, loss_f, rtol=1e-6)
    assert acc_t == acc_f
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), final_t,
                           final_f)

    # Reference: each segment's loss from a *constant* start state (forward pass outside grad).
    def reference(params):
        state, total = zero, 0.0
        for start in range(0, 12, 4):
            piece = jax.tree_util.tree_map(lambda x: x[:, start:start + 4], batch)
            _, outputs = model.apply(params, state, piece.inputs)
            nll, _ = evaluate.masked_loss_and_hits(outputs, piece.targets, piece.mask, 2)
            total = total + jnp.sum(nll * piece.mask)
            state, _ = model.apply(jax.lax.stop_gradient(params), state, piece.inputs)
        return total / jnp.sum(batch.mask)

    grad_r = jax.jit(jax.grad(reference))(params)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                           grad_t, grad_r)
    differs = jax.tree_util.tree_map(lambda a, b: float(jnp.max(jnp.abs(a - b))), grad_t, grad_f)
    assert max(jax.tree_util.tree_leaves(differs)) > 1e-4  # truncation changed the gradient


def test_curricula_lengths_and_one_compilation_for_every_length():
    config = tiny_config(curriculum="increasing", steps=8, min_train_length=2, train_length=6)
    key = jax.random.key(0)
    ramp = [int(row_lengths(config, key, jnp.int32(s))[0]) for s in range(7)]
    assert ramp == [2, 3, 4, 5, 6, 6, 6]  # linear up to train_length at step steps // 2
    uniform = row_lengths(dataclasses.replace(config, curriculum="uniform"), key, 0)
    assert 2 <= int(uniform.min()) < int(uniform.max()) <= 6  # batch 4: two lengths at least

    task, model, tx = parts(config)
    traces = []
    counting = task._replace(generate=lambda *a: traces.append(1) or task.generate(*a))
    step = engine.make_train_step(config, counting, model, tx)
    state = engine.init_state(config, model, tx)
    keys = jax.random.split(jax.random.key(1), config.seeds)
    for _ in range(6):  # lengths 2, 3, 4, 5, 6, 6: one bucket, one trace
        state, _ = step(state, keys, config.train_length)
    assert len(traces) == 1


def poison_seed_1(params):
    """Seed 1's output bias set to +inf: its first loss is not finite."""
    head = {**params["head"], "b": params["head"]["b"].at[1].set(jnp.inf)}
    return {**params, "head": head}


def test_a_diverging_seed_is_frozen_at_its_last_parameters_and_the_other_trains():
    config = tiny_config(seeds=2)
    task, model, tx = parts(config)
    state = engine.init_state(config, model, tx)
    state = state._replace(params=poison_seed_1(state.params))
    before = jax.device_get(state.params)
    step = engine.make_train_step(config, task, model, tx)
    keys = jax.random.split(jax.random.key(1), 2)
    for _ in range(2):
        state, metrics = step(state, keys, config.train_length)
    assert list(jax.device_get(state.alive)) == [True, False]
    assert list(jax.device_get(state.diverged_at)) == [-1, 1]
    after = jax.device_get(state.params)
    for old, new in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after)):
        np.testing.assert_array_equal(new[1], old[1])  # frozen, bit for bit
    assert any(not np.array_equal(o[0], n[0]) for o, n in
               zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after)))


def test_state_passing_starts_each_batch_from_the_previous_final_states():
    config = tiny_config(initial_state="state_passing", seeds=1, curriculum="fixed")
    task, model, tx = parts(config)
    state = engine.init_state(config, model, tx)
    params = jax.tree_util.tree_map(lambda x: x[0], jax.device_get(state.params))
    key = jax.random.split(jax.random.key(1), 1)
    state, _ = engine.make_train_step(config, task, model, tx)(state, key,
                                                                 config.train_length)
    # Reference: the first step's batch, from the zero state, through the initial parameters.
    @jax.jit
    def reference(params, key):
        batch_key, length_key, _ = jax.random.split(jax.random.fold_in(key, 0), 3)
        lengths = row_lengths(config, length_key, 0)
        batch = task.sample_bucket(batch_key, lengths, config.train_length)
        return model.apply(params, model.initial_state(params, (config.batch_size,)),
                           batch.inputs)[0]

    final = reference(params, key[0])
    jax.tree_util.tree_map(lambda got, want: np.testing.assert_allclose(got[0], want, atol=1e-6),
                           state.carry, final)


def test_everything_on_regression_bf16_fitted_noise_tbptt_and_a_diverged_seed(tmp_path,
                                                                            monkeypatch):
    """All options composed in one run; the diverged seed is reported, the other scored."""
    config = tiny_config(cell="lru", task="adding", train_length=8, min_train_length=2,
                         curriculum="increasing", tbptt=3, precision="bfloat16",
                         initial_state="fitted_noise", eval_lengths=(8, 16))
    init = step_lib.init_state
    monkeypatch.setattr(step_lib, "init_state", lambda *args: init(*args)._replace(
        params=poison_seed_1(init(*args).params)))
    record = engine.run(config, str(tmp_path))
    assert record["status"] == "diverged" and record["seed_status"] == ["ok", "diverged"]
    assert record["diverged_at_step"] == [None, 1]
    for entry in record["per_length"].values():
        assert np.isfinite(entry["loss"][0]) and 0 <= entry["accuracy"][0] <= 1
    assert json.loads((tmp_path / "result.json").read_text())["seed_status"][1] == "diverged"
    line = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert line["alive"] == [True, False]


def test_four_devices_give_the_single_device_numbers(tiny_run, tmp_path):
    """Seeds x batch rows sharded over 4 (forced host) devices: same results as one device."""
    code = ("import sys; from tests.test_train import tiny_config; from seqbench import engine; "
            "engine.run(tiny_config(), sys.argv[1])")
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} "
                                      "--xla_force_host_platform_device_count=4"}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "devices: {'seed': 2, 'batch': 2}" in proc.stdout
    sharded = json.loads((tmp_path / "result.json").read_text())
    single, _ = tiny_run
    assert sharded["environment"]["device_count"] == "4"
    for length, entry in single["per_length"].items():
        assert sharded["per_length"][length]["accuracy"] == entry["accuracy"]
        np.testing.assert_allclose(sharded["per_length"][length]["loss"], entry["loss"],
                                   rtol=1e-5)


def test_config_file_then_flags(tmp_path):
    path = tmp_path / "preset.py"
    path.write_text("def get_config(arg='full'):\n"
                    "    return dict(cell='gru', steps=3 if arg == 'smoke' else 300,\n"
                    "                eval_lengths=[4, 8], task_hparams={})\n")
    fields, _ = engine.load_config_file(f"{path}:smoke")
    assert fields["steps"] == 3 and engine.from_fields(fields).eval_lengths == (4, 8)
    assert engine.load_config_file(str(path))[0]["steps"] == 300
    path.write_text("def get_config():\n    return dict(cel='gru')\n")
    with pytest.raises(ValueError, match=r"unknown fields \['cel'\]; valid: \['batch_size'"):
        engine.load_config_file(str(path))


def test_bfloat16_loss_is_close_to_float32_and_the_master_weights_stay_float32():
    """bf16 parameters/activations (fp32 state): the loss moves by bf16 rounding only (every
    cell measured within 1% at width 16; BUILD_NOTES), gradients reach fp32 parameters."""
    config = tiny_config(cell="retnet", precision="bfloat16", width=16)
    task, model, _ = parts(config)
    params = model.init(jax.random.key(0))
    batch = task.sample(jax.random.key(1), 4, 6)
    zero = model.initial_state(params, (4,))
    value_and_grad = lambda c: jax.jit(jax.value_and_grad(engine.make_loss(c, task, model),
                                                          has_aux=True))(params, zero, batch)
    (loss16, _), grads = value_and_grad(config)
    (loss32, _), _ = value_and_grad(dataclasses.replace(config, precision="float32"))
    assert abs(float(loss16) - float(loss32)) < 0.02 * float(loss32)
    assert float(loss16) != float(loss32)  # the forward pass really ran in bf16
    for g in jax.tree_util.tree_leaves(grads):
        assert g.dtype in (jnp.float32, jnp.complex64) and bool(jnp.all(jnp.isfinite(g)))


def test_uniform_batch_draws_one_length_per_step_and_compiles_one_program_per_bucket():
    """Delétang et al.'s curriculum: the host draws the step's length, every row has it, and
    the step runs at the length's bucket (multiples of 8), not padded to train_length."""
    config = tiny_config(curriculum="uniform_batch", train_length=20, seeds=1)
    curriculum = curricula.CURRICULA["uniform_batch"]
    lengths = [curriculum.batch_length(1, 20, config.seed, s, config.steps) for s in range(200)]
    assert set(lengths) == set(range(1, 21))  # every length of U[1, 20] is drawn
    assert lengths == [curriculum.batch_length(1, 20, config.seed, s, config.steps)
                       for s in range(200)]  # a function of (seed, step): resumable
    assert curricula.buckets(curriculum, 1, 20) == [8, 16, 20]
    task, model, tx = parts(config)
    shapes = []
    counting = task._replace(generate=lambda key, n, bucket: shapes.append(bucket) or
                             task.generate(key, n, bucket))
    state = engine.init_state(config, model, tx)
    keys = jax.random.split(jax.random.key(1), 1)
    steps = {b: engine.make_train_step(config, counting, model, tx, bucket=b) for b in (8, 20)}
    for length, bucket in ((3, 8), (7, 8), (17, 20), (20, 20)):
        state, _ = steps[bucket](state, keys, length)
    assert shapes == [8, 20]  # one trace per bucket, whatever the length
    captured = []
    probe = task._replace(generate=lambda key, n, bucket: captured.append(n) or
                          task.generate(key, n, bucket))
    jax.eval_shape(engine.make_train_step(config, probe, model, tx, bucket=8), state, keys, 5)
    assert captured[0].shape == (config.batch_size,)


def test_a_one_length_per_batch_run_logs_each_step_s_length(tmp_path):
    """Its metrics lines and progress lines say which length the step's numbers are of."""
    config = tiny_config(curriculum="uniform_batch", train_length=20, seeds=1, steps=6,
                         eval_lengths=(3,))
    with logs.captured() as lines:
        engine.run(config, str(tmp_path))
    metrics = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    drawn = [curricula.CURRICULA["uniform_batch"].batch_length(1, 20, config.seed, m["step"] - 1,
                                                               config.steps) for m in metrics]
    assert [m["batch_length"] for m in metrics] == drawn and [m["step"] for m in metrics] == \
        [2, 4, 6]
    progress = [line for line in lines if line.startswith("step ")]
    assert [f"(length {n})" in line for line, n in zip(progress, drawn)] == [True] * 3


def test_a_config_file_is_checked_like_the_flags(tmp_path):
    """One declaration, one check: file values out of range are one line naming the field."""
    for fields, message in ((dict(steps=0), "steps must be >= 1; got 0"),
                            (dict(batch_size=0), "batch_size must be >= 1"),
                            (dict(learning_rate=-1.0), "learning_rate must be >= 0.0"),
                            (dict(learning_rate=float("nan")), "learning_rate must be a finite"),
                            (dict(warmup_steps=-5), "warmup_steps must be >= 0"),
                            (dict(keep_checkpoints=0), "keep_checkpoints must be >= 1"),
                            (dict(log_every=0), "log_every must be >= 1"),
                            (dict(eval_lengths=[8, 0]), "eval_lengths must be integers in \\[1, "),
                            (dict(norm="yes"), "norm must be true or false"),
                            (dict(width=2.5), "width must be an integer"),
                            (dict(curriculum="sometimes"), "curriculum must be one of")):
        path = tmp_path / "preset.py"
        body = repr(fields).replace("nan", "float('nan')")
        path.write_text(f"def get_config():\n    return {body}\n")
        fields_read, _ = engine.load_config_file(str(path))
        with pytest.raises(ValueError, match=message):
            engine.from_fields(fields_read)
    path.write_text("def get_config(:\n")
    with pytest.raises(ValueError, match="failed to run: SyntaxError"):
        engine.load_config_file(str(path))
    path.write_text("def get_config():\n    raise RuntimeError('boom')\n")
    with pytest.raises(ValueError, match="get_config\\(''\\) raised RuntimeError: boom"):
        engine.load_config_file(str(path))


def test_every_flag_comes_from_the_one_declaration():
    from absl import flags
    values = flags.FlagValues()
    engine.config.define_flags(values)
    for name, field in engine.config.FIELDS.items():
        assert field.metadata["help"] in values[name].help and "Config." not in values[name].help
    with pytest.raises(flags.IllegalFlagValueError, match="steps"):
        values(["prog", "--steps=0"])  # bounds come with the declaration


@pytest.mark.slow
def test_a_learning_rate_grid_is_one_program_whose_members_are_the_single_rate_runs(tmp_path):
    """--seeds=2 --learning_rates=a,b trains 4 members in one program; each rate's members
    are the seeds a run at that single rate trains (same keys, same data), up to float
    rounding of a traced peak rate against a constant one; the leaderboard splits the grid
    into the single-rate records."""
    from seqbench import selection
    rates = (1e-2, 3e-3)
    grid = engine.run(tiny_config(learning_rates=rates), str(tmp_path / "grid"))
    assert grid["seeds"] == 4 and [m["learning_rate"] for m in grid["members"]] == [
        1e-2, 1e-2, 3e-3, 3e-3] and [m["seed"] for m in grid["members"]] == [0, 1, 0, 1]
    parts = selection.split_grid(json.loads((tmp_path / "grid" / "result.json").read_text()))
    for rate, part in zip(rates, parts):
        single = engine.run(tiny_config(learning_rate=rate), str(tmp_path / f"lr{rate}"))
        assert part["config_hash"] == single["config_hash"] and part["seeds"] == 2
        for length, entry in single["per_length"].items():
            np.testing.assert_allclose(part["per_length"][length]["loss"], entry["loss"],
                                       rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(part["score"], single["score"], atol=1e-6)
    assert grid["per_length"]["12"]["loss"][0] != grid["per_length"]["12"]["loss"][2]


def test_a_run_resumed_after_its_last_step_compiles_no_training_step(tiny_run, tmp_path,
                                                                     monkeypatch):
    """Killed during evaluation: the rerun restores the final checkpoint and only evaluates
    (compiling the training steps again would cost minutes for nothing); the same result."""
    record, source = tiny_run
    workdir = tmp_path / "killed_in_eval"
    shutil.copytree(source, workdir)
    os.remove(workdir / "result.json")

    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled a training step after the last step")

    monkeypatch.setattr(loop, "make_train_step", no_compiling)
    again = engine.run(tiny_config(), str(workdir))
    assert again["per_length"] == record["per_length"] and again["steps_run"] == 4


def test_clip_norm_0_is_plain_adamw_and_warmup_0_is_cosine_alone():
    """Zoology's optimiser: AdamW with cosine decay from the first step, no clipping. Updates
    equal optax's own chain exactly, over steps where the gradient norm is far above 1."""
    import optax

    config = tiny_config(clip_norm=0.0, warmup_steps=0, steps=10, learning_rate=1e-2)
    ours = step_lib.optimizer(config)
    reference = optax.adamw(optax.cosine_decay_schedule(1e-2, 10), weight_decay=0.01)
    params = {"w": jnp.arange(3.0)}
    state_a, state_b = ours.init(params), reference.init(params)
    for scale in (100.0, -50.0, 300.0):
        grads = {"w": scale * jnp.array([1.0, -2.0, 0.5])}
        update_a, state_a = ours.update(grads, state_a, params)
        update_b, state_b = reference.update(grads, state_b, params)
        np.testing.assert_array_equal(update_a["w"], update_b["w"])
    assert len(step_lib.optimizer(tiny_config()).init(params)) == 2  # clipping, then AdamW


def test_a_cell_solved_in_parallel_over_time_trains_like_the_sequential_one_and_logs_it(
        tiny_run, tmp_path):
    """`scan_impl="deer"` computes the LSTM's scan by Newton iterations with implicit-function
    gradients: the same training up to float32 rounding (BPTT's gradient at the same states),
    and metrics.jsonl and the progress line report the solves."""
    sequential, sequential_dir = tiny_run
    config = tiny_config(cell_hparams={"scan_impl": "deer"})  # tol 1e-6
    with logs.captured() as lines:
        record = engine.run(config, str(tmp_path))
    metrics = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    reference = [json.loads(l) for l in (sequential_dir / "metrics.jsonl").read_text().splitlines()]
    for line, want in zip(metrics, reference):
        np.testing.assert_allclose(line["loss"], want["loss"], rtol=1e-4)
        assert all(1 <= i < 7 for i in line["solver_iterations"])  # T = 7 (6 bits + query)
        assert all(0 <= r <= 1e-6 for r in line["solver_residual"])
    assert "solver_iterations" not in reference[0]
    assert any(" solver " in line and " it, residual " in line for line in lines)
    for length, entry in record["per_length"].items():
        np.testing.assert_allclose(entry["accuracy"], sequential["per_length"][length]["accuracy"],
                                   atol=1 / 8 + 1e-9)  # at most one of 8 test sequences flips


def rtrl_problem(**overrides):
    """A config, its (task, model), random parameters and a 12-step batch (three segments)."""
    fields = dict(cell="mingru", task="parity_check", train_length=11, curriculum="fixed",
                  tbptt=4, gradient="rtrl", input_encoding="one_hot", norm=False,
                  residual=False, mlp_expand=0)
    config = tiny_config(**{**fields, **overrides})
    task, model, _ = parts(config)
    params = model.init(jax.random.key(2))
    batch = task.sample(jax.random.key(3), 3, 11)
    return config, task, model, params, batch


def gradient_error(grads, want):
    scale = max(1.0, max(float(jnp.max(jnp.abs(w))) for w in jax.tree_util.tree_leaves(want)))
    return max(jax.tree_util.tree_leaves(jax.tree_util.tree_map(
        lambda g, w: float(jnp.max(jnp.abs(g - w))) / scale, grads, want)))


def test_rtrl_over_segments_gives_the_full_bptt_gradient_of_a_one_layer_model():
    """gradient='rtrl', tbptt=4: the one-layer one-hot model's gradient is full BPTT's (float32,
    1e-5 of the largest entry); truncated BPTT over the same segments is not."""
    config, task, model, params, batch = rtrl_problem()
    zero = model.initial_state(params, (3,))
    value_and_grad = lambda c: jax.jit(engine.make_value_and_grad(c, task, model))(
        params, zero, batch)
    (loss, (accuracy, final, _)), grads = value_and_grad(config)
    (want_loss, (want_accuracy, want_final, _)), want = value_and_grad(
        dataclasses.replace(config, tbptt=0, gradient="bptt"))
    _, truncated = value_and_grad(dataclasses.replace(config, gradient="bptt"))
    np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
    assert accuracy == want_accuracy
    np.testing.assert_allclose(final[0], want_final[0], atol=1e-6)  # the plain state comes back
    assert gradient_error(grads, want) <= 1e-5
    assert gradient_error(truncated, want) > 1e-3


def test_rtrl_layerwise_rule_for_a_deep_model_with_an_embedding_and_norms():
    """gradient='rtrl_layerwise' on two layers (embedding, norms, MLPs): the gradient equals BPTT
    of Σ_segments loss(segment | start state), where layer l's start state is computed over the
    whole prefix with every parameter but layer l's cell held constant — each layer's own
    recurrence exact, everything else cut at the boundaries (`cells.rtrl`)."""
    config, task, model, params, batch = rtrl_problem(
        gradient="rtrl_layerwise", depth=2, input_encoding="embedding", norm=True, residual=True,
        mlp_expand=2)
    zero = model.initial_state(params, (3,))
    (_, _), grads = jax.jit(engine.make_value_and_grad(config, task, model))(params, zero, batch)

    def reference(params):
        total = 0.0
        for begin in range(0, 12, 4):
            start = []
            for layer in range(2):
                only_own = jax.tree_util.tree_map(jax.lax.stop_gradient, params)
                only_own["blocks"][layer]["cell"] = params["blocks"][layer]["cell"]
                start.append(model.apply(only_own, zero, batch.inputs[:, :begin])[0][layer]
                             if begin else zero[layer])
            _, outputs = model.apply(params, start, batch.inputs[:, begin:begin + 4])
            piece = slice(begin, begin + 4)
            nll, _ = evaluate.masked_loss_and_hits(outputs, batch.targets[:, piece],
                                                   batch.mask[:, piece], 2)
            total = total + jnp.sum(jnp.where(batch.mask[:, piece], nll, 0.0))
        return total / jnp.sum(batch.mask)

    want = jax.jit(jax.grad(reference))(params)
    assert gradient_error(grads, want) <= 1e-5
    full = jax.grad(lambda p: engine.make_loss(config, task, model)(p, zero, batch)[0])(params)
    # The top layer's own recurrence and the head see their whole past exactly...
    for part in (lambda g: g["blocks"][1]["cell"], lambda g: g["head"]):
        assert gradient_error(part(grads), part(full)) <= 1e-5
    assert gradient_error(grads["embed"], full["embed"]) > 1e-3  # ...what lies below does not


def test_rtrl_configuration_errors_name_what_is_valid():
    with pytest.raises(ValueError, match="set tbptt=K > 0"):
        engine.build(dataclasses.replace(rtrl_problem()[0], tbptt=0))
    with pytest.raises(ValueError, match="Cells that have one: lru, mingru, minlstm, rg_lru"):
        rtrl_problem(cell="lstm")
    with pytest.raises(ValueError, match=r"got depth=2, norm=True\. Use gradient='rtrl_layerwise'"):
        rtrl_problem(depth=2, norm=True)


def test_training_with_rtrl_segments_matches_bptt():
    """Twenty AdamW steps with gradient='rtrl' over 4-step segments and with plain BPTT end at
    the same losses (the gradients agree to float32 rounding; 1e-3 allows its growth)."""
    config = rtrl_problem(steps=20, seeds=2)[0]
    losses = {}
    for name, c in (("rtrl", config), ("bptt", dataclasses.replace(config, tbptt=0,
                                                                   gradient="bptt"))):
        task, model, tx = parts(c)
        state = engine.init_state(c, model, tx)
        keys = step_lib.member_keys(jax.random.key(c.seed + 1), c)
        step = engine.make_train_step(c, task, model, tx)
        for _ in range(c.steps):
            state, metrics = step(state, keys, c.train_length)
        losses[name] = np.asarray(metrics["loss"])
    np.testing.assert_allclose(losses["rtrl"], losses["bptt"], atol=1e-3)


def tensorboard_scalars(folder):
    """{tag: [(step, value), ...]} of the event files in `folder`, by the tensorboard package's
    own reader (purging what a restart's `purge_step` discards, as TensorBoard does)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    reader = EventAccumulator(str(folder), purge_orphaned_data=True)
    reader.Reload()
    return {tag: [(e.step, e.value) for e in reader.Scalars(tag)]
            for tag in reader.Tags()["scalars"]}


def test_tensorboard_files_hold_the_metrics_lines_and_the_evaluation(tiny_run):
    record, workdir = tiny_run
    scalars = tensorboard_scalars(workdir / "tensorboard")
    lines = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
    for seed in (0, 1):
        for key in ("loss", "accuracy", "grad_norm"):
            want = [(line["step"], line[key][seed]) for line in lines]
            got = scalars[f"train/{key}/seed{seed}"]
            assert [s for s, _ in got] == [s for s, _ in want]
            np.testing.assert_allclose([v for _, v in got], [v for _, v in want], rtol=1e-6)
        curve = scalars[f"eval/accuracy/seed{seed}"]
        assert [s for s, _ in curve] == [3, 6, 12]
        np.testing.assert_allclose([v for _, v in curve], [
            record["per_length"][str(n)]["accuracy"][seed] for n in (3, 6, 12)], rtol=1e-6)
        profile = record["per_length"]["12"]["loss_by_position"]
        assert [s for s, _ in scalars[f"eval/loss_by_position/seed{seed}"]] == [
            start for start, loss in zip(profile["bin_edges"], profile["loss"]) if loss]
    assert "train/solver_iterations/seed0" not in scalars


def test_a_resumed_run_s_tensorboard_lines_replace_those_past_its_checkpoint(tmp_path):
    """The interrupted process logged steps 2, 4, 6; the rerun resumes from the checkpoint of
    step 4 and logs 6 and 8 again: the reader shows each step once, the rerun's values."""
    from seqbench import tensorboard

    line = lambda step, loss: {"step": step, "loss": [loss], "accuracy": [0.5],
                               "grad_norm": [1.0], "tokens_per_s": 1.0}
    first = tensorboard.Writer(str(tmp_path), ["seed0"])
    for step in (2, 4, 6):
        first.metrics(line(step, 1.0))
    first.close()
    second = tensorboard.Writer(str(tmp_path), ["seed0"], purge_step=5)
    for step in (6, 8):
        second.metrics(line(step, 2.0))
    second.close()
    assert tensorboard_scalars(tmp_path / "tensorboard")["train/loss/seed0"] == [
        (2, 1.0), (4, 1.0), (6, 2.0), (8, 2.0)]


def test_tensorboard_without_its_package_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if not installed
    with pytest.raises(ValueError, match=r"^--tensorboard needs the tensorboardX package: "
                                         r"pip install -e '\.\[tensorboard\]'$"):
        engine.run(tiny_config(tensorboard=True), str(tmp_path))
    assert not os.listdir(tmp_path)  # before anything was written
