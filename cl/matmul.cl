/* matmul.cl - Y[m, n] = sum_k X[m, k] * W[n, k] for a Linear weight W [N, K]
 * that is either an ecf8-coded tensor (ECF8_MM_FUSED=1: decoded on the fly, never
 * written to global memory) or the same weight stored raw (ECF8_MM_FUSED=0: the
 * uncompressed baseline).  One source, one reduction order, so both give
 * bit-identical Y.
 *
 * Reduction order (the contract; it depends only on (k-block, position),
 * never on chunking, lanes or work-group shape):
 *     acc = 0
 *     for each k-block b of SK columns, ascending (the last may be shorter):
 *         p = 0
 *         for k in the block, ascending:  p = fma(x[m, k], w[n, k], p)
 *         acc = fma(p, scale[n >> SRS, b], acc)        (BF16: acc = acc + p)
 *     y[m, n] = acc
 * SK = ECF8_MM_SK, 128 (default) or 32; SRS, the kernel argument, is log2 of
 * the rows one scale row covers (7, 5 or 0).  The host widens every scale
 * form to an F32 grid [ceil(N / 2^SRS), ceil(K / SK)] exactly
 * (src/opencl/matmul.c): 128x128 F32 blocks (DeepSeek-V3) are that grid
 * as stored (SK 128, SRS 7, the contract of 1.x unchanged); a scalar fills
 * a 128x128 grid (SK 128, SRS 7); per-row scales a [N, ceil(K/128)] grid
 * (SK 128, SRS 0); 32x32 blocks (SK 32, SRS 5) and 1x32 blocks (MXFP8:
 * SK 32, SRS 0) keep their own grid, so the scale is applied once per
 * 32-column sub-block.  BF16 weights have no scales: SK 128 always.
 * w[n, k] is the exact fp32 value of the stored FP8/BF16 element (FP8 NaN
 * becomes the quiet NaN 0x7FC00000 with the element's sign, E5M2 +-Inf stays
 * +-Inf).  FP_CONTRACT is off and every multiply-add is an explicit fma(), so
 * the compiler cannot re-associate or fuse differently in the two variants.
 *
 * Work split: the coded tensor's chunks are contiguous flat ranges aligned to
 * rows (ecf8_chunk_geometry): a "band" of CR whole rows per chunk when
 * K <= the chunk target, else one row cut into SEGS segments of CC columns
 * (CC a multiple of 64).  A lane owns one band and decodes its chunk(s)
 * sequentially; a work-item drives ECF8_MM_LANES lanes side by side (16
 * with AVX-512 gathers on CPUs, 1 elsewhere) and ECF8_MM_IL such lane groups
 * interleaved, so that independent decode chains overlap.  Lanes past the
 * last band decode the last band again and store nothing, so every loop
 * runs the same number of times in all lanes and one launch covers any N.
 * Columns are walked in sub-blocks of 64, which never straddle a segment or
 * a 128-block boundary.  Each lane reads its own stream, ECF8_MM_IL *
 * ECF8_MM_LANES of them per work-item, more than the hardware prefetchers
 * follow: the readers prefetch ECF8_MM_PREFETCH bytes ahead once per
 * sub-block (64, about the next sub-block's line, measured no slower than
 * 128 or 256 on PoCL).
 *   ecf8_mm_gemv<M>  M = 1..4 rows of X: decode, multiply-add straight away.
 *   ecf8_mm_gemm     any M: decode a 128-column block of ECF8_MM_IL *
 *                    ECF8_MM_LANES rows once into private memory, then run
 *                    every row of X over it, ECF8_MM_GI lane groups per X
 *                    load (M in chunks of ECF8_MM_MMAX, re-decoding per
 *                    chunk).
 *   ecf8_mm_dequant  (ECF8_MM_FUSED=0) raw weights -> fp32 w * scale, for SGEMM.
 *
 * Stream layout 1 (lane streams, docs/FORMAT.md 4.4) has kernels of its own
 * (ECF8_MM_STREAMS=1, a program without the layout-0 ones; the section
 * "stream layout 1" below): ecf8_mm_sgemv1..4 and ecf8_mm_sgemm, CPU-shaped
 * (SVW = 8 chunks side by side in 256-bit vectors, 16 with AVX-512; one
 * step of a chunk's 32 lanes is 128 consecutive columns, one k-block), the
 * same reduction order, so Y is bit-identical to the uncompressed kernel
 * and to layout 0.  The host runs them on CPU devices where every chunk
 * row piece is a multiple of 128 columns (K % 128 == 0; row segments of a
 * multiple of 128).  On GPUs (and with matmul_lanes 1) such a weight runs
 * the GPU-shaped lane-order kernels (ECF8_MM_LORDER, the section "the
 * lane order" below: a second reduction-order contract, which the
 * uncompressed engine then follows too).  Other shapes run this file's
 * uncompressed kernels (ECF8_MM_FUSED=0) on the raw weights, decoded on
 * the host at create or on the device per call (src/opencl/matmul.c).
 *   ecf8_mm_probe    reports ECF8_MM_LANES and ECF8_MM_IL through its
 *                    reqd_work_group_size.
 *
 * Options (-D, all named ECF8_MM_*, like the decode kernels' ECF8_*):
 * ECF8_MM_WDT 1 E4M3, 2 E5M2, 3 BF16 (ecf8_dtype); ECF8_MM_FUSED; for
 * ECF8_MM_FUSED: ECF8_MM_RAW_BITS, ECF8_MM_SYM_SHIFT, ECF8_MM_SYM_BITS (the
 * split layout) and ECF8_MM_GRP (elements per 32-bit load: 4, 2 or 1 for
 * code + raw bits <= 6, 12, 25; the code length itself is the argument
 * tmask); ECF8_MM_LANES (0 = choose), ECF8_MM_IL, ECF8_MM_XBF16 (X is
 * bf16), ECF8_MM_MB (X rows per pass in gemm), ECF8_MM_GI, ECF8_MM_MMAX,
 * ECF8_MM_PREFETCH; ECF8_MM_SK (scale block columns, 128 or 32: the
 * contract above); ECF8_MM_STREAMS (the layout-1 kernels: ECF8_MM_IL is then
 * their sets of SVW chunks per work-item, default 1) and ECF8_MM_SRELOAD (a
 * second 64-bit load per word, for 15-bit FP8 codes); ECF8_MM_LORDER (the
 * lane-order kernels, fused or raw) with ECF8_MM_LG (bands per work-group)
 * and ECF8_MM_LSPW (codes per 32-bit window).
 * Index arithmetic is 32-bit: the host keeps every buffer under 2 GiB. */
#pragma OPENCL FP_CONTRACT OFF

#ifndef ECF8_MM_WDT
#define ECF8_MM_WDT 1
#endif
#ifndef ECF8_MM_FUSED
#define ECF8_MM_FUSED 1
#endif
#ifndef ECF8_MM_CODE_BITS
#define ECF8_MM_CODE_BITS 12
#endif
#ifndef ECF8_MM_RAW_BITS
#define ECF8_MM_RAW_BITS 0
#endif
#ifndef ECF8_MM_SYM_SHIFT
#define ECF8_MM_SYM_SHIFT 0
#endif
#ifndef ECF8_MM_SYM_BITS
#define ECF8_MM_SYM_BITS 8
#endif
#ifndef ECF8_MM_XBF16
#define ECF8_MM_XBF16 0
#endif
#ifndef ECF8_MM_MB
#define ECF8_MM_MB 8
#endif
#ifndef ECF8_MM_MMAX
#define ECF8_MM_MMAX 64
#endif
#ifndef ECF8_MM_LANES
#define ECF8_MM_LANES 0
#endif
#ifndef ECF8_MM_PREFETCH
#define ECF8_MM_PREFETCH 64
#endif
#ifndef ECF8_MM_SK
#define ECF8_MM_SK 128
#endif
#if ECF8_MM_SK != 128 && ECF8_MM_SK != 32
#error "ECF8_MM_SK must be 128 or 32"
#endif
#if ECF8_MM_SK != 128 && ECF8_MM_WDT == 3
#error "BF16 weights have no scales: ECF8_MM_SK is 128"
#endif
#define SUBS (128u / ECF8_MM_SK) /* scale blocks per 128-column block */

#if defined(__has_builtin)
#if __has_builtin(__builtin_ia32_gathersiv16si) && __has_builtin(__builtin_ia32_gathersiv16sf)
#define HAVE_GATHER16 1
#endif
#endif

