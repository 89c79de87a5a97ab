/* decode.cl - chunk-parallel decode of an ecf8 coded tensor (OpenCL C 1.2).
 *
 * The stream of a chunk is a sequence of elements, each its symbol's code
 * word (LSB first) followed by RAW_BITS raw bits; chunk c starts at byte
 * offsets[c] of the coded stream and decodes to a fixed number of elements
 * at a fixed place in the output, both given by the tensor geometry, so no
 * scan is needed.  A chunk whose decode does not consume exactly its stored
 * bytes is reported in error[0..3]: its index + 1, the bits it decoded to
 * (low, high word) and its stored length (first failing chunk wins).  Every stream
 * read is clamped into the stream and every store stays inside the chunk's
 * own output range, whatever the data.
 *
 * Four kernels share the geometry code:
 *   ecf8_decode        portable: one chunk per work-item, the decode table
 *                      in local memory, 16-byte stores.  Any device.
 *   ecf8_decode_coop   for GPUs: a work-group per chunk, its segments
 *                      decoded side by side (self-synchronising parse).
 *   ecf8_decode_lanes  for CPU devices: VW x NSETS chunks per work-item in
 *                      the lanes of uint vectors, so that the stream and
 *                      table reads become vector gathers (one work-item is
 *                      one thread on a CPU, and a single Huffman chain is
 *                      latency-bound); the host picks VW, NSETS and the
 *                      stream reader per tensor.  Needs 4-byte aligned
 *                      chunk outputs and unaligned 32/64-bit loads (true of
 *                      CPUs).
 *   ecf8_decode_pairs  for CPU devices, FP8 whose elements fit 13 bits: a
 *                      few chunks per work-item in scalar code, one or two
 *                      elements per lookup of a pair table (faster than the
 *                      lanes kernel where a tensor has too few chunks to
 *                      fill its vectors).
 *
 * Built with -D options per tensor kind; every one has a default so the
 * file compiles on its own.  ECF8_CODE_BITS is the longest code of a class
 * of tensors that share the unrolling (elements per window), so a handful
 * of programs serve every code length. */
#ifndef ECF8_WIDTH
#define ECF8_WIDTH 1          /* bytes per element: 1 (FP8) or 2 (BF16/F16) */
#endif
#ifndef ECF8_CODE_BITS
#define ECF8_CODE_BITS 12     /* longest code this build handles (the table
                                 mask of the tensor is a kernel argument) */
#endif
#ifndef ECF8_RAW_BITS
#define ECF8_RAW_BITS 0       /* raw bits after each code word */
#endif
#ifndef ECF8_SYMBOL_SHIFT
#define ECF8_SYMBOL_SHIFT 0   /* where the symbol sits in the element */
#endif
#ifndef ECF8_SYMBOL_BITS
#define ECF8_SYMBOL_BITS 8
#endif
#ifndef ECF8_VW
#define ECF8_VW 8             /* lanes kernel: vector width (8 or 16; 0 leaves
                                 the kernel out: devices without vector
                                 registers that wide, GPUs) */
#endif
#ifndef ECF8_NSETS
#define ECF8_NSETS 3          /* lanes kernel: independent vectors per item */
#endif
#ifndef ECF8_READER
#define ECF8_READER 0         /* lanes kernel: 0 word queue, 1 qword loads */
#endif

#define TABLE_SIZE (1 << ECF8_CODE_BITS)
#define TMASK_MAX (TABLE_SIZE - 1)
/* (1 << the tensor's code_bits) - 1; the constant bound lets the compiler
 * see that table indices are small (32-bit gather indices on CPUs). */
#define TMASK (table_mask & TMASK_MAX)
#define RMASK ((1u << ECF8_RAW_BITS) - 1)
#define LOW_MASK ((1u << ECF8_SYMBOL_SHIFT) - 1)
#define ELEM_BITS (ECF8_CODE_BITS + ECF8_RAW_BITS)
#define ELEM_BITS_NZ (ELEM_BITS ? ELEM_BITS : 1)

/* Element value from its symbol and raw bits (docs/FORMAT.md 4.1). */
inline uint join(uint sym, uint raw)
{
    return ((raw >> ECF8_SYMBOL_SHIFT) << (ECF8_SYMBOL_SHIFT + ECF8_SYMBOL_BITS)) |
           (sym << ECF8_SYMBOL_SHIFT) | (raw & LOW_MASK);
}

