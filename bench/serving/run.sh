#!/usr/bin/env bash
# Serving benchmark: aurum vs MLServer 1.7.1 (mlserver-lightgbm) on the same LightGBM model,
# driven by wrk on loopback, beside aurum's own ceilings measured in the same run: the tree
# evaluator's batch rows/s in process (one thread) and the empty handler's req/s (GET /healthz
# through the same middleware). aurum is measured with OIP JSON and with the OIP binary tensor
# extension, with the default audit durability (sync) and, for the single-row and 256-row cells
# at concurrency 8, with `buffered`. Prints a table and appends it to BENCHMARKS.md with --record.
#
#   bench/serving/run.sh [--quick] [--record] [--no-mlserver]
#
# --quick: 3 s per cell, one pass (for iterating). --no-mlserver: aurum and its ceilings only.
#
# Installs what it needs: wrk (Debian), a Python venv with lightgbm, mlserver 1.7.1,
# mlserver-lightgbm and uvloop 0.21.0 (newer uvloop crashes MLServer 1.7.1 at start-up).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK=${BENCH_WORK:-/tmp/aurum-bench}
DURATION=10s; REPEATS=3; RECORD=0; MLSERVER=1
for a in "$@"; do
  case $a in
    --quick) DURATION=3s; REPEATS=1 ;;
    --record) RECORD=1 ;;
    --no-mlserver) MLSERVER=0 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$WORK"
command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y wrk >/dev/null); }
VENV="$WORK/venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import lightgbm, numpy' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q lightgbm numpy
fi
if [ $MLSERVER = 1 ] && [ ! -x "$VENV/bin/mlserver" ]; then
  "$VENV/bin/pip" install -q "mlserver==1.7.1" "mlserver-lightgbm==1.7.1" "uvloop==0.21.0"
fi
"$VENV/bin/python" bench/serving/make_model.py "$WORK" | tee "$WORK/inproc.txt"
# Two invocations: with `--example`, cargo builds only the examples named, not aurum-cli's binary.
cargo build --release -p aurum-cli >/dev/null 2>&1
cargo build --release -p aurum-credit --example serving_ceiling >/dev/null 2>&1
AURUM="$ROOT/target/release/aurum"
# In-process ceiling: the evaluator alone on 256-row batches of the same model and rows.
"$ROOT/target/release/examples/serving_ceiling" "$WORK/model.txt" "$WORK/rows_256.f32" | tee "$WORK/ceiling.txt"

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
start_aurum() { # audit durability
  t0=$(date +%s.%N)
  AURUM_LOG=warn AURUM_AUDIT_DURABILITY=$1 "$AURUM" --data-dir "$DATA" serve --listen 127.0.0.1:18081 >/dev/null 2>&1 &
  APID=$!
  wait_ready http://127.0.0.1:18081/readyz
  t1=$(date +%s.%N)
  AURUM_START=$(echo "$t1 - $t0" | bc)
  for m in bench bench2 bench3 bench4; do
    curl -sf -X POST -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
      -d @"$WORK/body_1.json" "http://127.0.0.1:18081/v2/models/$m/infer" >/dev/null
  done
  # The binary body must be accepted before it is measured.
  curl -sf -X POST -H "Authorization: Bearer $KEY" -H 'content-type: application/octet-stream' \
    -H "Inference-Header-Content-Length: $(cat "$WORK/body_256.hlen")" \
    --data-binary @"$WORK/body_256.bin" http://127.0.0.1:18081/v2/models/bench/infer >/dev/null
}
start_aurum sync
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
# The binary tensor extension: JSON header + raw FP32 bytes, split by Inference-Header-Content-Length.
cat > "$WORK/post_bin.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
local f = io.open(os.getenv("BODY"), "rb"); wrk.body = f:read("*a"); f:close()
local h = io.open(os.getenv("HLEN"), "r"); wrk.headers["Inference-Header-Content-Length"] = h:read("*a"); h:close()
if os.getenv("KEY") ~= "" then wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY") end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.3f %.3f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status + summary.errors.connect + summary.errors.timeout))
end
LUA
run_wrk() { # url body conns key -> "rps p50ms p99ms errors"; a .bin body goes as binary tensors
  local threads=2; [ "$3" -lt 2 ] && threads=1   # wrk needs connections >= threads
  local script="$WORK/post.lua"; [ "${2%.bin}" != "$2" ] && script="$WORK/post_bin.lua"
  BODY=$2 HLEN=${2%.bin}.hlen KEY=$4 wrk -t$threads -c"$3" -d"$DURATION" -s "$script" "$1" 2>/dev/null | awk '/^RESULT/{print $2, $3, $4, $5}'
}

