/* decode_portable.cl - the portable decode kernel (after decode_common.cl). */
/* Elements per refill of a 64-bit window holding at least 33 valid bits. */
#define PER_WINDOW (33 / ELEM_BITS_NZ)
#define V (16 / ECF8_WIDTH) /* elements per 16-byte store */

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
