#!/usr/bin/env bash
# Regenerates the ONNX test fixtures in crates/aurum-onnx/tests/fixtures/ with PyTorch,
# scikit-learn (skl2onnx) and TensorFlow/Keras (tf2onnx), and records onnxruntime's outputs on
# fixed inputs beside each model. Python packages go into virtual environments under target/
# (ignored by git); nothing here runs at test time. TensorFlow gets its own environment (it pins
# protobuf and numpy apart from torch's); if it does not install, the Keras fixture is skipped.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/crates/aurum-onnx/tests/fixtures"
venv="$root/target/onnx-fixtures-venv"
tfvenv="$root/target/onnx-tf-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --no-cache-dir \
        "numpy==2.4.*" "onnx==1.23.*" "onnxruntime==1.32.*" "scikit-learn==1.9.*" \
        "skl2onnx==1.20.*" "onnxscript==0.7.*" "torch==2.15.*"
fi
"$venv/bin/python" "$root/scripts/onnx-fixtures/make.py" "$out"
if [ ! -x "$tfvenv/bin/python" ]; then
    python3 -m venv "$tfvenv"
    "$tfvenv/bin/pip" install --quiet --no-cache-dir "tensorflow-cpu==2.21.*" "tf2onnx==1.17.*" \
        "onnx" "onnxruntime" || { echo "TensorFlow did not install: Keras fixture skipped"; exit 0; }
fi
"$tfvenv/bin/python" "$root/scripts/onnx-fixtures/make.py" "$out" --keras-only
