/* decode_lanes.cl - the lanes decode kernel for CPU devices (after
 * decode_common.cl). */
#ifndef ECF8_VW
#define ECF8_VW 8             /* vector width: 8 or 16 (the plan builds this
                                 program only for devices with vector
                                 registers that wide) */
#endif
#ifndef ECF8_NSETS
#define ECF8_NSETS 3          /* independent vectors per item */
#endif
#ifndef ECF8_READER
#define ECF8_READER 0         /* 0 word queue, 1 qword loads */
#endif
#define LANES (ECF8_VW * ECF8_NSETS)
#define STEP (4 / ECF8_WIDTH) /* elements per 32-bit output word */

#if ECF8_VW == 16
typedef uint16 vu;
#define VLOADU(i, p) vload16(i, p)
#define VSTOREU(v, i, p) vstore16(v, i, p)
#define GATHER(f, i)                                                                   \
    (uint16)(f((i).s0), f((i).s1), f((i).s2), f((i).s3), f((i).s4), f((i).s5), f((i).s6), \
             f((i).s7), f((i).s8), f((i).s9), f((i).sa), f((i).sb), f((i).sc), f((i).sd), \
             f((i).se), f((i).sf))
#elif ECF8_VW == 8
typedef uint8 vu;
#define VLOADU(i, p) vload8(i, p)
#define VSTOREU(v, i, p) vstore8(v, i, p)
#define GATHER(f, i)                                                                   \
    (uint8)(f((i).s0), f((i).s1), f((i).s2), f((i).s3), f((i).s4), f((i).s5), f((i).s6), \
            f((i).s7))
#else
#error ECF8_VW must be 8 or 16
#endif

/* Output words of four steps, acc[0..3] (one word per lane each), turned
 * into one 16-byte block per lane in registers: 32-bit then 64-bit
 * interleaves within each 128-bit part leave lane 4b + i's block in part b
 * of u_i, which is stored straight from there (a scalar gather of the
 * words through a private array costs about a quarter of the kernel's
 * time). */
#if ECF8_VW == 16
typedef ulong8 vq;
#define AS_VQ as_ulong8
#define AS_VU as_uint16
#define ILO32 ((uint16)(0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29))
#define IHI32 ((uint16)(2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31))
#define ILO64 ((ulong8)(0, 8, 2, 10, 4, 12, 6, 14))
#define IHI64 ((ulong8)(1, 9, 3, 11, 5, 13, 7, 15))
#define PART(u, b) ((b) == 0 ? (u).s0123 : (b) == 1 ? (u).s4567 : (b) == 2 ? (u).s89ab : (u).scdef)
#else
typedef ulong4 vq;
#define AS_VQ as_ulong4
#define AS_VU as_uint8
#define ILO32 ((uint8)(0, 8, 1, 9, 4, 12, 5, 13))
#define IHI32 ((uint8)(2, 10, 3, 11, 6, 14, 7, 15))
#define ILO64 ((ulong4)(0, 4, 2, 6))
#define IHI64 ((ulong4)(1, 5, 3, 7))
#define PART(u, b) ((b) == 0 ? (u).s0123 : (u).s4567)
#endif

inline void transpose4(vu a0, vu a1, vu a2, vu a3, vu u[4])
{
    vq t0 = AS_VQ(shuffle2(a0, a1, ILO32)), t1 = AS_VQ(shuffle2(a0, a1, IHI32));
    vq t2 = AS_VQ(shuffle2(a2, a3, ILO32)), t3 = AS_VQ(shuffle2(a2, a3, IHI32));
    u[0] = AS_VU(shuffle2(t0, t2, ILO64));
    u[1] = AS_VU(shuffle2(t0, t2, IHI64));
    u[2] = AS_VU(shuffle2(t1, t3, ILO64));
    u[3] = AS_VU(shuffle2(t1, t3, IHI64));
}

/* Stores the 16-byte block of every lane of four steps' words acc[0..3]
 * at word w0 of its chunk; FULL(l) says whether lane l's block lies
 * wholly inside its chunk, PARTIAL(l, q) whether word q of it does. */
