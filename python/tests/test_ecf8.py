"""Tests of the ecf8 Python package (run by tests/cli_python.sh, or directly:
python3 python/tests/test_ecf8.py [path/to/ecf8 binary]).

 * every tensor of every tests/data/golden/*.ecf8 equals its .safetensors
   original bit for bit, with both backends (the pure one with both of its
   layout-0 decode strategies; layout-1 files, *-v1.2.ecf8, through its
   lane decoder);
 * every tests/data/bad/*.ecf8 listed in MANIFEST.tsv raises the matching
   exception (CorruptError, ChecksumError, VersionError) from both backends;
 * tests/data/minilm-slice-*.safetensors compressed by the ecf8 binary (when
   given) with stream layouts 0 and 1 (several chunk sizes) load identically
   with both backends.
Speeds are measured by python/bench_load.py, not here.

Environment: ECF8_TEST_DATA (default tests/data), ECF8_LIBRARY (libecf8.so
of the build under test).  ECF8_REQUIRE_MODEL=1: the optional packages
(ml_dtypes, zstandard, xxhash) and the library must be present; otherwise
what needs a missing one is skipped with a note.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402

import ecf8  # noqa: E402
from ecf8 import _ctypes, _pure  # noqa: E402

DATA = os.environ.get("ECF8_TEST_DATA") or os.path.join(HERE, "..", "..", "tests", "data")
REQUIRE = os.environ.get("ECF8_REQUIRE_MODEL") == "1"
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def note(msg):
    print("note:", msg)


def read_safetensors(path):
    """{name: (dtype name, shape, raw bytes)}: a minimal safetensors parser."""
    with open(path, "rb") as f:
        b = f.read()
    n, = struct.unpack_from("<Q", b, 0)
    head = json.loads(b[8:8 + n])
    head.pop("__metadata__", None)
    out = {}
    for name, v in head.items():
        s, e = v["data_offsets"]
        out[name] = (v["dtype"], tuple(v["shape"]), b[8 + n + s:8 + n + e])
    return out


def have(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def backends():
    bs = ["pure"]
    try:
        _ctypes.library()
        bs.append("lib")
        print("libecf8:", _ctypes.library()._ecf8_path)
    except ecf8.LibraryNotFoundError as e:
        if REQUIRE:
            check(False, str(e))
        else:
            note("%s; lib backend skipped" % e)
    return bs


def is_v11(path):
    with open(path, "rb") as f:
        head = f.read(16)
    return len(head) == 16 and struct.unpack_from("<I", head, 12)[0] & 1 == 1


def is_lanes(path):
    with open(path, "rb") as f:
        head = f.read(16)
    return len(head) == 16 and struct.unpack_from("<I", head, 12)[0] & 2 == 2


def pure_can_read(path):
    return not is_v11(path) or _pure._zstd is not None or getattr(_pure, "_zstd314", None)


def test_golden(bs):
    import glob
    files = sorted(glob.glob(os.path.join(DATA, "golden", "*.ecf8")))
    check(len(files) >= 12, "golden files found: %d" % len(files))
    for path in files:
        base = os.path.basename(path).split("-")[0]
        orig = read_safetensors(os.path.join(DATA, "golden", base + ".safetensors"))
        runs = [(b, None) for b in bs if b != "pure"]
        if pure_can_read(path) and is_lanes(path):
            runs += [("pure", None)]  # one lane decoder, no strategies
        elif pure_can_read(path):
            runs += [("pure", "doubling"), ("pure", "lockstep")]
        else:
            (check(False, "zstandard missing") if REQUIRE else
             note("zstandard missing: pure backend skips %s" % os.path.basename(path)))
        for backend, strategy in runs:
            _pure._FORCE = strategy
            try:
                got = ecf8.load_file(path, backend=backend)
            finally:
                _pure._FORCE = None
            what = "%s [%s%s]" % (os.path.basename(path), backend, "/" + strategy if strategy else "")
            check(list(got) == list(orig) or set(got) == set(orig), "%s: tensor names" % what)
            for name, (dt, shape, raw) in orig.items():
                a = got.get(name)
                ok = a is not None and a.shape == shape and a.tobytes() == raw
                if ok and ecf8.numpy_dtype(dt) is not None:
                    ok = a.dtype == ecf8.numpy_dtype(dt)
                check(ok, "%s: tensor %s differs" % (what, name))
            one = next(iter(orig))
            a = ecf8.load_tensor(path, one, backend=backend)
            check(a.tobytes() == orig[one][2], "%s: load_tensor(%s)" % (what, one))
        print("ok  %s (%s)" % (os.path.basename(path), ", ".join(
            b + ("/" + s if s else "") for b, s in runs)))
    # dtypes: ml_dtypes types when importable
    if have("ml_dtypes"):
        import ml_dtypes
        check(ecf8.numpy_dtype("F8_E4M3") == ml_dtypes.float8_e4m3fn, "F8_E4M3 dtype")
        check(ecf8.numpy_dtype("BF16") == ml_dtypes.bfloat16, "BF16 dtype")
    elif REQUIRE:
        check(False, "ml_dtypes missing")


def test_errors(bs):
    expect = {"CORRUPT": ecf8.CorruptError, "CHECKSUM": ecf8.ChecksumError,
              "VERSION": ecf8.VersionError}
    n = 0
    with open(os.path.join(DATA, "bad", "MANIFEST.tsv")) as f:
        rows = [l.rstrip("\n").split("\t") for l in f if not l.startswith("#")]
    for file, kind, status, stage, needle in rows:
        if kind != "ecf8":
            continue
        path = os.path.join(DATA, "bad", file)
        for backend in bs:
            if backend == "pure" and not pure_can_read(path):
                continue
            if backend == "pure" and status == "CHECKSUM" and not _pure.checksums_available():
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ecf8.load_file(path, backend=backend)
                check(False, "%s [%s]: no exception (expected %s)" % (file, backend, status))
            except ecf8.Ecf8Error as e:
                ok = isinstance(e, expect[status])
                if backend == "lib":
                    ok = ok and needle.lower() in str(e).lower()
                check(ok, "%s [%s]: %s: %s (expected %s, %r)"
                      % (file, backend, type(e).__name__, e, status, needle))
                n += 1
            except Exception as e:  # anything else is a bug of the reader
                check(False, "%s [%s]: %s: %s" % (file, backend, type(e).__name__, e))
    print("ok  %d corrupt-file cases raise the matching ecf8 exception" % n)
    try:
        ecf8.load_tensor(os.path.join(DATA, "bad", "good.ecf8"), "no such tensor")
        check(False, "missing tensor: no exception")
    except KeyError as e:
        check(isinstance(e, ecf8.TensorNotFoundError), "missing tensor: %r" % e)


def test_minilm(bs, binary):
    """The minilm slices in both stream layouts (layout 1 at chunk sizes that
    leave partial last words and lanes without words), both backends, bit
    for bit against the originals."""
    if not binary:
        note("no ecf8 binary given: minilm slices not compressed")
        return
    n = 0
    with tempfile.TemporaryDirectory() as tmp:
        for dt in ("e4m3", "e5m2", "bf16"):
            src = os.path.join(DATA, "minilm-slice-%s.safetensors" % dt)
            orig = read_safetensors(src)
            for opts in (["--plain-index"], ["--plain-index", "--layout", "1"],
                         ["--layout", "1", "--chunk", "100"], ["--layout", "1", "--chunk", "65536"]):
                dst = os.path.join(tmp, "%s-%d.ecf8" % (dt, n))
                subprocess.run([binary, "compress"] + opts + [src, dst], check=True,
                               stdout=subprocess.DEVNULL)
                for backend in bs:
                    if backend == "pure" and not pure_can_read(dst):
                        continue
                    got = ecf8.load_file(dst, backend=backend)
                    check(set(got) == set(orig) and
                          all(got[k].tobytes() == v[2] for k, v in orig.items()),
                          "minilm-slice-%s %s [%s] differs" % (dt, " ".join(opts), backend))
                n += 1
    print("ok  minilm slices in %d layouts and chunk sizes (%s)" % (n, ", ".join(bs)))


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else None
    print("python %s, numpy %s; ml_dtypes %s, zstandard %s, xxhash %s"
          % (sys.version.split()[0], np.__version__, have("ml_dtypes"), have("zstandard"),
             have("xxhash")))
    if REQUIRE:
        for m in ("ml_dtypes", "zstandard", "xxhash"):
            check(have(m), "ECF8_REQUIRE_MODEL=1 but %s is missing (bash scripts/install-model.sh)" % m)
    bs = backends()
    print("default backend:", ecf8.default_backend())
    test_golden(bs)
    test_errors(bs)
    test_minilm(bs, binary)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
