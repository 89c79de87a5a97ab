/* test_lanes.c - stream layout 1, lane streams (docs/FORMAT.md 4.4): round
 * trips of every fixture and dtype/split in both layouts through the fast
 * decoder (both instruction-set instances) and the reference decoder, conversion 0 -> 1 -> 0 byte for byte, and the
 * corruptions a lane table can carry. */
#include "stream_decode.h" /* ecf8_stream_decode_isa */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const FIXTURES[] = {"minilm-slice-e4m3.safetensors", "minilm-slice-e5m2.safetensors",
                                       "minilm-slice-bf16.safetensors"};
static const ecf8_split SPLITS[] = {ECF8_SPLIT_EXPONENT, ECF8_SPLIT_BYTE};

/* Every coded tensor of the container: fast and reference decoder agree. */
static void check_decoders_agree(const char *path, unsigned want_layout)
{
    ecf8_file *f;
    assert_int_equal(ecf8_file_open(path, &f), ECF8_OK);
    for (size_t i = 0; i < ecf8_file_tensor_count(f); i++) {
        ecf8_tensor_info t;
        assert_int_equal(ecf8_file_tensor(f, i, &t), ECF8_OK);
        if (t.split == ECF8_SPLIT_STORED) continue;
        assert_int_equal(t.stream.stream_layout, want_layout);
        uint8_t *a = malloc(t.source_bytes), *b = malloc(t.source_bytes);
        assert_int_equal(ecf8_stream_decode(&t.stream, a, t.source_bytes, 2), ECF8_OK);
        assert_int_equal(ecf8_stream_decode_reference(&t.stream, b, t.source_bytes), ECF8_OK);
        assert_memory_equal(a, b, t.source_bytes);
        /* The baseline instruction set's instance too. */
        assert_int_equal(ecf8_stream_decode_isa(&t.stream, a, t.source_bytes, 1, true), ECF8_OK);
        assert_memory_equal(a, b, t.source_bytes);
        assert_int_equal(ecf8_checksum64(a, t.source_bytes), t.checksum);
        free(a);
        free(b);
    }
    ecf8_file_close(f);
}

static void test_fixture_round_trips(void **state)
{
    (void)state;
    const char *dir = tu_temp_dir();
    for (size_t fx = 0; fx < sizeof FIXTURES / sizeof *FIXTURES; fx++)
        for (unsigned layout = 0; layout <= 1; layout++)
            for (size_t sp = 0; sp < 2; sp++) {
                ecf8_compress_options o;
                ecf8_compress_options_init(&o);
                o.stream_layout = layout;
                o.split = SPLITS[sp];
                const char *ecf = tu_path(dir, "x.ecf8"), *out = tu_path(dir, "x.safetensors");
                if (tu_compress_over(tu_data_path(FIXTURES[fx]), ecf, &o)) fail_msg("%s", ecf8_last_error());
                assert_int_equal(tu_decompress_over(ecf, out, 2), ECF8_OK);
                assert_true(tu_files_equal(out, tu_data_path(FIXTURES[fx])));
                check_decoders_agree(ecf, layout);
                size_t size;
                uint8_t *img = tu_read_file(ecf, &size);
                assert_int_equal(img[10], layout ? 2 : 1); /* version_minor */
                assert_int_equal(img[12], layout ? 3 : 1); /* flags: zstd index, lane streams */
                free(img);
            }
}

/* Synthetic tensors of every dtype and split, sizes that leave partial
 * words and lanes without words, chunk targets from tiny to the cap. */
