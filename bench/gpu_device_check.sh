#!/bin/sh
# gpu_device_check.sh - issue 13's GPU figures in one short run on a lent GPU
# (any OpenCL device works; ECF8_PLATFORM / ECF8_DEVICE select it):
#   * decode-<layout>.txt: ecf8-bench-decode of an LLM-shaped E4M3 file (a
#     4096x4096 and a 4096x14336 weight) in stream layouts 0 and 1, beside
#     the device copy rate (target: layout 1 >= 50% of copy);
#   * matmul-<layout>.json: ecf8-bench-matmul on the 4096x4096 weight, M = 1
#     and 64: fused, uncompressed and decode + CLBlast (layout 1 runs the
#     lane order on GPUs; compare with docs/BENCHMARKS.md's predictions);
#   * matmul-1-<path>.json: the lane order's two paths forced
#     (ECF8_MATMUL_PATH=fused|decode), to check ecf8_cl_matmul_predict;
#   * cache/: the program binaries the device built (ECF8_CACHE=1; PTX on
#     NVIDIA), to count offline against bench/gpu_loops.sh's clang figures.
# The weights are the committed MiniLM E4M3 slice's FFN weight
# (tests/data, so a copy of the working tree carries them) tiled to the LLM
# shapes, each row rotated so that rows differ: real byte statistics, no
# fixture download.  Needs a build with OpenCL and the benches (BUILD_DIR,
# default build/); CLBlast is used where the build found it.  No zstd
# comparison here (--zstd-level 1 keeps it quick; the CPU figures of the
# issue come from bench/run_codec.sh and ecf8-bench-decode on the CPU hosts).
#
#   BUILD_DIR=build bench/gpu_device_check.sh [OUT] [REPEAT]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
OUT=${1:-gpu-check}
REPEAT=${2:-9}
ECF8=$BUILD/ecf8
DEC=$BUILD/bench/ecf8-bench-decode
MM=$BUILD/bench/ecf8-bench-matmul
for b in "$ECF8" "$DEC" "$MM"; do
  [ -x "$b" ] || { echo "gpu_device_check.sh: $b not built" >&2; exit 1; }
done
mkdir -p "$OUT"
export ECF8_CACHE=1 XDG_CACHE_HOME="$OUT/cache"
"$ECF8" devices >"$OUT/devices.txt" 2>&1 || true
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
python3 - "$ROOT/tests/data/minilm-slice-e4m3.safetensors" "$tmp/llm.safetensors" <<'PY'
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    head = json.loads(f.read(n))
    data = f.read()
name = "encoder.layer.0.intermediate.dense.weight"
rows, cols = head[name]["shape"]
a, b = head[name]["data_offsets"]
w = data[a:b]
src_rows = [w[r * cols:(r + 1) * cols] for r in range(rows)]
tensors, blobs, at = {}, [], 0
for tname, (n_rows, n_cols) in (("model.layers.0.self_attn.q_proj.weight", (4096, 4096)),
                               ("model.layers.0.mlp.down_proj.weight", (4096, 14336))):
    out = bytearray()
    for r in range(n_rows):
        row = src_rows[(r * 7) % rows]
        s = r % cols
        row = row[s:] + row[:s]
        out += (row * (n_cols // cols + 1))[:n_cols]
    scale = struct.pack("<f", 1.0) * ((n_rows // 128) * (n_cols // 128))
    for key, dtype, shape, blob in ((tname, "F8_E4M3", [n_rows, n_cols], bytes(out)),
                                    (tname + "_scale_inv", "F32", [n_rows // 128, n_cols // 128], scale)):
        tensors[key] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(blob)]}
        blobs.append(blob)
        at += len(blob)
header = json.dumps(tensors).encode()
header += b" " * (-len(header) % 8)
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header)
    for blob in blobs:
        f.write(blob)
PY
for layout in 0 1; do
  "$ECF8" compress --layout "$layout" "$tmp/llm.safetensors" "$tmp/llm$layout.ecf8"
  "$DEC" "$tmp/llm$layout.ecf8" --repeat "$REPEAT" --zstd-level 1 >"$OUT/decode-$layout.txt"
  "$MM" "$tmp/llm$layout.ecf8" --tensor model.layers.0.self_attn.q_proj.weight --batch 1,64 \
    --repeat "$REPEAT" --json >"$OUT/matmul-$layout.json"
done
for path in fused decode; do
  ECF8_MATMUL_PATH=$path "$MM" "$tmp/llm1.ecf8" --tensor model.layers.0.self_attn.q_proj.weight \
    --batch 1,5,64 --repeat "$REPEAT" --no-clblast --json >"$OUT/matmul-1-$path.json"
done
echo "gpu_device_check.sh: figures in $OUT" >&2
