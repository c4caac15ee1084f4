#!/usr/bin/env bash
# Checks aurum's Open Inference Protocol (REST + gRPC) against the real tritonclient.
#
# Builds nothing: it uses the debug binary (`cargo build -p aurum-cli` first, or set AURUM).
# Creates a venv with tritonclient[http,grpc] (target/tritonclient-venv, reused; set
# TRITON_VENV to move it), sets up a temporary data dir with the German credit model `credit`
# (champion) and a client key, serves HTTP + gRPC on free loopback ports, and runs check.py,
# which scores the same applicants through tritonclient (HTTP with binary tensors, HTTP JSON,
# gRPC raw contents) and through /v1 predict and compares them to 1e-6. With `--install` it only
# prepares the venv.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
aurum=${AURUM:-$root/target/debug/aurum}
venv=${TRITON_VENV:-$root/target/tritonclient-venv}

if [[ ! -x $venv/bin/python ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "tritonclient[http,grpc]" numpy
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
key=$("$aurum" --data-dir "$data" keys create --name tritonclient --role client | tail -n 1)

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_port=$(free_port)
grpc_port=$(free_port)
AURUM_LOG=warn "$aurum" --data-dir "$data" serve --listen "127.0.0.1:$http_port" \
    --grpc-listen "127.0.0.1:$grpc_port" >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$http_port/v2/health/ready')" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        cat "$work/serve.log" >&2
        exit 1
    fi
    sleep 0.1
done

"$venv/bin/python" "$here/check.py" --http "127.0.0.1:$http_port" --grpc "127.0.0.1:$grpc_port" \
    --key "$key" --csv "$root/data/demo/german_credit.csv"
