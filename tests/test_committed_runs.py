"""The committed results stay comparable with new runs: for every task a committed run used,
today's generator rebuilds that run's test set at its shortest evaluated length to the hash it
recorded (`per_length[n]["test_set_hash"]`). The leaderboard merges runs only when their test
sets hash alike, so a generator change that moved a test set would set every committed row
apart from new ones (rows marked `conflict`); this holds the generator to data written by
earlier code."""

import json
from pathlib import Path

import pytest

from seqbench import evaluate
from seqbench.engine import config as config_module

RUNS = Path(__file__).resolve().parent.parent / "experiments" / "runs"


def first_run_of_each_task() -> dict[str, Path]:
    """{task: the first committed result.json of it, in path order}."""
    found: dict[str, Path] = {}
    for path in sorted(RUNS.glob("*/*/result.json")):
        found.setdefault(json.loads(path.read_text())["task"], path)
    return found


FIRST_RUNS = first_run_of_each_task()


def test_the_committed_runs_cover_many_tasks():
    assert len(FIRST_RUNS) >= 20  # 22 on 2026-12-07: the Chomsky 15, mqar, s3, s5, text_lm, ...


@pytest.mark.parametrize("task_name", sorted(FIRST_RUNS))
def test_a_committed_run_s_test_set_is_regenerated_bit_for_bit(task_name):
    record = json.loads(FIRST_RUNS[task_name].read_text())
    config = config_module.from_json(record["config"])
    _, task, _ = config_module.build(config)  # the task as the engine built it for the run
    length = min(int(n) for n, entry in record["per_length"].items() if "test_set_hash" in entry)
    _, digest = task.test_set(length, config.eval_size, seed=evaluate.EVAL_SEED)
    assert digest == record["per_length"][str(length)]["test_set_hash"], FIRST_RUNS[task_name]
