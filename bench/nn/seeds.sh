#!/usr/bin/env bash
# The MLP's test AUC over several training seeds, aurum (burn) and PyTorch on the same encoded
# data, split and architecture (what bench/nn/run.sh compares on one seed): one line per seed and
# side, then each side's mean and standard deviation. A single seed's AUC on a 5 %-bad test set of
# a few thousand rows moves by a few hundredths, so the comparison is between the means.
#
#   bench/nn/seeds.sh [CSV TARGET] [SEEDS] [EPOCHS]
#       default: data/credit/lending_club.csv Class, seeds 1-10, 20 epochs
#
# Uses the venv and the example build of bench/nn/run.sh (PROFILE=dev for the debug build).
set -euo pipefail
cd "$(dirname "$0")/../.."
CSV=${1:-data/credit/lending_club.csv}
TARGET=${2:-Class}
SEEDS=${3:-10}
EPOCHS=${4:-20}
OUT=target/nn-bench/seeds
VENV=target/nn-venv
mkdir -p "$OUT"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import torch, sklearn" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q numpy scikit-learn torch
fi
if [ "${PROFILE:-release}" = dev ]; then
  cargo build -q --workspace --example nn_bench
  BIN=target/debug/examples/nn_bench
else
  cargo build -q --release --target-dir target/bench -p aurum-nn --example nn_bench
  BIN=target/bench/release/examples/nn_bench
fi
export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
: > "$OUT/aucs"
for seed in $(seq 1 "$SEEDS"); do
  a=$(SEED=$seed "$BIN" mlp "$CSV" "$TARGET" "$EPOCHS" "$OUT/s$seed")
  t=$(SEED=$seed "$VENV/bin/python" bench/nn/torch_ref.py mlp "$OUT/s$seed")
  python3 - "$seed" "$a" "$t" <<'PY' | tee -a "$OUT/aucs"
import json, sys
a, t = json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"seed {sys.argv[1]}: aurum {a['test_auc']:.4f} pytorch {t['test_auc']:.4f}")
PY
done
python3 - "$OUT/aucs" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
a = [float(r[3]) for r in rows]; t = [float(r[5]) for r in rows]
for name, v in (("aurum", a), ("pytorch", t)):
    print(f"{name:8} mean {statistics.mean(v):.4f} sd {statistics.stdev(v):.4f} min {min(v):.4f} max {max(v):.4f} over {len(v)} seeds")
print(f"mean difference aurum - pytorch {statistics.mean(a) - statistics.mean(t):+.4f}")
PY
