"""Rendering for `seqbench.leaderboard`: number formats, Markdown, plots, the HTML page.

The page is one self-contained file (inline CSS, inline JavaScript, plots as inline SVG; no
network, works from file://): a sortable table per task (click a column header; again to
reverse; empty values always last), a filter by task and by cell family, and per task a plot of
mean accuracy against evaluation length (log x axis) with one curve per row and a band from the
lowest to the highest non-diverged seed. Plots are drawn with matplotlib's Agg/SVG backends on a
bare `Figure` (no pyplot state); the SVG hash salt and the PNG/SVG metadata are fixed so the
same rows always give the same bytes.
"""

from __future__ import annotations

import hashlib
import html
import io
import itertools
import json
import math
import os
import pathlib
import re
from typing import Any, NamedTuple

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from seqbench import published, selection

CHROMIUM = "/usr/bin/chromium"  # Debian's package; playwright's own browser download is not used
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# ----------------------------------------------------------------------------- text

def fmt(stats: dict, digits: int = 3) -> str:
    """'0.812 ± 0.034' (half-width of the 95% interval), '0.812' for one seed, '–' for none."""
    if stats["mean"] is None:
        return "–"
    text = f"{stats['mean']:,.{digits}f}"
    if stats["ci95"]:
        text += f" ± {(stats['ci95'][1] - stats['ci95'][0]) / 2:,.{digits}f}"
    return text


def seeds_text(row: dict) -> str:
    diverged = row["seeds_diverged"]
    return f"{row['seeds']}" + (f" ({diverged} diverged)" if diverged else "")


def setting_text(field: str, value) -> str:
    """One distinct setting as a label shows it: `field=value`; a post-training source as
    "post-trained from HASH" (its row's config hash, shortened), and nothing when the row was
    not post-trained."""
    if field == "post_trained_from":
        return f"post-trained from {value[:8]}" if value else ""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return f"{field}={text}"


def row_label(row: dict, leave_out: tuple[str, ...] = ()) -> str:
    """The model (the run's `label`, else its cell), then [the settings that tell it from the
    task's other rows of that model], then [the code-version/test-set variant], e.g.
    "mamba [initial_state=noise]" or "rg_lru-neg [learning_rate=0.003]"."""
    settings = ", ".join(filter(None, (setting_text(field, value)
                                       for field, value in row["distinct_settings"].items()
                                       if field not in leave_out)))
    return (row["label"] or row["cell"]) + "".join(
        f" [{part}]" for part in (settings, row["variant"]) if part)


def model_name(row: dict) -> str:
    """The model a row is a learning rate of: its label without the learning rate."""
    return row_label(row, leave_out=("learning_rate",))


def grid_cell(grid: dict | None, paper_score: float | None = None) -> str:
    """'0.981 ± 0.020 (best 1.000; paper 1.000)': our selected score, then the grid's best and
    the published score (`seqbench.published`) in parentheses; 'paper 1.000' alone where we
    have no run."""
    paper = "" if paper_score is None else f"paper {paper_score:.3f}"
    if grid is None:
        return f"({paper})" if paper else ""
    if grid["selected"] is None:
        return "–" + (f" ({paper})" if paper else "")
    best = "–" if grid["best_of"] is None else f"{grid['best_of']:.3f}"
    return f"{fmt(grid['selected'])} (best {best}" + (f"; {paper})" if paper else ")")


OVERVIEW_NOTE = ("Each cell: ours, the mean score ± 95% interval over the seeds of the learning "
                 "rate with the best in-distribution accuracy (ties: the lower in-distribution "
                 "loss; chosen without looking at the test lengths); in parentheses the "
                 "paper's statistic on our runs, the best score of "
                 "any seed at any learning rate, and the score published in Delétang et al. "
                 "2023's Table 2 where it could be read (\"paper\"; the best of 10 seeds x 3 "
                 "learning rates at 1,000,000 steps). Score: mean accuracy beyond the training "
                 "length. A model run on one task only (an ablation) is in that task's table.")


