#!/usr/bin/env bash
# Recommendation serving latency over REST: a 10 000-item catalogue, `reco_als` trained through
# the job runner, then wrk at concurrency 8 posting `POST /v1/models/offers/recommend` for random
# known users (k = 10, held items excluded, audit durability as configured: sync by default).
# Prints wrk's latency distribution; the target is p99 <= 5 ms.
#
#   bench/reco/serve.sh [DURATION]     (default 10s)
#
# Needs wrk (Debian package) and a release build of the CLI (built here).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
DURATION=${1:-10s}
WORK=${BENCH_WORK:-/tmp/aurum-reco-serve}
PORT=18091
rm -rf "$WORK"; mkdir -p "$WORK"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
cargo build --release -p aurum-cli >/dev/null
AURUM="$ROOT/target/release/aurum"

# 20 000 customers × 15 holdings over 10 000 products (skewed: product = floor(10000·u²)),
# seeded so every run sees the same file.
python3 - "$WORK/interactions.csv" <<'PY'
import random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    f.write("customer,product,category,period\n")
    for c in range(20000):
        for t in range(15):
            p = int(10000 * random.random() ** 2)
            f.write(f"c{c},p{p},cat{p % 20},{t}\n")
PY
DATA="$WORK/data"
"$AURUM" --data-dir "$DATA" data import "$WORK/interactions.csv" --name interactions >/dev/null
"$AURUM" --data-dir "$DATA" train --dataset interactions --target product --kind reco_als \
  --model offers --alias champion \
  --param user_column=customer --param item_column=product --param time_column=period \
  --param item_attributes=category --param factors=64 >/dev/null
KEY=$("$AURUM" --data-dir "$DATA" keys create --name bench --role client | tail -1)
AURUM_LOG=warn "$AURUM" --data-dir "$DATA" serve --listen 127.0.0.1:$PORT >/dev/null 2>&1 &
APID=$!
trap 'kill $APID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.05; done
cat > "$WORK/recommend.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer $KEY"
math.randomseed(42)
request = function()
  local body = string.format('{"user":"c%d","k":10}', math.random(0, 19999))
  return wrk.format(nil, "/v1/models/offers/recommend", nil, body)
end
LUA
curl -sf -X POST -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
  -d '{"user":"c1","k":10}' "http://127.0.0.1:$PORT/v1/models/offers/recommend" >/dev/null
wrk -t 2 -c 8 -d 3s -s "$WORK/recommend.lua" "http://127.0.0.1:$PORT" >/dev/null # warm-up
wrk -t 2 -c 8 -d "$DURATION" --latency -s "$WORK/recommend.lua" "http://127.0.0.1:$PORT"
