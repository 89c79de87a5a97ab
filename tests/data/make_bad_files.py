#!/usr/bin/env python3
"""Regenerates tests/data/bad/: small golden broken .safetensors and .ecf8 files.

    python3 tests/data/make_bad_files.py [--ecf8 build/ecf8]

Everything starts from a tiny real checkpoint cut out of
tests/data/minilm-slice-e5m2.safetensors (4 rows of one F8_E5M2 weight and a
row of its F32 scale), compressed with the ecf8 CLI; each bad file then breaks
exactly one thing.  Index and header fields are changed *and re-hashed*
(XXH3-64 through Debian's libxxhash), so the structural check behind the
checksum is what fires.  MANIFEST.tsv lists, per file, what the library must
answer:

    file  kind  status  stage  needle

kind     safetensors | ecf8
status   the ECF8_ERR_* name the library must return
stage    parse  (safetensors: compress/info fail)
         open   (ecf8_file_open fails: so do verify, decompress, info)
         decode (the file opens; verify, decompress and info fail)
needle   a substring the one-line error message must contain

The container layout used here is the one written by src/container_write.c (see the
comment at its top); regenerate after an intentional format change.
"""
import argparse
import ctypes
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "bad")
SOURCE = os.path.join(HERE, "minilm-slice-e5m2.safetensors")
WEIGHT = "encoder.layer.1.attention.output.dense.weight"
SCALE = WEIGHT + "_scale_inv"
ROWS = 4

_xx = ctypes.CDLL("libxxhash.so.0")
_xx.XXH3_64bits.restype = ctypes.c_uint64
_xx.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def xxh3(b):
    b = bytes(b)
    return _xx.XXH3_64bits(b, len(b))


def u64(b, at):
    return struct.unpack_from("<Q", b, at)[0]


def u32(b, at):
    return struct.unpack_from("<I", b, at)[0]


def put64(b, at, v):
    struct.pack_into("<Q", b, at, v & 0xFFFFFFFFFFFFFFFF)


def put32(b, at, v):
    struct.pack_into("<I", b, at, v & 0xFFFFFFFF)


# ---- safetensors ------------------------------------------------------------
def read_safetensors(path):
    raw = open(path, "rb").read()
    hl = u64(raw, 0)
    header = json.loads(raw[8 : 8 + hl])
    return header, raw[8 + hl :]


def safetensors_bytes(header_text, data):
    h = header_text.encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def dump(header):
    return json.dumps(header, separators=(",", ":"))


def tiny_source():
    """4 rows of a real E5M2 weight and one row of its scale."""
    header, data = read_safetensors(SOURCE)
    w, s = header[WEIGHT], header[SCALE]
    cols = w["shape"][1]
    wdata = data[w["data_offsets"][0] : w["data_offsets"][0] + ROWS * cols]
    sdata = data[s["data_offsets"][0] : s["data_offsets"][0] + 4 * s["shape"][1]]
    h = {
        "__metadata__": {"format": "pt", "source": "minilm-slice-e5m2, first rows"},
        "w": {"dtype": "F8_E5M2", "shape": [ROWS, cols], "data_offsets": [0, len(wdata)]},
        "s": {"dtype": "F32", "shape": [1, s["shape"][1]], "data_offsets": [len(wdata), len(wdata) + len(sdata)]},
    }
    return h, wdata + sdata


# ---- ecf8 -------------------------------------------------------------------
HEADER_BYTES, META_HEADER, SOURCE_ENTRY, TENSOR_ENTRY = 64, 32, 48, 192


class Ecf8:
    """Offsets of the interesting fields of a container image."""

    def __init__(self, img):
        self.img = bytearray(img)
        self.meta = u64(img, 24)
        self.meta_len = u64(img, 32)
        m = self.meta
        self.n_sources = u32(img, m)
        self.n_tensors = u64(img, m + 8)
        self.blob = m + u64(img, m + 16)

    def source(self, i):
        return self.meta + META_HEADER + SOURCE_ENTRY * i

    def tensor(self, i):
        return self.meta + META_HEADER + SOURCE_ENTRY * self.n_sources + TENSOR_ENTRY * i

    def rehash(self):
        b = self.img
        put64(b, 40, xxh3(b[self.meta : self.meta + self.meta_len]))
        put64(b, 56, xxh3(b[:56]))
        return bytes(b)

    def rehash_header(self):
        put64(self.img, 56, xxh3(self.img[:56]))
        return bytes(self.img)


