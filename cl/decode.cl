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

__kernel void ecf8_decode(__global const uchar *data, __global uchar *out,
                          __global uint *error, ulong offsets_at, ulong coded_at,
                          ulong coded_bytes, ulong table_at, ulong out_offset, ulong n_chunks,
                          ulong rows, ulong cols, ulong chunk_rows, ulong chunk_cols)
{
    __local ushort table[TABLE_SIZE];
    __global const ushort *gtable = (__global const ushort *)(data + table_at);
    for (uint i = get_local_id(0); i < TABLE_SIZE; i += get_local_size(0)) table[i] = gtable[i];
    barrier(CLK_LOCAL_MEM_FENCE);

    ulong c = get_global_id(0);
    if (c >= n_chunks) return;
    __global const ulong *offsets = (__global const ulong *)(data + offsets_at);
    __global const uchar *coded = data + coded_at;
    ulong segs = (cols + chunk_cols - 1) / chunk_cols;
    ulong row0 = c / segs * chunk_rows, col0 = c % segs * chunk_cols;
    ulong nr = min(chunk_rows, rows - row0), nc = min(chunk_cols, cols - col0);
    ulong start = row0 * cols + col0;
    uint count = (uint)(nr * nc);
    ulong begin = offsets[c], end = offsets[c + 1];
    ulong limit = coded_bytes - 8;
    __global uchar *dst = out + out_offset + start * ECF8_WIDTH;

    ulong pos = begin, buf = 0;
    uint avail = 0;
    uint i = 0;
    while (i < count) {
        buf |= as_ulong(vload8(0, coded + min(pos, limit))) << avail;
        pos += (63 - avail) >> 3;
        avail |= 56;
        uint stop = min(i + PER_REFILL, count);
        for (; i < stop; i++) {
            uint e = table[buf & TMASK], len = e & 15;
            buf >>= len;
            uint raw = (uint)buf & RMASK;
            buf >>= ECF8_RAW_BITS;
            avail -= len + ECF8_RAW_BITS;
            uint x = join(e >> 4, raw);
#if ECF8_WIDTH == 1
            dst[i] = (uchar)x;
#else
            vstore2((uchar2)((uchar)x, (uchar)(x >> 8)), i, dst);
#endif
        }
    }
    ulong bits = (pos - begin) * 8 - avail;
    if ((bits + 7) / 8 != end - begin) atomic_cmpxchg(error, 0u, (uint)c + 1);
}
