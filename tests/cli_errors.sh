#!/usr/bin/env bash
# cli_errors.sh ECF8 - exit codes, messages and outputs of the ecf8 CLI on
# good and bad files.
#
# Every failure must be exit status 1 (2 for a usage error) with exactly one
# line on stderr, "ecf8: FILE: what is wrong", nothing on stdout, and no
# output file or temporary (.ecf8-XXXXXX) left behind.  A success writes
# nothing on stderr but the one warning of compress, "ecf8: FILE: warning: no
# FP8/BF16/FP16 tensors, nothing to compress".  The broken files and what
# each must say come from tests/data/bad/MANIFEST.tsv (make_bad_files.py).
#
set -u

ECF8=${1:?usage: cli_errors.sh PATH/TO/ecf8}
DATA=${ECF8_TEST_DATA:-$(cd "$(dirname "$0")" && pwd)/data}
BAD=$DATA/bad
TMP=$(mktemp -d "${ECF8_BUILD_DIR:-${TMPDIR:-/tmp}}/cli-errors-XXXXXX")
trap 'rm -rf "$TMP"' EXIT

checks=0 fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect RC NAMED NEEDLE OUTPUT -- ARGS...
#   runs ecf8 ARGS; wants exit status RC; for RC != 0 one stderr line
#   starting "ecf8: NAMED: " (usage errors: "ecf8: ") holding NEEDLE, an empty
#   stdout, and OUTPUT (if not "-") absent with no temporaries beside it.
# Sets $why to the problem ("" when all is well).
expect() {
    local rc=$1 named=$2 needle=$3 output=$4
    shift 5
    checks=$((checks + 1))
    why=""
    "$ECF8" "$@" >"$TMP/stdout" 2>"$TMP/stderr" </dev/null
    local got=$?
    local lines
    lines=$(wc -l <"$TMP/stderr")
    local msg
    msg=$(head -n 1 "$TMP/stderr")
    if [ "$got" != "$rc" ]; then
        why="exit status $got, want $rc (stderr: $msg)"
    elif [ "$rc" = 0 ]; then
        # A success prints nothing on stderr, but for one line: compress of
        # a checkpoint with no tensor ecf8 codes (a container that only
        # stores it is a little larger than the original).
        if [ -s "$TMP/stderr" ] && ! { [ "$lines" = 1 ] &&
            [ "$msg" != "${msg%: warning: no FP8/BF16/FP16 tensors, nothing to compress}" ]; }; then
            why="stderr on success: $msg"
        fi
    elif [ "$rc" = 2 ]; then
        case "$msg" in ecf8:\ *) ;; *) why="usage message '$msg' does not start with 'ecf8: '" ;; esac
    else
        if [ "$lines" != 1 ] || [ "$(tail -c 1 "$TMP/stderr" | od -An -c | tr -d ' ')" != '\n' ]; then
            why="stderr is $lines lines: $(tr '\n' '|' <"$TMP/stderr")"
        elif [ "${msg#"ecf8: $named: "}" = "$msg" ]; then
            why="message '$msg' does not start with 'ecf8: $named: '"
        elif [ -n "$needle" ] && [ "${msg#*"$needle"}" = "$msg" ]; then
            why="message '$msg' lacks '$needle'"
        elif [ -s "$TMP/stdout" ]; then
            why="stdout on failure: $(head -c 200 "$TMP/stdout")"
        fi
    fi
    if [ -z "$why" ] && [ "$rc" != 0 ] && [ "$output" != - ]; then
        if [ -e "$output" ]; then
            why="output $output left behind"
        elif ls -A "$(dirname "$output")" | grep -q '^\.ecf8-'; then
            why="temporary file left in $(dirname "$output")"
        fi
    fi
    return 0
}

# check DESCRIPTION (after expect)
check() {
    if [ -n "$why" ]; then fail "$1: $why"; fi
}

