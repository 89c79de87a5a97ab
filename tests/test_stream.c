/* test_stream.c - the chunked tensor codec, round trips: lossless through
 * the fast decoder and the reference decoder for every dtype, split, code
 * length limit and chunk geometry (all FP8 and 16-bit codes, specials,
 * empty, tiny, odd, segmented and row chunks, one-symbol codes, the fast
 * paths and way schedules, any thread count), the payload checked bit for
 * bit against an independent encoder (testutil_stream.h).  Split choice and
 * options: test_stream_choice.c; hostile streams: test_stream_validate.c. */
#include "testutil_stream.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put16(uint8_t *p, size_t i, uint16_t v)
{
    p[2 * i] = (uint8_t)v, p[2 * i + 1] = (uint8_t)(v >> 8);
}

/* ---- round trips --------------------------------------------------------------- */
/* All 256 FP8 codes, planted in weights so that coding pays. */
static void test_all_fp8_codes(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        ecf8_dtype d = k ? ECF8_DTYPE_F8_E5M2 : ECF8_DTYPE_F8_E4M3;
        size_t n = 64 * 128;
        uint8_t *x = tu_make_weights(d, n, 7 + k);
        for (unsigned v = 0; v < 256; v++) x[(v * 31 + 5) % n] = (uint8_t)v;
        x[0] = 0xFF, x[n - 1] = 0x80;
        for (size_t sp = 0; sp < 3; sp++)
            for (unsigned mb = 9; mb <= ECF8_MAX_CODE_BITS; mb += 2) {
                /* (with 256 used symbols, 8-bit codes cannot gain anything) */
                ecf8_split got = roundtrip(d, x, 64, 128, (params){SPLITS[sp], mb, 1000, 0});
                assert_int_not_equal(got, ECF8_SPLIT_STORED);
                roundtrip(d, x, 1, n, (params){SPLITS[sp], mb, 0, 1});
            }
        /* Exactly the 256 codes, uniformly: nothing to gain, stored. */
        uint8_t all[256 * 4];
        for (unsigned i = 0; i < sizeof all; i++) all[i] = (uint8_t)(i * 37);
        for (size_t sp = 0; sp < 3; sp++)
            assert_int_equal(roundtrip(d, all, 4, 256, (params){SPLITS[sp], 0, 0, 0}), ECF8_SPLIT_STORED);
        free(x);
    }
}

/* All 65536 codes of the 16-bit types. */
static void test_all_16bit_codes(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        ecf8_dtype d = k ? ECF8_DTYPE_F16 : ECF8_DTYPE_BF16;
        size_t n = 65536 * 4;
        uint8_t *x = tu_make_weights(d, n, 21 + k);
        for (uint32_t v = 0; v < 65536; v++) put16(x, (size_t)v * 4 + 1, (uint16_t)v);
        for (size_t sp = 0; sp < 3; sp++) {
            ecf8_split got = roundtrip(d, x, 512, 512, (params){SPLITS[sp], 0, 0, 0});
            if (SPLITS[sp] != ECF8_SPLIT_AUTO) assert_int_equal(got, SPLITS[sp]);
        }
        free(x);
    }
}

