#!/usr/bin/env bash
# The GPU checks of issues 8 and 5 as one prepared command, for a session that is lent a device
# machine (15 minutes of device time in all: run this once, read $OUT, give the machine back).
#
#   device run:  bash experiments/device_check.sh        (timeout_s=600; nothing to carry: the
#                machine's image has jax 0.11, flax, optax, chex, orbax, absl, pytest, hypothesis)
#   here:        OUT=/tmp/check SHAPES=16x1024x256 bash experiments/device_check.sh
#                (the same steps on the CPU, at a shape the CPU times in seconds)
#
# Writes under $OUT: environment.txt, kernel_tests.log, bench.log + bench.json (kernels.bench
# at the default shapes and issue 8's (8, 4096, 4096)), train_bench.log (tokens/s per cell and
# five vmapped seeds against one: issue 5's "< 2x one seed" target). Each step has its own
# time limit, so one slow step cannot take the others' results with it.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to a folder for the logs}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}

step() {  # step NAME SECONDS COMMAND...: runs COMMAND with a limit, output to $OUT/NAME
  local name=$1 seconds=$2
  shift 2
  echo "== $name (limit ${seconds} s)"
  timeout "$seconds" "$@" > "$OUT/$name" 2>&1
  echo "   exit status $? -> $OUT/$name"
}

{ date -u; nvidia-smi 2>&1 | head -15; "$PY" -c 'import jax, jaxlib; print(jax.__version__, jaxlib.__version__, jax.devices())'; } \
  > "$OUT/environment.txt" 2>&1
# The scan tests (on a GPU they also run the compiled Triton kernel: PATHS["pallas"]), the
# matrix scan and the lowering tests; nonlinear_scan's tests are platform-independent (CPU CI).
step kernel_tests.log 180 "$PY" -m pytest -q -x -p no:cacheprovider tests/kernels/test_linear_scan.py \
  tests/kernels/test_matrix_scan.py tests/kernels/test_lowering.py
step bench.log 200 "$PY" -m seqbench.kernels.bench --device_report --json="$OUT/bench.json" \
  --shapes="${SHAPES:-16x1024x256,1x16384x64,64x256x512,8x4096x4096}"
step train_bench.log 150 "$PY" -m seqbench.bench.train --table=all \
  --cells=lstm,lru,mamba,gla,s4d --steps=10
