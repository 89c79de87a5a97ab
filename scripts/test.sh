#!/usr/bin/env bash
# The whole test suite: install what is missing, build (Release), run every
# test on the real PoCL device; then the host tests (all but the OpenCL ones,
# label opencl) under ASan+UBSan, and each libFuzzer target for a short run
# (FUZZ_SECONDS, default 60).
#
# ECF8_REQUIRE_DEVICE=1 (set by .ci/run): the build must have the OpenCL
# tests and the machine an OpenCL device; without it the OpenCL tests skip
# where there is no device, so a CI runner without one would pass untested.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-$PWD/build/pocl-cache}"
mkdir -p "$POCL_CACHE_DIR"

# -DECF8_OPENCL=ON explicitly: a build/ configured earlier with OFF would
# otherwise keep its cached OFF and run no OpenCL test.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DECF8_OPENCL=ON
cmake --build build -j"$jobs"
if [[ -n "${ECF8_REQUIRE_DEVICE:-}" && "$ECF8_REQUIRE_DEVICE" != 0 ]]; then
  # The build can still drop OpenCL (no way to embed the kernels), and
  # cli_opencl.sh skips (exit 77) without a device: refuse both up front.
  opencl_tests=$(cd build && ctest -N -L opencl) # not piped: grep -q may exit first (SIGPIPE)
  if ! grep -qE 'Total Tests: [1-9]' <<<"$opencl_tests"; then
    echo "test.sh: ECF8_REQUIRE_DEVICE is set but build/ has no OpenCL tests" >&2
    exit 1
  fi
  if ! build/ecf8 devices >build/devices.txt 2>&1 || grep -q '^no device selected' build/devices.txt; then
    cat build/devices.txt >&2
    echo "test.sh: ECF8_REQUIRE_DEVICE is set but there is no OpenCL device" >&2
    exit 1
  fi
fi
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