static void test_special_values(void **state)
{
    (void)state;
    /* E4M3: +-0, NaN (S.1111.111), max normal, subnormals, min normal. */
    const uint8_t e4m3[] = {0x00, 0x80, 0x7F, 0xFF, 0x7E, 0xFE, 0x01, 0x81, 0x07, 0x87, 0x08, 0x88};
    /* E5M2: +-0, +-Inf, NaNs, max normal, subnormals. */
    const uint8_t e5m2[] = {0x00, 0x80, 0x7C, 0xFC, 0x7D, 0x7E, 0x7F, 0xFF, 0x7B, 0xFB, 0x01, 0x83};
    /* BF16 and F16: +-0, +-Inf, quiet and signalling NaNs, max, subnormals. */
    const uint16_t bf16[] = {0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x7F81, 0x7F7F,
                             0xFF7F, 0x0001, 0x807F, 0x0080, 0x3F80, 0xFFFF};
    const uint16_t f16[] = {0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x7C01, 0x7BFF,
                            0xFBFF, 0x0001, 0x83FF, 0x0400, 0x3C00, 0xFFFF};
    for (size_t di = 0; di < 4; di++) {
        ecf8_dtype d = DTYPES[di];
        unsigned w = ecf8_dtype_size(d);
        size_t rows = 37, cols = 211, n = rows * cols; /* odd sizes */
        uint8_t *x = tu_make_weights(d, n, 100 + di);
        size_t ns = d == ECF8_DTYPE_F8_E4M3 ? sizeof e4m3 : d == ECF8_DTYPE_F8_E5M2 ? sizeof e5m2
                    : d == ECF8_DTYPE_BF16 ? sizeof bf16 / 2 : sizeof f16 / 2;
        /* At the start, the end, around chunk boundaries and scattered. */
        size_t at[] = {0, 1, n - 1, n - 2, 210, 211, 4095, 4096, 4097, 8191, 99, 1234};
        for (size_t r = 0; r < 40; r++)
            for (size_t i = 0; i < ns; i++) {
                size_t pos = (r < 12 ? at[r] + i : (r * 977 + i * 131)) % n;
                if (w == 1) x[pos] = d == ECF8_DTYPE_F8_E4M3 ? e4m3[i] : e5m2[i];
                else put16(x, pos, d == ECF8_DTYPE_BF16 ? bf16[i] : f16[i]);
            }
        for (size_t sp = 0; sp < 3; sp++) {
            assert_int_not_equal(roundtrip(d, x, rows, cols, (params){SPLITS[sp], 0, 0, 0}),
                                 ECF8_SPLIT_STORED);
            roundtrip(d, x, rows, cols, (params){SPLITS[sp], 0, 64, 2});
        }
        /* A tensor of nothing but special values. */
        uint8_t only[64 * 2];
        for (size_t i = 0; i < 64; i++) {
            if (w == 1) only[i] = d == ECF8_DTYPE_F8_E4M3 ? e4m3[i % ns] : e5m2[i % ns];
            else put16(only, i, d == ECF8_DTYPE_BF16 ? bf16[i % ns] : f16[i % ns]);
        }
        for (size_t sp = 0; sp < 3; sp++) roundtrip(d, only, 8, 8, (params){SPLITS[sp], 0, 0, 0});
        free(x);
    }
}

static void test_empty_and_one_element(void **state)
{
    (void)state;
    for (size_t di = 0; di < 4; di++) {
        ecf8_dtype d = DTYPES[di];
        for (size_t sp = 0; sp < 3; sp++) {
            ecf8_encoded *e = encode(d, NULL, 0, 0, (params){SPLITS[sp], 0, 0, 0}, ECF8_OK);
            size_t b = 99;
            ecf8_encoded_payload(e, &b);
            assert_int_equal(b, 0);
            assert_int_equal(ecf8_encoded_split(e), ECF8_SPLIT_STORED);
            assert_null(ecf8_encoded_stream(e));
            ecf8_encoded_free(e);
            e = encode(d, NULL, 5, 0, (params){SPLITS[sp], 0, 0, 0}, ECF8_OK);
            ecf8_encoded_free(e);
            const uint8_t one[2] = {0x38, 0x3F};
            assert_int_equal(roundtrip(d, one, 1, 1, (params){SPLITS[sp], 0, 0, 0}), ECF8_SPLIT_STORED);
        }
    }
    ecf8_tensor_analysis an;
    assert_int_equal(ecf8_tensor_analyze(ECF8_DTYPE_BF16, NULL, 0, 7, NULL, &an), ECF8_OK);
    assert_int_equal(an.best_split, ECF8_SPLIT_STORED);
    assert_int_equal(an.source_bytes, 0);
    ecf8_encoded_free(NULL);
}

/* One-element chunks (and other tiny ones) are never produced by the
 * encoder, whose per-chunk offset costs more than it saves; the decoders
 * must still handle them: build such streams with the reference encoder. */
