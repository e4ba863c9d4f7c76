"""The leaderboard: t quantiles and intervals against float64 references, merging rules, corrupt
inputs, every output file, determinism, and the command line's bad-input path."""

import csv
import itertools
import json
import math
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from seqbench import (
    engine,
    leaderboard,
    leaderboard_html,
    leaderboard_read,
    logs,
    published,
    results,
    selection,
)

TRAIN_LENGTH = 4
FRESH_SEEDS = itertools.count(100)  # every record its own base seed unless a test says otherwise


# Configurations are told apart by a label ("a".."d"), each its own eval_size ("e", "f": the
# default, for tests that set other fields themselves); `hash_of` gives the real config hash.
LABEL_EVAL_SIZE = {"a": 256, "b": 257, "c": 258, "d": 259, "e": 256, "f": 256}


def config_of(cell, task, label, seed=0, seeds=1):
    return {"cell": cell, "task": task, "train_length": TRAIN_LENGTH, "seeds": seeds,
            "seed": seed, "eval_size": LABEL_EVAL_SIZE[label]}


def hash_of(cell="lstm", task="parity_check", label="a"):
    return engine.config_hash(config_of(cell, task, label))


def make_record(accuracy, *, cell="lstm", family="classic", task="parity_check",
                label="a", seed_status=None, version="0.1.0", hashes=None,
                tokens_per_s=1000.0, param_count=1234, state_size=16, seed=None):
    """A result.json record; `accuracy` = {length: [per seed]}, score etc. derived with NumPy.
    `write_run` sets its `config_hash` from its (possibly edited) config."""
    seeds = len(next(iter(accuracy.values())))
    seed_status = seed_status or ["ok"] * seeds
    lengths = sorted(accuracy)
    table = np.array([accuracy[n] for n in lengths], dtype=float)  # (lengths, seeds)
    inside = np.array(lengths) <= TRAIN_LENGTH
    return {
        "schema_version": results.SCHEMA_VERSION,
        "status": "diverged" if "diverged" in seed_status else "ok",
        "seed_status": seed_status,
        "diverged_at_step": [None if s == "ok" else 7 for s in seed_status],
        "cell": cell, "family": family, "task": task, "task_group": "regular",
        "config": config_of(cell, task, label, next(FRESH_SEEDS) if seed is None else seed,
                            seeds),
        "config_hash": hash_of(cell, task, label), "seeds": seeds,
        "per_length": {str(n): {"accuracy": list(accuracy[n]), "loss": [1 - a for a in accuracy[n]],
                                "test_set_hash": (hashes or {}).get(n, f"hash{n}"),
                                "per_position": [0.5]}
                       for n in lengths},
        "in_distribution_accuracy": list(table[inside].mean(axis=0)),
        "score": list(table[~inside].mean(axis=0)),
        "effective_length": [lengths[-1]] * seeds,
        "score_mean": float(table[~inside].mean()),
        "param_count": param_count, "state_size": state_size, "tokens_per_s": tokens_per_s,
        "compile_s": 1.0, "train_s": 2.0,
        "environment": {"seqbench": version, "jax": "0.10.2", "jaxlib": "0.10.2",
                        "python": "3.11", "backend": "cpu", "device_kind": "cpu",
                        "device_count": "1"},
    }


def write_run(folder, record):
    record["config_hash"] = engine.config_hash(record["config"])
    folder.mkdir(parents=True, exist_ok=True)
    results.write_json(str(folder / "result.json"), record)
    return folder


def example_runs(root):
    """Two tasks, six result files: a merge with a diverged seed, an all-diverged run, a code
    version conflict, a test-set conflict, and a second family."""
    write_run(root / "a" / "lstm_s0", make_record({4: [1.0, 0.9], 8: [0.6, 0.8], 16: [0.5, 0.7]}))
    write_run(root / "b" / "lstm_s2", make_record({4: [1.0, 0.2], 8: [0.4, 0.1], 16: [0.3, 0.1]},
                                                  seed_status=["ok", "diverged"]))
    write_run(root / "a" / "lru", make_record({4: [1.0, 1.0, 0.8], 8: [0.9, 0.95, 0.7],
                                               16: [0.85, 0.9, 0.6]}, cell="lru", family="ssm",
                                              label="b", param_count=99))
    write_run(root / "a" / "gru_dead", make_record({4: [0.5], 8: [0.5], 16: [0.5]}, cell="gru",
                                                   label="c",
                                                   seed_status=["diverged"]))
    write_run(root / "b" / "lru_new", make_record({4: [1.0], 8: [0.2], 16: [0.1]}, cell="lru",
                                                  family="ssm", label="b",
                                                  version="0.2.0"))
    for name, tests in (("mqar_1", "x"), ("mqar_2", "y")):
        write_run(root / "b" / name, make_record({4: [0.9], 8: [0.7], 16: [0.4]}, task="mqar",
                                                 hashes={16: tests}, label="d"))
    return [str(root / "a"), str(root / "b")]


# ----------------------------------------------------------------------------- statistics

def t_quantile_reference(df: float, p: float = 0.975) -> float:
    """Solves ∫_0^q f_t(x; df) dx = p - 1/2 by bisection, Simpson's rule on 20001 points (f64)."""
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def half_mass(q):
        x = np.linspace(0.0, q, 20001)
        f = np.exp(log_c - (df + 1) / 2 * np.log1p(x * x / df))
        return (x[1] - x[0]) / 3 * (f[0] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum() + f[-1])

    low, high = 0.0, 20.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if half_mass(mid) < p - 0.5 else (low, mid)
    return (low + high) / 2


