"""Writes the Colab notebooks of this folder from the cell sources below (deterministic).

    .venv/bin/python experiments/notebooks/make_notebooks.py             # rewrite the .ipynb
    .venv/bin/python experiments/notebooks/make_notebooks.py --real-run  # + plots of SMOKE=False
    .venv/bin/python experiments/notebooks/make_notebooks.py --clear     # no outputs at all
    .venv/bin/python experiments/notebooks/make_notebooks.py --real-run kernels  # one notebook

The notebooks are stored with fixed cell ids, no timestamps and no outputs except the plots
(image outputs) of one real run, so they read well on GitHub. `--real-run` executes each
notebook with SMOKE = False (minutes on a CPU; the machine and run time are printed) and keeps
only its images. A plain run keeps the images already committed for every cell whose source is
unchanged and drops the others, so the same sources give the same bytes.

Each notebook has one `parameters`-tagged cell (papermill's convention) holding `SMOKE`: True
(the default, what CI executes through tests/test_notebooks.py) runs at toy sizes in seconds on
a CPU; False is a real small run (minutes on a CPU, much less on a Colab GPU/TPU). The sizes
derived from `SMOKE` sit in the cell after the parameters cell, so papermill's injected
`SMOKE = False` (a cell inserted after the parameters cell) still reaches them:

    papermill experiments/notebooks/quickstart.ipynb out.ipynb -p SMOKE False
"""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile
import textwrap
import time

import nbformat

HERE = pathlib.Path(__file__).resolve().parent
# The repository Colab installs from. Forks: change it here and rerun this script.
REPO_URL = "https://github.com/seqbench/seqbench"

INSTALL = f'''\
# Colab only: install seqbench from the repository (about a minute). Locally nothing is
# installed: run the notebook in the checkout's environment (`pip install -e '.[notebooks]'`).
import sys

if "google.colab" in sys.modules:
    %pip install -q "git+{REPO_URL}"
'''

