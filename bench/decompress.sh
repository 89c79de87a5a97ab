#!/bin/sh
# decompress.sh - whole-file `ecf8 decompress` as a user runs it, on the CPU
# decoder (--engine cpu) and on the OpenCL device (--engine opencl): wall
# time of the whole command (start-up, program loads from the warm caches,
# decode, checksums, the output file written), the two engines alternated
# round by round so background load hits both alike.
#
#   bench/decompress.sh [ROUNDS] [LAYOUT]   (default 7 rounds plus one warm-up;
#                                            stream layout 0 or 1, default 0)
#
# Builds a Release ecf8 in $BUILD_DIR (default build-matmul), compresses the
# fixtures ($ECF8_FIXTURE_DIR, default ~/.cache/ecf8/fixtures; made by
# scripts/make_fixtures.py), prints one JSON object per file on stdout:
# {"file", "layout", "source_bytes", "rounds", "cpu_s", "opencl_s"} (medians) and
# "cpu_s_all"/"opencl_s_all" (every round), and checks every output
# byte for byte.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIXTURES=${ECF8_FIXTURE_DIR:-$HOME/.cache/ecf8/fixtures}
ROUNDS=${1:-7}
LAYOUT=${2:-0}

say() { echo "decompress.sh: $*" >&2; }

. "$ROOT/bench/build_ecf8.sh"
"$ECF8" devices >/dev/null 2>&1 || { say "no OpenCL device: nothing to compare"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

python3 - "$ECF8" "$FIXTURES" "$tmp" "$ROUNDS" "$LAYOUT" <<'EOF'
import filecmp, json, os, statistics, subprocess, sys, time

ecf8, fixtures, tmp, rounds, layout = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
# many-e4m3: 11,595 small tensors (scripts/make_fixtures.py --many)
names = ["minilm-e4m3", "minilm-e5m2", "minilm-bf16", "esrgan-e4m3", "esrgan-bf16", "many-e4m3"]

def run(args):
    t = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t

for name in names:
    src = os.path.join(fixtures, name + ".safetensors")
    if not os.path.exists(src):
        print(f"decompress.sh: skipping {name} (no {src})", file=sys.stderr)
        continue
    ecf = os.path.join(tmp, name + ".ecf8")
    out = os.path.join(tmp, name + ".out.safetensors")
    subprocess.run([ecf8, "compress", "--layout", layout, src, ecf], check=True, stdout=subprocess.DEVNULL)
    times = {"cpu": [], "opencl": []}
    for r in range(rounds + 1):  # round 0 warms the caches
        for engine in ("cpu", "opencl") if r % 2 == 0 else ("opencl", "cpu"):
            t = run([ecf8, "decompress", "--engine", engine, ecf, out])
            if not filecmp.cmp(src, out, shallow=False):
                sys.exit(f"decompress.sh: {name}: --engine {engine} output differs")
            os.remove(out)
            if r:
                times[engine].append(round(t, 4))
    res = {"file": name, "layout": int(layout), "source_bytes": os.path.getsize(src), "rounds": rounds,
           "cpu_s": statistics.median(times["cpu"]), "opencl_s": statistics.median(times["opencl"]),
           "cpu_s_all": times["cpu"], "opencl_s_all": times["opencl"]}
    print(json.dumps(res), flush=True)
    print(f"{name:14s} {res['source_bytes'] / 1e6:6.1f} MB  cpu {res['cpu_s']:.3f} s"
          f"  opencl {res['opencl_s']:.3f} s  (opencl / cpu {res['opencl_s'] / res['cpu_s']:.2f})",
          file=sys.stderr)
EOF