static void test_all_dtypes_odd_shapes(void **state)
{
    (void)state;
    static const ecf8_dtype dtypes[] = {ECF8_DTYPE_F8_E4M3, ECF8_DTYPE_F8_E5M2, ECF8_DTYPE_BF16,
                                        ECF8_DTYPE_F16};
    static const uint64_t shapes[][2] = {{1, 1}, {1, 3}, {7, 13}, {3, 129}, {64, 1000}, {2, 70001}, {300, 300}};
    static const uint32_t chunks[] = {64, 1000, 0, 1u << 20};
    uint64_t seed = 7;
    for (size_t d = 0; d < 4; d++)
        for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++)
            for (size_t ch = 0; ch < 4; ch++)
                for (size_t sp = 0; sp < 2; sp++) {
                    uint64_t n = shapes[sh][0] * shapes[sh][1];
                    unsigned w = ecf8_dtype_size(dtypes[d]);
                    uint8_t *data = malloc(n * w), *a = malloc(n * w), *b = malloc(n * w);
                    tu_fill_weights_e4m3(data, n * w, seed++);
                    if (sh == 2) memset(data, 0x38, n * w); /* one symbol: no code bits */
                    ecf8_compress_options o;
                    ecf8_compress_options_init(&o);
                    o.stream_layout = 1, o.split = SPLITS[sp], o.chunk_elements = chunks[ch];
                    ecf8_encoded *enc;
                    assert_int_equal(ecf8_tensor_encode(dtypes[d], data, shapes[sh][0], shapes[sh][1], &o, &enc),
                                     ECF8_OK);
                    const ecf8_stream *s = ecf8_encoded_stream(enc);
                    if (s) {
                        assert_int_equal(s->stream_layout, 1);
                        assert_true(s->chunk_rows * s->chunk_cols <= ECF8_MAX_LANE_CHUNK_ELEMENTS);
                        assert_int_equal(ecf8_stream_validate(s), ECF8_OK);
                        assert_int_equal(ecf8_stream_decode(s, a, n * w, 2), ECF8_OK);
                        assert_memory_equal(a, data, n * w);
                        assert_int_equal(ecf8_stream_decode_isa(s, a, n * w, 1, true), ECF8_OK);
                        assert_memory_equal(a, data, n * w);
                        assert_int_equal(ecf8_stream_decode_reference(s, b, n * w), ECF8_OK);
                        assert_memory_equal(b, data, n * w);
                        /* The same code lengths as layout 0. */
                        ecf8_encoded *enc0;
                        o.stream_layout = 0;
                        assert_int_equal(ecf8_tensor_encode(dtypes[d], data, shapes[sh][0], shapes[sh][1], &o, &enc0),
                                         ECF8_OK);
                        if (ecf8_encoded_stream(enc0) && ecf8_encoded_split(enc0) == ecf8_encoded_split(enc))
                            assert_memory_equal(ecf8_encoded_stream(enc0)->lengths, s->lengths, 256);
                        ecf8_encoded_free(enc0);
                    }
                    ecf8_encoded_free(enc);
                    free(data);
                    free(a);
                    free(b);
                }
}

static void test_convert_0_1_0(void **state)
{
    (void)state;
    const char *dir = tu_temp_dir();
    for (int plain = 0; plain <= 1; plain++)
        for (size_t fx = 0; fx < sizeof FIXTURES / sizeof *FIXTURES; fx++) {
            ecf8_compress_options o;
            ecf8_compress_options_init(&o);
            o.plain_index = plain;
            char a[4096], b[4096], c[4096], d[4096];
            snprintf(a, sizeof a, "%s", tu_path(dir, "a.ecf8"));
            snprintf(b, sizeof b, "%s", tu_path(dir, "b.ecf8"));
            snprintf(c, sizeof c, "%s", tu_path(dir, "c.ecf8"));
            snprintf(d, sizeof d, "%s", tu_path(dir, "d.ecf8"));
            assert_int_equal(tu_compress_over(tu_data_path(FIXTURES[fx]), a, &o), ECF8_OK);
            o.overwrite = 1;
            o.stream_layout = 1;
            assert_int_equal(ecf8_convert_path(a, b, &o), ECF8_OK);
            check_decoders_agree(b, 1);
            assert_int_equal(ecf8_verify_path(b, tu_data_path(FIXTURES[fx]), 0), ECF8_OK);
            /* convert 0 -> 1 is what compress --layout 1 writes */
            o.overwrite = 1;
            assert_int_equal(tu_compress_over(tu_data_path(FIXTURES[fx]), d, &o), ECF8_OK);
            assert_true(tu_files_equal(b, d));
            o.stream_layout = 0;
            assert_int_equal(ecf8_convert_path(b, c, &o), ECF8_OK);
            assert_true(tu_files_equal(a, c));
            /* the output rules of compress: no overwrite without it */
            o.overwrite = 0;
            assert_int_equal(ecf8_convert_path(b, c, &o), ECF8_ERR_EXISTS);
        }
}

