#!/usr/bin/env bash
# Fraud quality benchmark on data/fraud/handbook_sim_transactions.csv: aurum's `fraud_gbdt`
# family and a feature-group ablation (crates/aurum-fraud/examples/fraud_features.rs) vs LightGBM
# on the SAME feature matrix the example writes (bench/fraud/lgbm.py). Split: first 70 % of the
# time span trains, the rest is held out.
#
#   bench/fraud/run.sh [--debug]
#
# Creates a venv under target/fraud-bench with lightgbm, scikit-learn, numpy and pandas.
# --debug uses the debug build (aurum-credit is optimised even there) instead of --release.
# The family's GBDT defaults were chosen without the held-out period by
#   target/release/examples/fraud_tune target/fraud-bench/features.csv
# (validation folds inside the training period; build it with --example fraud_tune) and
#   target/fraud-bench/venv/bin/python bench/fraud/lgbm.py --validation target/fraud-bench/features.csv
# for LightGBM on the same validation fold.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=target/fraud-bench
mkdir -p "$WORK"
PROFILE=release; FLAG=--release
[ "${1:-}" = "--debug" ] && { PROFILE=debug; FLAG=; }
cargo build $FLAG -p aurum-fraud --example fraud_features
VENV="$WORK/venv"
if ! "$VENV/bin/python" -c "import lightgbm, sklearn, numpy, pandas" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q lightgbm scikit-learn numpy pandas
fi
echo "== aurum ($PROFILE build)"
"target/$PROFILE/examples/fraud_features" "$WORK/features.csv"
echo "== LightGBM on the same matrix"
"$VENV/bin/python" bench/fraud/lgbm.py "$WORK/features.csv" data/fraud/handbook_sim_transactions.csv
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d)"