BACKEND = '''\
import jax

print("backend:", jax.default_backend())  # "tpu", "gpu" or "cpu"
print("devices:", jax.devices())
'''


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str, *tags: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(textwrap.dedent(text).strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def notebook(cells: list[nbformat.NotebookNode], stem: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    for i, cell in enumerate(cells):
        cell.id = f"{stem}-{i:02d}"  # fixed ids: regeneration is byte-identical
    nb.metadata = {
        "accelerator": "GPU",  # Colab opens it on a GPU runtime (TPU/CPU work too)
        "colab": {"provenance": []},
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


# ------------------------------------------------------------------------------- quickstart

QUICKSTART = [
    md("""
    # seqbench quickstart: does it still work far beyond the training length?

    This notebook trains two recurrent cells on one task, evaluates them on sequences much
    longer than any seen in training, plots accuracy against length and exports a leaderboard.

    * **Task** `parity_check`: is the number of 1s in a bit string even? A regular language
      from *Neural Networks and the Chomsky Hierarchy* (Delétang et al., ICLR 2023), whose
      protocol we follow: train on lengths drawn uniformly from 1..L, test far beyond L.
    * **Cells** `lstm` (Hochreiter & Schmidhuber, 1997), a nonlinear RNN, which Delétang et al.
      found to generalize on the regular tasks, and `lru`, the Linear Recurrent Unit (Orvieto et
      al., *Resurrecting Recurrent Neural Networks for Long Sequences*, ICML 2023), a diagonal
      linear recurrence whose transition does not depend on the input, so its state cannot flip
      at every 1 the way tracking parity requires.

    Runs on Colab (TPU, GPU or CPU runtime) or locally. The run folders go to a temporary
    directory.
    """),
    code(INSTALL),
    md("""
    ## Parameters

    `SMOKE = True` runs everything at toy sizes in seconds on a CPU (what CI executes);
    set `SMOKE = False` for a real small run (a few minutes on a CPU).
    """),
    code("""
    SMOKE = True  # True: toy sizes (CI, seconds); False: a real small run (minutes on a CPU)
    TASK = "parity_check"  # any name in seqbench.tasks.names()
    CELLS = ["lstm", "lru"]  # any names in seqbench.cells.names()
    """, "parameters"),
    code("""
    # Sizes follow SMOKE (kept out of the parameters cell so papermill's `-p SMOKE False` reaches them).
    TRAIN_LENGTH = 8 if SMOKE else 16  # training lengths: uniform in 1..TRAIN_LENGTH
    STEPS = 4 if SMOKE else 1000  # optimiser steps
    WIDTH = 8 if SMOKE else 32  # model width
    SEEDS = 1 if SMOKE else 3  # seeds trained together (vmap)
    EVAL_LENGTHS = (8, 16) if SMOKE else tuple(TRAIN_LENGTH * 2**k for k in range(7))  # up to 64 L
    EVAL_SIZE = 8 if SMOKE else 256  # test sequences per length
    """),
    md("## Backend"),
    code(BACKEND),
    md("""
    ## Configure the runs

    A run is described by one `seqbench.engine.Config` (every field is declared with its help
    text in `seqbench/engine/config.py`). We start from the `smoke` preset, an LSTM on `even_pairs`, and change
    the cell, the task and the sizes.
    """),
    code("""
    import dataclasses

    import seqbench
    import seqbench.engine

    base = seqbench.engine.Config(**seqbench.engine.PRESETS["smoke"])
    configs = {
        cell: dataclasses.replace(
            base, cell=cell, task=TASK, width=WIDTH, train_length=TRAIN_LENGTH, steps=STEPS,
            seeds=SEEDS, eval_lengths=EVAL_LENGTHS, eval_size=EVAL_SIZE,
            log_every=max(STEPS // 5, 1))
        for cell in CELLS
    }
    configs[CELLS[0]]
    """),
    md("""
    ## Train and evaluate

    `seqbench.engine.run(config, workdir)` trains every seed at once, evaluates each at every
    length in `eval_lengths` (from the zero state, streaming long sequences in pieces) and
    writes `config.json`, `metrics.jsonl` and `result.json` into `workdir`.
    """),
    code("""
    import os
    import tempfile

    RUNS = tempfile.mkdtemp(prefix="seqbench-quickstart-")
    for cell, config in configs.items():
        print(f"==== {cell} on {TASK}")
        seqbench.engine.run(config, os.path.join(RUNS, cell))
    """),
    md("""
    ## Accuracy against length

    Each `result.json` holds, per evaluation length `n`, the accuracy of every seed in
    `per_length[str(n)]["accuracy"]`. Thick lines: mean over seeds; thin lines: single seeds.
    Lengths right of the dashed line were never seen in training.
    """),
    code("""
    import json

    import matplotlib.pyplot as plt
    import numpy as np

    task = seqbench.tasks.get(TASK)
    fig, ax = plt.subplots(figsize=(7, 4))
    for cell in CELLS:
        with open(os.path.join(RUNS, cell, "result.json")) as f:
            result = json.load(f)
        lengths = sorted(int(n) for n in result["per_length"])
        accuracy = np.array([result["per_length"][str(n)]["accuracy"] for n in lengths], float)
        (line,) = ax.plot(lengths, np.nanmean(accuracy, axis=1), "o-", lw=2,
                          label=f"{cell} (score {result['score_mean']:.2f})")
        ax.plot(lengths, accuracy, color=line.get_color(), lw=0.8, alpha=0.4)
    ax.axvline(TRAIN_LENGTH, color="gray", ls="--", label="training length")
    ax.axhline(task.chance, color="gray", ls=":", label="chance")
    ax.set(xlabel="sequence length", ylabel="accuracy", ylim=(0, 1.02),
           title=f"{TASK}: trained on lengths 1..{TRAIN_LENGTH}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [str(n) for n in lengths])
    ax.minorticks_off()
    ax.legend(loc="lower left")
    plt.show()
    """),
    md("""
    Input-dependent linear recurrences such as `mamba` can flip their state, but only when
    their eigenvalues may be negative (Grazzi et al., *Unlocking State-Tracking in Linear RNNs
    Through Negative Eigenvalues*, ICLR 2025). To compare, set `CELLS = ["mamba"]` and add
    `cell_hparams=(("negative_eigenvalues", True),)` to the `dataclasses.replace` call above.
    """),
    md("""
    ## Leaderboard

    `seqbench.leaderboard.build(runs_folders, out)` reads every `result.json` under the folders
    and writes `leaderboard.{json,csv,md,html}` and `plots/<task>.png`. Runs of the same task,
    cell and configuration merge as seeds, so results from other machines merge by copying
    their run folders next to these. The score is the mean accuracy beyond the training length;
    intervals are 95% over seeds.
    """),
    code("""
    import pathlib

    import seqbench.leaderboard
    from IPython.display import Markdown, display

    BOARD = tempfile.mkdtemp(prefix="seqbench-leaderboard-")
    seqbench.leaderboard.build([RUNS], BOARD)
    print("written:", sorted(os.listdir(BOARD)), "in", BOARD)
    display(Markdown(pathlib.Path(BOARD, "leaderboard.md").read_text()))
    """),
    md("""
    Next: `kernels.ipynb` (the scan implementations underneath the linear recurrences) and
    `length_generalization.ipynb` (training interventions that extend the length a recurrent
    model holds up to).
    """),
]

# ---------------------------------------------------------------------------------- kernels

KERNELS = [
    md("""
    # The linear-recurrence kernels, side by side

    Diagonal state-space models and linear RNNs (S4D, S5, LRU, Mamba, GLA, RG-LRU, ...) all
    compute the first-order linear recurrence

    $$h_t = a_t \\odot h_{t-1} + b_t, \\qquad t = 1..T,$$

    with `seqbench.kernels.linear_scan(a, b, h0, impl=...)`. One function, several implementations:

    * `sequential`: `jax.lax.scan`, one step after another (T sequential steps, least work);
    * `associative`: `jax.lax.associative_scan` on the pairs (a, b) with
      (a₁, b₁) ∘ (a₂, b₂) = (a₁a₂, a₂b₁ + b₂): O(log T) depth (Blelloch, *Prefix Sums and Their
      Applications*, 1990; Martin & Cundy, *Parallelizing Linear Recurrent Neural Nets Over
      Sequence Length*, ICLR 2018);
    * `chunked`: a scan inside chunks of `chunk_size` steps, then across the chunk ends;
    * `pallas`: a Pallas kernel for GPU/TPU (skipped by the benchmark on other backends).

    All accumulate in float32 and are held equal to a float64 reference by the test suite.
    This notebook checks them against each other, then times them on the current backend.
    """),
    code(INSTALL),
    md("""
    ## Parameters

    `SMOKE = True`: one small shape, seconds on a CPU (what CI runs). `SMOKE = False`: the
    shapes of `python -m seqbench.kernels.bench` in float32 and bfloat16 (about a minute on a CPU).
    """),
    code("""
    SMOKE = True  # True: one toy shape (CI, seconds); False: the benchmark's shapes (a minute on a CPU)
    """, "parameters"),
    code("""
    # Sizes follow SMOKE (kept out of the parameters cell so papermill's `-p SMOKE False` reaches them).
    SHAPES = [(2, 128, 16)] if SMOKE else [(16, 1024, 256), (1, 16384, 64), (64, 256, 512)]  # (B, T, D)
    DTYPES = ["float32"] if SMOKE else ["float32", "bfloat16"]
    REPEATS = 1 if SMOKE else 5  # timed calls per measurement (median)
    """),
    md("## Backend"),
    code(BACKEND),
    md("""
    ## Do the implementations agree?

    A random input with an odd length (37 steps) and a non-zero initial state; every
    implementation against `sequential`, on both outputs: the states `h` (T, D) and the last
    state `h_last`. Off GPU/TPU the Pallas kernel runs in Pallas' interpreter (`interpret="gpu"`),
    which executes the same kernel code anywhere.
    """),
    code("""
    import jax.numpy as jnp

    from seqbench.kernels.linear_recurrence import IMPLS, linear_scan

    key_a, key_b, key_h = jax.random.split(jax.random.key(0), 3)
    a = jax.random.uniform(key_a, (2, 37, 8), minval=0.5, maxval=1.0)  # decays, (B, T, D)
    b = jax.random.normal(key_b, (2, 37, 8))
    h0 = jax.random.normal(key_h, (2, 8))
    h_ref, last_ref = linear_scan(a, b, h0, impl="sequential")

    on_accelerator = jax.default_backend() in ("gpu", "tpu")
    options = {"chunked": {"chunk_size": 8}, "pallas": {} if on_accelerator else {"interpret": "gpu"}}
    for impl in IMPLS:
        h, last = linear_scan(a, b, h0, impl=impl, **options.get(impl, {}))
        error = max(float(jnp.max(jnp.abs(h - h_ref))), float(jnp.max(jnp.abs(last - last_ref))))
        print(f"{impl:<12} max |difference from sequential| = {error:.1e}")
        assert error < 1e-4, impl
    """),
    md("""
    ## Timing and bandwidth

    `seqbench.kernels.bench.run` times the forward pass and forward + backward (median of `REPEATS`
    calls after a warm-up) of every implementation, and `impl="auto"`, the one chosen for this
    backend. A linear scan does almost no arithmetic per byte, so the yardstick is memory
    bandwidth: GB/s counts the minimum bytes moved (forward: read a, b, write h; backward five
    more arrays), and `%copy` compares it with a plain `y = x * s` over a large buffer measured
    in the same run. Only ratios within one run are comparable.
    """),
    code("""
    from seqbench.kernels import bench

    rows, copy_gbs = bench.run(SHAPES, DTYPES, ["auto", *IMPLS], REPEATS)
    print(f"copy bandwidth (y = x * s, float32): {copy_gbs:.2f} GB/s")
    print(bench.format_table(rows))
    """),
    md("## Milliseconds per implementation"),
    code("""
    import matplotlib.pyplot as plt
    import numpy as np

    groups = list(dict.fromkeys((r.shape, r.dtype) for r in rows))  # in the order measured
    ncols = min(len(groups), 3)
    nrows = -(-len(groups) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.5 * ncols, 3.5 * nrows), squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for ax, (shape, dtype) in zip(axes.flat, groups):
        group = [r for r in rows if (r.shape, r.dtype) == (shape, dtype)]
        x = np.arange(len(group))
        ax.bar(x - 0.2, [r.forward_ms for r in group], 0.4, label="forward")
        ax.bar(x + 0.2, [r.train_ms for r in group], 0.4, label="forward + backward")
        ax.set_xticks(x, [r.impl for r in group], rotation=30, ha="right")
        ax.set(title=f"{shape} {dtype}", ylabel="ms (lower is better)")
    axes[0][0].legend()
    fig.suptitle(f"seqbench.kernels.linear_scan on {jax.default_backend()} ({jax.devices()[0].device_kind})")
    fig.tight_layout()
    plt.show()
    """),
]

# ---------------------------------------------------------------------- length generalisation

LENGTH = [
    md("""
    # Length generalisation: initial-state interventions

    Buitrago Ruiz & Gu, *Understanding and Improving Length Generalization in Recurrent Models*
    (ICML 2025), argue that recurrent models fail beyond their training length because training
    always starts from the zero state, so it never visits the states that long sequences reach
    (the *unexplored states hypothesis*). Their cure changes the state each training sequence
    starts from (`seqbench.interventions`):

    | `initial_state` | training sequences start from |
    | --- | --- |
    | `zero` | h₀ = 0, the usual training (baseline) |
    | `noise` | h₀ ~ N(0, σ²) per state entry (σ = `initial_state_std`) |
    | `fitted_noise` | h₀ ~ N(μ, s²), μ and s fitted to the final states seen in training |
    | `state_passing` | the final state of another sequence (the previous batch's) |

    Evaluation always starts from zeros. Here: an `lru` (Orvieto et al., ICML 2023) on
    multi-query associative recall, `mqar` (Arora et al., *Zoology*, ICLR 2024): key-value pairs
    followed by queries for them. Trained at length L, evaluated at L × 1, 2, 4, ...; the
    *effective length* is the longest length whose accuracy stays at ≥ 90% of the
    in-distribution accuracy. This is a smaller, easier version of the preset
    `experiments/configs/length_interventions.py` (2 key-value pairs over 16 tokens), which a
    small LRU learns in-distribution within a minute on a CPU.
    """),
    code(INSTALL),
    md("""
    ## Parameters

    `SMOKE = True`: toy sizes, seconds on a CPU (what CI runs; the numbers mean nothing).
    `SMOKE = False`: a real small run, 2 seeds per intervention (a few minutes on a CPU).
    """),
    code("""
    SMOKE = True  # True: toy sizes (CI, seconds); False: a real small run (minutes on a CPU)
    CELL = "lru"  # any recurrent cell of seqbench.cells (not attention)
    TASK = "mqar"  # "mqar", "copy", or "text_lm" (bytes of real text: the loss-by-position figure)
    INTERVENTIONS = ["zero", "noise", "fitted_noise", "state_passing"]
    """, "parameters"),
    code("""
    # Sizes follow SMOKE (kept out of the parameters cell so papermill's `-p SMOKE False` reaches them).
    # 2 key-value pairs at every length: longer sequences only add queries and distance
    TASK_HPARAMS = {"vocab_size": 16, "num_kv_pairs": 2} if TASK == "mqar" else {}
    TRAIN_LENGTH = 8 if SMOKE else 16  # every training sequence has this length
    STEPS = 4 if SMOKE else 1000
    LEARNING_RATE = 1e-2
    WIDTH, DEPTH = (8, 1) if SMOKE else (32, 2)
    BATCH_SIZE = 4 if SMOKE else 32
    SEEDS = 1 if SMOKE else 2
    FACTORS = (1, 2) if SMOKE else (1, 2, 4, 8, 16, 32, 64)  # evaluated at TRAIN_LENGTH x these
    EVAL_SIZE = 8 if SMOKE else 128  # test sequences per length
    """),
    md("## Backend"),
    code(BACKEND),
    md("""
    ## Train one model per intervention

    Every run has the same configuration but `initial_state`; `seqbench.engine.run` writes
    its `result.json` into its own folder.
    """),
    code("""
    import dataclasses
    import os
    import tempfile

    import seqbench
    import seqbench.engine

    base = seqbench.engine.Config(
        cell=CELL, task=TASK, task_hparams=tuple(TASK_HPARAMS.items()), width=WIDTH, depth=DEPTH,
        train_length=TRAIN_LENGTH, curriculum="fixed", steps=STEPS, batch_size=BATCH_SIZE,
        seeds=SEEDS, learning_rate=LEARNING_RATE, initial_state_std=1.0,
        eval_lengths=tuple(TRAIN_LENGTH * f for f in FACTORS), eval_size=EVAL_SIZE,
        log_every=max(STEPS // 3, 1))

    RUNS = tempfile.mkdtemp(prefix="seqbench-interventions-")
    for kind in INTERVENTIONS:
        print(f"==== initial_state={kind}")
        seqbench.engine.run(dataclasses.replace(base, initial_state=kind), os.path.join(RUNS, kind))
    """),
    md("""
    ## Accuracy against length

    Mean over seeds, the band spans the seeds (min to max). Right of the dashed line: lengths
    never seen in training.
    """),
    code("""
    import json

    import matplotlib.pyplot as plt
    import numpy as np

    results = {}
    for kind in INTERVENTIONS:
        with open(os.path.join(RUNS, kind, "result.json")) as f:
            results[kind] = json.load(f)

    fig, ax = plt.subplots(figsize=(7, 4))
    for kind, result in results.items():
        lengths = sorted(int(n) for n in result["per_length"])
        accuracy = np.array([result["per_length"][str(n)]["accuracy"] for n in lengths], float)
        (line,) = ax.plot(lengths, np.nanmean(accuracy, axis=1), "o-", label=kind)
        ax.fill_between(lengths, np.nanmin(accuracy, 1), np.nanmax(accuracy, 1),
                        color=line.get_color(), alpha=0.15)
    ax.axvline(TRAIN_LENGTH, color="gray", ls="--", label="training length")
    ax.axhline(seqbench.tasks.get(TASK, **TASK_HPARAMS).chance, color="gray", ls=":", label="chance")
    ax.set(xlabel="sequence length", ylabel="accuracy", ylim=(0, 1.02),
           title=f"{CELL} on {TASK}, trained at length {TRAIN_LENGTH}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [str(n) for n in lengths])
    ax.minorticks_off()
    ax.legend(title="initial_state")
    plt.show()
    """),
    md("""
    ## Loss by position

    The figure of Buitrago Ruiz & Gu: the loss at each position of the longest evaluated
    sequence, in log-spaced bins (`loss_by_position` in every `result.json`: bin k holds the
    positions 2^(k-1) .. 2^k - 1). A model that generalises keeps it flat past the training
    length; the zero-state baseline's loss rises there. With `TASK = "text_lm"` every position
    is scored (a byte-level language model on the Python standard library's source); on
    `mqar` only the query positions are, so bins without a query are empty.
    """),
    code("""
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind, result in results.items():
        longest = max(int(n) for n in result["per_length"])
        profile = result["per_length"][str(longest)]["loss_by_position"]
        edges = profile["bin_edges"]
        points = [(max((lo * hi) ** 0.5, 0.5 * hi), np.mean(seeds))  # geometric bin midpoints
                  for lo, hi, seeds in zip(edges, edges[1:], profile["loss"]) if seeds]
        ax.plot(*zip(*points), "o-", label=kind)
    ax.axvline(TRAIN_LENGTH, color="gray", ls="--", label="training length")
    ax.set(xlabel="position (log scale)", ylabel="loss (nats)",
           title=f"{CELL} on {TASK}: loss by position at length {longest}")
    ax.set_xscale("log", base=2)
    ax.legend(title="initial_state")
    plt.show()
    """),
    md("""
    ## Effective length per intervention

    `effective_length` (per seed) and `score_mean` (mean accuracy over the lengths beyond
    training, averaged over seeds) from each `result.json`. The paper's finding: the
    interventions extend the effective length far beyond the zero-state baseline.
    """),
    code("""
    kinds = list(results)
    effective = np.array([results[k]["effective_length"] for k in kinds], float)  # (kinds, seeds)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(kinds))
    ax.bar(x, effective.mean(axis=1), color="lightsteelblue", label="mean over seeds")
    for i, values in enumerate(effective):
        ax.plot([i] * len(values), values, "k.", label="seeds" if i == 0 else None)
    for i, kind in enumerate(kinds):
        ax.annotate(f"score {results[kind]['score_mean']:.2f}", (i, effective[i].mean()),
                    ha="center", va="bottom")
    ax.axhline(TRAIN_LENGTH, color="gray", ls="--", label="training length")
    ax.set_xticks(x, kinds)
    ax.set(ylabel="effective length (tokens)", ylim=(TRAIN_LENGTH / 2, TRAIN_LENGTH * max(FACTORS) * 4))
    ax.set_yscale("log", base=2)
    ax.set_yticks(lengths, [str(n) for n in lengths])
    ax.minorticks_off()
    ax.legend(loc="upper left")
    plt.show()

    for kind in kinds:
        r = results[kind]
        print(f"{kind:<14} in-distribution accuracy {np.mean(r['in_distribution_accuracy']):.3f}  "
              f"score {r['score_mean']:.3f}  effective length per seed {r['effective_length']}")
    """),
    md("""
    **The committed plots** come from one `SMOKE = False` run on a 2-core CPU (137 s). The
    zero-state baseline degrades beyond its training length, but at this size the
    interventions did not extend the effective length: they lowered the in-distribution
    accuracy instead (1,000 steps may be too few to learn from perturbed starting states; the
    paper trains far longer, see the preset's `paper` variant). Try more `STEPS`, or
    `CELL = "mamba"`, one of the paper's models.

    The paper's fourth intervention, truncated backpropagation through time, is
    `Config(tbptt=K)`: the gradient stops at the state every K steps.
    """),
]

NOTEBOOKS = {"quickstart": QUICKSTART, "kernels": KERNELS, "length_generalization": LENGTH}


def images(cell: nbformat.NotebookNode) -> list:
    """The image outputs of a code cell (display data with an image; text/plain kept beside)."""
    kept = []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if output.output_type in ("display_data", "execute_result") and any(
                kind.startswith("image/") for kind in data):
            kept.append(nbformat.v4.new_output("display_data", data=dict(data)))
    return kept


def run_real(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of `nb` executed with SMOKE = False in a temporary folder (this interpreter)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    run = nbformat.from_dict(nb)
    (cell,) = [c for c in run.cells if "parameters" in c.metadata.get("tags", [])]
    cell.source += "\nSMOKE = False"
    folder = tempfile.mkdtemp(prefix="seqbench-notebook-")
    km = KernelManager(kernel_name="python3",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    NotebookClient(run, km=km, timeout=3600,
                   resources={"metadata": {"path": folder}}).execute(
        env={**os.environ, "TMPDIR": folder})
    return run


def main(argv: list[str]) -> None:
    mode = argv[1] if len(argv) > 1 else ""
    names = argv[2:] or list(NOTEBOOKS)
    if mode not in ("", "--real-run", "--clear") or not set(names) <= set(NOTEBOOKS):
        raise SystemExit(f"usage: {argv[0]} [--real-run | --clear [NAME ...]]; names: "
                         f"{', '.join(NOTEBOOKS)}")
    for stem in names:
        cells = NOTEBOOKS[stem]
        nb = notebook(cells, stem)
        path = HERE / f"{stem}.ipynb"
        if mode == "--real-run":
            start = time.perf_counter()
            source = run_real(nb)
            print(f"{stem}: SMOKE=False run in {time.perf_counter() - start:.0f} s")
        elif mode == "" and path.exists():
            source = nbformat.read(path, as_version=4)
        else:
            source = nbformat.v4.new_notebook()
        previous = {c.id: c for c in source.cells if c.cell_type == "code"}
        for cell in nb.cells:
            old = previous.get(cell.id)
            if cell.cell_type == "code" and old is not None and old.source == cell.source:
                cell.outputs = images(old)
        nbformat.validate(nb)
        path.write_text(nbformat.writes(nb) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv)