/* First element and element count of chunk c (ecf8_chunk_start/count). */
inline ulong chunk_geometry(ulong c, ulong rows, ulong cols, ulong chunk_rows,
                            ulong chunk_cols, uint *count)
{
    ulong segs = (cols + chunk_cols - 1) / chunk_cols;
    ulong row0 = c / segs * chunk_rows, col0 = c % segs * chunk_cols;
    ulong nr = min(chunk_rows, rows - row0), nc = min(chunk_cols, cols - col0);
    *count = (uint)(nr * nc);
    return row0 * cols + col0;
}

inline void report_chunk(__global uint *error, ulong c, ulong bits, ulong bytes)
{
    if (atomic_cmpxchg(error, 0u, (uint)c + 1) == 0) {
        error[1] = (uint)bits;
        error[2] = (uint)(bits >> 32);
        error[3] = (uint)bytes;
    }
}

inline void store_element(__global uchar *dst, uint i, uint x)
{
#if ECF8_WIDTH == 1
    dst[i] = (uchar)x;
#else
    dst[2 * i] = (uchar)x;
    dst[2 * i + 1] = (uchar)(x >> 8);
#endif
}

/* ---- portable kernel ---------------------------------------------------- */
/* Elements per refill of a 64-bit window holding at least 33 valid bits. */
#define PER_WINDOW (33 / ELEM_BITS_NZ)
#define V (16 / ECF8_WIDTH) /* elements per 16-byte store */

/* The stream as aligned 32-bit words, clamped to the last one. */
#define STREAM_WORD(i) words[min((ulong)(i), last_word)]

/* The argument list of every decode kernel, in the order set_args
 * (src/opencl/decode.c) sets it, so that the host drives them all alike:
 * the tensor's device buffer (payload, offsets, tables), the output, the
 * error record; byte offsets into data, the output offset, the chunk
 * geometry; the code mask (kernels that do not need it ignore it). */
#define DECODE_KERNEL_ARGS                                                          \
    __global const uchar *data, __global uchar *out, __global uint *error,          \
        ulong offsets_at, ulong coded_at, ulong coded_bytes, ulong table_at,        \
        ulong out_offset, ulong n_chunks, ulong rows, ulong cols, ulong chunk_rows, \
        ulong chunk_cols, uint table_mask

__kernel void ecf8_decode(DECODE_KERNEL_ARGS)
{
    __local ushort table[TABLE_SIZE];
    table_mask &= TMASK_MAX;
    __global const ushort *gtable = (__global const ushort *)(data + table_at);
    for (uint i = get_local_id(0); i <= table_mask; i += get_local_size(0)) table[i] = gtable[i];
    barrier(CLK_LOCAL_MEM_FENCE);

    ulong c = get_global_id(0);
    if (c >= n_chunks) return;
    __global const ulong *offsets = (__global const ulong *)(data + offsets_at);
    __global const uint *words = (__global const uint *)(data + coded_at);
    ulong last_word = coded_bytes / 4 - 1;
    uint count;
    ulong start = chunk_geometry(c, rows, cols, chunk_rows, chunk_cols, &count);
    __global uchar *dst = out + out_offset + start * ECF8_WIDTH;
    ulong begin = offsets[c] * 8, pos = begin;
    bool aligned = ((ulong)dst & 15) == 0;

    uint i = 0;
    for (; i + V <= count; i += V) {
#if ECF8_WIDTH == 1
        uchar v[V];
#else
        ushort v[V];
#endif
        ulong win = 0;
#pragma unroll
        for (uint j = 0; j < V; j++) {
            if (j % PER_WINDOW == 0) {
                ulong w = pos >> 5;
                win = (((ulong)STREAM_WORD(w + 1) << 32) | STREAM_WORD(w)) >> (pos & 31);
            }
            uint e = table[win & TMASK], len = e & 15;
            uint raw = (uint)(win >> len) & RMASK;
            win >>= len + ECF8_RAW_BITS;
            pos += len + ECF8_RAW_BITS;
            v[j] = join(e >> 4, raw);
        }
#if ECF8_WIDTH == 1
        uchar16 x = vload16(0, v);
#else
        uchar16 x = as_uchar16(vload8(0, v));
#endif
        if (aligned)
            *(__global uint4 *)(dst + i * ECF8_WIDTH) = as_uint4(x);
        else
            vstore16(x, 0, dst + i * ECF8_WIDTH);
    }
    for (; i < count; i++) {
        ulong w = pos >> 5;
        ulong win = (((ulong)STREAM_WORD(w + 1) << 32) | STREAM_WORD(w)) >> (pos & 31);
        uint e = table[win & TMASK], len = e & 15;
        uint raw = (uint)(win >> len) & RMASK;
        pos += len + ECF8_RAW_BITS;
        store_element(dst, i, join(e >> 4, raw));
    }
    if ((pos - begin + 7) / 8 != offsets[c + 1] - offsets[c])
        report_chunk(error, c, pos - begin, offsets[c + 1] - offsets[c]);
}