def test_t_quantile_known_table_values():
    for df, value in ((1, 12.706), (4, 2.776), (9, 2.262), (30, 2.042)):
        assert round(leaderboard.t_quantile_975(df), 3) == value
    with pytest.raises(ValueError, match="degrees of freedom"):
        leaderboard.t_quantile_975(0)


def test_t_quantile_against_numerical_integration():
    dfs = [*range(1, 34), 40, 60, 120, 1000, *np.random.default_rng(0).integers(31, 500, 5)]
    for df in dfs:
        assert leaderboard.t_quantile_975(int(df)) == pytest.approx(
            t_quantile_reference(float(df)), abs=1e-6), df


def test_interval_against_hand_computed_numbers():
    # mean 0.7, s = 0.2, t_{0.975,2} = 4.303: half-width 4.303 * 0.2 / sqrt(3) = 0.4969
    stats = leaderboard.interval([0.5, 0.7, 0.9])
    assert stats["n"] == 3 and stats["mean"] == pytest.approx(0.7)
    assert stats["ci95"] == pytest.approx([0.7 - 0.4969, 0.7 + 0.4969], abs=1e-4)
    assert (stats["min"], stats["max"]) == (0.5, 0.9)
    assert leaderboard.interval([0.3]) == {"n": 1, "mean": 0.3, "ci95": None, "min": 0.3,
                                           "max": 0.3}
    assert leaderboard.interval([])["mean"] is None


