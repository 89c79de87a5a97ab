/* decode_streams.cl - the decode kernel of stream layout 1, lane streams
 * (docs/FORMAT.md 4.4; after decode_common.cl).
 *
 * A chunk is a lane table, 32 lane streams of code words and (R > 0) a raw
 * plane.  Lane l codes the chunk's 32-bit output words l, l + 32, ...: Q
 * elements each.  A work-item decodes LPI = ECF8_VW x ECF8_NSETS
 * consecutive lanes of a chunk, ECF8_VW of them side by side in the lanes
 * of a uint vector (a set); the work-items loop over the chunks, IPC = 32 /
 * LPI of them per chunk.
 *   GPUs (ECF8_VW 1, ECF8_NSETS 1): one work-item per lane, so the 32
 *     work-items of a chunk store 128 contiguous bytes per word step and
 *     read their raw bits from 64 contiguous ones; the decode table is
 *     copied into local memory once per work-group (the only barrier).
 *   CPUs (ECF8_VW 8 on 256-bit, 16 on 512-bit registers): the lanes of a
 *     set are VW consecutive lanes, so a step's words are VW consecutive
 *     output words (one vector store, no transpose) and their raw bits one
 *     contiguous vector load; only the stream and table reads are gathers.
 *     The sets are independent lookup chains, which hide each other's
 *     gather latency.  The 16-bit table is read from global memory (a
 *     CPU's local memory is the same cache) by 32-bit loads, and the lane
 *     streams by the qword reader (one unaligned 64-bit load per word).
 *
 * Bit positions are 32-bit and relative to the chunk's lane area (a chunk
 * holds at most 2^16 elements).  Loads are aligned 32-bit words (the lane
 * area and the raw plane start on 4-byte boundaries), each clamped to the
 * coded stream, so a hostile lane table or lane stream reads nothing
 * outside it; the lane table itself is read within the 8 pad bytes and
 * the buffer's zero padding after the stream (decode.c's PAYLOAD_PAD).
 * The host validates every lane table (ecf8_stream_validate parses them),
 * the kernel relies on that only for the output: each lane stores only
 * its own words, which lie inside the chunk's range whatever the table
 * says.  A lane that does not end exactly at its length is reported with
 * report_lane. */
#ifndef ECF8_VW
#define ECF8_VW 1             /* lanes per vector: 1 (GPUs), 8 or 16 (CPUs) */
#endif
#ifndef ECF8_NSETS
#define ECF8_NSETS 1          /* vectors per work-item (divides 32 / ECF8_VW) */
#endif
#ifndef ECF8_READER
#define ECF8_READER 0         /* 0 word queue, 1 qword loads (CPUs only) */
#endif
#if ECF8_READER && ECF8_VW == 1
#error the qword reader is for CPU devices (unaligned loads)
#endif
#define Q (4 / ECF8_WIDTH)    /* elements per 32-bit output word */
#define LPI (ECF8_VW * ECF8_NSETS)
#define IPC (32 / LPI)        /* work-items per chunk */
#if 32 % LPI
#error ECF8_VW x ECF8_NSETS must divide 32
#endif
#define CODE_BITS_NZ (ECF8_CODE_BITS ? ECF8_CODE_BITS : 1)
/* Symbols per 32-bit window: lane streams hold code words only. */
#define SPW (32 / CODE_BITS_NZ)
#define WORD_RAW (Q * ECF8_RAW_BITS) /* raw bits per output word (<= 22) */
#define WORD_RAW_MASK ((1u << WORD_RAW) - 1)

#if ECF8_VW == 1
typedef uint vu;
typedef ushort vus;
#define VLOADU(i, p) ((p)[i])
#define VSTOREU(v, i, p) ((p)[i] = (v))
#define GATHER(f, i) f(i)
#define CONVERT_VU(x) ((uint)(x))
#define VLOAD_US(i, p) ((p)[i])
#define LANE_IDS 0u
/* The word of one lane at word index i of a chunk's output, at any
 * alignment. */
#define STORE_BYTES(v, i, p) vstore4(as_uchar4(v), i, p)
#elif ECF8_VW == 8
typedef uint8 vu;
#define VLOADU(i, p) vload8(i, p)
#define VSTOREU(v, i, p) vstore8(v, i, p)
#define GATHER(f, i)                                                                   \
    (uint8)(f((i).s0), f((i).s1), f((i).s2), f((i).s3), f((i).s4), f((i).s5), f((i).s6), \
            f((i).s7))
