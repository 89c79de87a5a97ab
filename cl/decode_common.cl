/* decode_common.cl - chunk-parallel decode of an ecf8 coded tensor (OpenCL
 * C 1.2): what the five decode kernels share.
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
 * Four kernels of stream layout 0 share the geometry code here, each in
 * its own file and its own program (decode_KERNEL.cl, built as this file
 * followed by that one: cmake/EmbedCL.cmake), so a device compiles only
 * the kernels it runs:
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
 * Stream layout 1 (lane streams, docs/FORMAT.md 4.4) has a kernel of its
 * own, the only one that decodes it, on every device:
 *   ecf8_decode_streams  the 32 lanes of a chunk decoded side by side,
 *                      each from its start in the lane table to its
 *                      length (checked: report_lane), its raw bits read
 *                      by address from the raw plane.  GPUs: one lane per
 *                      work-item, 32 x ECF8_STREAMS_WG_CHUNKS per work-
 *                      group, the table in local memory, every step's 32
 *                      words one 128-byte store.  CPUs: a chunk per
 *                      work-item in 4 x 8 (AVX2) or 2 x 16 (AVX-512) uint
 *                      vector lanes, each step's words of a vector one
 *                      vector store and their raw bits one vector load,
 *                      only the stream and table reads gathers (no
 *                      transposes, no chunks of unequal lengths side by
 *                      side as in the lanes kernel).  Any output
 *                      alignment (byte stores where a chunk's output is
 *                      not 4-byte aligned).
 *   ecf8_decode_streams_batch  the same chunk decode for many tensors in
 *                      one launch (src/opencl/batch.c): a work-item finds
 *                      its tensor by binary search over a job table.
 *
 * Built with -D options per tensor kind (decode_plan.c); every one has a
 * default so each program compiles on its own.  ECF8_CODE_BITS is the
 * longest code of a class of tensors that share the unrolling (elements
 * per window), so a handful of programs serve every code length. */
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

/* A lane of a layout-1 chunk (decode_streams.cl) that decodes to `bits`
 * bits where its lane table says `length`: error[4] holds the lane + 1
 * (0 for a chunk of layout 0). */
inline void report_lane(__global uint *error, ulong c, uint lane, uint bits, uint length)
{
    if (atomic_cmpxchg(error, 0u, (uint)c + 1) == 0) {
        error[1] = bits;
        error[2] = 0;
        error[3] = length;
        error[4] = lane + 1;
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
