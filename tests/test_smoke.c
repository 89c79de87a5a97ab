/* test_smoke.c - the codec round-trips a real slice (placeholder until the
 * full suites land). */
#include "testutil.h"

#include <stdlib.h>

static void test_roundtrip_slice(void **state)
{
    (void)state;
    const char *dir = tu_temp_dir();
    assert_non_null(dir);
    const char *src = tu_data_path("minilm-slice-e4m3.safetensors");
    const char *ecf = tu_path(dir, "a.ecf8"), *out = tu_path(dir, "a.safetensors");
    assert_int_equal(ecf8_compress_path(src, ecf, NULL), ECF8_OK);
    assert_int_equal(ecf8_decompress_path(ecf, out, 0), ECF8_OK);
    assert_int_equal(ecf8_verify_path(ecf, src, 0), ECF8_OK);
    size_t a, b;
    uint8_t *x = tu_read_file(src, &a), *y = tu_read_file(out, &b);
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(a, b);
    assert_memory_equal(x, y, a);
    free(x);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_roundtrip_slice)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