def slug(name: str) -> str:
    """A file-name-safe form of a task name, unique: a name that needed changing gets a short
    hash of itself ("a/b" -> "a_b-<8 hex>", so it never meets a task called "a_b")."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64]
    if safe == name and not safe.startswith("."):
        return safe
    return f"{safe.lstrip('.')}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def plain_text(text: str) -> str:
    """`text` for matplotlib with mathtext off: every "$" escaped."""
    return text.replace("$", r"\$")


def md_cell(text: str) -> str:
    """`text` safe in a Markdown table cell: HTML escaped (no tag reaches a renderer), pipes
    escaped."""
    return html.escape(text).replace("|", "\\|")


def overview_markdown(grids: list[dict]) -> list[str]:
    """The tasks x models table (`selection.matrix`)."""
    tasks, models, cells = selection.matrix(grids)
    if not tasks:
        return []
    lines = ["## Overview: the Chomsky hierarchy", "", OVERVIEW_NOTE, "",
             "| task | " + " | ".join(md_cell(m) for m in models) + " |",
             "| --- |" + " ---: |" * len(models)]
    for task in tasks:
        lines.append(f"| {md_cell(task)} | " + " | ".join(
            md_cell(grid_cell(cells.get((task, m)), published.chomsky_score(task, m)))
            for m in models) + " |")
    return lines


def to_markdown(rows: list[dict], grids: list[dict], generated: str) -> str:
    """The overview, then one table per task, rows in `leaderboard.row_order` (best score
    first; a task without scores by in-distribution accuracy)."""
    lines = ["# seqbench leaderboard", "", generated, "", *overview_markdown(grids), "",
             "Score: mean accuracy beyond the training length; ± is the half-width of the 95% "
             "confidence interval of the mean over seeds (Student's t); diverged seeds are left "
             "out."]
    for task in sorted({row["task"] for row in rows}):
        task_rows = [row for row in rows if row["task"] == task]
        lines += ["", f"## {md_cell(task)} ({md_cell(task_rows[0]['task_group'])})", "",
                  "| cell | family | config | seeds | score | in-dist. accuracy | "
                  "effective length | params | state size | tokens/s |",
                  "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for row in task_rows:
            score = "diverged" if row["status"] == "diverged" else fmt(row["score"])
            cells = [row_label(row), row["family"], f"`{row['config_hash']}`", seeds_text(row),
                     score, fmt(row["in_distribution_accuracy"]),
                     fmt(row["effective_length"], 0), f"{row['param_count']:,}",
                     f"{row['state_size']:,}", fmt(row["tokens_per_s"], 0)]
            lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
        if any(row["conflict"] for row in task_rows):
            lines += ["", "Rows marked [...] share a config hash but differ in code version or "
                          "test sets, so they are kept apart."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- plots

class Plot(NamedTuple):
    svg: str  # an inline <svg> element
    png: bytes


def plots(rows: list[dict], grids: list[dict] = ()) -> dict[str, Plot]:
    """{task: Plot} (see `plot`): each row of the task against length (or at its one length),
    and the capacity panel where `grids` (`selection.grids`) have one for the task."""
    return {task: plot(task, [row for row in rows if row["task"] == task],
                       selection.capacity_curves(list(grids), task))
            for task in sorted({row["task"] for row in rows})}


def tick_labels(lengths: list[int], min_ratio: float = 1.2) -> list[str]:
    """Labels for ticks at the sorted `lengths` on a log axis: a length within `min_ratio` of
    the last labelled one stays unlabelled (40 and 41 would print on top of each other)."""
    labels, last = [], None
    for n in lengths:
        show = last is None or n >= last * min_ratio
        labels.append(str(n) if show else "")
        last = n if show else last
    return labels


def row_ticks(count: int, most: int = 20) -> list[int]:
    """The row numbers of 1..`count` to label on an axis of rows: 1 and every `step`-th, with
    `step` the first of 1, 2, 5, 10, 20, 50, ... that labels at most `most` rows (63 rows: 1,
    5, 10, ..., 60), since every number at once prints on top of its neighbours."""
    for step in (m * 10 ** e for e in itertools.count() for m in (1, 2, 5)):
        labelled = sorted({1, *range(step, count + 1, step)}) if count else []
        if len(labelled) <= most:
            return labelled


def _profiled(row: dict) -> list[tuple[float, dict]]:
    """(bin midpoint, loss interval) of a row's loss-by-position bins that scored something."""
    profile = row.get("loss_by_position")
    if not profile:
        return []
    edges = profile["bin_edges"]
    return [(max(math.sqrt(lo * hi), 0.5 * hi), stats)  # geometric midpoint; bin 0: 0.5
            for lo, hi, stats in zip(edges, edges[1:], profile["loss"]) if stats["n"]]