def test_interval_against_numpy_reference_on_random_samples():
    rng = np.random.default_rng(1)
    for n in (2, 3, 5, 17, 31, 45):
        x = rng.uniform(0, 1, n)
        half = t_quantile_reference(n - 1) * np.std(x, ddof=1) / np.sqrt(n)
        stats = leaderboard.interval([float(v) for v in x])
        np.testing.assert_allclose(stats["ci95"], [x.mean() - half, x.mean() + half],
                                   rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- building

@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """The example runs plus three bad files, built once; (board, out, log lines, folders)."""
    root = tmp_path_factory.mktemp("runs")
    folders = example_runs(root)
    (root / "a" / "truncated").mkdir()
    (root / "a" / "truncated" / "result.json").write_text('{"schema_version": 2, "cell": "ls')
    write_run(root / "b" / "old", {**make_record({4: [1.0], 8: [1.0]}), "schema_version": 0})
    broken = make_record({4: [1.0], 8: [1.0]})
    del broken["seed_status"]
    write_run(root / "b" / "no_status", broken)
    out = root / "out"
    with logs.captured() as lines:
        return leaderboard.build(folders, str(out)), out, lines, folders


def rows_by_id(board):
    return {row["id"]: row for row in board["rows"]}


def test_seeds_merge_and_diverged_seeds_are_left_out(board):
    row = rows_by_id(board[0])[f"parity_check/lstm/{hash_of()}"]
    assert (row["seeds"], row["seeds_used"], row["seeds_diverged"]) == (4, 3, 1)
    assert row["status"] == "ok" and row["conflict"] is None and row["variant"] == ""
    # Seeds used: 0.6/0.8 (run a) and 0.4 (run b); the diverged 0.1 is out.
    length_8 = row["per_length"][1]
    assert length_8["length"] == 8 and not length_8["in_distribution"]
    assert length_8["accuracy"]["mean"] == pytest.approx(0.6)
    # s = 0.2, n = 3: half-width 4.303 * 0.2 / sqrt(3) = 0.4969
    assert length_8["accuracy"]["ci95"] == pytest.approx([0.6 - 0.4969, 0.6 + 0.4969], abs=1e-4)
    # score per seed = mean over lengths 8, 16: 0.55, 0.75, 0.35 -> mean 0.55, s = 0.2
    assert row["score"]["mean"] == pytest.approx(0.55)
    assert row["score"]["ci95"] == pytest.approx([0.55 - 0.4969, 0.55 + 0.4969], abs=1e-4)
    assert row["in_distribution_accuracy"]["mean"] == pytest.approx((1.0 + 0.9 + 1.0) / 3)
    assert row["tokens_per_s"] == {"n": 2, "mean": 1000.0, "ci95": [1000.0, 1000.0],
                                   "min": 1000.0, "max": 1000.0}
    assert row["runs"] == [f"{board[3][0]}/lstm_s0", f"{board[3][1]}/lstm_s2"]  # absolute as given


def test_all_diverged_row_appears_without_a_score(board):
    row = rows_by_id(board[0])[f"parity_check/gru/{hash_of('gru', label='c')}"]
    assert row["status"] == "diverged" and row["seeds_diverged"] == 1 and row["seeds_used"] == 0
    assert row["score"]["mean"] is None and row["per_length"][0]["accuracy"]["n"] == 0
    assert [r for r in board[0]["rows"] if r["task"] == "parity_check"][-1] is row  # last


def test_code_version_and_test_set_conflicts_are_kept_apart(board):
    rows = rows_by_id(board[0])
    for version in ("0.1.0", "0.2.0"):
        row = rows[f"parity_check/lru/{hash_of('lru', label='b')}/v{version}"]
        assert row["conflict"] == "code version" and row["code_version"] == version
        assert row["seeds"] == (3 if version == "0.1.0" else 1)
    mqar = [r for r in board[0]["rows"] if r["task"] == "mqar"]
    assert len(mqar) == 2 and all(r["conflict"] == "test-set hash" for r in mqar)
    assert sorted(r["per_length"][2]["test_set_hash"] for r in mqar) == ["x", "y"]


def test_bad_files_are_reported_and_skipped(board):
    built, _, lines, folders = board
    assert len(lines) == 3 and len(built["skipped"]) == 3
    assert any(l.startswith(f"skipped {folders[0]}/truncated/result.json: not valid JSON")
               for l in lines)
    assert (f"skipped {folders[1]}/old/result.json: schema_version 0 not supported (expected one "
            f"of {leaderboard_read.SUPPORTED_SCHEMAS})") in lines
    assert f"skipped {folders[1]}/no_status/result.json: missing field 'seed_status'" in lines
    assert "from 7 result files" in built["generated"] and "3 skipped" in built["generated"]


@pytest.mark.parametrize("change, reason", [
    (lambda r: r.update(seeds=3), "seed_status must be a list of 3 values"),
    (lambda r: r["per_length"]["8"].update(accuracy=["x", 1.0]), "must hold numbers or null"),
    (lambda r: r.update(status="ok", seed_status=["ok", "diverged"]), "disagrees with seed_status"),
    (lambda r: r.update(param_count="12"), "field 'param_count' has type str"),
    (lambda r: r["environment"].pop("seqbench"), "code version) is missing"),
    (lambda r: r["per_length"].update(x={}), "per_length entry 'x' is not a length"),
    (lambda r: r["per_length"].update({"08": r["per_length"].pop("8")}), "entry '08' is not"),
    (lambda r: r.update(seeds=0), "seeds must be in [1, 1000000]"),
    (lambda r: r.update(schema_version=3), "seqbench.reevaluate --runs=DIR` upgrades it"),
])
def test_check_names_what_is_wrong(change, reason):
    record = make_record({4: [1.0, 1.0], 8: [0.5, 0.6]})
    assert leaderboard_read.check(record) is None
    change(record)
    assert reason in leaderboard_read.check(record)


def test_rows_are_sorted_by_task_then_score(board):
    order = [(r["task"], r["score"]["mean"]) for r in board[0]["rows"]]
    for task in ("mqar", "parity_check"):
        scores = [s for t, s in order if t == task]
        known = [s for s in scores if s is not None]
        assert known == sorted(known, reverse=True) and scores[:len(known)] == known
    assert [t for t, _ in order] == sorted(t for t, _ in order)


def test_every_file_is_written_and_agrees_with_the_json(board):
    built, out, _, _ = board
    assert json.loads((out / "leaderboard.json").read_text()) == json.loads(json.dumps(built))
    with open(out / "leaderboard.csv") as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == sum(len(row["per_length"]) for row in built["rows"]) == 18
    first = lines[0]
    row = built["rows"][0]
    assert (first["task"], first["cell"], first["length"]) == (row["task"], row["cell"], "4")
    assert float(first["accuracy_mean"]) == row["per_length"][0]["accuracy"]["mean"]
    markdown = (out / "leaderboard.md").read_text()
    assert "## mqar (regular)" in markdown and "## parity_check (regular)" in markdown
    parity = markdown.split("## parity_check")[1].splitlines()
    table = [l for l in parity if l.startswith("| lstm") or l.startswith("| gru")]
    assert table == [f"| lstm | classic | `{hash_of()}` | 4 (1 diverged) | 0.550 ± 0.497 | "
                     "0.967 ± 0.143 | 16 ± 0 | 1,234 | 16 | 1,000 ± 0 |",
                     f"| gru | classic | `{hash_of('gru', label='c')}` | 1 (1 diverged) | "
                     "diverged | – | – | "
                     "1,234 | 16 | 1,000 |"]
    html = (out / "leaderboard.html").read_text()
    assert html.count("<svg") == 2 and "<script>" in html and "src=" not in html
    assert set(re.findall(r"https?://[^/]+", html)) == {"http://www.w3.org"}  # SVG namespaces
    for task in ("mqar", "parity_check"):
        assert (out / "plots" / f"{task}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_building_twice_gives_identical_bytes(board, tmp_path):
    built, out, _, folders = board
    names = ["leaderboard.json", "leaderboard.csv", "leaderboard.md", "leaderboard.html",
             "plots/mqar.png", "plots/parity_check.png"]
    before = {name: (out / name).read_bytes() for name in names}
    leaderboard.build(folders[::-1], str(out))
    assert {name: (out / name).read_bytes() for name in names} == before
    assert not [p for p in out.rglob(".tmp-*")]


def test_overlapping_folders_read_each_file_once(board):
    a, b = board[3]
    found = leaderboard_read.find_results([a, str(pathlib.Path(a).parent), a])
    assert len(found) == len({os.path.realpath(p) for _, p in found}) == 4 + 6
    assert [folder for folder, _ in found] == [a] * 4 + [str(pathlib.Path(a).parent)] * 6


def test_cli_builds_with_links_relative_to_out(board):
    _, out, _, folders = board
    proc = subprocess.run([sys.executable, "-m", "seqbench.leaderboard", "--runs=b",
                           "--out=out/cli"], capture_output=True, text=True, timeout=120,
                          cwd=out.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["skipped b/no_status/result.json: missing field "
                                        "'seed_status'", "skipped b/old/result.json: "
                                        "schema_version 0 not supported (expected one of "
                                        f"{leaderboard_read.SUPPORTED_SCHEMAS})"]
    assert "4 rows from 4 result files (2 skipped)" in proc.stdout
    rows = json.loads((out / "cli" / "leaderboard.json").read_text())["rows"]
    assert rows_by_id({"rows": rows})[f"parity_check/lstm/{hash_of()}"]["runs"] == [
        "../../b/lstm_s2"]


@pytest.mark.parametrize("args, message", [
    (["--runs={empty}"], "no result.json found under"),
    (["--runs={empty}/nope"], "does not exist"),
    (["--runs={empty}", "--sort=score"], "Unknown command line flag 'sort'"),
])
def test_bad_input_is_one_line_and_exit_status_2(args, message, tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "seqbench.leaderboard",
                           *[a.format(empty=tmp_path / "empty") for a in args],
                           f"--out={tmp_path / 'out'}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


def test_a_run_repeating_another_s_hash_and_seed_counts_once(tmp_path):
    accuracy = {4: [1.0], 8: [0.5]}
    write_run(tmp_path / "runs" / "a", make_record(accuracy, seed=0))
    write_run(tmp_path / "runs" / "b", make_record(accuracy, seed=0))  # the same models again
    write_run(tmp_path / "runs" / "c", make_record({4: [1.0], 8: [0.7]}, seed=1))
    with logs.captured() as lines:
        board = leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "out"))
    (row,) = board["rows"]
    assert row["seeds"] == 2 and row["score"]["mean"] == pytest.approx(0.6)
    assert len(lines) == 1 and "same config hash and seed as" in lines[0]


def test_rows_of_one_cell_are_labelled_by_the_settings_that_differ(tmp_path):
    accuracy = {4: [1.0], 8: [0.5]}
    hashes = {}
    for state, label in (("zero", "e"), ("noise", "f")):
        record = make_record(accuracy, cell="mamba", family="gated", label=label)
        record["config"].update(initial_state=state, width=32, log_every=7 if state == "zero"
                                else 9)  # log_every is not a setting: never shown
        hashes[state] = write_run(tmp_path / "runs" / state, record) and record["config_hash"]
    write_run(tmp_path / "runs" / "lone", make_record(accuracy, cell="lru", family="ssm"))
    board = leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "out"))
    settings = {(row["cell"], row["config_hash"]): row["distinct_settings"]
                for row in board["rows"]}
    assert settings == {("mamba", hashes["zero"]): {"initial_state": "zero"},
                        ("mamba", hashes["noise"]): {"initial_state": "noise"},
                        ("lru", hash_of("lru")): {}}
    table = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| mamba [initial_state=noise] |" in table and "| lru |" in table


