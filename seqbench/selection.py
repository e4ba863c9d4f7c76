"""The two ways of reporting a grid of learning rates and seeds, side by side.

Papers that sweep learning rates and seeds often publish the best model of the grid (Delétang
et al. 2023 report "the maximum over 10 seeds and 3 learning rates"). That statistic answers
"can this architecture solve the task at all?", not "how reliably does training get there?".
seqbench reports both, labelled:

- `best_of`: the paper's statistic, the highest score of any non-diverged seed at any learning
  rate of the grid;
- `selected`: ours, the mean and 95% interval over the seeds of one learning rate, the one whose
  mean *in-distribution* accuracy is highest; ties (common at 1.000 on the regular tasks) go to
  the lower mean in-distribution loss, then to the lower learning rate (`fit_order`). The choice
  never looks at the test lengths, so the reported score is not selected on them.

A grid is trained either as one run per learning rate or as one run of all of them
(`--learning_rates`, vmapped members), which `split_grid` turns into the same per-rate
records; either way it is the leaderboard rows (`seqbench.leaderboard.aggregate`) of one task and model whose
hashed configs differ only in `learning_rate`. A model is the run's `label` (the preset's name
for it, e.g. "rg_lru-neg"), else the row's label from its cell and distinct settings.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from seqbench import engine, published
from seqbench.evaluate import CHOMSKY_GROUPS

GROUP_ORDER = CHOMSKY_GROUPS + ("state_tracking", "memory", "real")


def grid_key(row: dict[str, Any], model: str) -> tuple[str, str, bool, str]:
    """(task, model, whether a preset named it, the hashed config without the learning rate)
    of a row: an unnamed run of a preset's model at another rate never joins the preset's
    grid (its scores would count in the preset's reports under the preset's name)."""
    config = {k: v for k, v in row["config"].items() if k != "learning_rate"}
    return row["task"], model, bool(row["label"]), json.dumps(config, sort_keys=True, default=str)


def fit_order(row: dict[str, Any]) -> tuple[float, float, float]:
    """How well a row fits its training lengths, larger is better, from in-distribution
    evaluations only: (mean accuracy, -mean loss over the in-distribution lengths, -learning
    rate). A missing loss ranks last among equal accuracies."""
    losses = [entry["loss"]["mean"] for entry in row["per_length"]
              if entry["in_distribution"] and entry["loss"]["n"]]
    loss = sum(losses) / len(losses) if losses else float("inf")
    return (row["in_distribution_accuracy"]["mean"], -loss,
            -(row["config"].get("learning_rate") or 0.0))


def grids(rows: list[dict[str, Any]], model_of: Callable[[dict], str]) -> list[dict[str, Any]]:
    """One entry per (task, model) grid, in the rows' order (see the module docstring):

        {"task", "task_group", "model", "labelled": every row has a `label`, "label": the
         first row's label ("" when none), "rows": [row ids], "state_size": the model's
         floats of state (its rows differ in the learning rate only), "learning_rates": [...],
         "best_of": float | None, "best_of_learning_rate": float | None,
         "selected_learning_rate": float | None, "selected": the chosen row's score interval,
         "selected_in_distribution": its in-distribution accuracy interval,
         "best_of_in_distribution": the best seed's in-distribution accuracy, "seeds": int}
    """
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(grid_key(row, model_of(row)), []).append(row)
    out = []
    for (task, model, _, _), members in groups.items():
        scored = [row for row in members if row["score"]["n"]]
        best = max(scored, key=lambda row: row["score"]["max"], default=None)
        chosen = max((row for row in members if row["in_distribution_accuracy"]["n"]),
                     key=fit_order, default=None)
        out.append({
            "task": task, "task_group": members[0]["task_group"], "model": model,
            "labelled": all(row["label"] for row in members),
            "label": members[0]["label"],
            "rows": [row["id"] for row in members],
            "state_size": members[0]["state_size"],
            "learning_rates": [row["config"].get("learning_rate") for row in members],
            "best_of": best["score"]["max"] if best else None,
            "best_of_learning_rate": best["config"].get("learning_rate") if best else None,
            "selected_learning_rate": chosen["config"].get("learning_rate") if chosen else None,
            "selected": chosen["score"] if chosen else None,
            "selected_in_distribution": chosen["in_distribution_accuracy"] if chosen else None,
            "best_of_in_distribution": max(
                (row["in_distribution_accuracy"]["max"] for row in members
                 if row["in_distribution_accuracy"]["n"]), default=None),
            "seeds": sum(row["seeds_used"] for row in members),
        })
    return out


def capacity_curves(grid_rows: list[dict[str, Any]], task: str,
                    ) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """(what is measured, {label: [{"state_size", "mean", "ci95", "best"}, ...]}): a task's
    score against state size, the shape of Zoology's Figure 2 (Arora et al. 2024), one curve
    per preset-named model (`label`, e.g. "gla" run at widths 16..128), points by state size.

    The measure is the score (beyond the training length) when any of the task's grids has
    one; else, for a task evaluated at its training length only (MQAR at a fixed length, as
    Zoology measures recall), the in-distribution accuracy. Each point: ours (`mean`, `ci95`:
    the selected rate's seeds) and the paper's statistic (`best`: the grid's best seed); a
    grid without a value is left out. A label gets a curve when it has at least two points and
    one grid at each state size: two grids of one label at one state size differ in something
    else, and a curve through either would be mislabelled."""
    grids_of: dict[str, list[dict]] = {}
    for grid in grid_rows:
        if grid["task"] == task and grid["labelled"]:
            grids_of.setdefault(grid["label"], []).append(grid)
    scored = any(g["best_of"] is not None for grids in grids_of.values() for g in grids)
    mean_key, best_key = (("selected", "best_of") if scored else
                          ("selected_in_distribution", "best_of_in_distribution"))
    curves = {}
    for label, grids in grids_of.items():
        sizes = [grid["state_size"] for grid in grids]
        points = [{"state_size": g["state_size"], "mean": g[mean_key]["mean"],
                   "ci95": g[mean_key]["ci95"], "best": g[best_key]}
                  for g in sorted(grids, key=lambda g: g["state_size"])
                  if g[mean_key] and g[mean_key]["n"]]
        if len(set(sizes)) == len(sizes) and len(points) >= 2:
            curves[label] = points
    return ("score" if scored else "in-distribution accuracy"), curves


def matrix(grid_rows: list[dict[str, Any]], groups: tuple[str, ...] = CHOMSKY_GROUPS,
           ) -> tuple[list[str], list[str], dict]:
    """(tasks, models, {(task, model): grid}) for a tasks x models table in the layout of the
    Chomsky paper's Table 2: the tasks of `groups` by level (regular, context-free,
    context-sensitive), within a level in Table 2's order (`published.CHOMSKY_TABLE2_ORDER`;
    other tasks after, as they first appear), Table 2's models first
    (`published.CHOMSKY_TABLE2_MODELS`), the others in the order they first appear, with each
    model's variants beside it ("mamba", "mamba-neg": a name's part before the first "-" is
    its family, the plain name first, then names with one "-", then two). Only
    models a preset named (`Config.label`) take part: unnamed rows are told apart by settings
    dumps, not names, and stay in the per-task tables. So does a model named on one task only
    when the table has several (an ablation of that task, e.g. chomsky's "body" variants on
    cycle_navigation: a column empty on every other row). A (task, model) with several grids
    shows the first."""
    grid_rows = [g for g in grid_rows if g["task_group"] in groups and g["labelled"]]
    tasks_of: dict[str, set[str]] = {}
    for grid in grid_rows:
        tasks_of.setdefault(grid["model"], set()).add(grid["task"])
    least = min(2, len({g["task"] for g in grid_rows}))
    grid_rows = [g for g in grid_rows if len(tasks_of[g["model"]]) >= least]
    table_order = published.CHOMSKY_TABLE2_ORDER

    def task_order(task_group):
        task, group = task_group
        rank = GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER)
        in_table = table_order.index(task) if task in table_order else len(table_order)
        return rank, in_table, first_seen[task]

    first_seen: dict[str, int] = {}
    models: list[str] = []
    for grid in grid_rows:
        first_seen.setdefault(grid["task"], len(first_seen))
        if grid["model"] not in models:
            models.append(grid["model"])
    # the part of a model's name before the first "-" -> its rank: Table 2's models first, then
    # the others by first appearance (the rows' order follows their scores, the columns must not)
    family = {name: rank for rank, name in enumerate(published.CHOMSKY_TABLE2_MODELS)}
    for model in models:
        family.setdefault(model.split("-", 1)[0], len(family))
    models = sorted(models, key=lambda m: (family[m.split("-", 1)[0]], m.count("-")))  # stable
    tasks = [task for task, _ in sorted({(g["task"], g["task_group"]) for g in grid_rows},
                                        key=task_order)]
    cells: dict[tuple[str, str], dict] = {}
    for grid in grid_rows:
        cells.setdefault((grid["task"], grid["model"]), grid)
    return tasks, models, cells


def split_grid(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A run record of a learning-rate grid (`config.learning_rates`, members rate-major) as one
    record per rate, each exactly the record a run at that single rate with the same seeds
    writes (up to float rounding): config with `learning_rate` = the rate and no grid, its
    config hash, the rate's members' entries of every per-seed list, `score_mean` over its
    non-diverged seeds. Other records come back unchanged, as a one-element list."""
    rates = record["config"].get("learning_rates") or []
    if not rates:
        return [record]
    seeds = record["seeds"] // len(rates)
    out = []
    for index, rate in enumerate(rates):
        part = slice(index * seeds, (index + 1) * seeds)
        config = {**record["config"], "learning_rate": rate, "learning_rates": []}
        per_length = {}
        for length, entry in record["per_length"].items():
            entry = dict(entry)
            for name in ("accuracy", "loss"):
                if isinstance(entry.get(name), list):
                    entry[name] = entry[name][part]
            positions = entry.get("per_position_accuracy")
            if isinstance(positions, dict):
                entry["per_position_accuracy"] = {**positions, "accuracy": [
                    b[part] if isinstance(b, list) else b for b in positions["accuracy"]]}
            norms = entry.get("state_norm")
            if isinstance(norms, dict):
                entry["state_norm"] = {**norms, "norm": [n[part] for n in norms["norm"]]}
            per_length[length] = entry
        sliced = {name: record[name][part] for name in
                  ("seed_status", "diverged_at_step", "in_distribution_accuracy", "score",
                   "effective_length", "members") if isinstance(record.get(name), list)}
        ok = [s == "ok" for s in sliced["seed_status"]]
        kept = [s for s, alive in zip(sliced["score"], ok) if alive and s is not None]
        out.append({**record, **sliced, "config": config, "seeds": seeds,
                    "config_hash": engine.config_hash(config), "per_length": per_length,
                    "status": "ok" if all(ok) else "diverged",
                    "score_mean": sum(kept) / len(kept) if kept else None})
    return out