# ---- broken files from the manifest ------------------------------------------
[ -f "$BAD/MANIFEST.tsv" ] || { echo "FAIL: $BAD/MANIFEST.tsv missing"; exit 1; }
mkdir -p "$TMP/in" "$TMP/out"
n_bad=0
while IFS=$'\t' read -r file kind status stage needle; do
    case "$file" in \#* | "") continue ;; esac
    n_bad=$((n_bad + 1))
    in=$TMP/in/$file
    cp "$BAD/$file" "$in"
    out=$TMP/out/result
    if [ "$kind" = safetensors ]; then
        expect 1 "$in" "$needle" "$out" -- compress "$in" "$out"
        check "compress $file"
        expect 1 "$in" "$needle" - -- info "$in"
        check "info $file"
        expect 1 "$in" "$needle" - -- info "$in" --json
        check "info --json $file"
    else
        expect 1 "$in" "$needle" "$out" -- decompress "$in" "$out"
        check "decompress $file"
        expect 1 "$in" "$needle" - -- verify "$in"
        check "verify $file"
        expect 1 "$in" "$needle" - -- verify "$in" "$BAD/good.safetensors"
        check "verify $file ORIGINAL"
        # info reads files without the container magic as safetensors, and
        # of a container the index only: it fails where the open does.
        if [ "$(head -c 5 "$in" | tail -c 4 | od -An -c | tr -d " ")" = ECF8 ]; then
            if [ "$stage" = open ]; then
                expect 1 "$in" "$needle" - -- info "$in"
            else
                expect 0 - "" - -- info "$in"
            fi
            check "info $file"
        fi
    fi
    rm -rf "$in" "$out"
done <"$BAD/MANIFEST.tsv"
[ "$n_bad" -ge 60 ] || fail "only $n_bad bad files in the manifest"

# A failed decompress or compress leaves an existing output untouched, even
# with --force.
printf precious >"$TMP/keep"
expect 1 "$BAD/ecf8-payload-raw-bit.ecf8" "checksum mismatch" - -- decompress --force "$BAD/ecf8-payload-raw-bit.ecf8" "$TMP/keep"
check "decompress over an existing file" ""
[ "$(cat "$TMP/keep")" = precious ] || fail "a failed decompress changed the existing output"
expect 1 "$BAD/st-overlap.safetensors" "overlaps" - -- compress -f "$BAD/st-overlap.safetensors" "$TMP/keep"
check "compress over an existing file" ""
[ "$(cat "$TMP/keep")" = precious ] || fail "a failed compress changed the existing output"
ls -A "$TMP" | grep -q '^\.ecf8-' && fail "temporary files left in $TMP"

# ---- missing files, bad paths ---------------------------------------------------
missing=$TMP/missing.safetensors
expect 1 "$missing" "No such file" "$TMP/x.ecf8" -- compress "$missing" "$TMP/x.ecf8"
check "compress a missing file" ""
expect 1 "$TMP/missing.ecf8" "No such file" "$TMP/x.st" -- decompress "$TMP/missing.ecf8" "$TMP/x.st"
check "decompress a missing file" ""
expect 1 "$TMP/missing.ecf8" "No such file" - -- verify "$TMP/missing.ecf8"
check "verify a missing file" ""
expect 1 "$TMP/missing.ecf8" "No such file" - -- info "$TMP/missing.ecf8"
check "info a missing file" ""
expect 1 "$TMP/no/such/dir/x.ecf8" "" - -- compress "$BAD/good.safetensors" "$TMP/no/such/dir/x.ecf8"
check "compress into a missing directory" ""
expect 1 "$TMP/no/such/dir/x.st" "" - -- decompress "$BAD/good.ecf8" "$TMP/no/such/dir/x.st"
check "decompress into a missing directory" ""
# A directory input is a compressed checkpoint directory (compress DIR OUTDIR/):
# here the output would be inside it.
expect 1 "$TMP/x.st" "inside the input directory" - -- decompress "$TMP" "$TMP/x.st"
check "decompress a directory" ""
expect 1 "$BAD/good.safetensors" "bad magic" "$TMP/x.st" -- decompress "$BAD/good.safetensors" "$TMP/x.st"
check "decompress a safetensors file" ""
mkdir "$TMP/emptydir"
expect 1 "$TMP/emptydir" "no .safetensors" "$TMP/x.ecf8" -- compress "$TMP/emptydir" "$TMP/x.ecf8"
check "compress an empty directory" ""

