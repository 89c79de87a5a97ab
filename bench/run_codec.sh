#!/bin/sh
# run_codec.sh - the codec benchmark quoted in the README: sizes (vs the
# order-0 bound, zstd -19 and the ECF8 paper layout) and encode/decode
# speeds on every real fixture and on the committed test slices.
#
#   bench/run_codec.sh [bench options...]     e.g. --repeat 9, --json, --threads 2
#
# Builds a Release ecf8-bench-codec in $BUILD_DIR (default build-bench),
# generates the fixtures with scripts/make_fixtures.py when they are missing
# ($ECF8_FIXTURE_DIR, default ~/.cache/ecf8/fixtures), then runs the bench
# once over all files.  zstd -19 frames are cached in ~/.cache/ecf8/bench
# (the first run spends about a minute on them).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
FIXTURES=${ECF8_FIXTURE_DIR:-$HOME/.cache/ecf8/fixtures}
JOBS=$(nproc 2>/dev/null || echo 2)

say() { echo "run_codec: $*" >&2; }

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    say "configuring $BUILD_DIR (Release)"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DECF8_OPENCL=OFF \
        -DBUILD_TESTING=OFF >/dev/null
fi
cmake --build "$BUILD_DIR" --target ecf8-bench-codec -j "$JOBS" >/dev/null
BENCH=$BUILD_DIR/bench/ecf8-bench-codec
[ -x "$BENCH" ] || { say "$BENCH was not built (is libzstd-dev installed?)"; exit 1; }

if ! ls "$FIXTURES"/*.safetensors >/dev/null 2>&1; then
    say "generating fixtures in $FIXTURES"
    python3 "$ROOT/scripts/make_fixtures.py" --out "$FIXTURES"
fi

FILES=$(ls "$FIXTURES"/*.safetensors "$ROOT"/tests/data/*.safetensors 2>/dev/null)
[ -n "$FILES" ] || { say "no .safetensors files found"; exit 1; }
grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: /cpu: /' || true
echo "cores: $JOBS"
# shellcheck disable=SC2086  # FILES holds paths without spaces
exec "$BENCH" $FILES "$@"