/* ---- corruption ------------------------------------------------------------ */
typedef struct mut_stream {
    ecf8_encoded *enc;
    ecf8_stream s;
    uint8_t *coded;
    const uint8_t *original; /* the encoder's coded bytes */
    uint64_t *offsets;
} mut_stream;

/* Bytes 0-127, the smaller of two equally likely: none more likely than
 * 1/64, so codes of 6 bits or more and no lookup of the fast decoder
 * yields three symbols (its BMI2 instance then reads the symbols and the
 * bits consumed from two tables, ecf8_lanes4_pairs_bmi2). */
static void fill_long_codes(uint8_t *out, size_t n)
{
    uint64_t x = 7;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        unsigned a = (unsigned)(x >> 57), b = (unsigned)(x >> 50) & 127;
        out[i] = (uint8_t)(a < b ? a : b);
    }
}

/* A layout-1 FP8 byte-split stream of 4 chunks in writable memory: trained
 * weights, or with long_codes the bytes of fill_long_codes. */
static void mut_make(mut_stream *m, bool long_codes)
{
    uint64_t n = 4 * 8192;
    uint8_t *data = malloc(n);
    if (long_codes) fill_long_codes(data, n);
    else tu_fill_weights_e4m3(data, n, 99);
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.stream_layout = 1, o.split = ECF8_SPLIT_BYTE;
    assert_int_equal(ecf8_tensor_encode(ECF8_DTYPE_F8_E4M3, data, 4, 8192, &o, &m->enc), ECF8_OK);
    free(data);
    m->s = *ecf8_encoded_stream(m->enc);
    assert_int_equal(m->s.n_chunks, 4);
    m->coded = malloc(m->s.coded_bytes);
    memcpy(m->coded, m->s.coded, m->s.coded_bytes);
    m->offsets = malloc((m->s.n_chunks + 1) * 8);
    memcpy(m->offsets, m->s.chunk_offsets, (m->s.n_chunks + 1) * 8);
    m->original = m->s.coded;
    m->s.coded = m->coded;
    m->s.chunk_offsets = m->offsets;
}

static void mut_free(mut_stream *m)
{
    ecf8_encoded_free(m->enc);
    free(m->coded);
    free(m->offsets);
}

/* Sets the bytes wholly inside lane `lane` of chunk c (36-byte table) to
 * 0xff. */
static void lane_fill_ones(mut_stream *m, uint64_t c, unsigned lane)
{
    uint8_t *rec = m->coded + m->offsets[c];
    unsigned base = rec[0] | rec[1] << 8, start = 0;
    assert_true(base != 0xffff);
    for (unsigned k = 0; k < lane; k++) start += base + rec[2 + k];
    unsigned end = start + base + rec[2 + lane];
    memset(rec + 36 + (start + 7) / 8, 0xff, end / 8 - (start + 7) / 8);
}

/* Validation passes and both decoders answer CORRUPT with `what`. */
static void expect_decode_corrupt(const ecf8_stream *s, const char *what)
{
    uint8_t *out = malloc(s->n_elements);
    assert_int_equal(ecf8_stream_validate(s), ECF8_OK);
    assert_int_equal(ecf8_stream_decode(s, out, s->n_elements, 1), ECF8_ERR_CORRUPT);
    if (!strstr(ecf8_last_error(), what)) fail_msg("fast: '%s' lacks '%s'", ecf8_last_error(), what);
    assert_int_equal(ecf8_stream_decode_reference(s, out, s->n_elements), ECF8_ERR_CORRUPT);
    if (!strstr(ecf8_last_error(), what)) fail_msg("reference: '%s' lacks '%s'", ecf8_last_error(), what);
    free(out);
}

static void expect_invalid(const ecf8_stream *s, const char *what)
{
    assert_int_equal(ecf8_stream_validate(s), ECF8_ERR_CORRUPT);
    if (!strstr(ecf8_last_error(), what)) fail_msg("'%s' lacks '%s'", ecf8_last_error(), what);
}