def test_a_dict_setting_labels_rows_only_where_no_scalar_one_tells_them_apart(tmp_path):
    """mqar's mamba2 sets its head size from the width, so `cell_hparams` varies with `width`:
    the width alone tells the rows apart, and the dict is not dumped into the label. A row that
    only the dict tells apart brings it back, for every row of the name."""
    accuracy = {4: [1.0], 8: [0.5]}
    for width in (16, 32):
        record = make_record(accuracy, cell="mamba2", family="matrix")
        record["config"].update(width=width, cell_hparams={"d_state": 64, "head_dim": 2 * width})
        write_run(tmp_path / "runs" / f"w{width}", record)
    board = leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "out"))
    assert sorted(leaderboard_html.row_label(row) for row in board["rows"]) == [
        "mamba2 [width=16]", "mamba2 [width=32]"]
    record = make_record(accuracy, cell="mamba2", family="matrix")  # width 32, another d_state
    record["config"].update(width=32, cell_hparams={"d_state": 16, "head_dim": 64})
    write_run(tmp_path / "runs" / "w32_small", record)
    board = leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "out"))
    assert sorted(leaderboard_html.row_label(row) for row in board["rows"]) == [
        'mamba2 [cell_hparams={"d_state":16,"head_dim":64}, width=32]',
        'mamba2 [cell_hparams={"d_state":64,"head_dim":32}, width=16]',
        'mamba2 [cell_hparams={"d_state":64,"head_dim":64}, width=32]']


def test_an_unnamed_row_never_looks_like_a_named_one(tmp_path):
    """Two presets on one task: one names its LSTM "lstm" (two learning rates), the other leaves
    it unnamed (label "", shown by its cell name). The unnamed row is told apart by the settings
    in which it differs from every row shown as "lstm"; the named rows keep their own labels
    (compared among themselves), so the preset's model name and its grid stay as they were."""
    accuracy = {4: [1.0], 8: [0.5]}
    for lr in (1e-3, 3e-3):
        record = make_record(accuracy, label="e")
        record["config"].update(learning_rate=lr, label="lstm")
        write_run(tmp_path / "runs" / f"named{lr}", record)
    record = make_record(accuracy, label="e")
    record["config"].update(learning_rate=3e-3, width=32)
    write_run(tmp_path / "runs" / "unnamed", record)
    board = leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "out"))
    labels = sorted(leaderboard_html.row_label(row) for row in board["rows"])
    assert labels == ["lstm [learning_rate=0.001]", "lstm [learning_rate=0.003, width=32]",
                      "lstm [learning_rate=0.003]"]
    assert sorted(grid["model"] for grid in board["grids"]) == ["lstm", "lstm [width=32]"]
    # Floats are shortened over every row of the name: a named rate and an unnamed one that
    # agree to 3 digits both get a 4th. And an unnamed run of the named model at another rate
    # is a grid of its own, not a member of the preset's.
    for folder, rate, label in (("named_a", 10 ** -2.6667, "lstm"), ("named_b", 4.6e-4, "lstm"),
                                ("unnamed", 0.00215, "")):
        record = make_record(accuracy, label="e")
        record["config"].update(learning_rate=rate, label=label)
        write_run(tmp_path / "close" / folder, record)
    board = leaderboard.build([str(tmp_path / "close")], str(tmp_path / "out_close"))
    assert sorted(leaderboard_html.row_label(row) for row in board["rows"]) == [
        "lstm [learning_rate=0.00046]", "lstm [learning_rate=0.002154]",
        "lstm [learning_rate=0.00215]"]
    (named,) = [grid for grid in board["grids"] if grid["labelled"]]
    assert sorted(named["learning_rates"]) == [4.6e-4, 10 ** -2.6667]


