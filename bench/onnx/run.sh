#!/usr/bin/env bash
# ONNX models served by aurum (in process, release build, the `onnx` family's batch predict)
# against onnxruntime in Python on the same model, the same rows and one thread each; prints
# rows/s for both and the largest absolute difference of the served outputs.
#
# Needs the fixture venv (scripts/onnx-fixtures/run.sh creates it). Usage: bench/onnx/run.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/onnx-fixtures-venv"
[ -x "$venv/bin/python" ] || "$root/scripts/onnx-fixtures/run.sh"
work="$root/target/onnx-bench"
mkdir -p "$work"
cd "$root"
cargo build --release -q -p aurum-onnx --example onnx_bench
export RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1
"$venv/bin/python" "$root/bench/onnx/compare.py" "$root/target/release/examples/onnx_bench" \
    "$root/crates/aurum-onnx/tests/fixtures" "$work"
