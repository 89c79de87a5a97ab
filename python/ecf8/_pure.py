"""Pure-Python (NumPy) reader of the .ecf8 container, written from
docs/FORMAT.md.  Checks the format's structural rules before decoding.

Optional packages:
  zstandard (or Python 3.14's compression.zstd): needed for format 1.1
      files, whose index is one zstd frame (the default of `ecf8 compress`);
      without it such files raise UnsupportedError.  Format 1.0 files
      (`ecf8 compress --plain-index`) need nothing.
Format 1.2 files with stream layout 1 (lane streams, header flag bit 1)
raise UnsupportedError: the libecf8 backend reads them.
  xxhash: XXH3-64 checksums of the header, the index and every tensor.
      Without it the checksums are not verified (ChecksumsSkippedWarning,
      once); every structural rule, including that each chunk consumes
      exactly its bytes, is still checked.
"""
import math
import struct
import warnings

import numpy as np

from ._common import (_Names, ChecksumError, CorruptError, TensorNotFoundError, UnsupportedError,
                      VersionError, to_array)

try:
    import xxhash as _xxhash
except ImportError:  # pragma: no cover
    _xxhash = None

_zstd314 = None
try:
    import zstandard as _zstd
except ImportError:  # pragma: no cover
    _zstd = None
    try:
        from compression import zstd as _zstd314  # Python >= 3.14
    except ImportError:
        _zstd314 = None


class ChecksumsSkippedWarning(UserWarning):
    """The pure backend could not verify XXH3-64 checksums (no xxhash)."""


MAGIC = b"\x89ECF8\r\n\x1a"
_DTYPE_CODES = {"F8_E4M3": 1, "F8_E5M2": 2, "BF16": 3, "F16": 4}
# (dtype code, split) -> (element bits, shift, symbol bits S, raw bits R)
_SPLITS = {
    (1, 1): (8, 3, 4, 4), (1, 2): (8, 0, 8, 0),
    (2, 1): (8, 2, 5, 3), (2, 2): (8, 0, 8, 0),
    (3, 1): (16, 7, 8, 8), (3, 2): (16, 8, 8, 8),
    (4, 1): (16, 10, 5, 11), (4, 2): (16, 8, 8, 8),
}
_warned = False


def checksums_available():
    return _xxhash is not None


def _xxh3(data):
    return _xxhash.xxh3_64_intdigest(data)


def _check_sum(data, want, what, path):
    global _warned
    if _xxhash is None:
        if not _warned:
            _warned = True
            warnings.warn("ecf8 pure backend: xxhash is not installed, XXH3-64 checksums "
                          "are not verified (pip install xxhash)", ChecksumsSkippedWarning,
                          stacklevel=4)
        return
    got = _xxh3(data)
    if got != want:
        raise ChecksumError("%s: %s checksum mismatch (%016x, expected %016x)"
                            % (path, what, got, want))


def _decompress_index(frame, raw_bytes, path):
    """The index of a format 1.1 file: exactly one zstd frame recording its
    content size, which must be index_raw_bytes."""
    mod = _zstd or _zstd314
    if mod is None:
        raise UnsupportedError("%s: format 1.1 (zstd-compressed index) needs the zstandard "
                               "package (pip install zstandard) or the lib backend" % path)
    try:
        if _zstd is not None:
            size = _zstd.frame_content_size(frame)
            d = _zstd.ZstdDecompressor().decompressobj()
            out = d.decompress(frame) if size == raw_bytes else b""
        else:  # pragma: no cover - Python 3.14
            size = _zstd314.get_frame_info(frame).decompressed_size
            d = _zstd314.ZstdDecompressor()
            out = d.decompress(frame, max_length=raw_bytes + 1) if size == raw_bytes else b""
    except mod.ZstdError as e:
        raise CorruptError("%s: index is not a valid zstd frame (%s)" % (path, e)) from None
    if size != raw_bytes:
        raise CorruptError("%s: zstd frame content size %s, header says %d"
                           % (path, size, raw_bytes))
    if not d.eof or d.unused_data or len(out) != raw_bytes:
        raise CorruptError("%s: index is not exactly one zstd frame of %d bytes"
                           % (path, raw_bytes))
    return out