def test_rows_without_a_score_are_ordered_by_how_well_they_fit():
    """MQAR is scored at its training length only: its rows have no score, and the table lists
    them by in-distribution accuracy, best first, not by cell name."""
    def row(cell, score, fit):
        return {"task": "mqar", "cell": cell, "config_hash": cell, "variant": "",
                "score": {"mean": score}, "in_distribution_accuracy": {"mean": fit}}
    rows = [row("attention", None, 0.2), row("gla", None, 0.9), row("lru", None, None),
            row("mamba", 0.5, 0.1)]
    assert [r["cell"] for r in sorted(rows, key=leaderboard.row_order)] == [
        "mamba", "gla", "attention", "lru"]


def test_a_post_trained_row_is_labelled_by_its_source_s_hash():
    post = {"cell": "mamba", "label": "", "variant": "", "distinct_settings": {
        "initial_state": "noise", "post_trained_from": "1e27aa380274", "steps": 150}}
    base = {**post, "distinct_settings": {"initial_state": "noise", "post_trained_from": None,
                                          "steps": 1500}}
    assert leaderboard_html.row_label(post) == \
        "mamba [initial_state=noise, post-trained from 1e27aa38, steps=150]"
    assert leaderboard_html.row_label(base) == "mamba [initial_state=noise, steps=1500]"


def test_close_lengths_share_one_tick_label():
    assert leaderboard_html.tick_labels([10, 40, 41, 60, 100, 200, 500]) == \
        ["10", "40", "", "60", "100", "200", "500"]
    assert leaderboard_html.tick_labels([32, 64, 128]) == ["32", "64", "128"]


def test_an_axis_of_many_rows_labels_every_fifth_or_tenth():
    """63 MQAR rows printed 1..63 on top of each other: label 1 and a round step, at most 20."""
    assert leaderboard_html.row_ticks(3) == [1, 2, 3]
    assert leaderboard_html.row_ticks(20) == list(range(1, 21))
    assert leaderboard_html.row_ticks(21) == [1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert leaderboard_html.row_ticks(63) == [1, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60]
    assert leaderboard_html.row_ticks(250) == [1, *range(20, 241, 20)]
    assert leaderboard_html.row_ticks(0) == []


def test_a_learning_rate_grid_reports_the_paper_s_best_of_and_our_selected_mean(tmp_path):
    """The learning rate is chosen on in-distribution accuracy, never on the test lengths; the
    paper's statistic is the best seed of the whole grid; both land in the overview."""
    # lr 1e-3: fits the training lengths best (1.0) but generalises worse on average;
    # lr 3e-3: one seed generalises perfectly, the other does not fit the training lengths.
    for lr, accuracy in ((1e-3, {4: [1.0, 1.0], 8: [0.7, 0.8]}),
                         (3e-3, {4: [1.0, 0.6], 8: [1.0, 0.5]})):
        record = make_record(accuracy, cell="lstm", seed=0)
        record["config"].update(learning_rate=lr, label="lstm-bare")
        write_run(tmp_path / "runs" / f"lr{lr}", record)
    board = leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "out"))
    (grid,) = board["grids"]
    assert grid["model"] == "lstm-bare" and sorted(grid["learning_rates"]) == [1e-3, 3e-3]
    assert grid["selected_learning_rate"] == 1e-3
    assert grid["selected"]["mean"] == pytest.approx(0.75)
    assert grid["best_of"] == 1.0 and grid["best_of_learning_rate"] == 3e-3
    labels = {row["config"]["learning_rate"]: leaderboard_html.row_label(row)
              for row in board["rows"]}
    assert labels == {1e-3: "lstm-bare [learning_rate=0.001]",
                      3e-3: "lstm-bare [learning_rate=0.003]"}
    # Log-spaced rates show 3 significant digits, not float noise, and never so few that two
    # rows look alike; the config keeps the exact value.
    rates = [10 ** -2.6667, 10 ** -3.3333, 0.00215]
    rows = leaderboard.with_distinct_settings([{**board["rows"][0], "config": {
        **board["rows"][0]["config"], "learning_rate": rate}} for rate in rates])
    assert [leaderboard_html.row_label(row) for row in rows] == [
        "lstm-bare [learning_rate=0.002154]", "lstm-bare [learning_rate=0.0004642]",
        "lstm-bare [learning_rate=0.00215]"]
    assert rows[0]["config"]["learning_rate"] == 10 ** -2.6667
    assert [leaderboard_html.row_label(row) for row in leaderboard.with_distinct_settings(
        rows[:2])] == ["lstm-bare [learning_rate=0.00215]", "lstm-bare [learning_rate=0.000464]"]
    markdown = (tmp_path / "out" / "leaderboard.md").read_text()
    overview = markdown.split("## Overview")[1].split("\n## ")[0]
    assert "| task | lstm-bare |" in overview
    # the paper's LSTM is the bare one: Table 2's score stands beside it
    assert "| parity_check | 0.750 ± 0.635 (best 1.000; paper 1.000) |" in overview
    assert 'id="overview"' in (tmp_path / "out" / "leaderboard.html").read_text()


