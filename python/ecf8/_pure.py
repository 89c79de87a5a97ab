"""Pure-Python (NumPy) reader of the .ecf8 container, written from
docs/FORMAT.md.  Checks the format's structural rules before decoding.

Optional packages:
  zstandard (or Python 3.14's compression.zstd): needed for format 1.1
      files, whose index is one zstd frame (the default of `ecf8 compress`);
      without it such files raise UnsupportedError.  Format 1.0 files
      (`ecf8 compress --plain-index`) need nothing.
Format 1.2 files (stream layout 1, lane streams, header flag bit 1) are read
  as well: every chunk's lane table is checked at open, and the 32 lanes of
  all chunks of a tensor are decoded side by side.  So are format 1.3 files
  (header flag bit 2: FNUZ, U8, I8 and F8_E8M0 tensors coded).
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
_DTYPE_CODES = {"F8_E4M3": 1, "F8_E5M2": 2, "BF16": 3, "F16": 4,
                # format 1.3 (header flag bit 2)
                "F8_E4M3FNUZ": 5, "F8_E5M2FNUZ": 6, "U8": 7, "I8": 8, "F8_E8M0": 9}
_FIRST_1_3 = 5
# (dtype code, split) -> (element bits, shift, symbol bits S, raw bits R)
_SPLITS = {
    (1, 1): (8, 3, 4, 4), (1, 2): (8, 0, 8, 0),
    (2, 1): (8, 2, 5, 3), (2, 2): (8, 0, 8, 0),
    (3, 1): (16, 7, 8, 8), (3, 2): (16, 8, 8, 8),
    (4, 1): (16, 10, 5, 11), (4, 2): (16, 8, 8, 8),
    (5, 1): (8, 3, 4, 4), (5, 2): (8, 0, 8, 0),
    (6, 1): (8, 2, 5, 3), (6, 2): (8, 0, 8, 0),
    (7, 2): (8, 0, 8, 0), (8, 2): (8, 0, 8, 0), (9, 2): (8, 0, 8, 0),  # byte split only
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
                 "n_chunks", "source_offset_", "coded_at", "layout", "stream_layout", "lanes")


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
        if flags & ~7 or (not flags & 1 and raw_bytes):
            raise VersionError("%s: unknown header flags (0x%x), a feature of a later format "
                               "version" % (p, flags))
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
        self.lanes_flag = bool(flags & 2)
        self.dtypes_1_3_flag = bool(flags & 4)
        self._codes_1_3 = 0
        self._parse_index(index, compressed, meta_bytes)
        if self.dtypes_1_3_flag and not self._codes_1_3:
            raise CorruptError("%s: header flag bit 2 (format 1.3 dtypes) set, no tensor has a "
                               "dtype code >= 5" % p)
        if self.lanes_flag and not any(t.split and t.stream_layout == 1 for t in self.tensors):
            raise CorruptError("%s: header flag bit 1 (lane streams) set, no tensor has stream "
                               "layout 1" % p)

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
        stream_layout, reserved = ix[o + 29], ix[o + 30:o + 32]
        shape = struct.unpack_from("<8Q", ix, o + 32)
        (src_off, src_bytes, pay_off, pay_bytes, rows, cols, crows, ccols, coded, csum,
         len_off, offs_off) = struct.unpack_from("<12Q", ix, o + 96)
        t = _Tensor()
        t.name = ref(no, nl, "tensor %d name" % j).decode("utf-8", "replace")
        t.dtype_name = ref(do, dl, "tensor %d dtype" % j).decode("utf-8", "replace")
        what = "%s: tensor %r" % (p, t.name)
        named = _DTYPE_CODES.get(t.dtype_name, 0)
        # A format 1.3 dtype stored verbatim may keep code 0 (what 1.0-1.2 wrote).
        if (code != named and not (code == 0 and named >= _FIRST_1_3 and split == 0)) or split > 2 \
                or ndim > 8 or code_bits > 13 or reserved != b"\0\0" or any(shape[ndim:]):
            raise CorruptError("%s: bad dtype, split or shape fields" % what)
        if code >= _FIRST_1_3:
            if not self.dtypes_1_3_flag:
                raise CorruptError("%s: dtype code %d in a file whose header does not announce "
                                   "format 1.3 dtypes (flag bit 2)" % (what, code))
            self._codes_1_3 += 1
        if stream_layout > 1 or (stream_layout and split == 0):
            raise CorruptError("%s: stream layout %d invalid" % (what, stream_layout))
        if stream_layout and not self.lanes_flag:
            raise CorruptError("%s: stream layout 1 in a file whose header does not announce "
                               "lane streams (flag bit 1)" % what)
        t.stream_layout = stream_layout
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
        if (code, split) not in _SPLITS:
            raise CorruptError("%s: split %d invalid for dtype %s" % (what, split, t.dtype_name))
        ebits, shift, S, R = _SPLITS[(code, split)]
        n = math.prod(t.shape)
        if n * (ebits // 8) != src_bytes:
            raise CorruptError("%s: shape does not match its %d bytes" % (what, src_bytes))
        erows = t.shape[0] if ndim >= 2 else 1
        if rows != erows or rows * cols != n or not (1 <= crows <= rows and 1 <= ccols <= cols) \
                or (ccols < cols and crows != 1) or crows * ccols > 1 << 22:
            raise CorruptError("%s: bad chunk geometry" % what)
        if stream_layout and crows * ccols > 1 << 16:
            raise CorruptError("%s: layout-1 chunks of %d elements exceed the limit of 65536"
                               % (what, crows * ccols))
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
        t.layout = (ebits, shift, S, R)
        if stream_layout:
            t.lanes = _lane_tables(t, np.frombuffer(self.data, np.uint8, coded, t.coded_at),
                                   counts, what)
        elif np.any(np.diff(o_) > (counts * (code_bits + R) + 7) // 8):
            raise CorruptError("%s: a chunk is longer than any coding of it" % what)
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
                raw = (_decode_lanes(t, stream) if t.stream_layout else _decode(t, stream)).view(np.uint8)
            except _LaneError as e:
                raise CorruptError("%s: tensor %r: %s" % (self.path, t.name, e.args[0])) from None
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


class _LaneError(Exception):
    pass


def _chunk_counts(t):
    segs = -(-t.cols // t.chunk_cols)
    c = np.arange(t.n_chunks, dtype=np.int64)
    row0 = (c // segs) * t.chunk_rows
    col0 = (c % segs) * t.chunk_cols
    return np.minimum(t.chunk_rows, t.rows - row0) * np.minimum(t.chunk_cols, t.cols - col0)


def _code_table(t):
    """The canonical code's decode table indexed by the next code_bits stream
    bits: the symbol and its code length (one entry, length 0, for a
    one-symbol code)."""
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
    return dsym, dlen


def _tables(t):
    """Decode tables indexed by the next code_bits + R stream bits: the
    element value and the bits it takes (code word + raw bits)."""
    ebits, shift, S, R = t.layout
    cb = t.code_bits
    dsym, dlen = _code_table(t)
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


# -- stream layout 1: lane streams (docs/FORMAT.md 4.4) ------------------------
_LANES = 32


def _align4(bits):
    """Bytes of `bits` bits padded to a multiple of 4 bytes."""
    return (bits + 31) // 32 * 4


def _lane_elements(counts, q):
    """(n_chunks, 32): the elements lane k of each chunk codes, its words
    k, k + 32, ... of q elements (the chunk's last word may be partial)."""
    words = (-(-counts // q))[:, None]
    k = np.arange(_LANES)
    n = np.where(words > k, (words - k + _LANES - 1) // _LANES * q, 0)
    return n - np.where((words - 1) % _LANES == k, words * q - counts[:, None], 0)


def _lane_tables(t, stream, counts, what):
    """Every chunk's lane table, checked as ecf8_lane_chunk_parse does
    (offsets on 4-byte boundaries, a table that fits, zero table padding,
    no lane longer than its symbols can take, and table + lanes + raw plane
    adding up to the chunk).  Returns (lane bit starts (n_chunks, 33)
    relative to the first lane, table bytes, elements per lane)."""
    ebits, shift, S, R = t.layout
    q = 32 // ebits
    a, b = t.offsets[:-1], t.offsets[1:]
    nbytes = b - a
    C = a.size
    tab = stream[np.minimum(a[:, None] + np.arange(68), stream.size - 1)].astype(np.int64)
    esc = (tab[:, 0] | tab[:, 1] << 8) == 0xFFFF
    tbytes = np.where(esc, 68, 36)
    lens = np.where(esc[:, None], tab[:, 2:66:2] | tab[:, 3:67:2] << 8,
                    (tab[:, 0] | tab[:, 1] << 8)[:, None] + tab[:, 2:34])
    pad = np.where(esc, tab[:, 66] | tab[:, 67], tab[:, 34] | tab[:, 35])
    nlane = _lane_elements(counts, q)
    most = nlane * t.code_bits
    starts = np.zeros((C, _LANES + 1), np.int64)
    np.cumsum(lens, axis=1, out=starts[:, 1:])
    total = starts[:, _LANES]
    want = tbytes + _align4(total) + _align4(counts * R)
    checks = [
        ((a % 4 != 0) | (b % 4 != 0), lambda c: "chunk %d spans bytes %d..%d, not on 4-byte "
         "boundaries" % (c, a[c], b[c])),
        (nbytes < tbytes, lambda c: "chunk %d: %d bytes, too short for its lane table"
         % (c, nbytes[c])),
        (pad != 0, lambda c: "chunk %d: lane table padding not zero" % c),
        ((lens > most).any(axis=1), lambda c: (lambda k: "chunk %d lane %d: %d bits, more than "
         "its symbols can take (%d)" % (c, k, lens[c, k], most[c, k]))(
            int(np.argmax(lens[c] > most[c])))),
        (want != nbytes, lambda c: "chunk %d: lane table gives %d lane bits and %d bytes, the "
         "chunk holds %d" % (c, total[c], want[c], nbytes[c])),
    ]
    bad = np.zeros(C, bool)
    for m, _ in checks:
        bad |= m
    if bad.any():
        c = int(np.argmax(bad))
        for m, msg in checks:
            if m[c]:
                raise CorruptError("%s: %s" % (what, msg(c)))
    return starts, tbytes, nlane


def _decode_lanes(t, stream):
    """Layout 1: the 32 lanes of every chunk decoded side by side, one
    symbol per lane and step; each lane must end exactly at its length.
    Raw bits come from each chunk's raw plane, in element order."""
    ebits, shift, S, R = t.layout
    q = 32 // ebits
    starts, tbytes, nlane = t.lanes
    counts = _chunk_counts(t)
    C, cb = t.n_chunks, t.code_bits
    a = t.offsets[:-1]
    dsym, dlen = _code_table(t)
    steps = int(nlane.max())
    M = -(-steps // q)  # words of the longest lane
    # Zero padding past the stream: a corrupt lane decoding too far reads
    # zeros (and is then caught by its end position), never out of bounds.
    b = np.zeros(stream.size + (steps * cb) // 8 + 8, np.int64)
    b[:stream.size] = stream
    words = b[:-3] | (b[1:-2] << 8) | (b[2:-1] << 16) | (b[3:] << 24)
    lane0 = (a + tbytes) * 8  # bit of each chunk's first lane in the stream
    if cb:
        syms = np.empty((M * q, C * _LANES), np.uint8)
        pos = (lane0[:, None] + starts[:, :_LANES]).ravel()
        nl = nlane.ravel()
        full = int(nl.min())
        mask = (1 << cb) - 1
        for j in range(M * q):
            ix = (words[pos >> 3] >> (pos & 7)) & mask
            syms[j] = dsym[ix]
            step = dlen[ix]
            if j >= full:
                step *= j < nl
            pos += step
        got = pos.reshape(C, _LANES) - lane0[:, None] - starts[:, :_LANES]
        want = np.diff(starts, axis=1)
        bad = np.flatnonzero(got != want)
        if bad.size:
            c, k = divmod(int(bad[0]), _LANES)
            g, w = int(got[c, k]), int(want[c, k])
            raise _LaneError("chunk %d lane %d %s, its lane table says %d"
                             % (c, k, "runs past its end (%d bits)" % g if g > w
                                else "decodes to %d bits" % g, w))
        # Step j = m*q + e of lane k is element (32*m + k)*q + e of its chunk.
        per = syms.reshape(M, q, C, _LANES).transpose(2, 0, 3, 1).reshape(C, M * _LANES * q)
        sym = per[np.arange(M * _LANES * q)[None, :] < counts[:, None]].astype(np.int64)
    else:
        sym = np.full(int(counts.sum()), int(dsym[0]), np.int64)
    val = sym << shift
    if R:
        first = np.zeros(C, np.int64)
        np.cumsum(counts[:-1], out=first[1:])
        rpos = np.repeat(lane0 + _align4(starts[:, _LANES]) * 8, counts)  # raw planes
        rpos += (np.arange(sym.size, dtype=np.int64) - np.repeat(first, counts)) * R
        raw = (words[rpos >> 3] >> (rpos & 7)) & ((1 << R) - 1)
        val |= ((raw >> shift) << (shift + S)) | (raw & ((1 << shift) - 1))
    return val.astype(np.uint8 if ebits == 8 else np.uint16)
