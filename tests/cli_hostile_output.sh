#!/usr/bin/env bash
# cli_hostile_output.sh ECF8 - the CLI's outputs whatever the environment
# does: outputs that are not regular files (/dev/null, a device node, a
# symbolic link, a FIFO) are refused and left exactly as they were; an
# existing file is replaced only with --force; signals leave no temporary
# (.ecf8-XXXXXX) behind; 250-byte names work; names with control bytes are
# escaped by info (text and JSON) and in error messages; a full disk names
# the output.  Root-only checks (mknod, a tiny tmpfs) skip cleanly without.
set -u

ECF8=${1:?usage: cli_hostile_output.sh PATH/TO/ecf8}
DATA=${ECF8_TEST_DATA:-$(cd "$(dirname "$0")" && pwd)/data}
TMP=$(mktemp -d "${ECF8_BUILD_DIR:-${TMPDIR:-/tmp}}/cli-hostile-XXXXXX")
SMALL=$TMP/small # a tiny tmpfs, when it can be mounted
cleanup() {
    mountpoint -q "$SMALL" 2>/dev/null && umount "$SMALL"
    rm -rf "$TMP"
}
trap cleanup EXIT

checks=0 fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
SRC=$DATA/minilm-slice-e4m3.safetensors

# temporaries DIR... and refused WHAT RC NAMED NEEDLE -- ARGS...
# shellcheck source=refused.sh
. "$(dirname "$0")/refused.sh"

# id PATH: what must not change about PATH (not following a link).
id_of() { stat -c '%d:%i:%F:%s:%Y' "$1"; }

"$ECF8" compress "$SRC" "$TMP/a.ecf8" || { echo "FAIL: compress $SRC"; exit 1; }

# ---- outputs that are not regular files ------------------------------------------
printf precious >"$TMP/target"
ln -s "$TMP/target" "$TMP/link"
ln -s "$TMP/nowhere" "$TMP/dangling"
mkfifo "$TMP/fifo"
mkdir "$TMP/dir"
hostile=("$TMP/link" "$TMP/dangling" "$TMP/fifo" "$TMP/dir" /dev/null /dev/stdout)
if mknod "$TMP/null-node" c 1 3 2>/dev/null; then
    hostile+=("$TMP/null-node")
else
    echo "note: mknod not permitted; device node check covered by /dev/null only"
fi
for out in "${hostile[@]}"; do
    before=$(id_of "$out")
    for force in "" --force; do
        # shellcheck disable=SC2086  # force is one option or nothing
        refused "compress $force onto $out" 1 "$out" "not a regular file" -- compress $force "$SRC" "$out"
        # shellcheck disable=SC2086
        refused "decompress $force onto $out" 1 "$out" "not a regular file" -- decompress --engine cpu $force "$TMP/a.ecf8" "$out"
    done
    [ "$(id_of "$out")" = "$before" ] || fail "$out changed: $before -> $(id_of "$out")"
done
[ -L "$TMP/link" ] && [ -L "$TMP/dangling" ] && [ -L /dev/stdout ] || fail "a symbolic link was replaced"
[ -p "$TMP/fifo" ] || fail "the FIFO was replaced"
[ "$(cat "$TMP/target")" = precious ] || fail "the link's target changed"
[ ! -e "$TMP/nowhere" ] || fail "a dangling link's target was created"
[ -z "$(temporaries "$TMP" /dev)" ] || fail "temporaries left: $(temporaries "$TMP" /dev)"
# "-" is not standard output, and not silently a file called "-".
refused "decompress to -" 2 - "standard output" -- decompress "$TMP/a.ecf8" -
refused "compress to -" 2 - "standard output" -- compress "$SRC" -

