#!/usr/bin/env bash
# Recurrent forecasters: aurum's `lstm` (burn-trained, served by its own forward pass) against
# PyTorch's nn.LSTM with the same architecture, windows, optimiser and epochs, and against
# aurum's statistical `auto`, on the same holdout (airline: last 12 months; us_change
# consumption: last 8 quarters). Both sides on 2 threads.
#
#   bench/nn/recurrent.sh        # EPOCHS=100, SEEDS="1 2 3 4 5" by default; PROFILE=dev for the
#                                # debug build. MASE: mean (min-max) over the seeds.
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-100}
OUT=target/nn-bench/recurrent
VENV=target/nn-venv
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
"$VENV/bin/python" -c 'import torch' 2>/dev/null \
  || "$VENV/bin/pip" install -q numpy torch --index-url https://download.pytorch.org/whl/cpu

if [ "${PROFILE:-release}" = dev ]; then
  cargo build -q -p aurum-nn --example recurrent_bench
  BIN=target/debug/examples/recurrent_bench
else
  cargo build -q --release --target-dir target/bench -p aurum-nn --example recurrent_bench
  BIN=target/bench/release/examples/recurrent_bench
fi
export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2

SEEDS=${SEEDS:-1 2 3 4 5}
echo "| series | aurum lstm MASE | PyTorch lstm MASE | aurum auto MASE (model) | aurum s/epoch | PyTorch s/epoch | aurum lstm 80 / 95 % coverage |"
echo "|---|---|---|---|---|---|---|"
for series in airline us_change; do
  : >"$OUT/$series.jsonl"
  for seed in $SEEDS; do
    A=$("$BIN" "$series" "$EPOCHS" "$OUT/$series" "$seed")
    T=$("$VENV/bin/python" bench/nn/torch_lstm.py "$OUT/$series/prep.json")
    echo "{\"aurum\": $A, \"torch\": $T}" >>"$OUT/$series.jsonl"
  done
  python3 - "$OUT/$series.jsonl" <<'PY'
import json, statistics as st, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
a = [r["aurum"] for r in runs]
t = [r["torch"] for r in runs]
def span(xs):
    return f"{st.mean(xs):.3f} ({min(xs):.2f}-{max(xs):.2f})"
print(f"| {a[0]['series']} | {span([x['lstm_mase'] for x in a])} | {span([x['torch_mase'] for x in t])} "
      f"| {a[0]['auto_mase']:.3f} ({a[0]['auto_model']}) "
      f"| {st.mean(x['lstm_seconds_per_epoch'] for x in a):.4f} | {st.mean(x['torch_seconds_per_epoch'] for x in t):.4f} "
      f"| {st.mean(x['lstm_coverage80'] for x in a):.2f} / {st.mean(x['lstm_coverage95'] for x in a):.2f} |")
PY
done
