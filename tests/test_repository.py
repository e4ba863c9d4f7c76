"""The repository keeps its promises to a new user: layout, CI = README's test command."""

import os
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_layout_matches_the_product_card():
    for path in ("pyproject.toml", "seqbench", "kernels", "experiments", "tests",
                 "BUILD_NOTES.md", "README.md", ".ci/run"):
        assert (ROOT / path).exists(), path


def test_ci_runs_the_readme_test_command_verbatim():
    """.ci/run may install system packages first; its last command is the README's test line."""
    ci_lines = [l for l in (ROOT / ".ci/run").read_text().splitlines()
                if l.strip() and not l.startswith("#")]
    readme_commands = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    assert "pytest" in ci_lines[-1]
    assert ci_lines[-1].strip() in [c.strip() for c in readme_commands]


def test_every_python_example_of_the_readme_runs():
    """The README's fenced Python blocks, run in order in one fresh process (they register a
    task and a cell, which must not leak into this one), so the docs cannot drift."""
    import re
    import subprocess
    import sys
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 5
    script = "\n".join(f"# --- README block {i}\n{block}" for i, block in enumerate(blocks))
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_seqbench_kernels_and_another_top_level_kernels_package_import_side_by_side(tmp_path):
    """PyPI's `kernels` distribution (downloadable compute kernels) installs a top-level
    `kernels` package; ours is `seqbench.kernels` (the repository's kernels/ folder, linked
    into the package) and no top-level `kernels` is installed, so the two never shadow each
    other. A stand-in for the other package on the path, in a fresh process outside the
    checkout."""
    import subprocess
    import sys
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / "__init__.py").write_text("ORIGIN = 'the other kernels package'\n")
    code = ("import kernels, seqbench.kernels as ours\n"
            "assert kernels.ORIGIN == 'the other kernels package', kernels.__file__\n"
            "assert callable(ours.linear_scan) and ours is not kernels\n"
            "assert not hasattr(kernels, 'linear_scan')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_ruff_finds_nothing():
    """The lint configuration in pyproject.toml ([tool.ruff]) holds for the whole tree."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "seqbench", "kernels", "tests",
                           "experiments"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]


def test_the_readme_documents_exactly_the_run_record_s_fields():
    """The README's result.json table and `results.RECORD` name the same fields."""
    from seqbench import results
    text = (ROOT / "README.md").read_text()
    table = text.split("`result.json`, schema version")[1].split("\n\n")[1]
    documented = set()
    for line in table.splitlines()[2:]:
        documented |= set(re.findall(r"`([a-z_]+)`", line.split(" | ")[0]))
    assert documented == set(results.RECORD)
