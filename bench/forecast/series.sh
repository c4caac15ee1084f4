#!/usr/bin/env bash
# Real-series benchmark: aurum `auto` (and each of its candidates) against statsforecast's
# AutoARIMA, AutoETS, MSTL, Naive and SeasonalNaive, by rolling origin on series as they are
# (daily prices with their trading-day gaps, no fill). Prints JSON lines per side and series.
#
#   bench/forecast/series.sh
#
# Installs statsforecast, pandas and numpy in a venv under $BENCH_WORK (default
# /tmp/aurum-forecast-bench), as run.sh does.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${BENCH_WORK:-/tmp/aurum-forecast-bench}
VENV="$WORK/venv"
if ! "$VENV/bin/python" -c "import statsforecast, pandas, numpy" 2>/dev/null; then
  mkdir -p "$WORK"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q statsforecast pandas numpy
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
cargo build -p aurum-forecast --example series_bench
BENCH=target/debug/examples/series_bench
# file date value horizon windows periods
SERIES=(
  "data/timeseries/msft_daily.csv Date Close 20 6 5,252"
  "data/timeseries/msft_daily.csv Date Volume 20 6 5,252"
  "data/timeseries/taylor_halfhourly.csv timestamp demand_mw 48 6 48,336"
)
for s in "${SERIES[@]}"; do
  read -r file date value h w p <<<"$s"
  echo "== $file $value (h=$h, $w windows, periods $p)"
  echo "-- aurum $(git rev-parse --short HEAD)"
  "$BENCH" "$file" "$date" "$value" "$h" "$w" "$p"
  echo "-- statsforecast $("$VENV/bin/python" -c 'import statsforecast; print(statsforecast.__version__)')"
  "$VENV/bin/python" bench/forecast/series_sf.py "$file" "$date" "$value" "$h" "$w" "$p"
done
