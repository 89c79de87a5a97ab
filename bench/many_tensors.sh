#!/bin/sh
# many_tensors.sh - `ecf8 compress` and `ecf8 decompress` of a checkpoint of
# many small real tensors (issue 14: ~11 K tensors, >= 1.6x faster with 2
# threads than 1, >= 150 MB/s per thread): many-e4m3.safetensors
# (scripts/make_fixtures.py --many, made if missing), --threads 1 and 2
# alternated round by round.  Prints one JSON object: {"file", "bytes",
# "tensors", "rounds", "compress_s": {"1": median, "2": median},
# "decompress_s": {...}} and the MB/s.
#
#   bench/many_tensors.sh [ROUNDS]      (default 7)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIXTURES=${ECF8_FIXTURE_DIR:-$HOME/.cache/ecf8/fixtures}
ROUNDS=${1:-7}
say() { echo "many_tensors.sh: $*" >&2; }
. "$ROOT/bench/build_ecf8.sh"
SRC=$FIXTURES/many-e4m3.safetensors
[ -f "$SRC" ] || python3 "$ROOT/scripts/make_fixtures.py" --many >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
python3 - "$ECF8" "$SRC" "$tmp" "$ROUNDS" <<'PY'
import json, os, statistics, struct, subprocess, sys, time
ecf8, src, tmp, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    tensors = len([k for k in json.loads(f.read(n)) if k != "__metadata__"])
size = os.path.getsize(src)
ecf, out = os.path.join(tmp, "m.ecf8"), os.path.join(tmp, "m.out")
def run(args):
    t = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t
comp, dec = {1: [], 2: []}, {1: [], 2: []}
for r in range(rounds + 1):  # round 0 warms the page cache
    for th in (1, 2) if r % 2 == 0 else (2, 1):
        c = run([ecf8, "compress", "--force", "--threads", str(th), src, ecf])
        d = run([ecf8, "decompress", "--engine", "cpu", "--force", "--threads", str(th), ecf, out])
        if open(out, "rb").read() != open(src, "rb").read():
            sys.exit("many_tensors.sh: round trip differs")
        if r:
            comp[th].append(c)
            dec[th].append(d)
med = lambda v: round(statistics.median(v), 4)
res = {"file": os.path.basename(src), "bytes": size, "tensors": tensors, "rounds": rounds,
       "compress_s": {str(k): med(v) for k, v in comp.items()},
       "decompress_s": {str(k): med(v) for k, v in dec.items()}}
res["compress_mb_s"] = {k: round(size / 1e6 / v, 1) for k, v in res["compress_s"].items()}
res["compress_speedup_2_threads"] = round(res["compress_s"]["1"] / res["compress_s"]["2"], 3)
print(json.dumps(res))
PY