def plot_loss_by_position(ax, rows: list[dict], colors: list) -> None:
    """Loss against position (log x; mean, band = seed min..max), one line per row in its
    colour, at each row's longest evaluated length: a language model's loss as its context
    grows."""
    for row, color in zip(rows, colors):
        points = _profiled(row)
        xs = [x for x, _ in points]
        ax.plot(xs, [p["mean"] for _, p in points], marker="o", markersize=3, linewidth=1.5,
                color=color)
        ax.fill_between(xs, [p["min"] for _, p in points], [p["max"] for _, p in points],
                        color=color, alpha=0.15, linewidth=0)
    for train_length in sorted({row["train_length"] for row in rows}):
        ax.axvline(train_length, color="0.5", linestyle="--", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("position in the sequence (log scale)")
    ax.set_ylabel("loss")
    ax.set_title("loss by position (longest length)", fontsize=10)
    ax.grid(alpha=0.3)


def plot_capacity(ax, measured: str, curves: dict[str, list[dict]]) -> None:
    """`measured` against state size (log x), one colour per model: our selected mean with
    its 95% interval (solid, band; a point of one seed has no interval, and the band is drawn
    only between points that have one) and the paper's best-of (dashed), the layout of
    Zoology's Figure 2 (`selection.capacity_curves`)."""
    palette = matplotlib.colormaps["tab10"].colors
    for i, (model, points) in enumerate(curves.items()):
        color = palette[i % len(palette)]
        xs = [p["state_size"] for p in points]
        ax.plot(xs, [p["mean"] for p in points], marker="o", markersize=3, linewidth=1.5,
                color=color, label=plain_text(model))
        ax.fill_between(xs, [max(p["ci95"][0], 0.0) if p["ci95"] else math.nan for p in points],
                        [min(p["ci95"][1], 1.0) if p["ci95"] else math.nan for p in points],
                        color=color, alpha=0.15, linewidth=0)
        ax.plot(xs, [p["best"] for p in points], marker="^", markersize=4, linewidth=1,
                linestyle="--", color=color)
    ax.plot([], [], color="0.4", linestyle="--", marker="^", label="best of grid (paper's)")
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("state size (floats per sequence, log scale)")
    ax.set_ylabel(measured)
    ax.set_title(f"capacity: {measured} vs state size (mean, 95% interval)", fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    ax.grid(alpha=0.3)


def plot_accuracy_by_length(ax, task: str, rows: list[dict], colors: list,
                            lengths: list[int]) -> None:
    """Accuracy against evaluation length (log x; mean, band = seed min..max), one line per
    row, the training lengths dashed."""
    for row, color in zip(rows, colors):
        points = [e for e in row["per_length"] if e["accuracy"]["n"]]
        if not points:
            continue
        xs = [e["length"] for e in points]
        ax.plot(xs, [e["accuracy"]["mean"] for e in points], marker="o", markersize=3,
                linewidth=1.5, label=plain_text(row_label(row)), color=color)
        ax.fill_between(xs, [e["accuracy"]["min"] for e in points],
                        [e["accuracy"]["max"] for e in points], color=color, alpha=0.15,
                        linewidth=0)
    for i, train_length in enumerate(sorted({row["train_length"] for row in rows})):
        ax.axvline(train_length, color="0.5", linestyle="--", linewidth=1,
                   label="training length" if i == 0 else None)
    if lengths:
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, tick_labels(lengths))
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("evaluation length (log scale)")
    ax.set_title(plain_text(f"{task}: accuracy vs length (mean, band = seed min..max)"),
                 fontsize=10)


def plot_accuracy_per_row(ax, task: str, rows: list[dict], colors: list,
                          evaluated: list[list[dict]], lengths: list[int]) -> None:
    """A task each row evaluated at one length only (MQAR at its training length): each row's
    accuracy there at position 1, 2, ... in the table's order (mean; bar = seed min..max; the
    legend numbers the rows), where a curve against length would be a column of dots."""
    for i, (row, color, entries) in enumerate(zip(rows, colors, evaluated), start=1):
        if not entries:
            continue
        stats = entries[0]["accuracy"]
        # equal seeds: the mean can land one rounding step outside min..max (3 x 0.1)
        below, above = (max(stats["mean"] - stats["min"], 0.0),
                        max(stats["max"] - stats["mean"], 0.0))
        ax.errorbar([i], [stats["mean"]], yerr=[[below], [above]], marker="o", markersize=5,
                    capsize=3, linewidth=1.5, color=color,
                    label=plain_text(f"{i}. {row_label(row)}"))
    labelled = row_ticks(len(rows))
    ax.set_xticks(labelled, [str(i) for i in labelled])
    ax.set_xticks(range(1, len(rows) + 1), minor=True)  # every row keeps a tick mark
    ax.set_xlim(0.5, len(rows) + 0.5)
    ax.set_xlabel("row (numbered in the legend, the table's order)")
    at = (f"length {lengths[0]}" if len(lengths) == 1
          else "each row's length (" + ", ".join(map(str, lengths)) + ")")
    ax.set_title(plain_text(f"{task}: accuracy at {at} (mean, bar = seed min..max)"),
                 fontsize=10)


def plot(task: str, rows: list[dict],
         capacity: tuple[str, dict[str, list[dict]]] = ("score", {})) -> Plot:
    """Accuracy against length (each row's accuracy side by side when every row was
    evaluated at one length only); beside it loss against position when some row scored
    positions in at least two loss bins (tasks with a target at every step), and the score
    against state size when `capacity` (`selection.capacity_curves`) has a curve."""
    # The legend goes below the axes (labels can be long), so the figure grows with the rows.
    profiled = any(len(_profiled(row)) >= 2 for row in rows)
    measured, curves = capacity
    panels = [3] + [2] * profiled + [3] * bool(curves)
    fig = Figure(figsize=(8 + 4 * (len(panels) - 1), 3.4 + 0.17 * (len(rows) + 1)), dpi=100,
                 layout="constrained")
    axes = list(fig.subplots(1, len(panels), width_ratios=panels)) if len(panels) > 1 else [
        fig.add_subplot()]
    ax = axes.pop(0)
    loss_ax = axes.pop(0) if profiled else None
    if curves:
        plot_capacity(axes.pop(0), measured, curves)
    # One colour per row on both panels; tab10 has 10 colours, tab20 keeps 20 curves apart.
    palette = matplotlib.colormaps["tab20" if len(rows) > 10 else "tab10"].colors
    colors = [palette[i % len(palette)] for i in range(len(rows))]
    if loss_ax is not None:
        plot_loss_by_position(loss_ax, rows, colors)
    evaluated = [[e for e in row["per_length"] if e["accuracy"]["n"]] for row in rows]
    lengths = sorted({e["length"] for entries in evaluated for e in entries})
    if lengths and all(len(entries) <= 1 for entries in evaluated):
        plot_accuracy_per_row(ax, task, rows, colors, evaluated, lengths)
    else:
        plot_accuracy_by_length(ax, task, rows, colors, lengths)
    if lengths:
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize=8,
                   frameon=False)  # the main panel's rows; the capacity panel has its own
    else:
        ax.text(0.5, 0.5, "no seed converged", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    svg = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"seqbench-{task}", "svg.fonttype": "none"}):
        fig.savefig(svg, format="svg",
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=150, metadata={"Software": None})
    text = svg.getvalue()
    return Plot(svg=text[text.index("<svg"):], png=png.getvalue())


