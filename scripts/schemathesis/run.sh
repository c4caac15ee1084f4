#!/usr/bin/env bash
# Fuzzes the REST API (/v1 and /v2) against its own OpenAPI document with schemathesis.
#
# Builds nothing: it uses the debug binary (`cargo build -p aurum-cli` first, or set AURUM).
# Creates a venv with a pinned schemathesis (target/schemathesis-venv, reused; set
# SCHEMATHESIS_VENV to move it), imports the German credit data into a temporary data dir and
# trains `credit` (champion), so predict and /v2 infer have a model to reach, serves on a free
# loopback port and runs every schemathesis check, with positive and negative examples, using
# the bootstrap admin key that `serve` writes to `<data dir>/admin.key`. It fails
# on any 5xx, any status the document does not list, and any response that does not match its
# documented schema. MAX_EXAMPLES (default 20) bounds the examples per operation. With
# `--install` it only prepares the venv.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
aurum=${AURUM:-$root/target/debug/aurum}
venv=${SCHEMATHESIS_VENV:-$root/target/schemathesis-venv}
version=3.39.16
# Newer hypothesis releases removed an internal that schemathesis 3.39 calls ("'many' object has
# no attribute 'more'"): pin one from its time.
hypothesis=6.122.0
max_examples=${MAX_EXAMPLES:-20}

if [[ ! -x $venv/bin/python ]]; then
    python3 -m venv "$venv"
fi
if [[ $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"), m.version("hypothesis"))' 2>/dev/null) != "$version $hypothesis" ]]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version" "hypothesis==$hypothesis"
fi
if [[ ${1:-} == --install ]]; then
    exit 0
fi
if [[ ! -x $aurum ]]; then
    echo "no aurum binary at $aurum: run \`cargo build -p aurum-cli\` first (or set AURUM)" >&2
    exit 2
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

data=$work/data
"$aurum" --data-dir "$data" data import "$root/data/demo/german_credit.csv" --name german >/dev/null
"$aurum" --data-dir "$data" train --dataset german --target creditability --kind logistic \
    --model credit --alias champion >/dev/null

port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
AURUM_LOG=warn "$aurum" --data-dir "$data" serve --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/readyz')" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        cat "$work/serve.log" >&2
        exit 1
    fi
    sleep 0.1
done
# The data dir had no keys, so `serve` wrote the bootstrap admin key.
key=$(cat "$data/admin.key")

status=0
(cd "$work" && "$venv/bin/st" run "http://127.0.0.1:$port/openapi.json" \
    --header "Authorization: Bearer $key" \
    --experimental=openapi-3.1 \
    --checks all \
    --data-generation-method all \
    --hypothesis-max-examples "$max_examples" \
    --hypothesis-derandomize \
    --hypothesis-suppress-health-check all \
    --no-color) || status=$?
if [[ $status -ne 0 ]]; then
    echo "== server log (tail)" >&2
    tail -n 50 "$work/serve.log" >&2
fi
exit "$status"
