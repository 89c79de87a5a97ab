#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for SECONDS (default 60).
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
#
# Environment: BUILD_DIR (default build-fuzz), CC (default clang),
# FUZZ_JOBS (targets run at once, default 1), FUZZ_RSS_MB (default 2048).
# Each target starts from its seed corpus (tests/fuzz/corpus/<target>) and
# the inputs of bugs it found before (tests/fuzz/crashes/<target>), both never
# modified, plus what earlier runs found (BUILD_DIR/fuzz-corpus/<target>);
# crashing inputs land in BUILD_DIR/fuzz-artifacts/.  Exit status is non-zero
# when any target found a crash, leak or timeout; a per-target summary line
# gives its executions and coverage (cov: edges, ft: features).
set -euo pipefail

SECONDS_PER_TARGET=${1:-60}
shift || true
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC/build-fuzz}
CC=${CC:-clang}
JOBS=${FUZZ_JOBS:-1}
RSS=${FUZZ_RSS_MB:-2048}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(fuzz_safetensors fuzz_container fuzz_codebook fuzz_stream)

if ! command -v "$CC" >/dev/null; then
    echo "run.sh: $CC not found (libFuzzer needs clang)" >&2
    exit 1
fi
mkdir -p "$BUILD_DIR"
if ! { cmake -S "$SRC" -B "$BUILD_DIR" -DECF8_FUZZ=ON -DECF8_OPENCL=OFF -DBUILD_TESTING=OFF \
           -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
       cmake --build "$BUILD_DIR" --target "${TARGETS[@]}" -j "$(nproc)"; } >"$BUILD_DIR/fuzz-build.log" 2>&1; then
    cat "$BUILD_DIR/fuzz-build.log" >&2
    echo "run.sh: building the fuzz targets failed" >&2
    exit 1
fi

ART=$BUILD_DIR/fuzz-artifacts
mkdir -p "$ART"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
    local t=$1 bin=$BUILD_DIR/tests/fuzz/$1 work=$BUILD_DIR/fuzz-corpus/$1
    local log=$BUILD_DIR/fuzz-$1.log dict=() seeds=("$HERE/corpus/$1")
    mkdir -p "$work"
    [ -f "$HERE/$t.dict" ] && dict=(-dict="$HERE/$t.dict")
    # Inputs that once found a bug are seeds too: they must keep passing.
    [ -d "$HERE/crashes/$t" ] && seeds+=("$HERE/crashes/$t")
    local rc=0
    "$bin" "$work" "${seeds[@]}" "${dict[@]}" -max_total_time="$SECONDS_PER_TARGET" \
        -timeout=30 -rss_limit_mb="$RSS" -max_len=16384 -print_final_stats=1 \
        -artifact_prefix="$ART/$t-" >"$log" 2>&1 || rc=$?
    local last execs
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    if [ $rc -eq 0 ]; then
        echo "$t: ok, ${execs:-?} executions; ${last:-no stats}"
    else
        echo "$t: FAILED (exit $rc), ${execs:-?} executions; see $log and $ART/" >&2
        grep -E 'ERROR|FUZZ CHECK|SUMMARY|Test unit written' "$log" | head -5 >&2 || true
    fi
    return $rc
}

status=0
pids=()
for t in "${TARGETS[@]}"; do
    if [ "$JOBS" -gt 1 ]; then
        run_one "$t" &
        pids+=($!)
        if [ ${#pids[@]} -ge "$JOBS" ]; then
            wait "${pids[0]}" || status=1
            pids=("${pids[@]:1}")
        fi
    else
        run_one "$t" || status=1
    fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