# ---- usage errors -----------------------------------------------------------------
checks=$((checks + 1))
"$ECF8" >/dev/null 2>"$TMP/stderr"
[ $? = 2 ] && grep -q '^usage:' "$TMP/stderr" || fail "no arguments: want exit 2 and the usage on stderr"
for args in "frobnicate" "compress" "compress $BAD/good.safetensors" \
    "compress a b c" "compress a b --split nibble" "compress a b --threads x" \
    "compress a b --threads -1" "compress a b --max-code-bits 0" "compress a b --max-code-bits 14" \
    "compress a b --chunk 10" "compress a b --bogus" "decompress a" "decompress a b c" \
    "decompress a b --threads" "verify" "verify a b c" "info" "info a b" "info a --bogus"; do
    # shellcheck disable=SC2086
    expect 2 - "" - -- $args
    check "usage: ecf8 $args" ""
done
# An option given last without its value is named as such, not as unknown
# (the device commands only where the build has them).
value_cases=("compress a b --split" "decompress a b --threads" "info a --histogram")
"$ECF8" devices 2>&1 | grep -q "no OpenCL support" ||
    value_cases+=("matmul a --tensor")
for args in "${value_cases[@]}"; do
    # shellcheck disable=SC2086
    expect 2 - "needs a value" - -- $args
    [ -z "$why" ] && ! grep -q "needs a value" "$TMP/stderr" && why="says $(head -n 1 "$TMP/stderr")"
    check "usage: ecf8 $args" ""
done
# The benchmarks are programs of their own (bench/): `ecf8 bench` says so
# in one line, whatever the build.
for args in "bench" "bench decode a --repeat 1" "bench matmul a"; do
    # shellcheck disable=SC2086
    expect 2 - "" - -- $args
    [ -z "$why" ] && { [ "$(wc -l <"$TMP/stderr")" = 1 ] && grep -q "ecf8-bench-decode or ecf8-bench-matmul" "$TMP/stderr" ||
        why="says $(tr '\n' '|' <"$TMP/stderr")"; }
    check "usage: ecf8 $args" ""
done

# ---- good files -------------------------------------------------------------------
for f in minilm-slice-e4m3 minilm-slice-e5m2 minilm-slice-bf16; do
    src=$DATA/$f.safetensors
    for split in auto exponent byte; do
        expect 0 - "" - -- compress "$src" "$TMP/$f.ecf8" --split "$split" --threads 2 --force
        check "compress $f --split $split" ""
        expect 0 - "" - -- decompress "$TMP/$f.ecf8" "$TMP/$f.out" --force
        check "decompress $f" ""
        cmp -s "$src" "$TMP/$f.out" || fail "$f --split $split: decompressed file differs"
        expect 0 - "" - -- verify "$TMP/$f.ecf8" "$src"
        check "verify $f ORIGINAL" ""
        grep -q "^$TMP/$f.ecf8: OK" "$TMP/stdout" || fail "verify $f: stdout '$(cat "$TMP/stdout")'"
    done
    [ "$(stat -c %s "$TMP/$f.ecf8")" -lt "$(stat -c %s "$src")" ] || fail "$f did not shrink"
    expect 0 - "" - -- verify "$TMP/$f.ecf8"
    check "verify $f" ""
    for file in "$src" "$TMP/$f.ecf8"; do
        expect 0 - "" - -- info "$file"
        check "info $file" ""
        expect 0 - "" - -- info "$file" --json
        check "info --json $file" ""
        if command -v python3 >/dev/null; then
            python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert {"file_bytes","source_bytes","tensors"} <= set(d); assert all({"name","dtype","shape","elements","split","source_bytes","compressed_bytes","entropy_bound_bytes","exponent_entropy_bits","stream"} <= set(t) for t in d["tensors"])
