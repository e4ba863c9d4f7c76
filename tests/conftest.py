"""One JAX persistent compilation cache for the whole test run.

The suite's time is mostly XLA compilation (BUILD_NOTES, "Build, test, benchmark"), and the
same programs compile more than once: in each pytest-xdist worker that runs a test of a shared
fixture, and again in the subprocesses of the CLI, kill/resume, multi-process and Ray tests.
The controller makes one temporary cache folder before the workers start and passes it down
in the environment (`JAX_COMPILATION_CACHE_DIR`), so every process of the run, its
subprocesses included, compiles a program once and loads it after that. A loaded executable is
the one that was compiled (the key covers the HLO, the compile options, the devices and the
jaxlib version), so results are unchanged; the folder is removed when the run ends.
Set SEQBENCH_TEST_JAX_CACHE=0 to run without it.
"""

import os
import shutil
import tempfile

CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
MIN_COMPILE_SECONDS = "0.2"  # cache programs that took longer than this to compile


def pytest_configure(config):
    if os.environ.get("SEQBENCH_TEST_JAX_CACHE", "1") == "0" or hasattr(config, "workerinput"):
        return  # disabled, or an xdist worker: the controller's environment is inherited
    if CACHE_ENV not in os.environ:
        folder = tempfile.mkdtemp(prefix="seqbench-test-jax-cache-")
        os.environ[CACHE_ENV] = folder
        config._seqbench_jax_cache = folder
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", MIN_COMPILE_SECONDS)


def pytest_unconfigure(config):
    folder = getattr(config, "_seqbench_jax_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
