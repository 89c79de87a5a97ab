/* decode.cl - chunk-parallel decode of an ecf8 coded tensor (OpenCL C 1.2).
 * v1: one chunk per work-item, simple loop. */
#ifndef ECF8_WIDTH
#define ECF8_WIDTH 1
#endif
#ifndef ECF8_CODE_BITS
#define ECF8_CODE_BITS 12
#endif
#ifndef ECF8_RAW_BITS
#define ECF8_RAW_BITS 0
#endif
#ifndef ECF8_SYMBOL_SHIFT
#define ECF8_SYMBOL_SHIFT 0
#endif
#ifndef ECF8_SYMBOL_BITS
#define ECF8_SYMBOL_BITS 8
#endif
#ifndef ECF8_CHUNKS_PER_ITEM
#define ECF8_CHUNKS_PER_ITEM 1
#endif

#define TABLE_SIZE (1 << ECF8_CODE_BITS)
#define TMASK (TABLE_SIZE - 1)
#define RMASK ((1u << ECF8_RAW_BITS) - 1)
#define ELEM_BITS (ECF8_CODE_BITS + ECF8_RAW_BITS)
#define PER_REFILL (ELEM_BITS ? 56 / ELEM_BITS : 64)
#define LOW_MASK ((1u << ECF8_SYMBOL_SHIFT) - 1)

inline uint join(uint sym, uint raw)
{
    return ((raw >> ECF8_SYMBOL_SHIFT) << (ECF8_SYMBOL_SHIFT + ECF8_SYMBOL_BITS)) |
           (sym << ECF8_SYMBOL_SHIFT) | (raw & LOW_MASK);
}

#define V (16 / ECF8_WIDTH) /* elements per 16-byte store */
#define K ECF8_CHUNKS_PER_ITEM

#if ECF8_WIDTH == 1
typedef uchar16 vec_t;
#define VSTORE(v, i, p) vstore16(v, i, p)
#else
typedef ushort8 vec_t;
#define VSTORE(v, i, p) vstore8(v, i, (__global ushort *)(p))
#endif

#if defined(ECF8_CPU) && ECF8_CPU
/* Keeps LLVM's SLP vectorizer from packing the K independent chains into
 * vector registers (table lookups then need lane extracts). */
#define OPAQUE(x) __asm__("" : "+r"(x))
#else
#define OPAQUE(x) ((void)0)
#endif

#define REFILL(k)                                                              \
    do {                                                                       \
        buf[k] |= as_ulong(vload8(0, coded + min(pos[k], limit))) << avail[k]; \
        pos[k] += (63 - avail[k]) >> 3;                                        \
        avail[k] |= 56;                                                        \
    } while (0)

#define DECODE_ONE(k, x)                                                       \
    do {                                                                       \
        uint e_ = table[buf[k] & TMASK], len_ = e_ & 15;                       \
        buf[k] >>= len_;                                                       \
        OPAQUE(buf[k]);                                                        \
        uint raw_ = (uint)buf[k] & RMASK;                                      \
        buf[k] >>= ECF8_RAW_BITS;                                              \
        avail[k] -= len_ + ECF8_RAW_BITS;                                      \
        x = join(e_ >> 4, raw_);                                               \
    } while (0)

