#!/usr/bin/env bash
# cli_shards.sh ECF8 - checkpoint directories the way they are published:
# `ecf8 compress DIR OUTDIR/` writes one container per shard plus the other
# files verbatim, `decompress OUTDIR/ DIR2` rebuilds DIR byte for byte,
# `verify OUTDIR/ [DIR]` checks it; --include/--exclude pick the files;
# a bad shard index, a missing or stray shard, an output that exists, a
# file over --max-file-size and a signal all end with one "ecf8: PATH: ..."
# line and nothing partial left (no output directory, no .ecf8-XXXXXX).
set -u

ECF8=${1:?usage: cli_shards.sh PATH/TO/ecf8}
DATA=${ECF8_TEST_DATA:-$(cd "$(dirname "$0")" && pwd)/data}
TMP=$(mktemp -d "${ECF8_BUILD_DIR:-${TMPDIR:-/tmp}}/cli-shards-XXXXXX")
trap 'rm -rf "$TMP"' EXIT

checks=0 fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# temporaries DIR... and refused WHAT RC NAMED NEEDLE -- ARGS...
# shellcheck source=refused.sh
. "$(dirname "$0")/refused.sh"

# refused_clean WHAT RC NAMED NEEDLE OUT -- ARGS...: refused, and no OUT
# (unless "-") and no temporaries in $TMP are left.
refused_clean() {
    local what=$1 rc=$2 named=$3 needle=$4 out=$5 before=$fails
    shift 6
    refused "$what" "$rc" "$named" "$needle" -- "$@"
    [ "$fails" = "$before" ] || return
    if [ "$out" != - ] && [ -e "$out" ]; then
        fail "$what: $out left behind"
    elif [ -n "$(temporaries "$TMP" "$TMP/cases")" ]; then
        fail "$what: temporaries left: $(temporaries "$TMP" "$TMP/cases")"
    fi
}

# ok WHAT -- ARGS...: ecf8 ARGS succeeds with nothing on stderr.
ok() {
    local what=$1
    shift 2
    checks=$((checks + 1))
    "$ECF8" "$@" >"$TMP/stdout" 2>"$TMP/stderr" </dev/null || { fail "$what: exit status $? ($(head -n 1 "$TMP/stderr"))"; return 1; }
    [ ! -s "$TMP/stderr" ] || fail "$what: stderr: $(head -n 1 "$TMP/stderr")"
}

# listing DIR: its files and directories, relative, sorted, one line.
listing() { (cd "$1" && find . -mindepth 1 | sort | tr '\n' ' '); }

# same WHAT A B: directories A and B hold the same files, byte for byte.
same() {
    checks=$((checks + 1))
    diff -r "$2" "$3" >"$TMP/diff" 2>&1 || fail "$1: $(head -n 3 "$TMP/diff" | tr '\n' '|')"
}

# make_checkpoint DIR REPEAT [SUBDIR]: a checkpoint as published, built
# from the real slices of tests/data: three shards (E4M3, BF16, E5M2; each
# tensor REPEAT times, renamed per shard), model.safetensors.index.json,
# config and tokenizer files, original/params.json and a duplicate
# consolidated.safetensors; the weights in DIR/SUBDIR when given.
make_checkpoint() {
    python3 - "$DATA" "$@" <<'PY'
import json, os, struct, sys
data_dir, out, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
sub = sys.argv[4] if len(sys.argv) > 4 else ""
wdir = os.path.join(out, sub)
os.makedirs(os.path.join(out, "original"), exist_ok=True)
os.makedirs(wdir, exist_ok=True)
weight_map = {}
for i, name in enumerate(["e4m3", "bf16", "e5m2"]):
    src = open("%s/minilm-slice-%s.safetensors" % (data_dir, name), "rb").read()
    n = struct.unpack_from("<Q", src)[0]
    header = json.loads(src[8 : 8 + n])
    body, hdr, at = [], {}, 0
    shard = "model-%05d-of-00003.safetensors" % (i + 1)
    for r in range(repeat):
        for k, v in header.items():
            if k == "__metadata__":
                continue
            a, b = v["data_offsets"]
            key = "layers.%d.%d.%s" % (i, r, k)
            hdr[key] = dict(v, data_offsets=[at, at + b - a])
            body.append(src[8 + n + a : 8 + n + b])
            at += b - a
            weight_map[key] = shard
    text = json.dumps(hdr).encode()
    text += b" " * (-len(text) % 8)
    blob = struct.pack("<Q", len(text)) + text + b"".join(body)
    open(os.path.join(wdir, shard), "wb").write(blob)
    if i == 1:
        open(os.path.join(out, "consolidated.safetensors"), "wb").write(blob)
index = {"metadata": {"total_size": sum(len(v) for v in weight_map)}, "weight_map": weight_map}
open(os.path.join(wdir, "model.safetensors.index.json"), "w").write(json.dumps(index, indent=2) + "\n")
open(os.path.join(out, "config.json"), "w").write('{"architectures": ["BertModel"]}\n')
open(os.path.join(out, "tokenizer.json"), "w").write('{"version": "1.0"}\n')
open(os.path.join(out, "generation_config.json"), "w").write("{}\n")
open(os.path.join(out, "original", "params.json"), "w").write('{"dim": 384}\n')
PY
}

