"""Load speed of the ecf8 Python backends: python3 python/bench_load.py [ecf8 binary].

Compresses tests/data/minilm-slice-{e4m3,e5m2,bf16}.safetensors with the
ecf8 binary (default: build/ecf8) in stream layout 0 and layout 1, and
prints, for each backend, original tensor bytes per second of load_file
(best of --repeat runs).  Environment: ECF8_LIBRARY (libecf8.so for the
lib backend; else the package's usual search), ECF8_TEST_DATA.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ecf8  # noqa: E402
from ecf8 import _ctypes  # noqa: E402

ROOT = os.path.dirname(HERE)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary", nargs="?", default=os.path.join(ROOT, "build", "ecf8"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data = os.environ.get("ECF8_TEST_DATA") or os.path.join(ROOT, "tests", "data")
    bs = ["pure"]
    try:
        _ctypes.library()
        bs.insert(0, "lib")
    except ecf8.LibraryNotFoundError as e:
        print("lib backend skipped:", e)
    print("%s, %d cores visible; MB/s = original tensor bytes / load_file seconds, best of %d"
          % (cpu_name(), os.cpu_count(), args.repeat))
    with tempfile.TemporaryDirectory() as tmp:
        for dt in ("e4m3", "e5m2", "bf16"):
            src = os.path.join(data, "minilm-slice-%s.safetensors" % dt)
            total = None
            for layout in ("0", "1"):
                dst = os.path.join(tmp, "%s-%s.ecf8" % (dt, layout))
                subprocess.run([args.binary, "compress", "--layout", layout, src, dst],
                               check=True, stdout=subprocess.DEVNULL)
                line = []
                for backend in bs:
                    best = None
                    for _ in range(args.repeat):
                        t0 = time.perf_counter()
                        got = ecf8.load_file(dst, backend=backend)
                        dtm = time.perf_counter() - t0
                        best = dtm if best is None else min(best, dtm)
                    total = sum(a.nbytes for a in got.values())
                    line.append("%s %.1f MB/s (%.0f ms)" % (backend, total / best / 1e6, best * 1e3))
                print("minilm-slice-%s (%.2f MB, %d tensors), layout %s: %s"
                      % (dt, total / 1e6, len(got), layout, ", ".join(line)))


if __name__ == "__main__":
    main()
