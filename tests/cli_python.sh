#!/usr/bin/env bash
# The Python package (python/): both backends against every golden file and
# the bad files, and the minilm slices in both stream layouts (python/tests/test_ecf8.py;
# speeds: python/bench_load.py).
# $1: the ecf8 binary.  The ctypes backend loads the build tree's
# libecf8.so ($ECF8_BUILD_DIR).  Skipped (77) without numpy unless
# ECF8_REQUIRE_MODEL=1, which also requires ml_dtypes, zstandard and xxhash
# (bash scripts/install-model.sh installs them).
set -euo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
if ! $py -c 'import numpy' 2>/dev/null; then
  if [ "${ECF8_REQUIRE_MODEL:-0}" = 1 ]; then
    echo "cli_python: ECF8_REQUIRE_MODEL=1 but numpy is missing (bash scripts/install-model.sh)" >&2
    exit 1
  fi
  echo "cli_python: numpy not installed, skipped (bash scripts/install-model.sh)"
  exit 77
fi
build=${ECF8_BUILD_DIR:-$(dirname "$bin")}
# A sanitizer build's libecf8.so needs its runtime loaded first, which an
# uninstrumented python cannot do: the Release build runs this test.
# (ldd's output is taken whole first: grep -q stopping early would kill ldd
# with SIGPIPE, and pipefail would make the test say "not a sanitizer build".)
libs=$(ldd "$build/libecf8.so" 2>/dev/null || true)
if grep -Eq 'lib(asan|tsan|ubsan)' <<<"$libs"; then
  echo "cli_python: libecf8.so is a sanitizer build; the Python test runs in the Release build"
  exit 77
fi
export ECF8_LIBRARY=$build/libecf8.so
export ECF8_TEST_DATA=${ECF8_TEST_DATA:-$here/data}
export PYTHONDONTWRITEBYTECODE=1
exec $py "$here/../python/tests/test_ecf8.py" "$bin"
