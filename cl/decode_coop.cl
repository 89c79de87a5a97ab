/* decode_coop.cl - the cooperative decode kernel (after decode_common.cl). */
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