def test_a_grid_s_file_counts_as_one_result_file(tmp_path):
    """One result.json of a 2-rate grid gives two runs, and the board says it read one file."""
    record = make_record({4: [1.0, 1.0, 1.0, 0.6], 8: [0.7, 0.8, 1.0, 0.5]}, cell="lstm")
    record["config"].update(learning_rates=[1e-3, 3e-3], label="lstm-grid")
    write_run(tmp_path / "runs" / "grid", record)
    board = leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "out"))
    assert len(board["rows"]) == 2 and board["result_files"] == 1
    assert "from 1 result file " in board["generated"]


@pytest.mark.parametrize("better_test_rate", [1e-3, 3e-3])
def test_a_tie_in_distribution_is_broken_without_looking_at_the_test_lengths(tmp_path,
                                                                             better_test_rate):
    """Two rates that fit the training lengths equally well (accuracy 1.0 on every seed) are
    told apart by their in-distribution loss, then by the lower rate; which one scores better
    beyond the training lengths must not change the choice (the rows' leaderboard order does
    follow that score)."""
    for lr in (1e-3, 3e-3):
        beyond = [0.9, 0.9] if lr == better_test_rate else [0.5, 0.5]
        record = make_record({4: [1.0, 1.0], 8: beyond}, cell="lstm", seed=0)
        record["config"].update(learning_rate=lr, label="lstm")
        write_run(tmp_path / "runs" / f"lr{lr}", record)
    board = leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "out"))
    (grid,) = board["grids"]
    assert grid["selected_learning_rate"] == 1e-3  # the lower rate: equal accuracy and loss
    # a lower in-distribution loss wins over the lower rate, whatever the test lengths say
    for lr, loss in ((1e-3, 0.2), (3e-3, 0.1)):
        path = tmp_path / "runs" / f"lr{lr}" / "result.json"
        record = json.loads(path.read_text())
        record["per_length"]["4"]["loss"] = [loss, loss]
        path.write_text(json.dumps(record))
    (grid,) = leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "out2"))["grids"]
    assert grid["selected_learning_rate"] == 3e-3


def test_the_overview_puts_the_published_score_beside_ours(tmp_path):
    """A model named as in the chomsky preset ("lstm") on a task whose Table 2 entry was read
    gets "paper 1.000" beside our numbers; a model the paper did not run gets none."""
    for label in ("lstm", "gru"):
        record = make_record({4: [1.0, 1.0], 8: [0.7, 0.8]}, cell=label, seed=0)
        record["config"].update(label=label)
        write_run(tmp_path / "runs" / label, record)
    leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "out"))
    overview = (tmp_path / "out" / "leaderboard.md").read_text().split("## Overview")[1]
    assert published.chomsky_score("parity_check", "lstm") == 1.0
    assert published.chomsky_score("parity_check", "elman-bare") == 1.0  # the paper's own RNN
    for trained_longer in ("lstm-30k", "lstm-bare-30k", "elman-bare-300k"):  # "longer"'s
        assert published.chomsky_score("modular_arithmetic", trained_longer) == 1.0
    assert published.chomsky_score("modular_arithmetic", "lstm-s5") is None  # not the paper's
    assert "| task | lstm | gru |" in overview  # Table 2's model first
    assert "| parity_check | 0.750 ± 0.635 (best 0.800; paper 1.000) | 0.750 ± 0.635 (best " \
           "0.800) |" in overview
    assert "paper 1.000" in (tmp_path / "out" / "leaderboard.html").read_text()
    assert leaderboard_html.grid_cell(None, 0.52) == "(paper 0.520)"
    assert published.chomsky_score("even_pairs", "lstm") is None  # not read: left out


def test_loss_by_position_is_the_seeds_interval_at_the_longest_length(tmp_path):
    """Two runs of one configuration (2 seeds and 1): each bin's interval over all 3 seeds of
    the longest length; an empty bin has n = 0; the shorter length's profile is not used. The
    task's plot gains the loss-by-position panel."""
    edges = [0, 1, 2, 4, 8]
    a = make_record({4: [1.0, 1.0], 8: [0.5, 0.7]}, seed=0)
    a["per_length"]["8"]["loss_by_position"] = {
        "bin_edges": edges, "loss": [[1.0, 2.0], None, [3.0, 5.0], [4.0, 4.0]]}
    a["per_length"]["4"]["loss_by_position"] = {"bin_edges": [0, 1, 2, 4],
                                                "loss": [[9.0, 9.0]] * 3}
    b = make_record({4: [1.0], 8: [0.6]}, seed=1)
    b["per_length"]["8"]["loss_by_position"] = {"bin_edges": edges,
                                                "loss": [[3.0], None, [1.0], [2.0]]}
    b["per_length"]["4"]["loss_by_position"] = {"bin_edges": [0, 1, 2, 4],
                                                "loss": [[9.0]] * 3}
    write_run(tmp_path / "runs" / "a", a)
    write_run(tmp_path / "runs" / "b", b)
    write_run(tmp_path / "runs" / "old", make_record({4: [1.0], 8: [0.6]}, label="b"))
    board = leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "out"))
    by_label = {label: next(row for row in board["rows"] if row["config_hash"] == hash_of(
        label=label)) for label in ("a", "b")}
    profile = by_label["a"]["loss_by_position"]
    assert profile["length"] == 8 and profile["bin_edges"] == edges
    assert [p["n"] for p in profile["loss"]] == [3, 0, 3, 3]
    assert [p["mean"] for p in profile["loss"]] == pytest.approx([2.0, None, 3.0, 10 / 3])
    assert profile["loss"][2]["min"] == 1.0 and profile["loss"][2]["max"] == 5.0
    assert by_label["b"]["loss_by_position"] is None  # a record without profiles
    svg = leaderboard_html.plot("parity_check", board["rows"]).svg
    assert "loss by position" in svg
    assert "loss by position" not in leaderboard_html.plot("parity_check", [by_label["b"]]).svg


