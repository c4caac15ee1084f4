#!/usr/bin/env bash
# Authentication under attack: the release `aurum serve` on loopback, driven by wrk
# (bench/auth/client.lua) and a small Python client (bench/auth/timing.py).
#
#   bench/auth/run.sh [--quick] [--record] [--note TEXT]
#
# Scenarios (see bench/auth/README.md):
#   1. flood: a known key id with wrong secrets at concurrency 128 while a legitimate client
#      predicts at concurrency 2 — once with the failure limit out of the way (the cost of
#      verification) and once at the default limit (the 429 path);
#   2. timing: known id vs unknown id, both with wrong secrets, interleaved, one at a time;
#   3. no dip: 60 s at concurrency 64 on one valid key, completions counted per second.
# Prints a table; --record appends it to BENCHMARKS.md. Installs wrk (Debian) when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
HERE="$ROOT/bench/auth"
WORK=${BENCH_WORK:-/tmp/aurum-bench-auth}
PORT=${BENCH_PORT:-18181}
FLOOD_S=30; NODIP_S=60; ALONE_S=10; TIMING_N=2000; RECORD=0; NOTE=""; QUICK=0
COMMAND=$(python3 -c 'import shlex, sys; print(shlex.join(["bench/auth/run.sh", *sys.argv[1:]]))' "$@")
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1; FLOOD_S=8; NODIP_S=15; ALONE_S=3; TIMING_N=300 ;;
    --record) RECORD=1 ;;
    --note) NOTE=$2; shift ;;
    *) echo "usage: $0 [--quick] [--record] [--note TEXT]" >&2; exit 2 ;;
  esac
  shift
done
# Out of the way for the cost measurements; u32, so well below 2^32.
NO_LIMIT=1000000000
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$WORK"
command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y wrk >/dev/null); }
if [ -n "${AURUM_BIN:-}" ]; then
  AURUM=$AURUM_BIN # another build, e.g. to try the script out on a debug binary
else
  echo "building the release binary (minutes on a small machine)..." >&2
  cargo build --release -p aurum-cli >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; exit 1; }
  AURUM="$ROOT/target/release/aurum"
fi

# ---- data dir, model, key
DATA="$WORK/data"; rm -rf "$DATA"
"$AURUM" --data-dir "$DATA" data import data/demo/german_credit.csv --name german >/dev/null
"$AURUM" --data-dir "$DATA" train --dataset german --target creditability --kind logistic \
  --model credit --alias champion >/dev/null
KEY=$("$AURUM" --data-dir "$DATA" keys create --name app --role client | tail -1)
KEY_ID=${KEY#aurum_}; KEY_ID=${KEY_ID%%_*}
python3 - data/demo/german_credit.csv "$WORK/body.json" <<'PY'
import csv, json, sys
row = next(csv.DictReader(open(sys.argv[1], newline="")))
row.pop("creditability")
def value(v):
    try:
        return int(v)
    except ValueError:
        return v
json.dump({"record": {k: value(v) for k, v in row.items()}}, open(sys.argv[2], "w"))
PY
BASE="http://127.0.0.1:$PORT"
PREDICT="$BASE/v1/models/credit/predict"
GETMODEL="$BASE/v1/models/credit"

# ---- server and RSS sampling
SERVER_PID=""; SAMPLER_PID=""
wait_ready() {
  for _ in $(seq 1 600); do curl -sf -o /dev/null "$BASE/readyz" && return 0; sleep 0.05; done
  echo "server did not become ready" >&2; tail -20 "$WORK/server.log" >&2; return 1
}
start_server() { # auth_failures_per_minute ("" = the default)
  if [ -n "$1" ]; then
    AURUM_AUTH_FAILURES_PER_MINUTE=$1 AURUM_LOG=warn "$AURUM" --data-dir "$DATA" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
  else
    AURUM_LOG=warn "$AURUM" --data-dir "$DATA" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
  fi
  SERVER_PID=$!
  wait_ready
  curl -sf -o /dev/null -X POST -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
    -d @"$WORK/body.json" "$PREDICT"
  # Peak VmRSS sampled every 100 ms (VmHWM, read at the end, is the kernel's exact peak).
  (
    peak=0
    while kill -0 "$SERVER_PID" 2>/dev/null; do
      while read -r k v _; do
        if [ "$k" = VmRSS: ]; then [ "$v" -gt "$peak" ] && peak=$v && echo "$peak" >>"$WORK/rss.peak"; break; fi
      done <"/proc/$SERVER_PID/status" 2>/dev/null || break
      sleep 0.1
    done
  ) &
  SAMPLER_PID=$!
}
hwm_kib() { awk '/VmHWM/{print $2}' "/proc/$SERVER_PID/status"; }
sampled_kib() { { tail -1 "$WORK/rss.peak" 2>/dev/null || true; } | grep . || echo 0; }
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true
  wait "$SAMPLER_PID" 2>/dev/null || true
  rm -f "$WORK/rss.peak"; SERVER_PID=""; SAMPLER_PID=""
}
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
  return 0
}
trap cleanup EXIT

wrk_run() { # out threads conns seconds url [VAR=value...]
  local out=$1 t=$2 c=$3 d=$4 url=$5; shift 5
  env -u KEY -u KEY_ID -u BODY "$@" wrk -t"$t" -c"$c" -d"${d}s" --timeout 5s \
    -s "$HERE/client.lua" "$url" >"$out" 2>&1
}
flood_with_legit() { # tag
  wrk_run "$WORK/$1.flood.txt" 2 128 "$FLOOD_S" "$PREDICT" KEY_ID="$KEY_ID" BODY="$WORK/body.json" &
  local flood=$!
  wrk_run "$WORK/$1.legit.txt" 1 2 "$FLOOD_S" "$PREDICT" KEY="$KEY" BODY="$WORK/body.json"
  wait "$flood"
}

# ---- 1 and 2: failure limit out of the way
echo "scenario 1: flood, failure limit $NO_LIMIT/min; legit alone first (${ALONE_S} s)" >&2
start_server "$NO_LIMIT"
wrk_run "$WORK/alone.txt" 1 2 "$ALONE_S" "$PREDICT" KEY="$KEY" BODY="$WORK/body.json"
flood_with_legit nolimit
echo "nolimit $(sampled_kib) $(hwm_kib)" >"$WORK/rss.txt"
echo "scenario 2: timing, $TIMING_N requests of each kind" >&2
python3 "$HERE/timing.py" 127.0.0.1 "$PORT" "$KEY_ID" "$TIMING_N" /v1/models/credit >"$WORK/timing.txt"
stop_server

echo "scenario 1b: flood at the default failure limit" >&2
start_server ""
flood_with_legit limited
echo "limited $(sampled_kib) $(hwm_kib)" >>"$WORK/rss.txt"
stop_server

echo "scenario 3: ${NODIP_S} s at concurrency 64, one valid key (predict, then GET)" >&2
start_server ""
wrk_run "$WORK/nodip.predict.txt" 2 64 "$NODIP_S" "$PREDICT" KEY="$KEY" BODY="$WORK/body.json"
wrk_run "$WORK/nodip.get.txt" 2 64 "$NODIP_S" "$GETMODEL" KEY="$KEY"
echo "nodip $(sampled_kib) $(hwm_kib)" >>"$WORK/rss.txt"
stop_server

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
CPU=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)
python3 "$HERE/report.py" "$WORK" "$ROOT/BENCHMARKS.md" "$RECORD" "$COMMAND" \
  "$(nproc) CPUs ($CPU)" "$LOAD_START" "$LOAD_END" "$NOTE" "$FLOOD_S" "$NODIP_S" "$QUICK"