#define STORE_BLOCKS(acc, w0, FULL, PARTIAL)                                        \
    do {                                                                           \
        _Pragma("unroll") for (uint k = 0; k < ECF8_NSETS; k++)                    \
        {                                                                          \
            vu u_[4];                                                              \
            transpose4(acc[0][k], acc[1][k], acc[2][k], acc[3][k], u_);            \
            _Pragma("unroll") for (uint b = 0; b < ECF8_VW / 4; b++)               \
            {                                                                      \
                _Pragma("unroll") for (uint i = 0; i < 4; i++)                     \
                {                                                                  \
                    uint l_ = k * ECF8_VW + 4 * b + i;                             \
                    uint4 x_ = PART(u_[i], b);                                     \
                    if (FULL(l_)) {                                                \
                        vstore4(x_, 0, o32 + ow[l_] + (w0));                       \
                    } else {                                                       \
                        if (PARTIAL(l_, 0)) o32[ow[l_] + (w0)] = x_.s0;            \
                        if (PARTIAL(l_, 1)) o32[ow[l_] + (w0) + 1] = x_.s1;        \
                        if (PARTIAL(l_, 2)) o32[ow[l_] + (w0) + 2] = x_.s2;        \
                    }                                                              \
                }                                                                  \
            }                                                                      \
        }                                                                          \
    } while (0)

/* The 32-bit little-endian word at byte i of the chunk group's stream (an
 * unaligned load: CPU devices only), and a decode table entry. */
#define WORD_AT(i) (*(__global const uint *)(bytes + (i)))
#define TABLE_AT(i) table32[i]

inline vu joinv(vu sym, vu raw)
{
    return ((raw >> ECF8_SYMBOL_SHIFT) << (ECF8_SYMBOL_SHIFT + ECF8_SYMBOL_BITS)) |
           (sym << ECF8_SYMBOL_SHIFT) | (raw & LOW_MASK);
}

/* Word-queue reader (ECF8_READER 0): each lane holds the aligned words
 * cur and nxt (its bit position p lies in cur, word wc) and has the word
 * after them in flight (nn).  A window is the 32 bits from p; taking at
 * most 32 bits from it moves p on by one word at most, so the next window
 * needs only words already loaded, and the gather of nn stays off the
 * chain of table lookups (a gather's latency, not its throughput, bounds
 * a lane). */
#define SPW (32 / ELEM_BITS_NZ)
#define REFILL(k)                                                                  \
    do {                                                                           \
        vu w_ = p[k] >> 5;                                                         \
        cur[k] = select(cur[k], nxt[k], w_ != wc[k]);                              \
        nxt[k] = select(nxt[k], nn[k], w_ != wc[k]);                               \
        wc[k] = w_;                                                                \
        nn[k] = GATHER(WORD_AT, min(w_ + 2, (vu)lastw) << 2);                      \
        vu s_ = p[k] & 31;                                                         \
        win_[k] = (cur[k] >> s_) | ((nxt[k] << 1) << (31 - s_));                   \
    } while (0)

/* Qword reader (ECF8_READER 1): a 64-bit load at the byte holding bit p,
 * shifted by p & 7, holds >= 57 valid bits, enough for Q64 elements, taken
 * through 32-bit windows of QSUB elements each (c: bits taken since the
 * load).  With 13-bit codes that is one load per output word, half the
 * load slots of the word queue, and a lane keeps only its position between
 * loads (fewer spills).  But the load is on the chain of table lookups: it
 * pays with 3 or more sets (about 5% on FP8), and loses with 2 (10-20%,
 * too few chains to hide it), so the host picks the reader with the
 * shape. */
#define Q64 (57 / ELEM_BITS_NZ ? 57 / ELEM_BITS_NZ : 1)
#define QSUB (32 / ELEM_BITS_NZ ? 32 / ELEM_BITS_NZ : 1)
#if ECF8_VW == 16
typedef ulong16 vl;
#define CONVERT_VL convert_ulong16
#define CONVERT_VU convert_uint16
#define GATHERL(f, i)                                                                   \
    (ulong16)(f((i).s0), f((i).s1), f((i).s2), f((i).s3), f((i).s4), f((i).s5), f((i).s6), \
              f((i).s7), f((i).s8), f((i).s9), f((i).sa), f((i).sb), f((i).sc), f((i).sd), \
              f((i).se), f((i).sf))
#else
typedef ulong8 vl;
#define CONVERT_VL convert_ulong8
#define CONVERT_VU convert_uint8
#define GATHERL(f, i)                                                                   \
    (ulong8)(f((i).s0), f((i).s1), f((i).s2), f((i).s3), f((i).s4), f((i).s5), f((i).s6), \
             f((i).s7))
