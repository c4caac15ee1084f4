#!/usr/bin/env bash
# Regenerates data/images/digits_8x8.csv from the copy of the UCI digits inside scikit-learn.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=target/nn-venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
"$VENV/bin/pip" install -q numpy scikit-learn
"$VENV/bin/python" bench/nn/export_digits.py data/images/digits_8x8.csv