__kernel void ecf8_decode(__global const uchar *data, __global uchar *out,
                          __global uint *error, ulong offsets_at, ulong coded_at,
                          ulong coded_bytes, ulong table_at, ulong out_offset, ulong n_chunks,
                          ulong rows, ulong cols, ulong chunk_rows, ulong chunk_cols)
{
    __local ushort table[TABLE_SIZE];
    __global const ushort *gtable = (__global const ushort *)(data + table_at);
    for (uint i = get_local_id(0); i < TABLE_SIZE; i += get_local_size(0)) table[i] = gtable[i];
    barrier(CLK_LOCAL_MEM_FENCE);

    ulong c0 = get_global_id(0) * K;
    if (c0 >= n_chunks) return;
    __global const ulong *offsets = (__global const ulong *)(data + offsets_at);
    __global const uchar *coded = data + coded_at;
    ulong segs = (cols + chunk_cols - 1) / chunk_cols;
    ulong limit = coded_bytes - 8;

    ulong pos[K], begin[K], buf[K];
    uint avail[K], count[K];
    __global uchar *dst[K];
    uint nblk = 0xffffffffu;
#pragma unroll
    for (uint k = 0; k < K; k++) {
        ulong c = min(c0 + k, n_chunks - 1);
        ulong row0 = c / segs * chunk_rows, col0 = c % segs * chunk_cols;
        ulong nr = min(chunk_rows, rows - row0), nc = min(chunk_cols, cols - col0);
        count[k] = c0 + k < n_chunks ? (uint)(nr * nc) : 0;
        dst[k] = out + out_offset + (row0 * cols + col0) * ECF8_WIDTH;
        begin[k] = pos[k] = offsets[c];
        buf[k] = 0;
        avail[k] = 0;
        nblk = min(nblk, count[k] / V);
    }

    for (uint b = 0; b < nblk; b++) {
        vec_t v[K];
#pragma unroll
        for (uint j = 0; j < V; j++) {
#pragma unroll
            for (uint k = 0; k < K; k++) {
                if (j % PER_REFILL == 0) REFILL(k);
                uint x;
                DECODE_ONE(k, x);
                v[k][j] = x;
            }
        }
#pragma unroll
        for (uint k = 0; k < K; k++) VSTORE(v[k], b, dst[k]);
    }

    /* Whatever the blocks left: edge chunks and counts not a multiple of V. */
#pragma unroll
    for (uint k = 0; k < K; k++) {
        uint i = nblk * V;
        while (i < count[k]) {
            REFILL(k);
            uint stop = min(i + PER_REFILL, count[k]);
            for (; i < stop; i++) {
                uint x;
                DECODE_ONE(k, x);
#if ECF8_WIDTH == 1
                dst[k][i] = (uchar)x;
#else
                vstore2((uchar2)((uchar)x, (uchar)(x >> 8)), i, dst[k]);
#endif
            }
        }
        ulong bits = (pos[k] - begin[k]) * 8 - avail[k];
        if (c0 + k < n_chunks && (bits + 7) / 8 != offsets[c0 + k + 1] - begin[k])
            atomic_cmpxchg(error, 0u, (uint)(c0 + k) + 1);
    }
}

/* ---- lane-parallel variant: VW x NSETS chunks per work-item in vector lanes ---- */
#ifndef ECF8_VW
#define ECF8_VW 16
#endif
#ifndef ECF8_NSETS
#define ECF8_NSETS 2
#endif
#define LANES (ECF8_VW * ECF8_NSETS)
#define ELEM_BITS_NZ (ELEM_BITS ? ELEM_BITS : 1)
/* A window is the 32 bits at byte p/8 shifted right by p%8: at least 25
 * valid bits, enough for SPW elements. */
#define SPW (25 / ELEM_BITS_NZ)
#define STEP (4 / ECF8_WIDTH)    /* elements per 32-bit output word */
#if ECF8_VW == 16
typedef uint16 vu;
#define VLOADU(i, p) vload16(i, p)
#define VSTOREU(v, i, p) vstore16(v, i, p)
#define GATHER(p, i)                                                                   \
    (uint16)(p((i).s0), p((i).s1), p((i).s2), p((i).s3), p((i).s4), p((i).s5), p((i).s6), \
             p((i).s7), p((i).s8), p((i).s9), p((i).sa), p((i).sb), p((i).sc), p((i).sd), \
             p((i).se), p((i).sf))
#elif ECF8_VW == 8
typedef uint8 vu;
#define VLOADU(i, p) vload8(i, p)
#define VSTOREU(v, i, p) vstore8(v, i, p)
#define GATHER(p, i)                                                                   \
    (uint8)(p((i).s0), p((i).s1), p((i).s2), p((i).s3), p((i).s4), p((i).s5), p((i).s6), \
            p((i).s7))
#else
#error ECF8_VW must be 8 or 16
#endif

inline vu joinv(vu sym, vu raw)
{
    return ((raw >> ECF8_SYMBOL_SHIFT) << (ECF8_SYMBOL_SHIFT + ECF8_SYMBOL_BITS)) |
           (sym << ECF8_SYMBOL_SHIFT) | (raw & LOW_MASK);
}

/* The 32-bit little-endian word at byte i of the stream: an unaligned
 * load, which CPU devices (the only users of this kernel) allow. */
#define WORD_AT(i) (*(__global const uint *)(bytes + (i)))

/* At least 25 stream bits from bit position p on (LSB first). */
inline uint window1(__global const uchar *bytes, uint p, uint last)
{
    return WORD_AT(min(p >> 3, last)) >> (p & 7);
}

