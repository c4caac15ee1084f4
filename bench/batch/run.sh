#!/usr/bin/env bash
# Batch scoring benchmark: `aurum predict --input FILE --output FILE` against LightGBM's own
# `Booster.predict` in Python (pandas read_csv → predict → to_csv) on the same LightGBM model
# (bench/serving/make_model.py, imported into aurum) and the same CSV files, at two file sizes.
# Reports rows/s and peak RSS (/usr/bin/time -v) of each, and the largest difference between the
# two tools' probabilities. Prints a table and appends it to BENCHMARKS.md with --record.
#
#   bench/batch/run.sh [--record] [SMALL_ROWS LARGE_ROWS]   (default 250000 1000000)
#
# Needs: a venv at target/bench-venv with lightgbm, numpy and pandas (created when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK=${BENCH_WORK:-/tmp/aurum-bench-batch}
RECORD=0; SIZES=()
for a in "$@"; do
  case $a in
    --record) RECORD=1 ;;
    *) SIZES+=("$a") ;;
  esac
done
[ ${#SIZES[@]} -eq 2 ] || SIZES=(250000 1000000)
mkdir -p "$WORK"
VENV="$ROOT/target/bench-venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import lightgbm, numpy, pandas' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q lightgbm numpy pandas
fi
PY="$VENV/bin/python"
[ -f "$WORK/model.txt" ] || "$PY" bench/serving/make_model.py "$WORK" >/dev/null
for n in "${SIZES[@]}"; do [ -f "$WORK/rows_$n.csv" ] || "$PY" bench/batch/make_data.py "$WORK" "$n" >/dev/null; done
cargo build --release -p aurum-cli >/dev/null 2>&1
AURUM="$ROOT/target/release/aurum"
DATA="$WORK/aurum-data"; rm -rf "$DATA"
"$AURUM" --data-dir "$DATA" import --format lightgbm "$WORK/model.txt" --model bench --alias champion >/dev/null

peak_mib() { awk '/Maximum resident set size/{printf "%.0f", $6/1024}' "$1"; }
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
TABLE=$(mktemp)
for n in "${SIZES[@]}"; do
  in="$WORK/rows_$n.csv"
  /usr/bin/time -v "$AURUM" --data-dir "$DATA" predict bench --input "$in" --output "$WORK/aurum_$n.csv" \
    --keep id --json >"$WORK/aurum_$n.json" 2>"$WORK/aurum_$n.time"
  a_rps=$("$PY" -c "import json;print(round(json.load(open('$WORK/aurum_$n.json'))['rows_per_s']))")
  a_s=$("$PY" -c "import json;print(json.load(open('$WORK/aurum_$n.json'))['elapsed_ms']/1000)")
  /usr/bin/time -v "$PY" bench/batch/lgbm_predict.py "$WORK/model.txt" "$in" "$WORK/lgbm_$n.csv" \
    >"$WORK/lgbm_$n.out" 2>"$WORK/lgbm_$n.time"
  read -r _ l_rps l_pred l_s < <(awk '/^RESULT/{print $2, $3, $4, $5}' "$WORK/lgbm_$n.out")
  diff=$("$PY" bench/batch/compare.py "$WORK/aurum_$n.csv" "$WORK/lgbm_$n.csv")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$(du -m "$in" | cut -f1)" \
    "$a_rps" "$a_s" "$(peak_mib "$WORK/aurum_$n.time")" "$l_rps" "$l_pred" "$(peak_mib "$WORK/lgbm_$n.time")" "$diff" >>"$TABLE"
done
{
  echo
  echo "### Batch scoring: \`aurum predict --input\` vs LightGBM \`Booster.predict\` ($(date -u +%Y-%m-%d))"
  echo
  echo "\`bench/batch/run.sh ${SIZES[*]}\` on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average $LOADAVG at the start."
  echo "Model: bench/serving's LightGBM (200 trees, 31 leaves, 20 features), imported with \`aurum import --format lightgbm\`."
  echo "aurum: CSV in → CSV out (\`--keep id\`: id, probability, label, score, decision, reasons), one \`batch_prediction\` audit record, all cores."
  echo "LightGBM $("$PY" -c 'import lightgbm;print(lightgbm.__version__)'): pandas \`read_csv\` → \`Booster.predict\` (all cores) → \`to_csv\` of id and probability."
  echo
  echo "| rows | CSV MiB | aurum rows/s | aurum s | aurum peak RSS MiB | LightGBM rows/s (whole run) | LightGBM rows/s (predict alone) | LightGBM peak RSS MiB | max abs Δp |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  cat "$TABLE"
} | tee "$WORK/table.md"
[ $RECORD = 1 ] && cat "$WORK/table.md" >> BENCHMARKS.md
rm -f "$TABLE"
