/* test_golden.c - format compatibility: the committed version-1.0 to 1.3 files in
 * tests/data/golden/ (scripts/make_golden.py) must keep decoding to their
 * sources byte for byte, with the split they were written with. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const dtypes[] = {"f8_e4m3", "f8_e5m2", "bf16", "f16"};

static void check_golden(const char *dtype, const char *split_name, ecf8_split split)
{
    char name[64], src[64];
    snprintf(name, sizeof name, "golden/%s-%s.ecf8", dtype, split_name);
    snprintf(src, sizeof src, "golden/%s.safetensors", dtype);
    char ecf[4096], orig[4096];
    snprintf(ecf, sizeof ecf, "%s", tu_data_path(name));
    snprintf(orig, sizeof orig, "%s", tu_data_path(src));

    assert_int_equal(ecf8_verify_path(ecf, orig, 0), ECF8_OK);
    ecf8_file *f;
    assert_int_equal(ecf8_file_open(ecf, &f), ECF8_OK);
    size_t i;
    assert_int_equal(ecf8_file_find(f, "layer.weight", &i), ECF8_OK);
    ecf8_tensor_info t;
    assert_int_equal(ecf8_file_tensor(f, i, &t), ECF8_OK);
    assert_int_equal(t.split, split);
    assert_int_equal(t.stream.stream_layout, strstr(split_name, "v1.2") ? 1u : 0u);
    assert_int_equal(t.ndim, 2);
    assert_int_equal(t.shape[0], 16);
    assert_int_equal(t.shape[1], 1536);
    /* The reference decoder agrees with the fast one on the golden stream. */
    uint8_t *a = malloc(t.source_bytes), *b = malloc(t.source_bytes);
    assert_int_equal(ecf8_stream_decode(&t.stream, a, t.source_bytes, 1), ECF8_OK);
    assert_int_equal(ecf8_stream_decode_reference(&t.stream, b, t.source_bytes), ECF8_OK);
    assert_memory_equal(a, b, t.source_bytes);
    free(a);
    free(b);
    ecf8_file_close(f);
}

static void test_golden_exponent(void **state)
{
    (void)state;
    for (size_t d = 0; d < 4; d++) check_golden(dtypes[d], "exponent", ECF8_SPLIT_EXPONENT);
}

static void test_golden_byte(void **state)
{
    (void)state;
    for (size_t d = 0; d < 4; d++) check_golden(dtypes[d], "byte", ECF8_SPLIT_BYTE);
}

/* Format 1.1: the same streams behind a zstd-compressed index. */
static void test_golden_v1_1(void **state)
{
    (void)state;
    for (size_t d = 0; d < 4; d++) check_golden(dtypes[d], "byte-v1.1", ECF8_SPLIT_BYTE);
}

/* Format 1.2: stream layout 1 (lane streams), chunks of 1024 elements. */
static void test_golden_v1_2(void **state)
{
    (void)state;
    for (size_t d = 0; d < 4; d++) {
        check_golden(dtypes[d], "exponent-v1.2", ECF8_SPLIT_EXPONENT);
        check_golden(dtypes[d], "byte-v1.2", ECF8_SPLIT_BYTE);
    }
}

/* Format 1.3: dtypes.safetensors (FNUZ, packed FP4 in U8, E8M0 scales, I8)
 * with each split; a tensor without the forced split gets the one it has
 * (U8: byte), and a U8 tensor that does not shrink is stored with dtype
 * code 0, read back as U8. */
static void check_golden_v1_3(const char *split_name, unsigned stream_layout, const ecf8_split *want)
{
    static const char *const names[] = {"layer.weight", "emb.weight", "mlp.weight_packed",
                                         "mlp.weight_scale", "experts.down_blocks",
                                         "experts.down_scales", "q.weight", "noise"};
    static const ecf8_dtype dtypes_1_3[] = {ECF8_DTYPE_F8_E4M3FNUZ, ECF8_DTYPE_F8_E5M2FNUZ, ECF8_DTYPE_U8,
                                            ECF8_DTYPE_F8_E8M0, ECF8_DTYPE_U8, ECF8_DTYPE_U8,
                                            ECF8_DTYPE_I8, ECF8_DTYPE_U8};
    char name[64], ecf[4096], orig[4096];
    snprintf(name, sizeof name, "golden/dtypes-%s-v1.3.ecf8", split_name);
    snprintf(ecf, sizeof ecf, "%s", tu_data_path(name));
    snprintf(orig, sizeof orig, "%s", tu_data_path("golden/dtypes.safetensors"));
    assert_int_equal(ecf8_verify_path(ecf, orig, 0), ECF8_OK);
    ecf8_file *f;
    assert_int_equal(ecf8_file_open(ecf, &f), ECF8_OK);
    unsigned major, minor;
    ecf8_file_format_version(f, &major, &minor);
    assert_int_equal(major, 1);
    assert_int_equal(minor, 3);
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        size_t i;
        ecf8_tensor_info t;
        assert_int_equal(ecf8_file_find(f, names[k], &i), ECF8_OK);
        assert_int_equal(ecf8_file_tensor(f, i, &t), ECF8_OK);
        assert_int_equal(t.dtype, dtypes_1_3[k]);
        assert_int_equal(t.split, want[k]);
        if (t.split == ECF8_SPLIT_STORED) continue;
        assert_int_equal(t.stream.stream_layout, stream_layout);
        uint8_t *a = malloc(t.source_bytes), *b = malloc(t.source_bytes);
        assert_int_equal(ecf8_stream_decode(&t.stream, a, t.source_bytes, 1), ECF8_OK);
        assert_int_equal(ecf8_stream_decode_reference(&t.stream, b, t.source_bytes), ECF8_OK);
        assert_memory_equal(a, b, t.source_bytes);
        free(a);
        free(b);
    }
    ecf8_file_close(f);
}

static void test_golden_v1_3(void **state)
{
    (void)state;
    const ecf8_split S = ECF8_SPLIT_STORED, E = ECF8_SPLIT_EXPONENT, B = ECF8_SPLIT_BYTE;
    /* layer, emb, weight_packed, weight_scale, down_blocks, down_scales, q, noise */
    const ecf8_split auto_[] = {B, E, B, B, B, S, B, S};
    const ecf8_split exponent[] = {E, E, B, B, B, S, B, S};
    const ecf8_split byte_lanes[] = {B, B, S, B, B, S, B, S};
    check_golden_v1_3("auto", 0, auto_);
    check_golden_v1_3("exponent", 0, exponent);
    check_golden_v1_3("byte", 1, byte_lanes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_v1_3),
        cmocka_unit_test(test_golden_exponent),
        cmocka_unit_test(test_golden_byte),
        cmocka_unit_test(test_golden_v1_1),
        cmocka_unit_test(test_golden_v1_2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