# ---- existing outputs: --force --------------------------------------------------------
printf precious >"$TMP/old.ecf8"
refused "compress over a file" 1 "$TMP/old.ecf8" "already exists (use --force to overwrite)" -- compress "$SRC" "$TMP/old.ecf8"
[ "$(cat "$TMP/old.ecf8")" = precious ] || fail "compress without --force changed the existing file"
checks=$((checks + 1))
"$ECF8" compress --force "$SRC" "$TMP/old.ecf8" && "$ECF8" verify "$TMP/old.ecf8" "$SRC" >/dev/null ||
    fail "compress --force did not replace the existing file"
printf precious >"$TMP/old.safetensors"
refused "decompress over a file" 1 "$TMP/old.safetensors" "already exists (use --force to overwrite)" -- decompress "$TMP/a.ecf8" "$TMP/old.safetensors"
[ "$(cat "$TMP/old.safetensors")" = precious ] || fail "decompress without --force changed the existing file"
checks=$((checks + 1))
"$ECF8" decompress -f "$TMP/a.ecf8" "$TMP/old.safetensors" && cmp -s "$SRC" "$TMP/old.safetensors" ||
    fail "decompress -f did not replace the existing file"
# A directory container: every shard is checked before any is written.
mkdir "$TMP/ckpt" "$TMP/ckpt.out"
cp "$DATA/minilm-slice-e5m2.safetensors" "$TMP/ckpt/a.safetensors"
cp "$DATA/minilm-slice-bf16.safetensors" "$TMP/ckpt/b.safetensors"
"$ECF8" compress "$TMP/ckpt" "$TMP/ckpt.ecf8" || fail "compress a directory"
printf precious >"$TMP/ckpt.out/b.safetensors"
refused "decompress a directory over a shard" 1 "$TMP/ckpt.out/b.safetensors" "already exists" -- decompress "$TMP/ckpt.ecf8" "$TMP/ckpt.out"
[ "$(ls -A "$TMP/ckpt.out")" = b.safetensors ] || fail "a refused directory decompress wrote: $(ls -A "$TMP/ckpt.out")"
checks=$((checks + 1))
"$ECF8" decompress --force "$TMP/ckpt.ecf8" "$TMP/ckpt.out" && diff -r "$TMP/ckpt" "$TMP/ckpt.out" >/dev/null ||
    fail "decompress --force of a directory"
rm "$TMP/ckpt.out/a.safetensors" && ln -s "$TMP/target" "$TMP/ckpt.out/a.safetensors"
refused "decompress a directory over a planted link" 1 "$TMP/ckpt.out/a.safetensors" "not a regular file" -- decompress --force "$TMP/ckpt.ecf8" "$TMP/ckpt.out"
[ -L "$TMP/ckpt.out/a.safetensors" ] && [ "$(cat "$TMP/target")" = precious ] || fail "a planted link was followed or replaced"
refused "decompress a directory onto a file" 1 "$TMP/target" "not a directory" -- decompress "$TMP/ckpt.ecf8" "$TMP/target"

# ---- names ---------------------------------------------------------------------------
refused "compress an empty input name" 2 - "empty file name" -- compress "" "$TMP/x.ecf8"
refused "compress to an empty name" 2 - "empty file name" -- compress "$SRC" ""
refused "decompress to an empty name" 2 - "empty file name" -- decompress "$TMP/a.ecf8" ""
refused "info of an empty name" 2 - "empty file name" -- info ""
for len in 250 255; do
    long=$(printf "%${len}s" "" | tr ' ' n)
    checks=$((checks + 1))
    "$ECF8" compress "$SRC" "$TMP/$long" && "$ECF8" decompress "$TMP/$long" "$TMP/$long.st" 2>/dev/null
    # NAME.st is 258 bytes for 255: that one must fail, cleanly.
    if [ "$len" = 250 ]; then
        cmp -s "$SRC" "$TMP/$long.st" || fail "a $len-byte output name"
    fi
    "$ECF8" verify "$TMP/$long" "$SRC" >/dev/null || fail "compress to a $len-byte name"
    rm -f "$TMP/$long" "$TMP/$long.st" 2>/dev/null
done
[ -z "$(temporaries "$TMP")" ] || fail "temporaries left after long names: $(temporaries "$TMP")"

