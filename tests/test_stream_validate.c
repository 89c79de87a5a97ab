/* test_stream_validate.c - validation of hostile streams: every mutated
 * field of a valid stream (geometry, code lengths, chunk offsets) rejected
 * by ecf8_stream_validate, and corrupt coded bits behind valid offsets
 * decoded alike (the same status) by the fast and the reference decoders. */
#include "testutil_stream.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- validation of hostile streams -------------------------------------------- */
typedef struct owned_stream {
    uint8_t *payload;
    size_t bytes;
    ecf8_stream s;
} owned_stream;

static void make_owned(ecf8_dtype d, ecf8_split sp, uint64_t rows, uint64_t cols, uint32_t chunk,
                       uint64_t seed, owned_stream *o)
{
    uint8_t *x = tu_make_weights(d, (size_t)(rows * cols), seed);
    ecf8_encoded *e = encode(d, x, rows, cols, (params){sp, 0, chunk, 0}, ECF8_OK);
    const ecf8_stream *s = ecf8_encoded_stream(e);
    assert_non_null(s);
    const void *p = ecf8_encoded_payload(e, &o->bytes);
    o->payload = malloc(o->bytes);
    memcpy(o->payload, p, o->bytes);
    assert_int_equal(stream_from_payload(d, s->split, s->code_bits, rows, cols, s->chunk_rows,
                                              s->chunk_cols, s->coded_bytes, o->payload, o->bytes, &o->s),
                     ECF8_OK);
    ecf8_encoded_free(e);
    free(x);
}

static void expect_invalid(const ecf8_stream *s)
{
    int st = ecf8_stream_validate(s);
    assert_int_equal(st, ECF8_ERR_CORRUPT);
    assert_true(strlen(ecf8_last_error()) > 0);
}

static void test_validate_rejects(void **state)
{
    (void)state;
    owned_stream o;
    make_owned(ECF8_DTYPE_F8_E4M3, ECF8_SPLIT_EXPONENT, 64, 300, 1000, 3, &o);
    const ecf8_stream good = o.s;
    uint64_t *offs = (uint64_t *)(void *)(o.payload + ((const uint8_t *)(const void *)good.chunk_offsets - o.payload));
    assert_int_equal(ecf8_stream_validate(&good), ECF8_OK);
    assert_true(good.n_chunks >= 4);
    ecf8_stream s;
#define MUTATE(stmt)       \
    do {                   \
        s = good;          \
        stmt;              \
        expect_invalid(&s); \
    } while (0)
    MUTATE(s.split = ECF8_SPLIT_STORED);
    MUTATE(s.split = ECF8_SPLIT_AUTO);
    MUTATE(s.dtype = ECF8_DTYPE_OTHER);
    MUTATE(s.dtype = (ecf8_dtype)9);
    MUTATE(s.n_symbols = 256);
    MUTATE(s.code_bits = ECF8_MAX_CODE_BITS + 1);
    MUTATE(s.code_bits = good.code_bits - 1);
    MUTATE(s.code_bits = 0);
    MUTATE(s.n_elements++);
    MUTATE(s.rows = 0);
    MUTATE(s.cols = 0; s.n_elements = 0);
    MUTATE(s.rows = 1ull << 40; s.cols = 1ull << 40);
    MUTATE(s.chunk_rows = 0);
    MUTATE(s.chunk_cols = 0);
    MUTATE(s.chunk_rows = good.rows + 1);
    MUTATE(s.chunk_cols = good.cols + 1);
    MUTATE(s.chunk_cols = good.cols - 1);                     /* segments of several rows */
    MUTATE(s.chunk_rows = 1; s.chunk_cols = 300);             /* n_chunks no longer matches */
    MUTATE(s.n_chunks--);
    MUTATE(s.n_chunks++);
    MUTATE(s.coded_bytes = 7);
    MUTATE(s.coded_bytes--);
    MUTATE(s.coded_bytes++);
    MUTATE(s.chunk_offsets = NULL);
    MUTATE(s.coded = NULL);
    MUTATE(s.lengths[0] = s.lengths[0] ? 0 : 1);              /* Kraft sum broken */
    MUTATE(s.lengths[good.n_symbols - 1] = 15);
    /* Offsets (through the payload). */
    uint64_t saved[8];
    memcpy(saved, offs, sizeof saved);
#define MUTATE_OFFS(stmt)                        \
    do {                                         \
        stmt;                                    \
        expect_invalid(&good);                   \
        memcpy(offs, saved, sizeof saved);       \
        assert_int_equal(ecf8_stream_validate(&good), ECF8_OK); \
    } while (0)
    MUTATE_OFFS(offs[0] = 1);
    MUTATE_OFFS(offs[2] = offs[1] - 1);                        /* decreasing */
    MUTATE_OFFS(offs[1] = good.coded_bytes);                   /* past the stream */
    MUTATE_OFFS(offs[1] = UINT64_MAX);
    MUTATE_OFFS(offs[1] = offs[3]);                            /* a chunk far longer than its coding */
    uint64_t last = offs[good.n_chunks];
    offs[good.n_chunks] = last - 1;
    expect_invalid(&good);
    offs[good.n_chunks] = last;
    assert_int_equal(ecf8_stream_validate(&good), ECF8_OK);
    /* ecf8_stream_from_payload: sizes and alignment. */
    ecf8_stream p;
    assert_int_equal(stream_from_payload(good.dtype, good.split, good.code_bits, good.rows, good.cols,
                                              good.chunk_rows, good.chunk_cols, good.coded_bytes,
                                              o.payload, o.bytes - 1, &p),
                     ECF8_ERR_CORRUPT);
    assert_int_equal(stream_from_payload(good.dtype, good.split, good.code_bits, good.rows, good.cols,
                                              good.chunk_rows, good.chunk_cols, good.coded_bytes + 1,
                                              o.payload, o.bytes, &p),
                     ECF8_ERR_CORRUPT);
    assert_int_equal(stream_from_payload(good.dtype, ECF8_SPLIT_BYTE, good.code_bits, good.rows, good.cols,
                                              good.chunk_rows, good.chunk_cols, good.coded_bytes,
                                              o.payload, o.bytes, &p),
                     ECF8_ERR_CORRUPT);
    assert_int_equal(stream_from_payload(ECF8_DTYPE_OTHER, good.split, good.code_bits, good.rows, good.cols,
                                              good.chunk_rows, good.chunk_cols, good.coded_bytes,
                                              o.payload, o.bytes, &p),
                     ECF8_ERR_CORRUPT);
    assert_int_equal(stream_from_payload(good.dtype, good.split, good.code_bits, good.rows, good.cols,
                                              UINT64_MAX, good.chunk_cols, good.coded_bytes,
                                              o.payload, o.bytes, &p),
                     ECF8_ERR_CORRUPT);
    assert_int_equal(stream_from_payload(good.dtype, good.split, good.code_bits, 0, good.cols,
                                              good.chunk_rows, good.chunk_cols, good.coded_bytes,
                                              o.payload, o.bytes, &p),
                     ECF8_ERR_CORRUPT);
    uint8_t *shifted = malloc(o.bytes + 8);
    memcpy(shifted + 4, o.payload, o.bytes);
    assert_int_equal(stream_from_payload(good.dtype, good.split, good.code_bits, good.rows, good.cols,
                                              good.chunk_rows, good.chunk_cols, good.coded_bytes,
                                              shifted + 4, o.bytes, &p),
                     ECF8_ERR_CORRUPT);
    free(shifted);
    free(o.payload);
#undef MUTATE
#undef MUTATE_OFFS
}