static void test_tiny_chunks_by_hand(void **state)
{
    (void)state;
    for (size_t di = 0; di < 4; di++)
        for (int sp = ECF8_SPLIT_EXPONENT; sp <= ECF8_SPLIT_BYTE; sp++) {
            ecf8_dtype d = DTYPES[di];
            uint64_t rows = 45, cols = 1, n = rows * cols;
            uint8_t *x = tu_make_weights(d, (size_t)n, 300 + di);
            ecf8_split_layout l;
            ecf8_split_layout_get(d, (ecf8_split)sp, &l);
            uint64_t hist[256] = {0};
            for (uint64_t i = 0; i < n; i++)
                hist[(load_el(x, i, ecf8_dtype_size(d)) >> l.symbol_shift) & ((1u << l.symbol_bits) - 1)]++;
            for (uint64_t chunk_rows = 1; chunk_rows <= 7; chunk_rows += 3) {
                ecf8_stream s = {.dtype = d, .split = (ecf8_split)sp, .n_symbols = 1u << l.symbol_bits,
                                 .n_elements = n, .rows = rows, .cols = cols, .chunk_rows = chunk_rows,
                                 .chunk_cols = 1};
                s.n_chunks = (rows + chunk_rows - 1) / chunk_rows;
                assert_int_equal(ecf8_codebook_build(hist, s.n_symbols, 11, s.lengths), ECF8_OK);
                unsigned used = 0;
                for (unsigned i = 0; i < s.n_symbols; i++) {
                    used += hist[i] != 0;
                    if (s.lengths[i] > s.code_bits) s.code_bits = s.lengths[i];
                }
                if (used < 2) s.code_bits = 0;
                uint8_t *payload;
                size_t pb = ref_encode(&s, x, &payload);
                ecf8_stream p;
                uint64_t coded = pb - (s.n_symbols / 2 + 7) / 8 * 8 - 8 * (s.n_chunks + 1);
                assert_int_equal(stream_from_payload(d, (ecf8_split)sp, s.code_bits, rows, cols,
                                                          chunk_rows, 1, coded, payload, pb, &p),
                                 ECF8_OK);
                size_t bytes = (size_t)n * ecf8_dtype_size(d);
                uint8_t *out = malloc(bytes);
                assert_int_equal(ecf8_stream_decode(&p, out, bytes, 0), ECF8_OK);
                assert_memory_equal(out, x, bytes);
                memset(out, 0, bytes);
                assert_int_equal(ecf8_stream_decode_reference(&p, out, bytes), ECF8_OK);
                assert_memory_equal(out, x, bytes);
                free(out);
                free(payload);
            }
            free(x);
        }
}

static void test_odd_lengths(void **state)
{
    (void)state;
    const uint64_t ns[] = {2, 3, 5, 7, 9, 13, 31, 63, 65, 127, 129, 255, 257, 1023, 1025,
                           4095, 4097, 8191, 12345, 20001};
    for (size_t di = 0; di < 4; di++) {
        uint8_t *x = tu_make_weights(DTYPES[di], 20001, 40 + di);
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
            for (size_t sp = 0; sp < 3; sp++) {
                roundtrip(DTYPES[di], x, 1, ns[i], (params){SPLITS[sp], 0, 0, 0});
                roundtrip(DTYPES[di], x, ns[i], 1, (params){SPLITS[sp], 0, 0, 0});
                if (ns[i] > 1000) roundtrip(DTYPES[di], x, 3, ns[i] / 3, (params){SPLITS[sp], 0, 777, 0});
            }
        free(x);
    }
}

