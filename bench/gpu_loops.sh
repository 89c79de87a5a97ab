#!/bin/sh
# gpu_loops.sh - static sm_90 instruction counts of the lane-order matmul
# kernels' inner loops, per 32-bit word of W (4 FP8 or 2 BF16 weights):
# the fused GEMV (m = 1) and GEMM (per pass of 4 rows of X), the raw twin's
# GEMV and GEMM, and the decode to a buffer.  These are the costs
# ecf8_cl_matmul_predict uses (src/opencl/matmul.c, lane_costs) and the
# basis of the GPU predictions in docs/BENCHMARKS.md.  No GPU needed:
# cl/matmul.cl is compiled with clang-15 + libclc for nvptx64 (the build
# options ecf8_cl_matmul_lane_order_options gives, for the splits below),
# assembled with ptxas -arch=sm_90 and disassembled with nvdisasm (CUDA, or
# `pip download nvidia-cuda-nvdisasm` and unzip; set NVDISASM).  The
# innermost loop that multiplies (FFMA) or stores (STG) is counted, divided
# by the words one trip handles (unrolling).
#
#   bench/gpu_loops.sh
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NVDISASM=${NVDISASM:-nvdisasm}
LIBCLC=/usr/lib/clc/nvptx64--nvidiacl.bc
for tool in clang-15 ptxas "$NVDISASM"; do
  command -v "$tool" >/dev/null || { echo "gpu_loops.sh: $tool not found" >&2; exit 1; }
done
[ -r "$LIBCLC" ] || { echo "gpu_loops.sh: $LIBCLC not found (libclc-15)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
common="-cl-std=CL1.2 -DECF8_MM_XBF16=0 -DECF8_MM_LORDER=1 -DECF8_MM_LG=4"
# name | -D options (code-length class: ECF8_MM_LSPW codes per 32-bit window)
while IFS='|' read -r name opts; do
  [ -n "$name" ] || continue
  clang-15 -x cl -target nvptx64-unknown-nvidiacl -O3 -Xclang -finclude-default-header \
    -Xclang -mlink-bitcode-file -Xclang "$LIBCLC" $common $opts -S -o "$tmp/k.ptx" \
    "$ROOT/cl/matmul.cl"
  ptxas -arch=sm_90 "$tmp/k.ptx" -o "$tmp/k.cubin"
  "$NVDISASM" -c "$tmp/k.cubin" >"$tmp/k.sass"
  python3 - "$tmp/k.sass" "$name" <<'PY'
import re, sys
text, name = open(sys.argv[1]).read(), sys.argv[2]
bf16 = name.startswith("BF16")
out = []
for fn, per_word in (("ecf8_mm_lgemv", 2 if bf16 else 5), ("ecf8_mm_lgemm", 8 if bf16 else 20),
                     ("ecf8_mm_ldecode", None)):
    at = text.find(".text." + fn + ":")
    if at < 0:
        out.append(f"{fn[8:]} -")
        continue
    end = text.find(".section", at + 10)
    ins, labels = [], {}
    for line in text[at:end if end > 0 else None].split("\n"):
        m = re.match(r"\s*(\.L_x_\d+):", line)
        if m:
            labels[m.group(1)] = len(ins)
            continue
        m = re.match(r"\s+/\*[0-9a-f]{4}\*/\s+(.*?);", line)
        if m:
            ins.append(m.group(1).strip())
    best = None
    for i, x in enumerate(ins):
        b = re.search(r"BRA `\((\.L_x_\d+)\)", x)
        if b and labels.get(b.group(1), i + 1) <= i:
            body = ins[labels[b.group(1)]:i + 1]
            if any("FFMA" in y or "STG" in y for y in body) and (best is None or len(body) < len(best)):
                best = body
    op = lambda y: (y.split()[1] if y.startswith("@") else y.split()[0]).split(".")[0]
    key, unit = ("FFMA", per_word) if per_word else ("STG", 1)
    words = sum(1 for y in best if op(y) == key) / unit
    out.append(f"{fn[8:]} {len(best) / words:.0f}")
print(f"{name:28s} " + "  ".join(out))
PY
done <<'CFG'
E4M3 exponent|-DECF8_MM_WDT=1 -DECF8_MM_FUSED=1 -DECF8_MM_GRP=2 -DECF8_MM_RAW_BITS=4 -DECF8_MM_SYM_SHIFT=3 -DECF8_MM_SYM_BITS=4 -DECF8_MM_LSPW=4
E5M2 exponent|-DECF8_MM_WDT=2 -DECF8_MM_FUSED=1 -DECF8_MM_GRP=2 -DECF8_MM_RAW_BITS=3 -DECF8_MM_SYM_SHIFT=2 -DECF8_MM_SYM_BITS=5 -DECF8_MM_LSPW=4
E4M3 byte, codes <= 8 bits|-DECF8_MM_WDT=1 -DECF8_MM_FUSED=1 -DECF8_MM_GRP=1 -DECF8_MM_RAW_BITS=0 -DECF8_MM_SYM_SHIFT=0 -DECF8_MM_SYM_BITS=8 -DECF8_MM_LSPW=4
E4M3 byte, codes 11-15 bits|-DECF8_MM_WDT=1 -DECF8_MM_FUSED=1 -DECF8_MM_GRP=1 -DECF8_MM_RAW_BITS=0 -DECF8_MM_SYM_SHIFT=0 -DECF8_MM_SYM_BITS=8 -DECF8_MM_LSPW=2
E4M3 raw twin|-DECF8_MM_WDT=1 -DECF8_MM_FUSED=0
E5M2 raw twin|-DECF8_MM_WDT=2 -DECF8_MM_FUSED=0
BF16 exponent|-DECF8_MM_WDT=3 -DECF8_MM_FUSED=1 -DECF8_MM_GRP=1 -DECF8_MM_RAW_BITS=8 -DECF8_MM_SYM_SHIFT=7 -DECF8_MM_SYM_BITS=8 -DECF8_MM_LSPW=2
BF16 byte|-DECF8_MM_WDT=3 -DECF8_MM_FUSED=1 -DECF8_MM_GRP=1 -DECF8_MM_RAW_BITS=8 -DECF8_MM_SYM_SHIFT=8 -DECF8_MM_SYM_BITS=8 -DECF8_MM_LSPW=2
BF16 raw twin|-DECF8_MM_WDT=3 -DECF8_MM_FUSED=0
CFG