#ifndef ECF8_MM_LORDER
#define ECF8_MM_LORDER 0
#endif
#if ECF8_MM_LORDER && ECF8_MM_STREAMS
#error "ECF8_MM_LORDER and ECF8_MM_STREAMS are different programs"
#endif
#if ECF8_MM_LORDER /* one work-item per lane stream: no lane vectors */
#undef ECF8_MM_LANES
#define ECF8_MM_LANES 1
#endif

#if ECF8_MM_LANES == 0
#undef ECF8_MM_LANES
#if defined(HAVE_GATHER16) && defined(__AVX512F__)
#define ECF8_MM_LANES 16
#else
#define ECF8_MM_LANES 1
#endif
#endif
#if ECF8_MM_LANES != 1 && ECF8_MM_LANES != 16
#error "ECF8_MM_LANES must be 1 or 16"
#endif
#if ECF8_MM_LANES == 16 && !(defined(HAVE_GATHER16) && defined(__AVX512F__))
#error "ECF8_MM_LANES=16 needs AVX-512 gathers"
#endif

#ifndef ECF8_MM_STREAMS
#define ECF8_MM_STREAMS 0
#endif
#if ECF8_MM_STREAMS && !ECF8_MM_FUSED
#error "ECF8_MM_STREAMS is a fused (coded W) program"
#endif

#ifndef ECF8_MM_IL
#if ECF8_MM_STREAMS
#define ECF8_MM_IL 1
#elif ECF8_MM_LANES == 16
#define ECF8_MM_IL 4
#else
#define ECF8_MM_IL 1
#endif
#endif

#define ES (ECF8_MM_WDT == 3 ? 2u : 1u) /* bytes per weight element */
#define FP8_VALUE_BITS 0xFFF00000u        /* of an FP8 byte-split table entry */

/* ---- lane vectors -------------------------------------------------------- */
#if ECF8_MM_LANES == 16
typedef uint16 vu;
typedef float16 vf;
#define AS_VU as_uint16
#define AS_VF as_float16
#define CVT_VF convert_float16
#define LANE_ID ((uint16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
/* Gathers through the AVX-512 builtins: the auto-vectoriser of PoCL does not
 * turn a decoder into SIMD code, so the lanes are explicit. */
#define GATHER_U32(base, byte_index)                                              \
    as_uint16(__builtin_ia32_gathersiv16si((int16)(0), (const void *)(ulong)(base), \
                                           as_int16(byte_index), (ushort)0xFFFF, 1))
#define TABLE_U32(base, index)                                                    \
    as_uint16(__builtin_ia32_gathersiv16si((int16)(0), (const void *)(ulong)(base), \
                                           as_int16(index), (ushort)0xFFFF, 4))
#define GATHER_F32(base, index)                                                   \
    __builtin_ia32_gathersiv16sf((float16)(0.0f), (const void *)(ulong)(base),    \
                                 as_int16(index), (ushort)0xFFFF, 4)
/* One cache line per lane: ECF8_MM_IL * 16 lanes stream from as many places, more
 * than the hardware prefetchers follow. */
#define PREFETCH_LANES(base, byte_index)                                          \
    do {                                                                          \
        vu o_ = (byte_index);                                                     \
        for (int l_ = 0; l_ < 16; l_++)                                           \
            __builtin_prefetch((__global const uchar *)(base) + o_[l_]);          \
    } while (0)
#else
typedef uint vu;
typedef float vf;
#define AS_VU as_uint
#define AS_VF as_float
#define CVT_VF convert_float
#define LANE_ID 0u
/* Any alignment, byte by byte: portable, and only the scalar path uses it. */
inline uint load_u32(__global const uchar *p, uint i)
{
    return (uint)p[i] | (uint)p[i + 1] << 8 | (uint)p[i + 2] << 16 | (uint)p[i + 3] << 24;
}
#define GATHER_U32(base, byte_index) load_u32((__global const uchar *)(base), byte_index)
#define TABLE_U32(base, index) ((base)[index])
#define GATHER_F32(base, index) ((base)[index])
#define PREFETCH_LANES(base, byte_index) prefetch((__global const uchar *)(base) + (byte_index), 64)
#endif

/* ---- element values (exact, independent of denormal flushing) ------------ */
/* Defined once per type: lane vectors (kernels) and scalars (dequant). */
#define DEFINE_FP8_VALUES(SUFFIX, U, F, ASU, ASF, CVT)                            \
    inline F e4m3_##SUFFIX(U b)                                                   \
    {                                                                             \
        U s = (b & 0x80u) << 24, em = b & 0x7Fu;                                  \
        U normal = s | ((em + 960u) << 20);         /* exponent + 120 */          \
        U sub = s | ASU(CVT(em) * 0x1p-9f);         /* m * 2^-9 */                \
        U r = em < 8u ? sub : normal;                                             \
        return ASF(em == 0x7Fu ? (s | (U)(0x7FC00000u)) : r); /* S.1111.111 */    \
    }                                                                             \
    inline F e5m2_##SUFFIX(U b)                                                   \
    {                                                                             \
        U s = (b & 0x80u) << 24, em = b & 0x7Fu;                                  \
        U normal = s | ((em + 448u) << 21);         /* exponent + 112 */          \
        U sub = s | ASU(CVT(em) * 0x1p-16f);        /* m * 2^-16 */               \
        U special = s | (em == 0x7Cu ? (U)(0x7F800000u) : (U)(0x7FC00000u));      \
        U r = em < 4u ? sub : normal;                                             \
        return ASF(em >= 0x7Cu ? special : r);                                    \
    }

DEFINE_FP8_VALUES(lane, vu, vf, AS_VU, AS_VF, CVT_VF)
#if ECF8_MM_LANES != 1
DEFINE_FP8_VALUES(one, uint, float, as_uint, as_float, convert_float)
#else
#define e4m3_one e4m3_lane
#define e5m2_one e5m2_lane
#endif

/* Value of a raw element (the low 8 or 16 bits of el). */
inline vf element_value(vu el)
{
#if ECF8_MM_WDT == 1
    return e4m3_lane(el);
#elif ECF8_MM_WDT == 2
    return e5m2_lane(el);
#else
    return AS_VF(el << 16);
#endif
}

/* ---- readers: one lane's weights in column order ---------------------------- */
#if ECF8_MM_FUSED
/* A coded element is its code word then ECF8_MM_RAW_BITS raw bits, LSB first.  A
 * 32-bit load at the byte holding the next bit, shifted, leaves >= 25 valid
 * bits, enough for ECF8_MM_GRP elements. */
#ifndef ECF8_MM_GRP
#define ECF8_MM_GRP                                                               \
    ((ECF8_MM_CODE_BITS + ECF8_MM_RAW_BITS) <= 6    ? 4                           \
     : (ECF8_MM_CODE_BITS + ECF8_MM_RAW_BITS) <= 12 ? 2                           \
                                                    : 1)
#endif
#define TMASK tmask /* (1 << code_bits) - 1, a kernel argument */
#define RMASK ((1u << ECF8_MM_RAW_BITS) - 1u)

typedef struct reader {
    vu base; /* byte offset of the chunk in the coded stream */
    vu pos;  /* bits consumed from it */
} reader;

/* Host-built table entry: bits 0-3 code length, bits 4-31 a value part:
 *   FP8 byte split: the element's fp32 bits (FP8_VALUE_BITS: an FP8 value
 *     has at most 4 significant bits, so the low 20 are zero) and the
 *     element byte in bits 4-11 (for the lane-order decode kernel);
 *   FP8 exponent split: the symbol << 4;
 *   BF16: the symbol placed where it sits in the fp32 bits. */
/* The element's own bits (8 or 16) from its table entry and raw bits. */
inline vu coded_element(vu e, vu raw)
{
#if ECF8_MM_RAW_BITS == 0 && ECF8_MM_WDT != 3
    (void)raw;
    return (e >> 4) & 0xFFu;
#else
    vu low = raw & ((1u << ECF8_MM_SYM_SHIFT) - 1u), high = raw >> ECF8_MM_SYM_SHIFT;
#if ECF8_MM_WDT == 3
    vu sym = e >> 16; /* the symbol << ECF8_MM_SYM_SHIFT */
#else
    vu sym = (e >> 4) << ECF8_MM_SYM_SHIFT;
#endif
    return high << (ECF8_MM_SYM_SHIFT + ECF8_MM_SYM_BITS) | sym | low;
#endif
}

inline vf coded_value(vu e, vu raw)
{
#if ECF8_MM_WDT == 3
    return AS_VF(coded_element(e, raw) << 16);
#elif ECF8_MM_RAW_BITS == 0
    (void)raw;
    return AS_VF(e & FP8_VALUE_BITS);
#else
    return element_value(coded_element(e, raw));
#endif
}

#define READER_ARGS                                                               \
    __global const uchar *coded, __global const uint *offs, __global const uint *table, \
        uint tmask
