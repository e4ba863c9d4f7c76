"""Compile less and faster in the test run: one persistent compilation cache, unoptimised LLVM.

The suite's time is mostly XLA compilation (BUILD_NOTES, "Build, test, benchmark"):
- The same programs compile more than once: in each pytest-xdist worker that runs a test of a
  shared fixture, and again in the subprocesses of the CLI, kill/resume, multi-process and Ray
  tests. The controller makes one temporary cache folder before the workers start and passes
  it down in the environment (`JAX_COMPILATION_CACHE_DIR`), so every process of the run, its
  subprocesses included, compiles a program once and loads it after that. A loaded executable
  is the one that was compiled (the key covers the HLO, the compile options, the devices and
  the jaxlib version). The folder is removed when the run ends.
- The test programs are small and run briefly, so XLA:CPU's compile-time work costs more than
  it saves: `--xla_backend_optimization_level=0` (LLVM without its optimisation passes) and
  `--xla_cpu_use_fusion_emitters=false` (fusions by the classic elemental emitter instead of
  the MLIR fusion emitters, which take about twice as long to compile a small program) are
  added to `XLA_FLAGS` (inherited by the subprocesses; the tests that set XLA_FLAGS themselves
  append to it; a flag the installed jaxlib does not know is left out, `accepted_by_xla`). Numerics stay within every test's tolerance; comparisons that must be
  bit-identical run both sides in this setting.

Measured 2026-12-01 on this 2-core machine (clean clone, sweeps paused): pytest 15 min 40 s
without either, 12 min 51 s with the cache, 8 min 16 s with both. 2026-12-02 (tenth session,
one process, sweeps paused): the cell contract's 29 gradient tests 48 s -> 23 s and five engine
tests 49 s -> 31 s with the fusion-emitter flag added to -O0. Set SEQBENCH_TEST_FAST=0 to run
the suite as a user's process compiles (no shared cache, full optimisation).
"""

import os
import shutil
import subprocess
import sys
import tempfile

CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
MIN_COMPILE_SECONDS = "0.2"  # cache programs that took longer than this to compile
FAST_COMPILE = ("--xla_backend_optimization_level=0",  # LLVM without its optimisation passes
                "--xla_cpu_use_fusion_emitters=false")  # the elemental emitter: faster to compile


def pytest_configure(config):
    if os.environ.get("SEQBENCH_TEST_FAST", "1") == "0" or hasattr(config, "workerinput"):
        return  # off, or an xdist worker: the controller's environment is inherited
    if CACHE_ENV not in os.environ:
        folder = tempfile.mkdtemp(prefix="seqbench-test-jax-cache-")
        os.environ[CACHE_ENV] = folder
        config._seqbench_jax_cache = folder
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", MIN_COMPILE_SECONDS)
    missing = [flag for flag in FAST_COMPILE if flag not in os.environ.get("XLA_FLAGS", "")]
    if not accepted_by_xla(missing):  # a jaxlib that no longer knows one: keep those it knows
        missing = [flag for flag in missing if accepted_by_xla([flag])]
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *missing]).strip()


def accepted_by_xla(flags):
    """Whether this jaxlib's XLA starts with `flags` added (an unknown flag in XLA_FLAGS aborts
    the process, so the probe is a child process: ~2 s, once per test run)."""
    env = {**os.environ, "XLA_FLAGS": " ".join([os.environ.get("XLA_FLAGS", ""), *flags])}
    try:
        probe = subprocess.run([sys.executable, "-c", "import jax; jax.devices()"], env=env,
                               capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:  # a hung start: leave the flags out, run the tests
        return False
    return probe.returncode == 0


def pytest_unconfigure(config):
    folder = getattr(config, "_seqbench_jax_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