# ----------------------------------------------------------------------------- page

# (header, sort type for the page script: "num" or "str", value sorted on, text shown)
COLUMNS = (
    ("cell", "str", lambda r: row_label(r), lambda r: row_label(r)),
    ("family", "str", lambda r: r["family"], lambda r: r["family"]),
    ("config", "str", lambda r: r["config_hash"], lambda r: r["config_hash"]),
    ("seeds", "num", lambda r: r["seeds"], seeds_text),
    ("score", "num", lambda r: r["score"]["mean"],
     lambda r: "diverged" if r["status"] == "diverged" else fmt(r["score"])),
    ("in-dist. accuracy", "num", lambda r: r["in_distribution_accuracy"]["mean"],
     lambda r: fmt(r["in_distribution_accuracy"])),
    ("effective length", "num", lambda r: r["effective_length"]["mean"],
     lambda r: fmt(r["effective_length"], 0)),
    ("params", "num", lambda r: r["param_count"], lambda r: f"{r['param_count']:,}"),
    ("state size", "num", lambda r: r["state_size"], lambda r: f"{r['state_size']:,}"),
    ("tokens/s", "num", lambda r: r["tokens_per_s"]["mean"],
     lambda r: fmt(r["tokens_per_s"], 0)),
)

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { padding: .25em .6em; border-bottom: 1px solid #ddd; text-align: right; }
th:nth-child(-n+3), td:nth-child(-n+3) { text-align: left; }
th[data-type] { cursor: pointer; user-select: none; background: #f4f4f4; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
tr.diverged td { color: #999; }
tr.conflict td:first-child { color: #b35c00; }
#filters { position: sticky; top: 0; background: #fff; padding: .5em 0; }
.generated, .note { color: #666; font-size: 12px; }
svg { max-width: 100%; height: auto; }
"""

SCRIPT = """
"use strict";
function sortBy(th) {
  const body = th.closest("table").tBodies[0];
  const col = Array.from(th.parentNode.children).indexOf(th);
  const current = th.getAttribute("aria-sort");
  const dir = current ? (current === "ascending" ? "descending" : "ascending")
                      : (th.dataset.type === "num" ? "descending" : "ascending");
  const key = tr => tr.children[col].dataset.v;
  const rows = Array.from(body.rows).sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === "" || y === "") return (x === "") - (y === "");
    const c = th.dataset.type === "num" ? Number(x) - Number(y) : x.localeCompare(y);
    return dir === "ascending" ? c : -c;
  });
  for (const h of th.parentNode.children) h.removeAttribute("aria-sort");
  th.setAttribute("aria-sort", dir);
  body.append(...rows);
}
function applyFilters() {
  const task = document.getElementById("task-filter").value;
  const family = document.getElementById("family-filter").value;
  let shown = 0;
  for (const section of document.querySelectorAll("section.task")) {
    section.hidden = task !== "" && section.dataset.task !== task;
    for (const tr of section.querySelectorAll("tbody tr")) {
      tr.hidden = family !== "" && tr.dataset.family !== family;
      if (!section.hidden && !tr.hidden) shown++;
    }
  }
  document.getElementById("shown").textContent = shown + " rows shown";
}
for (const th of document.querySelectorAll("th[data-type]")) {
  th.addEventListener("click", () => sortBy(th));
}
document.getElementById("task-filter").addEventListener("change", applyFilters);
document.getElementById("family-filter").addEventListener("change", applyFilters);
applyFilters();
"""


def _options(element_id: str, label: str, values: list[str]) -> str:
    options = "".join(f'<option value="{html.escape(v)}">{html.escape(v)}</option>'
                      for v in values)
    return (f'<label>{label} <select id="{element_id}"><option value="">all</option>{options}'
            f"</select></label>")


def _row(row: dict) -> str:
    classes = [c for c, on in (("diverged", row["status"] == "diverged"),
                               ("conflict", row["conflict"])) if on]
    attributes = f'data-family="{html.escape(row["family"])}" data-id="{html.escape(row["id"])}"'
    if classes:
        attributes += f' class="{" ".join(classes)}"'
    if row["conflict"]:
        attributes += f' title="differs from other runs of this config in {row["conflict"]}"'
    cells = []
    for _, _, value, text in COLUMNS:
        v = value(row)
        cells.append(f'<td data-v="{"" if v is None else html.escape(str(v))}">'
                     f"{html.escape(text(row))}</td>")
    runs = " ".join(f'<a href="{html.escape(link)}">{i + 1}</a>'
                    for i, link in enumerate(row["runs"]))
    return f'<tr {attributes}>{"".join(cells)}<td>{runs}</td></tr>'


def _section(task: str, rows: list[dict], svg: str) -> str:
    # the column `leaderboard.row_order` sorted the rows by
    ordered_by = ("score" if any(row["score"]["mean"] is not None for row in rows)
                  else "in-dist. accuracy")
    header = "".join(
        f'<th data-type="{kind}"{" aria-sort=descending" if name == ordered_by else ""}>'
        f"{html.escape(name)}</th>" for name, kind, _, _ in COLUMNS) + "<th>runs</th>"
    note = ('<p class="note">Rows marked [...] share a config hash but differ in code version '
            "or test sets, so they are kept apart.</p>" if any(r["conflict"] for r in rows)
            else "")
    return (f'<section class="task" data-task="{html.escape(task)}">'
            f"<h2>{html.escape(task)} <small>({html.escape(rows[0]['task_group'])})</small></h2>"
            f'<table class="board"><thead><tr>{header}</tr></thead><tbody>'
            + "\n".join(_row(row) for row in rows)
            + f'</tbody></table>{note}<figure class="plot">{svg}</figure></section>')


def score_colour(value: float | None) -> str:
    """A background for a score: chance-level 0.5 and below light red, 1.0 green."""
    if value is None:
        return "#fff"
    t = min(max((value - 0.5) / 0.5, 0.0), 1.0)
    return f"hsl({round(120 * t)}, 60%, 85%)"


def overview_html(grids: list[dict]) -> str:
    """The tasks x models table, each cell coloured by our selected score."""
    tasks, models, cells = selection.matrix(grids)
    if not tasks:
        return ""
    header = "".join(f"<th>{html.escape(m)}</th>" for m in models)
    body = []
    for task in tasks:
        tds = []
        for m in models:
            grid = cells.get((task, m))
            mean = grid["selected"]["mean"] if grid and grid["selected"] else None
            tds.append(f'<td style="background:{score_colour(mean)}">'
                       f"{html.escape(grid_cell(grid, published.chomsky_score(task, m)))}</td>")
        body.append(f"<tr><td>{html.escape(task)}</td>{''.join(tds)}</tr>")
    return (f'<section id="overview"><h2>Overview: the Chomsky hierarchy</h2><p class="note">{html.escape(OVERVIEW_NOTE)}'
            f'</p><table class="overview"><thead><tr><th>task</th>{header}</tr></thead><tbody>'
            + "\n".join(body) + "</tbody></table></section>")


def page(rows: list[dict], grids: list[dict], svgs: dict[str, str], generated: str) -> str:
    """The whole leaderboard as one HTML document (the overview, then rows in leaderboard
    order)."""
    tasks = sorted({row["task"] for row in rows})
    families = sorted({row["family"] for row in rows})
    sections = "\n".join(_section(task, [r for r in rows if r["task"] == task], svgs[task])
                         for task in tasks)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>seqbench leaderboard</title><link rel="icon" href="data:,">
<style>{STYLE}</style></head>
<body><h1>seqbench leaderboard</h1>
<p class="generated">{html.escape(generated)}</p>
<p>Score: mean accuracy beyond the training length; ± is the half-width of the 95% confidence
interval of the mean over seeds (Student's t). Diverged seeds are left out and counted. Click a
column header to sort.</p>
<div id="filters">{_options("task-filter", "Task", tasks)}
{_options("family-filter", "Cell family", families)} <span id="shown"></span></div>
{overview_html(grids)}
{sections}
<script>{SCRIPT}</script></body></html>
"""


# ----------------------------------------------------------------------------- browser

def launch_chromium(playwright: Any):
    """Debian's headless chromium through Playwright (no browser download)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def screenshot(html_path: str, width: int = 1280) -> bytes:
    """A full-page PNG of `html_path` rendered by headless chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise RuntimeError("--screenshot needs the playwright package "
                           "(pip install -e '.[test]')") from None
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"--screenshot needs {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            return render_png(browser, html_path, width)
        finally:
            browser.close()


def render_png(browser: Any, html_path: str, width: int) -> bytes:
    """A full-page PNG of `html_path` in a new tab of a running Playwright `browser`."""
    tab = browser.new_page(viewport={"width": width, "height": 800})
    try:
        tab.goto(pathlib.Path(html_path).resolve().as_uri())
        return tab.screenshot(full_page=True)
    finally:
        tab.close()
