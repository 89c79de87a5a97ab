/* testutil_stream.h - what the chunked-codec suites (test_stream*.c)
 * share: the dtypes and splits under test, an independent encoder written
 * from the format (the payload checked against it bit for bit), the chunk
 * geometry the format promises, and roundtrip(): encode, check every
 * invariant, decode with the fast and the reference decoders. */
#ifndef ECF8_TESTUTIL_STREAM_H
#define ECF8_TESTUTIL_STREAM_H

#include "testutil.h"

#include "internal.h"
#include "stream_decode.h"

#include <stdlib.h>
#include <string.h>

static const ecf8_dtype DTYPES[] = {ECF8_DTYPE_F8_E4M3, ECF8_DTYPE_F8_E5M2, ECF8_DTYPE_BF16,
                                    ECF8_DTYPE_F16};
static const ecf8_split SPLITS[] = {ECF8_SPLIT_EXPONENT, ECF8_SPLIT_BYTE, ECF8_SPLIT_AUTO};

/* ecf8_stream_open_payload with the geometry spelled out. */
static inline int stream_from_payload(ecf8_dtype dtype, ecf8_split split, unsigned code_bits,
                                      uint64_t rows, uint64_t cols, uint64_t chunk_rows,
                                      uint64_t chunk_cols, uint64_t coded_bytes,
                                      const void *payload, uint64_t payload_bytes,
                                      ecf8_stream *out)
{
    const ecf8_stream_geometry g = {.dtype = dtype, .split = split, .code_bits = code_bits,
                                    .rows = rows, .cols = cols, .chunk_rows = chunk_rows,
                                    .chunk_cols = chunk_cols, .coded_bytes = coded_bytes};
    return ecf8_stream_open_payload(&g, payload, payload_bytes, out, NULL);
}

/* ---- an independent encoder, written from the format ----------------------- */
/* Canonical code words, MSB first: ordered by (length, symbol). */
static inline void canonical_msb(const uint8_t *len, unsigned n, unsigned *code)
{
    unsigned next = 0, prev = 0;
    for (unsigned l = 1; l <= 15; l++)
        for (unsigned s = 0; s < n; s++)
            if (len[s] == l) {
                next <<= (l - prev);
                prev = l;
                code[s] = next++;
            }
}

typedef struct bitw {
    uint8_t *p;
    uint64_t bit;
} bitw;

static inline void put_bit(bitw *w, unsigned b)
{
    if (b) w->p[w->bit / 8] |= (uint8_t)(1u << (w->bit % 8));
    w->bit++;
}

static inline uint64_t load_el(const uint8_t *d, uint64_t i, unsigned w)
{
    return w == 1 ? d[i] : (uint64_t)d[2 * i] | (uint64_t)d[2 * i + 1] << 8;
}

/* Payload: 4-bit code lengths (symbol 2k in the low nibble of byte k)
 * padded to 8 bytes, (n_chunks + 1) u64 chunk offsets, the chunks (each an
 * LSB-first bit string of code word then raw bits per element, padded to a
 * byte), then 8 zero bytes.  Returns its size; *out is malloc'd. */
