#!/usr/bin/env bash
# cli_hostile_input.sh ECF8 - inputs that change, block or expand: the ecf8
# CLI ends each with its result or one clean error, never a crash, a hang or
# a container made from bytes that were not there.
#
#   - an input rewritten by another process during compress: every run exits
#     0 with a container that verifies, or 1 with "input changed";
#   - FIFOs given to info, decompress, verify and compress (alone and inside
#     an input directory): "not a regular file" within seconds;
#   - expansion bombs: a container of one constant 3 GiB tensor (info reads
#     its index in little memory), one of 16 TiB (decompress refuses before
#     writing), 1.3 M empty tensors in a few KB, 4096 sources sharing one
#     1 MiB header;
#   - a .ecf8 given to compress, a directory whose shards are in
#     subdirectories, and a checkpoint with nothing to code (the one
#     warning a success prints).
# Deterministic races (a file shrinking between stat and read, elements
# changing between the encoder's passes) are in test_hostile_input.c.
set -u

ECF8=${1:?usage: cli_hostile_input.sh PATH/TO/ecf8}
DATA=${ECF8_TEST_DATA:-$(cd "$(dirname "$0")" && pwd)/data}
TMP=$(mktemp -d "${ECF8_BUILD_DIR:-${TMPDIR:-/tmp}}/cli-hostile-XXXXXX")
writer_pid=""
cleanup() {
    [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

checks=0 fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# run NAME ARGS...: ecf8 ARGS under `timeout $limit` (10 s: what must end
# at once, like a read of a FIFO); sets $rc, $err (stderr) and $out
# (stdout).  A hang or a signal fails the check NAME.
limit=10
run() {
    local name=$1
    shift
    checks=$((checks + 1))
    timeout "$limit" "$ECF8" "$@" >"$TMP/stdout" 2>"$TMP/stderr" </dev/null
    rc=$?
    err=$(cat "$TMP/stderr")
    out=$(cat "$TMP/stdout")
    if [ "$rc" = 124 ]; then
        fail "$name: still running after $limit s"
    elif [ "$rc" -ge 128 ]; then
        fail "$name: killed by signal $((rc - 128)): $err"
    fi
}

# fails_with NAME FILE NEEDLE ARGS...: exit 1, one stderr line
# "ecf8: FILE...: ..." holding NEEDLE.
fails_with() {
    local name=$1 file=$2 needle=$3
    shift 3
    run "$name" "$@"
    [ "$rc" -ge 124 ] && return
    if [ "$rc" != 1 ]; then
        fail "$name: exit $rc, want 1 (stderr: $err)"
    elif [ "$(wc -l <"$TMP/stderr")" != 1 ] || [ "${err#"ecf8: $file"}" = "$err" ] ||
        [ "${err#*"$needle"}" = "$err" ]; then
        fail "$name: stderr '$err', want one line 'ecf8: $file...' holding '$needle'"
    fi
}

# ---- an input rewritten during compress ------------------------------------
# 48 MB of real FP8 tensors (the slice repeated under new names).
python3 - "$DATA/minilm-slice-e4m3.safetensors" "$TMP/big.safetensors" 22 <<'PY'
import json, struct, sys
src = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<Q", src)[0]
h = json.loads(src[8:8 + n]); h.pop("__metadata__", None)
out, parts, pos = {}, [], 0
for c in range(int(sys.argv[3])):
    for k, v in sorted(h.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        a, b = v["data_offsets"]
        out[f"copy{c}.{k}"] = dict(v, data_offsets=[pos, pos + b - a])
        parts.append(src[8 + n + a:8 + n + b]); pos += b - a
text = json.dumps(out).encode(); text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + b"".join(parts))
PY
# The writer rewrites random 4 KB pieces of the tensor data in bursts, so
# that some runs read the file while it is changing and some between bursts.
python3 - "$TMP/big.safetensors" <<'PY' &
import os, random, struct, sys, time
path = sys.argv[1]
start = 8 + struct.unpack("<Q", open(path, "rb").read(8))[0]
size = os.path.getsize(path)
with open(path, "r+b", buffering=0) as f:
    while True:
        end = time.time() + random.uniform(0.05, 0.3)
        while time.time() < end:
            f.seek(random.randrange(start, size - 4096))
            f.write(os.urandom(4096))
        time.sleep(random.uniform(0.05, 0.3))
PY
writer_pid=$!
changed=0 whole=0
limit=120 # a 48 MB compress, under ASan on a busy machine
for i in 1 2 3 4; do
    run "compress during rewrites ($i)" compress "$TMP/big.safetensors" "$TMP/big.ecf8" --threads 2
    if [ "$rc" = 0 ]; then
        whole=$((whole + 1))
        run "verify the container made during rewrites ($i)" verify "$TMP/big.ecf8"
        [ "$rc" = 0 ] || fail "compress during rewrites ($i) exited 0 with a container that fails verify: $err"
    elif [ "$rc" = 1 ]; then
        changed=$((changed + 1))
        case "$err" in
            "ecf8: $TMP/big.safetensors: input changed"*) ;;
            *) fail "compress during rewrites ($i): '$err', want 'ecf8: FILE: input changed ...'" ;;
        esac
    elif [ "$rc" -lt 124 ]; then
        fail "compress during rewrites ($i): exit $rc ($err)"
    fi
    rm -f "$TMP/big.ecf8"