/* ---- cooperative kernel (GPUs) -------------------------------------------
 * One work-group per chunk at a time (the groups loop over the chunks, so
 * each loads the decode table once): the chunk's bits are cut into
 * ECF8_COOP_WG segments of equal length, one per work-item, so a chunk
 * decodes that many elements at once instead of one (a GPU needs far more
 * threads than a tensor has chunks).  An element belongs to the segment its
 * code word starts in.  A segment does not know where its first element
 * starts, so it first decodes from its first bit: a Huffman parse started
 * anywhere falls into step with the true one within a few code words, so
 * the end it finds is almost always right.  Then rounds: every segment
 * whose start differs from its left neighbour's end decodes again from
 * there, until no start changes (after round r the first r + 2 segments
 * are exact, so it ends within ECF8_COOP_WG rounds; usually one changes
 * them all, a second confirms).  A scan of the element counts places each
 * segment in the output and a last pass writes the elements.  The parse is
 * the sequential one, so the length check is the other kernels'.  No
 * segment decodes more than the chunk's element count, so every loop ends
 * whatever the data. */
#ifndef ECF8_COOP_WG
#define ECF8_COOP_WG 64
#endif

/* Decodes from bit pos while pos < lim, at most cap elements, storing
 * them at dst[0..] when dst is not NULL; returns the end, *n = elements. */
inline ulong coop_segment(__local const ushort *table, __global const uint *words,
                          ulong last_word, uint table_mask, ulong pos, ulong lim, uint cap,
                          __global uchar *dst, uint *n)
{
    ulong win = 0;
    uint avail = 0, k = 0;
    for (; pos < lim && k < cap; k++) {
        if (avail < ELEM_BITS_NZ) {
            ulong w = pos >> 5;
            win = (((ulong)STREAM_WORD(w + 1) << 32) | STREAM_WORD(w)) >> (pos & 31);
            avail = 64 - (uint)(pos & 31);
        }
        uint e = table[win & table_mask], len = e & 15;
        if (dst) store_element(dst, k, join(e >> 4, (uint)(win >> len) & RMASK));
        win >>= len + ECF8_RAW_BITS;
        avail -= len + ECF8_RAW_BITS;
        pos += len + ECF8_RAW_BITS;
    }
    *n = k;
    return pos;
}