class _Tensor:
    __slots__ = ("name", "dtype_name", "dtype", "split", "shape", "source_bytes",
                 "payload_offset", "payload_bytes", "rows", "cols", "chunk_rows",
                 "chunk_cols", "coded_bytes", "checksum", "code_bits", "lengths", "offsets",
                 "n_chunks", "source_offset_", "coded_at", "layout")


class PureFile(_Names):
    """An open container: the whole file in memory, header and index checked."""

    def __init__(self, path):
        self.path = str(path)
        with open(path, "rb") as f:
            self.data = f.read()
        self._parse()

    # -- header and index ---------------------------------------------------
    def _parse(self):
        p, d = self.path, self.data
        if len(d) < 10 or d[:8] != MAGIC:
            raise CorruptError("%s: %s" % (p, "bad magic, not an ecf8 container" if len(d) >= 8
                                           else "too short for an ecf8 file (%d bytes)" % len(d)))
        major, = struct.unpack_from("<H", d, 8)
        if major != 1:
            raise VersionError("%s: format version %d, this library reads version 1" % (p, major))
        if len(d) < 64:
            raise CorruptError("%s: too short for an ecf8 file (%d bytes)" % (p, len(d)))
        minor, flags, file_size, meta_off, meta_bytes, meta_sum, raw_bytes, hsum = \
            struct.unpack_from("<HIQQQQQQ", d, 10)
        _check_sum(d[:56], hsum, "header", p)
        if flags & ~3 or (not flags & 1 and raw_bytes):
            raise VersionError("%s: unknown header flags (0x%x), a feature of a later format "
                               "version" % (p, flags))
        if flags & 2:
            raise UnsupportedError("%s: stream layout 1 (lane streams, format 1.2) is not read by "
                                   "the pure-Python reader; use backend='lib' (libecf8), or "
                                   "`ecf8 convert --layout 0`" % p)
        if file_size != len(d):
            raise CorruptError("%s: header says %d bytes, file has %d (truncated or appended)"
                               % (p, file_size, len(d)))
        compressed = bool(flags & 1)
        if meta_off < 64 or meta_off % 64 or meta_off + meta_bytes > file_size \
                or meta_bytes < (1 if compressed else 32):
            raise CorruptError("%s: bad index position %d + %d" % (p, meta_off, meta_bytes))
        if compressed:
            if raw_bytes < 32 or raw_bytes > max(1024 * meta_bytes, 1 << 28):
                raise CorruptError("%s: bad decompressed index size %d" % (p, raw_bytes))
        stored = d[meta_off:meta_off + meta_bytes]
        _check_sum(stored, meta_sum, "index", p)
        index = _decompress_index(stored, raw_bytes, p) if compressed else stored
        self.meta_offset = meta_off
        self._parse_index(index, compressed, meta_bytes)

    def _parse_index(self, ix, compressed, meta_bytes):
        p = self.path
        n_src, iflags, n_t, blob_off, blob_bytes = struct.unpack_from("<IIQQQ", ix, 0)
        if iflags & ~1:
            raise VersionError("%s: unknown index flags (0x%x)" % (p, iflags))
        if not 1 <= n_src <= 65536:
            raise CorruptError("%s: bad index header (%d sources)" % (p, n_src))
        if blob_off != 32 + 48 * n_src + 192 * n_t or blob_off > len(ix) \
                or blob_bytes != len(ix) - blob_off:
            raise CorruptError("%s: index tables do not fit the index" % p)
        if compressed and 192 * (n_t // 1024) > meta_bytes:
            raise CorruptError("%s: %d tensors in a %d-byte compressed index" % (p, n_t, meta_bytes))
        blob = ix[blob_off:]
        self.is_directory = bool(iflags & 1)
        budget = [0]

        def ref(off, n, what, strict=True):
            if off > blob_bytes or n > blob_bytes - off:
                raise CorruptError("%s: %s lies outside the index blob" % (p, what))
            budget[0] += n
            b = blob[off:off + n]
            if strict and b"\0" in b:
                raise CorruptError("%s: %s contains NUL" % (p, what))
            return b

        self.sources = []
        next_t = 0
        for i in range(n_src):
            po, pl, xo, xl, sbytes, first, cnt = struct.unpack_from("<QQQQQII", ix, 32 + 48 * i)
            path = ref(po, pl, "source path").decode("utf-8", "replace")
            prefix = ref(xo, xl, "source prefix", strict=False)
            if first != next_t:
                raise CorruptError("%s: source %d does not start at tensor %d" % (p, i, next_t))
            next_t += cnt
            if self.is_directory:
                if not (path.endswith(".safetensors") or path.endswith(".json")) \
                        or "/" in path or path.startswith("."):
                    raise CorruptError("%s: bad source path %r" % (p, path))
                if self.sources and path.encode() <= self.sources[-1][0].encode():
                    raise CorruptError("%s: source paths out of order" % p)
            elif path or n_src != 1:
                raise CorruptError("%s: single-file container with a source path" % p)
            self.sources.append((path, prefix, sbytes, first, cnt))
        if next_t != n_t:
            raise CorruptError("%s: sources do not cover the %d tensors" % (p, n_t))

        self.tensors = []
        self.names = {}
        prev_end = 64
        base = 32 + 48 * n_src
        for src_i, (_, prefix, sbytes, first, cnt) in enumerate(self.sources):
            run = len(prefix)
            for j in range(first, first + cnt):
                t = self._parse_tensor(ix, base + 192 * j, j, ref, blob, compressed)
                if t.source_offset_ != run:
                    raise CorruptError("%s: tensor %r does not follow the previous one in its "
                                       "source" % (p, t.name))
                run += t.source_bytes
                if t.payload_offset < prev_end:
                    raise CorruptError("%s: tensor %r payload overlaps" % (p, t.name))
                prev_end = t.payload_offset + t.payload_bytes
                self.tensors.append(t)
                self.names.setdefault(t.name, j)
            if run != sbytes:
                raise CorruptError("%s: source %d is not tiled by its tensors" % (p, src_i))
        if budget[0] > blob_bytes:
            raise CorruptError("%s: index references share bytes" % p)

    def _parse_tensor(self, ix, o, j, ref, blob, compressed):
        p = self.path
        (no, nl, dl, do, code, split, ndim, code_bits, tflags) = struct.unpack_from("<QIIQBBBBB", ix, o)
        reserved = ix[o + 29:o + 32]
        shape = struct.unpack_from("<8Q", ix, o + 32)
        (src_off, src_bytes, pay_off, pay_bytes, rows, cols, crows, ccols, coded, csum,
         len_off, offs_off) = struct.unpack_from("<12Q", ix, o + 96)
        t = _Tensor()
        t.name = ref(no, nl, "tensor %d name" % j).decode("utf-8", "replace")
        t.dtype_name = ref(do, dl, "tensor %d dtype" % j).decode("utf-8", "replace")
        what = "%s: tensor %r" % (p, t.name)
        if code != _DTYPE_CODES.get(t.dtype_name, 0) or split > 2 or ndim > 8 \
                or code_bits > 13 or reserved != b"\0\0\0" or any(shape[ndim:]):
            raise CorruptError("%s: bad dtype, split or shape fields" % what)
        if pay_off % 64 or pay_off < 64 or pay_off + pay_bytes > self.meta_offset:
            raise CorruptError("%s: payload outside the payload area" % what)
        t.shape = tuple(shape[:ndim])
        t.dtype, t.split, t.code_bits = code, split, code_bits
        t.source_offset_ = src_off
        t.source_bytes, t.payload_offset, t.payload_bytes, t.checksum = src_bytes, pay_off, pay_bytes, csum
        t.rows, t.cols, t.chunk_rows, t.chunk_cols, t.coded_bytes = rows, cols, crows, ccols, coded
        if split == 0:
            if tflags or code_bits or pay_bytes != src_bytes or any((rows, cols, crows, ccols, coded)) \
                    or len_off or offs_off:
                raise CorruptError("%s: stored tensor with coding fields" % what)
            return t
        if code == 0:
            raise CorruptError("%s: coded tensor of dtype %s" % (what, t.dtype_name))
        ebits, shift, S, R = _SPLITS[(code, split)]
        n = math.prod(t.shape)
        if n * (ebits // 8) != src_bytes:
            raise CorruptError("%s: shape does not match its %d bytes" % (what, src_bytes))
        erows = t.shape[0] if ndim >= 2 else 1
        if rows != erows or rows * cols != n or not (1 <= crows <= rows and 1 <= ccols <= cols) \
                or (ccols < cols and crows != 1) or crows * ccols > 1 << 22:
            raise CorruptError("%s: bad chunk geometry" % what)
        segs = -(-cols // ccols)
        t.n_chunks = -(-rows // crows) * segs
        nlen = (1 << S) // 2
        if tflags == 3 and compressed:
            lens = ref(len_off, nlen, "code lengths", strict=False)
            if offs_off % 8:
                raise CorruptError("%s: unaligned chunk offsets" % what)
            offs = ref(offs_off, 8 * (t.n_chunks + 1), "chunk offsets", strict=False)
            if pay_bytes != coded:
                raise CorruptError("%s: payload is not the coded stream" % what)
            t.coded_at = pay_off
        elif tflags == 0 and not len_off and not offs_off:
            lo = pay_off
            oo = lo + ((nlen + 7) & ~7)
            co = oo + 8 * (t.n_chunks + 1)
            if co + coded != pay_off + pay_bytes:
                raise CorruptError("%s: payload size does not match its layout" % what)
            lens = self.data[lo:lo + nlen]
            offs = self.data[oo:co]
            t.coded_at = co
        else:
            raise CorruptError("%s: bad tensor flags %d" % (what, tflags))
        lb = np.frombuffer(lens, np.uint8)
        t.lengths = np.empty(1 << S, np.uint8)
        t.lengths[0::2] = lb & 15
        t.lengths[1::2] = lb >> 4
        t.offsets = np.frombuffer(offs, "<u8").astype(np.int64)
        used = t.lengths[t.lengths > 0]
        if code_bits == 0:
            if used.size != 1 or used[0] != 1:
                raise CorruptError("%s: bad one-symbol code" % what)
        elif used.size < 2 or used.max() != code_bits or \
                int(np.sum(np.left_shift(1, code_bits - used.astype(np.int64)))) != 1 << code_bits:
            raise CorruptError("%s: code lengths are not a complete prefix code" % what)
        o_ = t.offsets
        if coded < 8 or o_[0] != 0 or o_[-1] != coded - 8 or np.any(np.diff(o_) < 0):
            raise CorruptError("%s: bad chunk offsets" % what)
        counts = _chunk_counts(t)
        if np.any(np.diff(o_) > (counts * (code_bits + R) + 7) // 8):
            raise CorruptError("%s: a chunk is longer than any coding of it" % what)
        t.layout = (ebits, shift, S, R)
        return t

    # -- tensors ------------------------------------------------------------
    def read_raw(self, j):
        t = self.tensors[j]
        d = self.data
        if t.split == 0:
            raw = np.frombuffer(d, np.uint8, t.source_bytes, t.payload_offset).copy()
        else:
            stream = np.frombuffer(d, np.uint8, t.coded_bytes, t.coded_at)
            try:
                raw = _decode(t, stream).view(np.uint8)
            except _ChunkError as e:
                raise CorruptError("%s: tensor %r: chunk %d does not consume exactly its bytes"
                                   % (self.path, t.name, e.args[0])) from None
        _check_sum(raw, t.checksum, "tensor %r" % t.name, self.path)
        return raw

    def read(self, j):
        t = self.tensors[j]
        return to_array(self.read_raw(j), t.dtype_name, t.shape)


class _ChunkError(Exception):
    pass


def _chunk_counts(t):
    segs = -(-t.cols // t.chunk_cols)
    c = np.arange(t.n_chunks, dtype=np.int64)
    row0 = (c // segs) * t.chunk_rows
    col0 = (c % segs) * t.chunk_cols
    return np.minimum(t.chunk_rows, t.rows - row0) * np.minimum(t.chunk_cols, t.cols - col0)


def _tables(t):
    """Decode tables indexed by the next code_bits + R stream bits: the
    element value and the bits it takes (code word + raw bits)."""
    ebits, shift, S, R = t.layout
    cb = t.code_bits
    lengths = t.lengths.astype(np.int64)
    dsym = np.zeros(1 << cb, np.int64)
    dlen = np.zeros(1 << cb, np.int64)
    if cb == 0:
        dsym[0] = int(np.flatnonzero(lengths)[0])
    else:
        bl_count = np.bincount(lengths, minlength=16)
        bl_count[0] = 0
        next_code = [0] * 17
        code = 0
        for n in range(1, 16):
            code = (code + int(bl_count[n - 1])) << 1
            next_code[n] = code
        for sym in range(1 << S):
            L = int(lengths[sym])
            if not L:
                continue
            c = next_code[L]
            next_code[L] += 1
            rev = int(format(c, "0%db" % L)[::-1], 2)
            sl = slice(rev, None, 1 << L)
            dsym[sl] = sym
            dlen[sl] = L
    T = cb + R
    idx = np.arange(1 << T, dtype=np.int64)
    sym = dsym[idx & ((1 << cb) - 1)]
    L = dlen[idx & ((1 << cb) - 1)]
    raw = (idx >> L) & ((1 << R) - 1)
    val = ((raw >> shift) << (shift + S)) | (sym << shift) | (raw & ((1 << shift) - 1))
    vdt = np.uint8 if ebits == 8 else np.uint16
    return val.astype(vdt), (L + R).astype(np.int64), T


_FORCE = None  # tests and benchmarks: "doubling" or "lockstep"


def _decode(t, stream):
    vtab, ltab, T = _tables(t)
    mask = (1 << T) - 1
    offs = t.offsets
    counts = _chunk_counts(t)
    n_chunks = t.n_chunks
    starts = offs[:-1] * 8
    # Zero padding past the stream so a corrupt chunk decoding too far reads
    # zeros (and is then caught by its end position), never out of bounds.
    reach = (int(starts.max()) + int(counts.max()) * T) // 8 + 8
    nb = max(reach, stream.size) + 4
    b = np.zeros(nb, np.int64)
    b[:stream.size] = stream
    words = b[:-3] | (b[1:-2] << 8) | (b[2:-1] << 16) | (b[3:] << 24)
    vdt = vtab.dtype
    out = np.empty(int(counts.sum()), vdt)
    maxcount = int(counts.max()) if n_chunks else 0
    nbits = int(stream.size) * 8
    doubling = nbits * max(1, maxcount.bit_length()) <= 64 * maxcount * max(n_chunks, 64)
    if _FORCE is not None:
        doubling = _FORCE == "doubling"
    if doubling:
        # Few chunks: the step taken at every bit position, then each chunk's
        # element positions by pointer doubling (log2(count) gathers).
        pos = np.arange(nbits + 1, dtype=np.int64)
        w = words[pos >> 3] >> (pos & 7)
        ix_at = w & mask
        nxt = np.minimum(pos + ltab[ix_at], nbits)
        P = np.empty((maxcount, n_chunks), np.int64)
        P[0] = np.minimum(starts, nbits)
        J = nxt
        filled = 1
        while filled < maxcount:
            m = min(filled, maxcount - filled)
            P[filled:filled + m] = J[P[:m]]
            filled += m
            if filled < maxcount:
                J = J[J]
        ends = nxt[P[counts - 1, np.arange(n_chunks)]]
        vals = vtab[ix_at[P]]
        ends = np.where(ends >= nbits, starts + counts * T + 8 * stream.size, ends)
    else:
        # Many chunks: all of them in lockstep, one element per step.
        vals = np.empty((maxcount, n_chunks), vdt)
        pos = starts.copy()
        ends = np.empty(n_chunks, np.int64)
        uniq = set(int(k) for k in np.unique(counts))
        for k in range(maxcount):
            ix = (words[pos >> 3] >> (pos & 7)) & mask
            vals[k] = vtab[ix]
            pos += ltab[ix]
            if k + 1 in uniq:
                sel = counts == k + 1
                ends[sel] = pos[sel]
    used = -(-(ends - starts) // 8)
    bad = np.flatnonzero(used != np.diff(offs))
    if bad.size:
        raise _ChunkError(int(bad[0]))
    # Chunks are consecutive ranges of the output, in order.
    keep = np.arange(maxcount)[:, None] < counts[None, :]
    out[:] = vals.T[keep.T]
    return out