#define CONVERT_VU convert_uint8
typedef ulong8 vl;
/* Component by component, not convert_ulong8/convert_uint8: library
 * calls that pass 512-bit vectors, which change the ABI without AVX-512
 * (PoCL prints a warning per call on AVX2 hosts). */
#define CONVERT_VL(x)                                                                  \
    ((ulong8)((ulong)(x).s0, (ulong)(x).s1, (ulong)(x).s2, (ulong)(x).s3, (ulong)(x).s4, \
              (ulong)(x).s5, (ulong)(x).s6, (ulong)(x).s7))
#define CONVERT_VU_L(x)                                                                \
    ((uint8)((uint)(x).s0, (uint)(x).s1, (uint)(x).s2, (uint)(x).s3, (uint)(x).s4,      \
             (uint)(x).s5, (uint)(x).s6, (uint)(x).s7))
#define GATHERL(f, i)                                                                   \
    (ulong8)(f((i).s0), f((i).s1), f((i).s2), f((i).s3), f((i).s4), f((i).s5), f((i).s6), \
             f((i).s7))
#define VLOAD_US(i, p) vload8(i, p)
#define LANE_IDS ((uint8)(0, 1, 2, 3, 4, 5, 6, 7))
#define STORE_BYTES(v, i, p)                                                      \
    do {                                                                          \
        vstore16(as_uchar16((v).lo), 2 * (i), p);                                 \
        vstore16(as_uchar16((v).hi), 2 * (i) + 1, p);                             \
    } while (0)
#elif ECF8_VW == 16
typedef uint16 vu;
#define VLOADU(i, p) vload16(i, p)
#define VSTOREU(v, i, p) vstore16(v, i, p)
#define GATHER(f, i)                                                                   \
    (uint16)(f((i).s0), f((i).s1), f((i).s2), f((i).s3), f((i).s4), f((i).s5), f((i).s6), \
             f((i).s7), f((i).s8), f((i).s9), f((i).sa), f((i).sb), f((i).sc), f((i).sd), \
             f((i).se), f((i).sf))
#define CONVERT_VU convert_uint16
typedef ulong16 vl;
#define CONVERT_VL convert_ulong16
#define CONVERT_VU_L convert_uint16
#define GATHERL(f, i)                                                                   \
    (ulong16)(f((i).s0), f((i).s1), f((i).s2), f((i).s3), f((i).s4), f((i).s5), f((i).s6), \
              f((i).s7), f((i).s8), f((i).s9), f((i).sa), f((i).sb), f((i).sc), f((i).sd), \
              f((i).se), f((i).sf))
#define VLOAD_US(i, p) vload16(i, p)
#define LANE_IDS ((uint16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#define STORE_BYTES(v, i, p)                                                      \
    do {                                                                          \
        vstore16(as_uchar16((v).lo.lo), 4 * (i), p);                              \
        vstore16(as_uchar16((v).lo.hi), 4 * (i) + 1, p);                          \
        vstore16(as_uchar16((v).hi.lo), 4 * (i) + 2, p);                          \
        vstore16(as_uchar16((v).hi.hi), 4 * (i) + 3, p);                          \
    } while (0)
#else
#error ECF8_VW must be 1, 8 or 16
#endif

/* The 32 stream bits from bit pos of the words at w (clamped to word
 * last): a lane's window, or an output word's raw bits. */
inline uint window_at(__global const uint *w, uint last, uint pos)
{
    uint i = pos >> 5, s = pos & 31;
    return (w[min(i, last)] >> s) | ((w[min(i + 1, last)] << 1) << (31 - s));
}

/* Length in bits of lane k by the lane table at t (escape: 16-bit
 * lengths, else base + an 8-bit delta). */
inline uint lane_length(__global const uchar *t, bool escape, uint base, uint k)
{
    return escape ? (uint)t[2 + 2 * k] | (uint)t[3 + 2 * k] << 8 : base + t[2 + k];
}

/* Element j of an output word: its symbol joined with its raw bits, in
 * place in the word. */
inline vu join_in_word(vu sym, vu raw, uint j)
{
    raw = (raw >> (j * ECF8_RAW_BITS)) & (vu)RMASK;
    vu x = ((raw >> ECF8_SYMBOL_SHIFT) << (ECF8_SYMBOL_SHIFT + ECF8_SYMBOL_BITS)) |
           (sym << ECF8_SYMBOL_SHIFT) | (raw & (vu)LOW_MASK);
    return x << (8 * ECF8_WIDTH * j);
}

