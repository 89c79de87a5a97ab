/* test_cl_device.c - ecf8_cl_device_describe (the public device facts of
 * `ecf8 devices`): the same facts as the kernels' internal caps, struct_size
 * honoured (nothing written past it), bad arguments refused. */
#include "testutil_cl.h"

#include "opencl/decode_plan.h"
#include "opencl/runtime.h"

#include <stddef.h>

static void test_matches_caps(void **state)
{
    (void)state;
    NEED_DEVICE();
    ecf8_cl_device_info info = {.struct_size = sizeof info};
    ecf8_cl_device_caps caps;
    assert_int_equal(ecf8_cl_device_describe(g_dev, &info), ECF8_OK);
    assert_int_equal(ecf8_cl_device_caps_get(g_dev, &caps), ECF8_OK);
    assert_int_equal(info.struct_size, sizeof info);
    assert_string_equal(info.name, caps.name);
    assert_string_equal(info.vendor, caps.vendor);
    assert_string_equal(info.version, caps.version);
    assert_string_equal(info.driver, caps.driver);
    assert_true(info.name[0]);
    assert_int_equal(info.type, caps.type);
    assert_int_equal(info.global_mem_bytes, caps.global_mem_bytes);
    assert_int_equal(info.local_mem_bytes, caps.local_mem_bytes);
    assert_int_equal(info.max_work_group, caps.max_work_group);
    assert_int_equal(info.compute_units, caps.compute_units);
    assert_int_equal(info.has_fp16, caps.has_fp16);
    assert_int_equal(info.has_subgroups, caps.has_subgroups);
    assert_int_equal(info.is_cpu, caps.is_cpu);
    assert_int_equal(info.vector_bits, caps.vector_bits);
    assert_int_equal(info.decode_vector_lanes, ecf8_cl_decode_vector_lanes(&caps));
    /* PoCL on x86-64 hosts: 256-bit vectors at least (AVX2) */
    if (info.is_cpu && info.vector_bits >= 256)
        assert_int_equal(info.decode_vector_lanes, info.vector_bits >= 512 ? 16 : 8);
}

/* A caller built against a shorter struct: only its fields are written. */
static void test_short_struct(void **state)
{
    (void)state;
    NEED_DEVICE();
    union {
        ecf8_cl_device_info info;
        unsigned char bytes[sizeof(ecf8_cl_device_info)];
    } u;
    memset(&u, 0xA5, sizeof u);
    size_t n = offsetof(ecf8_cl_device_info, type);
    u.info.struct_size = n;
    assert_int_equal(ecf8_cl_device_describe(g_dev, &u.info), ECF8_OK);
    assert_int_equal(u.info.struct_size, n);
    assert_true(u.info.name[0]);
    for (size_t i = n; i < sizeof u; i++) assert_int_equal(u.bytes[i], 0xA5);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    NEED_DEVICE();
    ecf8_cl_device_info info = {.struct_size = sizeof info};
    assert_int_equal(ecf8_cl_device_describe(NULL, &info), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_device_describe(g_dev, NULL), ECF8_ERR_ARGUMENT);
    info.struct_size = offsetof(ecf8_cl_device_info, type) - 1;
    assert_int_equal(ecf8_cl_device_describe(g_dev, &info), ECF8_ERR_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_caps),
        cmocka_unit_test(test_short_struct),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
