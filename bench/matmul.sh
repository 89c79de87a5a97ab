#!/bin/sh
# matmul.sh - the matmul figures of the README: fused decode + matmul vs the
# same kernels on uncompressed weights vs decode + dequantise + CLBlast, on
# LLM-sized weights tiled from a real FP8 checkpoint (so the byte statistics
# stay real), weights cold (a flush before every timed run), batch 1 and 64.
#
#   bench/matmul.sh [extra ecf8-bench-matmul options...]   e.g. --repeat 21
#
# Builds a Release ecf8 and ecf8-bench-matmul in $BUILD_DIR (default build-matmul), compresses the
# MiniLM fixtures ($ECF8_FIXTURE_DIR, default ~/.cache/ecf8/fixtures; made by
# scripts/make_fixtures.py), prints one JSON object per run on stdout and a
# summary of the issue's ratios on stderr.  Quote ratios from one run: the
# engines alternate inside a run, so background load hits them alike.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIXTURES=${ECF8_FIXTURE_DIR:-$HOME/.cache/ecf8/fixtures}
SHAPES=${SHAPES:-4096x4096 14336x4096 4096x14336}
BATCHES=${BATCHES:-1,64}
TENSOR=encoder.layer.0.intermediate.dense.weight

say() { echo "matmul.sh: $*" >&2; }

. "$ROOT/bench/build_ecf8.sh"
[ -f "$FIXTURES/minilm-e4m3.safetensors" ] || {
    say "missing $FIXTURES/minilm-e4m3.safetensors (run scripts/make_fixtures.py)"
    exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
out=$tmp/results.jsonl
for fx in e4m3 e5m2 bf16; do
    [ -f "$FIXTURES/minilm-$fx.safetensors" ] || continue
    "$ECF8" compress "$FIXTURES/minilm-$fx.safetensors" "$tmp/$fx.ecf8" >/dev/null
done
for shape in $SHAPES; do
    say "F8_E4M3 $shape, batch $BATCHES"
    "$BENCH_DIR/ecf8-bench-matmul" "$tmp/e4m3.ecf8" --tensor "$TENSOR" --shape "$shape" \
        --batch "$BATCHES" --json "$@" | tee -a "$out"
done
for fx in e5m2 bf16; do
    [ -f "$tmp/$fx.ecf8" ] || continue
    say "$fx 4096x4096, batch $BATCHES"
    "$BENCH_DIR/ecf8-bench-matmul" "$tmp/$fx.ecf8" --tensor "$TENSOR" --shape 4096x4096 \
        --batch "$BATCHES" --json "$@" | tee -a "$out"
done

# Summary: fused speed relative to the two baselines, from median times and
# paired per round (median over rounds of baseline ms / fused ms; "cpu": the
# same with process CPU time, which background load inflates less).
python3 - "$out" >&2 <<'EOF' || say "(python3 unavailable: no summary)"
import json, sys
print("%-8s %-11s %3s %-9s %-28s %-21s" % ("dtype", "shape", "m", "identical",
      "fused/uncompr. med|pair|cpu", "fused/clblast med|pair"))
for line in open(sys.argv[1]):
    r = json.loads(line)
    e, p = r["engines"], r.get("fused_speedup_paired", {})
    f = e["fused"]["median_ms"]
    u = e["uncompressed"]["median_ms"] / f
    c = e["clblast"]["median_ms"] / f if "clblast" in e else float("nan")
    print("%-8s %-11s %3d %-9s %5.2fx | %5.2fx | %5.2fx %6.2fx | %6.2fx" % (r["dtype"].replace("F8_", ""),
          "%dx%d" % (r["n"], r["k"]), r["m"], r["bit_identical"], u, p.get("vs_uncompressed", 0),
          p.get("vs_uncompressed_cpu", float("nan")), c, p.get("vs_clblast", float("nan"))))
EOF
