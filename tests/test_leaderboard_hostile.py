"""Issue 16, items 3-10: the leaderboard read hostile and careless inputs (each test failed
before its fix). Every input is a row or a skip with a reason, never an exception; nothing it
writes runs script or formulas; a forged or conflicting result is never silently merged."""

import csv
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqbench import leaderboard, leaderboard_read, logs
from tests.test_leaderboard import make_record, write_run

OWASP_CSV = ["=1+1", "+1+1", "-1+1", "@SUM(1+1)", "\t=1+1", "\r=1+1",
             "=cmd|' /C calc'!A0", "=HYPERLINK(\"http://x\")"]


def build(tmp_path, runs=None):
    with logs.captured() as lines:
        board = leaderboard.build([str(runs or tmp_path / "runs")], str(tmp_path / "out"))
    return board, lines


def test_a_forged_config_hash_is_skipped_and_different_numbers_for_one_seed_conflict(tmp_path):
    real = make_record({4: [1.0], 8: [0.9]}, seed=0)
    write_run(tmp_path / "runs" / "real", real)
    forged = make_record({4: [1.0], 8: [0.1]}, seed=0, label="b")
    path = tmp_path / "runs" / "forged" / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**forged, "config_hash": real["config_hash"]}))
    other_machine = make_record({4: [1.0], 8: [0.8]}, seed=0)  # same config and seed
    other_machine["environment"]["cpu"] = "another processor"
    write_run(tmp_path / "runs" / "other_machine", other_machine)
    board, lines = build(tmp_path)
    assert any("forged" in l and "does not match its config" in l for l in lines)
    rows = [r for r in board["rows"] if r["config_hash"] == real["config_hash"]]
    assert len(rows) == 2 and all("numbers" in r["conflict"] for r in rows)
    assert sorted(r["score"]["mean"] for r in rows) == pytest.approx([0.8, 0.9])


def test_links_are_relative_encoded_paths_never_a_scheme(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative --runs and --out = --runs: the link is the name
    write_run(tmp_path / "runs" / "javascript:alert(1)", make_record({4: [1.0], 8: [0.5]}))
    board = leaderboard.build(["runs"], "runs")
    (row,) = board["rows"]
    assert row["runs"] == ["javascript%3Aalert%281%29"]
    page = (tmp_path / "runs" / "leaderboard.html").read_text()
    assert 'href="javascript%3Aalert%281%29"' in page and 'href="javascript:' not in page


def test_csv_cells_never_start_a_formula(tmp_path):
    for i, payload in enumerate(OWASP_CSV):
        write_run(tmp_path / "runs" / f"r{i}", make_record({4: [1.0], 8: [0.5]}, task=payload,
                                                            cell="lstm", family=payload))
    build(tmp_path)
    with open(tmp_path / "out" / "leaderboard.csv", newline="") as f:
        cells = [cell for line in csv.reader(f) for cell in line]
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")
                or (c[:1] == "-" and not c[1:2].isdigit())]
    assert "'=1+1" in cells and "'@SUM(1+1)" in cells and "' =1+1" in cells  # \r=1+1


def test_markdown_escapes_html_in_names(tmp_path):
    write_run(tmp_path / "runs" / "a", make_record({4: [1.0], 8: [0.5]},
                                                   task="<script>alert(1)</script>",
                                                   family="<img src=x onerror=alert(1)>"))
    build(tmp_path)
    markdown = (tmp_path / "out" / "leaderboard.md").read_text()
    for raw in ("<script>", "<img", "<iframe"):
        assert raw not in markdown
    assert "&lt;script&gt;" in markdown