#endif
#define QWORD_AT(i) (*(__global const ulong *)(bytes + (i)))

#if ECF8_READER == 1
#define READER_LOCALS                                                             \
    vu c_[ECF8_NSETS];                                                            \
    vl w_[ECF8_NSETS];
/* The window of set k before element j of a step. */
#define WINDOW(k, j)                                                              \
    do {                                                                          \
        if ((j) % Q64 == 0) {                                                     \
            w_[k] = GATHERL(QWORD_AT, min(p[k] >> 3, (vu)last8)) >> CONVERT_VL(p[k] & 7); \
            win_[k] = CONVERT_VU(w_[k]);                                          \
            c_[k] = 0;                                                            \
        } else if ((j) % Q64 % QSUB == 0) {                                       \
            win_[k] = CONVERT_VU(w_[k] >> CONVERT_VL(c_[k]));                     \
        }                                                                         \
    } while (0)
#define TAKEN(k, n) (c_[k] += (n))
#else
#define READER_LOCALS
#define WINDOW(k, j)                                                              \
    do {                                                                          \
        if ((j) % SPW == 0) REFILL(k);                                            \
    } while (0)
#define TAKEN(k, n) ((void)0)
#endif

/* One output word per lane: STEP elements of every lane of every set into
 * acc[k].  The sets are independent chains, so their gathers overlap. */
#define DECODE_STEP(acc)                                                          \
    do {                                                                          \
        vu win_[ECF8_NSETS];                                                      \
        READER_LOCALS                                                             \
        _Pragma("unroll") for (uint j = 0; j < STEP; j++)                         \
        {                                                                         \
            _Pragma("unroll") for (uint k = 0; k < ECF8_NSETS; k++)               \
            {                                                                     \
                WINDOW(k, j);                                                     \
                vu e_ = GATHER(TABLE_AT, win_[k] & (vu)TMASK);                    \
                vu len_ = e_ & 15;                                                \
                win_[k] >>= len_;                                                 \
                vu raw_ = win_[k] & (vu)RMASK;                                    \
                win_[k] >>= (vu)ECF8_RAW_BITS;                                    \
                p[k] += len_ + (vu)ECF8_RAW_BITS;                                 \
                TAKEN(k, len_ + (vu)ECF8_RAW_BITS);                               \
                vu x_ = joinv(e_ >> 4, raw_) << (vu)(8 * ECF8_WIDTH * j);         \
                acc[k] = j == 0 ? x_ : acc[k] | x_;                               \
            }                                                                     \
        }                                                                         \
    } while (0)

