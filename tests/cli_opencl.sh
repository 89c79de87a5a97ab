#!/usr/bin/env bash
# cli_opencl.sh ECF8 [BENCH_DECODE BENCH_MATMUL] - the device commands of
# the ecf8 CLI on a real OpenCL device: devices, matmul (both engines) and
# decompress --engine opencl, and the device benchmarks ecf8-bench-matmul
# and ecf8-bench-decode --json (bench/; skipped when their paths are not
# given), on one real Linear weight and on broken inputs.  Exit 77
# (skipped) when there is no device or no python3.
#
# A failure must be exit status 1 with one stderr line "PROG: FILE: ..."
# (PROG: ecf8 or the bench program's name), nothing on stdout, and no
# output file or temporary left behind.
set -u

ECF8=${1:?usage: cli_opencl.sh PATH/TO/ecf8 [PATH/TO/ecf8-bench-decode PATH/TO/ecf8-bench-matmul]}
BENCH_DECODE=${2:-}
BENCH_MATMUL=${3:-}
DATA=${ECF8_TEST_DATA:-$(cd "$(dirname "$0")" && pwd)/data}
TMP=$(mktemp -d "${ECF8_BUILD_DIR:-${TMPDIR:-/tmp}}/cli-opencl-XXXXXX")
trap 'rm -rf "$TMP"' EXIT

command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
if ! "$ECF8" devices >"$TMP/devices" 2>"$TMP/devices.err" || grep -q '^no device selected' "$TMP/devices"; then
    echo "SKIP: no OpenCL device: $(cat "$TMP/devices.err" "$TMP/devices" | tail -n 1)"
    exit 77
fi

checks=0 fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# run NAME ARGS...: ecf8 ARGS (PROG ARGS with PROG set) must succeed
# silently on stderr.
run() {
    local name=$1 prog=${PROG:-$ECF8}
    shift
    checks=$((checks + 1))
    if ! "$prog" "$@" >"$TMP/stdout" 2>"$TMP/stderr" </dev/null; then
        fail "$name: exit status $? ($(head -n 1 "$TMP/stderr"))"
        return 1
    fi
    [ -s "$TMP/stderr" ] && fail "$name: stderr on success: $(head -n 1 "$TMP/stderr")"
    return 0
}

# refused NAME NAMED NEEDLE OUTPUT ARGS...: ecf8 ARGS (PROG ARGS with PROG
# set) must fail with status 1, one stderr line "PROG: NAMED: ..." holding
# NEEDLE, an empty stdout, and neither OUTPUT nor a temporary beside it.
refused() {
    local name=$1 named=$2 needle=$3 output=$4 prog=${PROG:-$ECF8}
    shift 4
    checks=$((checks + 1))
    rm -f "$output" # what an earlier check may have left
    "$prog" "$@" >"$TMP/stdout" 2>"$TMP/stderr" </dev/null
    local rc=$? msg
    msg=$(head -n 1 "$TMP/stderr")
    named="$(basename "$prog"): $named"
    if [ "$rc" != 1 ]; then
        fail "$name: exit status $rc, want 1 (stderr: $msg)"
    elif [ "$(wc -l <"$TMP/stderr")" != 1 ]; then
        fail "$name: stderr is not one line: $(tr '\n' '|' <"$TMP/stderr")"
    elif [ "${msg#"$named: "}" = "$msg" ]; then
        fail "$name: '$msg' does not start with '$named: '"
    elif [ "${msg#*"$needle"}" = "$msg" ]; then
        fail "$name: '$msg' lacks '$needle'"
    elif [ -s "$TMP/stdout" ]; then
        fail "$name: stdout on failure: $(head -c 200 "$TMP/stdout")"
    elif [ -e "$output" ]; then
        fail "$name: output $output left behind"
    elif compgen -G "$(dirname "$output")/.ecf8-*" >/dev/null; then
        fail "$name: temporary file left in $(dirname "$output")"
    fi
}