static void test_lane_corruption(void **state)
{
    (void)state;
    mut_stream m;
    mut_make(&m, false);
    uint8_t *rec = m.coded + m.offsets[1]; /* chunk 1's lane table */
    assert_true(rec[0] != 0xff || rec[1] != 0xff);
    /* Bits moved from lane 4 to lane 3 (sizes still add up): lane 3 stops
     * short of its length (under-consumes), lane 4 starts mid-code. */
    rec[2 + 3] += 1, rec[2 + 4] -= 1;
    expect_decode_corrupt(&m.s, "chunk 1 lane 3");
    rec[2 + 3] -= 2, rec[2 + 4] += 2; /* lane 3 one bit short: over-consumes */
    expect_decode_corrupt(&m.s, "chunk 1 lane 3");
    rec[2 + 3] += 1, rec[2 + 4] -= 1;
    assert_int_equal(ecf8_stream_validate(&m.s), ECF8_OK);
    /* A lane of all ones decodes its symbols from the longest code and
     * runs on past its length: lane 0 into lane 1's bits, lane 31 of the
     * last chunk past the chunk's end, where the fast decoder stops it
     * before its loads leave the stream (ASan builds check). */
    lane_fill_ones(&m, 3, 31);
    expect_decode_corrupt(&m.s, "chunk 3 lane 31 ");
    memcpy(m.coded, m.original, m.s.coded_bytes);
    lane_fill_ones(&m, 2, 0);
    expect_decode_corrupt(&m.s, "chunk 2 lane 0 ");
    memcpy(m.coded, m.original, m.s.coded_bytes);
    /* Lengths that do not add up to the chunk. */
    rec[2 + 7] += 64;
    expect_invalid(&m.s, "chunk 1: lane table gives");
    rec[2 + 7] -= 64;
    /* A lane longer than its symbols can take (base raised). */
    unsigned base = rec[0] | rec[1] << 8;
    rec[0] = 0xfe, rec[1] = 0xfe;
    expect_invalid(&m.s, "chunk 1 lane 0:");
    rec[0] = (uint8_t)base, rec[1] = (uint8_t)(base >> 8);
    /* Padding of the table. */
    rec[35] = 1;
    expect_invalid(&m.s, "lane table padding");
    rec[35] = 0;
    /* Offsets past the payload, or not on a 4-byte boundary. */
    uint64_t keep = m.offsets[2];
    m.offsets[2] = m.s.coded_bytes;
    expect_invalid(&m.s, "chunk 1 spans bytes");
    m.offsets[2] = keep + 2;
    expect_invalid(&m.s, "not on 4-byte boundaries");
    m.offsets[2] = keep;
    assert_int_equal(ecf8_stream_validate(&m.s), ECF8_OK);
    /* An unknown layout. */
    m.s.stream_layout = 2;
    expect_invalid(&m.s, "unknown stream layout 2");
    mut_free(&m);
}

/* The escape form (32 u16 lengths) decodes, and its sizes are checked. */
static void test_escape_table(void **state)
{
    (void)state;
    /* Lanes of very unequal length: long codes in lane 0's words only. */
    uint64_t n = 8192;
    uint8_t *data = malloc(n), *out = malloc(n);
    for (uint64_t i = 0; i < n; i++) data[i] = (i / 4) % 32 == 0 ? (uint8_t)(i * 37) : 0x38;
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.stream_layout = 1, o.split = ECF8_SPLIT_BYTE;
    ecf8_encoded *enc;
    assert_int_equal(ecf8_tensor_encode(ECF8_DTYPE_F8_E4M3, data, 1, n, &o, &enc), ECF8_OK);
    const ecf8_stream *s = ecf8_encoded_stream(enc);
    assert_non_null(s);
    assert_int_equal(s->coded[0], 0xff);
    assert_int_equal(s->coded[1], 0xff);
    assert_int_equal(ecf8_stream_decode(s, out, n, 1), ECF8_OK);
    assert_memory_equal(out, data, n);
    assert_int_equal(ecf8_stream_decode_reference(s, out, n), ECF8_OK);
    assert_memory_equal(out, data, n);
    ecf8_encoded_free(enc);
    free(data);
    free(out);
}

/* Codes of 6 bits or more (fill_long_codes): both decoders' instances
 * agree with the data, and a lane that stops short or runs over is found
 * as with three symbols a lookup. */