#if ECF8_VW == 1
#define TABLE_AT(i) ((uint)table[i])
#else
/* The 16-bit table (half the cache of the 32-bit one), read by 32-bit
 * loads at any 2-byte offset (CPUs). */
#define TABLE_AT(i) (*(__global const uint *)(table + 2 * (i)) & 0xffffu)
#endif
#define LANE_AT(i) lw[i]
#define PLANE_AT(i) pw[i]

/* Word-queue reader (as the lanes kernel's): each lane holds the aligned
 * words cur and nxt (its bit position p lies in cur, word wc) and has the
 * word after them in flight (nn).  Taking at most 32 bits from a window
 * moves p on by one word at most, so the next window needs only words
 * already loaded and the load of nn stays off the chain of lookups. */
#define REFILL(k)                                                                  \
    do {                                                                           \
        vu w_ = p[k] >> 5;                                                         \
        cur[k] = select(cur[k], nxt[k], w_ != wc[k]);                              \
        nxt[k] = select(nxt[k], nn[k], w_ != wc[k]);                               \
        wc[k] = w_;                                                                \
        nn[k] = GATHER(LANE_AT, min(w_ + 2, (vu)lastw));                           \
        vu s_ = p[k] & 31;                                                         \
        win[k] = (cur[k] >> s_) | ((nxt[k] << 1) << (31 - s_));                    \
    } while (0)

/* Qword reader (ECF8_READER 1): a 64-bit load at the byte holding bit p,
 * shifted by p & 7, holds >= 57 valid bits, enough for Q64 symbols, taken
 * through 32-bit windows of QSUB symbols each (c: bits taken since the
 * load): one load per output word for codes up to 14 bits where the word
 * queue needs two, but the load is on the chain of lookups. */
#define Q64 (57 / CODE_BITS_NZ)
#define QSUB (32 / CODE_BITS_NZ)
#define QWORD_AT(i) (*(__global const ulong *)(lb + (i)))
#if ECF8_READER == 1
#define WINDOW(k, j)                                                               \
    do {                                                                           \
        if ((j) % Q64 == 0) {                                                      \
            w64[k] = GATHERL(QWORD_AT, min(p[k] >> 3, (vu)last8)) >> CONVERT_VL(p[k] & 7); \
            win[k] = CONVERT_VU_L(w64[k]);                                         \
            taken[k] = 0;                                                          \
        } else if ((j) % Q64 % QSUB == 0) {                                        \
            win[k] = CONVERT_VU_L(w64[k] >> CONVERT_VL(taken[k]));                 \
        }                                                                          \
    } while (0)
#define TAKEN(k, n) (taken[k] += (n))
#else
#define WINDOW(k, j)                                                               \
    do {                                                                           \
        if ((j) % SPW == 0) REFILL(k);                                             \
    } while (0)
#define TAKEN(k, n) ((void)0)
#endif

/* The raw bits of output word s * 32 + (lane) of every lane of set k. */
#if ECF8_RAW_BITS == 0
#define RAW_LOAD(k, s) ((vu)0)
#elif WORD_RAW == 16
#define RAW_LOAD(k, s)                                                             \
    CONVERT_VU(VLOAD_US(0, p16 + min((s) * 32 + l0 + (k) * ECF8_VW, last16)))
#else
#define RAW_LOAD(k, s) raw_gather((s) * 32 + l0 + (k) * ECF8_VW, pw, lastp)
inline vu raw_gather(uint w0, __global const uint *pw, uint lastp)
{
    vu b = ((vu)w0 + LANE_IDS) * (vu)WORD_RAW, i = b >> 5, s = b & 31;
    vu lo = GATHER(PLANE_AT, min(i, (vu)lastp)), hi = GATHER(PLANE_AT, min(i + 1, (vu)lastp));
    return ((lo >> s) | ((hi << 1) << (31 - s))) & (vu)WORD_RAW_MASK;
}
#endif

/* One output word of every lane of every set into acc[k]: Q symbols each,
 * the sets interleaved (independent chains). */