#define READER_PASS coded, offs, table, tmask

/* Positions lane group r at the start of chunk c. */
inline void reader_seek_chunk(reader *r, vu c, __global const uint *offs)
{
#if ECF8_MM_LANES == 16
    r->base = TABLE_U32(offs, c);
#else
    r->base = offs[c];
#endif
    r->pos = 0;
}

#define READER_AT(r, i) ((r)[i].base + ((r)[i].pos >> 3)) /* next byte to read */

/* Decodes the ECF8_MM_GRP elements one 32-bit load v serves. */
#define DECODE_GROUP(r, i, v, k, CONSUME)                                         \
    do {                                                                          \
        vu used_ = 0;                                                             \
        _Pragma("unroll") for (int t_ = 0; t_ < ECF8_MM_GRP; t_++)                \
        {                                                                         \
            vu e_ = TABLE_U32(table, v & TMASK), len_ = e_ & 15u;                 \
            vu raw_ = ECF8_MM_RAW_BITS ? (v >> len_) & RMASK : (vu)(0);           \
            v >>= len_ + ECF8_MM_RAW_BITS;                                        \
            used_ += len_ + ECF8_MM_RAW_BITS;                                     \
            CONSUME(i, (k) + t_, coded_value(e_, raw_));                          \
        }                                                                         \
        (r)[i].pos += used_;                                                      \
    } while (0)

/* Decodes ne (<= 64) elements of each of the ECF8_MM_IL lane groups and hands each
 * to CONSUME(i, kk, value) (lane group, column in the sub-block, value). */
#define READER_BLOCK(r, ne, CONSUME)                                              \
    do {                                                                          \
        uint ng_ = (ne) / ECF8_MM_GRP;                                            \
        for (uint g_ = 0; g_ < ng_; g_++) {                                       \
            _Pragma("unroll") for (int i_ = 0; i_ < ECF8_MM_IL; i_++)             \
            {                                                                     \
                vu v_ = GATHER_U32(coded, (r)[i_].base + ((r)[i_].pos >> 3)) >>   \
                        ((r)[i_].pos & 7u);                                       \
                DECODE_GROUP(r, i_, v_, g_ * ECF8_MM_GRP, CONSUME);               \
            }                                                                     \
        }                                                                         \
        for (uint k_ = ng_ * ECF8_MM_GRP; k_ < (ne); k_++) {                      \
            _Pragma("unroll") for (int i_ = 0; i_ < ECF8_MM_IL; i_++)             \
            {                                                                     \
                vu v_ = GATHER_U32(coded, (r)[i_].base + ((r)[i_].pos >> 3)) >>   \
                        ((r)[i_].pos & 7u);                                       \
                vu e_ = TABLE_U32(table, v_ & TMASK), len_ = e_ & 15u;            \
                vu raw_ = ECF8_MM_RAW_BITS ? (v_ >> len_) & RMASK : (vu)(0);      \
                (r)[i_].pos += len_ + ECF8_MM_RAW_BITS;                           \
                CONSUME(i_, k_, coded_value(e_, raw_));                           \
            }                                                                     \
        }                                                                         \
    } while (0)
#else /* raw weights */
#define ECF8_MM_GRP (4u / ES)
typedef struct reader {
    vu idx; /* byte offset of the next element */
} reader;

#define READER_ARGS                                                               \
    __global const uchar *coded, __global const uint *offs, __global const uint *table, \
        uint tmask
#define READER_PASS coded, offs, table, tmask

#define RAW_MASK (ES == 1 ? 0xFFu : 0xFFFFu)
#define READER_AT(r, i) ((r)[i].idx)
#define READER_BLOCK(r, ne, CONSUME)                                              \
    do {                                                                          \
        uint ng_ = (ne) / ECF8_MM_GRP;                                            \
        for (uint g_ = 0; g_ < ng_; g_++) {                                       \
            _Pragma("unroll") for (int i_ = 0; i_ < ECF8_MM_IL; i_++)             \
            {                                                                     \
                vu v_ = GATHER_U32(coded, (r)[i_].idx);                           \
                _Pragma("unroll") for (int t_ = 0; t_ < (int)ECF8_MM_GRP; t_++)   \
                {                                                                 \
                    CONSUME(i_, g_ * ECF8_MM_GRP + t_, element_value(v_ & RAW_MASK)); \
                    v_ >>= 8 * ES;                                                \
                }                                                                 \
                (r)[i_].idx += 4u;                                                \
            }                                                                     \
        }                                                                         \
        for (uint k_ = ng_ * ECF8_MM_GRP; k_ < (ne); k_++) {                      \
            _Pragma("unroll") for (int i_ = 0; i_ < ECF8_MM_IL; i_++)             \
            {                                                                     \
                vu v_ = GATHER_U32(coded, (r)[i_].idx);                           \
                CONSUME(i_, k_, element_value(v_ & RAW_MASK));                    \
                (r)[i_].idx += ES;                                                \
            }                                                                     \
        }                                                                         \
    } while (0)
#endif

/* ---- shared pieces -------------------------------------------------------------- */
/* Prefetches every lane's stream ECF8_MM_PREFETCH bytes past where it reads. */
#define READER_PREFETCH(r)                                                        \
    do {                                                                          \
        for (int i_ = 0; i_ < ECF8_MM_IL; i_++)                                   \
            PREFETCH_LANES(coded, READER_AT(r, i_) + ECF8_MM_PREFETCH);           \
    } while (0)

#if ECF8_MM_XBF16
typedef ushort xtype;
#define X_LOAD(p, i) as_float((uint)(p)[i] << 16)
#else
typedef float xtype;
#define X_LOAD(p, i) ((p)[i])
#endif

/* The common kernel arguments.  The weight is NB bands: CR rows each (the
 * last band may hold fewer) or, with SEGS > 1, one row cut into SEGS chunks
 * of CC columns.  NKB = ceil(K / 128); RS, the raw weights' row stride in
 * elements (>= K); SRS, the scale grid's row shift (scale row n >> SRS). */
#define MM_ARGS                                                                   \
    READER_ARGS, __global const float *scale, __global const xtype *x, ulong x_off, \
        __global float *y, ulong y_off, uint M, uint N, uint K, uint CR, uint CC, \
        uint SEGS, uint NKB, uint NB, uint RS, uint SRS

/* The scale grid's row stride: ceil(K / ECF8_MM_SK). */
#if ECF8_MM_SK == 128
#define SSTRIDE NKB
#else
#define SSTRIDE ((K + (ECF8_MM_SK - 1u)) / ECF8_MM_SK)
#endif

/* Lane group i of this work-item: its bands, clamped to the last one so
 * that every lane decodes a real chunk (and every loop runs the same number
 * of times in all lanes), and which lanes are live.  Rows past the end of a
 * partial last band decode into the stream's zero padding (the host pads
 * for a whole chunk) and, for raw weights, re-read row N - 1; none of them
 * is stored. */
#define LANE_BANDS(bands, live)                                                   \
    do {                                                                          \
        for (int i_ = 0; i_ < ECF8_MM_IL; i_++) {                                 \
            vu b_ = ((uint)get_global_id(0) * ECF8_MM_IL + (uint)i_) * ECF8_MM_LANES + LANE_ID; \
            live[i_] = b_ < NB ? (vu)(0xFFFFFFFFu) : (vu)(0u);                    \
            bands[i_] = min(b_, (vu)(NB - 1u));                                   \
        }                                                                         \
    } while (0)

/* Moves the readers to column k0 of row r (0-based inside the band) where a
 * chunk starts or a raw row starts. */
#if ECF8_MM_FUSED
#define SEEK(r, bands, row, k0)                                                   \
    do {                                                                          \
        if (SEGS > 1) {                                                           \
            for (int i_ = 0; i_ < ECF8_MM_IL; i_++)                               \
                reader_seek_chunk(&(r)[i_], (bands)[i_] * SEGS + (k0) / CC, offs); \
        } else if ((row) == 0 && (k0) == 0) {                                     \
            for (int i_ = 0; i_ < ECF8_MM_IL; i_++)                                     \
                reader_seek_chunk(&(r)[i_], (bands)[i_], offs);                           \
        }                                                                         \
    } while (0)
#define AT_CHUNK_START(k0) (SEGS > 1 ? (k0) % CC == 0 : (k0) == 0)
#else
#define SEEK(r, bands, row, k0)                                                   \
    do {                                                                          \
        for (int i_ = 0; i_ < ECF8_MM_IL; i_++)                                   \
            (r)[i_].idx = (min((bands)[i_] * CR + (row), (vu)(N - 1u)) * RS + (k0)) * ES; \
    } while (0)