/* Rows longer than the chunk target: 64-aligned row segments. */
static void test_segment_chunks(void **state)
{
    (void)state;
    static const struct {
        uint64_t rows, cols;
        uint32_t chunk;
        uint64_t want_cols, want_chunks;
    } g[] = {
        {3, 10000, 4096, 3392, 9},  /* 3 segments of ceil(10000/3) -> 3392 */
        {2, 4097, 4096, 2112, 4},   /* 2 segments */
        {5, 8192, 4096, 4096, 10},  /* exact halves */
        {1, 100000, 4096, 4032, 25},
        {4, 1000, 100, 128, 32},    /* 10 segments of 100 -> 128, so 8 per row */
        {7, 130, 64, 64, 21},       /* 3 segments: 64, 64, 2 */
        {2, 65, 64, 64, 4},         /* 64 + 1 */
    };
    for (size_t k = 0; k < sizeof g / sizeof g[0]; k++) {
        uint64_t n = g[k].rows * g[k].cols;
        for (size_t di = 0; di < 4; di++) {
            uint8_t *x = tu_make_weights(DTYPES[di], (size_t)n, 60 + k);
            for (size_t sp = 0; sp < 2; sp++) {
                ecf8_encoded *e = encode(DTYPES[di], x, g[k].rows, g[k].cols,
                                         (params){SPLITS[sp], 0, g[k].chunk, 0}, ECF8_OK);
                const ecf8_stream *s = ecf8_encoded_stream(e);
                if (s) {
                    assert_int_equal(s->chunk_rows, 1);
                    assert_int_equal(s->chunk_cols, g[k].want_cols);
                    assert_int_equal(s->n_chunks, g[k].want_chunks);
                }
                ecf8_encoded_free(e);
                roundtrip(DTYPES[di], x, g[k].rows, g[k].cols, (params){SPLITS[sp], 0, g[k].chunk, 0});
            }
            free(x);
        }
    }
}

/* Rows shorter than the target: whole rows per chunk. */
static void test_row_chunks(void **state)
{
    (void)state;
    static const struct {
        uint64_t rows, cols;
        uint32_t chunk;
        uint64_t want_rows, want_chunks;
    } g[] = {
        {1000, 100, 4096, 40, 25}, {64, 4096, 4096, 1, 64}, {50, 3000, 4096, 1, 50},
        {10, 7, 4096, 10, 1},      {333, 12, 100, 8, 42},   {5, 64, 64, 1, 5},
        {384, 384, 0, 10, 39},     /* default target */
    };
    for (size_t k = 0; k < sizeof g / sizeof g[0]; k++) {
        uint64_t n = g[k].rows * g[k].cols;
        for (size_t di = 0; di < 4; di++) {
            uint8_t *x = tu_make_weights(DTYPES[di], (size_t)n, 80 + k);
            for (size_t sp = 0; sp < 2; sp++) {
                ecf8_encoded *e = encode(DTYPES[di], x, g[k].rows, g[k].cols,
                                         (params){SPLITS[sp], 0, g[k].chunk, 0}, ECF8_OK);
                const ecf8_stream *s = ecf8_encoded_stream(e);
                if (s) {
                    assert_int_equal(s->chunk_cols, g[k].cols);
                    assert_int_equal(s->chunk_rows, g[k].want_rows);
                    assert_int_equal(s->n_chunks, g[k].want_chunks);
                }
                ecf8_encoded_free(e);
                roundtrip(DTYPES[di], x, g[k].rows, g[k].cols, (params){SPLITS[sp], 0, g[k].chunk, 0});
            }
            free(x);
        }
    }
}

/* Every dtype x split x code length limit x chunk target. */
static void test_dtype_split_matrix(void **state)
{
    (void)state;
    const uint32_t chunks[] = {64, 333, 4096, 65536};
    for (size_t di = 0; di < 4; di++) {
        ecf8_dtype d = DTYPES[di];
        uint64_t rows = 96, cols = 200;
        uint8_t *x = tu_make_weights(d, (size_t)(rows * cols), 500 + di);
        int coded[3] = {0};
        for (size_t sp = 0; sp < 3; sp++)
            for (unsigned mb = 1; mb <= ECF8_MAX_CODE_BITS; mb++)
                for (size_t c = 0; c < 4; c++) {
                    /* Feasible only when both splits' alphabets fit in
                     * max_bits (see test_max_bits_other_split). */
                    ecf8_compress_options o;
                    ecf8_compress_options_init(&o);
                    o.max_code_bits = mb, o.split = SPLITS[sp], o.chunk_elements = chunks[c];
                    ecf8_tensor_analysis an;
                    if (ecf8_tensor_analyze(d, x, rows, cols, &o, &an) != ECF8_OK) continue;
                    ecf8_split got = roundtrip(d, x, rows, cols, (params){SPLITS[sp], mb, chunks[c], (unsigned)c});
                    coded[sp] += got != ECF8_SPLIT_STORED;
                }
        for (size_t sp = 0; sp < 3; sp++) assert_true(coded[sp] > 0);
        free(x);
    }
}

