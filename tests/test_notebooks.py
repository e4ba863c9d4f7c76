"""The Colab notebooks (experiments/notebooks/*.ipynb) run top to bottom with SMOKE = True.

Each notebook is executed with nbclient in a fresh kernel running *this* interpreter
(sys.executable: the kernel spec comes from the installed ipykernel, never from a kernel
registered elsewhere on the machine), in a temporary working directory and with TMPDIR pointing
into it, so nothing is written into the repository. Also checked: the papermill parameters cell
(exactly one, defining SMOKE), that the committed notebooks carry no outputs but images, and
that `make_notebooks.py` regenerates them unchanged.
"""

from __future__ import annotations

import ast
import os
import pathlib
import runpy
import sys
import time

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
FOLDER = ROOT / "experiments" / "notebooks"
NAMES = ("quickstart", "kernels", "length_generalization")
CELL_TIMEOUT_S = 300  # per cell (nbclient's timeout); a whole SMOKE notebook takes 5-25 s


def load(name: str) -> nbformat.NotebookNode:
    return nbformat.read(FOLDER / f"{name}.ipynb", as_version=4)


def parameters_cells(nb) -> list:
    return [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]


def assigned_names(source: str) -> set[str]:
    return {target.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}


def test_every_notebook_is_tested():
    assert sorted(p.stem for p in FOLDER.glob("*.ipynb")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_one_parameters_cell_defines_smoke(name):
    cells = parameters_cells(load(name))
    assert len(cells) == 1, f"{name}: {len(cells)} cells tagged 'parameters'"
    assert cells[0].cell_type == "code"
    assert "SMOKE" in assigned_names(cells[0].source)
    namespace = {}
    exec(cells[0].source, namespace)
    assert namespace["SMOKE"] is True, "the committed default is SMOKE = True"


@pytest.mark.parametrize("name", NAMES)
def test_committed_without_outputs_except_images(name):
    for cell in load(name).cells:
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            data = output.get("data", {})
            assert output.output_type == "display_data" and any(
                kind.startswith("image/") for kind in data), (
                f"{name}: cell {cell.id} has a non-image output ({output.output_type}: "
                f"{sorted(data) or output.get('name')})")


def test_generator_reproduces_the_committed_notebooks():
    script = runpy.run_path(str(FOLDER / "make_notebooks.py"))
    for stem, cells in script["NOTEBOOKS"].items():
        generated = script["notebook"](cells, stem)
        committed = load(stem)
        assert [c.source for c in generated.cells] == [c.source for c in committed.cells], stem
        assert [c.metadata for c in generated.cells] == [c.metadata for c in committed.cells]


def kernel_manager() -> KernelManager:
    """A manager whose "python3" kernel is ipykernel's own spec: argv[0] = sys.executable."""
    specs = KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)
    km = KernelManager(kernel_name="python3", kernel_spec_manager=specs)
    assert km.kernel_spec.argv[0] in (sys.executable, "python", "python3"), km.kernel_spec.argv
    return km


@pytest.mark.slow  # 5-25 s each on a 2-core CPU, the three together under a minute
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_with_smoke(name, tmp_path):
    nb = load(name)
    (cell,) = parameters_cells(nb)
    cell.source += "\nSMOKE = True  # injected by tests/test_notebooks.py"
    client = NotebookClient(nb, km=kernel_manager(), kernel_name="python3",
                            timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(tmp_path)}})
    env = {**os.environ, "TMPDIR": str(tmp_path),  # the notebooks' tempfile folders
           # XLA_FLAGS as the test run's (conftest: the fast-compile flags this jaxlib accepts;
           # compile time is ~all of a SMOKE run, -40% with -O0 alone on a 2-core CPU)
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}  # plots become outputs
    start = time.perf_counter()
    client.execute(env=env)  # raises CellExecutionError naming the failing cell
    print(f"{name}: executed in {time.perf_counter() - start:.1f} s")
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert images, f"{name}: no plot was produced"