RESULTS="$WORK/results.txt"; : > "$RESULTS"
measure() { # label url key [ext [conns]]
  for rep in $(seq 1 $REPEATS); do
    for rows in 1 256; do
      for c in ${5:-1 8 64}; do
        r=$(run_wrk "$2" "$WORK/body_$rows.${4:-json}" $c "$3")
        echo "$1 $rows $c $r" | tee -a "$RESULTS"
      done
    done
  done
}
ceiling() { # the simplest handler on aurum's HTTP stack (GET /healthz through the same middleware)
  for c in 1 8 64; do
    threads=2; [ "$c" -lt 2 ] && threads=1
    r=$(wrk -t$threads -c$c -d"$DURATION" --latency http://127.0.0.1:18081/healthz 2>/dev/null | awk '/Requests\/sec/{print $2}')
    echo "ceiling 0 $c $r 0 0 0" | tee -a "$RESULTS"
  done
}
# aurum with the default audit durability (sync), JSON and binary tensors, and its ceiling.
measure aurum http://127.0.0.1:18081/v2/models/bench/infer "$KEY"
measure aurum-bin http://127.0.0.1:18081/v2/models/bench/infer "$KEY" bin
ceiling
AURUM_PEAK=$(hwm_kib $APID)
kill $APID; wait $APID 2>/dev/null || true
# The same server with buffered audit (answers before its batch's fsync), concurrency 8.
start_aurum buffered
measure aurum-buffered http://127.0.0.1:18081/v2/models/bench/infer "$KEY" json 8
measure aurum-bin-buffered http://127.0.0.1:18081/v2/models/bench/infer "$KEY" bin 8
kill $APID; wait $APID 2>/dev/null || true

MLS_IDLE=0; MLS_START_DEFAULT=nan; MLS_PEAK_DEFAULT=0; MLS_PEAK_TUNED=0
if [ $MLSERVER = 1 ]; then
start_mlserver 1
MLS_IDLE=$(tree_rss_kib $MPID); MLS_START_DEFAULT=$MLS_START
measure mlserver-default http://127.0.0.1:18082/v2/models/bench/infer ""
MLS_PEAK_DEFAULT=$(tree_rss_kib $MPID)
kill $MPID; wait $MPID 2>/dev/null || true; sleep 2
start_mlserver 2
measure mlserver-tuned http://127.0.0.1:18082/v2/models/bench/infer ""
MLS_PEAK_TUNED=$(tree_rss_kib $MPID)
kill $MPID; wait $MPID 2>/dev/null || true
fi

CPU=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)
python3 - "$RESULTS" "$AURUM_START" "$MLS_START_DEFAULT" "$AURUM_IDLE" "$MLS_IDLE" "$AURUM_PEAK" "$MLS_PEAK_DEFAULT" "$MLS_PEAK_TUNED" "$RECORD" "$ROOT/BENCHMARKS.md" "$(tail -1 "$WORK/inproc.txt")" \
  "$(grep '^CEILING' "$WORK/ceiling.txt")" "bench/serving/run.sh $*" "$(nproc) CPUs ($CPU)" "$LOADAVG" "$(cut -d' ' -f1-3 /proc/loadavg)" "$DURATION" "$REPEATS" <<'PY'
import collections, datetime, math, statistics, sys
(path, a_start, m_start, a_idle, m_idle, a_peak, m_peak_d, m_peak_t, record, bench_md, inproc,
 ceiling_line, command, machine, load0, load1, duration, repeats) = sys.argv[1:]
_, eval_rps, assess_rps, declined, batch_rps = ceiling_line.split()
eval_rps, assess_rps, declined, batch_rps = float(eval_rps), float(assess_rps), float(declined), float(batch_rps)
rows = collections.defaultdict(list)
for line in open(path):
    p = line.split()
    if len(p) < 7 or p[3] == "":
        continue
    rows[(p[0], int(p[1]), int(p[2]))].append((float(p[3]), float(p[4]), float(p[5]), int(p[6])))
def med(k, i):
    v = [x[i] for x in rows.get(k, [])]
    return statistics.median(v) if v else float("nan")
def best(label, r):
    return max((med((label, r, c), 0) for c in (1, 8, 64) if (label, r, c) in rows), default=float("nan"))
names = {"aurum": "aurum OIP JSON", "aurum-bin": "aurum OIP binary", "aurum-buffered": "aurum OIP JSON, buffered audit",
         "aurum-bin-buffered": "aurum OIP binary, buffered audit", "mlserver-default": "MLServer (defaults)",
         "mlserver-tuned": "MLServer (2 workers)"}