static void test_pair_entries(void **state)
{
    (void)state;
    mut_stream m;
    mut_make(&m, true);
    uint64_t n = m.s.n_elements;
    uint8_t *data = malloc(n), *a = malloc(n);
    fill_long_codes(data, n);
    for (int portable = 0; portable <= 1; portable++) {
        memset(a, 0, n);
        assert_int_equal(ecf8_stream_decode_isa(&m.s, a, n, 2, portable), ECF8_OK);
        assert_memory_equal(a, data, n);
    }
    uint8_t *rec = m.coded + m.offsets[2]; /* chunk 2's lane table */
    rec[2 + 5] += 1, rec[2 + 6] -= 1;
    expect_decode_corrupt(&m.s, "chunk 2 lane 5");
    rec[2 + 5] -= 2, rec[2 + 6] += 2;
    expect_decode_corrupt(&m.s, "chunk 2 lane 5");
    rec[2 + 5] += 1, rec[2 + 6] -= 1;
    lane_fill_ones(&m, 3, 31);
    expect_decode_corrupt(&m.s, "chunk 3 lane 31 ");
    mut_free(&m);
    free(data);
    free(a);
}

/* An output of 16 MiB or more (the byte split's transposes then write
 * with non-temporal stores where the output is 16-byte aligned): rows of
 * 4097 elements leave chunks that start off that alignment, and the whole
 * output is decoded once more one byte off it. */
static void test_large_output(void **state)
{
    (void)state;
    const uint64_t rows = 4096, cols = 4097, n = rows * cols;
    uint8_t *data = malloc(n), *a = malloc(n + 1);
    tu_fill_weights_e4m3(data, n, 5);
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.stream_layout = 1, o.split = ECF8_SPLIT_BYTE;
    ecf8_encoded *enc;
    assert_int_equal(ecf8_tensor_encode(ECF8_DTYPE_F8_E4M3, data, rows, cols, &o, &enc), ECF8_OK);
    const ecf8_stream *s = ecf8_encoded_stream(enc);
    assert_non_null(s);
    assert_int_equal(s->stream_layout, 1);
    for (int portable = 0; portable <= 1; portable++)
        for (size_t off = 0; off <= 1; off++) {
            memset(a, 0, n + 1);
            assert_int_equal(ecf8_stream_decode_isa(s, a + off, n, 2, portable), ECF8_OK);
            assert_memory_equal(a + off, data, n);
        }
    ecf8_encoded_free(enc);
    free(data);
    free(a);
}

/* Header flag bit 1 and entry byte 29 must agree. */
static void test_header_flag(void **state)
{
    (void)state;
    const char *dir = tu_temp_dir();
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.stream_layout = 1;
    o.plain_index = 1; /* entries readable in place */
    const char *ecf = tu_path(dir, "l.ecf8");
    assert_int_equal(tu_compress_over(tu_data_path(FIXTURES[0]), ecf, &o), ECF8_OK);
    size_t size;
    uint8_t *img = tu_read_file(ecf, &size);
    ecf8_file *f;
    img[12] &= (uint8_t)~2; /* flag cleared */
    tu_ecf8_rehash(img, size);
    assert_int_equal(ecf8_file_open_memory(img, size, &f), ECF8_ERR_CORRUPT);
    assert_non_null(strstr(ecf8_last_error(), "does not announce lane streams"));
    img[12] |= 8; /* an unknown feature (bit 2 is format 1.3) */
    tu_ecf8_rehash(img, size);
    assert_int_equal(ecf8_file_open_memory(img, size, &f), ECF8_ERR_VERSION);
    assert_non_null(strstr(ecf8_last_error(), "unknown header flags"));
    free(img);
    /* The flag on a file without layout-1 tensors. */
    o.stream_layout = 0;
    assert_int_equal(tu_compress_over(tu_data_path(FIXTURES[0]), ecf, &o), ECF8_OK);
    img = tu_read_file(ecf, &size);
    img[12] |= 2;
    tu_ecf8_rehash(img, size);
    assert_int_equal(ecf8_file_open_memory(img, size, &f), ECF8_ERR_CORRUPT);
    assert_non_null(strstr(ecf8_last_error(), "no tensor has stream layout 1"));
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_round_trips), cmocka_unit_test(test_all_dtypes_odd_shapes),
        cmocka_unit_test(test_convert_0_1_0),       cmocka_unit_test(test_lane_corruption),
        cmocka_unit_test(test_escape_table),        cmocka_unit_test(test_header_flag),
        cmocka_unit_test(test_large_output),        cmocka_unit_test(test_pair_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
