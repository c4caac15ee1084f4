#!/usr/bin/env bash
# Serving benchmark: aurum vs MLServer 1.7.1 (mlserver-lightgbm) on the same LightGBM model,
# driven by wrk on loopback. Prints a table and appends it to BENCHMARKS.md with --record.
#
#   bench/serving/run.sh [--quick] [--record]
#
# Installs what it needs: wrk (Debian), a Python venv with lightgbm, mlserver 1.7.1,
# mlserver-lightgbm and uvloop 0.21.0 (newer uvloop crashes MLServer 1.7.1 at start-up).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK=${BENCH_WORK:-/tmp/aurum-bench}
DURATION=10s; REPEATS=3; RECORD=0
for a in "$@"; do
  case $a in
    --quick) DURATION=3s; REPEATS=1 ;;
    --record) RECORD=1 ;;
  esac
done
mkdir -p "$WORK"
command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y wrk >/dev/null); }
VENV="$WORK/venv"
if [ ! -x "$VENV/bin/mlserver" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "mlserver==1.7.1" "mlserver-lightgbm==1.7.1" "uvloop==0.21.0" lightgbm numpy
fi
"$VENV/bin/python" bench/serving/make_model.py "$WORK" | tee "$WORK/inproc.txt"
cargo build --release -p aurum-cli >/dev/null 2>&1
AURUM="$ROOT/target/release/aurum"

wait_ready() { # url
  for _ in $(seq 1 600); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done; return 1
}
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }

# ---- aurum
DATA="$WORK/aurum-data"; rm -rf "$DATA"
"$AURUM" --data-dir "$DATA" import --format lightgbm "$WORK/model.txt" --model bench --alias champion >/dev/null
for i in 2 3 4; do "$AURUM" --data-dir "$DATA" import --format lightgbm "$WORK/model.txt" --model "bench$i" --alias champion >/dev/null; done
KEY=$("$AURUM" --data-dir "$DATA" keys create --name bench --role client | tail -1)
t0=$(date +%s.%N)
AURUM_LOG=warn "$AURUM" --data-dir "$DATA" serve --listen 127.0.0.1:18081 >/dev/null 2>&1 &
APID=$!
wait_ready http://127.0.0.1:18081/readyz
t1=$(date +%s.%N)
AURUM_START=$(echo "$t1 - $t0" | bc)
for m in bench bench2 bench3 bench4; do
  curl -sf -X POST -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
    -d @"$WORK/body_1.json" "http://127.0.0.1:18081/v2/models/$m/infer" >/dev/null
done
sleep 1; AURUM_IDLE=$(rss_kib $APID)

# ---- MLServer (defaults; the tuned setting below adds parallel workers)
start_mlserver() { # workers
  cd "$WORK/mlserver"
  t0=$(date +%s.%N)
  MLSERVER_PARALLEL_WORKERS=$1 MLSERVER_HTTP_PORT=18082 MLSERVER_GRPC_PORT=18083 MLSERVER_METRICS_PORT=18084 \
    "$VENV/bin/mlserver" start . >"$WORK/mlserver.log" 2>&1 &
  MPID=$!
  cd "$ROOT"
  wait_ready http://127.0.0.1:18082/v2/health/ready || { tail -20 "$WORK/mlserver.log"; exit 1; }
  curl -sf -X POST -H 'content-type: application/json' -d @"$WORK/body_1.json" http://127.0.0.1:18082/v2/models/bench/infer >/dev/null
  t1=$(date +%s.%N); MLS_START=$(echo "$t1 - $t0" | bc)
}
tree_rss_kib() { # sum RSS of a process and its children
  local total=0; for p in $1 $(pgrep -P $1 || true); do total=$((total + $(rss_kib $p))); done; echo $total; }

cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("BODY"), "r"); wrk.body = f:read("*a"); f:close()
if os.getenv("KEY") ~= "" then wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY") end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.3f %.3f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status + summary.errors.connect + summary.errors.timeout))
end
LUA
run_wrk() { # url body conns key -> "rps p50ms p99ms errors"
  local threads=2; [ "$3" -lt 2 ] && threads=1   # wrk needs connections >= threads
  BODY=$2 KEY=$4 wrk -t$threads -c"$3" -d"$DURATION" -s "$WORK/post.lua" "$1" 2>/dev/null | awk '/^RESULT/{print $2, $3, $4, $5}'
}

