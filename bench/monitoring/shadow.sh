#!/usr/bin/env bash
# Shadow scoring's cost to clients: single-record `/v1` predict at concurrency 8 against one
# server, with the challenger off and on in alternating cells (toggled over the API, no restart),
# four repeats of each in ABBA order, the same model and data. Prints per cell `<challenger> <req/s> <p50 ms>
# <p99 ms> <requests>`, the on/off ratios of the medians. Target: at most 10 % more latency.
#
#   bench/monitoring/shadow.sh [DURATION]     (default 10s per cell)
#
# Needs wrk (Debian package) and a release build of the CLI (built here).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
DURATION=${1:-10s}
WORK=${BENCH_WORK:-/tmp/aurum-shadow}
PORT=18093
rm -rf "$WORK"; mkdir -p "$WORK"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
[ -n "${AURUM_BIN:-}" ] || cargo build --release -p aurum-cli >/dev/null
A="${AURUM_BIN:-$ROOT/target/release/aurum}"
D="$WORK/data"
"$A" --data-dir "$D" data import data/demo/german_credit.csv --name german >/dev/null
"$A" --data-dir "$D" train --dataset german --target creditability --kind logistic \
  --model credit --alias champion >/dev/null
"$A" --data-dir "$D" train --dataset german --target creditability --kind scorecard \
  --model credit --alias challenger >/dev/null
KEY=$("$A" --data-dir "$D" keys create --name bench --role admin | tail -1)
AURUM_LOG=warn "$A" --data-dir "$D" serve --listen 127.0.0.1:$PORT >/dev/null 2>&1 &
P=$!
trap 'kill $P 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.05; done
python3 - "$WORK/body.json" <<'PY'
import csv, json, sys
row = next(csv.DictReader(open("data/demo/german_credit.csv")))
row.pop("creditability")
rec = {k: (int(v) if v.lstrip("-").isdigit() else v) for k, v in row.items()}
json.dump({"records": [rec]}, open(sys.argv[1], "w"))
PY
cat > "$WORK/predict.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer $KEY"
local f = io.open("$WORK/body.json"); wrk.body = f:read("*a"); f:close()
LUA
URL="http://127.0.0.1:$PORT"
toggle() {
  if [ "$1" = on ]; then
    curl -sf -X PUT -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
      -d '{"alias":"challenger"}' "$URL/v1/models/credit/challenger" >/dev/null
  else
    curl -sf -o /dev/null -X DELETE -H "Authorization: Bearer $KEY" "$URL/v1/models/credit/challenger"
  fi
}
wrk -t 2 -c 8 -d 3s -s "$WORK/predict.lua" "$URL/v1/models/credit/predict" >/dev/null # warm-up
: > "$WORK/cells"
# ABBA order (off on, on off, off on, on off): the server slows a little as its audit log and
# registry grow during the run, and a fixed off-then-on order would charge that drift to "on".
for rep in 1 2 3 4; do
  order="off on"; [ $((rep % 2)) = 0 ] && order="on off"
  for mode in $order; do
    toggle $mode
    out=$(wrk -t 2 -c 8 -d "$DURATION" --latency -s "$WORK/predict.lua" "$URL/v1/models/credit/predict")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    echo "$mode $rps $p50 $p99 $n" | tee -a "$WORK/cells"
  done
done
toggle off
sleep 2 # let the shadow worker finish what is queued
ON_REQUESTS=$(awk '$1=="on" {s+=$5} END {print s}' "$WORK/cells")
curl -sf -H "Authorization: Bearer $KEY" "$URL/v1/models/credit/challenger" |
  python3 -c 'import json,sys; c=json.load(sys.stdin)["comparisons"]; n=c[0]["records"] if c else 0; t=int(sys.argv[1]); print("shadow records:", n, "of", t, "requests with the challenger on (%.1f %% shadowed; the rest shed under load)" % (100.0*n/max(t,1)), "agreement:", round(c[0]["decision_agreement"],3) if c else "n/a")' "$ON_REQUESTS"
python3 - "$WORK/cells" <<'PY'
import statistics, sys
def ms(v):
    return float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1000 if v.endswith("us") else float(v[:-1]) * 1000
cells = [l.split() for l in open(sys.argv[1])]
med = lambda mode, i, f=float: statistics.median(f(c[i]) for c in cells if c[0] == mode)
for name, i, f in [("req/s", 1, float), ("p50 ms", 2, ms), ("p99 ms", 3, ms)]:
    off, on = med("off", i, f), med("on", i, f)
    print(f"{name:7} off {off:10.2f}  on {on:10.2f}  on/off {on / off:5.3f}")
PY
