"""A run's metrics as TensorBoard event files (`--tensorboard`), beside the canonical records.

    python -m seqbench.train ... --workdir=runs/x --tensorboard
    tensorboard --logdir=runs          # every run below, one line per seed

`metrics.jsonl` and `result.json` stay the record; these files are a view of them, written
while the run trains, in `WORKDIR/tensorboard/`:

- every metrics line: `train/loss`, `train/accuracy`, `train/grad_norm` (and `train/solver_
  iterations`, `train/solver_residual` for cells solved in parallel over time) per member, at
  the line's step, and `train/tokens_per_s`;
- the evaluation, at the end: `eval/accuracy` and `eval/loss` per member with the *evaluation
  length* as the step (the length-generalisation curve), `eval/score` at the last training
  step, and `eval/loss_by_position` (the longest length's, where the task has one) with the
  first position of each log-spaced bin as the step.

Members are named `seed<i>` (with a learning-rate grid, `seed<i>_lr<rate>`), one tag suffix
each, so TensorBoard draws one line per seed. A resumed run opens its writer with `purge_step`
at the first step it recomputes, so the lines written past the checkpoint by the interrupted
process are discarded by TensorBoard, as `metrics.jsonl` drops them.

Writer: tensorboardX (`pip install -e '.[tensorboard]'`): pure Python over protobuf, no
TensorFlow (which `tf.summary` and `clu.metric_writers`' default writer pull in, ~500 MB),
maintained, and the files are TensorBoard's own format (tested with the `tensorboard` package's
reader).
"""

from __future__ import annotations

import math
import os
from typing import Any

INSTALL_HINT = "pip install -e '.[tensorboard]'"
TRAIN_SCALARS = ("loss", "accuracy", "grad_norm", "solver_iterations", "solver_residual")


def require() -> None:
    """ValueError (one line, how to install) unless the writer's package is importable."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise ValueError(f"--tensorboard needs the tensorboardX package: {INSTALL_HINT}") from None


def member_names(members: list[dict[str, Any]], grid: bool) -> list[str]:
    """Tag suffixes of the members (`result.json`'s `members`: seed and learning rate)."""
    return [f"seed{m['seed']}" + (f"_lr{m['learning_rate']:g}" if grid else "")
            for m in members]


class Writer:
    """Writes a run's metrics lines and result into `workdir/tensorboard` (module docstring)."""

    def __init__(self, workdir: str, names: list[str], purge_step: int | None = None):
        from tensorboardX import SummaryWriter

        self.names = names
        # The file is named by the second it was opened in and the host; the suffix keeps a
        # rerun opened within the same second from truncating its predecessor's file.
        self._writer = SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=purge_step,
                                     flush_secs=30,
                                     filename_suffix=f".{os.getpid()}.{purge_step or 0}")

    def _per_member(self, tag: str, values, step: int) -> None:
        for name, value in zip(self.names, values):
            if value is not None and math.isfinite(value):  # null/NaN: diverged, no score
                self._writer.add_scalar(f"{tag}/{name}", float(value), step)

    def metrics(self, line: dict[str, Any]) -> None:
        """One `metrics.jsonl` line."""
        for key in TRAIN_SCALARS:
            if key in line:
                self._per_member(f"train/{key}", line[key], line["step"])
        self._writer.add_scalar("train/tokens_per_s", line["tokens_per_s"], line["step"])

    def result(self, record: dict[str, Any]) -> None:
        """The evaluation of `result.json`'s record, then flushes."""
        measured = {int(n): entry for n, entry in record["per_length"].items()
                    if "accuracy" in entry}
        for length in sorted(measured):
            self._per_member("eval/accuracy", measured[length]["accuracy"], length)
            self._per_member("eval/loss", measured[length]["loss"], length)
        self._per_member("eval/score", record["score"], record["steps_run"])
        profiles = [n for n in measured if "loss_by_position" in measured[n]]
        if profiles:
            profile = measured[max(profiles)]["loss_by_position"]
            for start, losses in zip(profile["bin_edges"], profile["loss"]):
                if losses is not None:
                    self._per_member("eval/loss_by_position", losses, start)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
