#!/usr/bin/env python3
"""Writes the golden files of format version 1.0, 1.1 and 1.2 into tests/data/golden/.

For each coded dtype (F8_E4M3, F8_E5M2, BF16, F16) a small real source
(rows of all-MiniLM-L6-v2 weights from the committed slices, cast with
ml_dtypes) is written as `<dtype>.safetensors`, then compressed with each
forced split by the ecf8 binary given as argument: `<dtype>-<split>.ecf8`.
The .ecf8 files are committed: later versions of the library must keep
reading them and rebuilding the sources byte for byte (tests/test_golden.c).
Run only when the format version changes: files of earlier versions must
stay byte-identical (the script rewrites them; `git diff` shows any change).
"""
import json, os, struct, subprocess, sys

import ml_dtypes
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(DATA, "golden")


def read_tensor(path, name):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        meta = header[name]
        a, b = meta["data_offsets"]
        f.seek(8 + n + a)
        raw = f.read(b - a)
    dt = {"BF16": ml_dtypes.bfloat16, "F8_E4M3": ml_dtypes.float8_e4m3fn}[meta["dtype"]]
    return np.frombuffer(raw, dtype=dt).reshape(meta["shape"]).astype(np.float32)


def write_safetensors(path, tensors):
    header, blobs, off = {"__metadata__": {"ecf8": "golden v1"}}, [], 0
    for name, (dtype, arr) in tensors.items():
        raw = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_golden.py path/to/ecf8")
    ecf8 = sys.argv[1]
    w = read_tensor(os.path.join(DATA, "minilm-slice-bf16.safetensors"),
                    "encoder.layer.2.output.dense.weight")[:16]          # [16, 1536] real
    emb = read_tensor(os.path.join(DATA, "minilm-slice-e4m3.safetensors"),
                      "embeddings.word_embeddings.weight")[:8]           # [8, 384] real
    scale = np.abs(w).max() / 448.0
    casts = {
        "F8_E4M3": lambda x: (x / scale).clip(-448, 448).astype(ml_dtypes.float8_e4m3fn),
        "F8_E5M2": lambda x: (x / scale).clip(-57344, 57344).astype(ml_dtypes.float8_e5m2),
        "BF16": lambda x: x.astype(ml_dtypes.bfloat16),
        "F16": lambda x: x.astype(np.float16),
    }
    os.makedirs(OUT, exist_ok=True)
    for dtype, cast in casts.items():
        src = os.path.join(OUT, dtype.lower() + ".safetensors")
        write_safetensors(src, {
            "layer.weight": (dtype, cast(w)),
            "layer.bias": (dtype, cast(emb[0, :40])),
            "layer.weight_scale_inv": ("F32", np.array([[scale]], dtype=np.float32)),
            "emb.weight": (dtype, cast(emb)),
            "steps": ("I64", np.arange(3, dtype=np.int64)),
        })
        # Format 1.0 (plain index) for both splits, format 1.1 (zstd index).
        # Format 1.2: stream layout 1 (lane streams) for both splits.
        for split, suffix, extra in (("exponent", "", ["--plain-index"]), ("byte", "", ["--plain-index"]),
                                     ("byte", "-v1.1", []), ("exponent", "-v1.2", ["--layout", "1"]),
                                     ("byte", "-v1.2", ["--layout", "1"])):
            dst = os.path.join(OUT, f"{dtype.lower()}-{split}{suffix}.ecf8")
            subprocess.run([ecf8, "compress", "--force", "--split", split, "--chunk", "1024", src, dst] + extra,
                           check=True)
            print(dst, os.path.getsize(dst))


if __name__ == "__main__":
    main()