if d["kind"] == "ecf8":
    assert d["format_version"] in ("1.0", "1.1", "1.2", "1.3") and sum(s["bytes"] for s in d["sources"]) == d["source_bytes"], d
    assert all((t["stream"] is None) == (t["split"] == "stored") for t in d["tensors"])
    assert all(t["stream"]["chunks"] >= 1 and t["stream"]["layout"] in (0, 1) for t in d["tensors"] if t["stream"])
else:
    assert "format_version" not in d and all(t["stream"] is None for t in d["tensors"])' "$TMP/stdout" ||
                fail "info --json $file: not the documented JSON"
        fi
    done
    # A wrong original is a mismatch naming the original.
    other=$DATA/minilm-slice-bf16.safetensors
    [ "$f" = minilm-slice-bf16 ] && other=$DATA/minilm-slice-e5m2.safetensors
    expect 1 "$other" "differs" - -- verify "$TMP/$f.ecf8" "$other"
    check "verify $f against another file" ""
    rm -f "$TMP/$f.out"
done
# A code length limit too short for one split's alphabet: the other split
# (or stored) is used, compress does not fail.
for f in minilm-slice-e4m3 minilm-slice-bf16; do
    expect 0 - "" - -- compress "$DATA/$f.safetensors" "$TMP/mcb.ecf8" --max-code-bits 4
    check "compress $f --max-code-bits 4" "BUG-2 max-bits-other-split: one split's alphabet not fitting --max-code-bits fails the whole compress"
    if [ -z "$why" ]; then
        expect 0 - "" - -- verify "$TMP/mcb.ecf8" "$DATA/$f.safetensors"
        check "verify $f --max-code-bits 4" ""
    fi
    rm -f "$TMP/mcb.ecf8"
done

# Format 1.3 dtypes (FNUZ, U8, I8, F8_E8M0): byte for byte through the CLI in
# both stream layouts and index formats, with every split asked for (a U8
# tensor gets the byte split it has, --split exponent does not fail the
# file); info --json gives a packed FP4 tensor's bits per FP4 weight.
v13=$DATA/golden/dtypes.safetensors
for layout in 0 1; do
    for split in auto exponent byte; do
        for index in "" --plain-index; do
            what="dtypes --layout $layout --split $split $index"
            expect 0 - "" - -- compress "$v13" "$TMP/v13.ecf8" --layout "$layout" --split "$split" $index --force
            check "compress $what" ""
            expect 0 - "" - -- decompress "$TMP/v13.ecf8" "$TMP/v13.out" --force
            check "decompress $what" ""
            cmp -s "$v13" "$TMP/v13.out" || fail "$what: decompressed file differs"
            expect 0 - "" - -- verify "$TMP/v13.ecf8" "$v13"
            check "verify $what" ""
        done
    done
    expect 0 - "" - -- info "$TMP/v13.ecf8" --json
    check "info --json dtypes --layout $layout" ""
    if command -v python3 >/dev/null; then
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["format_version"] == "1.3", d["format_version"]
t = {x["name"]: x for x in d["tensors"]}
assert t["mlp.weight_scale"]["split"] == "byte" and t["q.weight"]["split"] == "byte"
fp4 = t["experts.down_blocks"]
assert fp4["fp4_bits_per_weight"] == round(8 * fp4["compressed_bytes"] / (2 * fp4["source_bytes"]), 4), fp4
assert all(x["fp4_bits_per_weight"] is None for x in d["tensors"] if not x["name"].endswith(("weight_packed", "_blocks")))' \
            "$TMP/stdout" || fail "info --json dtypes --layout $layout: not the documented JSON"
    fi
