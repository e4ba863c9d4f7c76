"""Aggregate many runs' `result.json` into a leaderboard: JSON, CSV, Markdown, HTML and plots.

    python -m seqbench.leaderboard --runs=runs --out=leaderboard
    python -m seqbench.leaderboard --runs=runs,/mnt/tpu_runs --out=leaderboard \
        --screenshot=experiments/leaderboard/leaderboard.png

Every `result.json` under the `--runs` folders (recursively) is read and checked
(`seqbench.leaderboard_read`); a malformed,
truncated or schema-incompatible one is reported on stderr ("skipped PATH: reason") and left
out; so is one whose `config_hash` is not the hash of its own `config` (recomputed on
reading). Rows are keyed by (task, cell, config hash, label): runs with the same key merge as seeds
(their per-seed lists are concatenated); runs of one configuration that presets named differently
(`Config.label`, not hashed: "lstm-bare" and "lstm-bare-10more") stay rows of their own, the
label then in their ids. Runs of one key whose code version (`environment.seqbench`)
or evaluation test sets (the per-length `test_set_hash`) differ are never merged silently: each
(version, test sets) variant becomes its own row, marked with `conflict` naming what differs.

The config hash leaves out the base seed and the seed count
(the fields declared `hashed=False` in `seqbench.engine.config`), so runs of one configuration with other `--seed`s merge;
a run repeating another's hash *and* seed trained identical models and is skipped as a
duplicate (reported like a bad file). Each row keeps its `config` (the hashed fields) and its
`distinct_settings`, the fields that tell it from the other rows of its task shown under the
same name (`with_distinct_settings`; a dict such as `cell_hparams` only where no scalar field
does, `telling`), which label it in tables and plots ("mamba
[initial_state=noise]"). Within a task rows are listed by score, best first, and rows without
one (a task scored at its training length only, such as MQAR) by in-distribution accuracy.

Diverged seeds (`seed_status == "diverged"`) are left out of every aggregate and counted in
`seeds_diverged`; a row whose seeds all diverged is kept, with no score, status "diverged".
Each metric is aggregated over the remaining seeds as the mean and the 95% confidence interval
of the mean, from Student's t:

    mean ± t_{0.975, n-1} · s / √n,   s² = Σ (x_i - mean)² / (n - 1);   none for n = 1.

with the seeds' min and max beside it (the band of the plots). Training throughput
(`tokens_per_s`, one value per run covering all its seeds) is aggregated over runs instead.

`t_quantile_975` reads t_{0.975, ν} from a table for ν = 1..30 (six decimals, as printed in
statistics tables) and beyond 30 uses the Cornish-Fisher expansion of Abramowitz & Stegun 26.7.5
around the normal quantile z = 1.959964 (error < 1e-7 for ν > 30); tests hold both against a
float64 numerical integration of the t density.

Outputs in `--out` (each written atomically: temporary file + rename; running twice on the same
inputs gives byte-identical files, and the one "generated" line names the inputs' content hash,
not a time): `leaderboard.json`, `leaderboard.csv`, `leaderboard.md`, `leaderboard.html` and
`plots/<task>.png` (see README.md, "Leaderboard").
"""

from __future__ import annotations

import collections
import csv
import functools
import hashlib
import io
import json
import logging
import math
import os
import urllib.parse
from typing import Any, Callable

from absl import app, flags

from seqbench import __version__, cli, engine, results, selection
from seqbench.leaderboard_html import model_name, page, plots, screenshot, slug, to_markdown
from seqbench.leaderboard_read import SUPPORTED_SCHEMAS, find_results, load

logger = logging.getLogger("seqbench.leaderboard")  # not __name__: "__main__" under -m

SCHEMA_VERSION = 1  # of leaderboard.json

# t_{0.975, ν} for ν = 1..30 (two-sided 95%).
T_975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
         2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
         2.109816, 2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
         2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272)
Z_975 = 1.959963984540054

SUMMARY_METRICS = ("score", "in_distribution_accuracy", "effective_length")


