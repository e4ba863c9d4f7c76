"""Issue 16, the reliability audit: each defect reproduced by a test first, then fixed.

Nothing is mislabelled (a workdir of another configuration, two processes on one workdir),
nothing is lost (a torn metrics line, a stale temporary file), diverged seeds are never
averaged, and bad input is one line before any compute."""

import fcntl
import json
import os
import threading

import pytest

from seqbench import engine, logs
from seqbench.engine import workdir as workdir_lib
from tests.test_train import tiny_config


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run whose folder the tests copy."""
    workdir = tmp_path_factory.mktemp("finished")
    return engine.run(tiny_config(steps=2, log_every=1), str(workdir)), workdir


def copy_of(source, target):
    import shutil
    shutil.copytree(source, target)
    return target


def test_a_workdir_of_another_configuration_is_refused_before_anything_is_written(finished,
                                                                                   tmp_path):
    _, source = finished
    workdir = copy_of(source, tmp_path / "run")
    before = (workdir / "config.json").read_text()
    for change, fields in ((dict(learning_rate=1e-4), "learning_rate"),
                           (dict(task="even_pairs"), "task"),
                           (dict(width=16), "width"),
                           (dict(seeds=3), "seeds")):
        with pytest.raises(ValueError, match=f"holds a run of another configuration.*{fields}.*"
                                             "--overwrite"):
            engine.check_workdir(tiny_config(steps=2, log_every=1, **change), str(workdir))
        with pytest.raises(ValueError, match="another configuration"):
            engine.run(tiny_config(steps=2, log_every=1, **change), str(workdir))
        assert (workdir / "config.json").read_text() == before  # nothing overwritten
    # Unhashed knobs (logging, checkpoints) may change on resume.
    engine.check_workdir(tiny_config(steps=2, log_every=2, keep_checkpoints=5), str(workdir))
    # --overwrite starts afresh.
    record = engine.run(tiny_config(steps=2, log_every=1, learning_rate=1e-4), str(workdir),
                        overwrite=True)
    assert record["config"]["learning_rate"] == 1e-4
    assert json.loads((workdir / "config.json").read_text())["learning_rate"] == 1e-4


def test_a_second_process_on_one_workdir_is_refused_naming_the_holder(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    with open(workdir / ".lock", "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder.write("4242\n")
        holder.flush()
        with pytest.raises(ValueError, match="in use by process 4242"):
            engine.run(tiny_config(steps=2), str(workdir))
    assert not (workdir / "config.json").exists()



def test_a_look_at_who_holds_a_folder_never_makes_a_starting_run_skip_it(tmp_path):
    """`workdir.holder` (sweep --dry_run) looks by taking a shared lock for an instant; a
    process locking the folder in that instant waits it out instead of calling it in use."""
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / ".lock").write_text("4242\n")  # a finished holder's PID stays in the file
    with open(workdir / ".lock") as looking:
        fcntl.flock(looking, fcntl.LOCK_SH | fcntl.LOCK_NB)  # a look, caught mid-way
        release = threading.Timer(0.05, fcntl.flock, (looking, fcntl.LOCK_UN))
        release.start()
        with workdir_lib.lock(str(workdir)):
            assert workdir_lib.holder(str(workdir)) == str(os.getpid())
        release.join()
    assert workdir_lib.holder(str(workdir)) is None


def test_a_torn_last_metrics_line_and_a_stale_temporary_file_do_not_stop_a_resume(finished,
                                                                                  tmp_path):
    first, source = finished
    workdir = copy_of(source, tmp_path / "run")
    os.remove(workdir / "result.json")
    import shutil
    shutil.rmtree(workdir / "checkpoints" / "2")  # crashed after step 1 ...
    with open(workdir / "metrics.jsonl", "a") as f:
        f.write('{"step": 2, "loss": [0.6')  # ... in the middle of writing a line
    (workdir / ".tmp-abc123.json").write_text("")  # and of writing a result
    again = engine.run(tiny_config(steps=2, log_every=1), str(workdir))
    assert again["per_length"] == first["per_length"]
    steps = [json.loads(line)["step"] for line in (workdir / "metrics.jsonl").open()]
    assert steps == [1, 2]
    assert not list(workdir.glob(".tmp-*"))


def test_diverged_seeds_are_never_averaged(monkeypatch, tmp_path):
    from seqbench.engine import step as step_lib
    from tests.test_train import poison_seed_1
    init = step_lib.init_state
    monkeypatch.setattr(step_lib, "init_state", lambda *args: init(*args)._replace(
        params=poison_seed_1(init(*args).params)))
    with logs.captured() as lines:
        record = engine.run(tiny_config(steps=2, log_every=1), str(tmp_path))
    assert record["seed_status"] == ["ok", "diverged"]
    assert record["score_mean"] == pytest.approx(record["score"][0])
    out = "\n".join(lines)
    assert f"score (mean accuracy beyond 6 over 1 seed that did not diverge): " \
           f"{record['score'][0]:.3f}" in out


def test_an_all_diverged_run_has_no_score(monkeypatch, tmp_path):
    import jax.numpy as jnp

    from seqbench.engine import step as step_lib
    init = step_lib.init_state

    def poisoned(*args):
        state = init(*args)
        head = {**state.params["head"], "b": state.params["head"]["b"] + jnp.inf}
        return state._replace(params={**state.params, "head": head})

    monkeypatch.setattr(step_lib, "init_state", poisoned)
    with logs.captured() as lines:
        record = engine.run(tiny_config(steps=2, log_every=1), str(tmp_path))
    assert record["seed_status"] == ["diverged", "diverged"] and record["score_mean"] is None
    assert "no seed converged" in lines[-1]
    assert "every seed diverged; stopped at step 1" in lines


@pytest.mark.parametrize("fields, message", [
    (dict(eval_lengths=(8, 100_000_000_000)), "eval_lengths must be integers in"),
    (dict(train_length=10**12), "train_length must be <="),
    (dict(learning_rate=float("inf")), "learning_rate must be a finite number"),
])
def test_impossible_values_are_refused_before_training(fields, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**fields)


@pytest.mark.slow
def test_a_signal_during_compilation_or_evaluation_saves_and_a_rerun_finishes(finished,
                                                                               monkeypatch,
                                                                               tmp_path):
    """Issue 16, item 16: Ctrl-C (SIGINT) while compiling stops after one step with a
    checkpoint; while evaluating, between two lengths (the final checkpoint is saved); the
    rerun ends with the uninterrupted run's numbers."""
    import signal

    from seqbench import evaluate
    from seqbench.engine import loop
    first, _ = finished
    config = tiny_config(steps=2, log_every=1)
    real_step, real_grid = loop.make_train_step, evaluate.length_grid

    def interrupted_compile(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "make_train_step", interrupted_compile)
    assert engine.run(config, str(tmp_path)) is None
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1"]
    monkeypatch.setattr(loop, "make_train_step", real_step)

    def interrupted_evaluation(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real_grid(*args, **kwargs)

    monkeypatch.setattr(evaluate, "length_grid", interrupted_evaluation)
    assert engine.run(config, str(tmp_path)) is None
    assert not (tmp_path / "result.json").exists()
    monkeypatch.setattr(evaluate, "length_grid", real_grid)
    again = engine.run(config, str(tmp_path))
    assert again["per_length"] == first["per_length"]
