#!/usr/bin/env bash
# The OIP binary cells at concurrency 8 (the benchmark's declined single row, and 256 rows) under
# each audit setting: durability sync / buffered, each with the signed anchor on every commit
# (`audit.anchor_interval_ms = 0`, the default) and deferred by 100 ms, plus the empty handler in
# the same server. Run after bench/serving/run.sh, which leaves the model, data directory, bodies
# and wrk scripts in $BENCH_WORK (default /tmp/aurum-bench). 10 s per cell, one pass (REPEATS=n
# for more); prints raw lines `<durability> <anchor ms> <cell> <req/s> <p50 ms> <p99 ms> <non-2xx>`.
# AURUM_BIN=path serves with that binary; MODES="sync 100,buffered 0" runs only those settings.
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${BENCH_WORK:-/tmp/aurum-bench}; A=${AURUM_BIN:-"$(pwd)/target/release/aurum"}; D=$W/aurum-data
MODES=${MODES:-"sync 0,sync 100,buffered 0,buffered 100"}
REPEATS=${REPEATS:-1}
KEY=$("$A" --data-dir "$D" keys create --name "bench-audit-modes-$(date +%s)" --role client | tail -1)
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq 1 "$REPEATS"); do
  IFS=, read -ra modes <<< "$MODES"
  for mode in "${modes[@]}"; do
    set -- $mode
    AURUM_LOG=warn AURUM_AUDIT_DURABILITY=$1 AURUM_AUDIT_ANCHOR_INTERVAL_MS=$2 \
      "$A" --data-dir "$D" serve --listen 127.0.0.1:18081 >/dev/null 2>&1 &
    P=$!
    for _ in $(seq 1 200); do curl -sf -o /dev/null http://127.0.0.1:18081/readyz && break; sleep 0.05; done
    # Load the model first: wrk corrects for coordinated omission, so the first requests' wait
    # for the load would otherwise show in the first cell's p99.
    curl -sf -o /dev/null -X POST -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
      -d @"$W/body_1.json" http://127.0.0.1:18081/v2/models/bench/infer
    for body in body_1.bin body_256.bin; do
      r=$(BODY=$W/$body HLEN=$W/${body%.*}.hlen KEY=$KEY wrk -t2 -c8 -d10s -s "$W/post_bin.lua" \
        http://127.0.0.1:18081/v2/models/bench/infer 2>/dev/null | awk '/^RESULT/{print $2, $3, $4, $5}')
      echo "$1 $2 $body $r"
    done
    echo "$1 $2 healthz $(wrk -t2 -c8 -d10s http://127.0.0.1:18081/healthz 2>/dev/null | awk '/Requests\/sec/{print $2}')"
    kill $P; wait $P 2>/dev/null || true
  done
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