done
kill "$writer_pid"
wait "$writer_pid" 2>/dev/null
writer_pid=""
limit=10
echo "compress during rewrites: $whole whole, $changed refused as changed"
ls "$TMP" | grep -q '\.tmp\.' && fail "temporaries left by compress during rewrites"
rm -f "$TMP/big.safetensors"

# ---- FIFOs --------------------------------------------------------------------
"$ECF8" compress "$DATA/minilm-slice-e5m2.safetensors" "$TMP/good.ecf8" || fail "compress the slice"
mkfifo "$TMP/pipe.safetensors" "$TMP/pipe.ecf8"
fails_with "info of a FIFO" "$TMP/pipe.safetensors" "not a regular file" info "$TMP/pipe.safetensors"
fails_with "info of a FIFO named .ecf8" "$TMP/pipe.ecf8" "not a regular file" info "$TMP/pipe.ecf8"
fails_with "decompress of a FIFO" "$TMP/pipe.ecf8" "not a regular file" \
    decompress --engine cpu "$TMP/pipe.ecf8" "$TMP/out.safetensors"
fails_with "verify of a FIFO" "$TMP/pipe.ecf8" "not a regular file" verify "$TMP/pipe.ecf8"
fails_with "verify against a FIFO" "$TMP/pipe.safetensors" "not a regular file" \
    verify "$TMP/good.ecf8" "$TMP/pipe.safetensors"
fails_with "compress of a FIFO" "$TMP/pipe.safetensors" "not a regular file" \
    compress "$TMP/pipe.safetensors" "$TMP/out.ecf8"
mkdir "$TMP/ckpt"
cp "$DATA/minilm-slice-e5m2.safetensors" "$TMP/ckpt/a.safetensors"
mkfifo "$TMP/ckpt/b.safetensors"
fails_with "compress of a directory holding a FIFO" "$TMP/ckpt/b.safetensors" "not a regular file" \
    compress "$TMP/ckpt" "$TMP/out.ecf8"
[ -e "$TMP/out.ecf8" ] || [ -e "$TMP/out.safetensors" ] && fail "a FIFO input left an output behind"
rm -rf "$TMP/ckpt" "$TMP/pipe.safetensors" "$TMP/pipe.ecf8"

# ---- expansion bombs ------------------------------------------------------------
# Containers built by hand (docs/FORMAT.md), checksums right, so that only
# what they expand to is hostile.
python3 - "$TMP" <<'PY'
import ctypes, struct, sys
tmp = sys.argv[1]
xx = ctypes.CDLL("libxxhash.so.0"); xx.XXH3_64bits.restype = ctypes.c_uint64
xx.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
zs = ctypes.CDLL("libzstd.so.1"); zs.ZSTD_compressBound.restype = ctypes.c_size_t
zs.ZSTD_compress.restype = ctypes.c_size_t
zs.ZSTD_compress.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
h64 = lambda b: xx.XXH3_64bits(bytes(b), len(b))

def zstd(raw):
    cap = zs.ZSTD_compressBound(len(raw)); buf = ctypes.create_string_buffer(cap)
    n = zs.ZSTD_compress(buf, cap, raw, len(raw), 3)
    return buf.raw[:n]

