# build_ecf8.sh - sourced by the bench scripts that run the ecf8 tool: builds
# a Release ecf8 and the device bench programs in $BUILD_DIR (default
# build-matmul; configured once, with -DBUILD_TESTING=OFF) and sets ECF8 to
# the tool and BENCH_DIR to the folder of ecf8-bench-decode and
# ecf8-bench-matmul.  Needs ROOT and say().
BUILD_DIR=${BUILD_DIR:-$ROOT/build-matmul}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    say "configuring $BUILD_DIR (Release)"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
fi
cmake --build "$BUILD_DIR" --target ecf8 ecf8-bench-decode ecf8-bench-matmul \
    -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
ECF8=$BUILD_DIR/ecf8
BENCH_DIR=$BUILD_DIR/bench
