#!/usr/bin/env bash
# Live fraud scoring over REST with state updates: trains `fraud_gbdt` on the first TRAIN rows of
# the handbook file (spec `handbook` with a 1 h out-of-order tolerance), serves it, and streams the
# following transactions with bench/fraud/live.py (8 clients, one event per request, default audit
# durability `sync`: every answer waits for the event log's fsync and the audit record's).
#
#   bench/fraud/live.sh [--debug] [SECONDS] [BATCH]
#
# BATCH (default 1) events per request; a batch is scored and applied all or nothing.
# AURUM_BIN=path skips the build and uses that binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=target/fraud-bench; mkdir -p "$WORK"
PROFILE=release; FLAG=--release
[ "${1:-}" = "--debug" ] && { PROFILE=debug; FLAG=; shift; }
SECONDS_RUN=${1:-20}
BATCH=${2:-1}
TRAIN=${TRAIN:-50000}
if [ -n "${AURUM_BIN:-}" ]; then AURUM=$AURUM_BIN; else cargo build $FLAG -p aurum-cli; AURUM="target/$PROFILE/aurum"; fi
DATA="$WORK/live-data"; rm -rf "$DATA"
head -n $((TRAIN + 1)) data/fraud/handbook_sim_transactions.csv > "$WORK/live-train.csv"
{ head -n 1 data/fraud/handbook_sim_transactions.csv; tail -n +$((TRAIN + 2)) data/fraud/handbook_sim_transactions.csv; } > "$WORK/live-stream.csv"
sed -e 's/^timestamp = "TX_DATETIME"/timestamp = "TX_TIME_SECONDS"/' \
    -e 's/^ignore = \[.*/ignore = ["TX_DATETIME", "TX_TIME_DAYS", "TX_FRAUD_SCENARIO"]/' \
    -e 's/^out_of_order_tolerance = .*/out_of_order_tolerance = "1h"/' \
    data/fraud/handbook_features.toml > "$WORK/live-spec.toml"
"$AURUM" --data-dir "$DATA" data import "$WORK/live-train.csv" --name tx >/dev/null
"$AURUM" --data-dir "$DATA" train --dataset tx --target TX_FRAUD --kind fraud_gbdt --model fraud \
  --date-column TX_DATETIME --alias champion --param "spec=$(cat "$WORK/live-spec.toml")" >/dev/null
KEY=$("$AURUM" --data-dir "$DATA" keys create --name bench --role client | tail -1)
AURUM_LOG=warn "$AURUM" --data-dir "$DATA" serve --listen 127.0.0.1:18091 >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null' EXIT
for _ in $(seq 1 600); do curl -sf -o /dev/null http://127.0.0.1:18091/readyz && break; sleep 0.05; done
python3 bench/fraud/live.py http://127.0.0.1:18091 "$KEY" "$WORK/live-stream.csv" "$SECONDS_RUN" 8 "$BATCH"
echo "server RSS $(awk '/VmRSS/{print $2}' /proc/$PID/status) KiB; $PROFILE build; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d)"
