#!/usr/bin/env bash
# Credit-model benchmark: aurum's GBDT, scorecard and logistic regression vs LightGBM and
# optbinning's Scorecard on German credit and Lending Club, on exactly the same 70/30 splits.
# Prints one side-by-side markdown table; with --record appends it to BENCHMARKS.md.
#
#   bench/credit/run.sh [--record] [--note "TEXT"]
#
# --note adds a line about the machine to the recorded section (e.g. "shared with other jobs").
# Installs what it needs in a venv under $BENCH_WORK (default /tmp/aurum-credit-bench):
# lightgbm, optbinning, pandas, scikit-learn, numpy (latest from PyPI; versions are recorded).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK=${BENCH_WORK:-/tmp/aurum-credit-bench}
RECORD=0; NOTE=""
COMMAND="bench/credit/run.sh"
for a in "$@"; do case $a in *[[:space:]]*) COMMAND+=" \"$a\"" ;; *) COMMAND+=" $a" ;; esac; done
while [ $# -gt 0 ]; do
  case $1 in
    --record) RECORD=1 ;;
    --note) NOTE=${2:?--note needs a value}; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)

cargo build --release -p aurum-credit --example credit_bench
VENV="$WORK/venv"
if ! "$VENV/bin/python" -c "import lightgbm, optbinning, pandas, sklearn, numpy" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q lightgbm optbinning pandas scikit-learn numpy
fi

OUT="$WORK/out"; rm -rf "$OUT"; mkdir -p "$OUT"
echo "== aurum" >&2
"$ROOT/target/release/examples/credit_bench" "$OUT" >&2
echo "== LightGBM, optbinning" >&2
"$VENV/bin/python" bench/credit/lgbm_bench.py "$OUT" >&2
echo >&2

ARGS=("$OUT" "$COMMAND" --loadavg "$LOADAVG")
[ -n "$NOTE" ] && ARGS+=(--note "$NOTE")
[ "$RECORD" = 1 ] && ARGS+=(--record "$ROOT/BENCHMARKS.md")
python3 bench/credit/report.py "${ARGS[@]}"