def test_a_task_scored_at_one_length_plots_accuracy_per_row(tmp_path):
    """MQAR is evaluated at its training length only: a curve against length would be a column
    of dots at one x, so the main panel shows each row's accuracy at that length instead (mean,
    bar = seed min..max), rows numbered in the legend in the table's order. Equal seeds (3 x
    0.1, whose mean is a rounding step above its max) draw a bar of length 0, not an error."""
    for label, accuracy in (("e", [0.2, 0.4]), ("f", [0.1, 0.1, 0.1])):
        record = make_record({TRAIN_LENGTH: accuracy, 2 * TRAIN_LENGTH: accuracy}, cell="gla",
                             task="mqar", label=label)
        del record["per_length"][str(2 * TRAIN_LENGTH)]  # evaluated at the training length only
        record.update(score=[None] * len(accuracy), score_mean=None)
        record["config"].update(width=16 if label == "e" else 32)
        write_run(tmp_path / "runs" / label, record)
    board = leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "out"))
    assert [row["config"].get("width", 64) for row in board["rows"]] == [16, 32]  # best fit first
    svg = leaderboard_html.plot("mqar", board["rows"]).svg
    assert f"mqar: accuracy at length {TRAIN_LENGTH} (mean, bar = seed min..max)" in svg
    assert "1. gla [width=16]" in svg and "2. gla [width=32]" in svg
    assert "accuracy vs length" not in svg
    page = (tmp_path / "out" / "leaderboard.html").read_text()  # the column the rows follow
    assert 'aria-sort=descending>in-dist. accuracy</th>' in page
    assert 'aria-sort=descending>score</th>' not in page
    # a row evaluated at two lengths: the curve against length
    two = [board["rows"][0], {**board["rows"][1], "per_length": board["rows"][1]["per_length"] + [
        {**board["rows"][1]["per_length"][0], "length": 2 * TRAIN_LENGTH}]}]
    assert "accuracy vs length" in leaderboard_html.plot("mqar", two).svg


def test_the_overview_lists_tasks_in_table_2_s_order():
    """By level, then Table 2's row order; a task the table lacks comes after, as it appears."""
    from seqbench import selection

    def grid(task, group):
        return {"task": task, "task_group": group, "model": "lstm", "labelled": True}

    rows = [grid("reverse_string", "context_free"), grid("cycle_navigation", "regular"),
            grid("parity_check", "regular"), grid("my_task", "regular"),
            grid("even_pairs", "regular")]
    tasks, models, _ = selection.matrix(rows)
    assert tasks == ["even_pairs", "parity_check", "cycle_navigation", "my_task",
                     "reverse_string"] and models == ["lstm"]


def test_the_overview_puts_each_model_s_variants_beside_it():
    """Models in the order they first appear, "-neg"/"-bare" variants after their plain name,
    and a variant of a variant ("rg_lru-neg-lowinit") after those."""
    from seqbench import selection

    models = ["elman", "mamba-neg", "lru", "elman-bare", "mamba", "lru-neg",
              "rg_lru-neg-lowinit", "rg_lru", "rg_lru-neg"]
    rows = [{"task": "parity_check", "task_group": "regular", "model": m, "labelled": True}
            for m in models]
    _, ordered, cells = selection.matrix(rows)
    assert ordered == ["elman", "elman-bare", "mamba", "mamba-neg", "lru", "lru-neg",
                       "rg_lru", "rg_lru-neg", "rg_lru-neg-lowinit"]
    assert set(cells) == {("parity_check", m) for m in models}


def test_the_overview_puts_table_2_s_models_first_whatever_the_rows_order():
    """The rows reach `matrix` sorted by score, so a first-seen column order would move with the
    results: Table 2's models (elman, lstm, attention, with their variants) come first, in
    that order, and the others after them as they first appear."""
    from seqbench import selection

    models = ["lru", "attention", "mamba-neg", "lstm-bare", "elman", "lstm", "mamba"]
    rows = [{"task": "cycle_navigation", "task_group": "regular", "model": m, "labelled": True}
            for m in models]
    _, ordered, _ = selection.matrix(rows)
    assert ordered == ["elman", "lstm", "lstm-bare", "attention", "lru", "mamba", "mamba-neg"]


def test_the_overview_leaves_a_one_task_ablation_to_its_task_s_table():
    """A model a preset named on one task only (an ablation of that task, e.g. chomsky's
    "body" variants on cycle_navigation) gets no column in the tasks x models overview, where
    it would be empty on every other row; it stays in its task's table. When the overview has
    one task, every model on it is shown."""
    from seqbench import selection

    def grid(task, model):
        return {"task": task, "task_group": "regular", "model": model, "labelled": True}

    rows = [grid("parity_check", "lstm"), grid("cycle_navigation", "lstm"),
            grid("cycle_navigation", "lstm-one-hot"), grid("parity_check", "rg_lru-lowinit"),
            grid("parity_check", "lstm-30k"), grid("cycle_navigation", "lstm-30k")]
    tasks, models, cells = selection.matrix(rows)
    assert tasks == ["parity_check", "cycle_navigation"]
    assert models == ["lstm", "lstm-30k"]
    assert set(cells) == {(t, m) for t in tasks for m in models}
    _, alone, _ = selection.matrix([grid("cycle_navigation", "lstm"),
                                    grid("cycle_navigation", "lstm-one-hot")])
    assert alone == ["lstm", "lstm-one-hot"]


