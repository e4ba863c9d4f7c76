"""Compile less and faster in the test run: one persistent compilation cache, unoptimised LLVM.

The suite's time is mostly XLA compilation (BUILD_NOTES, "Build, test, benchmark"):
- The same programs compile more than once: in each pytest-xdist worker that runs a test of a
  shared fixture, and again in the subprocesses of the CLI, kill/resume, multi-process and Ray
  tests. The controller makes one temporary cache folder before the workers start and passes
  it down in the environment (`JAX_COMPILATION_CACHE_DIR`), so every process of the run, its
  subprocesses included, compiles a program once and loads it after that. A loaded executable
  is the one that was compiled (the key covers the HLO, the compile options, the devices and
  the jaxlib version). The folder is removed when the run ends.
- The test programs are small and run briefly, so XLA:CPU's LLVM optimisation passes cost more
  than they save: `--xla_backend_optimization_level=0` is added to `XLA_FLAGS` (inherited by
  the subprocesses; the tests that set XLA_FLAGS themselves append to it). Numerics stay within
  every test's tolerance; comparisons that must be bit-identical run both sides in this setting.

Measured 2026-12-01 on this 2-core machine (clean clone, sweeps paused): pytest 15 min 40 s
without either, 12 min 51 s with the cache, 8 min 16 s with both. Set SEQBENCH_TEST_FAST=0 to
run the suite as a user's process compiles (no shared cache, full optimisation).
"""

import os
import shutil
import tempfile

CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
MIN_COMPILE_SECONDS = "0.2"  # cache programs that took longer than this to compile
FAST_COMPILE = "--xla_backend_optimization_level=0"  # LLVM without its optimisation passes


def pytest_configure(config):
    if os.environ.get("SEQBENCH_TEST_FAST", "1") == "0" or hasattr(config, "workerinput"):
        return  # off, or an xdist worker: the controller's environment is inherited
    if CACHE_ENV not in os.environ:
        folder = tempfile.mkdtemp(prefix="seqbench-test-jax-cache-")
        os.environ[CACHE_ENV] = folder
        config._seqbench_jax_cache = folder
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", MIN_COMPILE_SECONDS)
    if FAST_COMPILE not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()


def pytest_unconfigure(config):
    folder = getattr(config, "_seqbench_jax_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
