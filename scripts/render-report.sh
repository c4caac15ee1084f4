#!/usr/bin/env bash
# Renders the example credit report (logistic regression on data/demo/german_credit.csv) and
# screenshots it with headless Chromium into docs/report-screenshot.png.
#
#   scripts/render-report.sh [OUTPUT_PNG]
#
# Needs Debian's `chromium` (installed with apt-get when missing and running as root). The
# browser runs with networking features off and a throw-away profile; the page itself loads
# nothing from outside.
set -euo pipefail
cd "$(dirname "$0")/.."

png="${1:-docs/report-screenshot.png}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo run --quiet -p aurum-credit --example credit_report -- "$work/report.html"

browser="$(command -v chromium || command -v chromium-browser || true)"
if [[ -z "$browser" ]]; then
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "chromium is not installed; run: apt-get install -y chromium" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  browser="$(command -v chromium)"
fi

mkdir -p "$(dirname "$png")"
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$work/profile" \
  --screenshot="$png" --window-size=1280,2400 "file://$work/report.html" 2>"$work/chromium.log" || {
  cat "$work/chromium.log" >&2
  exit 1
}
echo "wrote $png" >&2