#define DECODE_WORDS(s)                                                            \
    do {                                                                           \
        vu raw_[ECF8_NSETS];                                                       \
        _Pragma("unroll") for (uint k = 0; k < ECF8_NSETS; k++) raw_[k] = RAW_LOAD(k, s); \
        _Pragma("unroll") for (uint j = 0; j < Q; j++)                             \
        {                                                                          \
            _Pragma("unroll") for (uint k = 0; k < ECF8_NSETS; k++)                \
            {                                                                      \
                WINDOW(k, j);                                                      \
                vu e_ = GATHER(TABLE_AT, win[k] & (vu)TMASK);                      \
                vu len_ = e_ & 15;                                                 \
                win[k] >>= len_;                                                   \
                p[k] += len_;                                                      \
                TAKEN(k, len_);                                                    \
                vu x_ = join_in_word(e_ >> 4, raw_[k], j);                         \
                acc[k] = j == 0 ? x_ : acc[k] | x_;                                \
            }                                                                      \
        }                                                                          \
    } while (0)

#if ECF8_VW == 1
#define TABLE_PARAM __local const ushort *table
#else
#define TABLE_PARAM __global const uchar *table
#endif

/* Lanes l0 .. l0 + LPI - 1 of chunk c of a tensor (its chunk offsets,
 * coded stream and decode table; its chunk geometry), stored at
 * out_offset + the chunk's start; a lane that ends off its length is
 * reported as chunk report_c (the single-tensor kernel: c; a batch: the
 * chunk's number in the batch). */