__kernel void ecf8_decode_lanes(__global const uchar *data, __global uchar *out,
                                __global uint *error, ulong offsets_at, ulong coded_at,
                                ulong coded_bytes, ulong table_at, ulong out_offset,
                                ulong n_chunks, ulong rows, ulong cols, ulong chunk_rows,
                                ulong chunk_cols)
{
    ulong c0 = get_global_id(0) * LANES;
    if (c0 >= n_chunks) return;
    __global const ulong *offsets = (__global const ulong *)(data + offsets_at);
    __global const uchar *coded = data + coded_at;
    __global const uint *table = (__global const uint *)(data + table_at);
    ulong segs = (cols + chunk_cols - 1) / chunk_cols;
#define TABLE_AT(i) table[i]
    ulong base = offsets[c0];
    __global const uchar *bytes = coded + base;
    uint last = (uint)min(coded_bytes - base - 4, (ulong)0xffffffffu);

    uint p0[LANES], cnt[LANES], nw[LANES];
    ulong ow[LANES];
    uint maxw = 0;
    for (uint l = 0; l < LANES; l++) {
        ulong c = min(c0 + l, n_chunks - 1);
        ulong row0 = c / segs * chunk_rows, col0 = c % segs * chunk_cols;
        ulong nr = min(chunk_rows, rows - row0), nc = min(chunk_cols, cols - col0);
        cnt[l] = c0 + l < n_chunks ? (uint)(nr * nc) : 0;
        nw[l] = cnt[l] / STEP;
        p0[l] = (uint)(offsets[c] - base) * 8;
        ow[l] = (out_offset + (row0 * cols + col0) * ECF8_WIDTH) / 4;
        maxw = max(maxw, nw[l]);
    }
    /* Every lane steps maxw times; a lane past its own word count stores
     * nothing and its position at that count is kept in pend. */
    vu p[ECF8_NSETS], pend[ECF8_NSETS], nwv[ECF8_NSETS];
#pragma unroll
    for (uint k = 0; k < ECF8_NSETS; k++) {
        p[k] = pend[k] = VLOADU(k, p0);
        nwv[k] = VLOADU(k, nw);
    }
    __global uint *o32 = (__global uint *)out;
    for (uint s = 0; s < maxw; s++) {
        vu acc[ECF8_NSETS], win[ECF8_NSETS];
#pragma unroll
        for (uint j = 0; j < STEP; j++) {
#pragma unroll
            for (uint k = 0; k < ECF8_NSETS; k++) {
                if (j % SPW == 0) {
                    vu b = min(p[k] >> 3, (vu)last);
                    win[k] = GATHER(WORD_AT, b) >> (p[k] & 7);
                }
                vu e = GATHER(TABLE_AT, win[k] & (vu)TMASK);
                vu len = e & 15;
                win[k] >>= len;
                vu raw = win[k] & (vu)RMASK;
                win[k] >>= (vu)ECF8_RAW_BITS;
                p[k] += len + (vu)ECF8_RAW_BITS;
                vu x = joinv(e >> 4, raw) << (vu)(8 * ECF8_WIDTH * j);
                acc[k] = j == 0 ? x : acc[k] | x;
            }
        }
        uint a[LANES];
#pragma unroll
        for (uint k = 0; k < ECF8_NSETS; k++) {
            VSTOREU(acc[k], k, a);
            pend[k] = select(pend[k], p[k], (vu)(s + 1) == nwv[k]);
        }
#pragma unroll
        for (uint l = 0; l < LANES; l++)
            if (s < nw[l]) o32[ow[l] + s] = a[l];
    }

    uint pe[LANES];
#pragma unroll
    for (uint k = 0; k < ECF8_NSETS; k++) VSTOREU(pend[k], k, pe);
    for (uint l = 0; l < LANES; l++) {
        if (c0 + l >= n_chunks) break;
        uint q = pe[l];
        __global uchar *dst = out + ow[l] * 4;
        for (uint i = nw[l] * STEP; i < cnt[l]; i++) {
            uint win = window1(bytes, q, last);
            uint e = table[win & TMASK], len = e & 15;
            uint raw = (win >> len) & RMASK;
            q += len + ECF8_RAW_BITS;
            uint x = join(e >> 4, raw);
#if ECF8_WIDTH == 1
            dst[i] = (uchar)x;
#else
            vstore2((uchar2)((uchar)x, (uchar)(x >> 8)), i, dst);
#endif
        }
        ulong c = c0 + l;
        if ((q - p0[l] + 7) / 8 != offsets[c + 1] - offsets[c]) atomic_cmpxchg(error, 0u, (uint)c + 1);
    }
}
