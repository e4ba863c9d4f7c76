"""The sweep runner and the experiment presets: loading, checking, resuming, bad input."""

import dataclasses
import fcntl
import glob
import json
import os
import runpy
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from seqbench import cells, engine, logs, results, sweep
from seqbench.engine import workdir as workdir_lib

PRESETS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "experiments",
                                        "configs", "*.py")))
NAMES = [os.path.basename(p)[:-3] for p in PRESETS]


def test_the_issue_s_six_presets_are_there():
    assert NAMES == ["chomsky", "chomsky_dcf", "length_interventions",
                     "length_interventions_lm", "mqar", "parallel_in_time",
                     "rtrl", "state_tracking", "timescales_curriculum"]


@pytest.mark.parametrize("path", PRESETS, ids=NAMES)
@pytest.mark.parametrize("variant", ["full", "smoke", "paper"])
def test_every_variant_of_every_preset_builds_before_anything_compiles(path, variant, tmp_path):
    runs = sweep.load(f"{path}:{variant}")
    assert len(runs) >= 2 and len({name for name, _ in runs}) == len(runs)
    sweep.check(runs, str(tmp_path))  # train.build on every run: names, fields and lengths valid
    if variant == "smoke":
        assert all(config.steps <= 5 and config.width <= 16 for _, config in runs)
    # train --config reads the same file and gets a complete run from get_config alone.
    engine.build(engine.from_fields(engine.load_config_file(f"{path}:{variant}")[0]))


@pytest.mark.parametrize("path", PRESETS, ids=NAMES)
def test_the_docstring_gives_the_command_the_claim_and_the_result(path):
    text = open(path).read()
    name = os.path.basename(path)
    assert f"python -m seqbench.sweep --config=experiments/configs/{name}" in text
    assert "Published" in text and "seqbench got" in text


def write_preset(folder, body):
    path = folder / "preset.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


TINY = """
    def get_config(arg=""):
        return dict(cell="lstm", task="parity_check", width=8, depth=1, train_length=4,
                    steps=2, batch_size=4, seeds=2, eval_lengths=(4, 8), eval_size=8,
                    log_every=2)

    def get_sweep(arg=""):
        return [dict(name="lstm"), dict(name="lru", cell="lru"),
                dict(name="lstm-noise", init_from="lstm", initial_state="noise", steps=1,
                     eval_lengths=(4,))]  # post-trains the first run
"""


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """The TINY preset swept once by the local launcher: (runs, records, lines, folder)."""
    folder = tmp_path_factory.mktemp("tiny_sweep")
    runs = sweep.load(write_preset(folder, TINY))
    with logs.captured() as lines:
        records = sweep.sweep(runs, str(folder / "runs"))
    return runs, records, lines, folder


def test_a_finished_run_is_told_by_its_score_else_by_its_fit():
    """Means over the seeds that did not diverge, one per learning rate of a grid run."""
    record = {"score": [0.5844, 0.5844], "score_mean": 0.5844,
              "in_distribution_accuracy": [0.9, 1.0], "seed_status": ["ok", "ok"]}
    assert sweep.result_text(record) == "score 0.584 over 2 seeds"
    mqar = {"score": [None] * 3, "score_mean": None,
            "in_distribution_accuracy": [0.798, 0.984, 0.1],
            "seed_status": ["ok", "ok", "diverged"]}
    assert sweep.result_text(mqar) == "in-distribution accuracy 0.891 over 2 seeds"
    grid = {**mqar, "in_distribution_accuracy": [1.0, 0.2, 0.4, 0.1], "seed_status": ["ok"] * 4,
            "members": [{"learning_rate": rate, "seed": seed}
                        for rate in (0.002154434690031882, 0.00046415888336127773)
                        for seed in (0, 1)]}
    assert sweep.result_text(grid) == ("in-distribution accuracy 0.600 at lr 0.00215 over "
                                       "2 seeds; 0.250 at lr 0.000464 over 2 seeds")
    assert sweep.result_text({**mqar, "seed_status": ["diverged"] * 3}) == \
        "no result (every seed diverged)"