# Control bytes and bytes that are not UTF-8 in tensor names and file names.
python3 - "$SRC" "$TMP/evil.safetensors" <<'PY' || fail "building evil.safetensors"
import json, struct, sys
src = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<Q", src)[0]
header = json.loads(src[8 : 8 + n])
# (a header that is not UTF-8 is refused: only file names can hold such bytes)
renames = iter(['esc\x1b[31mred\x1b]0;title\x07', 'csi\u009b2J'])
out = {}
for k, v in header.items():
    if k != "__metadata__" and v["dtype"] == "F8_E4M3":
        k = next(renames, k)
    out[k] = v
text = json.dumps(out).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + src[8 + n :])
PY
raw_controls() { LC_ALL=C grep -c $'[\x01-\x08\x0b-\x1f\x7f]\|\xc2[\x80-\x9f]' "$1"; }
evil=$TMP/$'evil\e[2J\a\xff.safetensors'
cp "$TMP/evil.safetensors" "$evil"
checks=$((checks + 1))
if "$ECF8" info "$evil" >"$TMP/info.txt" 2>"$TMP/stderr"; then
    [ "$(raw_controls "$TMP/info.txt")" = 0 ] || fail "info prints raw control bytes"
    grep -qF 'esc\x1b[31mred\x1b]0;title\x07' "$TMP/info.txt" || fail "info: ESC not shown as \\x1b: $(grep esc "$TMP/info.txt")"
    grep -qF 'csi\xc2\x9b2J' "$TMP/info.txt" || fail "info: a C1 control not escaped"
    grep -qF 'evil\x1b[2J\x07\xff.safetensors' "$TMP/info.txt" || fail "info: the file name not escaped"
else
    fail "info of a file with hostile names: $(head -n 1 "$TMP/stderr")"
fi
checks=$((checks + 1))
if "$ECF8" info "$evil" --json >"$TMP/info.json" 2>"$TMP/stderr"; then
    python3 -m json.tool "$TMP/info.json" >/dev/null || fail "info --json is not valid JSON"
    python3 - "$TMP/info.json" <<'PY' || fail "info --json: names not as documented"
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))  # strict UTF-8
names = {t["name"] for t in d["tensors"]}
assert 'esc\x1b[31mred\x1b]0;title\x07' in names and 'csi\u009b2J' in names, names
assert d["file"].endswith("evil\x1b[2J\x07\ufffd.safetensors"), d["file"]
PY
    [ "$(raw_controls "$TMP/info.json")" = 0 ] || fail "info --json holds raw control bytes"
else
    fail "info --json of a file with hostile names: $(head -n 1 "$TMP/stderr")"
fi
refused "histogram of a hostile missing name" 1 "$TMP/evil\\x1b[2J\\x07\\xff.safetensors" "no tensor named 'x\\x1bq'" -- info "$evil" --histogram $'x\eq'
refused "compress a missing file with a hostile name" 1 "$TMP/missing\\x1b]0;t\\x07" "No such file" -- compress "$TMP/"$'missing\e]0;t\a' "$TMP/m.ecf8"
[ "$(raw_controls "$TMP/stderr")" = 0 ] || fail "an error message holds raw control bytes"

# ---- full disk: the output is named ---------------------------------------------------
mkdir "$SMALL"
if mount -t tmpfs -o size=1M tmpfs "$SMALL" 2>/dev/null; then
    refused "compress onto a full disk" 1 "$SMALL/full.ecf8" "No space left" -- compress "$SRC" "$SMALL/full.ecf8"
    # decompress knows its output's size: it refuses before writing.
    refused "decompress onto a full disk" 1 "$SMALL/full.safetensors" "bytes free" -- decompress --engine cpu "$TMP/a.ecf8" "$SMALL/full.safetensors"
    [ -z "$(ls -A "$SMALL")" ] || fail "a full disk kept: $(ls -A "$SMALL")"
    umount "$SMALL"
