#!/usr/bin/env bash
# decode_only.sh ECF8 LIBECF8_SO - the decode-only build (-DECF8_DECODE_ONLY=ON):
# its CLI rebuilds, verifies and describes the golden containers byte for
# byte, refuses to compress with one line naming the missing encoder, and
# its shared library exports no encoder code (only the stubs) and needs no
# cJSON.  Registered by tests/CMakeLists.txt in that build only.
set -u
ECF8=${1:?usage: decode_only.sh PATH/TO/ecf8 PATH/TO/libecf8.so}
LIB=${2:?usage: decode_only.sh PATH/TO/ecf8 PATH/TO/libecf8.so}
GOLDEN=${ECF8_TEST_DATA:-$(cd "$(dirname "$0")" && pwd)/data}/golden
TMP=$(mktemp -d "${ECF8_BUILD_DIR:-${TMPDIR:-/tmp}}/decode-only-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

n=0
for ecf in "$GOLDEN"/*.ecf8; do
    base=$(basename "$ecf" .ecf8)
    orig=$GOLDEN/${base%%-*}.safetensors
    "$ECF8" decompress "$ecf" "$TMP/$base.safetensors" >/dev/null 2>"$TMP/err" || fail "decompress $base: $(cat "$TMP/err")"
    cmp -s "$TMP/$base.safetensors" "$orig" || fail "$base: not the original"
    "$ECF8" verify "$ecf" "$orig" >/dev/null 2>&1 || fail "verify $base"
    "$ECF8" info "$ecf" >/dev/null 2>&1 || fail "info $base"
    n=$((n + 1))
done
[ "$n" -gt 0 ] || fail "no golden containers in $GOLDEN"

"$ECF8" compress "$GOLDEN/bf16.safetensors" "$TMP/x.ecf8" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" = 1 ] || fail "compress: exit $rc, want 1"
grep -q 'decode-only' "$TMP/err" || fail "compress: stderr does not say decode-only: $(cat "$TMP/err")"
[ ! -e "$TMP/x.ecf8" ] || fail "compress wrote an output"
"$ECF8" info "$GOLDEN/bf16.safetensors" >/dev/null 2>"$TMP/err" && fail "info of a safetensors file succeeded"
grep -q 'decode-only' "$TMP/err" || fail "info: stderr does not say decode-only: $(cat "$TMP/err")"

# The library: the encoder's exports are the stubs alone (no ZSTD_compress,
# the writer's), no cJSON, no package-merge.
if command -v nm >/dev/null; then
    nm -D --undefined-only "$LIB" | grep -q 'ZSTD_compress\b\|cJSON' && fail "$LIB imports ZSTD_compress or cJSON"
    nm "$LIB" 2>/dev/null | grep -q 'package_merge\|encode_task\|write_tensor' && fail "$LIB holds encoder code"
fi
if command -v ldd >/dev/null; then
    ldd "$LIB" | grep -q cjson && fail "$LIB links libcjson"
fi
echo "decode_only: $n golden containers rebuilt, $fails failures"
[ "$fails" = 0 ]