def t_quantile_975(df: int) -> float:
    """t_{0.975, df}: the table for df <= 30, Cornish-Fisher (A&S 26.7.5) above."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1; got {df}")
    if df <= len(T_975):
        return T_975[df - 1]
    z = Z_975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def interval(values: list[float]) -> dict[str, Any]:
    """{"n", "mean", "ci95": [low, high], "min", "max"} of `values`.

    ci95 is the 95% confidence interval of the mean (Student's t), None for n <= 1; min and max
    span the seeds (the band of the plots).
    """
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "ci95": None, "min": None, "max": None}
    mean = math.fsum(values) / n
    ci95 = None
    if n > 1:
        s = math.sqrt(math.fsum((x - mean) ** 2 for x in values) / (n - 1))
        half = t_quantile_975(n - 1) * s / math.sqrt(n)
        ci95 = [mean - half, mean + half]
    return {"n": n, "mean": mean, "ci95": ci95, "min": min(values), "max": max(values)}


# ----------------------------------------------------------------------------- aggregating

def finite(value: Any) -> bool:
    return value is not None and math.isfinite(value)


def eval_set_hashes(record: dict) -> dict[int, Any]:
    return {int(n): entry.get("test_set_hash") for n, entry in record["per_length"].items()}


def eval_sets_digest(record: dict) -> str:
    """Short hash of the (length -> test-set hash) map: equal maps, equal digests."""
    return results.config_hash({str(n): h for n, h in eval_set_hashes(record).items()})[:8]


def link(folder: str, path: str, out: str) -> str:
    """The run folder of `path` as a URL path: absolute if `folder` was given absolute, else
    relative to out; percent-encoded, so no folder name ("javascript:...") reads as a scheme."""
    run = os.path.dirname(path)
    return urllib.parse.quote(os.path.abspath(run) if os.path.isabs(folder)
                              else os.path.relpath(run, out))


def numbers(record: dict) -> str:
    """The record's results (per-length accuracies and losses), canonically."""
    return results.canonical_json({n: [e.get("accuracy"), e.get("loss")]
                                   for n, e in record["per_length"].items()})


def drop_duplicates(runs: list[tuple[str, dict]]) -> tuple[list, list[tuple[str, str]]]:
    """(kept runs, [(dropped link, kept link)]): runs with the same config hash, base seed and
    seed count trained the same models (training is deterministic), so only the first (by
    link) counts when their numbers agree. The hash leaves the seeds out precisely so that
    other seeds merge. When their numbers differ (float rounding differs between processors)
    both are kept, each tagged `_numbers` with its link, and `aggregate` shows them as
    conflicting rows: one of them is never dropped silently."""
    kept, first_of, dropped = [], {}, []
    for run_link, record in sorted(runs, key=lambda r: r[0]):
        key = (record["config_hash"], record["config"].get("seed"), record["seeds"])
        if key not in first_of:
            first_of[key] = (run_link, record)
            kept.append((run_link, record))
        elif numbers(record) == numbers(first_of[key][1]):
            dropped.append((run_link, first_of[key][0]))
        else:
            first = first_of[key][1]
            first.setdefault("_numbers", first_of[key][0])
            kept.append((run_link, {**record, "_numbers": run_link}))
    return kept, dropped


def aggregate(runs: list[tuple[str, dict]]) -> list[dict[str, Any]]:
    """Rows of the leaderboard from (link, record) pairs; see the module docstring."""
    groups: dict[tuple, list[tuple[str, dict]]] = {}
    for run_link, record in sorted(runs, key=lambda r: r[0]):
        key = (record["task"], record["cell"], record["config_hash"], label_of(record))
        groups.setdefault(key, []).append((run_link, record))
    # a hash that presets named twice: each name's row has it in its id
    names = collections.Counter(key[:3] for key in groups)
    rows = []
    for key, members in groups.items():
        named = [key[3]] if names[key[:3]] > 1 else []
        variants: dict[tuple, list[tuple[str, dict]]] = {}
        for run_link, record in members:
            variant = (record["environment"]["seqbench"], eval_sets_digest(record),
                       record.get("_numbers", ""))
            variants.setdefault(variant, []).append((run_link, record))
        differs = [name for i, name in enumerate(("code version", "test-set hash", "numbers"))
                   if len({v[i] for v in variants}) > 1]
        for (version, digest, numbers_of), runs_of_variant in sorted(variants.items()):
            label = ", ".join(([f"v{version}"] if "code version" in differs else [])
                              + ([f"tests {digest}"] if "test-set hash" in differs else [])
                              + ([f"run {numbers_of}"] if "numbers" in differs else []))
            rows.append(make_row(runs_of_variant, label, ", ".join(differs) or None, named))
    return sorted(with_distinct_settings(rows), key=row_order)


def label_of(record: dict) -> str:
    """The name a preset gave the run's model (`Config.label`; "" when it gave none)."""
    return engine.from_json(record["config"]).label


def with_distinct_settings(rows: list[dict]) -> list[dict]:
    """`rows`, each with `distinct_settings`: {field: value} of the config fields that tell it
    (`telling`) from the task's other rows shown under the same name (the run's `label`, else
    its cell): what tells, say, mamba with noise from mamba from the zero state apart; {} when
    no other such row differs. A row a preset named is compared with the rows of that name only (its
    label stays the preset's); an unnamed row with every row of its cell's name, named ones
    included, so it never looks like a preset's model of that name. Floats are shown short
    (`shortest_distinct` over all the rows of the name: 0.00215 for 10**-2.6667), never so
    short that two rows look alike; `config` keeps the exact values."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["task"], row["label"] or row["cell"]), []).append(row)
    out = []
    for group in groups.values():
        named = [row for row in group if row["label"]]
        short = {field: shortest_distinct([row["config"].get(field) for row in group])
                 for field in {field for row in group for field in row["config"]}}
        for row in group:
            fields = telling(named if row["label"] else group)
            out.append({**row, "distinct_settings": {
                field: short[field].get(value, value) if isinstance(value, float) else value
                for field in fields for value in [row["config"].get(field)]}})
    return out


def telling(rows: list[dict]) -> list[str]:
    """The varying config fields of `rows` that label them, sorted: every scalar one (width,
    learning_rate, post_trained_from, steps), and a dict or list (cell_hparams, eval_lengths)
    only where it splits rows the scalars leave together. mqar's mamba2 sets head_dim from the
    width, so its rows are told apart by `width`, not by a dump of `cell_hparams` beside it."""
    def composite(field):
        return any(isinstance(row["config"].get(field), (dict, list)) for row in rows)

    def parts(fields):
        return len({tuple(results.canonical_json(row["config"].get(field)) for field in fields)
                    for row in rows})

    fields = varying(rows)
    chosen = [field for field in fields if not composite(field)]
    for field in filter(composite, fields):
        if parts([*chosen, field]) > parts(chosen):
            chosen.append(field)
    return sorted(chosen)


def varying(rows: list[dict]) -> list[str]:
    """The config fields whose value is not the same in every one of `rows`, sorted."""
    fields = sorted({field for row in rows for field in row["config"]})
    return [field for field in fields
            if len({results.canonical_json(row["config"].get(field)) for row in rows}) > 1]


def shortest_distinct(values: list) -> dict[float, float]:
    """{float: it rounded to the fewest significant digits, 3 or more, at which the distinct
    floats among `values` stay distinct}: {0.002154434690031882: 0.00215, 0.00046415888336127773:
    0.000464}; {0.00215, 0.002154}: 4 digits."""
    floats = sorted({value for value in values if isinstance(value, float)})
    for digits in range(3, 18):
        rounded = {value: float(f"{value:.{digits}g}") for value in floats}
        if len(set(rounded.values())) == len(floats):
            return rounded
    return {value: value for value in floats}  # 17 digits always tell floats apart


def row_order(row: dict) -> tuple:
    """Within a task: best score first; rows without one (a task scored at its training length
    only, such as MQAR, or every seed diverged) by in-distribution accuracy."""
    score, fit = row["score"]["mean"], row["in_distribution_accuracy"]["mean"]
    return (row["task"], score is None, -(score or 0.0), -(fit or 0.0), row["cell"],
            row["config_hash"], row["variant"])


def make_row(members: list[tuple[str, dict]], variant: str, conflict: str | None,
             named: list[str]) -> dict:
    """One row: seeds of `members` concatenated, diverged seeds dropped, metrics aggregated;
    its id is task/cell/config hash, then `named` (the label, where the hash has rows under
    other names) and the variant."""
    first = members[0][1]
    status = [s for _, r in members for s in r["seed_status"]]
    ok = [s == "ok" for s in status]

    def over_seeds(per_run: Callable[[dict], list]) -> dict[str, Any]:
        values = [v for _, r in members for v in per_run(r)]
        return interval([v for v, alive in zip(values, ok) if alive and finite(v)])

    train_length = first["config"]["train_length"]
    profiled = [n for n in sorted(eval_set_hashes(first)) if all(
        r["per_length"][str(n)].get("loss_by_position") for _, r in members)]
    loss_by_position = None
    if profiled:  # the longest length every run scored: the whole curve in one profile
        n = profiled[-1]
        profiles = [r["per_length"][str(n)]["loss_by_position"] for _, r in members]
        per_seed = [[None if b is None else b[s] for b in p["loss"]]  # seeds in `ok`'s order
                    for (_, r), p in zip(members, profiles) for s in range(len(r["seed_status"]))]
        loss_by_position = {"length": n, "bin_edges": profiles[0]["bin_edges"], "loss": [
            interval([seed[k] for seed, alive in zip(per_seed, ok)
                      if alive and finite(seed[k])])
            for k in range(len(profiles[0]["loss"]))]}
    per_length = []
    for n in sorted(eval_set_hashes(first)):
        entries = [r["per_length"][str(n)] for _, r in members]
        per_length.append({
            "length": n,
            "in_distribution": n <= train_length,
            "test_set_hash": entries[0].get("test_set_hash"),
            "accuracy": over_seeds(lambda r: r["per_length"][str(n)]["accuracy"]),
            "loss": over_seeds(lambda r: r["per_length"][str(n)]["loss"]),
            "skipped": next((e["skipped"] for e in entries if "skipped" in e), None),
        })
    return {
        "id": "/".join([first["task"], first["cell"], first["config_hash"], *named]
                       + ([variant] if variant else [])),
        "task": first["task"], "task_group": first["task_group"], "cell": first["cell"],
        "label": label_of(first),
        "family": first["family"], "config_hash": first["config_hash"],
        "config": engine.config.hashed_json(first["config"]), "variant": variant,
        "conflict": conflict, "code_version": first["environment"]["seqbench"],
        "train_length": train_length,
        "status": "diverged" if not any(ok) else "ok",
        "seeds": len(status), "seeds_used": sum(ok), "seeds_diverged": len(ok) - sum(ok),
        **{name: over_seeds(lambda r, name=name: r[name]) for name in SUMMARY_METRICS},
        "per_length": per_length,
        "loss_by_position": loss_by_position,
        "param_count": first["param_count"], "state_size": first["state_size"],
        "tokens_per_s": interval([r["tokens_per_s"] for _, r in members
                                  if finite(r["tokens_per_s"])]),
        "devices": sorted({r["environment"].get("device_kind", "?") for _, r in members}),
        "runs": [run_link for run_link, _ in members],
    }


# ----------------------------------------------------------------------------- writing

CSV_COLUMNS = ("task", "task_group", "cell", "family", "config_hash", "variant", "conflict",
               "code_version", "status", "train_length", "length", "in_distribution",
               "test_set_hash", "skipped", "seeds", "seeds_used", "seeds_diverged",
               "accuracy_mean", "accuracy_ci95_low", "accuracy_ci95_high", "loss_mean",
               "loss_ci95_low", "loss_ci95_high", "score_mean", "score_ci95_low",
               "score_ci95_high", "param_count", "state_size", "tokens_per_s")


def flat(prefix: str, stats: dict) -> dict[str, Any]:
    low, high = stats["ci95"] or (None, None)
    return {f"{prefix}_mean": stats["mean"], f"{prefix}_ci95_low": low,
            f"{prefix}_ci95_high": high}


def to_csv(rows: list[dict]) -> str:
    """One line per (row, evaluation length); empty cells for null values."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        for entry in row["per_length"]:
            line = {**{c: row[c] for c in CSV_COLUMNS if c in row}, **entry,
                    **flat("accuracy", entry["accuracy"]), **flat("loss", entry["loss"]),
                    **flat("score", row["score"]), "tokens_per_s": row["tokens_per_s"]["mean"]}
            writer.writerow({c: csv_value(line[c]) for c in CSV_COLUMNS})
    return buffer.getvalue()


def csv_value(value: Any) -> Any:
    """A CSV cell: empty for null; text that a spreadsheet would run as a formula (starting
    with =, +, -, @, tab or carriage return: OWASP's list) prefixed with a quote, and line
    breaks inside text replaced by spaces (a bare carriage return would split the line)."""
    if value is None:
        return ""
    if isinstance(value, str):
        quoted = "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
        return quoted.replace("\r", " ").replace("\n", " ")
    return value


def count(n: int, noun: str) -> str:
    """`n` and `noun`, plural unless n is 1: count(1, "row") == "1 row"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def inputs_digest(raws: list[bytes]) -> str:
    """sha256 over the sorted content hashes of the input files (not their paths or times)."""
    hashes = sorted(hashlib.sha256(raw).hexdigest() for raw in raws)
    return hashlib.sha256("".join(hashes).encode()).hexdigest()[:12]


def build(folders: list[str], out: str) -> dict[str, Any]:
    """Reads every result.json under `folders`, writes all outputs into `out`; returns the board.

    Every file skipped (unreadable, invalid, a duplicate seed) is one warning on the `seqbench`
    logger. Raises FileNotFoundError when no result.json is found at all.
    """
    found = find_results(folders)
    if not found:
        raise FileNotFoundError(f"no result.json found under {', '.join(folders)}")
    runs, raws, skipped = [], [], []
    for folder, path in found:
        record, reason, raw = load(path)
        if reason:
            logger.warning(f"skipped {path}: {reason}")
            skipped.append({"path": path, "reason": reason})
        else:
            runs += [(link(folder, path, out), part) for part in selection.split_grid(record)]
            raws.append(raw)
    runs, duplicates = drop_duplicates(runs)
    for run_link, original in duplicates:
        logger.warning(f"skipped {run_link}: same config hash and seed as {original} (identical "
                       f"seeds are counted once)")
        skipped.append({"path": run_link, "reason": f"duplicate of {original}"})
    rows = aggregate(runs)
    grids = selection.grids(rows, model_name)
    # a grid's file is one file, read as one run per learning rate
    generated = (f"generated by seqbench {__version__} from {count(len(raws), 'result file')} "
                 f"(inputs sha256 {inputs_digest(raws)}; {len(skipped)} skipped)")
    board = {"schema_version": SCHEMA_VERSION, "generated": generated,
             "result_schemas": list(SUPPORTED_SCHEMAS), "result_files": len(raws), "rows": rows,
             "grids": grids,
             "skipped": sorted(skipped, key=lambda s: s["path"])}
    # Everything is rendered before anything is written: a failure leaves the old outputs.
    figures = plots(rows, grids)
    files = {"leaderboard.json": (json.dumps(board, indent=1, sort_keys=True) + "\n").encode(),
             "leaderboard.csv": to_csv(rows).encode(),
             "leaderboard.md": to_markdown(rows, grids, generated).encode(),
             "leaderboard.html": page(rows, grids, {task: f.svg for task, f in figures.items()},
                                      generated).encode(),
             **{os.path.join("plots", f"{slug(task)}.png"): f.png for task, f in figures.items()}}
    if os.path.exists(out) and not os.path.isdir(out):
        raise NotADirectoryError(f"--out {out!r} is a file, not a folder")
    for name, data in files.items():
        results.write_atomic(os.path.join(out, name), data)
    return board


# ----------------------------------------------------------------------------- command line

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_list("runs", None, "Folders searched recursively for result.json files.")
    flags.DEFINE_string("out", None, "Output folder for leaderboard.{json,csv,md,html}, plots/.")
    flags.DEFINE_string("screenshot", None, "Also save a PNG screenshot of the page taken in "
                        "headless /usr/bin/chromium (needs the playwright package).")


fail = functools.partial(cli.fail, "seqbench.leaderboard")


def main(argv):
    if len(argv) > 1:
        fail(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.runs:
        fail("--runs is required (folders holding run workdirs, comma-separated)")
    if not FLAGS.out:
        fail("--out is required (the folder the leaderboard files go to)")
    missing = [folder for folder in FLAGS.runs if not os.path.isdir(folder)]
    if missing:
        fail(f"--runs folder {missing[0]!r} does not exist")
    if FLAGS.screenshot and not FLAGS.screenshot.endswith(".png"):
        fail(f"--screenshot must be a .png path; got {FLAGS.screenshot!r}")
    if os.path.exists(FLAGS.out) and not os.path.isdir(FLAGS.out):
        fail(f"--out {FLAGS.out!r} is a file, not a folder")
    try:
        board = build(FLAGS.runs, FLAGS.out)
    except (FileNotFoundError, NotADirectoryError) as e:
        fail(str(e))
    logger.info(f"{count(len(board['rows']), 'row')} from "
                f"{count(board['result_files'], 'result file')} "
                f"({len(board['skipped'])} skipped) -> {FLAGS.out}/leaderboard.{{json,csv,md,"
                f"html}}, {FLAGS.out}/plots/")
    if FLAGS.screenshot:
        try:
            results.write_atomic(FLAGS.screenshot, screenshot(os.path.join(FLAGS.out, "leaderboard.html")))
        except RuntimeError as e:
            fail(str(e))
        logger.info(f"screenshot -> {FLAGS.screenshot}")


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=cli.flags_parser("seqbench.leaderboard"))
