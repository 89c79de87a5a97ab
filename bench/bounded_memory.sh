#!/bin/sh
# bounded_memory.sh - peak resident memory of `ecf8 compress`, `ecf8
# decompress` and `ecf8 verify` on a checkpoint with one large tensor
# (issue 14: < 1.5 GiB for a >= 6 GiB tensor).  The tensor is the LLM fixture's q_proj E4M3 bytes
# (scripts/make_fixtures.py --llm) tiled to ROWSx16384 (default 393216 rows:
# 6 GiB), written with a small header by python3.  Needs 2x its size on
# disk under $TMPDIR plus the .ecf8.  Prints one JSON object per command:
# {"command", "tensor_bytes", "max_rss_kib", "wall_s"}.
#
#   bench/bounded_memory.sh [ROWS]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIXTURES=${ECF8_FIXTURE_DIR:-$HOME/.cache/ecf8/fixtures}
ROWS=${1:-393216}
say() { echo "bounded_memory.sh: $*" >&2; }
. "$ROOT/bench/build_ecf8.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ecf8-bounded.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
python3 - "$FIXTURES/llm-e4m3.safetensors" "$tmp/big.safetensors" "$ROWS" <<'PY'
import json, struct, sys
src, dst, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
    t = h["model.layers.0.self_attn.q_proj.weight"]
    f.seek(8 + n + t["data_offsets"][0])
    tile = f.read(t["data_offsets"][1] - t["data_offsets"][0])
cols = 16384
size = rows * cols
hdr = json.dumps({"big.weight": {"dtype": "F8_E4M3", "shape": [rows, cols],
                                 "data_offsets": [0, size]}}).encode()
hdr += b" " * (-len(hdr) % 8)
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(hdr)) + hdr)
    left = size
    while left:
        k = min(left, len(tile))
        f.write(tile[:k])
        left -= k
PY
bytes=$(($ROWS * 16384))
measure() {
    label=$2
    case $1 in "${ECF8_BASELINE:-/}") label="baseline $2" ;; esac
    /usr/bin/time -f "%M %e" -o "$tmp/time" "$@" >/dev/null
    read -r rss wall < "$tmp/time"
    printf '{"command": "%s", "tensor_bytes": %s, "max_rss_kib": %s, "wall_s": %s}\n' "$label" "$bytes" "$rss" "$wall"
}
compress_both() { # OUT [options]: ours, and the baseline's to compare
    out=$1
    shift
    measure "$ECF8" compress "$@" "$tmp/big.safetensors" "$out"
    if [ -n "${ECF8_BASELINE:-}" ]; then
        measure "$ECF8_BASELINE" compress "$@" "$tmp/big.safetensors" "$tmp/base.ecf8"
        cmp "$out" "$tmp/base.ecf8" || { say "the baseline's container differs ($*)"; exit 1; }
        rm -f "$tmp/base.ecf8"
    fi
}
compress_both "$tmp/lanes.ecf8" --layout 1 --plain-index
rm -f "$tmp/lanes.ecf8"
compress_both "$tmp/big.ecf8"
measure "$ECF8" decompress --engine cpu "$tmp/big.ecf8" "$tmp/out.safetensors"
cmp "$tmp/out.safetensors" "$tmp/big.safetensors"
rm -f "$tmp/out.safetensors"
measure "$ECF8" verify "$tmp/big.ecf8"
measure "$ECF8" verify "$tmp/big.ecf8" "$tmp/big.safetensors"
