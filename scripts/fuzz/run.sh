#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ and runs each one for a fixed time (see docs/fuzzing.md).
#
#   scripts/fuzz/run.sh [SECONDS] [TARGET...]     SECONDS per target (default 10), all targets
#                                                  when none is named
#   scripts/fuzz/run.sh --install                 only installs cargo-fuzz when missing
#
# Toolchain: nightly when rustup has it; otherwise the default (stable) toolchain with
# RUSTC_BOOTSTRAP=1, which cargo-fuzz needs for the address sanitizer. cargo-fuzz is installed
# (pinned, --locked) when missing. Builds are release with debug assertions and overflow checks,
# under fuzz/target whatever CARGO_TARGET_DIR says. The working corpus of each target is
# fuzz/corpus/<target> (kept between runs, gitignored), seeded from fuzz/seeds/<target>.
#
# Environment: FUZZ_PROFILE (release or dev; default release, dev builds faster for a smoke
# run), FUZZ_SANITIZER (none or address; default none), FUZZ_TIMEOUT (seconds one input
# may take before it counts as a crash; default 10), FUZZ_RSS_LIMIT_MB (default 2048),
# FUZZ_TOOLCHAIN=stable (use the default toolchain even when nightly is installed).
#
# Prints one line per target (executions, exec/s, libFuzzer's final corpus as units/bytes, the
# files in the corpus folder, crashes) and exits non-zero when a target crashed, after naming the
# artifact and the command that replays it (the same toolchain and flags):
#   cargo fuzz run <flags> <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/../.."

CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS=(csv parquet predict_json oip_binary lightgbm xgboost)
# Targets whose parser lives in aurum-server (built with the `server` feature).
SERVER_TARGETS=" predict_json oip_binary "

install_cargo_fuzz() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
        cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
    fi
}
if [[ ${1:-} == --install ]]; then
    install_cargo_fuzz
    exit 0
fi

seconds=${1:-10}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || [[ $seconds -lt 1 ]]; then
    echo "usage: $0 [SECONDS] [TARGET...]  (targets: ${ALL_TARGETS[*]})" >&2
    exit 2
fi
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=("${ALL_TARGETS[@]}")
fi
for t in "${targets[@]}"; do
    if [[ " ${ALL_TARGETS[*]} " != *" $t "* ]]; then
        echo "unknown fuzz target '$t' (targets: ${ALL_TARGETS[*]})" >&2
        exit 2
    fi
done

sanitizer=${FUZZ_SANITIZER:-none}
timeout_s=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_LIMIT_MB:-2048}

install_cargo_fuzz

toolchain=()
if [[ ${FUZZ_TOOLCHAIN:-} != stable ]] && rustup run nightly rustc --version >/dev/null 2>&1; then
    toolchain=(+nightly)
    rustc_version=$(rustup run nightly rustc --version)
else
    # Nightly-only flags (-Zsanitizer) on a stable compiler.
    export RUSTC_BOOTSTRAP=1
    rustc_version="$(rustc --version) with RUSTC_BOOTSTRAP=1"
fi
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR
target_dir=fuzz/target
echo "== fuzz: ${targets[*]} for ${seconds}s each; $rustc_version; $(cargo fuzz --version); sanitizer $sanitizer"

build_flags=(--sanitizer "$sanitizer" --debug-assertions --target-dir "$target_dir")
if [[ ${FUZZ_PROFILE:-release} == dev ]]; then
    # Unoptimised: a faster build for a smoke run (CI), far fewer executions per second.
    build_flags+=(--dev)
fi
features_for() {
    if [[ $SERVER_TARGETS == *" $1 "* ]]; then
        echo "--features=server"
    fi
}

for t in "${targets[@]}"; do
    echo "== build $t"
    # shellcheck disable=SC2046
    cargo "${toolchain[@]}" fuzz build "${build_flags[@]}" $(features_for "$t") "$t"
done

log_dir=$target_dir/logs
mkdir -p "$log_dir"
failed=()
summary=()
for t in "${targets[@]}"; do
    corpus=fuzz/corpus/$t
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    dict=()
    if [[ -f fuzz/dicts/$t.dict ]]; then
        dict=("-dict=fuzz/dicts/$t.dict")
    fi
    log=$log_dir/$t.log
    echo "== run $t (${seconds}s; log $log)"
    rc=0
    # shellcheck disable=SC2046
    cargo "${toolchain[@]}" fuzz run "${build_flags[@]}" $(features_for "$t") "$t" \
        "$corpus" "fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -timeout="$timeout_s" -rss_limit_mb="$rss_mb" \
        -print_final_stats=1 "${dict[@]}" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [[ -z $execs ]]; then
        # No final stats (a crash): the last status line has the count so far.
        execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
        rate=$(grep -o 'exec/s: [0-9]*' "$log" | tail -1 | sed 's/exec\/s: //')
    fi
    # libFuzzer's corpus at the end (units and bytes), and the files kept in the corpus folder.
    corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | sed 's/corp: //')
    corpus_files=$(find "$corpus" -type f | wc -l)
    artifacts=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log")
    crashes=$(printf '%s' "$artifacts" | grep -c . || true)
    line=$(printf '%-13s executions %-10s exec/s %-7s corpus %-14s files %-6s crashes %s' \
        "$t" "${execs:-?}" "${rate:-?}" "${corp:-?}" "$corpus_files" "$crashes")
    summary+=("$line")
    echo "$line"
    if [[ $rc -ne 0 || $crashes -gt 0 ]]; then
        failed+=("$t")
        grep -E '^(==[0-9]+== ?ERROR|thread .* panicked|panicked at|SUMMARY:|.*Test unit written to)' "$log" | head -8 >&2 || true
        if [[ -z $artifacts ]]; then
            tail -20 "$log" >&2
        fi
        for a in $artifacts; do
            echo "   reproduce: cargo ${toolchain[*]} fuzz run ${build_flags[*]} $(features_for "$t") $t $a" >&2
        done
    fi
done

echo "== fuzz summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: crashes in ${failed[*]}; artifacts under fuzz/artifacts/" >&2
    exit 1
fi
