"""The `seqbench` logger: plain lines, INFO on stdout, WARNING on stderr, a closed pipe ignored."""

from __future__ import annotations

import logging
import os
import sys

from seqbench import logs

logger = logging.getLogger("seqbench.test_logs")


def test_info_goes_to_stdout_and_warnings_to_stderr_as_plain_lines(capsys):
    with logs.captured() as lines:
        logger.info("step 1/2")
        logger.warning("stopped by signal 15")
        logging.getLogger("elsewhere").warning("not ours")
    out, err = capsys.readouterr()
    assert out == "step 1/2\n" and err.startswith("stopped by signal 15\n")
    assert lines == ["step 1/2", "stopped by signal 15"]


def test_a_reader_that_left_the_pipe_ends_the_output_not_the_program(monkeypatch, capfd):
    """`python -m seqbench.sweep --dry_run | head -1`: once head exits, writing raises
    BrokenPipeError; the handler drops that line and the ones after it, without a traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = os.fdopen(write_end, "w")
    monkeypatch.setattr(sys, "stdout", stream)
    for step in range(3):
        logger.info(f"line {step}")
    monkeypatch.undo()
    stream.close()  # flushes into /dev/null, where the handler pointed the descriptor
    assert "Traceback" not in capfd.readouterr().err
