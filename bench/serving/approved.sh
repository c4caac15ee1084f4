#!/usr/bin/env bash
# Single approved applicant (PD below the threshold: no reasons, so no TreeSHAP) at concurrency 8,
# OIP JSON and binary tensors, and a 256-row binary batch of approved rows (req/s; rows/s is 256×),
# 10 s per cell, three repeats, with sync then buffered audit, and the
# empty handler in the same windows. Run after bench/serving/run.sh, which leaves the model, data
# directory, bodies and wrk scripts in $BENCH_WORK (default /tmp/aurum-bench); prints raw lines
# `<audit> <body> <req/s> <p50 ms> <p99 ms> <non-2xx> <server CPU µs per request>` (the server
# process's user + system time over the cell, from /proc; the empty handler's p50/p99 are `-`).
# AURUM_BIN=path serves with that binary; MODES="buffered" runs only that durability; REPEATS=n
# (default 3); DURATION=5s per cell (default 10s).
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${BENCH_WORK:-/tmp/aurum-bench}; A=${AURUM_BIN:-"$(pwd)/target/release/aurum"}; D=$W/aurum-data
"$W/venv/bin/python" - "$W" <<'PY'
import json, sys
import numpy as np
w = sys.argv[1]
X, p = np.load(f"{w}/X_check.npy"), np.load(f"{w}/p_check.npy")
i = int(np.argmax(p < 0.5))
data = X[i:i + 1].astype(np.float32)
json.dump({"inputs": [{"name": "input-0", "shape": [1, 20], "datatype": "FP32", "data": data.ravel().tolist()}]},
          open(f"{w}/approve_1.json", "w"))
raw = data.astype("<f4").tobytes()
h = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 20], "datatype": "FP32", "parameters": {"binary_data_size": len(raw)}}],
                "parameters": {"binary_data_output": True}}, separators=(",", ":")).encode()
open(f"{w}/approve_1.bin", "wb").write(h + raw)
open(f"{w}/approve_1.hlen", "w").write(str(len(h)))
print(f"approved applicant: row {i}, PD {p[i]:.3f}")
# 256 approved rows (the check rows with PD below 0.45, clear of the threshold in FP32, repeated):
# the batch cell without reasons, beside the benchmark's batch where 41 % of rows are declined.
ok = np.flatnonzero(p < 0.45)
batch = X[np.resize(ok, 256)].astype("<f4")
raw = batch.tobytes()
h = json.dumps({"inputs": [{"name": "input-0", "shape": [256, 20], "datatype": "FP32", "parameters": {"binary_data_size": len(raw)}}],
                "parameters": {"binary_data_output": True}}, separators=(",", ":")).encode()
open(f"{w}/approve_256.bin", "wb").write(h + raw)
open(f"{w}/approve_256.hlen", "w").write(str(len(h)))
print(f"approved batch: {len(ok)} distinct rows with PD below 0.45, repeated to 256")
PY
KEY=$("$A" --data-dir "$D" keys create --name "bench-approved-$(date +%s)" --role client | tail -1)
DUR=${DURATION:-10s}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # the server's user + system CPU, clock ticks
TCK=$(getconf CLK_TCK)
cell() { # label wrk-args... -> "<label> <req/s> <p50> <p99> <non-2xx> <server CPU µs per request>"
  local label=$1; shift
  local t0; t0=$(ticks "$P")
  local r; r=$(wrk -t2 -c8 -d"$DUR" "$@" 2>/dev/null | awk '/^RESULT/{res = $2 " " $3 " " $4 " " $5} /Requests\/sec/{rps = $2}
    END {if (res != "") print res; else print rps, "-", "-", 0}')
  local t1; t1=$(ticks "$P")
  local secs=${DUR%s}
  echo "$label $r $(echo "$r" | awk -v dt=$((t1 - t0)) -v tck="$TCK" -v s="$secs" '{printf "%.1f", dt / tck * 1e6 / ($1 * s)}')"
}
for mode in ${MODES:-sync buffered}; do
  AURUM_LOG=warn AURUM_AUDIT_DURABILITY=$mode "$A" --data-dir "$D" serve --listen 127.0.0.1:18081 >/dev/null 2>&1 &
  P=$!
  for _ in $(seq 1 200); do curl -sf -o /dev/null http://127.0.0.1:18081/readyz && break; sleep 0.05; done
  # Load the model before measuring: wrk corrects for coordinated omission, so the first
  # requests' wait for the model's load would otherwise show in the first cell's p99.
  curl -sf -o /dev/null -X POST -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
    -d @"$W/approve_1.json" http://127.0.0.1:18081/v2/models/bench/infer
  for rep in $(seq 1 "${REPEATS:-3}"); do
    for body in approve_1.json approve_1.bin approve_256.bin; do
      s=$W/post.lua; [ "${body%.bin}" != "$body" ] && s=$W/post_bin.lua
      BODY=$W/$body HLEN=$W/${body%.*}.hlen KEY=$KEY cell "$mode $body" -s "$s" http://127.0.0.1:18081/v2/models/bench/infer
    done
    cell "$mode healthz" http://127.0.0.1:18081/healthz
  done
  kill $P; wait $P 2>/dev/null || true
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