# ---- inputs ------------------------------------------------------------------
# One real Linear weight of the E4M3 slice and its block scales, under a
# name with JSON-hostile characters, so bench's JSON must escape it.
W='layer.0."q"\proj.weight'
python3 - "$DATA/minilm-slice-e4m3.safetensors" "$TMP/w.safetensors" "$W" <<'PY' || fail "building the input file"
import json, struct, sys
src = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<Q", src, 0)[0]
header = json.loads(src[8 : 8 + n])
name = "encoder.layer.0.attention.self.key.weight"
out, data = {}, b""
for suffix in ("", "_scale_inv"):
    t = header[name + suffix]
    a, b = t["data_offsets"]
    out[sys.argv[3] + suffix] = {"dtype": t["dtype"], "shape": t["shape"],
                                 "data_offsets": [len(data), len(data) + b - a]}
    data += src[8 + n + a : 8 + n + b]
text = json.dumps(out).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + data)
PY
# The exponent split keeps sign and mantissa bits raw: flipping one of
# those changes no code length, so only a checksum can tell.
run "compress" compress "$TMP/w.safetensors" "$TMP/w.ecf8" --split exponent

# .npy files (version 1.0): X of shape SHAPE and dtype DESCR from a seed;
# TRUNCATE drops that many bytes from the end.
npy() {
    python3 - "$@" <<'PY'
import random, struct, sys
path, descr, shape, truncate = sys.argv[1], sys.argv[2], eval(sys.argv[3]), int(sys.argv[4])
count = 1
for d in shape:
    count *= d
rng = random.Random(7)
values = [rng.uniform(-2, 2) for _ in range(count)]
body = struct.pack("<%d%s" % (count, "f" if descr == "<f4" else "d"), *values)
head = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, repr(tuple(shape)))
head += " " * (-(len(head) + 11) % 64) + "\n"
blob = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode() + body
open(path, "wb").write(blob[: len(blob) - truncate])
PY
}
npy "$TMP/x3.npy" "<f4" "(3, 384)" 0
npy "$TMP/x1.npy" "<f4" "(384,)" 0
npy "$TMP/x-shape.npy" "<f4" "(3, 383)" 0
npy "$TMP/x-dtype.npy" "<f8" "(3, 384)" 0
npy "$TMP/x-trunc.npy" "<f4" "(3, 384)" 5

# ---- devices ---------------------------------------------------------------------
run "devices" devices
run "devices --json" devices --json &&
    { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["platforms"]' "$TMP/stdout" ||
        fail "devices --json: not JSON with platforms"; }

# ---- matmul on both engines -----------------------------------------------------
for engine in fused uncompressed; do
    for x in x3 x1; do
        out=$TMP/y-$engine-$x.npy
        checks=$((checks + 1))
        if ! "$ECF8" matmul "$TMP/w.ecf8" --tensor "$W" --input "$TMP/$x.npy" --output "$out" \
            --engine "$engine" >"$TMP/stdout" 2>"$TMP/stderr"; then
            fail "matmul --engine $engine $x: $(head -n 1 "$TMP/stderr")"
        elif [ -s "$TMP/stderr" ]; then
            fail "matmul --engine $engine $x: stderr on success: $(head -n 1 "$TMP/stderr")"
        fi
    done
done
for x in x3 x1; do
    cmp -s "$TMP/y-fused-$x.npy" "$TMP/y-uncompressed-$x.npy" ||
        fail "matmul $x: fused and uncompressed Y differ"