#define AT_CHUNK_START(k0) ((k0) == 0)
#endif

/* The scale of rows n (clamped to the last row) for scale block kb; stride
 * is the grid's row stride. */
inline vf scale_of(__global const float *scale, vu n, uint kb, uint stride, uint N, uint SRS)
{
#if ECF8_MM_WDT == 3
    return (vf)(1.0f);
#else
    return GATHER_F32(scale, (min(n, (vu)(N - 1u)) >> (vu)(SRS)) * stride + kb);
#endif
}

inline vf block_accumulate(vf acc, vf p, vf s)
{
#if ECF8_MM_WDT == 3
    return acc + p;
#else
    return fma(p, s, acc);
#endif
}

/* Stores v (one value per lane) at y[n] for the live lanes whose row n
 * exists. */
inline void store_lanes(__global float *y, vu n, vf v, vu live, uint N)
{
    vu ok = live & (n < N ? (vu)(0xFFFFFFFFu) : (vu)(0u));
#if ECF8_MM_LANES == 16
    if (all(as_int16(ok) != 0) && n.sf - n.s0 == 15u) {
        vstore16(v, 0, y + n.s0);
        return;
    }
#define STORE_LANE(c) if (ok.c) y[n.c] = v.c
    STORE_LANE(s0); STORE_LANE(s1); STORE_LANE(s2); STORE_LANE(s3);
    STORE_LANE(s4); STORE_LANE(s5); STORE_LANE(s6); STORE_LANE(s7);
    STORE_LANE(s8); STORE_LANE(s9); STORE_LANE(sa); STORE_LANE(sb);
    STORE_LANE(sc); STORE_LANE(sd); STORE_LANE(se); STORE_LANE(sf);
#undef STORE_LANE
#else
    if (ok) y[n] = v;
#endif
}

#if !ECF8_MM_STREAMS && !ECF8_MM_LORDER
/* ---- GEMV: M = 1..4 rows of X, multiply-add as elements are decoded --------- */
/* Multiply-adds one decoded element into the MD partial sums of its lanes. */
#define GEMV_CONSUME(i, kk, value)                                                \
    do {                                                                          \
        vf w_ = (value);                                                          \
        _Pragma("unroll") for (int j_ = 0; j_ < MD_; j_++) p[i][j_] =             \
            fma((vf)(X_LOAD(x, j_ * K + k0 + (kk))), w_, p[i][j_]);               \
    } while (0)

/* Columns per reader call: 64, or one scale block of 32 (which ends at each
 * call); a 128-column block ends where its second half of 64 does. */
#if ECF8_MM_SK == 128
#define GEMV_STEP 64u
#define GEMV_BLOCK_END(k0) ((k0) & 64u)
#else
#define GEMV_STEP ((uint)ECF8_MM_SK)
#define GEMV_BLOCK_END(k0) 1
#endif

#define DEFINE_GEMV(MD)                                                           \
    __kernel void ecf8_mm_gemv##MD(MM_ARGS)                                       \
    {                                                                             \
        const int MD_ = MD;                                                       \
        vu bands[ECF8_MM_IL], live[ECF8_MM_IL];                                   \
        LANE_BANDS(bands, live);                                                  \
        x += x_off;                                                               \
        y += y_off;                                                               \
        reader r[ECF8_MM_IL];                                                     \
        for (uint row = 0; row < CR; row++) {                                     \
            vf acc[ECF8_MM_IL][MD], p[ECF8_MM_IL][MD];                            \
            for (int i = 0; i < ECF8_MM_IL; i++)                                  \
                for (int j = 0; j < MD; j++) acc[i][j] = p[i][j] = (vf)(0.0f);    \
            for (uint k0 = 0; k0 < K; k0 += GEMV_STEP) {                          \
                uint ne = min(GEMV_STEP, K - k0);                                 \
                if (AT_CHUNK_START(k0)) SEEK(r, bands, row, k0);                  \
                READER_PREFETCH(r);                                               \
                READER_BLOCK(r, ne, GEMV_CONSUME);                                \
                if (GEMV_BLOCK_END(k0) || k0 + GEMV_STEP >= K) {                  \
                    for (int i = 0; i < ECF8_MM_IL; i++) {                        \
                        vf s = scale_of(scale, bands[i] * CR + row, k0 / ECF8_MM_SK, \
                                        SSTRIDE, N, SRS);                         \
                        for (int j = 0; j < MD; j++) {                            \
                            acc[i][j] = block_accumulate(acc[i][j], p[i][j], s);  \
                            p[i][j] = (vf)(0.0f);                                 \
                        }                                                         \
                    }                                                             \
                }                                                                 \
            }                                                                     \
            for (int i = 0; i < ECF8_MM_IL; i++)                                  \
                for (int j = 0; j < MD; j++)                                      \
                    store_lanes(y + j * N, bands[i] * CR + row, acc[i][j], live[i], N); \
        }                                                                         \
    }

DEFINE_GEMV(1)
DEFINE_GEMV(2)
DEFINE_GEMV(3)
DEFINE_GEMV(4)

/* ---- GEMM: any M; a decoded 128-column block is shared by all rows of X ------ */
#ifndef ECF8_MM_GI
#define ECF8_MM_GI (ECF8_MM_IL % 2 == 0 ? 2 : 1) /* lane groups per X load in the GEMM */
#endif
#define GEMM_CONSUME0(i, kk, value) (w[0][i][kk] = (value))
#define GEMM_CONSUME1(i, kk, value) (w[1][i][kk] = (value))
__kernel void ecf8_mm_gemm(MM_ARGS)
{
    vu bands[ECF8_MM_IL], live[ECF8_MM_IL];
    LANE_BANDS(bands, live);
    x += x_off;
    y += y_off;
    reader r[ECF8_MM_IL];
    vf w[2][ECF8_MM_IL][64];
    vf acc[ECF8_MM_IL][ECF8_MM_MMAX];
    for (uint m0 = 0; m0 < M; m0 += ECF8_MM_MMAX) {
        uint mn = min((uint)ECF8_MM_MMAX, M - m0);
        for (uint row = 0; row < CR; row++) {
            for (int i = 0; i < ECF8_MM_IL; i++)
                for (uint m = 0; m < mn; m++) acc[i][m] = (vf)(0.0f);
            for (uint k0 = 0; k0 < K; k0 += 128) {
                uint ne0 = min(64u, K - k0), ne1 = K - k0 > 64u ? min(64u, K - k0 - 64u) : 0u;
                if (AT_CHUNK_START(k0)) SEEK(r, bands, row, k0);
                READER_PREFETCH(r);
                READER_BLOCK(r, ne0, GEMM_CONSUME0);
                if (ne1) {
                    if (AT_CHUNK_START(k0 + 64)) SEEK(r, bands, row, k0 + 64);
                    READER_PREFETCH(r);
                    READER_BLOCK(r, ne1, GEMM_CONSUME1);
                }
                uint ne = ne0 + ne1;
                /* ECF8_MM_GI lane groups share each X value: ECF8_MM_GI * ECF8_MM_MB multiply-adds
                 * per ECF8_MM_GI + ECF8_MM_MB loads. */
                for (int i0 = 0; i0 < ECF8_MM_IL; i0 += ECF8_MM_GI) {
                    vf s[ECF8_MM_GI][SUBS];
                    for (int g = 0; g < ECF8_MM_GI; g++)
                        for (uint q = 0; q < SUBS; q++)
                            s[g][q] = scale_of(scale, bands[i0 + g] * CR + row,
                                               min(k0 / ECF8_MM_SK + q, SSTRIDE - 1u), SSTRIDE,
                                               N, SRS);
                    for (uint mb = 0; mb < mn; mb += ECF8_MM_MB) {
                        __global const xtype *xr[ECF8_MM_MB];
                        for (int j = 0; j < ECF8_MM_MB; j++)
                            xr[j] = x + (m0 + min(mb + (uint)j, mn - 1u)) * K + k0;
                        /* one pass per scale block of the 128 columns */
                        for (uint q = 0; q < SUBS; q++) {
                        uint ks = q * ECF8_MM_SK, ke = min(ks + ECF8_MM_SK, ne);
                        if (ks >= ne) break;
                        vf p[ECF8_MM_GI][ECF8_MM_MB];
                        for (int g = 0; g < ECF8_MM_GI; g++)
                            for (int j = 0; j < ECF8_MM_MB; j++) p[g][j] = (vf)(0.0f);
                        for (uint kk = ks; kk < ke; kk++) {
                            vf wv[ECF8_MM_GI];
#pragma unroll
                            for (int g = 0; g < ECF8_MM_GI; g++)
                                wv[g] = w[kk >> 6][i0 + g][kk & 63u];
#pragma unroll
                            for (int j = 0; j < ECF8_MM_MB; j++) {
                                vf xv = (vf)(X_LOAD(xr[j], kk));
#pragma unroll
                                for (int g = 0; g < ECF8_MM_GI; g++)
                                    p[g][j] = fma(xv, wv[g], p[g][j]);
                            }
                        }
                        for (int g = 0; g < ECF8_MM_GI; g++)
                            for (int j = 0; j < ECF8_MM_MB; j++)
                                if (mb + (uint)j < mn)
                                    acc[i0 + g][mb + j] =
                                        block_accumulate(acc[i0 + g][mb + j], p[g][j], s[g][q]);
                        }
                    }
                }
            }
            for (int i = 0; i < ECF8_MM_IL; i++)
                for (uint m = 0; m < mn; m++)
                    store_lanes(y + (m0 + m) * N, bands[i] * CR + row, acc[i][m], live[i], N);
        }
    }
}