static inline size_t ref_encode(const ecf8_stream *s, const uint8_t *data, uint8_t **out)
{
    ecf8_split_layout l;
    assert_int_equal(ecf8_split_layout_get(s->dtype, s->split, &l), ECF8_OK);
    unsigned w = l.element_bits / 8, code[256] = {0};
    canonical_msb(s->lengths, s->n_symbols, code);
    size_t lengths_bytes = (s->n_symbols / 2 + 7) / 8 * 8;
    size_t max_coded = (size_t)s->n_elements * 4 + 16; /* <= 21 bits per element + pads */
    size_t cap = lengths_bytes + 8 * (size_t)(s->n_chunks + 1) + max_coded + 8 * (size_t)s->n_chunks;
    uint8_t *p = calloc(1, cap);
    assert_non_null(p);
    for (unsigned i = 0; i < s->n_symbols; i++) p[i / 2] |= (uint8_t)(s->lengths[i] << (4 * (i & 1)));
    uint8_t *offs = p + lengths_bytes, *coded = offs + 8 * (s->n_chunks + 1);
    uint64_t pos = 0;
    for (uint64_t c = 0; c < s->n_chunks; c++) {
        for (int b = 0; b < 8; b++) offs[8 * c + b] = (uint8_t)(pos >> (8 * b));
        bitw bw = {coded + pos, 0};
        uint64_t start = ecf8_chunk_start(s, c), count = ecf8_chunk_elements(s, c);
        for (uint64_t i = 0; i < count; i++) {
            uint64_t x = load_el(data, start + i, w);
            unsigned sym = (unsigned)(x >> l.symbol_shift) & ((1u << l.symbol_bits) - 1);
            unsigned raw = (unsigned)((x >> (l.symbol_shift + l.symbol_bits)) << l.symbol_shift |
                                      (x & ((1u << l.symbol_shift) - 1)));
            if (s->code_bits)
                for (int b = s->lengths[sym] - 1; b >= 0; b--) put_bit(&bw, (code[sym] >> b) & 1);
            for (unsigned b = 0; b < l.raw_bits; b++) put_bit(&bw, (raw >> b) & 1);
        }
        pos += (bw.bit + 7) / 8;
    }
    for (int b = 0; b < 8; b++) offs[8 * s->n_chunks + b] = (uint8_t)(pos >> (8 * b));
    *out = p;
    return lengths_bytes + 8 * (size_t)(s->n_chunks + 1) + pos + 8;
}

/* The chunk geometry the format promises: whole rows per chunk when a row
 * fits the target, else 64-aligned near-equal row segments. */
static inline void want_geometry(uint64_t rows, uint64_t cols, uint64_t target, uint64_t *cr,
                                 uint64_t *cc)
{
    if (!target) target = ECF8_DEFAULT_CHUNK_ELEMENTS;
    if (cols <= target) {
        *cc = cols;
        *cr = target / cols < rows ? target / cols : rows;
    } else {
        uint64_t segs = (cols + target - 1) / target;
        uint64_t c = ((cols + segs - 1) / segs + 63) / 64 * 64;
        *cr = 1;
        *cc = c < cols ? c : cols;
    }
}

/* ---- encode + check everything ---------------------------------------------- */
typedef struct params {
    ecf8_split split;
    unsigned max_bits;
    uint32_t chunk;
    unsigned threads;
} params;

static inline ecf8_encoded *encode(ecf8_dtype d, const void *data, uint64_t rows, uint64_t cols,
                                   params p, int expect_status)
{
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.split = p.split;
    if (p.max_bits) o.max_code_bits = p.max_bits;
    o.chunk_elements = p.chunk;
    o.threads = p.threads;
    ecf8_encoded *e = NULL;
    int st = ecf8_tensor_encode(d, data, rows, cols, &o, &e);
    if (st != expect_status)
        fail_msg("encode %s %llux%llu split %s max_bits %u chunk %u: status %d (%s), want %d",
                 ecf8_dtype_name(d), (unsigned long long)rows, (unsigned long long)cols,
                 ecf8_split_name(p.split), p.max_bits, p.chunk, st, ecf8_last_error(), expect_status);
    return e;
}

/* Decodes `s` with both decoders (several thread counts) and compares with
 * data; checks the geometry and the payload against ref_encode. */