def run(cmd):
    subprocess.run(cmd, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ecf8", default=None, help="path of the ecf8 CLI (default: build*/ecf8)")
    args = ap.parse_args()
    cli = args.ecf8
    if not cli:
        root = os.path.dirname(os.path.dirname(HERE))
        for d in ("build", "build-tests"):
            if os.access(os.path.join(root, d, "ecf8"), os.X_OK):
                cli = os.path.join(root, d, "ecf8")
                break
    if not cli:
        sys.exit("make_bad_files.py: no ecf8 binary found; pass --ecf8 PATH")

    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    manifest = []

    def emit(name, content, kind, status, stage, needle):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(content)
        manifest.append((name, kind, status, stage, needle))

    # -- the good files ------------------------------------------------------
    header, data = tiny_source()
    good_st = safetensors_bytes(dump(header), data)
    hl = u64(good_st, 0)
    wbytes = header["w"]["data_offsets"][1]
    with open(os.path.join(OUT, "good.safetensors"), "wb") as f:
        f.write(good_st)
    tmp = tempfile.mkdtemp()
    good_ecf8_path = os.path.join(OUT, "good.ecf8")
    # The exponent split gives every element raw bits (used below); two
    # rows per chunk give two chunks.  The index is written plain (format
    # 1.0) so that its fields can be edited; good-z.ecf8 is the same file
    # with the zstd-compressed index of format 1.1.
    compress_good = [cli, "compress", os.path.join(OUT, "good.safetensors"), "--split", "exponent",
                     "--chunk", str(2 * header["w"]["shape"][1]), "--threads", "1"]
    run(compress_good + [good_ecf8_path, "--plain-index"])
    run(compress_good + [os.path.join(OUT, "good-z.ecf8")])
    good_z = open(os.path.join(OUT, "good-z.ecf8"), "rb").read()
    good = open(good_ecf8_path, "rb").read()
    shard_dir = os.path.join(tmp, "ckpt")
    os.mkdir(shard_dir)
    with open(os.path.join(shard_dir, "model.safetensors"), "wb") as f:
        f.write(good_st)
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
        f.write('{"metadata": {}, "weight_map": {"w": "model.safetensors", "s": "model.safetensors"}}\n')
    run([cli, "compress", shard_dir, os.path.join(OUT, "good-dir.ecf8"), "--split", "exponent", "--threads", "1",
         "--plain-index"])
    good_dir = open(os.path.join(OUT, "good-dir.ecf8"), "rb").read()

    # -- broken safetensors --------------------------------------------------
    def st_variant(name, status, needle, mutate=None, raw=None):
        if raw is None:
            h = json.loads(dump(header))
            d = mutate(h)
            raw = safetensors_bytes(dump(h), d if d is not None else data)
        emit(name, raw, "safetensors", status, "parse", needle)

    C = "CORRUPT"
    emit("st-empty.safetensors", b"", "safetensors", C, "parse", "too short")
    emit("st-short.safetensors", good_st[:5], "safetensors", C, "parse", "too short")
    emit("st-truncated-header.safetensors", good_st[: 8 + hl // 2], "safetensors", C, "parse", "past the end of the file")
    emit("st-truncated-data.safetensors", good_st[:-7], "safetensors", C, "parse", "past the end of the file")
    b = bytearray(good_st)
    put64(b, 0, len(good_st))
    emit("st-header-len-past-eof.safetensors", bytes(b), "safetensors", C, "parse", "runs past the end")
    put64(b, 0, 0xFFFFFFFFFFFFFFFF)
    emit("st-header-len-huge.safetensors", bytes(b), "safetensors", C, "parse", "runs past the end")
    put64(b, 0, 0)
    emit("st-header-len-zero.safetensors", bytes(b), "safetensors", C, "parse", "not a JSON object")
    text = dump(header)
    st_variant("st-invalid-json.safetensors", C, "not a JSON object",
               raw=safetensors_bytes(text[:-1] + " ", data))
    st_variant("st-json-not-object.safetensors", C, "not a JSON object",
               raw=safetensors_bytes("[1,2,3]", data))
    colon = text.index(":")
    st_variant("st-json-nul.safetensors", C, "not a JSON object",
               raw=safetensors_bytes(text[:colon] + "\0" + text[colon + 1 :], data))

    def set_(path, value):
        def m(h):
            node = h
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = value
        return m

    st_variant("st-offsets-past-eof.safetensors", C, "past the end of the file",
               set_(["s", "data_offsets"], [wbytes, wbytes + 4096]))
    st_variant("st-offsets-2p53.safetensors", C, "past the end of the file",
               set_(["s", "data_offsets"], [wbytes, 2**53]))
    st_variant("st-offsets-2p60.safetensors", C, "bad data_offsets",
               set_(["s", "data_offsets"], [wbytes, 2**60 + 1]))
    st_variant("st-offsets-reversed.safetensors", C, "bad data_offsets",
               set_(["w", "data_offsets"], [wbytes, 0]))
    st_variant("st-offsets-negative.safetensors", C, "bad data_offsets",
               set_(["w", "data_offsets"], [-1, wbytes - 1]))
    st_variant("st-offsets-fraction.safetensors", C, "bad data_offsets",
               set_(["w", "data_offsets"], [0.5, wbytes]))
    st_variant("st-offsets-one.safetensors", C, "lacks dtype, shape or data_offsets",
               set_(["w", "data_offsets"], [0]))

    def overlap(h):
        h["s"]["data_offsets"] = [wbytes - 4, wbytes + 8]
        return None
    st_variant("st-overlap.safetensors", C, "overlaps", overlap)

    def gap(h):
        h["s"]["data_offsets"] = [wbytes + 4, wbytes + 16]
        return data[:wbytes] + b"\0" * 4 + data[wbytes:]
    st_variant("st-gap.safetensors", C, "leaves a gap", gap)
    emit("st-trailing-bytes.safetensors", good_st + b"\0" * 4, "safetensors", C, "parse",
         "4 bytes after the last tensor")
    st_variant("st-shape-overflow.safetensors", C, "shape overflows",
               set_(["w", "shape"], [2**32, 2**32, 16]))
    st_variant("st-shape-mismatch.safetensors", C, "shape needs",
               set_(["w", "shape"], [ROWS, header["w"]["shape"][1] + 1]))
    st_variant("st-shape-bytes-f32.safetensors", C, "shape needs",
               set_(["s", "shape"], [1, 2]))
    st_variant("st-too-many-dims.safetensors", "UNSUPPORTED", "9 dimensions",
               set_(["s", "shape"], [1, 1, 1, 1, 1, 1, 1, 1, 3]))
    st_variant("st-shape-not-number.safetensors", C, "bad shape", set_(["w", "shape"], ["4", 384]))
    st_variant("st-shape-negative.safetensors", C, "bad shape", set_(["w", "shape"], [-4, -384]))

    def drop(key, field):
        def m(h):
            del h[key][field]
        return m
    st_variant("st-missing-dtype.safetensors", C, "lacks dtype", drop("w", "dtype"))
    st_variant("st-missing-offsets.safetensors", C, "lacks dtype", drop("s", "data_offsets"))
    st_variant("st-dtype-not-string.safetensors", C, "lacks dtype", set_(["w", "dtype"], 8))
    st_variant("st-dtype-too-long.safetensors", C, "unknown dtype", set_(["w", "dtype"], "F8_E5M2_WITH_A_LONG_NAME"))
    st_variant("st-metadata-not-object.safetensors", C, "__metadata__ is not an object",
               set_(["__metadata__"], "pt"))
    st_variant("st-tensor-not-object.safetensors", C, "is not an object", set_(["w"], [1, 2]))

    # -- broken containers ---------------------------------------------------
    def ecf8_emit(name, content, status, stage, needle):
        emit(name, content, "ecf8", status, stage, needle)

    E = Ecf8(good)
    size = len(good)
    t0, t1 = E.tensor(0), E.tensor(1)
    assert good[t0 + 25] == 1, "tensor 0 must use the exponent split"
    assert good[t1 + 25] == 0, "tensor 1 (F32) must be stored"
    p0, p0_bytes = u64(good, t0 + 112), u64(good, t0 + 120)
    p1 = u64(good, t1 + 112)

    ecf8_emit("ecf8-empty.ecf8", b"", C, "open", "too short")
    ecf8_emit("ecf8-short.ecf8", good[:40], C, "open", "too short")
    ecf8_emit("ecf8-header-only.ecf8", good[:64], C, "open", "truncated")
    ecf8_emit("ecf8-truncated-payload.ecf8", good[: p0 + 40], C, "open", "truncated")
    ecf8_emit("ecf8-truncated-index.ecf8", good[: E.meta + 100], C, "open", "truncated")
    ecf8_emit("ecf8-truncated-1.ecf8", good[:-1], C, "open", "truncated")
    ecf8_emit("ecf8-appended.ecf8", good + b"\0" * 64, C, "open", "header says")
    ecf8_emit("ecf8-safetensors.ecf8", good_st, C, "open", "bad magic")

    def mod(fn, which="both"):
        e = Ecf8(good)
        fn(e.img)
        return e.rehash() if which == "both" else e.rehash_header() if which == "header" else bytes(e.img)

    def flip(at, bits=1):
        def f(b):
            b[at] ^= bits
        return f

    ecf8_emit("ecf8-bad-magic.ecf8", mod(flip(1, 0x10), "none"), C, "open", "bad magic")
    ecf8_emit("ecf8-bad-magic-rehashed.ecf8", mod(flip(7, 0x01)), C, "open", "bad magic")
    ecf8_emit("ecf8-header-checksum.ecf8", mod(flip(48, 0x01), "none"), "CHECKSUM", "open", "header checksum")
    ecf8_emit("ecf8-header-checksum-field.ecf8", mod(flip(60, 0x80), "none"), "CHECKSUM", "open", "header checksum")
    ecf8_emit("ecf8-version-2.ecf8", mod(lambda b: struct.pack_into("<H", b, 8, 2)), "VERSION", "open", "format version 2")
    ecf8_emit("ecf8-version-0.ecf8", mod(lambda b: struct.pack_into("<H", b, 8, 0)), "VERSION", "open", "format version 0")
    ecf8_emit("ecf8-version-65535.ecf8", mod(lambda b: struct.pack_into("<H", b, 8, 65535)), "VERSION", "open",
              "format version 65535")
    # Another major version may lay out and hash its header differently: the
    # version is reported before the header checksum and size are checked.
    ecf8_emit("ecf8-version-2-stale-checksum.ecf8", mod(lambda b: struct.pack_into("<H", b, 8, 2), "none"), "VERSION",
              "open", "format version 2")
    ecf8_emit("ecf8-version-2-short-header.ecf8", mod(lambda b: struct.pack_into("<H", b, 8, 2), "none")[:16],
              "VERSION", "open", "format version 2")
    ecf8_emit("ecf8-header-flags.ecf8", mod(lambda b: put32(b, 12, 1 << 31)), "VERSION", "open", "unknown header flags")
    ecf8_emit("ecf8-header-reserved.ecf8", mod(lambda b: put64(b, 48, 1 << 40)), "VERSION", "open",
              "unknown header flags")
    ecf8_emit("ecf8-size-field.ecf8", mod(lambda b: put64(b, 16, size + 64)), C, "open", "header says")
    ecf8_emit("ecf8-index-checksum.ecf8", mod(flip(E.meta + 3, 0x01), "none"), "CHECKSUM", "open", "index checksum")
    ecf8_emit("ecf8-index-blob-checksum.ecf8", mod(flip(size - 1, 0x20), "none"), "CHECKSUM", "open", "index checksum")
    ecf8_emit("ecf8-index-outside.ecf8", mod(lambda b: put64(b, 24, size), "header"), C, "open", "lies outside the file")
    ecf8_emit("ecf8-index-huge-length.ecf8", mod(lambda b: put64(b, 32, 2**64 - 8), "header"), C, "open",
              "lies outside the file")
    ecf8_emit("ecf8-index-in-header.ecf8", mod(lambda b: put64(b, 24, 8), "header"), C, "open", "lies outside the file")
    ecf8_emit("ecf8-index-short.ecf8", mod(lambda b: put64(b, 32, 16), "header"), C, "open", "lies outside the file")

    def index_moved(b):  # 8 bytes more payload padding: the index starts off 64-byte alignment
        b[E.meta : E.meta] = bytes(8)
        put64(b, 16, len(b))
        put64(b, 24, E.meta + 8)
    ecf8_emit("ecf8-index-misaligned.ecf8", mod(index_moved, "header"), C, "open", "not 64-byte aligned")
    ecf8_emit("ecf8-index-tables.ecf8", mod(lambda b: put64(b, E.meta + 8, 1000)), C, "open", "index tables")
    ecf8_emit("ecf8-index-no-sources.ecf8", mod(lambda b: put32(b, E.meta, 0)), C, "open", "index tables")
    ecf8_emit("ecf8-index-blob-offset.ecf8", mod(lambda b: put64(b, E.meta + 16, u64(good, E.meta + 16) + 1)), C,
              "open", "index tables")
    ecf8_emit("ecf8-index-flags.ecf8", mod(lambda b: put32(b, E.meta + 4, 2)), "VERSION", "open", "unknown index flags")
    # format 1.1: the zstd-compressed index (header flag 1, raw size at 48)
    zlen = u64(good_z, 32)
    Z = Ecf8.__new__(Ecf8)

    def zmod(fn, rehash=True):
        Z.img, Z.meta, Z.meta_len = bytearray(good_z), u64(good_z, 24), zlen
        fn(Z.img)
        Z.meta_len = u64(Z.img, 32)
        return Z.rehash() if rehash else bytes(Z.img)

    ecf8_emit("ecf8-zindex-checksum.ecf8", zmod(flip(u64(good_z, 24) + zlen // 2, 0x04), False), "CHECKSUM",
              "open", "index checksum")
    ecf8_emit("ecf8-zindex-no-raw-size.ecf8", zmod(lambda b: put64(b, 48, 0)), C, "open", "does not hold")
    ecf8_emit("ecf8-zindex-raw-size.ecf8", zmod(lambda b: put64(b, 48, u64(good_z, 48) + 1)), C, "open",
              "does not hold")
    ecf8_emit("ecf8-zindex-raw-huge.ecf8", zmod(lambda b: put64(b, 48, 1 << 62)), C, "open", "does not hold")
    ecf8_emit("ecf8-zindex-short-frame.ecf8", zmod(lambda b: put64(b, 32, zlen - 3)), C, "open",
              "does not decompress")
    ecf8_emit("ecf8-zindex-not-zstd.ecf8", zmod(flip(u64(good_z, 24), 0xFF)), C, "open", "does not hold")
    ecf8_emit("ecf8-zindex-plain.ecf8", zmod(lambda b: put32(b, 12, 0)), "VERSION", "open", "unknown header flags")

    def skippable_after(b):  # a skippable frame (magic 0x184D2A50, 4 bytes) after the index
        b += struct.pack("<II", 0x184D2A50, 4) + bytes(4)
        put64(b, 16, len(b))
        put64(b, 32, zlen + 12)
    ecf8_emit("ecf8-zindex-trailing-frame.ecf8", zmod(skippable_after), C, "open", "after its zstd frame")

    def zindex_edit(fn):
        """good-z.ecf8 with its decompressed index edited and recompressed
        (zstd CLI), every size and checksum fixed: the structure check fires."""
        meta = u64(good_z, 24)
        raw = bytearray(subprocess.run(["zstd", "-dcq"], input=good_z[meta:], check=True,
                                       capture_output=True).stdout)
        fn(raw)
        # --stream-size: the frame must record its content size (the reader checks it)
        packed = subprocess.run(["zstd", "-19cq", "--no-check", f"--stream-size={len(raw)}"], input=bytes(raw),
                                check=True, capture_output=True).stdout
        img = bytearray(good_z[:meta] + packed)
        put64(img, 16, len(img))
        put64(img, 32, len(packed))
        put64(img, 40, xxh3(packed))
        put64(img, 48, len(raw))
        put64(img, 56, xxh3(img[:56]))
        return bytes(img)

    zt0 = META_HEADER + SOURCE_ENTRY  # tensor 0 (coded) in the raw index
    zt1 = zt0 + TENSOR_ENTRY          # tensor 1 (stored F32)
    same = os.path.join(tmp, "recompressed.ecf8")  # the helper alone must keep a good file good
    with open(same, "wb") as f:
        f.write(zindex_edit(lambda b: None))
    run([cli, "verify", same, os.path.join(OUT, "good.safetensors")])
    ecf8_emit("ecf8-zindex-lengths-outside.ecf8", zindex_edit(lambda b: put64(b, zt0 + 176, 1 << 40)), C, "open",
              "code lengths out of bounds")
    ecf8_emit("ecf8-zindex-offsets-outside.ecf8", zindex_edit(lambda b: put64(b, zt0 + 184, 1 << 40)), C, "open",
              "chunk offsets out of bounds")
    ecf8_emit("ecf8-zindex-offsets-misaligned.ecf8", zindex_edit(lambda b: put64(b, zt0 + 184, u64(b, zt0 + 184) + 4)),
              C, "open", "not 8-byte aligned")
    ecf8_emit("ecf8-zindex-offsets-short.ecf8", zindex_edit(lambda b: put64(b, zt0 + 184, u64(b, 24) - 8)), C,
              "open", "offset bytes")
    ecf8_emit("ecf8-zindex-parts-flag-1.ecf8", zindex_edit(lambda b: b.__setitem__(zt0 + 28, 1)), C, "open",
              "reserved bytes set")
    ecf8_emit("ecf8-zindex-parts-stored.ecf8", zindex_edit(lambda b: b.__setitem__(zt1 + 28, 3)), C, "open",
              "reserved bytes set")

    def zero_lengths(b):
        blob = u64(b, 16)
        at = blob + u64(b, zt0 + 176)
        b[at : at + 16] = bytes(16)  # E5M2 exponent split: 32 symbols, 16 bytes
    ecf8_emit("ecf8-zindex-lengths-zero.ecf8", zindex_edit(zero_lengths), C, "open", "code lengths")
    ecf8_emit("ecf8-parts-flag-plain.ecf8", mod(lambda b: b.__setitem__(t0 + 28, 3)), C, "open",
              "reserved bytes set")
    ecf8_emit("ecf8-dir-flag.ecf8", mod(lambda b: put32(b, E.meta + 4, 1)), C, "open", "unsafe path")
    # tensor entries
    ecf8_emit("ecf8-payload-outside.ecf8", mod(lambda b: put64(b, t0 + 112, E.meta)), C, "open",
              "outside the data area")
    ecf8_emit("ecf8-payload-past-eof.ecf8", mod(lambda b: put64(b, t0 + 112, 1 << 40)), C, "open",
              "outside the data area")
    ecf8_emit("ecf8-payload-huge-size.ecf8", mod(lambda b: put64(b, t0 + 120, 2**64 - 64)), C, "open",
              "outside the data area")
    ecf8_emit("ecf8-payload-in-header.ecf8", mod(lambda b: put64(b, t0 + 112, 0)), C, "open",
              "outside the data area")
    ecf8_emit("ecf8-payload-misaligned.ecf8", mod(lambda b: put64(b, t0 + 112, p0 + 8)), C, "open",
              "outside the data area")
    ecf8_emit("ecf8-payload-overlap.ecf8", mod(lambda b: put64(b, t1 + 112, p0)), C, "open", "overlaps")
    ecf8_emit("ecf8-payload-size.ecf8", mod(lambda b: put64(b, t0 + 120, p0_bytes - 8)), C, "open",
              "its layout needs")
    ecf8_emit("ecf8-coded-bytes.ecf8", mod(lambda b: put64(b, t0 + 160, u64(good, t0 + 160) + 8)), C, "open",
              "its layout needs")
    ecf8_emit("ecf8-chunk-geometry.ecf8", mod(lambda b: put64(b, t0 + 144, 1)), C, "open", "its layout needs")

    def view_swapped(b):  # rows x cols as cols x rows: the same count, rows no longer shape[0]
        rows, cols = u64(b, t0 + 128), u64(b, t0 + 136)
        put64(b, t0 + 128, cols)
        put64(b, t0 + 136, rows)
    ecf8_emit("ecf8-view-not-shape.ecf8", mod(view_swapped), C, "open", "does not match its shape")
    ecf8_emit("ecf8-code-bits-above-longest.ecf8", mod(lambda b: b.__setitem__(t0 + 27, good[t0 + 27] + 1)), C,
              "open", "longest code")
    ecf8_emit("ecf8-view.ecf8", mod(lambda b: put64(b, t0 + 128, 2)), C, "open", "does not match its shape")
    ecf8_emit("ecf8-code-bits.ecf8", mod(lambda b: b.__setitem__(t0 + 27, 14)), C, "open", "code length 14")
    ecf8_emit("ecf8-name-bounds.ecf8", mod(lambda b: put64(b, t0, 1 << 40)), C, "open", "name out of bounds")
    ecf8_emit("ecf8-name-length.ecf8", mod(lambda b: put32(b, t0 + 8, 1 << 20)), C, "open", "name out of bounds")
    ecf8_emit("ecf8-dtype-code.ecf8", mod(lambda b: b.__setitem__(t0 + 24, 10)), C, "open", "bad dtype")
    ecf8_emit("ecf8-dtype-mismatch.ecf8", mod(lambda b: b.__setitem__(t0 + 24, 1)), C, "open", "disagrees")
    ecf8_emit("ecf8-split-code.ecf8", mod(lambda b: b.__setitem__(t0 + 25, 3)), C, "open", "bad dtype, split or rank")
    ecf8_emit("ecf8-split-on-f32.ecf8", mod(lambda b: b.__setitem__(t1 + 25, 1)), C, "open", "cannot be coded")
    ecf8_emit("ecf8-split-stored.ecf8", mod(lambda b: b.__setitem__(t0 + 25, 0)), C, "open", "stored payload")
    ecf8_emit("ecf8-rank.ecf8", mod(lambda b: b.__setitem__(t0 + 26, 9)), C, "open", "bad dtype, split or rank")
    ecf8_emit("ecf8-shape-beyond-rank.ecf8", mod(lambda b: put64(b, t0 + 32 + 8 * 5, 1)), C, "open",
              "beyond its rank")
    ecf8_emit("ecf8-shape-overflow.ecf8", mod(lambda b: (put64(b, t0 + 32, 2**32), put64(b, t0 + 40, 2**32),
                                                         b.__setitem__(t0 + 26, 3), put64(b, t0 + 48, 16))),
              C, "open", "shape overflows")
    ecf8_emit("ecf8-shape-bytes.ecf8", mod(lambda b: put64(b, t0 + 32, ROWS + 1)), C, "open", "shape needs")
    ecf8_emit("ecf8-reserved-entry.ecf8", mod(lambda b: b.__setitem__(t0 + 180, 1)), C, "open", "reserved bytes")
    ecf8_emit("ecf8-stored-has-code.ecf8", mod(lambda b: put64(b, t1 + 128, 1)), C, "open", "stored tensor has a code")
    ecf8_emit("ecf8-stored-size.ecf8", mod(lambda b: put64(b, t1 + 120, 8)), C, "open", "stored payload")
    ecf8_emit("ecf8-source-offset.ecf8", mod(lambda b: put64(b, t1 + 96, u64(good, t1 + 96) + 1)), C, "open",
              "not where its source expects")
    s0 = E.source(0)
    ecf8_emit("ecf8-source-bytes.ecf8", mod(lambda b: put64(b, s0 + 32, u64(good, s0 + 32) + 1)), C, "open",
              "tensors end at")
    ecf8_emit("ecf8-source-range.ecf8", mod(lambda b: put32(b, s0 + 40, 1)), C, "open", "does not follow")
    ecf8_emit("ecf8-source-count.ecf8", mod(lambda b: (put32(b, s0 + 44, 1), put64(b, s0 + 32, u64(good, s0 + 24) + wbytes))),
              C, "open", "tensors outside every source")
    ecf8_emit("ecf8-prefix-bounds.ecf8", mod(lambda b: put64(b, s0 + 16, 1 << 40)), C, "open",
              "header bytes out of bounds")
    ecf8_emit("ecf8-source-path-bounds.ecf8", mod(lambda b: put64(b, s0, 1 << 40)), C, "open",
              "path out of bounds")
    # payload bytes (not covered by the index checksum)
    rows, cols, crows, ccols = (u64(good, t0 + 128 + 8 * k) for k in range(4))
    n_chunks = -(-rows // crows) * -(-cols // ccols)
    assert n_chunks == 2
    offs = p0 + 16  # after 32 four-bit code lengths
    coded = offs + 8 * (n_chunks + 1)
    coded_bytes = u64(good, t0 + 160)
    c1 = u64(good, offs + 8)
    ecf8_emit("ecf8-chunk-offset-past.ecf8", mod(lambda b: put64(b, offs + 8, coded_bytes), "none"), C, "open",
              "spans bytes")
    ecf8_emit("ecf8-chunk-offset-order.ecf8", mod(lambda b: put64(b, offs + 16, c1 - 1), "none"), C, "open",
              "chunk 1 spans bytes")
    ecf8_emit("ecf8-chunk-offset-end.ecf8", mod(lambda b: put64(b, offs + 16, coded_bytes - 9), "none"), C, "open",
              "chunks end at byte")
    ecf8_emit("ecf8-chunk-offset-shift.ecf8", mod(lambda b: put64(b, offs + 8, c1 + 1), "none"), C, "decode",
              "chunk 0 decodes to")
    ecf8_emit("ecf8-chunk-offset-first.ecf8", mod(lambda b: put64(b, offs, 1), "none"), C, "open", "first chunk offset")
    ecf8_emit("ecf8-code-lengths.ecf8", mod(lambda b: b.__setitem__(p0, b[p0] ^ 0x11), "none"), C, "open", "code lengths")
    ecf8_emit("ecf8-checksum-field.ecf8", mod(lambda b: put64(b, t0 + 168, u64(good, t0 + 168) ^ 1)), "CHECKSUM",
              "decode", "checksum mismatch")
    # The first element's raw bits follow its code word: flipping one keeps
    # every length, so only the checksum can tell.
    lengths = [(good[p0 + i // 2] >> (4 * (i & 1))) & 15 for i in range(32)]
    code_bits = good[t0 + 27]
    first = data[0]
    l0 = lengths[(first >> 2) & 31] if code_bits else 0
    ecf8_emit("ecf8-payload-raw-bit.ecf8", mod(flip(coded + l0 // 8, 1 << (l0 % 8)), "none"), "CHECKSUM", "decode",
              "checksum mismatch")
    # All-ones / all-zero chunk bytes decode to the longest / shortest code
    # words: the chunk no longer ends where its offsets say.
    ecf8_emit("ecf8-payload-ones.ecf8", mod(lambda b: b.__setitem__(slice(coded, coded + c1), b"\xff" * c1), "none"),
              C, "decode", "chunk 0")
    ecf8_emit("ecf8-payload-zeros.ecf8", mod(lambda b: b.__setitem__(slice(coded, coded + c1), b"\0" * c1), "none"),
              C, "decode", "chunk 0")
    ecf8_emit("ecf8-stored-bitflip.ecf8", mod(flip(p1 + 2, 0x04), "none"), "CHECKSUM", "decode", "checksum mismatch")

    # Stream layout 1 (lane streams, format 1.2): the same tensor, plain index.
    lanes_path = os.path.join(tmp, "lanes.ecf8")
    run(compress_good + [lanes_path, "--plain-index", "--layout", "1"])
    lanes = open(lanes_path, "rb").read()
    L = Ecf8(lanes)
    lt0 = L.tensor(0)
    assert lanes[lt0 + 29] == 1 and u32(lanes, 12) == 2, "tensor 0 must have stream layout 1"
    lp0 = u64(lanes, lt0 + 112)
    loffs = lp0 + 16
    lcoded = loffs + 8 * (n_chunks + 1)
    lcoded_bytes = u64(lanes, lt0 + 160)
    assert lanes[lcoded : lcoded + 2] != b"\xff\xff", "chunk 0 must have the short lane table"

    def lmod(fn, rehash="none"):
        e = Ecf8(lanes)
        fn(e.img)
        return e.rehash() if rehash == "both" else e.rehash_header() if rehash == "header" else bytes(e.img)

    def lane_delta(lane, by):
        def f(b):
            b[lcoded + 2 + lane] = (b[lcoded + 2 + lane] + by) & 0xFF
        return f

    def lanes_moved(b):  # lane 3 a bit longer, lane 4 a bit shorter: the sizes still add up
        lane_delta(3, 1)(b)
        lane_delta(4, -1)(b)

    ecf8_emit("ecf8-lanes-table-sum.ecf8", lmod(lane_delta(5, 64)), C, "open", "chunk 0: lane table gives")
    ecf8_emit("ecf8-lanes-lane-moved.ecf8", lmod(lanes_moved), C, "decode", "chunk 0 lane 3")
    ecf8_emit("ecf8-lanes-lane-long.ecf8", lmod(lambda b: b.__setitem__(slice(lcoded, lcoded + 2), b"\xfe\xfe")),
              C, "open", "more than its symbols can take")
    ecf8_emit("ecf8-lanes-offset-past.ecf8", lmod(lambda b: put64(b, loffs + 8, lcoded_bytes)), C, "open",
              "spans bytes")
    ecf8_emit("ecf8-lanes-offset-unaligned.ecf8", lmod(lambda b: put64(b, loffs + 8, u64(lanes, loffs + 8) + 2)),
              C, "open", "not on 4-byte boundaries")
    ecf8_emit("ecf8-lanes-flag-missing.ecf8", lmod(lambda b: put32(b, 12, 0), "header"), C, "open",
              "does not announce lane streams")
    ecf8_emit("ecf8-lanes-layout-2.ecf8", lmod(lambda b: b.__setitem__(L.tensor(0) + 29, 2), "both"), C, "open",
              "stream layout 2 invalid")

    # directory containers: unsafe source paths
    D = Ecf8(good_dir)
    names = [(u64(good_dir, D.source(i)), u64(good_dir, D.source(i) + 8)) for i in range(D.n_sources)]
    off, ln = names[0]
    assert good_dir[D.blob + off : D.blob + off + ln] == b"model.safetensors"

    # Format 1.3: a U8 tensor coded with the byte split (its only split),
    # the copy of w's bytes (real FP8 bytes: they shrink), plain index.
    h13 = json.loads(dump(header))
    h13["q"] = {"dtype": "U8", "shape": [ROWS, header["w"]["shape"][1]],
                "data_offsets": [len(data), len(data) + wbytes]}
    src13 = os.path.join(tmp, "v13.safetensors")
    with open(src13, "wb") as f:
        f.write(safetensors_bytes(dump(h13), data + data[:wbytes]))
    v13_path = os.path.join(tmp, "v13.ecf8")
    # --split exponent: w gets it, the U8 tensor the byte split it has.
    run([cli, "compress", src13, v13_path, "--split", "exponent", "--threads", "1", "--plain-index"])
    v13 = open(v13_path, "rb").read()
    V = Ecf8(v13)
    qt = V.tensor(2)
    assert v13[qt + 24] == 7 and v13[qt + 25] == 2 and u32(v13, 12) == 4, "q must be a coded U8 (format 1.3)"

    def v13_mod(fn):
        e = Ecf8(v13)
        fn(e.img)
        return e.rehash()
    ecf8_emit("ecf8-v13-flag-missing.ecf8", v13_mod(lambda b: (put32(b, 12, 0), struct.pack_into("<H", b, 10, 0))),
              C, "open", "does not announce format 1.3 dtypes")
    ecf8_emit("ecf8-v13-flag-no-code.ecf8", mod(lambda b: put32(b, 12, 4)), C, "open",
              "flag bit 2 (format 1.3 dtypes) set")
    ecf8_emit("ecf8-v13-dtype-name.ecf8", v13_mod(lambda b: b.__setitem__(qt + 24, 8)), C, "open",
              "dtype code 8 disagrees with 'U8'")
    ecf8_emit("ecf8-v13-coded-code-0.ecf8", v13_mod(lambda b: b.__setitem__(qt + 24, 0)), C, "open",
              "dtype code 0 disagrees with 'U8'")
    ecf8_emit("ecf8-v13-u8-exponent.ecf8", v13_mod(lambda b: b.__setitem__(qt + 25, 1)), C, "open",
              "exponent split invalid for dtype U8")

    def dir_mod(new):
        e = Ecf8(good_dir)
        e.img[e.blob + off : e.blob + off + len(new)] = new
        put64(e.img, e.source(0) + 8, len(new))
        return e.rehash()
    ecf8_emit("ecf8-dir-path-parent.ecf8", dir_mod(b"../ab.safetensors"), C, "open", "unsafe path")
    ecf8_emit("ecf8-dir-path-slash.ecf8", dir_mod(b"ab/cd.safetensors"), C, "open", "unsafe path")
    ecf8_emit("ecf8-dir-path-absolute.ecf8", dir_mod(b"/etc/passwd"), C, "open", "unsafe path")
    ecf8_emit("ecf8-dir-path-dotdot.ecf8", dir_mod(b".."), C, "open", "unsafe path")
    ecf8_emit("ecf8-dir-path-empty.ecf8", dir_mod(b""), C, "open", "unsafe path")
    # Only shard and json names: a container must not write .bashrc into the output directory.
    ecf8_emit("ecf8-dir-path-dotfile.ecf8", dir_mod(b".bashrc"), C, "open", "unsafe path")
    ecf8_emit("ecf8-dir-path-other-suffix.ecf8", dir_mod(b"model.txt"), C, "open", "unsafe path")
    ecf8_emit("ecf8-dir-path-hidden-shard.ecf8", dir_mod(b".m.safetensors"), C, "open", "unsafe path")
    # Two sources of one name: decompress would write the second over the
    # first.  "model.safetensors.index.json" cut to its first 17 bytes.
    e = Ecf8(good_dir)
    put64(e.img, e.source(1) + 8, len(b"model.safetensors"))
    ecf8_emit("ecf8-dir-path-duplicate.ecf8", e.rehash(), C, "open", "model.safetensors")

    with open(os.path.join(OUT, "MANIFEST.tsv"), "w") as f:
        f.write("# file\tkind\tstatus\tstage\tneedle  (generated by make_bad_files.py)\n")
        for row in manifest:
            f.write("\t".join(row) + "\n")
    print(f"wrote {len(manifest)} bad files and 4 good ones to {OUT}")


if __name__ == "__main__":
    main()
