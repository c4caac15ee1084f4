#!/usr/bin/env bash
# Training-time evaluation as the job ran it before the table paths: row by row (revision REV,
# default f796af3^, the parent of the commit that moved the job to `predict_proba_table`), on the
# split and fits of `eval_speed`, so that the two can be run side by side:
#
#   bench/eval/before.sh && cargo run --release -p aurum-credit --example eval_speed
#
# The old tree is checked out as a worktree under target/ and built with its own target
# directory (sharing one would overwrite this workspace's crates of the same names).
set -euo pipefail
cd "$(dirname "$0")/../.."
REV=${REV:-f796af3^}
WT=target/eval-before
[ -d "$WT" ] || git worktree add -q --detach "$WT" "$REV"
mkdir -p "$WT/crates/aurum-models/examples/credit_data"
cp crates/aurum-credit/examples/credit_data/mod.rs "$WT/crates/aurum-models/examples/credit_data/mod.rs"
cp bench/eval/old_eval.rs "$WT/crates/aurum-models/examples/old_eval.rs"
(cd "$WT" && CARGO_TARGET_DIR=target cargo build --release -q -p aurum-models --example old_eval)
"$WT/target/release/examples/old_eval"