else
    echo "note: cannot mount a tmpfs (not root?); full-disk check skipped"
fi

# ---- signals -------------------------------------------------------------------------
# A ~100 MB checkpoint: four shards of the E4M3 slice's tensors twelve times over.
mkdir "$TMP/big"
python3 - "$SRC" "$TMP/big" <<'PY' || fail "building the big checkpoint"
import json, struct, sys
src = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<Q", src)[0]
header = json.loads(src[8 : 8 + n])
data = src[8 + n :]
tensors = [(k, v) for k, v in header.items() if k != "__metadata__"]
for shard in range(4):
    out, body = {}, []
    at = 0
    for r in range(12):
        for k, v in tensors:
            a, b = v["data_offsets"]
            out["rep%d.%s" % (r, k)] = dict(v, data_offsets=[at, at + b - a])
            body.append(data[a:b])
            at += b - a
    text = json.dumps(out).encode()
    text += b" " * (-len(text) % 8)
    with open("%s/model-%05d-of-00004.safetensors" % (sys.argv[2], shard + 1), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(body))
PY
"$ECF8" compress --threads 2 "$TMP/big" "$TMP/big.ecf8" || fail "compress the big checkpoint"

# On a terminal (script(1) gives one) the progress bar shows the rate and an
# ETA, and is erased before the command's own line.
if command -v script >/dev/null; then
    script -qec "'$ECF8' verify --threads 1 '$TMP/big.ecf8'" /dev/null >"$TMP/tty.txt" 2>&1 </dev/null ||
        fail "verify on a terminal: $(tail -c 200 "$TMP/tty.txt")"
    grep -aq 'verifying \[#*.*\] *[0-9]*%  [0-9.]* MB/s  ETA [0-9]*:[0-9][0-9]:[0-9][0-9]' "$TMP/tty.txt" ||
        fail "progress bar without rate and ETA: $(tr '\r' '\n' <"$TMP/tty.txt" | head -n 3)"
    tr '\r' '\n' <"$TMP/tty.txt" | grep -aq "^$TMP/big.ecf8: OK" ||
        fail "progress bar not erased before the result line"
fi

# interrupt SIG WATCH OUT -- ARGS...: runs ecf8 ARGS, sends SIG as soon as a
# temporary appears in WATCH (or in OUT, an output directory), and checks the
# exit status (128 + SIG, or 1), that no temporary is left in either and that
# OUT does not exist.
interrupt() {
    local sig=$1 watch=$2 out=$3
    shift 4
    interrupted "$sig" "temps('$watch') or temps('$out')" -- "$@"
    [ -z "$(temporaries "$watch" "$out")" ] || fail "$sig during ecf8 $*: temporaries left: $(temporaries "$watch" "$out")"
    [ ! -e "$out" ] || fail "$sig during ecf8 $*: $out left behind"
}
for sig in INT TERM HUP; do
    interrupt "$sig" "$TMP" "$TMP/sig.ecf8" -- compress --threads 1 "$TMP/big" "$TMP/sig.ecf8"
    interrupt "$sig" "$TMP" "$TMP/sig.out" -- decompress --engine cpu --threads 1 "$TMP/big.ecf8" "$TMP/sig.out"
done
interrupt TERM "$TMP" "$TMP/sig.safetensors" -- decompress --engine cpu --threads 1 "$TMP/big.ecf8" "$TMP/sig.safetensors"
# SIGPIPE: a reader that stops early ends ecf8 quietly (0, or 141 for the signal).
checks=$((checks + 1))
"$ECF8" info "$TMP/big/model-00001-of-00004.safetensors" 2>"$TMP/stderr" | head -n 1 >/dev/null
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || [ "$rc" = 141 ] || fail "info | head -1: exit status $rc"
[ ! -s "$TMP/stderr" ] || fail "info | head -1: stderr $(head -n 1 "$TMP/stderr")"

echo "cli_hostile_output: $checks checks, $fails failures"
[ "$fails" = 0 ]