CK=$TMP/ck
make_checkpoint "$CK" 1 || { echo "FAIL: building the checkpoint"; exit 1; }
mkdir "$TMP/cases"

# ---- round trip ------------------------------------------------------------------------
ok "compress a checkpoint" -- compress "$CK" "$TMP/out/"
want="./config.json ./consolidated.ecf8 ./generation_config.json ./model-00001-of-00003.ecf8 ./model-00002-of-00003.ecf8 ./model-00003-of-00003.ecf8 ./model.safetensors.index.json ./original ./original/params.json ./tokenizer.json "
checks=$((checks + 1))
[ "$(listing "$TMP/out")" = "$want" ] || fail "compressed directory: $(listing "$TMP/out")"
for f in config.json model.safetensors.index.json original/params.json; do
    checks=$((checks + 1))
    cmp -s "$CK/$f" "$TMP/out/$f" || fail "$f not copied verbatim"
done
checks=$((checks + 1))
[ "$(stat -c %a "$TMP/out")" = "$(stat -c %a "$CK")" ] || fail "output directory mode $(stat -c %a "$TMP/out")"
for i in 1 2 3; do
    s=model-0000$i-of-00003
    ok "shard $i alone" -- verify "$TMP/out/$s.ecf8" "$CK/$s.safetensors"
done
ok "decompress the directory" -- decompress "$TMP/out" "$TMP/back"
same "decompress rebuilds the checkpoint" "$CK" "$TMP/back"
ok "verify against the original" -- verify "$TMP/out/" "$CK"
checks=$((checks + 1))
[ "$(cat "$TMP/stdout")" = "$TMP/out/: OK (identical to the original)" ] || fail "verify said: $(cat "$TMP/stdout")"
ok "verify alone" -- verify "$TMP/out"
# The shards are compressed with --threads; the containers do not depend on it.
ok "compress --threads 1" -- compress --threads 1 "$CK" "$TMP/out1/"
ok "compress --threads 2" -- compress --threads 2 "$CK" "$TMP/out2/"
same "containers independent of --threads" "$TMP/out1" "$TMP/out2"
same "containers independent of --threads" "$TMP/out" "$TMP/out2"
rm -rf "$TMP/out1" "$TMP/out2" "$TMP/back"
# A checkpoint with its weights in a subdirectory (diffusers: transformer/).
make_checkpoint "$TMP/ck-sub" 1 transformer
ok "compress weights in a subdirectory" -- compress "$TMP/ck-sub" "$TMP/out-sub/"
ok "decompress weights in a subdirectory" -- decompress "$TMP/out-sub/" "$TMP/back-sub/"
same "weights in a subdirectory" "$TMP/ck-sub" "$TMP/back-sub"
checks=$((checks + 1))
[ -f "$TMP/out-sub/transformer/model-00002-of-00003.ecf8" ] || fail "transformer/ shard: $(listing "$TMP/out-sub")"
rm -rf "$TMP/ck-sub" "$TMP/out-sub" "$TMP/back-sub"

# A Hugging Face cache snapshot: every file a symbolic link to a blob.
mkdir -p "$TMP/snapshot/original"
(cd "$CK" && find . -type f) | while read -r f; do ln -s "$CK/$f" "$TMP/snapshot/$f"; done
ok "compress a snapshot of links" -- compress "$TMP/snapshot" "$TMP/out-links/"
same "links are followed" "$TMP/out" "$TMP/out-links"
rm -rf "$TMP/snapshot" "$TMP/out-links"

# ---- --include / --exclude ---------------------------------------------------------------
ok "exclude original/ and the duplicate" -- compress "$CK" "$TMP/ex/" --exclude original --exclude consolidated.safetensors
checks=$((checks + 1))
[ "$(listing "$TMP/ex")" = "./config.json ./generation_config.json ./model-00001-of-00003.ecf8 ./model-00002-of-00003.ecf8 ./model-00003-of-00003.ecf8 ./model.safetensors.index.json ./tokenizer.json " ] ||
    fail "--exclude: $(listing "$TMP/ex")"