/* Corrupt coded bits behind valid offsets: the fast and the reference
 * decoder agree (both fail, or both give the same elements), never crash. */
static void test_corrupt_streams_decoders_agree(void **state)
{
    (void)state;
    static const struct {
        ecf8_dtype d;
        ecf8_split sp;
        uint64_t rows, cols;
        uint32_t chunk;
    } cases[] = {
        {ECF8_DTYPE_F8_E4M3, ECF8_SPLIT_BYTE, 300, 1000, 0},   /* pair table, 4 ways */
        {ECF8_DTYPE_F8_E4M3, ECF8_SPLIT_EXPONENT, 40, 500, 1000},
        {ECF8_DTYPE_F8_E5M2, ECF8_SPLIT_BYTE, 20, 700, 256},
        {ECF8_DTYPE_F8_E5M2, ECF8_SPLIT_EXPONENT, 3, 5000, 4096},
        {ECF8_DTYPE_BF16, ECF8_SPLIT_EXPONENT, 64, 300, 1000},
        {ECF8_DTYPE_BF16, ECF8_SPLIT_BYTE, 64, 300, 4096},
        {ECF8_DTYPE_F16, ECF8_SPLIT_EXPONENT, 50, 333, 2000},
        {ECF8_DTYPE_F16, ECF8_SPLIT_BYTE, 17, 999, 0},
    };
    uint64_t rng = 1234;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        owned_stream o;
        make_owned(cases[k].d, cases[k].sp, cases[k].rows, cases[k].cols, cases[k].chunk, 70 + k, &o);
        size_t bytes = (size_t)o.s.n_elements * ecf8_dtype_size(o.s.dtype);
        uint8_t *a = malloc(bytes), *b = malloc(bytes);
        uint8_t *coded = o.payload + ((const uint8_t *)o.s.coded - o.payload);
        uint64_t limit = o.s.coded_bytes - 8;
        int failures = 0;
        for (int it = 0; it < 60; it++) {
            uint64_t pos[3];
            int flips = 1 + (int)(tu_rand(&rng) % 3);
            for (int f = 0; f < flips; f++) {
                pos[f] = tu_rand(&rng) % (limit * 8);
                coded[pos[f] / 8] ^= (uint8_t)(1u << (pos[f] % 8));
            }
            assert_int_equal(ecf8_stream_validate(&o.s), ECF8_OK); /* offsets untouched */
            int sa = ecf8_stream_decode_isa(&o.s, a, bytes, it % 2 ? 1 : 0, it % 4 >= 2);
            int sb = ecf8_stream_decode_reference(&o.s, b, bytes);
            assert_int_equal(sa, sb);
            if (sa == ECF8_OK) assert_memory_equal(a, b, bytes);
            else assert_int_equal(sa, ECF8_ERR_CORRUPT), failures++;
            for (int f = flips - 1; f >= 0; f--) coded[pos[f] / 8] ^= (uint8_t)(1u << (pos[f] % 8));
        }
        (void)failures;
        /* Garbage everywhere. */
        for (uint64_t i = 0; i < limit; i++) coded[i] = (uint8_t)tu_rand(&rng);
        int sa = ecf8_stream_decode(&o.s, a, bytes, 0), sb = ecf8_stream_decode_reference(&o.s, b, bytes);
        assert_int_equal(sa, sb);
        free(a);
        free(b);
        free(o.payload);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_rejects),
        cmocka_unit_test(test_corrupt_streams_decoders_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
