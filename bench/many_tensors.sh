#!/bin/sh
# many_tensors.sh - `ecf8 compress` and `ecf8 decompress` of a checkpoint of
# many small real tensors (issue 14: ~11 K tensors, >= 1.6x faster with 2
# threads than 1, >= 150 MB/s per thread): many-e4m3.safetensors
# (scripts/make_fixtures.py --many, made if missing), --threads 1 and 2
# alternated round by round, each run writing a new file (the previous
# output is deleted before, untimed).  Prints one JSON object: {"file", "bytes",
# "tensors", "rounds", "cpu", "load" (/proc/loadavg before and after),
# "compress_s": {"1": median, "2": median}, "decompress_s": {...}}, the
# MB/s and the 2-thread speedups, and the median CPU seconds (user + system)
# of the 1-thread runs, which other jobs on the machine disturb least.  With BASELINE=/path/to/another/ecf8, that
# tool runs in the same rounds too (alternated with this build's) and its
# figures are under "baseline": before and after from one run.
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
python3 - "$ECF8" "$SRC" "$tmp" "$ROUNDS" "${BASELINE:-}" <<'PY'
import json, os, resource, statistics, struct, subprocess, sys, time
ecf8, src, tmp, rounds, baseline = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    tensors = len([k for k in json.loads(f.read(n)) if k != "__metadata__"])
size = os.path.getsize(src)
tools = [ecf8] + ([baseline] if baseline else [])
ecf, out = os.path.join(tmp, "m.ecf8"), os.path.join(tmp, "m.out")
original = open(src, "rb").read()
cpu_s = {}  # CPU seconds (user + system) of each run, by its arguments' kind
def run(args):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    run.cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    return wall
def loadavg():
    return open("/proc/loadavg").read().split()[:3]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
comp = {(tool, th): [] for tool in tools for th in (1, 2)}
dec = {(tool, th): [] for tool in tools for th in (1, 2)}
comp_cpu = {(tool, th): [] for tool in tools for th in (1, 2)}
dec_cpu = {(tool, th): [] for tool in tools for th in (1, 2)}
load_before = loadavg()
for r in range(rounds + 1):  # round 0 warms the page cache
    for tool in tools if r % 2 == 0 else tools[::-1]:
        for th in (1, 2) if r % 2 == 0 else (2, 1):
            # Outputs are new files: replacing one makes the rename free the
            # old file's pages (7 ms for 25 MB here), which is not the tool's work.
            for f in (ecf, out):
                if os.path.exists(f): os.unlink(f)
            c = run([tool, "compress", "--threads", str(th), src, ecf])
            c_cpu = run.cpu
            d = run([tool, "decompress", "--engine", "cpu", "--threads", str(th), ecf, out])
            d_cpu = run.cpu
            if open(out, "rb").read() != original:
                sys.exit("many_tensors.sh: round trip differs")
            if r:
                comp[tool, th].append(c)
                dec[tool, th].append(d)
                comp_cpu[tool, th].append(c_cpu)
                dec_cpu[tool, th].append(d_cpu)
med = lambda v: round(statistics.median(v), 4)
def figures(tool):
    res = {"compress_s": {str(th): med(comp[tool, th]) for th in (1, 2)},
           "decompress_s": {str(th): med(dec[tool, th]) for th in (1, 2)}}
    for what in ("compress", "decompress"):
        s = res[what + "_s"]
        res[what + "_mb_s"] = {k: round(size / 1e6 / v, 1) for k, v in s.items()}
        res[what + "_speedup_2_threads"] = round(s["1"] / s["2"], 3)
    # CPU time of the 1-thread runs: what a busy machine disturbs least.
    res["compress_1_thread_cpu_s"] = med(comp_cpu[tool, 1])
    res["decompress_1_thread_cpu_s"] = med(dec_cpu[tool, 1])
    return res
res = {"file": os.path.basename(src), "bytes": size, "tensors": tensors, "rounds": rounds, "cpu": cpu,
       "load": {"before": load_before, "after": loadavg()}}
res.update(figures(ecf8))
if baseline:
    res["baseline"] = dict(tool=baseline, **figures(baseline))
print(json.dumps(res))
PY