ok "decompress the excluded" -- decompress "$TMP/ex" "$TMP/ex-back"
checks=$((checks + 1))
diff -r "$CK" "$TMP/ex-back" | sort >"$TMP/diff"
[ "$(cat "$TMP/diff")" = "Only in $CK: consolidated.safetensors
Only in $CK: original" ] || fail "--exclude round trip: $(tr '\n' '|' <"$TMP/diff")"
ok "verify the excluded" -- verify "$TMP/ex" "$CK"
rm -rf "$TMP/ex" "$TMP/ex-back"
ok "exclude 'original/*'" -- compress "$CK" "$TMP/ex/" --exclude 'original/*' --exclude '*.json'
checks=$((checks + 1))
[ "$(listing "$TMP/ex")" = "./consolidated.ecf8 ./model-00001-of-00003.ecf8 ./model-00002-of-00003.ecf8 ./model-00003-of-00003.ecf8 " ] ||
    fail "--exclude 'original/*' '*.json': $(listing "$TMP/ex")"
rm -rf "$TMP/ex"
ok "include" -- compress "$CK" "$TMP/in/" --include 'model*' --include config.json --exclude '*-00002-*' --exclude '*.index.json'
checks=$((checks + 1))
[ "$(listing "$TMP/in")" = "./config.json ./model-00001-of-00003.ecf8 ./model-00003-of-00003.ecf8 " ] ||
    fail "--include: $(listing "$TMP/in")"
rm -rf "$TMP/in"
refused_clean "exclude a shard the index names" 1 "$CK/model.safetensors.index.json" \
    "names $CK/model-00002-of-00003.safetensors, which --include/--exclude leave out" "$TMP/x" -- \
    compress "$CK" "$TMP/x/" --exclude 'model-00002*'
refused_clean "exclude everything" 1 "$CK" "no files left by --include/--exclude" "$TMP/x" -- compress "$CK" "$TMP/x/" --exclude '*'
refused_clean "--exclude for one file" 2 - "--exclude needs a directory" "$TMP/x.ecf8" -- \
    compress "$CK/model-00001-of-00003.safetensors" "$TMP/x.ecf8" --exclude original
refused_clean "--max-file-size 0" 2 - "bad --max-file-size '0'" "$TMP/x" -- compress "$CK" "$TMP/x/" --max-file-size 0

# ---- bad checkpoints --------------------------------------------------------------------
# case NAME: a fresh copy of the checkpoint at $TMP/cases/NAME.
case_dir() { rm -rf "$TMP/cases/$1" && cp -r "$CK" "$TMP/cases/$1" && echo "$TMP/cases/$1"; }
X=$TMP/cases/x
d=$(case_dir missing) && rm "$d/model-00003-of-00003.safetensors"
refused_clean "index names a missing shard" 1 "$d/model.safetensors.index.json" \
    "names $d/model-00003-of-00003.safetensors, which is missing" "$X" -- compress "$d/" "$X/"
d=$(case_dir stray) && cp "$CK/model-00001-of-00003.safetensors" "$d/model-00004-of-00003.safetensors"
refused_clean "a shard the index does not name" 1 "$d/model-00004-of-00003.safetensors" \
    "a shard that $d/model.safetensors.index.json does not name" "$X" -- compress "$d" "$X/"
d=$(case_dir two-of-three) && rm "$d/model-00003-of-00003.safetensors"
python3 - "$d/model.safetensors.index.json" <<'PY'
import json, sys
index = json.load(open(sys.argv[1]))
index["weight_map"] = {k: v for k, v in index["weight_map"].items() if "00003-of" not in v}
json.dump(index, open(sys.argv[1], "w"))
PY
refused_clean "index names 2 of 3 shards" 1 "$d/model.safetensors.index.json" \
    "names 2 of the 3 shards model-*-of-00003.safetensors" "$X" -- compress "$d" "$X/"
for bad in '{"weight_map": ' '[1, 2]' '{"metadata": {}}' '{"weight_map": {"a": 3}}' \
    '{"weight_map": {"a": "../model-00001-of-00003.safetensors"}}' '{"weight_map": {"a": "config.json"}}' \
    '{"weight_map": {"a": "/model-00001-of-00003.safetensors"}}' '{"weight_map": {"a": "./model-00001-of-00003.safetensors"}}'; do
    d=$(case_dir malformed) && printf '%s' "$bad" >"$d/model.safetensors.index.json"
    refused_clean "malformed index $bad" 1 "$d/model.safetensors.index.json" "malformed shard index" "$X" -- compress "$d" "$X/"
done
d=$(case_dir ecf8-inside) && printf x >"$d/notes.ecf8"
refused_clean "a *.ecf8 file in a checkpoint" 1 "$d/notes.ecf8" "a *.ecf8 file in a checkpoint" "$X" -- compress "$d" "$X/"
d=$(case_dir fifo) && mkfifo "$d/pipe"
refused_clean "a FIFO in a checkpoint" 1 "$d/pipe" "not a regular file" "$X" -- compress "$d" "$X/"
ok "a FIFO excluded" -- compress "$d" "$X/" --exclude pipe
rm -rf "$X"
d=$(case_dir dangling) && ln -s "$TMP/nowhere" "$d/weights.bin"
refused_clean "a dangling link in a checkpoint" 1 "$d/weights.bin" "No such file" "$X" -- compress "$d" "$X/"
refused_clean "decompress: input not a directory" 1 "$CK/config.json" "bad magic" "$X" -- decompress "$CK/config.json" "$X/"
refused_clean "--max-file-size under a container" 1 "$CK/model-00001-of-00003.safetensors" \
    "its container would be" "$X" -- compress "$CK" "$X/" --max-file-size 1000000
refused_clean "--max-file-size under a copied file" 1 "$CK/model.safetensors.index.json" \
    "bytes, over the limit of 100 bytes per file" "$X" -- compress "$CK" "$X/" --max-file-size 100
ok "--max-file-size that fits" -- compress "$CK" "$X/" --max-file-size 2000000 --exclude original
rm -rf "$X"

# ---- outputs -----------------------------------------------------------------------------
mkdir "$TMP/exists" && printf precious >"$TMP/exists/keep"
refused_clean "output directory exists" 1 "$TMP/exists" "already exists (use --force to overwrite)" - -- compress "$CK" "$TMP/exists/"
refused_clean "output directory exists, no slash" 1 "$TMP/exists" "already exists (use --force to overwrite)" - -- compress "$CK" "$TMP/exists"
# (A build without OpenCL refuses --engine opencl before looking at paths.)
if ! "$ECF8" devices 2>&1 | grep -q "no OpenCL support"; then
    refused_clean "decompress of a directory with --engine opencl" 2 - "is decoded on the CPU" "$X" -- \
        decompress --engine opencl "$TMP/out" "$X"
fi
refused_clean "decompress onto an existing directory" 1 "$TMP/exists" "already exists (use --force to overwrite)" - -- decompress "$TMP/out" "$TMP/exists"
checks=$((checks + 1))
[ "$(ls -A "$TMP/exists")" = keep ] && [ "$(cat "$TMP/exists/keep")" = precious ] || fail "a refused output changed: $(ls -A "$TMP/exists")"
ok "compress --force replaces it" -- compress --force "$CK" "$TMP/exists/"
same "compress --force" "$TMP/out" "$TMP/exists"
ok "decompress --force replaces it" -- decompress -f "$TMP/out" "$TMP/exists"
same "decompress --force" "$CK" "$TMP/exists"
printf x >"$TMP/file"
ln -s "$TMP/exists" "$TMP/link"
refused_clean "output is a file" 1 "$TMP/file" "not a directory" - -- compress --force "$CK" "$TMP/file/"
refused_clean "output is a link to a directory" 1 "$TMP/link" "a symbolic link" - -- compress --force "$CK" "$TMP/link/"
checks=$((checks + 1))
[ -L "$TMP/link" ] && [ "$(cat "$TMP/file")" = x ] || fail "a refused output was replaced"
refused_clean "output inside the input" 1 "$CK/sub" "inside the input directory" "$CK/sub" -- compress "$CK" "$CK/sub/"
refused_clean "output is the input" 1 "$CK" "the output would replace the input" - -- compress --force "$CK" "$CK/"
refused_clean "output holds the input" 1 "$TMP" "the output would replace the input" - -- compress --force "$CK" "$TMP"
checks=$((checks + 1))
[ -f "$CK/model-00001-of-00003.safetensors" ] || fail "the input was touched"
refused_clean "output ." 1 . "not a name a directory can be renamed to" - -- compress --force "$CK" .
refused_clean "output .." 1 "$TMP/exists/.." "not a name a directory can be renamed to" - -- compress --force "$CK" "$TMP/exists/../"
refused_clean "output /" 1 / "not a name a directory can be renamed to" - -- compress --force "$CK" /
refused_clean "no parent directory" 1 "$TMP/none/out" "cannot create output" "$TMP/none" -- compress "$CK" "$TMP/none/out/"

# ---- bad compressed directories ------------------------------------------------------------
case_out() { rm -rf "$TMP/cases/$1" && cp -r "$TMP/out" "$TMP/cases/$1" && echo "$TMP/cases/$1"; }
d=$(case_out no-container) && rm "$d/model-00002-of-00003.ecf8"
refused_clean "decompress: a container missing" 1 "$d/model.safetensors.index.json" \
    "names $d/model-00002-of-00003.ecf8, which is missing" "$X" -- decompress "$d" "$X"
refused_clean "verify: a container missing" 1 "$d/model.safetensors.index.json" "which is missing" - -- verify "$d" "$CK"
d=$(case_out stray-container) && cp "$d/model-00001-of-00003.ecf8" "$d/model-00009-of-00009.ecf8"
refused_clean "decompress: a stray container" 1 "$d/model-00009-of-00009.ecf8" "does not name" "$X" -- decompress "$d" "$X"
d=$(case_out truncated) && truncate -s 100000 "$d/model-00003-of-00003.ecf8"
refused_clean "decompress: a truncated container" 1 "$d/model-00003-of-00003.ecf8" "truncated" "$X" -- decompress "$d" "$X"
refused_clean "verify: a truncated container" 1 "$d/model-00003-of-00003.ecf8" "truncated" - -- verify "$d"
d=$(case_out both-names) && cp "$CK/config.json" "$d/model-00001-of-00003.safetensors"
refused_clean "decompress: a shard next to its container" 1 "$d/model-00001-of-00003.ecf8 and $d/model-00001-of-00003.safetensors" "both would be written as model-00001-of-00003.safetensors" "$X" -- decompress "$d" "$X"
"$ECF8" compress "$CK" "$TMP/whole.ecf8" 2>/dev/null
d=$(case_out whole) && cp "$TMP/whole.ecf8" "$d/consolidated.ecf8"
refused_clean "decompress: a directory container inside" 1 "$d/consolidated.ecf8" "a container of a whole directory" "$X" -- decompress "$d" "$X"
d=$(case_dir changed) && printf '{}\n' >"$d/config.json"
refused_clean "verify against a changed original" 1 "$d/config.json" "differs from $TMP/out/config.json" - -- verify "$TMP/out" "$d"
d=$(case_dir changed) && cp "$CK/model-00001-of-00003.safetensors" "$d/model-00002-of-00003.safetensors"
refused_clean "verify against a changed shard" 1 "$d/model-00002-of-00003.safetensors" "differs from the original" - -- verify "$TMP/out" "$d"
rm -rf "$TMP/cases"/*

# ---- signals: nothing partial ---------------------------------------------------------------
# A larger checkpoint (~150 MB), its weights in a subdirectory, so that the
# staged tree holds directories when the signal comes.
make_checkpoint "$TMP/big" 24 transformer
"$ECF8" compress "$TMP/big" "$TMP/big.out/" || fail "compress the big checkpoint"

# interrupt SIG OUT -- ARGS...: runs ecf8 ARGS, sends SIG once the staged
# directory beside OUT holds a finished file under original/ (the shards in
# transformer/ come after it), and checks
# the exit status (128 + SIG, or 1), that no temporary is left and that
# OUT is as before (absent, or the same listing).
interrupt() {
    local sig=$1 out=$2 before
    shift 3
    before=$([ -e "$out" ] && listing "$out")
    interrupted "$sig" "[n for n in inside('$(dirname "$out")', 'original') if n[0] != '.']" -- "$@"
    [ -z "$(temporaries "$(dirname "$out")")" ] || fail "$sig during ecf8 $*: temporaries left: $(temporaries "$(dirname "$out")")"
    [ "$([ -e "$out" ] && listing "$out")" = "$before" ] || fail "$sig during ecf8 $*: $out changed: $(listing "$out")"
}
for sig in INT TERM; do
    interrupt "$sig" "$TMP/sig.out" -- compress --threads 1 "$TMP/big" "$TMP/sig.out/"
    interrupt "$sig" "$TMP/sig.back" -- decompress --threads 1 "$TMP/big.out" "$TMP/sig.back"
done
mkdir "$TMP/old" && printf precious >"$TMP/old/keep"
interrupt HUP "$TMP/old" -- compress --threads 1 --force "$TMP/big" "$TMP/old/"
checks=$((checks + 1))
[ "$(cat "$TMP/old/keep")" = precious ] || fail "an interrupted --force changed the old directory"

echo "cli_shards: $checks checks, $fails failures"
[ "$fails" = 0 ]