done
expect 0 - "" - -- info "$v13"
check "info dtypes.safetensors" ""
grep -q "^packed FP4 (U8 \*weight_packed, \*_blocks: two E2M1 weights a byte): 2 tensors, [0-9.]* bits per FP4 weight" \
    "$TMP/stdout" || fail "info dtypes.safetensors: no packed FP4 line"
rm -f "$TMP/v13.ecf8" "$TMP/v13.out"

# info --histogram
expect 0 - "" - -- info "$DATA/minilm-slice-e5m2.safetensors" --histogram encoder.layer.1.attention.self.key.weight
check "info --histogram" ""
grep -q "exponent field histogram" "$TMP/stdout" && grep -q "^  e=" "$TMP/stdout" ||
    fail "info --histogram of an E5M2 tensor: not titled as its exponent field"
# A U8 or I8 tensor has no exponent: its histogram is of its bytes.
expect 0 - "" - -- info "$v13" --histogram q.weight
check "info --histogram of an I8 tensor" ""
grep -q "^q.weight (I8): byte histogram" "$TMP/stdout" && grep -q "^  v=" "$TMP/stdout" ||
    fail "info --histogram of an I8 tensor: not titled as a byte histogram"
expect 0 - "" - -- info "$v13" --histogram q.weight --json
check "info --histogram --json of an I8 tensor" ""
grep -q '"field": "byte"' "$TMP/stdout" || fail "info --histogram --json of an I8 tensor: field is not \"byte\""
expect 1 "$DATA/minilm-slice-e5m2.safetensors" "no tensor named" - -- info "$DATA/minilm-slice-e5m2.safetensors" --histogram nope
check "info --histogram of a missing tensor" ""
expect 1 "$DATA/minilm-slice-e5m2.safetensors" "no coded exponent" - -- info "$DATA/minilm-slice-e5m2.safetensors" --histogram encoder.layer.1.attention.self.key.weight_scale_inv
check "info --histogram of an F32 tensor" ""

# A sharded directory, with the CLI.
mkdir "$TMP/ckpt"
cp "$DATA/minilm-slice-e5m2.safetensors" "$TMP/ckpt/model-00001-of-00002.safetensors"
cp "$DATA/minilm-slice-bf16.safetensors" "$TMP/ckpt/model-00002-of-00002.safetensors"
echo '{"metadata": {}, "weight_map": {}}' >"$TMP/ckpt/model.safetensors.index.json"
expect 0 - "" - -- compress "$TMP/ckpt" "$TMP/ckpt.ecf8"
check "compress a directory" ""
expect 0 - "" - -- decompress "$TMP/ckpt.ecf8" "$TMP/ckpt.out"
check "decompress a directory" ""
diff -r "$TMP/ckpt" "$TMP/ckpt.out" >/dev/null || fail "directory round trip differs"
expect 0 - "" - -- verify "$TMP/ckpt.ecf8" "$TMP/ckpt"
check "verify a directory" ""
printf x >>"$TMP/ckpt.out/model-00002-of-00002.safetensors"
expect 1 "$TMP/ckpt.out/model-00002-of-00002.safetensors" "more bytes" - -- verify "$TMP/ckpt.ecf8" "$TMP/ckpt.out"
check "verify a directory with a changed shard" ""