/* One-symbol codes: the symbol costs no bits at all. */
static void test_one_symbol_streams(void **state)
{
    (void)state;
    size_t n = 5000;
    for (size_t di = 0; di < 4; di++) {
        ecf8_dtype d = DTYPES[di];
        unsigned w = ecf8_dtype_size(d);
        uint8_t *x = malloc(n * 2);
        uint64_t s = 9;
        /* Same exponent everywhere, sign and mantissa random. */
        for (size_t i = 0; i < n; i++) {
            uint64_t r = tu_rand(&s);
            if (d == ECF8_DTYPE_F8_E4M3) x[i] = (uint8_t)((r & 0x87) | 6 << 3);
            else if (d == ECF8_DTYPE_F8_E5M2) x[i] = (uint8_t)((r & 0x83) | 13 << 2);
            else if (d == ECF8_DTYPE_BF16) put16(x, i, (uint16_t)((r & 0x807F) | 120 << 7));
            else put16(x, i, (uint16_t)((r & 0x83FF) | 12 << 10));
        }
        ecf8_encoded *e = encode(d, x, 50, 100, (params){ECF8_SPLIT_EXPONENT, 0, 0, 0}, ECF8_OK);
        const ecf8_stream *st = ecf8_encoded_stream(e);
        assert_non_null(st);
        assert_int_equal(st->code_bits, 0);
        ecf8_encoded_free(e);
        roundtrip(d, x, 50, 100, (params){ECF8_SPLIT_EXPONENT, 0, 0, 0});
        roundtrip(d, x, 50, 100, (params){ECF8_SPLIT_AUTO, 0, 64, 0});
        /* A constant tensor. */
        for (size_t i = 0; i < n; i++) {
            if (w == 1) x[i] = 0xB9;
            else put16(x, i, 0xBC12);
        }
        for (size_t sp = 0; sp < 3; sp++) {
            ecf8_split got = roundtrip(d, x, 50, 100, (params){SPLITS[sp], 0, 0, 0});
            assert_int_not_equal(got, ECF8_SPLIT_STORED);
            e = encode(d, x, 50, 100, (params){SPLITS[sp], 0, 0, 0}, ECF8_OK);
            st = ecf8_encoded_stream(e);
            if (w == 1 && st->split == ECF8_SPLIT_BYTE) {
                assert_int_equal(st->code_bits, 0);
                assert_int_equal(st->coded_bytes, 8); /* nothing but the pad */
            }
            ecf8_encoded_free(e);
        }
        free(x);
    }
}

/* Large FP8 byte-split tensors take the two-symbol table path and the
 * pair-table paths in four ways; also every code length limit there. */
static void test_fast_paths(void **state)
{
    (void)state;
    size_t n = 300000;
    for (int k = 0; k < 2; k++) {
        ecf8_dtype d = k ? ECF8_DTYPE_F8_E5M2 : ECF8_DTYPE_F8_E4M3;
        uint8_t *x = tu_make_weights(d, n, 900 + k);
        const unsigned mbs[] = {8, 9, 10, 12, 13};
        for (size_t i = 0; i < 5; i++) {
            roundtrip(d, x, 600, 500, (params){ECF8_SPLIT_BYTE, mbs[i], 0, 0});
            roundtrip(d, x, 60, 5000, (params){ECF8_SPLIT_BYTE, mbs[i], 0, 0});  /* segments */
            roundtrip(d, x, 1, n, (params){ECF8_SPLIT_BYTE, mbs[i], 1u << 16, 0});
        }
        /* Few distinct bytes: short codes, long runs of pairs. */
        for (size_t i = 0; i < n; i++) x[i] = (uint8_t)(0x38 + (x[i] & 1) * (x[i] & 2 ? 1 : 8));
        roundtrip(d, x, 300, 1000, (params){ECF8_SPLIT_BYTE, 0, 0, 0});
        free(x);
    }
    for (size_t di = 2; di < 4; di++) {
        uint8_t *x = tu_make_weights(DTYPES[di], n, 950 + di);
        for (size_t sp = 0; sp < 2; sp++) roundtrip(DTYPES[di], x, 300, 1000, (params){SPLITS[sp], 0, 0, 0});
        free(x);
    }
}

