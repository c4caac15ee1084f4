#!/usr/bin/env bash
# Forecasting benchmark: aurum's auto-ARIMA and auto-ETS vs statsforecast's AutoARIMA and AutoETS
# on exactly the same tasks cut from data/timeseries/, plus rolling-origin backtests (aurum's
# `backtest` vs statsforecast's `cross_validation` on the same origins). Prints one side-by-side
# markdown table (and a per-data-set and a backtest table); with --record appends them to
# BENCHMARKS.md under "## Forecasting: aurum vs statsforecast".
#
#   bench/forecast/run.sh [--record] [--note "TEXT"]
#
# --note adds a line about the machine to the recorded section (e.g. "shared with other jobs").
# Writes its files to bench/forecast/out/ (tasks.json, forecasts_aurum.json,
# forecasts_statsforecast.json, results.json). Installs statsforecast, pandas and numpy (latest
# from PyPI; the versions are recorded) in a venv under $BENCH_WORK (default
# /tmp/aurum-forecast-bench).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK=${BENCH_WORK:-/tmp/aurum-forecast-bench}
RECORD=0; NOTE=""
COMMAND="bench/forecast/run.sh"
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

cargo build --release -p aurum-forecast --example forecast_bench
BENCH="$ROOT/target/release/examples/forecast_bench"
VENV="$WORK/venv"
if ! "$VENV/bin/python" -c "import statsforecast, pandas, numpy" 2>/dev/null; then
  mkdir -p "$WORK"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q statsforecast pandas numpy
fi

# Both sides single-threaded: no BLAS / OpenMP thread pools on the Python side.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
# statsforecast < 2 compiled with numba on first use: start from an empty cache so that the
# warm-up figure is the cold one (2.x has no numba; the warm-up is then import-time only).
export NUMBA_CACHE_DIR="$WORK/numba-cache"; rm -rf "$NUMBA_CACHE_DIR"

OUT="$ROOT/bench/forecast/out"; rm -rf "$OUT"; mkdir -p "$OUT"
"$BENCH" tasks "$OUT"
echo "== aurum" >&2
"$BENCH" aurum "$OUT"
echo "== statsforecast" >&2
"$VENV/bin/python" bench/forecast/sf_bench.py "$OUT"
"$BENCH" score "$OUT"
echo >&2

ARGS=("$OUT" "$COMMAND" --loadavg "$LOADAVG")
[ -n "$NOTE" ] && ARGS+=(--note "$NOTE")
[ "$RECORD" = 1 ] && ARGS+=(--record "$ROOT/BENCHMARKS.md")
python3 bench/forecast/report.py "${ARGS[@]}"
