#!/usr/bin/env bash
# Recommendation benchmark: aurum-reco against the Python `implicit` library on exactly the same
# MovieLens split (ratings >= 4 are positives, each user's latest 20 % held out). reco_bench
# writes the split (bench/reco/out/train.csv, test.csv) and aurum's figures (aurum.json); then
# implicit's ALS and BPR are fitted on that train file with the same parameters and thread count,
# scored with the same metric definitions, and one side-by-side table is printed.
#
#   bench/reco/run.sh [THREADS]     (default: the number of cores)
#
# Installs implicit, numpy, pandas and scipy (latest from PyPI) in a venv under target/reco-venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
THREADS=${1:-$(nproc)}
VENV="$ROOT/target/reco-venv"
OUT="$ROOT/bench/reco/out"

if ! "$VENV/bin/python" -c "import implicit, numpy, pandas, scipy" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q implicit numpy pandas scipy
fi
# implicit's ALS/BPR use their own thread pools; keep BLAS from adding more.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), threads $THREADS" >&2
cargo build --release -p aurum-reco --example reco_bench
rm -rf "$OUT"; mkdir -p "$OUT"
echo "== aurum" >&2
RAYON_NUM_THREADS=$THREADS target/release/examples/reco_bench data/ratings/movielens_small.csv --threads "$THREADS" --out "$OUT"
echo "== implicit" >&2
"$VENV/bin/python" bench/reco/implicit_bench.py "$OUT" "$THREADS"
