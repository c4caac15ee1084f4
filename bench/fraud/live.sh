#!/usr/bin/env bash
# Live fraud scoring over REST with state updates: trains `fraud_gbdt` (or KIND) on the first TRAIN rows of
# the handbook file (spec `handbook` with a TOLERANCE out-of-order tolerance, default 1 h), serves
# it, and streams the following transactions with CONC (default 8) keep-alive connections, BATCH
# events per request, default audit durability `sync`: every answer waits for the event log's
# fsync (shared by concurrent requests: group commit) and the audit record's commit.
#
#   bench/fraud/live.sh [--debug] [SECONDS] [BATCH]
#
# BATCH (default 1) events per request; a batch is scored and applied all or nothing.
# RATE=events/s paces the Rust client (each connection sends on a fixed schedule, latency counted
# from the scheduled time) instead of the closed loop that measures saturation.
# AURUM_BIN=path skips the build and uses that binary.
# KIND=fraud_sequence (default fraud_gbdt) serves the sequence network instead, over each
# customer's last 16 events of 7 days (a `history` feature appended to the spec); PARAMS adds
# `--param` values to the training (for example "architecture=cnn epochs=5").
# CLIENT=rust (default): crates/aurum-fraud/examples/live_load.rs (LOAD_BIN=path skips its
# build); CLIENT=python: bench/fraud/live.py, which on two cores is itself the bottleneck above a
# few thousand requests per second.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=target/fraud-bench; mkdir -p "$WORK"
PROFILE=release; FLAG=--release
[ "${1:-}" = "--debug" ] && { PROFILE=debug; FLAG=; shift; }
SECONDS_RUN=${1:-20}
BATCH=${2:-1}
TRAIN=${TRAIN:-50000}
CONC=${CONC:-8}
CLIENT=${CLIENT:-rust}
TOLERANCE=${TOLERANCE:-1h}
KIND=${KIND:-fraud_gbdt}
PARAMS=${PARAMS:-}
if [ -n "${AURUM_BIN:-}" ]; then AURUM=$AURUM_BIN; else cargo build $FLAG -p aurum-cli; AURUM="target/$PROFILE/aurum"; fi
if [ "$CLIENT" = rust ]; then
  if [ -n "${LOAD_BIN:-}" ]; then LOAD=$LOAD_BIN; else
    cargo build --release -p aurum-fraud --example live_load; LOAD=target/release/examples/live_load; fi
fi
DATA="$WORK/live-data"; rm -rf "$DATA"
head -n $((TRAIN + 1)) data/fraud/handbook_sim_transactions.csv > "$WORK/live-train.csv"
{ head -n 1 data/fraud/handbook_sim_transactions.csv; tail -n +$((TRAIN + 2)) data/fraud/handbook_sim_transactions.csv; } > "$WORK/live-stream.csv"
sed -e 's/^timestamp = "TX_DATETIME"/timestamp = "TX_TIME_SECONDS"/' \
    -e 's/^ignore = \[.*/ignore = ["TX_DATETIME", "TX_TIME_DAYS", "TX_FRAUD_SCENARIO"]/' \
    -e "s/^out_of_order_tolerance = .*/out_of_order_tolerance = \"$TOLERANCE\"/" \
    data/fraud/handbook_features.toml > "$WORK/live-spec.toml"
if [ "$KIND" = fraud_sequence ]; then
  printf '\n[[features]]\nkind = "history"\nentity = "CUSTOMER_ID"\nwindow = "7d"\nlength = 16\n' >> "$WORK/live-spec.toml"
fi
EXTRA=()
for kv in $PARAMS; do EXTRA+=(--param "$kv"); done
"$AURUM" --data-dir "$DATA" data import "$WORK/live-train.csv" --name tx >/dev/null
"$AURUM" --data-dir "$DATA" train --dataset tx --target TX_FRAUD --kind "$KIND" --model fraud \
  --date-column TX_DATETIME --alias champion --param "spec=$(cat "$WORK/live-spec.toml")" "${EXTRA[@]}" >/dev/null
KEY=$("$AURUM" --data-dir "$DATA" keys create --name bench --role client | tail -1)
AURUM_LOG=${AURUM_LOG:-warn} "$AURUM" --data-dir "$DATA" serve --listen 127.0.0.1:18091 >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null' EXIT
for _ in $(seq 1 600); do curl -sf -o /dev/null http://127.0.0.1:18091/readyz && break; sleep 0.05; done
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# CPU seconds (user + system) of the server over the load, from /proc; the client's from `time`.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
SERVER_TICKS=$(cpu_ticks $PID)
TIMEFORMAT='client CPU %U s user + %S s system over %R s'
if [ "$CLIENT" = rust ]; then
  time "$LOAD" http://127.0.0.1:18091 "$KEY" "$WORK/live-stream.csv" "$SECONDS_RUN" "$CONC" "$BATCH" fraud ${RATE:-}
else
  time python3 bench/fraud/live.py http://127.0.0.1:18091 "$KEY" "$WORK/live-stream.csv" "$SECONDS_RUN" "$CONC" "$BATCH"
fi
echo "server CPU $(( ($(cpu_ticks $PID) - SERVER_TICKS) * 1000 / $(getconf CLK_TCK) )) ms (user + system) over the load"
echo "model $KIND $PARAMS; client $CLIENT; load at start $LOAD_START; server RSS $(awk '/VmRSS/{print $2}' /proc/$PID/status) KiB; $PROFILE build; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d)"