#endif /* !ECF8_MM_STREAMS && !ECF8_MM_LORDER */

#if ECF8_MM_STREAMS
/* ---- stream layout 1 (lane streams, docs/FORMAT.md 4.4) on CPU devices -------
 * A chunk's 32 lane streams code its 32-bit words (SQ elements each, 4 FP8
 * or 2 BF16): lane l the words l, l + 32, ...  So one step of the 32 lanes,
 * taken in lane order, yields the next 32 x SQ elements of the chunk in
 * column order, and SSTEPS steps one 128-column k-block.  A work-item owns
 * SVW x ECF8_MM_IL bands (chunks side by side in the lanes of SVW-wide
 * vectors: 8 on 256-bit, 16 on 512-bit registers), all at the same row and
 * k-block, so every reduction chain of the contract is a vector chain over
 * SVW rows of W, the 32 lane decodes of a step are independent gather
 * chains that overlap each other and the FMA chain, and X is one
 * broadcast load per element.  Lane bit positions live in private memory
 * (32 per chunk); a lane word is one unaligned 64-bit gather shifted by
 * the position's low bits (>= 57 valid bits: SQ codes of <= 14 bits, a
 * second load where the code length is 15: ECF8_MM_SRELOAD), its raw bits
 * one unaligned 32-bit gather from the raw plane.  The host runs these
 * kernels only where every chunk row piece is a multiple of 128 columns
 * (K % 128 == 0, and CC % 128 == 0 for row segments), so chunks end on
 * whole steps; it pads the stream so that the lanes of clamped bands and
 * of rows past a partial last band (decoded, never stored) read inside the
 * buffer.
 *   ecf8_mm_sgemv<M>  M = 1..4: multiply-add each decoded element at once.
 *   ecf8_mm_sgemm     any M: a k-block decoded once into private memory,
 *                     then every row of X over it (M in chunks of
 *                     ECF8_MM_MMAX, re-decoding per chunk). */
#if defined(__AVX512F__)
#define SVW 16
typedef uint16 su;
typedef float16 sf;
typedef ulong16 sl;
#define AS_SU as_uint16
#define AS_SF as_float16
#define CVT_SF convert_float16
#define SVLOAD vload16
#define SVSTORE vstore16
#define S_LANES ((uint16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#define SG(T, f, i)                                                                \
    (T)(f((i).s0), f((i).s1), f((i).s2), f((i).s3), f((i).s4), f((i).s5), f((i).s6), \
        f((i).s7), f((i).s8), f((i).s9), f((i).sa), f((i).sb), f((i).sc), f((i).sd), \
        f((i).se), f((i).sf))
#define S_CVT_L convert_ulong16
#define S_CVT_U_L convert_uint16
#else
#define SVW 8
typedef uint8 su;
typedef float8 sf;
typedef ulong8 sl;
#define AS_SU as_uint8
#define AS_SF as_float8
#define CVT_SF convert_float8
#define SVLOAD vload8
#define SVSTORE vstore8
#define S_LANES ((uint8)(0, 1, 2, 3, 4, 5, 6, 7))
#define SG(T, f, i)                                                                \
    (T)(f((i).s0), f((i).s1), f((i).s2), f((i).s3), f((i).s4), f((i).s5), f((i).s6), \
        f((i).s7))
/* Component by component: convert_ulong8 / convert_uint8 of 512-bit vectors
 * are library calls that change the ABI without AVX-512 (PoCL warns). */
#define S_CVT_L(x)                                                                 \
    ((ulong8)((ulong)(x).s0, (ulong)(x).s1, (ulong)(x).s2, (ulong)(x).s3, (ulong)(x).s4, \
              (ulong)(x).s5, (ulong)(x).s6, (ulong)(x).s7))
#define S_CVT_U_L(x)                                                               \
    ((uint8)((uint)(x).s0, (uint)(x).s1, (uint)(x).s2, (uint)(x).s3, (uint)(x).s4, \
             (uint)(x).s5, (uint)(x).s6, (uint)(x).s7))
#endif
#define SIL ECF8_MM_IL
#define SQ (4u / ES)              /* elements per 32-bit word */
#define SSTEPS (4u / SQ)          /* steps of the 32 lanes per 128-column block */
#define SWR (SQ * ECF8_MM_RAW_BITS) /* raw bits per word: 0, 12 or 16 */
#ifndef ECF8_MM_SRELOAD
#define ECF8_MM_SRELOAD 0
#endif

DEFINE_FP8_VALUES(sv, su, sf, AS_SU, AS_SF, CVT_SF)

/* Value of a coded element from its table entry (the host table, as
 * coded_value) and raw bits. */
inline sf s_value(su e, su raw)
{
#if ECF8_MM_WDT == 3
    su low = raw & ((1u << ECF8_MM_SYM_SHIFT) - 1u), high = raw >> ECF8_MM_SYM_SHIFT;
    return AS_SF((e & ~15u) | ((high << (ECF8_MM_SYM_SHIFT + ECF8_MM_SYM_BITS) | low) << 16));
#elif ECF8_MM_RAW_BITS == 0
    (void)raw;
    return AS_SF(e & FP8_VALUE_BITS);
#else
    su low = raw & ((1u << ECF8_MM_SYM_SHIFT) - 1u), high = raw >> ECF8_MM_SYM_SHIFT;
    su b = high << (ECF8_MM_SYM_SHIFT + ECF8_MM_SYM_BITS) | (e >> 4) << ECF8_MM_SYM_SHIFT | low;
#if ECF8_MM_WDT == 1
    return e4m3_sv(b);
#else
    return e5m2_sv(b);
#endif
#endif
}

#define S_QW(a) (*(__global const ulong *)(coded + (a)))
#define S_U32(a) (*(__global const uint *)(coded + (a)))
#define S_TB(i) (table[i])
#define S_SC(i) (scale[i])

/* Positions set i of this work-item's bands at the start of their chunk of
 * segment seg: the lane tables parsed into the lane bit positions p, the
 * lane areas' byte offsets la and the raw planes' pb. */
inline void s_seek(su *p, su *la, su *pb, __global const uchar *coded,
                   __global const uint *offs, uint i, uint seg, uint SEGS, uint NB)
{
    uint st[32 * SVW], la_[SVW], pb_[SVW];
    for (uint c_ = 0; c_ < SVW; c_++) {
        uint b = min(((uint)get_global_id(0) * SIL + i) * SVW + c_, NB - 1u);
        uint off = offs[b * SEGS + seg];
        __global const uchar *t = coded + off;
        uint base = (uint)t[0] | (uint)t[1] << 8, tot = 0;
        bool esc = base == 0xFFFFu;
        for (uint l = 0; l < 32; l++) {
            st[l * SVW + c_] = tot;
            tot += esc ? (uint)t[2 + 2 * l] | (uint)t[3 + 2 * l] << 8 : base + t[2 + l];
        }
        uint lane = off + (esc ? 68u : 36u);
        la_[c_] = lane;
        pb_[c_] = lane + (tot + 31u) / 32u * 4u;
    }
    for (uint l = 0; l < 32; l++) p[l] = SVLOAD(l, st);
    *la = SVLOAD(0, la_);
    *pb = SVLOAD(0, pb_);
}

