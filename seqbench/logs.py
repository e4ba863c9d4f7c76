"""Progress lines and notices: the `seqbench` logger (standard `logging`), one plain line each.

Every module logs through `logging.getLogger(__name__)`, a child of the `seqbench` logger. That
logger prints INFO lines (progress, per-length evaluation, summaries) on stdout and WARNING
lines (a stopped run, diverged seeds, skipped files) on stderr, as plain text without prefixes,
in scripts, notebooks and under pytest alike (the streams are looked up at each line). It does
not propagate, so absl's root handler does not print a line twice. When the reader of a pipe
goes away (`python -m seqbench.sweep --dry_run | head`), later lines are dropped without a
traceback and the run carries on.

    logging.getLogger("seqbench").setLevel(logging.WARNING)   # silence the progress lines
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator


class ConsoleHandler(logging.Handler):
    """INFO and below to `sys.stdout`, WARNING and above to `sys.stderr`, flushed per line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
            stream.write(self.format(record) + "\n")
            stream.flush()
        except BrokenPipeError:  # the reader left (`... | head`): the run goes on, silently
            _silence(stream)
        except Exception:  # noqa: BLE001 - logging must never raise (logging.Handler's contract)
            self.handleError(record)


def _silence(stream) -> None:
    """Points `stream`'s file descriptor at /dev/null, so later lines (and the interpreter's
    flush at exit) do not raise BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError):  # no file descriptor (a captured or closed stream)
        pass


def configure(name: str = "seqbench") -> logging.Logger:
    """Gives logger `name` one `ConsoleHandler` at level INFO (idempotent) and returns it."""
    logger = logging.getLogger(name)
    if not any(isinstance(h, ConsoleHandler) for h in logger.handlers):
        handler = ConsoleHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]):
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def captured(name: str = "seqbench") -> Iterator[list[str]]:
    """Collects the messages logged on logger `name` (and its children) inside the block, one
    string per message, as well as printing them:

        with logs.captured() as lines:
            leaderboard.build(["runs"], "out")
        skipped = [line for line in lines if line.startswith("skipped")]
    """
    lines: list[str] = []
    handler = _Collect(lines)
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
