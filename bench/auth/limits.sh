#!/usr/bin/env bash
# What a per-key rate limit costs a request: the approved single applicant (OIP JSON, no reasons)
# at concurrency 8, buffered audit, 5 s cells, three settings alternated in one run:
#   unlimited   a key without rate_limit_per_s (no limit check at all);
#   process     a key limited to 1 000 000 requests a second, buckets in the process;
#   shared      the same key with registry.limits_url: one Redis round trip per request.
# The limit is never reached, so every cell measures the check, not refusals. Prints
# `<setting> <req/s> <p50 ms> <p99 ms> <non-2xx> <server CPU µs/request> <redis CPU µs/request>
# <limit checks in Redis per second>`.
# Run after bench/serving/run.sh (it leaves the model, data directory and bodies in $BENCH_WORK,
# default /tmp/aurum-bench); starts Redis on loopback with scripts/services/run.sh.
# AURUM_BIN=path, REPEATS=n (default 3), DURATION (default 5s).
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${BENCH_WORK:-/tmp/aurum-bench}; A=${AURUM_BIN:-"$(pwd)/target/release/aurum"}; D=$W/aurum-data
[ -f "$W/approve_1.json" ] || { echo "run bench/serving/run.sh and bench/serving/approved.sh first" >&2; exit 1; }
scripts/services/run.sh start >/dev/null
# shellcheck disable=SC1090
source <(scripts/services/run.sh env)
REDIS_PID=$(redis-cli -u "$AURUM_TEST_REDIS_URL" info server | awk -F: '/^process_id/{print $2}' | tr -d '\r')
UNLIMITED=$("$A" --data-dir "$D" keys create --name "bench-unlimited-$(date +%s)" --role client | tail -1)
LIMITED=$("$A" --data-dir "$D" keys create --name "bench-limited-$(date +%s)" --role client --rate-limit 1000000 | tail -1)
DUR=${DURATION:-5s}
TCK=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Scripts run (one per limit check), from Redis's own command statistics.
commands() { redis-cli -u "$AURUM_TEST_REDIS_URL" info commandstats | tr -d '\r' |
  awk -F'[=,:]' '/^cmdstat_eval:/{n = $3} END {print n + 0}'; }
for rep in $(seq 1 "${REPEATS:-3}"); do
  for setting in unlimited process shared; do
    key=$LIMITED; [ "$setting" = unlimited ] && key=$UNLIMITED
    shared=(); [ "$setting" = shared ] && shared=("AURUM_LIMITS_URL=$AURUM_TEST_REDIS_URL" "AURUM_LIMITS_PREFIX=bench:$(date +%s%N)")
    env AURUM_LOG=warn AURUM_AUDIT_DURABILITY=buffered "${shared[@]}" \
      "$A" --data-dir "$D" serve --listen 127.0.0.1:18083 >/dev/null 2>&1 &
    P=$!
    for _ in $(seq 1 200); do curl -sf -o /dev/null http://127.0.0.1:18083/readyz && break; sleep 0.05; done
    curl -sf -o /dev/null -X POST -H "Authorization: Bearer $key" -H 'content-type: application/json' \
      -d @"$W/approve_1.json" http://127.0.0.1:18083/v2/models/bench/infer
    t0=$(ticks "$P"); r0=$(ticks "$REDIS_PID"); c0=$(commands)
    r=$(BODY=$W/approve_1.json KEY=$key wrk -t2 -c8 -d"$DUR" -s "$W/post.lua" http://127.0.0.1:18083/v2/models/bench/infer 2>/dev/null |
      awk '/^RESULT/{print $2, $3, $4, $5}')
    t1=$(ticks "$P"); r1=$(ticks "$REDIS_PID"); c1=$(commands)
    echo "$setting $r" | awk -v dt=$((t1 - t0)) -v dr=$((r1 - r0)) -v dc=$((c1 - c0)) -v tck="$TCK" -v s="${DUR%s}" \
      '{printf "%s %.1f %.1f %.1f\n", $0, dt / tck * 1e6 / ($2 * s), dr / tck * 1e6 / ($2 * s), dc / s}'
    kill $P; wait $P 2>/dev/null || true
  done
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