/* Decodes word w of the chunk from its lane (bit position *p) into v. */
inline void s_word(sf *v, su *p, su la, su pb, uint w, __global const uchar *coded,
                   __global const uint *table, uint tmask)
{
    su pos = *p;
    sl q = SG(sl, S_QW, la + (pos >> 3)) >> S_CVT_L(pos & 7u);
    su win = S_CVT_U_L(q);
#if SWR
    uint rb = w * SWR;
    su raw = (SG(su, S_U32, pb + (rb >> 3)) >> (rb & 7u)) & ((1u << SWR) - 1u);
#else
    su raw = 0;
    (void)pb, (void)w;
#endif
    su e0 = SG(su, S_TB, win & tmask), n0 = e0 & 15u;
    win >>= n0;
    su e1 = SG(su, S_TB, win & tmask), n1 = e1 & 15u;
    v[0] = s_value(e0, raw & ((1u << ECF8_MM_RAW_BITS) - 1u));
    v[1] = s_value(e1, (raw >> ECF8_MM_RAW_BITS) & ((1u << ECF8_MM_RAW_BITS) - 1u));
#if SQ == 4
    su t = n0 + n1;
#if ECF8_MM_SRELOAD
    su pos2 = pos + t;
    win = S_CVT_U_L(SG(sl, S_QW, la + (pos2 >> 3)) >> S_CVT_L(pos2 & 7u));
#else
    win = S_CVT_U_L(q >> S_CVT_L(t));
#endif
    su e2 = SG(su, S_TB, win & tmask), n2 = e2 & 15u;
    win >>= n2;
    su e3 = SG(su, S_TB, win & tmask), n3 = e3 & 15u;
    v[2] = s_value(e2, (raw >> (2 * ECF8_MM_RAW_BITS)) & ((1u << ECF8_MM_RAW_BITS) - 1u));
    v[3] = s_value(e3, (raw >> (3 * ECF8_MM_RAW_BITS)) & ((1u << ECF8_MM_RAW_BITS) - 1u));
    *p = pos + t + n2 + n3;
#else
    *p = pos + n0 + n1;
#endif
}

/* The scales of set i's rows (bands * CR + row) for scale block kb of a
 * grid of row stride `stride`. */
inline sf s_scale(__global const float *scale, uint i, uint row, uint kb, uint CR, uint stride,
                  uint N, uint NB, uint SRS)
{
#if ECF8_MM_WDT == 3
    (void)scale, (void)i, (void)row, (void)kb, (void)CR, (void)stride, (void)N, (void)NB,
        (void)SRS;
    return (sf)(1.0f);
#else
    su b = min((su)(((uint)get_global_id(0) * SIL + i) * SVW) + S_LANES, (su)(NB - 1u));
    su n = min(b * CR + row, (su)(N - 1u));
    return SG(sf, S_SC, (n >> (su)(SRS)) * stride + kb);
#endif
}

inline sf s_accumulate(sf acc, sf p, sf s)
{
#if ECF8_MM_WDT == 3
    (void)s;
    return acc + p;
#else
    return fma(p, s, acc);
#endif
}

/* Stores set i's results for row `row` of its bands (live bands, rows < N). */
inline void s_store(__global float *y, uint i, uint row, sf v, uint CR, uint N, uint NB)
{
    float o[SVW];
    SVSTORE(v, 0, o);
    uint b0 = ((uint)get_global_id(0) * SIL + i) * SVW;
    for (uint c_ = 0; c_ < SVW; c_++) {
        uint b = b0 + c_, n = b * CR + row;
        if (b < NB && n < N) y[n] = o[c_];
    }
}

/* Seeks every set where a chunk starts: row 0 of a band, or a segment. */
#define S_SEEK_IF_START(row, kb)                                                   \
    do {                                                                           \
        uint k0_ = (kb) * 128u;                                                    \
        if (SEGS > 1 ? k0_ % CC == 0 : ((row) == 0 && (kb) == 0)) {                \
            for (uint i_ = 0; i_ < SIL; i_++)                                      \
                s_seek(p[i_], &la[i_], &pb[i_], coded, offs, i_, SEGS > 1 ? k0_ / CC : 0u, \
                       SEGS, NB);                                                  \
            w0 = 0;                                                                \
        }                                                                          \
    } while (0)

/* The contract's scale step in the GEMV: once per 128-column block
 * (SK 128), or, for FP8 with SK 32, after each 8 lanes of a step (a step of
 * the 32 lanes is the block's 128 columns, 4 per lane). */
#if ECF8_MM_SK == 128
#define S_SUB_FLUSH(l, MD) ((void)0)
#define S_BLOCK_FLUSH(MD)                                                          \
    do {                                                                           \
        for (int i = 0; i < SIL; i++) {                                            \
            sf s = s_scale(scale, i, row, kb, CR, NKB, N, NB, SRS);                \
            for (int m = 0; m < MD; m++) acc[i][m] = s_accumulate(acc[i][m], pp[i][m], s); \
        }                                                                          \
    } while (0)
#else
#define S_LANES_PER_SUB (ECF8_MM_SK / SQ)
#define S_SUB_FLUSH(l, MD)                                                         \
    do {                                                                           \
        if ((l) % S_LANES_PER_SUB == S_LANES_PER_SUB - 1u) {                       \
            for (int i = 0; i < SIL; i++) {                                        \
                sf s = s_scale(scale, i, row, kb * SUBS + (l) / S_LANES_PER_SUB, CR, \
                               SSTRIDE, N, NB, SRS);                               \
                for (int m = 0; m < MD; m++) {                                     \
                    acc[i][m] = s_accumulate(acc[i][m], pp[i][m], s);              \
                    pp[i][m] = (sf)(0.0f);                                         \
                }                                                                  \
            }                                                                      \
        }                                                                          \
    } while (0)
#define S_BLOCK_FLUSH(MD) ((void)0)
#endif

#define DEFINE_SGEMV(MD)                                                           \
    __kernel void ecf8_mm_sgemv##MD(MM_ARGS)                                       \
    {                                                                              \
        (void)M, (void)RS;                                                         \
        x += x_off;                                                                \
        y += y_off;                                                                \
        su p[SIL][32], la[SIL], pb[SIL];                                           \
        uint w0 = 0; /* the chunk's word of lane 0 at this step */                 \
        for (uint row = 0; row < CR; row++) {                                      \
            sf acc[SIL][MD];                                                       \
            for (int i = 0; i < SIL; i++)                                          \
                for (int m = 0; m < MD; m++) acc[i][m] = (sf)(0.0f);               \
            for (uint kb = 0; kb < NKB; kb++) {                                    \
                S_SEEK_IF_START(row, kb);                                          \
                sf pp[SIL][MD];                                                    \
                for (int i = 0; i < SIL; i++)                                      \
                    for (int m = 0; m < MD; m++) pp[i][m] = (sf)(0.0f);            \
                for (uint h = 0; h < SSTEPS; h++, w0 += 32u) {                     \
                    __global const xtype *xk = x + kb * 128u + h * 32u * SQ;       \
                    _Pragma("unroll") for (uint l = 0; l < 32; l++)                \
                    {                                                              \
                        _Pragma("unroll") for (int i = 0; i < SIL; i++)            \
                        {                                                          \
                            sf v[4];                                               \
                            s_word(v, &p[i][l], la[i], pb[i], w0 + l, coded, table, tmask); \
                            _Pragma("unroll") for (uint j = 0; j < SQ; j++)        \
                            {                                                      \
                                _Pragma("unroll") for (int m = 0; m < MD; m++)     \
                                    pp[i][m] = fma((sf)(X_LOAD(xk, m * K + l * SQ + j)), \
                                                   v[j], pp[i][m]);                \
                            }                                                      \
                        }                                                          \
                        S_SUB_FLUSH(l, MD);                                        \
                    }                                                              \
                }                                                                  \
                S_BLOCK_FLUSH(MD);                                                 \
            }                                                                      \
            for (int i = 0; i < SIL; i++)                                          \
                for (int m = 0; m < MD; m++) s_store(y + m * N, i, row, acc[i][m], CR, N, NB); \
        }                                                                          \
    }

DEFINE_SGEMV(1)
DEFINE_SGEMV(2)
DEFINE_SGEMV(3)
DEFINE_SGEMV(4)