__kernel __attribute__((reqd_work_group_size(ECF8_COOP_WG, 1, 1))) void
ecf8_decode_coop(DECODE_KERNEL_ARGS)
{
    __local ushort table[TABLE_SIZE];
    __local ulong seg_start[ECF8_COOP_WG], seg_end[ECF8_COOP_WG];
    __local uint seg_count[ECF8_COOP_WG], seg_out[ECF8_COOP_WG + 1];
    __local uint changed[3]; /* per round, three apart: reset, set, read never overlap */
    table_mask &= TMASK_MAX;
    __global const ushort *gtable = (__global const ushort *)(data + table_at);
    const uint t = get_local_id(0);
    for (uint i = t; i <= table_mask; i += ECF8_COOP_WG) table[i] = gtable[i];
    __global const ulong *offsets = (__global const ulong *)(data + offsets_at);
    __global const uint *words = (__global const uint *)(data + coded_at);
    const ulong last_word = coded_bytes / 4 - 1;
    barrier(CLK_LOCAL_MEM_FENCE);

    for (ulong c = get_group_id(0); c < n_chunks; c += get_num_groups(0)) {
        uint count, n;
        ulong start = chunk_geometry(c, rows, cols, chunk_rows, chunk_cols, &count);
        ulong begin = offsets[c] * 8, bytes = offsets[c + 1] - offsets[c], bits = bytes * 8;
        ulong seg = (bits + ECF8_COOP_WG - 1) / ECF8_COOP_WG;
        ulong lo = begin + min(t * seg, bits), hi = begin + min((t + 1) * seg, bits);
        seg_start[t] = lo;
        seg_end[t] = coop_segment(table, words, last_word, table_mask, lo, hi, count, 0, &n);
        seg_count[t] = n;
        if (t == 0) changed[0] = 0;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint r = 0; r < ECF8_COOP_WG; r++) {
            if (t == 0) changed[(r + 1) % 3] = 0;
            ulong from = t ? seg_end[t - 1] : begin;
            barrier(CLK_LOCAL_MEM_FENCE); /* every read of seg_end before any write */
            if (from != seg_start[t]) {
                seg_start[t] = from;
                seg_end[t] = coop_segment(table, words, last_word, table_mask, from, hi, count, 0, &n);
                seg_count[t] = n;
                changed[r % 3] = 1;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            if (!changed[r % 3]) break;
        }
        if (t == 0) {
            uint sum = 0;
            for (uint i = 0; i < ECF8_COOP_WG; i++) {
                seg_out[i] = sum;
                sum += min(seg_count[i], count - min(sum, count));
            }
            seg_out[ECF8_COOP_WG] = sum;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        uint o = seg_out[t], m = seg_out[t + 1] - o;
        if (m) {
            __global uchar *dst = out + out_offset + (start + o) * ECF8_WIDTH;
            ulong end = coop_segment(table, words, last_word, table_mask, seg_start[t], hi, m, dst, &n);
            /* The segment holding the last element checks the length. */
            if (o + m == count && (end - begin + 7) / 8 != bytes)
                report_chunk(error, c, end - begin, bytes);
        }
        if (t == 0 && seg_out[ECF8_COOP_WG] < count) {
            /* The stream ends before the chunk's last element: the bits
             * reported are those of all its elements, decoded on past the
             * end as the CPU decoder does (not where the stream ran out). */
            ulong end = coop_segment(table, words, last_word, table_mask, seg_end[ECF8_COOP_WG - 1],
                                     ~(ulong)0, count - seg_out[ECF8_COOP_WG], 0, &n);
            report_chunk(error, c, end - begin, bytes);
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* the arrays are reused by the next chunk */
    }
}

/* ---- lanes kernel (CPU devices) ----------------------------------------- */
#if ECF8_VW != 0
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

#endif /* ECF8_VW != 0 */

/* ---- pairs kernel (CPU devices, FP8) ------------------------------------
 * The native decoder's pair lookup (src/stream_codec.c, decode_pairs) in
 * scalar code: an FP8 element (code word + raw bits) is at most 13 bits,
 * so one lookup of the next 13 stream bits in a 2^13-entry table decodes
 * one element, or two when both fit (most lookups: trained weights code
 * to about 6.5 bits per element).  Entry (ecf8_pair_table_build's, its
 * fields moved by the host so that the shift of the stream buffer, on the
 * chain of lookups, needs no extraction): the bits consumed in bits 0-5,
 * the output bytes in 8-23 (the second meaningful only for two elements),
 * the length of the first element alone in 24-27, the element count - 1
 * in bit 31.
 *
 * One lookup chain is latency-bound (load, shift, load...), so a
 * work-item (one thread on a CPU) decodes ECF8_NL chunks side by side.  A
 * lane keeps its stream pointer q and a 64-bit buffer b loaded from there
 * with a marker bit on top (bit 63 of the load, shifted down by the bit
 * offset into that byte): at least 56 bits of data below the marker.
 * Decoding only shifts b right, so the marker counts what was consumed: a
 * refill moves q by clz(b) / 8 bytes (7 at most) and skips clz(b) % 8
 * bits.  Four lookups (at most 52 bits) per refill never reach the marker.
 *
 * Work-item g decodes group g of the ceil(n_chunks / ECF8_NL) groups of
 * nearly equal size; a group's spare lanes decode a copy of its last chunk
 * and store the same bytes to the same place (cheaper than a test per
 * store).  Rounds of four lookups per lane, the lanes side by side, run
 * while every lane has 8 output bytes left and no refill of the rounds can
 * pass the last 8-byte load of the stream (so they load unclamped); then
 * each lane finishes alone with clamped loads.  Each lookup stores two
 * bytes at the lane's output position and moves it by the element count
 * (the second byte of a single element is overwritten by the next lookup),
 * so a round writes at most 8 bytes; the count is taken from one bit, so a
 * lane moves by 1 or 2 whatever the entry, and every store stays inside
 * its chunk.  Unaligned 64-bit loads and 16-bit stores: CPU devices only. */
#if ECF8_WIDTH == 1 /* FP8 only: other programs are spared its build */
#ifndef ECF8_NL
#define ECF8_NL 4             /* pairs kernel: chunks per work-item */
#endif
#define PAIR_MASK ((1u << 13) - 1)
#define MARKER ((ulong)1 << 63)

/* Keeps x a scalar in a register: without it PoCL's LLVM (SLP vectorizer)
 * packs the lanes' buffers into one vector and their lookups into gathers,
 * whose latency then lies on every chain (measured 2-3x slower).  Only
 * where it was measured: PoCL (which defines POCL_DEVICE_ADDRESS_BITS) on
 * x86-64. */
#if defined(POCL_DEVICE_ADDRESS_BITS) && defined(__x86_64__)
#define OPAQUE(x) __asm__("" : "+r"(x))
#else
#define OPAQUE(x) ((void)0)
#endif

/* Lane k's buffer refilled from its stream pointer, the load clamped to
 * the last 8 bytes of the stream when `clamp`. */
#define PAIR_REFILL(k, clamp)                                                     \
    do {                                                                          \
        uint c_ = (uint)clz(b[k]);                                                \
        __global const uchar *q_ = q[k] + (c_ >> 3);                              \
        q[k] = q_;                                                                \
        b[k] = (*(__global const ulong *)((clamp) && q_ > last8 ? last8 : q_) | MARKER) >> \
               (c_ & 7);                                                          \
        OPAQUE(b[k]);                                                             \
    } while (0)
/* One lookup of lane k: one or two elements. */
#define PAIR_LOOKUP(k)                                                            \
    do {                                                                          \
        uint e_ = pairs[(uint)b[k] & PAIR_MASK];                                  \
        b[k] >>= e_;                                                              \
        OPAQUE(b[k]);                                                             \
        *(__global ushort *)o[k] = (ushort)(e_ >> 8);                             \
        o[k] += (e_ >> 31) + 1;                                                   \
    } while (0)

__kernel void ecf8_decode_pairs(DECODE_KERNEL_ARGS)
{
    (void)table_mask;
    __global const ulong *offsets = (__global const ulong *)(data + offsets_at);
    __global const uint *pairs = (__global const uint *)(data + table_at);
    __global const uchar *stream = data + coded_at;
    /* The last 8-byte load inside the stream (offsets[n_chunks] =
     * coded_bytes - 8, validated on the host). */
    __global const uchar *const last8 = stream + coded_bytes - 8;
    const ulong groups = (n_chunks + ECF8_NL - 1) / ECF8_NL, g = get_global_id(0);
    if (g >= groups) return;
    ulong c0 = g * n_chunks / groups, c1 = (g + 1) * n_chunks / groups;
    __global const uchar *q[ECF8_NL];
    __global uchar *o[ECF8_NL], *end[ECF8_NL];
    ulong b[ECF8_NL];
#pragma unroll
    for (uint k = 0; k < ECF8_NL; k++) {
        ulong c = min(c0 + k, c1 - 1);
        uint count;
        ulong start = chunk_geometry(c, rows, cols, chunk_rows, chunk_cols, &count);
        q[k] = stream + offsets[c];
        b[k] = MARKER; /* as if refilled at q with nothing read */
        o[k] = out + out_offset + start;
        end[k] = o[k] + count;
    }
    for (;;) {
        ulong room = (ulong)(end[0] - o[0]), ahead = (ulong)(last8 - q[0]);
#pragma unroll
        for (uint k = 1; k < ECF8_NL; k++) {
            room = min(room, (ulong)(end[k] - o[k]));
            ahead = min(ahead, (ulong)(last8 - q[k]));
        }
        ulong rounds = min(room / 8, ahead / 7);
        if (!rounds) break;
        for (; rounds; rounds--) {
#pragma unroll
            for (uint k = 0; k < ECF8_NL; k++) PAIR_REFILL(k, false);
#pragma unroll
            for (uint u = 0; u < 4; u++) {
#pragma unroll
                for (uint k = 0; k < ECF8_NL; k++) PAIR_LOOKUP(k);
            }
        }
    }
#pragma unroll
    for (uint k = 0; k < ECF8_NL; k++) {
        while (end[k] - o[k] >= 8) {
            PAIR_REFILL(k, true);
            PAIR_LOOKUP(k);
            PAIR_LOOKUP(k);
            PAIR_LOOKUP(k);
            PAIR_LOOKUP(k);
        }
        while (end[k] - o[k] >= 2) {
            PAIR_REFILL(k, true);
            PAIR_LOOKUP(k);
        }
        if (o[k] < end[k]) {
            PAIR_REFILL(k, true);
            uint e = pairs[(uint)b[k] & PAIR_MASK];
            *o[k] = (uchar)(e >> 8);
            b[k] >>= (e >> 24) & 15;
        }
        ulong c = c0 + k;
        if (c < c1) {
            ulong bits = (ulong)(q[k] - (stream + offsets[c])) * 8 + clz(b[k]);
            if ((bits + 7) / 8 != offsets[c + 1] - offsets[c])
                report_chunk(error, c, bits, offsets[c + 1] - offsets[c]);
        }
    }
}
#endif
