/* stream_reference.c - the reference decoder: canonical decoding one bit
 * at a time, no tables, one thread.  It shares nothing with the fast
 * decoder (stream_decode.c) but the format rules (stream.h), so the fast
 * paths are tested against it. */
#include "stream.h"

static inline void store_element(uint8_t *out, uint64_t i, unsigned width, unsigned v)
{
    if (width == 1) {
        out[i] = (uint8_t)v;
    } else {
        out[2 * i] = (uint8_t)v;
        out[2 * i + 1] = (uint8_t)(v >> 8);
    }
}

static void sort_symbols(const ecf8_stream *s, unsigned count[16], unsigned sorted[256])
{
    unsigned ns = 0;
    for (unsigned len = 1; len < 16; len++)
        for (unsigned sym = 0; sym < s->n_symbols; sym++)
            if (s->lengths[sym] == len) sorted[ns++] = sym, count[len]++;
}

/* The next symbol of the bits [*pos, avail) of src, canonical decoding one
 * bit at a time; -1 when the bits end first, -2 for no code. */
static int read_symbol(const ecf8_stream *s, const unsigned count[16], const unsigned sorted[256],
                       const uint8_t *src, uint64_t avail, uint64_t *pos)
{
    if (s->code_bits == 0) return (int)sorted[0];
    unsigned code = 0, first = 0, index = 0;
    for (unsigned len = 1; len <= s->code_bits; len++) {
        if (*pos >= avail) return -1;
        code |= (src[*pos / 8] >> (*pos % 8)) & 1u;
        ++*pos;
        if (code - first < count[len]) return (int)sorted[index + code - first];
        index += count[len];
        first = (first + count[len]) << 1;
        code <<= 1;
    }
    return -2;
}

/* Layout 1: lane by lane, each word's elements in order, every lane
 * bounded by (and required to use up) its lane-table length. */
int ecf8_lanes_decode_reference(const ecf8_stream *s, const ecf8_split_layout *l, void *out)
{
    unsigned count[16] = {0}, sorted[256];
    sort_symbols(s, count, sorted);
    const unsigned width = l->element_bits / 8, q = 4 / width;
    for (uint64_t c = 0; c < s->n_chunks; c++) {
        ecf8_lane_chunk lc;
        int st = ecf8_lane_chunk_parse(s, l, c, &lc);
        if (st) return st;
        const uint8_t *lanes = s->coded + s->chunk_offsets[c] + lc.table_bytes;
        const uint8_t *plane = s->coded + s->chunk_offsets[c] + lc.raw_offset;
        uint64_t start = ecf8_chunk_start(s, c), words = (lc.count + q - 1) / q;
        for (unsigned k = 0; k < ECF8_LANES; k++) {
            uint64_t pos = lc.start[k];
            for (uint64_t w = k; w < words; w += ECF8_LANES)
                for (uint64_t i = w * q; i < (w + 1) * q && i < lc.count; i++) {
                    int sym = read_symbol(s, count, sorted, lanes, lc.start[k + 1], &pos);
                    if (sym == -1)
                        return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu lane %u runs past its %u bits",
                                         (unsigned long long)c, k, lc.start[k + 1] - lc.start[k]);
                    if (sym < 0) return ecf8_fail(ECF8_ERR_CORRUPT, "invalid code");
                    unsigned raw = 0;
                    for (unsigned b = 0; b < l->raw_bits; b++) {
                        uint64_t at = i * l->raw_bits + b;
                        raw |= ((plane[at / 8] >> (at % 8)) & 1u) << b;
                    }
                    store_element(out, start + i, width, ecf8_element_join((unsigned)sym, raw, l));
                }
            if (pos != lc.start[k + 1])
                return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu lane %u decodes to %llu bits, its lane table says %u",
                                 (unsigned long long)c, k, (unsigned long long)(pos - lc.start[k]),
                                 lc.start[k + 1] - lc.start[k]);
        }
    }
    return ECF8_OK;
}

/* Canonical decoding one bit at a time (first code per length), no tables:
 * independent of the fast path, which is tested against it. */
int ecf8_stream_decode_reference(const ecf8_stream *s, void *out, size_t out_bytes)
{
    ecf8_split_layout l;
    int st = ecf8_split_layout_get(s->dtype, s->split, &l);
    if (st) return st;
    unsigned width = ecf8_dtype_size(s->dtype);
    if (out_bytes < s->n_elements * width)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "decode: output too small");
    if (s->stream_layout == ECF8_STREAM_LAYOUT_LANES) return ecf8_lanes_decode_reference(s, &l, out);
    /* Symbols sorted by (length, symbol) and the count per length. */
    unsigned count[16] = {0}, sorted[256];
    sort_symbols(s, count, sorted);
    for (uint64_t c = 0; c < s->n_chunks; c++) {
        const uint8_t *src = s->coded + s->chunk_offsets[c];
        uint64_t avail_bits = (s->chunk_offsets[c + 1] - s->chunk_offsets[c]) * 8, pos = 0;
        uint64_t start = ecf8_chunk_start(s, c), n = ecf8_chunk_elements(s, c);
#define NEXT_BIT() (pos < avail_bits ? (src[pos / 8] >> (pos % 8)) & 1u : 2u)
        for (uint64_t i = 0; i < n; i++) {
            int sym = read_symbol(s, count, sorted, src, avail_bits, &pos);
            if (sym == -1) return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu ends early", (unsigned long long)c);
            if (sym < 0) return ecf8_fail(ECF8_ERR_CORRUPT, "invalid code");
            unsigned raw = 0;
            for (unsigned k = 0; k < l.raw_bits; k++) {
                unsigned b = NEXT_BIT();
                if (b > 1) return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu ends early", (unsigned long long)c);
                pos++;
                raw |= b << k;
            }
            store_element(out, start + i, width, ecf8_element_join((unsigned)sym, raw, &l));
        }
#undef NEXT_BIT
        if ((pos + 7) / 8 != avail_bits / 8) return ecf8_chunk_length_error(s, c, pos);
    }
    return ECF8_OK;
}