__kernel void ecf8_decode_lanes(DECODE_KERNEL_ARGS)
{
    ulong c0 = get_global_id(0) * LANES;
    if (c0 >= n_chunks) return;
    __global const ulong *offsets = (__global const ulong *)(data + offsets_at);
    __global const uint *table32 = (__global const uint *)(data + table_at);
    /* Bit positions are relative to the group's first chunk; the host
     * keeps a group's stream under 2^28 bytes. */
    ulong base = offsets[c0];
    __global const uchar *bytes = data + coded_at + base;
    /* 8-byte loads stay inside the stream (base <= offsets[n_chunks] =
     * coded_bytes - 8, validated on the host).  The bounds are clamped in
     * 64 bits: the rest of a stream over 4 GiB cut to 32 bits would be a
     * small, wrong bound (a group's positions stay far below the clamp). */
    ulong room = coded_bytes - base;
    uint last = (uint)min(room - 4, (ulong)0xFFFFFFF0u), lastw = last / 4;
    uint last8 = (uint)min(room - 8, (ulong)0xFFFFFFF0u);

    uint p0[LANES], cnt[LANES], nw[LANES];
    ulong ow[LANES];
    uint maxw = 0, minw = 0xffffffffu;
    uint nreal = (uint)min((ulong)LANES, n_chunks - c0); /* lanes with a chunk */
    for (uint l = 0; l < LANES; l++) {
        /* Lanes past the last chunk decode a copy of it and store the same
         * bytes to the same place (cheaper than a test per lane and store). */
        ulong c = min(c0 + l, n_chunks - 1);
        ulong start = chunk_geometry(c, rows, cols, chunk_rows, chunk_cols, &cnt[l]);
        nw[l] = cnt[l] / STEP;
        p0[l] = (uint)(offsets[c] - base) * 8;
        ow[l] = (out_offset + start * ECF8_WIDTH) / 4;
        maxw = max(maxw, nw[l]);
        minw = min(minw, nw[l]);
    }
    vu p[ECF8_NSETS], pend[ECF8_NSETS], nwv[ECF8_NSETS];
    vu cur[ECF8_NSETS], nxt[ECF8_NSETS], nn[ECF8_NSETS], wc[ECF8_NSETS];
#pragma unroll
    for (uint k = 0; k < ECF8_NSETS; k++) {
        p[k] = VLOADU(k, p0);
        nwv[k] = VLOADU(k, nw);
        wc[k] = p[k] >> 5;
        cur[k] = GATHER(WORD_AT, min(wc[k], (vu)lastw) << 2);
        nxt[k] = GATHER(WORD_AT, min(wc[k] + 1, (vu)lastw) << 2);
        nn[k] = nxt[k]; /* p has not moved: the first refill gathers it */
    }
    __global uint *o32 = (__global uint *)out;

    /* Phase A: while every lane with a chunk has a whole 16-byte block
     * left, four steps per iteration and one 16-byte store per lane. */
    uint blocks_all = minw / 4, blocks_any = maxw / 4;
    for (uint s4 = 0; s4 < blocks_all; s4++) {
        vu acc[4][ECF8_NSETS];
#pragma unroll
        for (uint q = 0; q < 4; q++) DECODE_STEP(acc[q]);
#define ALWAYS(l) 1
#define NEVER(l, q) 0
        STORE_BLOCKS(acc, 4 * s4, ALWAYS, NEVER);
    }

    /* Phase A': blocks some lanes have run out of (shorter edge chunks):
     * stores only inside each lane's own words; the position of a lane at
     * its word count is kept in pend. */
#pragma unroll
    for (uint k = 0; k < ECF8_NSETS; k++) pend[k] = p[k];
    for (uint s4 = blocks_all; s4 < blocks_any; s4++) {
        vu acc[4][ECF8_NSETS];
#pragma unroll
        for (uint q = 0; q < 4; q++) {
            DECODE_STEP(acc[q]);
#pragma unroll
            for (uint k = 0; k < ECF8_NSETS; k++)
                pend[k] = select(pend[k], p[k], (vu)(4 * s4 + q + 1) == nwv[k]);
        }
#define WHOLE_BLOCK(l) (4 * s4 + 4 <= nw[l])
#define WORD_INSIDE(l, q) (4 * s4 + (q) < nw[l])
        STORE_BLOCKS(acc, 4 * s4, WHOLE_BLOCK, WORD_INSIDE);
    }

    /* Phase B: the last words (fewer than four). */
    for (uint s = blocks_any * 4; s < maxw; s++) {
        vu acc[ECF8_NSETS];
        DECODE_STEP(acc);
        uint a[LANES];
#pragma unroll
        for (uint k = 0; k < ECF8_NSETS; k++) {
            VSTOREU(acc[k], k, a);
            pend[k] = select(pend[k], p[k], (vu)(s + 1) == nwv[k]);
        }
        for (uint l = 0; l < LANES; l++)
            if (s < nw[l]) o32[ow[l] + s] = a[l];
    }

    /* Phase C: per lane, the elements after its last whole word, then the
     * length check. */
    uint pe[LANES];
#pragma unroll
    for (uint k = 0; k < ECF8_NSETS; k++) VSTOREU(pend[k], k, pe);
    for (uint l = 0; l < nreal; l++) {
        ulong c = c0 + l;
        uint q = pe[l];
        __global uchar *dst = out + ow[l] * 4;
        for (uint i = nw[l] * STEP; i < cnt[l]; i++) {
            uint win = WORD_AT(min(q >> 3, last)) >> (q & 7);
            uint e = table32[win & TMASK], len = e & 15;
            uint raw = (win >> len) & RMASK;
            q += len + ECF8_RAW_BITS;
            store_element(dst, i, join(e >> 4, raw));
        }
        if ((q - p0[l] + 7) / 8 != offsets[c + 1] - offsets[c])
            report_chunk(error, c, q - p0[l], offsets[c + 1] - offsets[c]);
    }
}
