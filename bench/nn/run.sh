#!/usr/bin/env bash
# Deep-learning benchmark: aurum's `mlp` and `cnn` (burn, trained in Rust) against PyTorch (CPU)
# with the same architecture, optimiser, epochs and data, both on 2 threads, in one run.
#
#   bench/nn/run.sh            # MLP_EPOCHS=20 CNN_EPOCHS=30 by default; PROFILE=dev for the debug build
#
# The MLP runs on data/credit/lending_club.csv and data/demo/german_credit.csv (stratified 70/30,
# seed 42); aurum writes its encoded inputs so PyTorch trains on the same numbers. The CNN runs
# on data/images/digits_8x8.csv with a stratified quarter held out.
set -euo pipefail
cd "$(dirname "$0")/../.."
MLP_EPOCHS=${MLP_EPOCHS:-20}
CNN_EPOCHS=${CNN_EPOCHS:-30}
OUT=target/nn-bench
VENV=target/nn-venv
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
"$VENV/bin/pip" install -q numpy scikit-learn torch

# A target dir of its own, so the release build does not evict the debug one. PROFILE=dev uses
# the debug build instead (every crate is built at opt-level 2 there; no LTO).
if [ "${PROFILE:-release}" = dev ]; then
  cargo build -q -p aurum-nn --example nn_bench
  BIN=target/debug/examples/nn_bench
else
  cargo build -q --release --target-dir target/bench -p aurum-nn --example nn_bench
  BIN=target/bench/release/examples/nn_bench
fi
export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2

row() { # name aurum_json torch_json key
  python3 - "$@" <<'PY'
import json, sys
name, a, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
for key in sys.argv[4:]:
    ratio = a[key] / t[key] if t[key] else float("nan")
    print(f"| {name} | {key} | {a[key]:.4g} | {t[key]:.4g} | {ratio:.2f} |")
PY
}

echo "| data | figure | aurum (burn) | PyTorch | aurum / PyTorch |"
echo "|---|---|---|---|---|"
for spec in "lending_club:data/credit/lending_club.csv:Class" "german_credit:data/demo/german_credit.csv:creditability"; do
  IFS=: read -r name csv target <<<"$spec"
  A=$("$BIN" mlp "$csv" "$target" "$MLP_EPOCHS" "$OUT/$name")
  T=$("$VENV/bin/python" bench/nn/torch_ref.py mlp "$OUT/$name")
  row "$name mlp ($MLP_EPOCHS epochs)" "$A" "$T" seconds_per_epoch test_auc latency_us_p50 latency_us_p99
done
A=$("$BIN" cnn data/images/digits_8x8.csv "$CNN_EPOCHS" "$OUT/digits")
T=$("$VENV/bin/python" bench/nn/torch_ref.py cnn data/images/digits_8x8.csv "$OUT/digits/split.json" "$CNN_EPOCHS")
row "digits cnn ($CNN_EPOCHS epochs)" "$A" "$T" seconds_per_epoch test_accuracy