inline void decode_streams_chunk(__global const ulong *offsets, __global const uchar *stream,
                                 ulong coded_bytes, TABLE_PARAM, uint table_mask,
                                 __global uchar *out, ulong out_offset, __global uint *error,
                                 ulong c, ulong report_c, ulong rows, ulong cols, ulong chunk_rows,
                                 ulong chunk_cols, uint l0)
{
    __global const uint *words = (__global const uint *)stream;
    const ulong last_word = coded_bytes / 4 - 1;

    uint count;
    ulong start = chunk_geometry(c, rows, cols, chunk_rows, chunk_cols, &count);
    ulong dst_at = out_offset + start * ECF8_WIDTH;
    __global uchar *dst = out + dst_at;
    bool aligned = dst_at % 4 == 0;
    __global uint *o32 = (__global uint *)(out + (dst_at & ~(ulong)3));

    /* The lane table: this item's lanes' starts and ends, and the
     * total (where the raw plane begins). */
    ulong off = min(offsets[c], coded_bytes - 8);
    __global const uchar *t = stream + off;
    uint base = t[0] | (uint)t[1] << 8;
    bool escape = base == 0xffff;
    uint st[LPI], en[LPI], total = 0;
#if LPI == 1
    st[0] = en[0] = 0;
    for (uint k = 0; k < 32; k++) {
        uint len = lane_length(t, escape, base, k);
        st[0] = k == l0 ? total : st[0];
        total += len;
        en[0] = k == l0 ? total : en[0];
    }
#else
    uint pre[33];
    pre[0] = 0;
    for (uint k = 0; k < 32; k++) pre[k + 1] = pre[k] + lane_length(t, escape, base, k);
    total = pre[32];
    for (uint i = 0; i < LPI; i++) {
        st[i] = pre[l0 + i];
        en[i] = pre[l0 + i + 1];
    }
#endif
    ulong lane_at = min((off + (escape ? 68 : 36)) / 4, last_word);
    __global const uint *lw = words + lane_at;
    uint lastw = (uint)min(last_word - lane_at, (ulong)0xfffffff0u);
#if ECF8_READER == 1
    __global const uchar *lb = (__global const uchar *)lw;
    uint last8 = lastw * 4 - 4; /* the stream is >= 8 bytes: lastw >= 1 */
#endif
#if ECF8_RAW_BITS
    ulong plane_at = min(lane_at + ((ulong)total + 31) / 32, last_word);
    __global const uint *pw = words + plane_at;
    uint lastp = (uint)min(last_word - plane_at, (ulong)0xfffffff0u);
#if WORD_RAW == 16
    __global const ushort *p16 = (__global const ushort *)pw;
    /* The last 16-bit unit of the stream: a vector load starting
     * there reads at most 2 x (VW - 1) bytes past it, into the
     * buffer's zero padding (a tighter bound would move the loads of
     * the last chunk's last words). */
    uint last16 = lastp * 2 + 1;
#endif
#endif

    /* Words per lane: the whole ones (a lane's count falls with its
     * index) and the one partial word of the chunk, if any. */
    const uint full = count / Q, part = count % Q;
    uint nf[LPI];
    for (uint i = 0; i < LPI; i++) nf[i] = full > l0 + i ? (full - (l0 + i) + 31) / 32 : 0;
    const uint most = nf[0], least = nf[LPI - 1];

    vu p[ECF8_NSETS], cur[ECF8_NSETS], nxt[ECF8_NSETS], nn[ECF8_NSETS], wc[ECF8_NSETS];
    vu win[ECF8_NSETS], acc[ECF8_NSETS], pend[ECF8_NSETS];
#if ECF8_READER == 1
    vl w64[ECF8_NSETS];
    vu taken[ECF8_NSETS];
#endif
#pragma unroll
    for (uint k = 0; k < ECF8_NSETS; k++) {
        p[k] = VLOADU(k, st);
        wc[k] = p[k] >> 5;
        cur[k] = GATHER(LANE_AT, min(wc[k], (vu)lastw));
        nxt[k] = GATHER(LANE_AT, min(wc[k] + 1, (vu)lastw));
        nn[k] = nxt[k]; /* p has not moved: the first refill loads it */
    }

    /* Every lane of the item has word s: whole vector stores. */
    for (uint s = 0; s < least; s++) {
        DECODE_WORDS(s);
#pragma unroll
        for (uint k = 0; k < ECF8_NSETS; k++) {
            uint w = s * 32 + l0 + k * ECF8_VW;
            if (aligned) VSTOREU(acc[k], 0, o32 + w);
            else STORE_BYTES(acc[k], 0, dst + 4 * w);
        }
    }
    /* The last whole word of the lower lanes (their counts differ by
     * one at most): stores and positions of those lanes only. */
#pragma unroll
    for (uint k = 0; k < ECF8_NSETS; k++) pend[k] = p[k];
    for (uint s = least; s < most; s++) {
        DECODE_WORDS(s);
        uint a[LPI];
#pragma unroll
        for (uint k = 0; k < ECF8_NSETS; k++) {
            VSTOREU(acc[k], k, a);
            pend[k] = select(pend[k], p[k], (vu)s < VLOADU(k, nf));
        }
        for (uint i = 0; i < LPI; i++) {
            uint w = s * 32 + l0 + i;
            if (s >= nf[i]) continue;
            if (aligned) o32[w] = a[i];
            else vstore4(as_uchar4(a[i]), 0, dst + 4 * w);
        }
    }

    /* Per lane: the chunk's partial word (its lane is the one after
     * the last whole word), then the length check. */
    uint pe[LPI];
#pragma unroll
    for (uint k = 0; k < ECF8_NSETS; k++) VSTOREU(pend[k], k, pe);
    for (uint i = 0; i < LPI; i++) {
        uint pos = pe[i];
        if (part && l0 + i == full % 32) {
#if ECF8_RAW_BITS
            uint raw = window_at(pw, lastp, full * WORD_RAW) & WORD_RAW_MASK;
#else
            uint raw = 0;
#endif
            for (uint j = 0; j < part; j++) {
                uint win1 = window_at(lw, lastw, pos);
                uint e = TABLE_AT(win1 & TMASK);
                pos += e & 15;
                store_element(dst, full * Q + j,
                              join(e >> 4, (raw >> (j * ECF8_RAW_BITS)) & RMASK));
            }
        }
        if (pos != en[i]) report_lane(error, report_c, l0 + i, pos - st[i], en[i] - st[i]);
    }
}

__kernel void ecf8_decode_streams(DECODE_KERNEL_ARGS)
{
#if ECF8_VW == 1
    __global const ushort *gtable = (__global const ushort *)(data + table_at);
    __local ushort table[TABLE_SIZE];
    for (uint i = get_local_id(0); i <= TMASK; i += get_local_size(0)) table[i] = gtable[i];
    barrier(CLK_LOCAL_MEM_FENCE);
#else
    __global const uchar *table = data + table_at;
#endif
    __global const ulong *offsets = (__global const ulong *)(data + offsets_at);
    __global const uchar *stream = data + coded_at;
    const ulong slots = get_global_size(0) / IPC;
    const uint l0 = (uint)(get_global_id(0) % IPC) * LPI;
    for (ulong c = get_global_id(0) / IPC; c < n_chunks; c += slots)
        decode_streams_chunk(offsets, stream, coded_bytes, table, table_mask, out, out_offset, error,
                             c, c, rows, cols, chunk_rows, chunk_cols, l0);
}