done
# The 1-D X gives a 1-D Y equal to the first row of the (3, K) product.
python3 - "$TMP" <<'PY' || fail "matmul: Y has the wrong shape or values"
import math, struct, sys
def load(path):
    b = open(path, "rb").read()
    assert b[:8] == b"\x93NUMPY\x01\x00"
    hlen = struct.unpack_from("<H", b, 8)[0]
    head = eval(b[10 : 10 + hlen].decode())
    assert head["descr"] == "<f4" and not head["fortran_order"]
    vals = struct.unpack("<%df" % ((len(b) - 10 - hlen) // 4), b[10 + hlen :])
    return head["shape"], vals
shape3, y3 = load(sys.argv[1] + "/y-fused-x3.npy")
shape1, y1 = load(sys.argv[1] + "/y-fused-x1.npy")
assert shape3 == (3, 384) and shape1 == (384,), (shape3, shape1)
assert all(math.isfinite(v) for v in y3 + y1) and max(abs(v) for v in y3) > 0
PY
python3 - "$TMP" <<'PY' || fail "matmul: 1-D X is not row 0 of the batch"
import struct, sys
def body(path):
    b = open(path, "rb").read()
    return b[10 + struct.unpack_from("<H", b, 8)[0] :]
assert body(sys.argv[1] + "/y-fused-x1.npy") == body(sys.argv[1] + "/y-fused-x3.npy")[: 384 * 4]
PY

# ---- scale forms of other families ----------------------------------------------
# A small file in the compressed-tensors / MXFP8 conventions: U8 (E8M0) 1x32
# blocks [N, K/32], BF16 per-row [N, 1], F8_E8M0 32x32 blocks, and a scale
# of no form.  Both engines give the same Y, which matches a float64
# reference of q * scale.
python3 - "$TMP/forms.safetensors" <<'PY' || fail "building forms.safetensors"
import json, random, struct, sys
rng = random.Random(3)
def e4m3(b):
    s, e, m = b >> 7, b >> 3 & 15, b & 7
    v = (m / 8.0) * 2.0 ** -6 if e == 0 else (1 + m / 8.0) * 2.0 ** (e - 7)
    return -v if s else v
tensors = []
def weight(name, n, k):
    data = bytes((rng.randrange(0x20, 0x48) | (rng.randrange(2) << 7)) for _ in range(n * k))
    tensors.append((name, "F8_E4M3", [n, k], data))
weight("mx.weight", 40, 96)
tensors.append(("mx.weight_scale", "U8", [40, 3], bytes(rng.randrange(118, 124) for _ in range(120))))
weight("pc.weight", 48, 96)
tensors.append(("pc.weight_scale", "BF16", [48, 1],
                b"".join(struct.pack("<H", (rng.randrange(118, 124) << 7) | rng.randrange(128)) for _ in range(48))))
weight("v4.weight", 40, 96)
tensors.append(("v4.scale", "F8_E8M0", [2, 3], bytes(rng.randrange(118, 124) for _ in range(6))))
weight("bad.weight", 40, 96)
tensors.append(("bad.weight_scale", "F32", [5, 5], b"\0\0\x80\x3f" * 25))
header, off, blob = {}, 0, b""
for name, dt, shape, data in tensors:
    header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
    off += len(data)
    blob += data
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + blob)
PY
npy "$TMP/x96.npy" "<f4" "(2, 96)" 0
run "compress forms" compress "$TMP/forms.safetensors" "$TMP/forms.ecf8" &&
    run "compress forms --layout 1" compress --layout 1 "$TMP/forms.safetensors" "$TMP/forms1.ecf8"
for f in forms forms1; do
    for t in mx pc v4; do
        for engine in fused uncompressed; do
            run "matmul $f $t.weight $engine" matmul "$TMP/$f.ecf8" --tensor "$t.weight" \
                --input "$TMP/x96.npy" --output "$TMP/y-$f-$t-$engine.npy" --engine "$engine"
        done
        cmp -s "$TMP/y-$f-$t-fused.npy" "$TMP/y-$f-$t-uncompressed.npy" ||
            fail "matmul $f $t.weight: fused and uncompressed Y differ"
    done
    refused "matmul $f bad.weight (scale of no form)" "$TMP/$f.ecf8" \
        "scale tensor 'bad.weight_scale' has shape [5, 5], weight 'bad.weight' [40, 96] takes a scalar" \
        "$TMP/y-bad.npy" matmul "$TMP/$f.ecf8" --tensor bad.weight --input "$TMP/x96.npy" \
        --output "$TMP/y-bad.npy"
done
python3 - "$TMP" <<'PY' || fail "matmul of the scale forms: Y is not q * scale"
import json, struct, sys
d = sys.argv[1]
src = open(d + "/forms.safetensors", "rb").read()
n = struct.unpack_from("<Q", src)[0]
hdr = json.loads(src[8 : 8 + n])
raw = lambda name: src[8 + n + hdr[name]["data_offsets"][0] : 8 + n + hdr[name]["data_offsets"][1]]
def e4m3(b):
    s, e, m = b >> 7, b >> 3 & 15, b & 7
    v = (m / 8.0) * 2.0 ** -6 if e == 0 else (1 + m / 8.0) * 2.0 ** (e - 7)
    return -v if s else v
def npy(path):
    b = open(path, "rb").read()
    hl = struct.unpack_from("<H", b, 8)[0]
    return struct.unpack("<%df" % ((len(b) - 10 - hl) // 4), b[10 + hl :])
x = npy(d + "/x96.npy")
scales = {
    "mx": lambda r, c, s=raw("mx.weight_scale"): 2.0 ** (s[r * 3 + c // 32] - 127),
    "pc": lambda r, c, s=raw("pc.weight_scale"): struct.unpack("<f", b"\0\0" + s[2 * r : 2 * r + 2])[0],
    "v4": lambda r, c, s=raw("v4.scale"): 2.0 ** (s[(r // 32) * 3 + c // 32] - 127),
}
for f in ("forms", "forms1"):
    for t, sc in scales.items():
        w = raw(t + ".weight")
        rows = hdr[t + ".weight"]["shape"][0]
        y = npy("%s/y-%s-%s-fused.npy" % (d, f, t))
        for m in range(2):
            for r in range(rows):
                terms = [x[m * 96 + c] * e4m3(w[r * 96 + c]) * sc(r, c) for c in range(96)]
                ref, mag = sum(terms), sum(abs(v) for v in terms)
                assert abs(y[m * rows + r] - ref) <= 40 * 2.0 ** -24 * mag + 1e-30, (f, t, m, r, y[m * rows + r], ref)
PY

# ---- bad inputs --------------------------------------------------------------------
y=$TMP/out/y.npy
mkdir -p "$TMP/out"
# The decode + CLBlast baseline is ecf8-bench-matmul's: a usage error here.
checks=$((checks + 1))
"$ECF8" matmul "$TMP/w.ecf8" --tensor "$W" --input "$TMP/x3.npy" --output "$y" --engine clblast \
    >"$TMP/stdout" 2>"$TMP/stderr"
rc=$?
{ [ "$rc" = 2 ] && grep -q "ecf8-bench-matmul" "$TMP/stderr" && [ ! -e "$y" ]; } ||
    fail "matmul --engine clblast: exit $rc, want 2 naming ecf8-bench-matmul ($(head -n 1 "$TMP/stderr"))"
for engine in fused uncompressed; do
    refused "matmul $engine, X of the wrong shape" "$TMP/x-shape.npy" "does not match" "$y" \
        matmul "$TMP/w.ecf8" --tensor "$W" --input "$TMP/x-shape.npy" --output "$y" --engine "$engine"
    refused "matmul $engine, float64 X" "$TMP/x-dtype.npy" "'<f8'" "$y" \
        matmul "$TMP/w.ecf8" --tensor "$W" --input "$TMP/x-dtype.npy" --output "$y" --engine "$engine"
    refused "matmul $engine, truncated X" "$TMP/x-trunc.npy" "data holds" "$y" \
        matmul "$TMP/w.ecf8" --tensor "$W" --input "$TMP/x-trunc.npy" --output "$y" --engine "$engine"
    refused "matmul $engine, missing tensor" "$TMP/w.ecf8" "no tensor" "$y" \
        matmul "$TMP/w.ecf8" --tensor nope --input "$TMP/x3.npy" --output "$y" --engine "$engine"
done

# ---- corrupt containers: no engine may compute with them ----------------------------
# A flipped bit of the stored scales (their bytes stand verbatim in the
# container) and a flipped bit of the coded weight that only the weight's
# checksum catches (chosen with the CPU verifier).
python3 - "$TMP/w.ecf8" "$TMP/w.safetensors" "$TMP/bad-scale.ecf8" <<'PY' || fail "building bad-scale.ecf8"
import json, struct, sys
img = bytearray(open(sys.argv[1], "rb").read())
src = open(sys.argv[2], "rb").read()
n = struct.unpack_from("<Q", src, 0)[0]
header = json.loads(src[8 : 8 + n])
name = next(k for k in header if k.endswith("_scale_inv"))
a, b = header[name]["data_offsets"]
at = img.find(src[8 + n + a : 8 + n + b])
assert at >= 64 and img.find(src[8 + n + a : 8 + n + b], at + 1) < 0
img[at + 5] ^= 0x02
open(sys.argv[3], "wb").write(img)
PY
found=0
for bit in $(seq 0 97 9700); do
    python3 - "$TMP/w.ecf8" "$TMP/bad-weight.ecf8" "$bit" <<'PY'
import struct, sys
img = bytearray(open(sys.argv[1], "rb").read())
# the weight's coded stream is the first payload, from byte 64
at = 64 + 2000 + int(sys.argv[3]) // 8
img[at] ^= 1 << (int(sys.argv[3]) % 8)
open(sys.argv[2], "wb").write(img)
PY
    if "$ECF8" verify "$TMP/bad-weight.ecf8" 2>&1 | grep -qF "'$W': checksum mismatch"; then
        found=1
        break
    fi
done
[ "$found" = 1 ] || fail "no payload bit found that only the checksum catches"
for bad in bad-scale bad-weight; do
    for engine in fused uncompressed; do
        refused "matmul $engine on $bad.ecf8" "$TMP/$bad.ecf8" "checksum mismatch" "$y" \
            matmul "$TMP/$bad.ecf8" --tensor "$W" --input "$TMP/x3.npy" --output "$y" --engine "$engine"
    done
    [ -n "$BENCH_MATMUL" ] && PROG=$BENCH_MATMUL refused "ecf8-bench-matmul on $bad.ecf8" "$TMP/$bad.ecf8" \
        "checksum mismatch" "$y" "$TMP/$bad.ecf8" --repeat 1 --warm --json
    refused "decompress --engine opencl $bad.ecf8" "$TMP/$bad.ecf8" "checksum mismatch" "$y" \
        decompress --engine opencl "$TMP/$bad.ecf8" "$y"
done

# ---- a chunk whose stream is too short or too long: every kernel's message is true ----
# (ecf8-chunk-offset-shift.ecf8 moves the end of chunk 0 one byte into chunk
# 1: chunk 0 decodes short of its stream, chunk 1 runs out of its own.)
for kernel in "" portable coop; do
    ECF8_DECODE_KERNEL=$kernel refused "decompress --engine opencl (${kernel:-default} kernel) of a shifted chunk" \
        "$DATA/bad/ecf8-chunk-offset-shift.ecf8" "decodes to" "$y" \
        decompress --engine opencl "$DATA/bad/ecf8-chunk-offset-shift.ecf8" "$y"
    bits=$(sed -n 's/.*decodes to \([0-9]*\) bits, its stream holds \([0-9]*\) bytes.*/\1 \2/p' "$TMP/stderr")
    read -r got_bits got_bytes <<<"$bits"
    [ -n "${got_bytes:-}" ] && [ $(((got_bits + 7) / 8)) != "$got_bytes" ] ||
        fail "${kernel:-default} kernel: the message is not a true mismatch: $(head -n 1 "$TMP/stderr")"
done

# ---- no device: the errors still name the file -------------------------------------
for cmd in "matmul" "ecf8-bench-matmul" "ecf8-bench-decode" "decompress"; do
    prog=$ECF8
    case $cmd in
        matmul) args=(matmul "$TMP/w.ecf8" --tensor "$W" --input "$TMP/x3.npy" --output "$y") ;;
        ecf8-bench-matmul) prog=$BENCH_MATMUL args=("$TMP/w.ecf8" --repeat 1 --warm) ;;
        ecf8-bench-decode) prog=$BENCH_DECODE args=("$TMP/w.ecf8" --repeat 1) ;;
        decompress) args=(decompress --engine opencl "$TMP/w.ecf8" "$y") ;;
    esac
    [ -n "$prog" ] || continue
    PROG=$prog ECF8_DEVICE=no-such-device refused "$cmd without a device" "$TMP/w.ecf8" \
        "matches no OpenCL device" "$y" "${args[@]}"
done

# ---- decompress on the device -----------------------------------------------------------
run "compress the BF16 slice" compress "$DATA/minilm-slice-bf16.safetensors" "$TMP/bf16.ecf8"
# Stream layout 1 (lane streams): the streams kernel, every golden layout-1 file,
# and the format 1.3 golden files.
run "compress --layout 1 the E4M3 slice" compress --layout 1 "$DATA/minilm-slice-e4m3.safetensors" "$TMP/lanes.ecf8"
golden_v12=()
for g in "$DATA"/golden/*-v1.2.ecf8; do
    base=$(basename "$g" -v1.2.ecf8)
    golden_v12+=("$g:$DATA/golden/${base%%-*}.safetensors")
done
# Format 1.3 (FNUZ, U8, I8, F8_E8M0 coded) in both stream layouts.
for g in "$DATA"/golden/dtypes-*-v1.3.ecf8; do
    golden_v12+=("$g:$DATA/golden/dtypes.safetensors")
done
for pair in "$TMP/w.ecf8:$TMP/w.safetensors" "$TMP/bf16.ecf8:$DATA/minilm-slice-bf16.safetensors" \
    "$TMP/lanes.ecf8:$DATA/minilm-slice-e4m3.safetensors" "${golden_v12[@]}"; do
    in=${pair%%:*} original=${pair#*:}
    run "decompress --engine opencl $in" decompress --engine opencl "$in" "$TMP/rt.safetensors" &&
        { cmp -s "$original" "$TMP/rt.safetensors" || fail "decompress --engine opencl $in: output differs"; }
    rm -f "$TMP/rt.safetensors"
done
# The broken layout-1 files refused on the device as on the CPU (the lane
# moved inside its chunk passes the open and fails in the streams kernel).
while IFS=$'\t' read -r file kind status stage needle; do
    case "$file" in ecf8-lanes-*) ;; *) continue ;; esac
    cp "$DATA/bad/$file" "$TMP/$file"
    refused "decompress --engine opencl $file" "$TMP/$file" "$needle" "$TMP/rt.safetensors" \
        decompress --engine opencl "$TMP/$file" "$TMP/rt.safetensors"
    rm -f "$TMP/$file"
done <"$DATA/bad/MANIFEST.tsv"

# The default engine (auto) on a device that is a CPU decodes with the
# native CPU decoder: a cold cache stays empty (no kernel is built) and
# nothing reaches stderr.  On a GPU it is the device path, output the same.
selected_type=$("$ECF8" devices --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(next((v["type"] for p in d["platforms"] for v in p["devices"] if v["selected"]), ""))')
mkdir -p "$TMP/cold-pocl" "$TMP/cold-xdg"
if POCL_CACHE_DIR=$TMP/cold-pocl XDG_CACHE_HOME=$TMP/cold-xdg \
    run "decompress (auto engine, cold caches)" decompress "$TMP/w.ecf8" "$TMP/rt.safetensors"; then
    cmp -s "$TMP/w.safetensors" "$TMP/rt.safetensors" || fail "decompress (auto engine): output differs"
    # (PoCL leaves a tempfile_* at start-up; programs are directories.)
    built=$(find "$TMP/cold-pocl" "$TMP/cold-xdg" -mindepth 1 -type d | head -n 3)
    if [ "$selected_type" = CPU ] && [ -n "$built" ]; then
        fail "decompress (auto engine) on a CPU device built kernels: $built"
    fi
fi
rm -f "$TMP/rt.safetensors"

# On a terminal (script(1) gives one) a cold first kernel build says so,
# once, on PoCL whose cache POCL_CACHE_DIR empties; a warm run says nothing.
if command -v script >/dev/null && grep -q pthread "$TMP/devices"; then
    checks=$((checks + 1))
    mkdir -p "$TMP/cold-pocl"
    run "compress --layout 1" compress --layout 1 "$DATA/minilm-slice-e5m2.safetensors" "$TMP/l1.ecf8"
    for pass in cold warm; do
        rm -f "$TMP/l1.out"
        POCL_CACHE_DIR="$TMP/cold-pocl" script -qec "'$ECF8' decompress --engine opencl '$TMP/l1.ecf8' '$TMP/l1.out'" \
            "$TMP/typescript-$pass" >/dev/null 2>&1 || fail "decompress on a terminal ($pass): exit status $?"
        cmp -s "$TMP/l1.out" "$DATA/minilm-slice-e5m2.safetensors" || fail "decompress on a terminal ($pass): output differs"
    done
    n_cold=$(grep -c "building OpenCL kernels" "$TMP/typescript-cold")
    [ "$n_cold" = 1 ] || fail "a cold build printed the notice $n_cold times, not once"
    grep -q "building OpenCL kernels" "$TMP/typescript-warm" && fail "a warm run printed the build notice"
fi

# ---- the benchmarks (bench/) ------------------------------------------------------------
if [ -z "$BENCH_MATMUL" ] || [ -z "$BENCH_DECODE" ]; then
    echo "note: no bench programs given (built without ECF8_BENCH?): ecf8-bench-* not tested"
    echo "cli_opencl: $checks checks, $fails failures"
    [ "$fails" = 0 ]
    exit
fi
# An option given last without its value is named as such.
for pair in "$BENCH_DECODE:--repeat" "$BENCH_MATMUL:--shape"; do
    checks=$((checks + 1))
    "${pair%:*}" "$TMP/w.ecf8" "${pair##*:}" >"$TMP/stdout" 2>"$TMP/stderr"
    rc=$?
    { [ "$rc" = 2 ] && grep -q "^$(basename "${pair%:*}"): option '${pair##*:}' needs a value" "$TMP/stderr"; } ||
        fail "$pair given last: exit $rc, $(head -n 1 "$TMP/stderr")"
done
have_clblast=1
"$BENCH_MATMUL" --help | grep -q "no CLBlast" && {
    echo "note: ecf8-bench-matmul is built without CLBlast; clblast engine not tested"
    have_clblast=0
}
# The clblast engine (another reduction order) agrees with the float64
# reference to fp32 rounding, like the fused one ("not <=": a NaN fails).
if PROG=$BENCH_MATMUL run "ecf8-bench-matmul --json" "$TMP/w.ecf8" --batch 1,3 --repeat 1 --warm --json; then
    python3 - "$TMP/stdout" "$W" "$have_clblast" <<'PY' || fail "ecf8-bench-matmul --json: not the documented JSON"
import json, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
assert [r["m"] for r in runs] == [1, 3]
want = {"fused", "uncompressed"} | ({"clblast"} if sys.argv[3] == "1" else set())
for r in runs:
    assert r["tensor"] == sys.argv[2] and r["dtype"] == "F8_E4M3" and r["bit_identical"] is True, r
    assert (r["n"], r["k"]) == (384, 384) and set(r["engines"]) == want, r
    for e in r["engines"].values():
        assert {"median_ms", "gflops", "weight_gbps", "max_abs_err"} <= set(e), e
    if "clblast" in r["engines"]:
        err, ref = r["engines"]["clblast"]["max_abs_err"], r["engines"]["fused"]["max_abs_err"]
        assert err <= max(1e-3, 10 * ref), ("clblast max_abs_err", err, "fused", ref)
PY
fi
# --shape tiles the weight and codes it as the file does (w.ecf8: --split
# exponent, where auto would pick the byte split).
if PROG=$BENCH_MATMUL run "ecf8-bench-matmul --shape --json" "$TMP/w.ecf8" --shape 200x700 --repeat 1 --warm --no-clblast --json; then
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert (r["n"], r["k"], r["split"], r["bit_identical"]) == (200, 700, "exponent", True), r' \
        "$TMP/stdout" || fail "ecf8-bench-matmul --shape: the tiled weight is not coded like the file's"
fi
if PROG=$BENCH_DECODE run "ecf8-bench-decode --json" "$TMP/w.ecf8" --repeat 1 --min-bytes 0 --json; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["tensors"] == 1 and [t["name"] for t in d["per_tensor"]] == [sys.argv[2]]; assert d["batch_tensors"] == 1 and d["batch_opencl_decode_gbps"] > 0 and d["batch_in_order_opencl_decode_gbps"] > 0' \
        "$TMP/stdout" "$W" || fail "ecf8-bench-decode --json: not the documented JSON"
fi
# A file of several dtypes: the whole-file batch and one per dtype (each
# checked against the tensors' checksums by the bench itself).
run "compress the E4M3 slice" compress "$DATA/minilm-slice-e4m3.safetensors" "$TMP/e4m3.ecf8"
if PROG=$BENCH_DECODE run "ecf8-bench-decode --json, several dtypes" "$TMP/e4m3.ecf8" --repeat 1 --json; then
    python3 - "$TMP/stdout" <<'PY' || fail "ecf8-bench-decode --json: batch figures missing"
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["by_dtype"]) >= 2, d["by_dtype"].keys()
assert sum(v["batch_tensors"] for v in d["by_dtype"].values()) == d["batch_tensors"] == d["tensors"]
for v in [d] + list(d["by_dtype"].values()):
    assert v["batch_opencl_decode_gbps"] > 0 and v["batch_in_order_opencl_decode_gbps"] > 0, v
PY
fi

echo "cli_opencl: $checks checks, $fails failures"
[ "$fails" = 0 ]
