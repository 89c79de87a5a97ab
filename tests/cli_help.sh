#!/usr/bin/env bash
# cli_help.sh ECF8 - the CLI explains itself (issue 16 section 3):
#  - `ecf8 CMD --help`, `-h` and `ecf8 help CMD` print the same help on
#    stdout, exit 0, and name every option the command parses (the table
#    below; and every "--option" string of src/cli/*.c is in some help);
#    `ecf8 help` is the overview naming every command; help for an unknown
#    command is a usage error (2);
#  - `info` prints long names in full (two names alike for 48 characters
#    stay apart), a per-dtype summary, and --json --histogram as JSON;
#  - `ls` lists a .safetensors file and its .ecf8 alike (one line a tensor);
#  - `compress --layout 1` and `convert --layout 0|1` (stream layouts);
#  - `extract` writes exactly the tensor's bytes (.bin), or a .npy with the
#    dtype's descr (the raw bits for BF16/FP8, with a note); a missing tensor
#    is one line "ecf8: FILE: no tensor named 'X'", exit 1, no output.
# Plain python3 (struct, json) reads the safetensors files: no numpy.
set -u

ECF8=${1:?usage: cli_help.sh PATH/TO/ecf8}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${ECF8_TEST_DATA:-$HERE/data}
TMP=$(mktemp -d "${ECF8_BUILD_DIR:-${TMPDIR:-/tmp}}/cli-help-XXXXXX")
trap 'rm -rf "$TMP"' EXIT

checks=0 fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() { # check WHAT COMMAND...: the command succeeds
    checks=$((checks + 1))
    "${@:2}" || fail "$1"
}

# ---- help ---------------------------------------------------------------------
# The options each command parses (keep in step with src/cli/*.c).
declare -A OPTIONS=(
    [compress]="--split --max-code-bits --chunk --threads --plain-index --layout --include --exclude --max-file-size --force -f"
    [convert]="--layout --chunk --threads --force -f"
    [decompress]="--engine --threads --force -f"
    [verify]="--threads"
    [info]="--json --histogram --wide"
    [ls]="--json"
    [extract]="-o --output --force -f"
    [devices]="--json"
    [matmul]="--tensor --input --output --engine --force -f"
    [version]=""
    [help]=""
)
"$ECF8" help >"$TMP/overview" 2>"$TMP/err"
rc=$?
checks=$((checks + 1))
[ "$rc" = 0 ] && [ ! -s "$TMP/err" ] || fail "ecf8 help: exit $rc, stderr $(head -c 200 "$TMP/err")"
for cmd in "${!OPTIONS[@]}"; do
    checks=$((checks + 1))
    grep -q "^  ecf8 $cmd\b" "$TMP/overview" || fail "the overview lacks '$cmd'"
    "$ECF8" "$cmd" --help >"$TMP/help" 2>"$TMP/err"
    rc=$?
    checks=$((checks + 1))
    if [ "$rc" != 0 ] || [ -s "$TMP/err" ] || ! head -n 1 "$TMP/help" | grep -q "^usage: ecf8 $cmd\b"; then
        fail "ecf8 $cmd --help: exit $rc, stderr '$(head -c 200 "$TMP/err")', first line '$(head -n 1 "$TMP/help")'"
        continue
    fi
    "$ECF8" help "$cmd" >"$TMP/help2" 2>&1
    check "ecf8 help $cmd differs from ecf8 $cmd --help" cmp -s "$TMP/help" "$TMP/help2"
    "$ECF8" "$cmd" -h >"$TMP/help3" 2>&1
    check "ecf8 $cmd -h differs from ecf8 $cmd --help" cmp -s "$TMP/help" "$TMP/help3"
    for opt in ${OPTIONS[$cmd]} --help -h; do
        checks=$((checks + 1))
        # An option line: "  --opt ..." or "  -x, --opt ...".
        grep -Eq -- "^  (-[a-z], )?$opt( |,)|^  --[a-z-]+, $opt " "$TMP/help" ||
            grep -Eq -- "^  $opt, " "$TMP/help" || fail "ecf8 $cmd --help has no line for $opt"
    done