# A directory container whose second shard is corrupt: no output at all,
# with the default engine (OpenCL when a device is present) and the CPU one.
# Two copies of one shard: the last copy of a stored tensor's bytes in the
# container belongs to the second.
mkdir "$TMP/ckpt2"
cp "$DATA/minilm-slice-e5m2.safetensors" "$TMP/ckpt2/a.safetensors"
cp "$DATA/minilm-slice-e5m2.safetensors" "$TMP/ckpt2/b.safetensors"
expect 0 - "" - -- compress "$TMP/ckpt2" "$TMP/ckpt2.ecf8"
check "compress a directory of two shards" ""
python3 - "$TMP/ckpt2.ecf8" "$TMP/ckpt2/b.safetensors" "$TMP/ckpt-bad.ecf8" <<'PY'
import json, struct, sys
img = bytearray(open(sys.argv[1], "rb").read())
src = open(sys.argv[2], "rb").read()
n = struct.unpack_from("<Q", src, 0)[0]
header = json.loads(src[8 : 8 + n])
# a stored tensor of the second shard: its bytes stand verbatim in the container
name = next(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")
a, b = header[name]["data_offsets"]
at = img.rfind(src[8 + n + a : 8 + n + b])
assert at > 0
img[at] ^= 0x40
open(sys.argv[3], "wb").write(img)
PY
for engine in "" "--engine cpu"; do
    # shellcheck disable=SC2086  # engine is one option or nothing
    expect 1 "$TMP/ckpt-bad.ecf8" "checksum mismatch" - -- decompress $engine "$TMP/ckpt-bad.ecf8" "$TMP/ckpt-bad.out"
    check "decompress a directory with a corrupt second shard ${engine:-(default engine)}" ""
    [ -e "$TMP/ckpt-bad.out" ] && fail "a failed directory decompress ${engine:-(default engine)} left $TMP/ckpt-bad.out"
done

# A header of 4 MiB of repetitive metadata: its index compresses beyond
# 1024x, and the file must still be one the reader takes.
python3 - "$DATA/minilm-slice-e4m3.safetensors" "$TMP/bigmeta.safetensors" <<'PY'
import json, struct, sys
src = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<Q", src)[0]
header = json.loads(src[8 : 8 + n])
header["__metadata__"] = {"notes": "a" * (4 << 20)}
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + src[8 + n :])
PY
expect 0 - "" - -- compress "$TMP/bigmeta.safetensors" "$TMP/bigmeta.ecf8"
check "compress a file with 4 MiB of metadata" ""
expect 0 - "" - -- verify "$TMP/bigmeta.ecf8" "$TMP/bigmeta.safetensors"
check "verify a file with 4 MiB of metadata" ""

# The output may not replace the input: the rename at the end would.
cp "$DATA/minilm-slice-e4m3.safetensors" "$TMP/self.safetensors"
expect 1 "$TMP/self.safetensors" "would replace the input" - -- compress "$TMP/self.safetensors" "$TMP/self.safetensors"
check "compress onto its own input" ""
cmp -s "$DATA/minilm-slice-e4m3.safetensors" "$TMP/self.safetensors" || fail "compress onto its own input changed it"
"$ECF8" compress "$TMP/self.safetensors" "$TMP/self.ecf8" || fail "compress self.safetensors"
cp "$TMP/self.ecf8" "$TMP/self-copy.ecf8"
expect 1 "$TMP/self.ecf8" "would replace the input" - -- decompress --engine cpu "$TMP/self.ecf8" "$TMP/self.ecf8"
check "decompress onto its own input" ""
cmp -s "$TMP/self.ecf8" "$TMP/self-copy.ecf8" || fail "decompress onto its own input changed it"

# A directory's other files are named on stderr: they are not in the container.
echo "not a shard" >"$TMP/ckpt2/README.txt"
checks=$((checks + 1))
"$ECF8" compress "$TMP/ckpt2" "$TMP/ckpt3.ecf8" >/dev/null 2>"$TMP/stderr" &&
    grep -q "^ecf8: note: $TMP/ckpt2/README.txt: not in the container" "$TMP/stderr" ||
    fail "compress a directory with a README: no note naming it ($(head -n 1 "$TMP/stderr"))"

expect 0 - "" - -- version
check "version" ""
expect 0 - "" - -- help
check "help" ""

echo "cli_errors: $checks checks, $fails failures"
[ "$fails" = 0 ]