__kernel void ecf8_mm_sgemm(MM_ARGS)
{
    (void)RS;
    x += x_off;
    y += y_off;
    su p[SIL][32], la[SIL], pb[SIL];
    uint w0 = 0;
    sf wb[SIL][128];
    sf acc[SIL][ECF8_MM_MMAX];
    for (uint m0 = 0; m0 < M; m0 += ECF8_MM_MMAX) {
        uint mn = min((uint)ECF8_MM_MMAX, M - m0);
        for (uint row = 0; row < CR; row++) {
            for (int i = 0; i < SIL; i++)
                for (uint m = 0; m < mn; m++) acc[i][m] = (sf)(0.0f);
            for (uint kb = 0; kb < NKB; kb++) {
                S_SEEK_IF_START(row, kb);
                for (uint h = 0; h < SSTEPS; h++, w0 += 32u) {
#pragma unroll
                    for (uint l = 0; l < 32; l++) {
#pragma unroll
                        for (int i = 0; i < SIL; i++) {
                            sf v[4];
                            s_word(v, &p[i][l], la[i], pb[i], w0 + l, coded, table, tmask);
#pragma unroll
                            for (uint j = 0; j < SQ; j++) wb[i][(h * 32u + l) * SQ + j] = v[j];
                        }
                    }
                }
                for (int i = 0; i < SIL; i++) {
                    sf s[SUBS];
                    for (uint q = 0; q < SUBS; q++)
                        s[q] = s_scale(scale, i, row, kb * SUBS + q, CR, SSTRIDE, N, NB, SRS);
                    for (uint mb = 0; mb < mn; mb += ECF8_MM_MB) {
                        __global const xtype *xr[ECF8_MM_MB];
                        for (int j = 0; j < ECF8_MM_MB; j++)
                            xr[j] = x + (m0 + min(mb + (uint)j, mn - 1u)) * K + kb * 128u;
                        for (uint q = 0; q < SUBS; q++) { /* per scale block */
                            sf pq[ECF8_MM_MB];
                            for (int j = 0; j < ECF8_MM_MB; j++) pq[j] = (sf)(0.0f);
                            for (uint kk = q * ECF8_MM_SK; kk < (q + 1u) * ECF8_MM_SK; kk++) {
                                sf wv = wb[i][kk];
#pragma unroll
                                for (int j = 0; j < ECF8_MM_MB; j++)
                                    pq[j] = fma((sf)(X_LOAD(xr[j], kk)), wv, pq[j]);
                            }
                            for (int j = 0; j < ECF8_MM_MB; j++)
                                if (mb + (uint)j < mn)
                                    acc[i][mb + j] = s_accumulate(acc[i][mb + j], pq[j], s[q]);
                        }
                    }
                }
            }
            for (int i = 0; i < SIL; i++)
                for (uint m = 0; m < mn; m++) s_store(y + (m0 + m) * N, i, row, acc[i][m], CR, N, NB);
        }
    }
}
#endif

#if ECF8_MM_LORDER
/* ---- the lane order (GPUs; docs in include/ecf8_cl.h) ------------------------
 * A second reduction-order contract, shaped like a lane-streams chunk on a
 * GPU: with K a multiple of 128, lane l (0..31) of row n owns the 32-bit
 * words l, l + 32, ... of the row (LQ = 4 FP8 or 2 BF16 elements each:
 * columns c = LSTEP * j + LQ * l .. + LQ - 1), exactly the words lane l of
 * a row-aligned layout-1 chunk codes.  Per row and lane, words ascending:
 *     p = 0;  p = fma(x[c + t], w[c + t], p) for t = 0 .. LQ - 1
 *     a[l] = fma(p, scale[n >> SRS, c / SK], a[l])        (BF16: a[l] + p)
 * then y = a fixed tree over the 32 lanes: a[l] += a[l + h] for h = 16, 8,
 * 4, 2, 1 (l < h), y = a[0].  The fused kernel (FUSED=1: work-item = one
 * lane of one chunk, decoding its lane stream, no barrier in the decode
 * loop) and the uncompressed one (FUSED=0: the same work-item reads its
 * words of the raw row, 32 lanes = 128 contiguous bytes per load) share it,
 * so their Y is bit-identical; it differs from the serial contract above.
 * A work-group is ECF8_MM_LG bands x 32 lanes; x is read as one float4
 * (two floats for BF16) per word, coalesced across the lanes; the scale
 * is one FMA per word, i.e. per 128 columns for FP8.  The lane sums meet
 * in local memory once per row (two barriers per row, outside the decode
 * loop).  Bands past the last decode the last band again and store
 * nothing; rows past N in a partial last band decode the stream's zero
 * padding (the host pads as for the streams kernels) and are not stored.
 *   ecf8_mm_lgemv  M = 1.
 *   ecf8_mm_lgemm  any M, LMT rows of X per pass (the chunk decoded again
 *                  per pass). */
#ifndef ECF8_MM_LG
#define ECF8_MM_LG 4
#endif
#define LMT 4                    /* rows of X per pass of ecf8_mm_lgemm */
#define LQ (4u / ES)             /* elements per 32-bit word */
#define LSTEP (32u * LQ)         /* columns per step of the 32 lanes */

#if ECF8_MM_FUSED
#define LWR (LQ * ECF8_MM_RAW_BITS) /* raw bits per word: 0, 12 or 16 */
#ifndef ECF8_MM_LSPW
#define ECF8_MM_LSPW 1 /* codes one 32-bit window serves: 32 / code bits, at most LQ */
#endif
/* 32 stream bits from bit pos of the 4-byte aligned words at w. */
inline uint lane_window(__global const uint *w, uint pos)
{
    uint i = pos >> 5, s = pos & 31u;
    return (w[i] >> s) | ((w[i + 1] << 1) << (31u - s));
}

/* A lane's reader: its stream (words and bit position), the chunk's raw
 * plane and the chunk word it decodes next. */
typedef struct lane_reader {
    __global const uint *lw, *pw;
    uint pos, word;
} lane_reader;

/* Lane l at the start of chunk c (the lane table of docs/FORMAT.md 4.4,
 * which create validated: offsets are multiples of 4). */
inline void lane_seek(lane_reader *r, __global const uchar *coded, __global const uint *offs,
                      uint c, uint l)
{
    __global const uchar *t = coded + offs[c];
    uint base = (uint)t[0] | (uint)t[1] << 8, start = 0, total = 0;
    bool esc = base == 0xFFFFu;
    for (uint k = 0; k < 32u; k++) {
        start = k == l ? total : start;
        total += esc ? (uint)t[2 + 2 * k] | (uint)t[3 + 2 * k] << 8 : base + t[2 + k];
    }
    r->lw = (__global const uint *)(t + (esc ? 68 : 36));
    r->pw = r->lw + (total + 31u) / 32u;
    r->pos = start;
    r->word = l;
}

/* The LQ table entries of the lane's next word into e; returns the word's
 * raw bits. */
inline uint lane_codes(lane_reader *r, uint *e, __global const uint *table, uint tmask)
{
#if LWR
    uint raw = lane_window(r->pw, r->word * LWR);
#else
    uint raw = 0;
#endif
    uint win = lane_window(r->lw, r->pos), taken = 0;
#pragma unroll
    for (uint t = 0; t < LQ; t++) {
        if (t > 0 && t % ECF8_MM_LSPW == 0) win = lane_window(r->lw, r->pos + taken);
        e[t] = table[win & tmask];
        uint len = e[t] & 15u;
        win >>= len;
        taken += len;
    }
    r->pos += taken;
    r->word += 32u;
    return raw;
}

#define LANE_RAW(raw, t) (((raw) >> ((t) * ECF8_MM_RAW_BITS)) & RMASK)

/* The LQ values of the lane's next word. */
inline void lane_word(lane_reader *r, float *v, __global const uint *table, uint tmask)
{
    uint e[LQ], raw = lane_codes(r, e, table, tmask);
#pragma unroll
    for (uint t = 0; t < LQ; t++) v[t] = coded_value(e[t], LANE_RAW(raw, t));
}

#define LANE_SEEK(c) lane_seek(&lr, coded, offs, (c), l)
#define LANE_WORD(v, n, wr) lane_word(&lr, v, table, tmask)
#else
typedef int lane_reader; /* raw rows need no state */
#define LANE_SEEK(c) ((void)0)
/* Word wr of row n (clamped to the last row) of the raw weights; rows
 * start on 4-byte boundaries (K * ES is a multiple of 128). */
#define LANE_WORD(v, n, wr)                                                       \
    do {                                                                          \
        uint u_ = ((__global const uint *)(coded + (size_t)min(n, N - 1u) * RS * ES))[wr]; \
        _Pragma("unroll") for (uint t_ = 0; t_ < LQ; t_++)                        \
            (v)[t_] = element_value((u_ >> (8u * ES * t_)) & RAW_MASK);           \
    } while (0)
#endif

/* The contract's tree over a row's 32 lane sums. */
inline float lane_tree(__local const float *a)
{
    /* a[l] + a[l + 16] for l = 0..7 and 8..15 (vectors of 8: a 16-wide one
     * changes the ABI on AVX2 hosts, and PoCL warns), then l + 8, ... */
    float8 u = (vload8(0, a) + vload8(2, a)) + (vload8(1, a) + vload8(3, a));
    float4 v = u.lo + u.hi;
    float2 w = v.lo + v.hi;
    return w.lo + w.hi;
}

