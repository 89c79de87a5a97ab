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
    /* Symbols sorted by (length, symbol) and the count per length. */
    unsigned count[16] = {0}, sorted[256], ns = 0;
    for (unsigned len = 1; len < 16; len++)
        for (unsigned sym = 0; sym < s->n_symbols; sym++)
            if (s->lengths[sym] == len) sorted[ns++] = sym, count[len]++;
    for (uint64_t c = 0; c < s->n_chunks; c++) {
        const uint8_t *src = s->coded + s->chunk_offsets[c];
        uint64_t avail_bits = (s->chunk_offsets[c + 1] - s->chunk_offsets[c]) * 8, pos = 0;
        uint64_t start = ecf8_chunk_start(s, c), n = ecf8_chunk_elements(s, c);
#define NEXT_BIT() (pos < avail_bits ? (src[pos / 8] >> (pos % 8)) & 1u : 2u)
        for (uint64_t i = 0; i < n; i++) {
            unsigned sym = 0;
            if (s->code_bits == 0) {
                sym = sorted[0];
            } else {
                unsigned code = 0, first = 0, index = 0, len;
                for (len = 1; len <= s->code_bits; len++) {
                    unsigned b = NEXT_BIT();
                    if (b > 1) return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu ends early", (unsigned long long)c);
                    pos++;
                    code = code | b;
                    if (code - first < count[len]) {
                        sym = sorted[index + code - first];
                        break;
                    }
                    index += count[len];
                    first = (first + count[len]) << 1;
                    code <<= 1;
                }
                if (len > s->code_bits) return ecf8_fail(ECF8_ERR_CORRUPT, "invalid code");
            }
            unsigned raw = 0;
            for (unsigned k = 0; k < l.raw_bits; k++) {
                unsigned b = NEXT_BIT();
                if (b > 1) return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu ends early", (unsigned long long)c);
                pos++;
                raw |= b << k;
            }
            store_element(out, start + i, width, ecf8_element_join(sym, raw, &l));
        }
#undef NEXT_BIT
        if ((pos + 7) / 8 != avail_bits / 8) return ecf8_chunk_length_error(s, c, pos);
    }
    return ECF8_OK;
}