def test_the_eta_counts_a_resumed_run_at_its_whole_length(tmp_path):
    """A run resumed at step 26,805 of 30,000 that took 765 s here would take ~7,183 s whole
    (an ETA from the 765 s had said 13 min for an 82-min run); one that only evaluated here
    (stopped during evaluation) says nothing of a run's length. Its resume step is the newest
    checkpoint's folder name (orbax's temporaries are not steps)."""
    assert sweep.whole_run_seconds(765.0, 30_000, 26_805) == pytest.approx(7_183.1, abs=0.1)
    assert sweep.whole_run_seconds(100.0, 500, 0) == 100.0
    assert sweep.whole_run_seconds(12.0, 500, 500) is None
    assert workdir_lib.newest_checkpoint_step(str(tmp_path)) is None
    for name in ("25000", "26805", "9000", "27000.orbax-checkpoint-tmp-1"):
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
    assert workdir_lib.newest_checkpoint_step(str(tmp_path)) == 26_805


@pytest.mark.slow
def test_a_sweep_trains_every_run_and_a_rerun_skips_them(tiny_sweep):
    runs, records, lines, tmp_path = tiny_sweep
    lines = [line for line in lines if line.startswith("[")]  # the sweep's line per run
    assert [r["cell"] for r in records] == ["lstm", "lru", "lstm"]
    assert lines[0].startswith("[1/3] lstm: score") and lines[1].startswith("[2/3] lru: score")
    assert "; 2 runs left, ETA " in lines[0] and "; 1 run left, ETA " in lines[1]
    assert "left" not in lines[2]  # the last one
    for name, record in zip(("lstm", "lru", "lstm-noise"), records):
        on_disk = json.loads((tmp_path / "runs" / name / "result.json").read_text())
        assert on_disk["config_hash"] == record["config_hash"]
    # The post-training run's source resolved to the sweep's folder; its hash names the source.
    post = records[2]["config"]
    assert post["init_from"] == os.path.join(str(tmp_path / "runs"), "lstm")
    assert post["post_trained_from"] == records[0]["config_hash"]
    # A rerun skips every run, the post-training one included: the config it was checked with
    # before its source ran is the one it recorded.
    with logs.captured() as lines:
        again = sweep.sweep(runs, str(tmp_path / "runs"))
    assert [r["config_hash"] for r in again] == [r["config_hash"] for r in records]
    assert len(lines) == 3 and all("skipped, already done" in line for line in lines)
    # evaluated at its training length only: no score, its in-distribution accuracy instead
    fit = np.mean(records[2]["in_distribution_accuracy"])
    assert lines[2].endswith(f"(in-distribution accuracy {fit:.3f} over 2 seeds)")
    # Another configuration in a finished folder is an error, never an overwrite.
    changed = [(name, engine.Config(**{**config.__dict__, "steps": 3})) for name, config in runs]
    with pytest.raises(ValueError, match=r"holds a result of another configuration \(steps=2 "
                                         r"there, 3 here\); move it away or use another --runs"):
        sweep.sweep(changed, str(tmp_path / "runs"))
    with pytest.raises(ValueError, match="run 'lstm-noise': init_from='lstm' must name a run "
                                         "listed before it"):
        sweep.check(runs[::-1], str(tmp_path / "other"))
    # A fresh clone has results but no checkpoints: a finished post-training run is still
    # recognised, one to redo fails before anything trains.
    shutil.rmtree(tmp_path / "runs" / "lstm" / "checkpoints")
    sweep.check(runs, str(tmp_path / "runs"))
    shutil.rmtree(tmp_path / "runs" / "lstm-noise")
    with pytest.raises(ValueError, match="run 'lstm-noise': init_from: .* has no checkpoint of "
                                         "its final step 2.* move its result.json away"):
        sweep.check(runs, str(tmp_path / "runs"))
    # What the message says works: the source trains again from its seeds, then is post-trained,
    # with the results of the first sweep.
    os.rename(tmp_path / "runs" / "lstm" / "result.json", tmp_path / "lstm-result.json")
    redone = sweep.sweep(runs, str(tmp_path / "runs"))
    for first, second in zip(records, redone):
        assert second["per_length"] == first["per_length"], second["cell"]