/* The LQ elements of x from column c, one vector load. */
#if LQ == 4
#if ECF8_MM_XBF16
#define LANE_X(p, c) as_float4(convert_uint4(vload4(0, (p) + (c))) << 16)
#else
#define LANE_X(p, c) vload4(0, (p) + (c))
#endif
#define LANE_DOT(xv, w) fma((xv).s3, (w)[3], fma((xv).s2, (w)[2], fma((xv).s1, (w)[1], fma((xv).s0, (w)[0], 0.0f))))
#else
#if ECF8_MM_XBF16
#define LANE_X(p, c) as_float2(convert_uint2(vload2(0, (p) + (c))) << 16)
#else
#define LANE_X(p, c) vload2(0, (p) + (c))
#endif
#define LANE_DOT(xv, w) fma((xv).s1, (w)[1], fma((xv).s0, (w)[0], 0.0f))
#endif

#define DEFINE_LANE_KERNEL(NAME, MT)                                              \
    __kernel __attribute__((reqd_work_group_size(32, ECF8_MM_LG, 1))) void NAME(MM_ARGS) \
    {                                                                             \
        const uint l = (uint)get_local_id(0), g = (uint)get_local_id(1);          \
        const uint band = min((uint)get_global_id(1), NB - 1u);                   \
        const bool live = get_global_id(1) < NB;                                  \
        __local float sums[ECF8_MM_LG][MT][32];                                   \
        x += x_off;                                                               \
        y += y_off;                                                               \
        lane_reader lr;                                                           \
        (void)lr;                                                                 \
        for (uint m0 = 0; m0 < M; m0 += MT) {                                     \
            const uint mn = min((uint)MT, M - m0);                                \
            for (uint row = 0; row < CR; row++) {                                 \
                const uint n = band * CR + row;                                   \
                float a[MT];                                                      \
                for (uint m = 0; m < MT; m++) a[m] = 0.0f;                        \
                for (uint seg = 0; seg < SEGS; seg++) {                           \
                    if (SEGS > 1 || row == 0) LANE_SEEK(band * SEGS + seg);       \
                    const uint k_end = SEGS > 1 ? min(K, (seg + 1u) * CC) : K;    \
                    for (uint k0 = seg * CC; k0 < k_end; k0 += LSTEP) {           \
                        const uint c = k0 + l * LQ;                               \
                        float w[LQ];                                              \
                        LANE_WORD(w, n, c / LQ);                                  \
                        vf s = scale_of(scale, n, c / ECF8_MM_SK, SSTRIDE, N, SRS); \
                        _Pragma("unroll") for (uint m = 0; m < MT; m++)           \
                        {                                                         \
                            if (m < mn) {                                         \
                                float p = LANE_DOT(LANE_X(x + (m0 + m) * K, c), w); \
                                a[m] = block_accumulate(a[m], p, s);              \
                            }                                                     \
                        }                                                         \
                    }                                                             \
                }                                                                 \
                for (uint m = 0; m < MT; m++) sums[g][m][l] = a[m];               \
                barrier(CLK_LOCAL_MEM_FENCE);                                     \
                if (l < mn && live && n < N) y[(m0 + l) * N + n] = lane_tree(sums[g][l]); \
                barrier(CLK_LOCAL_MEM_FENCE);                                     \
            }                                                                     \
        }                                                                         \
    }

DEFINE_LANE_KERNEL(ecf8_mm_lgemv, 1)
DEFINE_LANE_KERNEL(ecf8_mm_lgemm, LMT)

#if ECF8_MM_FUSED
/* The lane order's other path, decode to a buffer then the raw twin:
 * W's raw elements into out, rows of K contiguous (as the raw twin reads
 * them with RS = K), the 32 lanes of a band storing 128 contiguous bytes
 * per step.  Global size (32, bands rounded up to ECF8_MM_LG), no
 * barriers. */
__kernel __attribute__((reqd_work_group_size(32, ECF8_MM_LG, 1))) void
ecf8_mm_ldecode(READER_ARGS, __global uint *out, uint N, uint K, uint CR, uint CC, uint SEGS,
                uint NB)
{
    const uint l = (uint)get_local_id(0);
    if (get_global_id(1) >= NB) return;
    const uint band = (uint)get_global_id(1);
    lane_reader lr;
    for (uint row = 0; row < CR && band * CR + row < N; row++) {
        __global uint *o = out + (size_t)(band * CR + row) * (K / LQ);
        for (uint seg = 0; seg < SEGS; seg++) {
            if (SEGS > 1 || row == 0) LANE_SEEK(band * SEGS + seg);
            const uint k_end = SEGS > 1 ? min(K, (seg + 1u) * CC) : K;
            for (uint k0 = seg * CC; k0 < k_end; k0 += LSTEP) {
                uint e[LQ], raw = lane_codes(&lr, e, table, tmask), word = 0;
#pragma unroll
                for (uint t = 0; t < LQ; t++)
                    word |= coded_element(e[t], LANE_RAW(raw, t)) << (8u * ES * t);
                o[k0 / LQ + l] = word;
            }
        }
    }
}
#endif
#endif /* ECF8_MM_LORDER */

#if !ECF8_MM_FUSED
/* The dequantising work-item's vectors: 16 columns as one vector where the
 * device has 512-bit registers or is not an x86 CPU, as two of 8 on x86
 * without AVX-512 (a 16-lane vector there is emulated, and PoCL's compiler
 * warns on stderr that it changes the ABI). */
#if defined(__x86_64__) && !defined(__AVX512F__)
#define DQ_VW 8
DEFINE_FP8_VALUES(dq, uint8, float8, as_uint8, as_float8, convert_float8)
#define DQ_LOAD_U(p) convert_uint8(vload8(0, p))
#define DQ_AS_F as_float8
#define DQ_STORE(v, p) vstore8(v, 0, p)
typedef float8 dq_float;
#else
#define DQ_VW 16
DEFINE_FP8_VALUES(dq, uint16, float16, as_uint16, as_float16, convert_float16)
#define DQ_LOAD_U(p) convert_uint16(vload16(0, p))
#define DQ_AS_F as_float16
#define DQ_STORE(v, p) vstore16(v, 0, p)
typedef float16 dq_float;
#endif

/* Raw weights [N, K] -> fp32 w * scale (rounded once), row-major, for a
 * stock SGEMM.  2-D range (ceil(K / 16), N): 16 columns per work-item, which
 * never straddle a scale block (of 128 or 32 columns).  NKB here is the
 * scale grid's row stride, SRS its row shift. */
__kernel void ecf8_mm_dequant(__global const uchar *raw, __global const float *scale,
                              __global float *out, ulong out_off, uint N, uint K, uint NKB,
                              uint SRS)
{
    uint k0 = (uint)get_global_id(0) * 16u, n = (uint)get_global_id(1);
    if (k0 >= K || n >= N) return;
    size_t i = (size_t)n * K + k0;
    out += out_off;
#if ECF8_MM_WDT == 3
    (void)scale, (void)NKB, (void)SRS; /* BF16 weights carry no scales */
#else
    float s = scale[(n >> SRS) * NKB + k0 / ECF8_MM_SK];
#endif
    if (k0 + 16u <= K) {
        for (uint h = 0; h < 16u; h += DQ_VW) {
#if ECF8_MM_WDT == 3
            dq_float v = DQ_AS_F(DQ_LOAD_U((__global const ushort *)raw + i + h) << 16);
#elif ECF8_MM_WDT == 1
            dq_float v = e4m3_dq(DQ_LOAD_U(raw + i + h)) * s;
#else
            dq_float v = e5m2_dq(DQ_LOAD_U(raw + i + h)) * s;
#endif
            DQ_STORE(v, out + i + h);
        }
        return;
    }
    for (uint k = k0; k < K; k++, i++) {
#if ECF8_MM_WDT == 3
        out[i] = as_float((uint)((__global const ushort *)raw)[i] << 16);
#elif ECF8_MM_WDT == 1
        out[i] = e4m3_one(raw[i]) * s;
#else
        out[i] = e5m2_one(raw[i]) * s;
#endif
    }
}
#endif

/* ECF8_MM_LANES and ECF8_MM_IL, read by the host through CL_KERNEL_COMPILE_WORK_GROUP_SIZE. */
#if ECF8_MM_STREAMS
#define PROBE_LANES SVW
#elif ECF8_MM_LORDER
#define PROBE_LANES 1 /* the host sizes lane-order launches itself */
#else
#define PROBE_LANES ECF8_MM_LANES
#endif
__kernel __attribute__((reqd_work_group_size(PROBE_LANES, ECF8_MM_IL, 1))) void
ecf8_mm_probe(__global uint *unused)
{
    (void)unused;
}
