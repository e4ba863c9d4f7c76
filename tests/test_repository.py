"""The repository keeps its promises to a new user: layout, CI = README's test command."""

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