def container(path, sources, tensors, blob, payload, directory=False):
    """sources: (path_off, path_len, prefix_off, prefix_len, bytes, first, n); tensors: 192-byte entries"""
    head = struct.pack("<IIQQQ", len(sources), 1 if directory else 0, len(tensors),
                       32 + 48 * len(sources) + 192 * len(tensors), len(blob))
    raw = head + b"".join(struct.pack("<QQQQQII", *s) for s in sources) + b"".join(tensors) + blob
    index = zstd(raw)
    meta_off = 64 + (len(payload) + 63) // 64 * 64
    body = payload + bytes(meta_off - 64 - len(payload))
    h = bytearray(64)
    h[0:8] = b"\x89ECF8\r\n\x1a"
    struct.pack_into("<HHIQQQQQ", h, 8, 1, 1, 1, 64 + len(body) + len(index), meta_off, len(index),
                     h64(index), len(raw))
    struct.pack_into("<Q", h, 56, h64(h[:56]))
    open(path, "wb").write(bytes(h) + body + index)

def constant_tensor(path, rows):
    """One F8_E4M3 tensor rows x 2^22 of a single byte value: a one-symbol
    code, no bits per element, chunks of one 4 Mi-element row."""
    cols = 1 << 22
    name, dtype = b"w", b"F8_E4M3"
    prefix = b'{"w":{"dtype":"F8_E4M3","shape":[%d,%d],"data_offsets":[0,%d]}}' % (rows, cols, rows * cols)
    prefix = struct.pack("<Q", len(prefix)) + prefix
    blob = bytearray(name + dtype + prefix)
    lengths_at = len(blob)
    blob += bytes([1]) + bytes(127)                      # symbol 0 has the only code (length 1)
    blob += bytes(-len(blob) % 8)
    offsets_at = len(blob)
    blob += bytes(8 * (rows + 1))                        # every chunk is empty
    e = bytearray(192)
    struct.pack_into("<QIIQ", e, 0, 0, len(name), len(dtype), len(name))
    e[24], e[25], e[26], e[27], e[28] = 1, 2, 2, 0, 3    # E4M3, byte split, 2-D, code_bits 0, parts in index
    struct.pack_into("<QQ", e, 32, rows, cols)
    struct.pack_into("<QQQQQQQQQQQQ", e, 96, len(prefix), rows * cols, 64, 8, rows, cols, 1, cols, 8,
                     0, lengths_at, offsets_at)
    container(path, [(0, 0, len(name) + len(dtype), len(prefix), len(prefix) + rows * cols, 0, 1)],
              [bytes(e)], bytes(blob), bytes(8))

constant_tensor(f"{tmp}/const-3gib.ecf8", 768)           # 3 GiB
constant_tensor(f"{tmp}/const-16tib.ecf8", 1 << 22)      # 16 TiB

# 1.3 M empty F32 tensors, all named by the same blob bytes.
n = 1300000
prefix = b'{}'
prefix = struct.pack("<Q", len(prefix)) + prefix
blob = b"xF32" + prefix
e = bytearray(192)
struct.pack_into("<QIIQ", e, 0, 0, 1, 3, 1)
e[26] = 1
struct.pack_into("<QQQ", e, 96, len(prefix), 0, 64)
struct.pack_into("<Q", e, 168, h64(b""))                 # the checksum of no bytes
container(f"{tmp}/empty-tensors.ecf8", [(0, 0, 4, len(prefix), len(prefix), 0, n)], [bytes(e)] * n, blob, b"")

# 4096 sources s0000.json ... whose prefixes are all the same 1 MiB.
names = b"".join(b"s%04d.json" % i for i in range(4096))
blob = names + b"{" + bytes(1 << 20) + b"}"
sources = [(10 * i, 10, len(names), (1 << 20) + 2, (1 << 20) + 2, 0, 0) for i in range(4096)]
container(f"{tmp}/shared-prefix.ecf8", sources, [], blob, b"", directory=True)
PY
for f in const-3gib const-16tib empty-tensors shared-prefix; do
    [ -f "$TMP/$f.ecf8" ] || fail "bomb $f.ecf8 not built"
    size=$(stat -c %s "$TMP/$f.ecf8")
    [ "$size" -lt 65536 ] || fail "bomb $f.ecf8 is $size bytes, want a few KB"
done
# info reads the index: the 3 GiB tensor is not decoded (the CLI exits
# quickly in little memory: RSS measured by python, which waits for it).
checks=$((checks + 1))
rss_kb=$(python3 - "$ECF8" "$TMP/const-3gib.ecf8" <<'PY'
import resource, subprocess, sys
try:
    r = subprocess.run([sys.argv[1], "info", sys.argv[2]], stdout=subprocess.DEVNULL, timeout=10)
except subprocess.TimeoutExpired:
    sys.exit(print("timeout"))
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else f"exit {r.returncode}")
PY
)
if ! [ "${rss_kb:-x}" -gt 0 ] 2>/dev/null || [ "$rss_kb" -gt 1000000 ]; then
    fail "info of a 3 GiB constant tensor: exit/RSS '$rss_kb' (want exit 0 and under 1 GB)"