done
# Every option string of the CLI's sources is in some command's help.
if [ -d "$HERE/../src/cli" ]; then
    for cmd in "${!OPTIONS[@]}"; do "$ECF8" help "$cmd"; done >"$TMP/all-help" 2>&1
    for opt in $(grep -ohE '"--[a-z][a-z-]*"' "$HERE"/../src/cli/*.c | tr -d '"' | sort -u); do
        case $opt in --version) continue ;; esac # `ecf8 --version` is `ecf8 version`
        checks=$((checks + 1))
        grep -q -- "^  .*$opt\b" "$TMP/all-help" || fail "option $opt (src/cli) is in no command's help"
    done
fi
for args in "help nope" "nope --help" "help compress extra"; do
    # shellcheck disable=SC2086
    "$ECF8" $args >"$TMP/out" 2>"$TMP/err"
    rc=$?
    checks=$((checks + 1))
    [ "$rc" = 2 ] && [ ! -s "$TMP/out" ] && head -n 1 "$TMP/err" | grep -q '^ecf8: ' ||
        fail "ecf8 $args: exit $rc (want 2), stdout '$(head -c 100 "$TMP/out")'"
done

# ---- a checkpoint with long names and several dtypes ------------------------
LONG=$TMP/long.safetensors
python3 - "$LONG" <<'EOF'
import json, struct, sys
prefix = "model.layers.0.self_attn.very_long_projection_name_shared_by_both."
tensors = [  # name, dtype, shape, element size, struct format
    (prefix + "q_proj.weight", "BF16", [8, 16], 2, None),
    (prefix + "k_proj.weight", "BF16", [8, 16], 2, None),
    ("scale", "F32", [3, 2], 4, "<6f"),
    ("positions", "I64", [5], 8, "<5q"),
    ("fp8", "F8_E4M3", [4, 4], 1, None),
]
header, data = {}, b""
for i, (name, dtype, shape, size, fmt) in enumerate(tensors):
    n = 1
    for d in shape: n *= d
    if fmt and dtype == "F32": blob = struct.pack(fmt, *[0.5 * k - 1 for k in range(n)])
    elif fmt: blob = struct.pack(fmt, *[k * 1000 - 7 for k in range(n)])
    else: blob = bytes(((k * 37 + i) % 120) + 1 for k in range(n * size))
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
    data += blob
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + data)
EOF
check "compress $LONG" "$ECF8" compress "$LONG" "$TMP/long.ecf8"
PREFIX=model.layers.0.self_attn.very_long_projection_name_shared_by_both.
for file in "$LONG" "$TMP/long.ecf8"; do
    for wide in "" --wide; do
        # shellcheck disable=SC2086
        "$ECF8" info $wide "$file" >"$TMP/info" 2>"$TMP/err"
        for name in q_proj k_proj; do
            checks=$((checks + 1))
            grep -q " ${PREFIX}$name.weight\$" "$TMP/info" || fail "info $wide $file: no full name ...$name.weight"
        done
        checks=$((checks + 1))
        grep -q '^dtype BF16: 2 tensors, 512 -> ' "$TMP/info" || fail "info $wide $file: no BF16 summary"
    done
done
"$ECF8" info --json "$TMP/long.ecf8" >"$TMP/info.json"
check "info --json: not JSON with kind and the per-dtype sums" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["kind"] == "ecf8", d["kind"]
s = {x["dtype"]: x for x in d["dtypes"]}
assert s["BF16"]["tensors"] == 2 and s["BF16"]["source_bytes"] == 512, s
assert sum(x["tensors"] for x in d["dtypes"]) == len(d["tensors"]) == 5' "$TMP/info.json"
"$ECF8" info --json --histogram "${PREFIX}q_proj.weight" "$LONG" >"$TMP/hist.json"
check "info --json --histogram is not JSON" python3 -c '
import json, sys
h = json.load(open(sys.argv[1]))
assert h["dtype"] == "BF16" and sum(h["counts"]) == h["elements"] == 128, h' "$TMP/hist.json"

# ---- ls ----------------------------------------------------------------------
# Both files list the same tensors in the same order, name last.
python3 - "$LONG" >"$TMP/names" <<'EOF'
import json, struct, sys
d = open(sys.argv[1], "rb").read()
h = json.loads(d[8:8 + struct.unpack("<Q", d[:8])[0]])
for name, t in h.items():
    if name != "__metadata__":
        print(t["dtype"], "[" + "x".join(map(str, t["shape"])) + "]", t["data_offsets"][1] - t["data_offsets"][0], name)
EOF
for file in "$LONG" "$TMP/long.ecf8"; do
    "$ECF8" ls "$file" >"$TMP/ls" 2>"$TMP/err"
    check "ls $file failed: $(head -c 200 "$TMP/err")" test -s "$TMP/ls"
    awk '{print $1, $2, $3, $5}' "$TMP/ls" >"$TMP/ls-cut"
    check "ls $file: not dtype, shape, bytes, split, name of each tensor: $(diff "$TMP/names" "$TMP/ls-cut" | head -3)" \
        cmp -s "$TMP/names" "$TMP/ls-cut"
    "$ECF8" ls --json "$file" >"$TMP/ls.json"
    check "ls --json $file is not a JSON array of 5" python3 -c '
import json, sys
assert len(json.load(open(sys.argv[1]))) == 5' "$TMP/ls.json"
done
SLICE=$DATA/minilm-slice-e5m2.safetensors
"$ECF8" compress "$SLICE" "$TMP/slice.ecf8"
"$ECF8" ls "$SLICE" | awk '{print $NF}' >"$TMP/a"
"$ECF8" ls "$TMP/slice.ecf8" | awk '{print $NF}' >"$TMP/b"
check "ls of $SLICE and its .ecf8 differ in names" cmp -s "$TMP/a" "$TMP/b"
checks=$((checks + 1))
[ "$(wc -l <"$TMP/a")" = 8 ] || fail "ls $SLICE: $(wc -l <"$TMP/a") lines, want 8"

# ---- extract -----------------------------------------------------------------
# want SAFETENSORS NAME OUT: OUT holds exactly the tensor's bytes (after a
# .npy header whose descr and shape python3 checks).
want() {
    python3 - "$@" <<'EOF'
import ast, json, struct, sys
src, name, out = sys.argv[1:]
d = open(src, "rb").read()
n = struct.unpack("<Q", d[:8])[0]
t = json.loads(d[8:8 + n])[name]
b, e = t["data_offsets"]
want = d[8 + n + b:8 + n + e]
got = open(out, "rb").read()
if out.endswith(".npy"):
    assert got[:8] == b"\x93NUMPY\x01\x00", got[:8]
    hl = struct.unpack("<H", got[8:10])[0]
    assert (10 + hl) % 64 == 0
    hdr = ast.literal_eval(got[10:10 + hl].decode())
    descr = {"F32": "<f4", "I64": "<i8", "BF16": "<u2", "F8_E4M3": "|u1", "F8_E5M2": "|u1"}[t["dtype"]]
    assert hdr == {"descr": descr, "fortran_order": False, "shape": tuple(t["shape"])}, hdr
    got = got[10 + hl:]
assert got == want, "%s: %d bytes differ from the tensor's %d" % (out, len(got), len(want))
EOF
}
for name in scale positions "${PREFIX}k_proj.weight" fp8; do
    for ext in npy bin; do
        "$ECF8" extract "$TMP/long.ecf8" "$name" -o "$TMP/x.$ext" 2>"$TMP/err"
        rc=$?
        checks=$((checks + 1))
        [ "$rc" = 0 ] || fail "extract $name -o x.$ext: exit $rc: $(cat "$TMP/err")"
        check "extract $name -o x.$ext: not the tensor" want "$LONG" "$name" "$TMP/x.$ext"
        note=0
        case $name.$ext in *weight.npy | fp8.npy) note=1 ;; esac
        checks=$((checks + 1))
        [ "$(grep -c 'has no NumPy dtype' "$TMP/err")" = $note ] || fail "extract $name -o x.$ext: stderr '$(cat "$TMP/err")'"
        rm -f "$TMP/x.$ext"
    done
done
"$ECF8" extract "$TMP/slice.ecf8" "$(head -n 1 "$TMP/a")" -o "$TMP/y.bin"
check "extract from $SLICE's .ecf8: not the tensor" want "$SLICE" "$(head -n 1 "$TMP/a")" "$TMP/y.bin"
"$ECF8" extract "$TMP/slice.ecf8" "$(head -n 1 "$TMP/a")" -o "$TMP/y.bin" >"$TMP/out" 2>"$TMP/err"
rc=$?
checks=$((checks + 1))
[ "$rc" = 1 ] && grep -q 'already exists' "$TMP/err" || fail "extract over an output without --force: exit $rc"
check "extract --force" "$ECF8" extract "$TMP/slice.ecf8" "$(head -n 1 "$TMP/a")" -o "$TMP/y.bin" --force

"$ECF8" extract "$TMP/long.ecf8" missing -o "$TMP/m.npy" >"$TMP/out" 2>"$TMP/err"
rc=$?
checks=$((checks + 1))
if [ "$rc" != 1 ] || [ "$(cat "$TMP/err")" != "ecf8: $TMP/long.ecf8: no tensor named 'missing'" ] ||
    [ -s "$TMP/out" ] || [ -e "$TMP/m.npy" ] || ls -A "$TMP" | grep -q '^\.ecf8-'; then
    fail "extract of a missing tensor: exit $rc, stderr '$(cat "$TMP/err")', output or temporary left"
fi

# ---- stream layouts: compress --layout 1, convert --layout ------------------------
# Layout-1 files rebuild their source byte for byte; converting a default
# file to layout 1 gives what compress --layout 1 writes, and back to 0 the
# original file; convert follows compress's output rules (--force) and
# needs --layout (usage error, exit 2).
status() { # status WHAT WANT COMMAND...: the command exits with WANT
    checks=$((checks + 1))
    "${@:3}" >/dev/null 2>&1
    local rc=$?
    [ "$rc" = "$2" ] || fail "$1: exit status $rc, want $2"
}

for src in "$DATA"/minilm-slice-*.safetensors; do
    b=$(basename "$src" .safetensors)
    check "$b: compress" "$ECF8" compress "$src" "$TMP/$b.0.ecf8"
    check "$b: compress --layout 1" "$ECF8" compress --layout 1 "$src" "$TMP/$b.1.ecf8"
    check "$b: verify layout 1" "$ECF8" verify "$TMP/$b.1.ecf8" "$src"
    check "$b: decompress layout 1" "$ECF8" decompress "$TMP/$b.1.ecf8" "$TMP/$b.rt.safetensors"
    check "$b: layout 1 rebuilds the source" cmp -s "$src" "$TMP/$b.rt.safetensors"
    check "$b: convert 0 -> 1" "$ECF8" convert "$TMP/$b.0.ecf8" "$TMP/$b.c1.ecf8" --layout 1
    check "$b: convert 0 -> 1 = compress --layout 1" cmp -s "$TMP/$b.1.ecf8" "$TMP/$b.c1.ecf8"
    check "$b: convert 1 -> 0" "$ECF8" convert "$TMP/$b.c1.ecf8" "$TMP/$b.c0.ecf8" --layout 0
    check "$b: convert 1 -> 0 = the original container" cmp -s "$TMP/$b.0.ecf8" "$TMP/$b.c0.ecf8"
    status "$b: convert onto an existing file" 1 "$ECF8" convert "$TMP/$b.c1.ecf8" "$TMP/$b.c0.ecf8" --layout 0
    check "$b: convert --force" "$ECF8" convert "$TMP/$b.c1.ecf8" "$TMP/$b.c0.ecf8" --layout 0 --force
done
status "convert without --layout" 2 "$ECF8" convert "$TMP/x.ecf8" "$TMP/y.ecf8"
status "convert --layout 2" 2 "$ECF8" convert "$TMP/x.ecf8" "$TMP/y.ecf8" --layout 2
status "compress --layout 2" 2 "$ECF8" compress "$DATA/minilm-slice-e4m3.safetensors" "$TMP/y.ecf8" --layout 2
status "convert of a missing file" 1 "$ECF8" convert "$TMP/missing.ecf8" "$TMP/y.ecf8" --layout 1

echo "cli_help: $checks checks, $fails failures"
[ "$fails" = 0 ]
