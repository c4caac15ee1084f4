#!/usr/bin/env bash
# The first seconds of a freshly started server: eight connections ask for a model nobody has
# loaded yet (the approved applicant, buffered audit, `wrk -t2 -c8`, 2 s per start). Prints, per
# start, `<binary> <req/s> <p50 ms> <p99 ms> <non-2xx> loads=<model loads in the server log>`.
# wrk corrects for coordinated omission, so a stall of every connection while the model loads
# shows in the p99. Run after bench/serving/run.sh and bench/serving/approved.sh (model, data
# directory, bodies and wrk scripts in $BENCH_WORK, default /tmp/aurum-bench).
#
#   bench/serving/cold_start.sh [AURUM_BINARY ...]   (default target/release/aurum; several
#                                                     binaries are alternated, STARTS=n each)
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${BENCH_WORK:-/tmp/aurum-bench}; D=$W/aurum-data
[ $# -gt 0 ] || set -- "$(pwd)/target/release/aurum"
KEY=$("$1" --data-dir "$D" keys create --name "bench-cold-$(date +%s)" --role client | tail -1)
for _ in $(seq 1 "${STARTS:-3}"); do
  for A in "$@"; do
    LOG=$(mktemp)
    AURUM_LOG=info AURUM_AUDIT_DURABILITY=buffered "$A" --data-dir "$D" serve --listen 127.0.0.1:18081 >"$LOG" 2>&1 &
    P=$!
    for _ in $(seq 1 200); do curl -sf -o /dev/null http://127.0.0.1:18081/readyz && break; sleep 0.05; done
    r=$(BODY=$W/approve_1.json KEY=$KEY wrk -t2 -c8 -d2s -s "$W/post.lua" http://127.0.0.1:18081/v2/models/bench/infer 2>/dev/null \
      | awk '/^RESULT/{print $2, $3, $4, $5}')
    kill $P; wait $P 2>/dev/null || true
    echo "$A $r loads=$(grep -c 'model version loaded' "$LOG" || true)"
    rm -f "$LOG"
  done
done
