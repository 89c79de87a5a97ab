#!/usr/bin/env bash
# examples_load_into_buffer.sh ECF8 LOAD_INTO_BUFFER - the integrator
# example on a real checkpoint slice compressed first: every tensor loaded
# with the async API onto an out-of-order queue, decoded into one buffer
# and checked (exit 0, "0 bad"); on a bad file whose payload bits are
# zeroed, a clean failure naming the tensor (exit 1).  Exit 77 (skipped)
# without an OpenCL device unless ECF8_REQUIRE_DEVICE is set.
set -u
ECF8=$1 EXAMPLE=$2
DATA=${ECF8_TEST_DATA:-$(dirname "$0")/data}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$ECF8" compress "$DATA/minilm-slice-e4m3.safetensors" "$TMP/m.ecf8" >/dev/null ||
    fail "compress"
rc=0
"$EXAMPLE" "$TMP/m.ecf8" >"$TMP/out" 2>&1 || rc=$?
cat "$TMP/out"
if [ $rc -ne 0 ] && grep -qE "no OpenCL (platform|device)|NO_DEVICE" "$TMP/out"; then
    [[ -z "${ECF8_REQUIRE_DEVICE:-}" || "$ECF8_REQUIRE_DEVICE" = 0 ]] && exit 77
    fail "no OpenCL device and ECF8_REQUIRE_DEVICE is set"
fi
[ $rc -eq 0 ] || fail "exit $rc on a good file"
grep -qE "^loaded 23 tensors: .*; 0 bad$" "$TMP/out" || fail "no summary line"

rc=0
"$EXAMPLE" "$DATA/bad/ecf8-payload-zeros.ecf8" >"$TMP/bad" 2>&1 || rc=$?
cat "$TMP/bad"
[ $rc -eq 1 ] || fail "exit $rc on a corrupt file, expected 1"
grep -q "^w: .*tensor 'w': chunk 0 decodes to" "$TMP/bad" || fail "no corrupt-chunk message"
grep -qE "; [1-9][0-9]* bad$" "$TMP/bad" || fail "the bad tensor not counted"
echo "ok"