/* ---- batches: many tensors in one launch (src/opencl/batch.c) ---------------
 * A job is one tensor, JOB_WORDS ulongs: byte offsets into `data` of its
 * chunk offsets, coded stream and 16-bit decode table, its coded bytes,
 * chunk count and geometry, code mask, and its first chunk in the batch's
 * numbering.  The jobs of a launch (one per build of this program: the
 * tensors of one split and code length class) are jobs[job0 ..
 * job0 + n_jobs), in the order of their first chunks, which number units
 * first_unit .. end_unit - 1 of the batch; each job's output offset is
 * outs[its index].  On GPUs every job starts on a multiple of
 * ECF8_STREAMS_WG_CHUNKS units (the host pads), so the work-items of a
 * group, which take consecutive lanes, are one job's and copy its table to
 * local memory together. */
#define JOB_WORDS 11
#define J_OFFSETS 0
#define J_CODED 1
#define J_CODED_BYTES 2
#define J_TABLE 3
#define J_CHUNKS 4
#define J_ROWS 5
#define J_COLS 6
#define J_CHUNK_ROWS 7
#define J_CHUNK_COLS 8
#define J_MASK 9
#define J_FIRST 10

/* The last job whose first unit is <= u (the first job's is first_unit). */
inline uint find_job(__global const ulong *jobs, uint job0, uint n_jobs, ulong u)
{
    uint lo = job0, hi = job0 + n_jobs;
    while (hi - lo > 1) {
        uint mid = lo + (hi - lo) / 2;
        if (jobs[(ulong)mid * JOB_WORDS + J_FIRST] <= u) lo = mid;
        else hi = mid;
    }
    return lo;
}

#define DECODE_JOB_CHUNK(jb, j, u, TABLE, l0)                                                   \
    do {                                                                                        \
        ulong c_ = (u) - (jb)[J_FIRST];                                                         \
        if (c_ < (jb)[J_CHUNKS])                                                                \
            decode_streams_chunk((__global const ulong *)(data + (jb)[J_OFFSETS]),              \
                                 data + (jb)[J_CODED], (jb)[J_CODED_BYTES], TABLE,              \
                                 (uint)(jb)[J_MASK], out, outs[j], error, c_, (u), (jb)[J_ROWS], \
                                 (jb)[J_COLS], (jb)[J_CHUNK_ROWS], (jb)[J_CHUNK_COLS], (l0));   \
    } while (0)

__kernel void ecf8_decode_streams_batch(__global const uchar *data, __global uchar *out,
                                        __global uint *error, __global const ulong *jobs,
                                        __global const ulong *outs, uint job0, uint n_jobs,
                                        ulong first_unit, ulong end_unit)
{
#if ECF8_VW == 1
    /* A group takes get_local_size(0) consecutive lanes (a power of two
     * of at most 32 x ECF8_STREAMS_WG_CHUNKS), all of one job. */
    __local ushort table[TABLE_SIZE];
    const ulong size = get_local_size(0);
    const ulong g_end = end_unit * 32 / size;
    for (ulong g = first_unit * 32 / size + get_group_id(0); g < g_end; g += get_num_groups(0)) {
        const ulong slot = g * size + get_local_id(0), u = slot / 32;
        const uint j = find_job(jobs, job0, n_jobs, g * size / 32);
        __global const ulong *jb = jobs + (ulong)j * JOB_WORDS;
        __global const ushort *gtable = (__global const ushort *)(data + jb[J_TABLE]);
        const uint table_mask = (uint)jb[J_MASK];
        barrier(CLK_LOCAL_MEM_FENCE); /* the last job's readers are done */
        for (uint i = get_local_id(0); i <= TMASK; i += get_local_size(0)) table[i] = gtable[i];
        barrier(CLK_LOCAL_MEM_FENCE);
        DECODE_JOB_CHUNK(jb, j, u, table, (uint)(slot % 32));
    }
#else
    const ulong slots = get_global_size(0) / IPC;
    const uint l0 = (uint)(get_global_id(0) % IPC) * LPI;
    for (ulong u = first_unit + get_global_id(0) / IPC; u < end_unit; u += slots) {
        const uint j = find_job(jobs, job0, n_jobs, u);
        __global const ulong *jb = jobs + (ulong)j * JOB_WORDS;
        DECODE_JOB_CHUNK(jb, j, u, data + jb[J_TABLE], l0);
    }
#endif
}