/* The fast decoder runs up to six chunks side by side, in rounds of
 * nearly equal size per task of 24 chunks: chunk counts 1 to 9 (rounds of
 * 1 to 6 ways), 13, 25 (two tasks) and 31, with a shorter last chunk, on
 * tensors below and above the size that builds the FP8 pair table; FP8
 * exponent codes short enough for pair lookups (max_bits 8) and too long
 * for them (geometric exponents, 13-bit codes). */
static void test_way_schedules(void **state)
{
    (void)state;
    uint64_t rng = 77;
    const uint64_t chunk_counts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 25, 31};
    for (size_t di = 0; di < 4; di++) {
        size_t n = 512 * 243;
        uint8_t *x = tu_make_weights(DTYPES[di], n, 60 + di);
        for (size_t ki = 0; ki < sizeof chunk_counts / sizeof chunk_counts[0]; ki++)
            for (size_t sp = 0; sp < 2; sp++) {
                uint64_t k = chunk_counts[ki];
                roundtrip(DTYPES[di], x, 8 * (k - 1) + 3, 64, (params){SPLITS[sp], 0, 512, 0});
                roundtrip(DTYPES[di], x, 8 * (k - 1) + 3, 512, (params){SPLITS[sp], 0, 4096, 1});
                roundtrip(DTYPES[di], x, 8 * (k - 1) + 3, 512, (params){SPLITS[sp], 8, 4096, 1});
            }
        if (di < 2) {
            /* Exponent e with probability 2^-(e+1): codes up to the limit. */
            unsigned sh = di == 0 ? 3 : 2, eb = di == 0 ? 4 : 5;
            for (size_t i = 0; i < n; i++) {
                uint64_t r = tu_rand(&rng);
                unsigned e = (unsigned)__builtin_ctzll(r | 1ull << ((1u << eb) - 1));
                x[i] = (uint8_t)((r >> 40 & 1) << 7 | e << sh | (r >> 48 & ((1u << sh) - 1)));
            }
            for (uint64_t k = 1; k <= 13; k += 4)
                roundtrip(DTYPES[di], x, 8 * (k - 1) + 3, 512,
                          (params){ECF8_SPLIT_EXPONENT, 13, 4096, 1});
        }
        free(x);
    }
}

static void test_threads_identical(void **state)
{
    (void)state;
    for (size_t di = 0; di < 4; di++) {
        size_t n = di < 2 ? 400000 : 200000;
        uint8_t *x = tu_make_weights(DTYPES[di], n, 1000 + di);
        for (size_t sp = 0; sp < 3; sp++) {
            ecf8_encoded *ref = encode(DTYPES[di], x, n / 500, 500, (params){SPLITS[sp], 0, 0, 1}, ECF8_OK);
            size_t rb;
            const void *rp = ecf8_encoded_payload(ref, &rb);
            const unsigned threads[] = {2, 3, 8, 0};
            for (size_t t = 0; t < 4; t++) {
                ecf8_encoded *e = encode(DTYPES[di], x, n / 500, 500, (params){SPLITS[sp], 0, 0, threads[t]}, ECF8_OK);
                size_t b;
                const void *p = ecf8_encoded_payload(e, &b);
                assert_int_equal(b, rb);
                assert_memory_equal(p, rp, b);
                assert_int_equal(ecf8_encoded_split(e), ecf8_encoded_split(ref));
                ecf8_encoded_free(e);
            }
            ecf8_encoded_free(ref);
        }
        free(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_fp8_codes),
        cmocka_unit_test(test_all_16bit_codes),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_empty_and_one_element),
        cmocka_unit_test(test_tiny_chunks_by_hand),
        cmocka_unit_test(test_odd_lengths),
        cmocka_unit_test(test_segment_chunks),
        cmocka_unit_test(test_row_chunks),
        cmocka_unit_test(test_dtype_split_matrix),
        cmocka_unit_test(test_one_symbol_streams),
        cmocka_unit_test(test_fast_paths),
        cmocka_unit_test(test_way_schedules),
        cmocka_unit_test(test_threads_identical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
