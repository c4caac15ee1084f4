#!/usr/bin/env bash
# Headless-browser test of the web console (/ui) against a real `aurum serve`.
#
# Installs Debian's chromium when it is missing, starts the server on a free loopback port with a
# temporary data dir and a fresh admin key, prepares data through the REST API (a credit model
# on data/credit and a challenger, predictions and outcomes, a registered forecasting model and a
# forecast), then loads every console page in headless Chromium (browse.py, DevTools protocol
# over a pipe), checks the figures the REST API returns appear, checks keyboard focus reaches the
# main navigation, and writes PNG screenshots to docs/console/.
#
# Usage: scripts/console-test/run.sh            (builds target/debug/aurum when missing)
#        scripts/console-test/run.sh --install  (only installs chromium when missing)
#        AURUM_BIN=path/to/aurum scripts/console-test/run.sh
# Exits non-zero on any failure; the server log is printed then.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
  echo "== installing chromium"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y chromium >/dev/null
  chromium=$(command -v chromium)
fi
if [ "${1:-}" = --install ]; then
  exit 0
fi

bin=${AURUM_BIN:-$root/target/debug/aurum}
if [ ! -x "$bin" ]; then
  echo "== building aurum (cargo build -p aurum-cli)"
  cargo build -p aurum-cli
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
  status=$?
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ $status -ne 0 ] && [ -f "$work/server.log" ]; then
    echo "== server log (last 40 lines)" >&2
    tail -40 "$work/server.log" >&2
  fi
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export AURUM_DATA_DIR="$work/data"

echo "== key and server on 127.0.0.1:$port"
"$bin" keys create --name console-test --role admin | tail -1 >"$work/key"
"$bin" serve --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then echo "the server exited" >&2; exit 1; fi
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null

echo "== console pages in headless chromium ($("$chromium" --version 2>/dev/null || echo chromium))"
timeout 600 python3 scripts/console-test/browse.py \
  --base "http://127.0.0.1:$port" --key-file "$work/key" --data "$root/data" \
  --out "$root/docs/console" --chromium "$chromium"
