#!/usr/bin/env bash
# Side-by-side comparison of two `aurum` binaries on the live fraud benchmark (bench/fraud/live.sh),
# in ABBA order per batch size (A, B, B, A), so drift in the machine's load weighs on both alike.
# Each run trains its own model on the same rows, streams from an empty state, and prints one
# result line; this script prefixes it with the label and prints the load average around it.
#
#   bench/fraud/live_abba.sh A_BIN B_BIN [SECONDS] [BATCHES]
#
# SECONDS (default 8) per run; BATCHES (default "1 8 16") events per request. CLIENT, CONC,
# LOAD_BIN and TOLERANCE pass through to live.sh; the Rust client is built once up front.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$1; B=$2; SECONDS_RUN=${3:-8}; BATCHES=${4:-1 8 16}
if [ "${CLIENT:-rust}" = rust ] && [ -z "${LOAD_BIN:-}" ]; then
  cargo build --release -p aurum-fraud --example live_load
  export LOAD_BIN=target/release/examples/live_load
fi
for batch in $BATCHES; do
  for label in A B B A; do
    if [ $label = A ]; then bin=$A; else bin=$B; fi
    AURUM_BIN=$bin bench/fraud/live.sh "$SECONDS_RUN" "$batch" 2>&1 | sed "s|^|$label batch $batch: |"
  done
done
