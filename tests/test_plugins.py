"""A user's own cells and tasks: --user_module (a file or a module) and the `seqbench.plugins`
entry points, end to end into the leaderboard."""

import importlib.metadata
import json
import os
import subprocess
import sys

import pytest

from seqbench import cells, engine, plugins, tasks

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "experiments", "my_cell.py")


@pytest.fixture
def local_registries(monkeypatch):
    """Registrations made by the test land in copies of the registries, dropped afterwards."""
    for registry in (cells._REGISTRY, tasks._REGISTRY):
        monkeypatch.setattr(registry, "_factories", dict(registry._factories))
    monkeypatch.setattr(plugins, "_loaded", {})


def test_the_readme_s_user_module_trains_and_reaches_the_leaderboard(tmp_path):
    """`python -m seqbench.train --user_module=my_cell.py --cell=my_cell ...` end to end."""
    run = [sys.executable, "-m", "seqbench.train", f"--user_module={EXAMPLE}", "--cell=my_cell",
           "--task=parity_check", "--width=8", "--depth=1", "--steps=4", "--train_length=4",
           "--eval_lengths=4,8", "--eval_size=8", "--log_every=2", f"--workdir={tmp_path / 'run'}"]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["cell"] == "my_cell" and record["config"]["user_module"] == EXAMPLE
    board = subprocess.run([sys.executable, "-m", "seqbench.leaderboard",
                            f"--runs={tmp_path / 'run'}", f"--out={tmp_path / 'board'}"],
                           capture_output=True, text=True, timeout=300)
    assert board.returncode == 0, board.stderr
    rows = json.loads((tmp_path / "board" / "leaderboard.json").read_text())["rows"]
    assert [row["cell"] for row in rows] == ["my_cell"]


def test_a_dotted_module_and_a_bad_module_are_loaded_or_named(local_registries, tmp_path,
                                                              monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "user_cells.py").write_text(open(EXAMPLE).read())
    config = engine.Config(user_module="user_cells", cell="my_cell", task="parity_check",
                           width=8, depth=1)
    cell, _, _ = engine.build(config)
    assert cell.name == "my_cell"
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ValueError, match="'broken' failed to import: RuntimeError: boom"):
        plugins.load_user_module("broken")
    with pytest.raises(ValueError, match="no such file 'nope/cell.py'"):
        plugins.load_user_module("nope/cell.py")


def test_installed_packages_register_through_the_entry_point_group(local_registries, tmp_path,
                                                                    monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "my_package_plugin.py").write_text(open(EXAMPLE).read())
    fake = importlib.metadata.EntryPoint(name="my_package", value="my_package_plugin",
                                         group=plugins.GROUP)
    monkeypatch.setattr(plugins, "entry_points", lambda: [fake])
    assert "my_cell" not in cells.names()
    assert plugins.load_entry_points() == ["my_package"]
    assert "my_cell" in cells.names()