RESULTS="$WORK/results.txt"; : > "$RESULTS"
measure() { # label url key
  for rep in $(seq 1 $REPEATS); do
    for rows in 1 256; do
      for c in 1 8 64; do
        r=$(run_wrk "$2" "$WORK/body_$rows.json" $c "$3")
        echo "$1 $rows $c $r" | tee -a "$RESULTS"
      done
    done
  done
}
# Interleave: aurum, MLServer default, aurum, MLServer tuned.
measure aurum http://127.0.0.1:18081/v2/models/bench/infer "$KEY"
AURUM_PEAK=$(hwm_kib $APID)
# Ceiling: the simplest handler on aurum's HTTP stack (GET /healthz through the same middleware).
for c in 1 8 64; do
  threads=2; [ "$c" -lt 2 ] && threads=1
  r=$(wrk -t$threads -c$c -d"$DURATION" --latency http://127.0.0.1:18081/healthz 2>/dev/null | awk '/Requests\/sec/{print $2}')
  echo "ceiling 0 $c $r 0 0 0" | tee -a "$RESULTS"
done
kill $APID; wait $APID 2>/dev/null || true

start_mlserver 1
MLS_IDLE=$(tree_rss_kib $MPID); MLS_START_DEFAULT=$MLS_START
measure mlserver-default http://127.0.0.1:18082/v2/models/bench/infer ""
MLS_PEAK_DEFAULT=$(tree_rss_kib $MPID)
kill $MPID; wait $MPID 2>/dev/null || true; sleep 2
start_mlserver 2
measure mlserver-tuned http://127.0.0.1:18082/v2/models/bench/infer ""
MLS_PEAK_TUNED=$(tree_rss_kib $MPID)
kill $MPID; wait $MPID 2>/dev/null || true

python3 - "$RESULTS" "$AURUM_START" "$MLS_START_DEFAULT" "$AURUM_IDLE" "$MLS_IDLE" "$AURUM_PEAK" "$MLS_PEAK_DEFAULT" "$MLS_PEAK_TUNED" "$RECORD" "$ROOT/BENCHMARKS.md" "$(cat "$WORK/inproc.txt" | tail -1)" <<'PY'
import collections, datetime, statistics, sys
(path, a_start, m_start, a_idle, m_idle, a_peak, m_peak_d, m_peak_t, record, bench_md, inproc) = sys.argv[1:]
rows = collections.defaultdict(list)
for line in open(path):
    p = line.split()
    if len(p) < 7 or p[3] == "":
        continue
    rows[(p[0], int(p[1]), int(p[2]))].append((float(p[3]), float(p[4]), float(p[5]), int(p[6])))
def med(k, i):
    v = [x[i] for x in rows.get(k, [])]
    return statistics.median(v) if v else float("nan")
out = []
out.append(f"Serving benchmark, {datetime.date.today()} — `bench/serving/run.sh` (wrk, loopback, medians of repeats)\n")
out.append(f"{inproc}\n")
out.append("| server | rows/req | conns | req/s | rows/s | p50 ms | p99 ms | errors |")
out.append("|---|---|---|---|---|---|---|---|")
for server in ("aurum", "mlserver-default", "mlserver-tuned"):
    for r in (1, 256):
        for c in (1, 8, 64):
            k = (server, r, c)
            if k in rows:
                rps = med(k, 0)
                out.append(f"| {server} | {r} | {c} | {rps:,.0f} | {rps * r:,.0f} | {med(k, 1):.2f} | {med(k, 2):.2f} | {sum(x[3] for x in rows[k])} |")
for c in (1, 8, 64):
    k = ("ceiling", 0, c)
    if k in rows:
        out.append(f"| aurum empty handler (ceiling) | - | {c} | {med(k, 0):,.0f} | - | - | - | - |")
best_m = max((med(("mlserver-tuned", 1, c), 0) for c in (1, 8, 64)), default=float("nan"))
best_a = max((med(("aurum", 1, c), 0) for c in (1, 8, 64)), default=float("nan"))
ceil = max((med(("ceiling", 0, c), 0) for c in (1, 8, 64)), default=float("nan"))
out.append("")
out.append(f"- single-row throughput ratio aurum / MLServer tuned (best concurrency each): **{best_a / best_m:.1f}×**")
out.append(f"- aurum single-row vs empty-handler ceiling: **{best_a / ceil * 100:.0f} %**")
out.append(f"- aurum p99 at concurrency 8, single row: **{med(('aurum', 1, 8), 2):.2f} ms**")
out.append(f"- 256-row batches: **{max(med(('aurum', 256, c), 0) * 256 for c in (1, 8, 64)):,.0f} rows/s**")
out.append(f"- start-up to ready: aurum {float(a_start):.2f} s, MLServer {float(m_start):.2f} s")
out.append(f"- idle RSS with four models (aurum) vs one (MLServer default, all processes): {int(a_idle)/1024:.0f} MiB vs {int(m_idle)/1024:.0f} MiB ({int(a_idle)/int(m_idle)*100:.0f} %)")
out.append(f"- peak RSS: aurum {int(a_peak)/1024:.0f} MiB; MLServer default {int(m_peak_d)/1024:.0f} MiB, tuned {int(m_peak_t)/1024:.0f} MiB")
text = "\n".join(out)
print(text)
if record == "1":
    with open(bench_md, "a") as fh:
        fh.write("\n## Serving: aurum vs MLServer\n\n" + text + "\n")
PY
