"""Multi-process training with `jax.distributed`: two processes on this machine, two CPU devices
each, train one run over the global 4-device mesh and get the single-process 4-device result.

This is the path of a TPU pod slice or a multi-GPU node (one process per host or accelerator).
Process 0 writes the JSON files; checkpoints use orbax's multi-process protocol (every process
saves and restores its own shards, the primary one the metadata; restoring them in two
processes was checked by hand on 2026-12-01, BUILD_NOTES "Scale-out")."""

import json
import os
import socket
import subprocess
import sys

import pytest

ARGS = ["--cell=gru", "--task=parity_check", "--width=8", "--depth=1", "--train_length=6",
        "--curriculum=uniform", "--steps=8", "--batch_size=4", "--seeds=2",
        "--eval_lengths=6,12", "--eval_size=8", "--log_every=4"]
TIMINGS = ("tokens_per_s", "compile_s", "train_s", "eval_s", "wall_s", "environment")


def train(workdir, devices, *extra):
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} "
                                      f"--xla_force_host_platform_device_count={devices}"}
    return subprocess.Popen([sys.executable, "-m", "seqbench.train", *ARGS,
                             f"--workdir={workdir}", *extra], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def two_processes(workdir):
    """Runs the two processes of one distributed run; returns their stdouts."""
    with socket.socket() as s:  # a free port for the coordinator
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [train(workdir, 2, "--distributed", f"--coordinator_address=127.0.0.1:{port}",
                   "--num_processes=2", f"--process_id={i}") for i in (0, 1)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    return [out for out, _ in outputs]


def without_timings(record):
    return {k: v for k, v in record.items() if k not in TIMINGS}


@pytest.mark.slow
def test_two_processes_give_the_single_process_four_device_result(tmp_path):
    single = train(tmp_path / "single", 4)
    outputs = two_processes(tmp_path / "two")
    out, err = single.communicate(timeout=600)
    assert single.returncode == 0, err[-3000:]
    assert "devices: {'seed': 2, 'batch': 2}" in outputs[0] and "devices:" in out
    want = json.loads((tmp_path / "single" / "result.json").read_text())
    got = json.loads((tmp_path / "two" / "result.json").read_text())
    assert without_timings(got) == without_timings(want)  # bit for bit
    losses = lambda folder: [json.loads(line)["loss"] for line in
                             (folder / "metrics.jsonl").read_text().splitlines()]
    assert losses(tmp_path / "two") == losses(tmp_path / "single")
    assert sorted(os.listdir(tmp_path / "two" / "checkpoints")) == ["8"]  # one, written together