out = []
out.append(f"- Date: {datetime.date.today()}. Command: `{command.strip()}`. wrk on loopback, {duration} per cell, medians of {repeats} interleaved repeats.")
out.append(f"- Machine: {machine}; load average {load0} at start, {load1} at the end. wrk shares the cores with the server.")
out.append(f"- {inproc}")
out.append(f"- In-process ceiling, same model and rows, one thread: evaluator `predict_batch` on 256-row batches **{eval_rps:,.0f} rows/s**; the imported model's per-row `assess` (the serving path: PD, score, decision and, for the {declined*100:.0f} % of these rows that are declined, adverse reasons through TreeSHAP) {assess_rps:,.0f} rows/s; its `assess_batch` on the 256 rows {batch_rps:,.0f} rows/s (one thread; the server splits a batch into 64-row pieces over the cores).")
out.append("")
out.append("| server | rows/req | conns | req/s | rows/s | p50 ms | p99 ms | errors |")
out.append("|---|---|---|---|---|---|---|---|")
for server in names:
    for r in (1, 256):
        for c in (1, 8, 64):
            k = (server, r, c)
            if k in rows:
                rps = med(k, 0)
                out.append(f"| {names[server]} | {r} | {c} | {rps:,.0f} | {rps * r:,.0f} | {med(k, 1):.2f} | {med(k, 2):.2f} | {sum(x[3] for x in rows[k])} |")
for c in (1, 8, 64):
    k = ("ceiling", 0, c)
    if k in rows:
        out.append(f"| aurum empty handler (`GET /healthz`, same stack) | - | {c} | {med(k, 0):,.0f} | - | - | - | - |")
ceil = max((med(("ceiling", 0, c), 0) for c in (1, 8, 64)), default=float("nan"))
ceil8 = med(("ceiling", 0, 8), 0)
b256 = best("aurum-bin", 256) * 256
single = max(best("aurum", 1), best("aurum-bin", 1))
def ok(x):
    return "met" if x else "missed"
out.append("")
out.append("| target | result | status |")
out.append("|---|---|---|")
out.append(f"| 256-row binary batches ≥ 500 k rows/s | {b256:,.0f} rows/s ({b256 / 500e3:.2f}× the target) | {ok(b256 >= 500e3)} |")
out.append(f"| 256-row binary batches ≥ ½ the evaluator's batch rows/s | {b256:,.0f} / {eval_rps:,.0f} = {b256 / eval_rps:.2f} (target 0.50) | {ok(b256 >= eval_rps / 2)} |")
for label, mode in (("aurum", "JSON, sync audit"), ("aurum-bin", "binary, sync audit"), ("aurum-buffered", "JSON, buffered audit"), ("aurum-bin-buffered", "binary, buffered audit")):
    p99 = med((label, 1, 8), 2)
    if not math.isnan(p99):
        out.append(f"| single-row p99 at c=8 ≤ 2 ms ({mode}) | {p99:.2f} ms | {ok(p99 <= 2)} |")
out.append(f"| single-row req/s ≥ ½ the empty handler (best concurrency each) | {single:,.0f} / {ceil:,.0f} = {single / ceil:.2f} (target 0.50) | {ok(single >= ceil / 2)} |")
s8 = max(med(("aurum", 1, 8), 0), med(("aurum-bin", 1, 8), 0))
out.append(f"| the same at c=8 | {s8:,.0f} / {ceil8:,.0f} = {s8 / ceil8:.2f} | {ok(s8 >= ceil8 / 2)} |")
best_m = best("mlserver-tuned", 1)
if not math.isnan(best_m):
    out.append(f"\n- single-row throughput ratio aurum / MLServer 2 workers (best concurrency each): **{best('aurum', 1) / best_m:.1f}×**")
    out.append(f"- start-up to ready: aurum {float(a_start):.2f} s, MLServer {float(m_start):.2f} s")
    out.append(f"- idle RSS with four models (aurum) vs one (MLServer default, all processes): {int(a_idle)/1024:.0f} MiB vs {int(m_idle)/1024:.0f} MiB ({int(a_idle)/int(m_idle)*100:.0f} %)")
    out.append(f"- peak RSS: aurum {int(a_peak)/1024:.0f} MiB; MLServer default {int(m_peak_d)/1024:.0f} MiB, tuned {int(m_peak_t)/1024:.0f} MiB")
else:
    out.append(f"\n- MLServer not run (`--no-mlserver`). aurum: ready {float(a_start):.2f} s after launch (buffered-audit start); idle RSS with four models {int(a_idle)/1024:.0f} MiB, peak {int(a_peak)/1024:.0f} MiB.")
text = "\n".join(out)
print(text)
if record == "1":
    with open(bench_md, "a") as fh:
        fh.write("\n## Serving: aurum against its ceilings" + (" and MLServer" if not math.isnan(best_m) else "") + "\n\n" + text + "\n")
PY
