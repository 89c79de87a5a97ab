#!/usr/bin/env python3
"""Make the seed corpora of the ecf8 fuzz targets (tests/fuzz/corpus/<target>/).

Good seeds are tiny safetensors files cut from the real-weight slices in
tests/data (so the codec sees real exponent statistics), the .ecf8 files
the CLI makes from them with several options, and the coded streams and
histograms inside those; broken seeds are the usual ways files go wrong
(truncation, bad lengths, overlapping or missing data, flipped bytes).
Everything is deterministic; the whole corpus stays well under 1 MB.

usage: make_corpus.py ECF8_CLI [OUT_DIR]   (OUT_DIR defaults to tests/fuzz/corpus)
"""
import json, os, shutil, struct, subprocess, sys, tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"


def read_st(path):
    b = path.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return h, b[8 + n:]


def tensor_bytes(path, name):
    h, data = read_st(path)
    a, e = h[name]["data_offsets"]
    return h[name], data[a:e]


def write_st(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, bytes) -> safetensors bytes."""
    header, pos, blobs = {}, 0, []
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [pos, pos + len(raw)]}
        pos += len(raw)
        blobs.append(raw)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    return struct.pack("<Q", len(js)) + js + b"".join(blobs)


def rows(raw, shape, n_rows, n_cols, width):
    """The top-left n_rows x n_cols block of a row-major 2-D tensor."""
    cols = shape[1]
    return b"".join(raw[(r * cols) * width:(r * cols + n_cols) * width] for r in range(n_rows))


def good_safetensors():
    e4 = DATA / "minilm-slice-e4m3.safetensors"
    e5 = DATA / "minilm-slice-e5m2.safetensors"
    bf = DATA / "minilm-slice-bf16.safetensors"
    w8, w8raw = tensor_bytes(e4, "encoder.layer.0.attention.output.dense.weight")
    s8, s8raw = tensor_bytes(e4, "encoder.layer.0.attention.output.dense.weight_scale_inv")
    w5, w5raw = tensor_bytes(e5, "encoder.layer.1.attention.output.dense.weight")
    wb, wbraw = tensor_bytes(bf, "encoder.layer.2.output.dense.weight")
    fp8 = rows(w8raw, w8["shape"], 16, 64, 1)
    bf16 = rows(wbraw, wb["shape"], 8, 48, 2)
    e5m2 = rows(w5raw, w5["shape"], 8, 64, 1)
    f32 = np.frombuffer(bf16[:64], dtype="<u2").astype("<u4") << 16
    f16 = f32.view("<f4").astype("<f2").tobytes()
    out = {}
    out["mixed"] = write_st([("a.weight", "F8_E4M3", [16, 64], fp8),
                             ("a.weight_scale_inv", "F32", [3, 3], s8raw),
                             ("b.weight", "BF16", [8, 48], bf16)],
                            {"format": "pt"})
    out["e5m2_f16"] = write_st([("c.weight", "F8_E5M2", [8, 64], e5m2),
                                ("d.weight", "F16", [32], f16),
                                ("ids", "I64", [4], struct.pack("<4q", 0, 1, 2, 3))])
    out["edge"] = write_st([("scalar", "F8_E4M3", [], fp8[:1]),
                            ("empty", "BF16", [0, 4], b""),
                            ("zeros", "F8_E4M3", [2000], bytes(2000)),
                            ("mask", "U8", [5], b"\x01\x00\x01\x01\x00"),
                            ("x", "BF16", [2, 1, 3], bf16[:12])],
                           {"k": "v"})
    out["long_rows"] = write_st([("w", "F8_E4M3", [2, 300], w8raw[:600]),
                                 ("v", "BF16", [1, 200], wbraw[:400])])
    # Format 1.3 dtypes: real FP8 bytes as FNUZ and as packed U8, E8M0
    # exponents and I8 high bytes from the same weights.
    e8m0 = bytes(118 + ((b >> 3) & 7) for b in fp8[:128])
    out["v13"] = write_st([("a.weight", "F8_E4M3FNUZ", [16, 64], fp8),
                           ("b.weight", "F8_E5M2FNUZ", [8, 64], e5m2),
                           ("p.weight_packed", "U8", [8, 64], e5m2),
                           ("p.weight_scale", "F8_E8M0", [16, 8], e8m0),
                           ("q.weight", "I8", [8, 48], bf16[1::2])])
    return out


def broken_safetensors(good):
    g = good["mixed"]
    n = struct.unpack("<Q", g[:8])[0]
    h = json.loads(g[8:8 + n])
    body = g[8 + n:]
    out = {}
    out["truncated"] = g[:len(g) - 7]
    out["short"] = g[:5]
    out["hlen_huge"] = struct.pack("<Q", 1 << 40) + g[8:]
    out["not_json"] = struct.pack("<Q", 8) + b"[1,2,3] " + body
    def with_header(hh, data=body):
        js = json.dumps(hh, separators=(",", ":")).encode()
        return struct.pack("<Q", len(js)) + js + data
    bad = json.loads(json.dumps(h)); bad["b.weight"]["data_offsets"][0] -= 4
    out["overlap"] = with_header(bad)
    bad = json.loads(json.dumps(h)); bad["a.weight"]["shape"] = [16, 65]
    out["shape_mismatch"] = with_header(bad)
    bad = json.loads(json.dumps(h)); bad["a.weight"]["dtype"] = "F8_E4M3_XXXXXXXXX"
    out["long_dtype"] = with_header(bad)
    bad = json.loads(json.dumps(h)); bad["a.weight"]["shape"] = [1] * 9
    out["rank9"] = with_header(bad)
    bad = json.loads(json.dumps(h)); bad["a.weight"]["shape"] = [2**40, 2**40]
    out["shape_overflow"] = with_header(bad)
    out["gap"] = with_header(h, body + b"\0" * 8)
    return out


def ecf8_parse(b):
    """Coded tensors of an .ecf8 file: (dtype, split, code_bits, rows, cols, crows, ccols, payload)."""
    meta_off = struct.unpack_from("<Q", b, 24)[0]
    n_src, _flags, n_t = struct.unpack_from("<IIQ", b, meta_off)
    res = []
    for i in range(n_t):
        e = meta_off + 32 + 48 * n_src + 192 * i
        dtype, split, _nd, cbits = b[e + 24], b[e + 25], b[e + 26], b[e + 27]
        poff, plen, r, c, cr, cc, coded = struct.unpack_from("<7Q", b, e + 112)
        if split:
            res.append((dtype, split, cbits, r, c, cr, cc, coded, b[poff:poff + plen]))
    return res


def stream_seed(t):
    """A coded tensor in the fuzz_stream input format (nibble lengths, u16
    geometry, computed chunk count, u16 chunk sizes)."""
    dtype, split, cbits, r, c, cr, cc, coded, p = t
    if max(r, c, cr, cc) >= 65536:
        return None
    nsym = {1: 16, 2: 32, 3: 256, 4: 32, 5: 16, 6: 32}[dtype] if split == 1 else 256
    nchunks = -(-r // cr) * -(-c // cc)
    off0 = (nsym // 2 + 7) // 8 * 8
    offs = struct.unpack_from("<%dQ" % (nchunks + 1), p, off0)
    if any(offs[i + 1] - offs[i] >= 65536 for i in range(nchunks)):
        return None
    s = bytes([dtype, split, cbits, 0]) + struct.pack("<4H", r, c, cr, cc) + p[:nsym // 2]
    s += b"".join(struct.pack("<H", offs[i + 1] - offs[i]) for i in range(nchunks))
    return s + p[off0 + 8 * (nchunks + 1):off0 + 8 * (nchunks + 1) + coded - 8]


def main():
    cli = sys.argv[1]
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "tests" / "fuzz" / "corpus"
    dirs = {k: out / k for k in ("fuzz_safetensors", "fuzz_container", "fuzz_stream", "fuzz_codebook")}
    for d in dirs.values():
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    good = good_safetensors()
    for k, v in good.items():
        (dirs["fuzz_safetensors"] / f"good_{k}.safetensors").write_bytes(v)
    for k, v in broken_safetensors(good).items():
        (dirs["fuzz_safetensors"] / f"bad_{k}.safetensors").write_bytes(v)

    tmp = Path(tempfile.mkdtemp())
    try:
        containers = {}
        plain = {}  # the same with a format 1.0 (plain) index, which ecf8_parse reads
        variants = {"auto": [], "exponent": ["--split", "exponent"], "byte": ["--split", "byte"],
                    "chunk64": ["--chunk", "64"], "bits9": ["--max-code-bits", "9"]}
        for k, v in good.items():
            src = tmp / f"{k}.safetensors"
            src.write_bytes(v)
            for vn, args in variants.items():
                if k in ("edge", "e5m2_f16") and vn not in ("auto", "chunk64"):
                    continue
                if k == "v13" and vn not in ("auto", "exponent"):
                    continue
                dst = tmp / f"{k}_{vn}.ecf8"
                subprocess.run([cli, "compress", str(src), str(dst)] + args, check=True)
                containers[f"{k}_{vn}"] = dst.read_bytes()
                dst_plain = tmp / f"{k}_{vn}-plain.ecf8"
                subprocess.run([cli, "compress", str(src), str(dst_plain), "--plain-index"] + args,
                               check=True)
                plain[f"{k}_{vn}"] = dst_plain.read_bytes()
        shard = tmp / "sharded"
        shard.mkdir()
        (shard / "model-00001-of-00002.safetensors").write_bytes(good["edge"])
        (shard / "model-00002-of-00002.safetensors").write_bytes(good["long_rows"])
        (shard / "model.safetensors.index.json").write_text(json.dumps(
            {"metadata": {}, "weight_map": {"w": "model-00002-of-00002.safetensors"}}))
        subprocess.run([cli, "compress", str(shard), str(tmp / "sharded.ecf8")], check=True)
        containers["sharded"] = (tmp / "sharded.ecf8").read_bytes()
    finally:
        shutil.rmtree(tmp)

    for k, v in containers.items():
        (dirs["fuzz_container"] / f"good_{k}.ecf8").write_bytes(v)
    for k in ("mixed_auto", "mixed_chunk64"):  # format 1.0 readers' paths too
        (dirs["fuzz_container"] / f"good_{k}-v1.0.ecf8").write_bytes(plain[k])
    g = containers["mixed_auto"]
    broken = {"truncated": g[:-64], "short": g[:40], "bad_magic": b"\x89ECF9" + g[5:],
              "version2": g[:8] + b"\x02" + g[9:], "flip_index": g[:-40] + bytes([g[-40] ^ 1]) + g[-39:],
              "flip_payload": g[:200] + bytes([g[200] ^ 0x10]) + g[201:]}
    for k, v in broken.items():
        (dirs["fuzz_container"] / f"bad_{k}.ecf8").write_bytes(v)

    n = 0
    for k in ("mixed_auto", "mixed_exponent", "mixed_byte", "mixed_chunk64", "long_rows_chunk64",
              "e5m2_f16_auto", "edge_auto", "mixed_bits9", "v13_auto"):
        for t in ecf8_parse(plain[k]):
            s = stream_seed(t)
            if s is not None:
                (dirs["fuzz_stream"] / f"good_{k}_{n}.bin").write_bytes(s)
                n += 1

    # Codebook seeds: real histograms (mode 0) and real/odd length sets (mode 1).
    fp8 = np.frombuffer(good["mixed"][-(8 * 48 * 2 + 16 * 64 + 36):][:16 * 64], np.uint8)
    hist_byte = np.bincount(fp8, minlength=256)
    hist_exp = np.bincount((fp8 >> 3) & 15, minlength=16)
    cb = dirs["fuzz_codebook"]
    cb.joinpath("counts_byte_12.bin").write_bytes(bytes([0, 12]) + struct.pack("<H", 256) + bytes([3]) +
                                                  b"".join(struct.pack("<I", int(x)) for x in hist_byte))
    cb.joinpath("counts_exp_4.bin").write_bytes(bytes([0, 4]) + struct.pack("<H", 16) + bytes([3]) +
                                                b"".join(struct.pack("<I", int(x)) for x in hist_exp))
    fib = [1, 1]
    while len(fib) < 40:
        fib.append(fib[-1] + fib[-2])
    cb.joinpath("counts_fib_13.bin").write_bytes(bytes([0, 13]) + struct.pack("<H", 40) + bytes([7]) +
                                                 b"".join(struct.pack("<Q", x) for x in fib))
    cb.joinpath("counts_one.bin").write_bytes(bytes([0, 12, 16, 0, 0]) + bytes(5) + b"\x07" + bytes(10))
    cb.joinpath("lengths_flat8.bin").write_bytes(bytes([1, 8]) + struct.pack("<H", 256) + bytes([8] * 256))
    cb.joinpath("lengths_skew.bin").write_bytes(bytes([1, 5]) + struct.pack("<H", 16) +
                                                bytes([1, 2, 3, 4, 5, 5] + [0] * 10))
    cb.joinpath("lengths_one.bin").write_bytes(bytes([1, 0]) + struct.pack("<H", 32) + bytes(7) + b"\x01" + bytes(24))
    cb.joinpath("lengths_overfull.bin").write_bytes(bytes([1, 3]) + struct.pack("<H", 16) +
                                                    bytes([1, 2, 2, 3] + [0] * 12))
    total = sum(f.stat().st_size for d in dirs.values() for f in d.iterdir())
    print(f"corpus: {sum(len(list(d.iterdir())) for d in dirs.values())} files, {total} bytes")


if __name__ == "__main__":
    main()