@pytest.mark.slow
def test_processes_sharing_a_sweep_skip_each_other_s_runs_and_read_what_they_finished(
        tiny_sweep, tmp_path, monkeypatch):
    """Workers: a run whose folder another process has locked is skipped, and so are the runs
    that post-train it, directly or through another; the others go on. A run another process
    finished after this one started is read from its folder, not trained or evaluated again."""
    runs, records, _, _ = tiny_sweep
    chain = ("lstm-noise-again", dataclasses.replace(runs[2][1], init_from="lstm-noise"))

    def finish(name, record):  # as another worker leaves a finished run
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "result.json").write_text(json.dumps(results.finite_or_null(record)))

    finish("lru", records[1])
    (tmp_path / "lstm").mkdir()
    with open(tmp_path / "lstm" / ".lock", "w") as holder:  # "another worker" trains lstm
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder.write("4242\n")
        holder.flush()
        with logs.captured() as lines:
            got = sweep.sweep(runs + [chain], str(tmp_path))
        # --dry_run's plan: each run's state, an unfinished one's last whole metrics line.
        (tmp_path / "lstm" / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2, "lo')
        assert sweep.plan(sweep.check(runs + [chain], str(tmp_path)), str(tmp_path)) == [
            "lstm: lstm on parity_check, training in process 4242, step 1 of 2 logged",
            f"lru: lru on parity_check, done ({sweep.result_text(records[1])})",
            "lstm-noise: lstm on parity_check, to run",
            "lstm-noise-again: lstm on parity_check, to run",
            "1 done, 1 training, 2 to run of 4"]
        os.remove(tmp_path / "lstm" / "metrics.jsonl")
    assert workdir_lib.holder(str(tmp_path / "lstm")) is None  # released with the process's file
    assert workdir_lib.holder(str(tmp_path / "no such run")) is None
    assert got[0] is None and got[2] is None and got[3] is None
    assert got[1]["config_hash"] == records[1]["config_hash"]
    assert lines[:4] == [
        "[1/4] lstm: skipped, in use by process 4242 (another sweep trains it)",
        f"[2/4] lru: skipped, already done ({sweep.result_text(records[1])})",
        "[3/4] lstm-noise: skipped, its source lstm trains in another process",
        "[4/4] lstm-noise-again: skipped, its source lstm trains in another process"]
    assert "3 run(s) left to other processes: lstm, lstm-noise, lstm-noise-again;" in lines[4]
    assert not (tmp_path / "lstm" / "config.json").exists()
    # Finished by another process between this one's check and its lock: returned untouched.
    before = os.stat(tmp_path / "lru" / "result.json").st_mtime_ns
    again = engine.run(runs[1][1], str(tmp_path / "lru"), keep_finished=True)
    assert again["config_hash"] == records[1]["config_hash"]
    assert os.stat(tmp_path / "lru" / "result.json").st_mtime_ns == before
    assert sorted(os.listdir(tmp_path / "lru")) == [".lock", "result.json"]
    # Every run finished by other workers after this sweep's start: read, none trained.
    for (name, _), record in zip(runs, records):
        finish(name, record)
    real_finished, calls = sweep.finished, []

    def finished_late(workdir, config_json):  # the start of the sweep sees nothing finished
        calls.append(workdir)
        return real_finished(workdir, config_json) if len(calls) > 2 * len(runs) else None

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(sweep, "finished", finished_late)
    monkeypatch.setattr(engine, "run", no_training)
    got = sweep.sweep(runs, str(tmp_path))
    assert [r["config_hash"] for r in got] == [r["config_hash"] for r in records]


@pytest.mark.parametrize("body, message", [
    ("def get_config(arg=''):\n    return {}\n", "defines no get_sweep()"),
    ("def get_config(arg=''):\n    return {}\ndef get_sweep(arg=''):\n    return [{}]\n",
     "has no 'name'"),
    ("def get_config(arg=''):\n    return {}\n"
     "def get_sweep(arg=''):\n    return [dict(name='a'), dict(name='a')]\n",
     "duplicate run name 'a'"),
    ("def get_config(arg=''):\n    return {}\n"
     "def get_sweep(arg=''):\n    return [dict(name='a', widht=3)]\n",
     "sets unknown fields ['widht']"),
    ("def get_config(arg=''):\n    return {}\n"
     "def get_sweep(arg=''):\n    return [dict(name='../a')]\n", "is not a folder name"),
])
def test_bad_presets_are_named(body, message, tmp_path):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        sweep.load(write_preset(tmp_path, body))


def test_a_bad_run_fails_the_command_with_one_line_before_anything_trains(tmp_path):
    preset = write_preset(tmp_path, TINY.replace('dict(name="lru", cell="lru")',
                                                 'dict(name="x", cell="lsmt")'))
    result = subprocess.run(
        [sys.executable, "-m", "seqbench.sweep", f"--config={preset}", f"--runs={tmp_path}/r"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "run 'x'" in lines[0] and "unknown cell 'lsmt'" in lines[0]
    assert not os.path.exists(tmp_path / "r" / "lstm" / "result.json")


def test_the_readme_s_main_job_is_the_regular_slice_of_the_chomsky_preset():
    runs = sweep.load(os.path.join(os.path.dirname(PRESETS[0]), "chomsky.py:main"))
    assert [(c.cell, c.task, c.seeds) for _, c in runs] == [
        ("elman", "parity_check", 3), ("lstm", "parity_check", 3), ("attention", "parity_check", 3)]


def test_the_longer_chomsky_runs_are_full_s_runs_trained_longer(tmp_path):
    """Each "longer" run is the "full" run of its cell, task and rate with 10x the steps (the last
    100x), and a label naming that, nothing else changed, so the two compare as a learning
    curve."""
    path = os.path.join(os.path.dirname(PRESETS[0]), "chomsky.py")
    full = dict(sweep.load(f"{path}:full"))
    longer = sweep.load(f"{path}:longer")
    sweep.check(longer, str(tmp_path))
    assert [name for name, _ in longer] == ["elman-30k-modular_arithmetic-lr0.001",
                                            "lstm-30k-modular_arithmetic-lr0.003",
                                            "elman-bare-30k-modular_arithmetic-lr0.001",
                                            "lstm-30k-cycle_navigation-lr0.003",
                                            "elman-30k-cycle_navigation-lr0.001",
                                            "lstm-bare-30k-cycle_navigation-lr0.003",
                                            "lstm-bare-30k-modular_arithmetic-lr0.003",
                                            "elman-bare-300k-modular_arithmetic-lr0.001"]
    for name, config in longer:
        suffix = "-300k" if "-300k" in name else "-30k"
        before = full[name.replace(suffix, "")]
        assert config.label == before.label + suffix
        assert config.steps == {"-30k": 10, "-300k": 100}[suffix] * before.steps
        assert {**config.__dict__, "steps": before.steps, "label": before.label,
                "log_every": before.log_every} == before.__dict__


def test_the_body_ablation_changes_full_s_lstm_run_one_part_then_cumulatively(tmp_path):
    """Each "body" run is "full"'s LSTM cycle_navigation run at 3e-3 with one part of the body
    set to the bare model's (and a label naming it), nothing else changed; then the parts
    cumulatively (lstm-bare-w128 is "full"'s bare LSTM run but for the width); then the bare
    model on 10 other seeds at both widths."""
    path = os.path.join(os.path.dirname(PRESETS[0]), "chomsky.py")
    full = dict(sweep.load(f"{path}:full"))
    before = full["lstm-cycle_navigation-lr0.003"]
    body = sweep.load(f"{path}:body")
    sweep.check(body, str(tmp_path))
    linear_head = {"mlp_expand": 0, "norm": False}
    adam = {"lr_schedule": "constant", "weight_decay": 0.0}
    one_hot = {"input_encoding": "one_hot", "residual": False}
    changed = {"lstm-no-mlp": {"mlp_expand": 0}, "lstm-no-norm": {"norm": False},
               "lstm-adam": adam, "lstm-no-residual": {"residual": False},
               "lstm-w256": {"width": 256}, "lstm-one-hot": one_hot,
               "lstm-linear-head": linear_head, "lstm-linear-head-adam": {**linear_head, **adam},
               "lstm-bare-w128": {**linear_head, **adam, **one_hot},
               "lstm-linear-head-adam-w256": {**linear_head, **adam, "width": 256}}
    more = ("lstm-bare-w128-10more", "lstm-bare-10more")
    assert [name for name, _ in body] == [f"{label}-cycle_navigation-lr0.003"
                                          for label in (*changed, *more)]
    for (name, config), (label, fields) in zip(body, changed.items()):
        assert config.label == label and all(getattr(before, f) != v for f, v in fields.items())
        assert config.__dict__ == {**before.__dict__, **fields, "label": label}
    bare = full["lstm-bare-cycle_navigation-lr0.003"]
    runs = dict(body)
    assert {**runs["lstm-bare-w128-cycle_navigation-lr0.003"].__dict__, "width": 256,
            "label": bare.label} == bare.__dict__
    # 10 seeds other than "full"'s 5 (base seed 1), the bare model at both widths
    for label, width in zip(more, (128, 256)):
        config = runs[f"{label}-cycle_navigation-lr0.003"]
        assert (config.seed, config.seeds, bare.seed, bare.seeds) == (1, 10, 0, 5)
        assert config.__dict__ == {**bare.__dict__, "seed": 1, "seeds": 10, "width": width,
                                   "label": label}


@pytest.mark.slow
def test_the_ray_launcher_gives_the_local_results_and_reports_a_failed_run(tiny_sweep,
                                                                             tmp_path):
    """The TINY preset's lstm and its post-training run on a local Ray: the same result files as
    the local launcher, apart from timings. A run that fails in its worker (a user module that
    raises there only) is reported after its retries while the others finish, and a run that
    post-trains it as not run."""
    import ray

    from seqbench import ray_launcher

    runs, local, _, _ = tiny_sweep
    runs, local = [runs[0], runs[2]], [local[0], local[2]]  # lstm and its post-training run
    (tmp_path / "boom.py").write_text(
        "import os\nif os.environ.get('SEQBENCH_TEST_WORKER'):\n"
        "    raise RuntimeError('injected failure')\n")
    failing = ("lstm-boom", engine.Config(**{**runs[0][1].__dict__,
                                              "user_module": str(tmp_path / "boom.py")}))
    after_failing = ("lstm-boom-post", engine.Config(**{**runs[1][1].__dict__,
                                                        "init_from": "lstm-boom"}))
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False,
             runtime_env={"env_vars": {"SEQBENCH_TEST_WORKER": "1"}})
    try:
        with logs.captured() as lines:
            remote = ray_launcher.sweep(sweep.check(runs + [failing, after_failing],
                                                    str(tmp_path / "ray")),
                                        str(tmp_path / "ray"), retries=1)
    finally:
        ray.shutdown()
    assert remote[2] is None and remote[3] is None
    assert any("lstm-boom: failed after 2 tries: ValueError: --user_module" in line
               and "failed to import: RuntimeError: injected failure" in line for line in lines)
    assert any("lstm-boom-post: not run: the run it post-trains, lstm-boom, failed" in line
               for line in lines)
    timings = ("tokens_per_s", "compile_s", "train_s", "eval_s", "wall_s", "environment")
    for (name, _), record in zip(runs, local):
        on_disk = json.loads((tmp_path / "ray" / name / "result.json").read_text())
        config = lambda r: {k: v for k, v in r["config"].items() if k != "init_from"}
        same = lambda r: {k: v for k, v in results.finite_or_null(r).items()
                          if k not in timings + ("config",)}
        assert same(on_disk) == same(record) and config(on_disk) == config(record), name
    assert sum("left, ETA" in line for line in lines) == 1  # 2 runs finished, the last: none


def test_ray_flags_without_the_ray_launcher_are_one_line(tmp_path):
    preset = write_preset(tmp_path, TINY)
    done = subprocess.run([sys.executable, "-m", "seqbench.sweep", f"--config={preset}",
                           f"--runs={tmp_path}/r", "--retries=3", "--gpus_per_run=1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "seqbench.sweep: error: --gpus_per_run, --retries need --launcher=ray")


def test_the_state_tracking_paper_variant_lists_every_registered_cell():
    """Its docstring promises every cell; a cell added to the zoo must join it."""
    _, namespace = engine.load_config_file(
        os.path.join(os.path.dirname(__file__), "..", "experiments", "configs",
                     "state_tracking.py:paper"))
    assert sorted(namespace["PAPER_CELLS"]) == cells.names()


def test_the_state_tracking_s5_lstm_variant_trains_the_lstm_on_s5_then_continues_it(tmp_path):
    """The variant outside the generic full/smoke/paper check: valid before anything compiles,
    and the runs its docstring describes (the LSTM on S5, both rates in one program; the second
    run post-trains the first's members at four times its training length, the third the
    second's at twice its)."""
    runs = sweep.load(os.path.join(os.path.dirname(__file__), "..", "experiments", "configs",
                                   "state_tracking.py:s5_lstm"))
    sweep.check(runs, str(tmp_path))
    [(first, short), (second, long), (third, longest)] = runs
    assert (first, short.cell, short.task, short.width) == ("lstm-s5-u8", "lstm", "s5", 256)
    assert sorted(set(short.member_learning_rates)) == [1e-3, 3e-3]
    assert max(short.eval_lengths) == 32 * short.train_length
    assert second == "lstm-s5-u32" and long.init_from.endswith("lstm-s5-u8")
    assert long.train_length == 4 * short.train_length
    assert max(long.eval_lengths) == 16 * long.train_length
    assert third == "lstm-s5-u64" and longest.init_from.endswith("lstm-s5-u32")
    assert longest.train_length == 2 * long.train_length
    assert max(longest.eval_lengths) == 16 * longest.train_length
    assert (longest.steps, longest.batch_size) == (long.steps, long.batch_size)


def test_the_state_tracking_s5_contrast_variant_runs_the_negative_cases_at_the_lstms_protocol(
        tmp_path):
    """The claim's contrast is fair only at the same protocol: every field of each contrast run
    but the cell (and its name) equals the LSTM run of the same sitting."""
    configs = os.path.join(os.path.dirname(__file__), "..", "experiments", "configs")
    lstm = dict(sweep.load(os.path.join(configs, "state_tracking.py:s5_lstm")))
    contrast = sweep.load(os.path.join(configs, "state_tracking.py:s5_contrast"))
    sweep.check(contrast, str(tmp_path))
    assert {config.cell for _, config in contrast} == {"attention", "lru", "rg_lru"}
    for name, config in contrast:
        cell, _, sitting = name.partition("-")
        reference = lstm[f"lstm-{sitting}"]
        differing = {field for field in dataclasses.fields(config)
                     if getattr(config, field.name) != getattr(reference, field.name)}
        assert {field.name for field in differing} <= {"cell", "label", "init_from"}, name
        if config.init_from:
            assert os.path.basename(config.init_from) == f"{cell}-s5-u8"


def test_mqar_full_trains_every_width_at_both_rates_as_a_grid_or_as_two_runs():
    """The "full" variant's recurrent runs are split by rate (one session each on the CPU);
    together with the runs already trained as a grid they cover every (cell, width, d_state)
    at both of its rates, once, the smaller d_states of `SMALL_D_STATES` at width 8 too."""
    path = os.path.join(os.path.dirname(__file__), "..", "experiments", "configs", "mqar.py")
    preset = runpy.run_path(path)
    rates = preset["get_config"]("full")["learning_rates"]
    covered = []
    for name, config in sweep.load(f"{path}:full"):
        members = config.member_learning_rates
        assert config.learning_rates == () or name in preset["FULL_GRID_RUNS"], name
        d_state = dict(config.cell_hparams).get("d_state")
        covered += [(config.cell, config.width, d_state, rate) for rate in sorted(set(members))]
    points = {(cell, width, {**preset["CELLS"][cell],
                             **preset["width_hparams"](cell, width)}.get("d_state"))
              for cell, widths in preset["WIDTHS"]["full"].items() for width in widths}
    points |= {(cell, 8, d_state) for cell, d_states in preset["SMALL_D_STATES"].items()
               for d_state in d_states}
    assert sorted(covered) == sorted({(*point, rate) for point in points for rate in rates})