@pytest.mark.parametrize("change, reason", [
    (lambda r: r.update(score=[1e308]), "score must hold numbers in [0, 1]"),
    (lambda r: r["per_length"]["8"].update(accuracy=[42]), "accuracy must hold numbers in [0, 1]"),
    (lambda r: r["per_length"]["8"].update(accuracy=[-0.5]), "in [0, 1]"),
    (lambda r: r.update(param_count=10**400), "param_count"),
    (lambda r: r["per_length"].update({"9" * 5001: r["per_length"]["8"]}), "is not a length"),
    (lambda r: r["config"].update(seed=[1, 2]), "config is not a valid configuration"),
    (lambda r: r["environment"].update(device_kind=["cpu"]), "environment.device_kind"),
    (lambda r: r["config"].update(post_trained_from=7), "post_trained_from"),
])
def test_malformed_records_are_skipped_with_a_reason(change, reason, tmp_path):
    record = make_record({4: [1.0], 8: [0.5]})
    change(record)
    path = tmp_path / "runs" / "bad" / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))  # the hash as it was: skipped for its content first
    write_run(tmp_path / "runs" / "good", make_record({4: [1.0], 8: [0.7]}, cell="gru"))
    board, lines = build(tmp_path)
    assert len(board["rows"]) == 1 and len(lines) == 1 and reason in lines[0], lines


def test_deep_nesting_and_mathtext_in_names_do_not_crash(tmp_path):
    path = tmp_path / "runs" / "deep" / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text("[" * 200_000 + "]" * 200_000)
    write_run(tmp_path / "runs" / "tex", make_record({4: [1.0], 8: [0.5]}, cell="$\\frac{$"))
    board, lines = build(tmp_path)
    assert len(board["rows"]) == 1 and any("deep" in l for l in lines)
    assert (tmp_path / "out" / "leaderboard.html").exists()


def test_special_files_are_skipped_never_read(tmp_path):
    fifo = tmp_path / "runs" / "fifo" / "result.json"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    (tmp_path / "runs" / "zero").mkdir()
    os.symlink("/dev/zero", tmp_path / "runs" / "zero" / "result.json")
    write_run(tmp_path / "runs" / "good", make_record({4: [1.0], 8: [0.7]}))
    board, lines = build(tmp_path)
    assert len(board["rows"]) == 1
    assert sum("not a regular file" in l for l in lines) == 2


def test_plot_files_of_similar_task_names_do_not_collide(tmp_path):
    for name in ("a/b", "a_b"):
        write_run(tmp_path / "runs" / name.replace("/", "-"),
                  make_record({4: [1.0], 8: [0.5]}, task=name))
    build(tmp_path)
    assert len(list((tmp_path / "out" / "plots").glob("*.png"))) == 2


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=12)
FIELDS = sorted(make_record({4: [1.0], 8: [0.5]}))


def test_seed_status_holding_lists_is_a_skip():
    """Found by the property test below (2026-12-02): unhashable seed_status values crashed."""
    record = make_record({4: [1.0], 8: [0.5]})
    record["seed_status"] = [[]]
    assert "seed_status values must be 'ok' or 'diverged'" in leaderboard_read.check(record)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=JSON, raw=st.binary(max_size=64))
def test_any_json_or_bytes_is_a_row_or_a_skip(tmp_path_factory, field, value, raw):
    root = tmp_path_factory.mktemp("fuzz")
    record = make_record({4: [1.0], 8: [0.5]})
    record[field] = value
    for name, content in (("mutated", json.dumps(record).encode()), ("bytes", raw)):
        path = root / name / "result.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
    runs = []
    found = leaderboard_read.find_results([str(root)])
    assert len(found) == 2  # both files are read, whatever they hold
    for folder, path in found:
        parsed, reason, _ = leaderboard_read.load(path)
        assert (parsed is None) != (reason is None)
        if parsed is not None:
            runs.append(("x", parsed))
    rows = leaderboard.aggregate(runs)
    leaderboard.to_csv(rows)
    leaderboard_html_module = __import__("seqbench.leaderboard_html", fromlist=["x"])
    leaderboard_html_module.to_markdown(rows, [], "fuzz")


def test_an_out_path_that_is_a_file_is_one_line(tmp_path):
    import subprocess
    import sys
    write_run(tmp_path / "runs" / "a", make_record({4: [1.0], 8: [0.5]}))
    (tmp_path / "taken").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        leaderboard.build([str(tmp_path / "runs")], str(tmp_path / "taken"))
    proc = subprocess.run([sys.executable, "-m", "seqbench.leaderboard",
                           f"--runs={tmp_path / 'runs'}", f"--out={tmp_path / 'taken'}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "is a file" in proc.stderr
