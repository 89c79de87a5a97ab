/* decode_pairs.cl - the pairs decode kernel for CPU devices, FP8 (after
 * decode_common.cl). */
/* ---- pairs kernel (CPU devices, FP8) ------------------------------------
 * The native decoder's pair lookup (src/stream_decode_impl.h, decode_pairs) in
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
#if ECF8_WIDTH != 1
#error the pairs kernel decodes FP8 (ECF8_WIDTH 1) only
#endif
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