static inline void check_stream(const ecf8_stream *s, const void *payload, size_t payload_bytes,
                                const uint8_t *data, uint64_t rows, uint64_t cols, uint32_t chunk)
{
    unsigned w = ecf8_dtype_size(s->dtype);
    size_t bytes = (size_t)(rows * cols * w);
    assert_int_equal(s->n_elements, rows * cols);
    assert_int_equal(s->rows, rows);
    assert_int_equal(s->cols, cols);
    assert_int_equal(ecf8_stream_validate(s), ECF8_OK);

    /* Geometry: the promised rule, chunks tiling the tensor in order. */
    uint64_t cr, cc, cn;
    want_geometry(rows, cols, chunk, &cr, &cc);
    assert_int_equal(s->chunk_rows, cr);
    assert_int_equal(s->chunk_cols, cc);
    ecf8_chunk_geometry(rows, cols, chunk, &cr, &cc, &cn);
    assert_int_equal(s->n_chunks, cn);
    uint64_t next = 0;
    for (uint64_t c = 0; c < s->n_chunks; c++) {
        assert_int_equal(ecf8_chunk_start(s, c), next);
        uint64_t k = ecf8_chunk_elements(s, c);
        assert_true(k >= 1 && k <= s->chunk_rows * s->chunk_cols);
        if (s->chunk_cols < s->cols) assert_true(s->chunk_cols % 64 == 0);
        next += k;
    }
    assert_int_equal(next, s->n_elements);

    /* The payload, byte for byte, as an independent encoder writes it. */
    uint8_t *ref = NULL;
    size_t ref_bytes = ref_encode(s, data, &ref);
    assert_int_equal(ref_bytes, payload_bytes);
    assert_memory_equal(ref, payload, payload_bytes);
    free(ref);
    ecf8_stream parsed;
    assert_int_equal(stream_from_payload(s->dtype, s->split, s->code_bits, rows, cols, s->chunk_rows,
                                              s->chunk_cols, s->coded_bytes, payload, payload_bytes,
                                              &parsed),
                     ECF8_OK);
    assert_int_equal(parsed.n_chunks, s->n_chunks);
    assert_memory_equal(parsed.lengths, s->lengths, s->n_symbols);

    /* Lossless through both decoders. */
    uint8_t *out = malloc(bytes + 1);
    assert_non_null(out);
    const unsigned threads[] = {1, 0, 3};
    for (size_t t = 0; t < 3; t++) {
        memset(out, 0xA5, bytes);
        assert_int_equal(ecf8_stream_decode(s, out, bytes, threads[t]), ECF8_OK);
        assert_memory_equal(out, data, bytes);
    }
    memset(out, 0xA5, bytes); /* the baseline-ISA decoder, where the CPU has a faster one */
    assert_int_equal(ecf8_stream_decode_isa(s, out, bytes, 1, true), ECF8_OK);
    assert_memory_equal(out, data, bytes);
    memset(out, 0x5A, bytes);
    assert_int_equal(ecf8_stream_decode_reference(s, out, bytes), ECF8_OK);
    assert_memory_equal(out, data, bytes);
    free(out);
}

/* Encodes, checks the invariants of the result and returns the split used. */
static inline ecf8_split roundtrip(ecf8_dtype d, const void *data, uint64_t rows, uint64_t cols,
                                   params p)
{
    ecf8_encoded *e = encode(d, data, rows, cols, p, ECF8_OK);
    size_t bytes = 0;
    const void *payload = ecf8_encoded_payload(e, &bytes);
    ecf8_split got = ecf8_encoded_split(e);
    size_t src = (size_t)(rows * cols * ecf8_dtype_size(d));
    if (got == ECF8_SPLIT_STORED) {
        assert_null(ecf8_encoded_stream(e));
        assert_int_equal(bytes, src);
        if (src) assert_memory_equal(payload, data, src);
    } else {
        /* A coded payload is always strictly smaller than the source. */
        assert_true(bytes < src);
        if (p.split != ECF8_SPLIT_AUTO) assert_int_equal(got, p.split);
        const ecf8_stream *s = ecf8_encoded_stream(e);
        assert_non_null(s);
        assert_int_equal(s->split, got);
        assert_int_equal(s->dtype, d);
        assert_true(s->code_bits <= (p.max_bits ? p.max_bits : ECF8_DEFAULT_CODE_BITS));
        check_stream(s, payload, bytes, data, rows, cols, p.chunk);
    }
    ecf8_encoded_free(e);
    return got;
}

#endif