fi
run "info --json of a 3 GiB constant tensor" info --json "$TMP/const-3gib.ecf8"
[ "$rc" = 0 ] && [ "${out#*\"source_bytes\": 3221225472}" != "$out" ] || fail "info --json of the 3 GiB tensor: exit $rc, $out $err"
fails_with "decompress of 16 TiB" "$TMP/out.safetensors" "the output would be 17592186044" \
    decompress --engine cpu "$TMP/const-16tib.ecf8" "$TMP/out.safetensors"
[ -e "$TMP/out.safetensors" ] && fail "decompress of 16 TiB left an output"
for cmd in info verify; do
    fails_with "$cmd of 1.3 M empty tensors" "$TMP/empty-tensors.ecf8" "1300000 tensors in" \
        $cmd "$TMP/empty-tensors.ecf8"
    fails_with "$cmd of 4096 sources sharing a header" "$TMP/shared-prefix.ecf8" "add up to more than" \
        $cmd "$TMP/shared-prefix.ecf8"
done
fails_with "decompress of 4096 sources sharing a header" "$TMP/shared-prefix.ecf8" "add up to more than" \
    decompress --engine cpu "$TMP/shared-prefix.ecf8" "$TMP/out.dir"
[ -e "$TMP/out.dir" ] && fail "decompress of a shared-header bomb left an output"
[ -n "${KEEP_BOMBS:-}" ] && cp "$TMP"/*.ecf8 "$KEEP_BOMBS"
rm -f "$TMP"/const-*.ecf8 "$TMP/empty-tensors.ecf8" "$TMP/shared-prefix.ecf8"

# ---- inputs compress does not take ------------------------------------------------
fails_with "compress of a container" "$TMP/good.ecf8" "is already an ecf8 container" \
    compress "$TMP/good.ecf8" "$TMP/again.ecf8"
[ -e "$TMP/again.ecf8" ] && fail "compress of a container left an output"
mkdir -p "$TMP/pipeline/unet" "$TMP/pipeline/vae"
echo '{"_class_name": "StableDiffusionPipeline"}' >"$TMP/pipeline/model_index.json"
cp "$DATA/minilm-slice-e5m2.safetensors" "$TMP/pipeline/unet/diffusion_pytorch_model.safetensors"
cp "$DATA/minilm-slice-bf16.safetensors" "$TMP/pipeline/vae/diffusion_pytorch_model.safetensors"
fails_with "compress of a directory of subdirectories" "$TMP/pipeline" "subdirectories such as" \
    compress "$TMP/pipeline" "$TMP/pipeline.ecf8"
[ -e "$TMP/pipeline.ecf8" ] && fail "compress of a directory of subdirectories left an output"

# Nothing to code: the one warning of a success, and a container that verifies.
python3 - "$TMP/f32.safetensors" <<'PY'
import json, struct, sys
data = struct.pack("<256f", *[i / 7 for i in range(256)])
text = json.dumps({"w": {"dtype": "F32", "shape": [16, 16], "data_offsets": [0, len(data)]}}).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(text)) + text + data)
PY
run "compress of an F32-only file" compress "$TMP/f32.safetensors" "$TMP/f32.ecf8"
want="ecf8: $TMP/f32.safetensors: warning: no FP8/BF16/FP16 tensors, nothing to compress"
[ "$rc" = 0 ] && [ "$err" = "$want" ] && [ -z "$out" ] ||
    fail "compress of an F32-only file: exit $rc, stderr '$err', want exit 0 and '$want'"
run "verify of the F32-only container" verify "$TMP/f32.ecf8" "$TMP/f32.safetensors"
[ "$rc" = 0 ] || fail "verify of the F32-only container: $err"
run "compress of a coded file" compress "$DATA/minilm-slice-e5m2.safetensors" "$TMP/e5m2.ecf8"
[ "$rc" = 0 ] && [ -z "$err" ] || fail "compress of a file with FP8 tensors: exit $rc, stderr '$err'"

echo "cli_hostile_input: $checks checks, $fails failures"
[ "$fails" = 0 ]
