#!/bin/sh
# shards.sh - `ecf8 compress DIR OUTDIR/` (one container per shard) against
# `ecf8 compress DIR OUT.ecf8` (one container), and `decompress OUTDIR/`,
# `verify OUTDIR/ DIR` on a checkpoint laid out as published: three shards
# made from the real fixtures (scripts/make_fixtures.py: llm-e4m3,
# minilm-bf16, minilm-e4m3, tensors renamed per shard), their
# model.safetensors.index.json and a config.json.  The round trip is checked
# with diff -r.  With --many, DeepSeek-V3's layout instead: 163 shards (each
# the E5M2 slice of tests/data) and an index of 91,991 tensor names.
# Prints one JSON object per command:
# {"command", "input_bytes", "output_bytes", "max_rss_kib", "wall_s"}.
#
#   bench/shards.sh [--many] [THREADS...]      (default: 1 2)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIXTURES=${ECF8_FIXTURE_DIR:-$HOME/.cache/ecf8/fixtures}
say() { echo "shards.sh: $*" >&2; }
many=0
if [ "${1:-}" = --many ]; then
    many=1
    shift
fi
. "$ROOT/bench/build_ecf8.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ecf8-shards.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir "$tmp/ck"
python3 - "$FIXTURES" "$tmp/ck" "$many" "$ROOT/tests/data" <<'PY'
import json, os, struct, sys
fixtures, out, many = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
names = ["llm-e4m3", "minilm-bf16", "minilm-e4m3"]
if many:  # 163 shards, 91,991 names in the index (DeepSeek-V3)
    fixtures, names = sys.argv[4], ["minilm-slice-e5m2"] * 163
weight_map = {}
for i, name in enumerate(names):
    shard = "model-%05d-of-%05d.safetensors" % (i + 1, len(names))
    with open(os.path.join(fixtures, name + ".safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    renamed = {}
    for k, v in header.items():
        key = k if k == "__metadata__" else "shard%d.%s" % (i, k)
        renamed[key] = v
        if k != "__metadata__":
            weight_map[key] = shard
    for j in range(len(weight_map), 91991 * (i + 1) // len(names) if many else 0):
        weight_map["model.layers.%d.extra%d" % (i, j)] = shard
    text = json.dumps(renamed).encode()
    text += b" " * (-len(text) % 8)
    with open(os.path.join(out, shard), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)
with open(os.path.join(out, "config.json"), "w") as f:
    f.write('{"architectures": ["LlamaForCausalLM"]}\n')
PY
in_bytes=$(du -sb "$tmp/ck" | cut -f1)
measure() { # LABEL OUTPUT ecf8 ARGS...
    label=$1 out=$2
    shift 2
    /usr/bin/time -f "%M %e" -o "$tmp/time" "$ECF8" "$@" >/dev/null
    read -r rss wall <"$tmp/time"
    printf '{"command": "%s", "input_bytes": %s, "output_bytes": %s, "max_rss_kib": %s, "wall_s": %s}\n' \
        "$label" "$in_bytes" "$(du -sb "$out" | cut -f1)" "$rss" "$wall"
}
for t in ${*:-1 2}; do
    measure "compress DIR OUT.ecf8 --threads $t" "$tmp/one.ecf8" compress --threads "$t" "$tmp/ck" "$tmp/one.ecf8"
    rm -f "$tmp/one.ecf8"
    measure "compress DIR OUTDIR/ --threads $t" "$tmp/out" compress --threads "$t" "$tmp/ck" "$tmp/out/"
    first=$(cd "$tmp/out" && ls model-00001-of-*.ecf8)
    [ -z "${keep:-}" ] || cmp -s "$tmp/out/$first" "$tmp/keep.ecf8" ||
        { say "containers differ between thread counts"; exit 1; }
    keep=1
    cp "$tmp/out/$first" "$tmp/keep.ecf8"
    measure "decompress OUTDIR/ DIR --threads $t" "$tmp/back" decompress --threads "$t" "$tmp/out" "$tmp/back"
    diff -r "$tmp/ck" "$tmp/back" >/dev/null || { say "the rebuilt directory differs"; exit 1; }
    measure "verify OUTDIR/ DIR --threads $t" "$tmp/out" verify --threads "$t" "$tmp/out" "$tmp/ck"
    rm -rf "$tmp/out" "$tmp/back"
done
