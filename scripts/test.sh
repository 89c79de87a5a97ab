#!/usr/bin/env bash
# The whole test suite: install what is missing, build (Release), run every
# test on the real PoCL device; then the same suite under ASan+UBSan, and
# each libFuzzer target for a short run (FUZZ_SECONDS, default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-$PWD/build/pocl-cache}"
mkdir -p "$POCL_CACHE_DIR"

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

if [[ "${ECF8_SKIP_SANITIZE:-0}" != 1 ]]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DECF8_SANITIZE=ON
  cmake --build build-asan -j"$jobs"
  # The OpenCL tests run above; here only the host code is checked, but the
  # CLI still loads PoCL, whose exit-time allocations are suppressed.
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$PWD/../tests/lsan.supp:print_suppressions=0" \
     ctest --output-on-failure -j"$jobs" -LE opencl)
fi

if [[ "${ECF8_SKIP_FUZZ:-0}" != 1 && -x tests/fuzz/run.sh ]]; then
  bash tests/fuzz/run.sh "${FUZZ_SECONDS:-60}"
fi
