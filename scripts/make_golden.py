#!/usr/bin/env python3
"""Writes the golden files of format version 1.0, 1.1, 1.2 and 1.3 into tests/data/golden/.

For each coded dtype (F8_E4M3, F8_E5M2, BF16, F16) a small real source
(rows of all-MiniLM-L6-v2 weights from the committed slices, cast with
ml_dtypes) is written as `<dtype>.safetensors`, then compressed with each
forced split by the ecf8 binary given as argument: `<dtype>-<split>.ecf8`.
Format 1.3 (the dtype codes >= 5): `dtypes.safetensors` holds FNUZ casts of
the same rows, FP4 (E2M1) nibbles packed two to a byte in U8 with F8_E8M0
block scales (compressed-tensors `weight_packed` and gpt-oss `_blocks`
names), I8 row-quantised rows and a few random U8 bytes that stay stored;
`dtypes-<split>-v1.3.ecf8` codes it with each split in both stream layouts.
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

    write_v1_3(ecf8, w, emb)


def fp4_packed(x, rng_scale_exps):
    """x [N, K] as FP4 E2M1 nibbles two to a byte (element 2i in the low
    nibble), each 1x32 block divided by its power-of-two scale: what MXFP4
    holds.  Returns (U8 [N, K/2], E8M0 exponents [N, K/32])."""
    n, k = x.shape
    blocks = x.reshape(n, k // 32, 32)
    exps = rng_scale_exps.reshape(n, k // 32)
    q = (blocks / np.exp2(exps.astype(np.float64) - 127)[..., None]).clip(-6, 6)
    nib = q.astype(ml_dtypes.float4_e2m1fn).view(np.uint8).reshape(n, k) & 15
    return (nib[:, 0::2] | nib[:, 1::2] << 4).astype(np.uint8), exps.astype(np.uint8)


def write_v1_3(ecf8, w, emb):
    rng = np.random.default_rng(13)
    g = rng.standard_normal((16, 1536))
    exps = np.clip(np.round(rng.normal(122, 1.0, size=(16, 48))), 120, 124)  # 2^-7 .. 2^-3
    packed, scale_e = fp4_packed(g * np.exp2(exps.repeat(32, axis=1) - 127) * 2, exps)
    gexp = np.clip(np.round(rng.normal(121, 1.0, size=(2, 8, 6))), 119, 124)
    blocks, block_e = fp4_packed(rng.standard_normal((16, 192)) * 0.01, gexp.reshape(16, 6))
    s4 = np.abs(w).max() / 240.0
    row = np.abs(w[:, :384]).max(axis=1, keepdims=True) / 127.0
    src = os.path.join(OUT, "dtypes.safetensors")
    write_safetensors(src, {
        "layer.weight": ("F8_E4M3FNUZ", (w / s4).clip(-240, 240).astype(ml_dtypes.float8_e4m3fnuz)),
        "layer.weight_scale": ("F32", np.array([s4], dtype=np.float32)),
        "emb.weight": ("F8_E5M2FNUZ", (emb / s4).astype(ml_dtypes.float8_e5m2fnuz)),
        "mlp.weight_packed": ("U8", packed),
        "mlp.weight_scale": ("F8_E8M0", scale_e),
        "experts.down_blocks": ("U8", blocks.reshape(2, 8, 6, 16)),
        "experts.down_scales": ("U8", block_e.reshape(2, 8, 6)),
        "q.weight": ("I8", np.round(w[:, :384] / row).astype(np.int8)),
        "q.weight_scale": ("F32", row[:, 0].astype(np.float32)),
        "noise": ("U8", rng.integers(0, 256, size=64, dtype=np.uint8)),
    })
    for split, extra in (("auto", []), ("exponent", []), ("byte", ["--layout", "1"])):
        dst = os.path.join(OUT, f"dtypes-{split}-v1.3.ecf8")
        subprocess.run([ecf8, "compress", "--force", "--split", split, "--chunk", "1024", src, dst] + extra,
                       check=True)
        print(dst, os.path.getsize(dst))


if __name__ == "__main__":
    main()