def test_a_model_at_several_state_sizes_gets_the_capacity_curve(tmp_path):
    """Zoology's Figure 2 layout: a named model run at two widths (two state sizes), each a
    grid of two learning rates, gives one curve of (state size, selected mean, best-of) in the
    task's plot; a model at one state size gives none, nor does one with two grids at one
    state size (they differ in something else)."""
    for width, state_size, scores in ((16, 512, ((1e-3, [0.1, 0.2]), (3e-3, [0.3, 0.9]))),
                                      (32, 2048, ((1e-3, [0.9, 1.0]), (3e-3, [0.8, 0.8])))):
        for lr, accuracy in scores:
            record = make_record({4: accuracy, 8: accuracy}, cell="gla", task="mqar",
                                 state_size=state_size, seed=0)
            record["config"].update(learning_rate=lr, label="gla", width=width)
            write_run(tmp_path / "runs" / f"gla-w{width}-lr{lr}", record)
    alone = make_record({4: [1.0], 8: [1.0]}, cell="attention", task="mqar", state_size=4096,
                        seed=0)
    alone["config"].update(label="attention")
    write_run(tmp_path / "runs" / "attention", alone)
    for eval_size, state_size in ((100, 64), (200, 64), (100, 128)):  # ambiguous at 64
        record = make_record({4: [1.0], 8: [1.0]}, cell="lru", task="mqar",
                             state_size=state_size, seed=0)
        record["config"].update(label="lru", eval_size=eval_size, width=state_size)
        write_run(tmp_path / "runs" / f"lru-{eval_size}-{state_size}", record)
    board = leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "out"))
    capacity = selection.capacity_curves(board["grids"], "mqar")
    measured, curves = capacity
    assert measured == "score" and list(curves) == ["gla"]
    assert [p["state_size"] for p in curves["gla"]] == [512, 2048]
    assert [p["best"] for p in curves["gla"]] == [0.9, 1.0]
    assert [p["mean"] for p in curves["gla"]] == pytest.approx([0.6, 0.95])
    assert selection.capacity_curves(board["grids"], "parity_check")[1] == {}
    assert "capacity: score vs state size" in leaderboard_html.plot(
        "mqar", board["rows"], capacity).svg
    assert "capacity" not in leaderboard_html.plot("mqar", board["rows"]).svg
    assert "capacity: score vs state size" in (tmp_path / "out" / "leaderboard.html").read_text()


def test_capacity_at_the_training_length_plots_the_in_distribution_accuracy(tmp_path):
    """MQAR as Zoology measures it, at its training length only: no score beyond it, so the
    capacity curve is the in-distribution accuracy (selected mean; best seed of the grid)."""
    for width, state_size, accuracy in ((16, 512, [0.2, 0.4]), (32, 2048, [1.0, 0.9])):
        record = make_record({TRAIN_LENGTH: accuracy, 2 * TRAIN_LENGTH: accuracy}, cell="gla",
                             task="mqar", state_size=state_size, seed=0)
        del record["per_length"][str(2 * TRAIN_LENGTH)]  # make_record needs a longer length
        record["config"].update(label="gla", width=width)
        record.update(score=[None, None], score_mean=None)  # as a run without longer lengths
        write_run(tmp_path / "runs" / f"gla-w{width}", record)
    board = leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "out"))
    capacity = selection.capacity_curves(board["grids"], "mqar")
    measured, curves = capacity
    points = curves["gla"]
    assert measured == "in-distribution accuracy"
    assert [(p["state_size"], p["best"]) for p in points] == [(512, 0.4), (2048, 1.0)]
    assert [p["mean"] for p in points] == pytest.approx([0.3, 0.95])
    assert "capacity: in-distribution accuracy vs state size" in leaderboard_html.plot(
        "mqar", board["rows"], capacity).svg
    # A selected rate with one seed left (a seed diverged, or a run of one seed) has no
    # interval: its point is drawn without a band.
    one_seed = {"gla": [{**points[0], "ci95": None}, points[1]]}
    assert "capacity: in-distribution accuracy" in leaderboard_html.plot(
        "mqar", board["rows"], (measured, one_seed)).svg


def test_runs_of_one_configuration_under_two_names_stay_two_rows(tmp_path):
    """Runs of one configuration (one config hash) that presets named differently, say a model
    and "its 10 more seeds", are two rows, each under its own name with its own seeds: seeds
    merge only under one name, so no row carries another's seeds under its label."""
    for folder, label, seed, score in (("a", "lstm-bare", 0, 0.5), ("b", "lstm-bare-10more", 1, 0.7),
                                       ("c", "lstm-bare", 2, 0.9)):
        record = make_record({4: [1.0], 8: [score]}, seed=seed)
        record["config"]["label"] = label
        write_run(tmp_path / "runs" / folder, record)
    board = leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "out"))
    rows = {row["label"]: row for row in board["rows"]}
    assert sorted(rows) == ["lstm-bare", "lstm-bare-10more"]
    assert rows["lstm-bare"]["seeds"] == 2 and rows["lstm-bare"]["score"]["mean"] == pytest.approx(0.7)
    assert rows["lstm-bare-10more"]["seeds"] == 1
    assert rows["lstm-bare-10more"]["score"]["mean"] == pytest.approx(0.7)
    assert all(row["conflict"] is None and row["variant"] == "" for row in rows.values())
    assert len({row["id"] for row in board["rows"]}) == 2
