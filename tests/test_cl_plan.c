/* test_cl_plan.c - the decode plan (src/opencl/decode_plan.c) as a pure
 * function of device capabilities and stream, without a device: vector
 * widths follow the device's registers, never the tensor alone. */
#include "testutil.h"

#include "opencl/decode_plan.h"

#include <stdio.h>
#include <string.h>

static uint64_t g_offsets[2001];

/* A stream of `chunks` row chunks of 4096 FP8 (or BF16) elements. */
static ecf8_stream stream_of(ecf8_dtype dtype, uint64_t chunks, unsigned code_bits)
{
    for (size_t i = 0; i < 2001; i++) g_offsets[i] = i * 3000;
    ecf8_stream s = {.dtype = dtype, .split = ECF8_SPLIT_BYTE, .code_bits = code_bits,
                     .n_symbols = 256, .n_elements = chunks * 4096, .rows = chunks, .cols = 4096,
                     .chunk_rows = 1, .chunk_cols = 4096, .n_chunks = chunks,
                     .coded_bytes = g_offsets[chunks] + 8, .chunk_offsets = g_offsets};
    return s;
}

static ecf8_cl_device_caps cpu(unsigned vector_bits)
{
    ecf8_cl_device_caps c = {.type = CL_DEVICE_TYPE_CPU, .compute_units = 2, .is_cpu = 1,
                             .vector_bits = vector_bits};
    return c;
}

static int option(const ecf8_cl_decode_plan *p, ecf8_cl_decode_kernel k, const char *name)
{
    const char *at = strstr(p->options[k], name);
    return at ? atoi(at + strlen(name)) : -1;
}

/* The lanes per vector the CPU kernels use: from the device's reported
 * width, 16 only with 512-bit vectors, none on GPUs. */
static void decode_vector_lanes_follow_the_device(void **state)
{
    (void)state;
    ecf8_cl_device_caps c = cpu(128);
    assert_int_equal(ecf8_cl_decode_vector_lanes(&c), 0);
    c = cpu(256);
    assert_int_equal(ecf8_cl_decode_vector_lanes(&c), 8);
    c = cpu(512);
    assert_int_equal(ecf8_cl_decode_vector_lanes(&c), 16);
    ecf8_cl_device_caps gpu = {.type = CL_DEVICE_TYPE_GPU, .compute_units = 132, .vector_bits = 512};
    assert_int_equal(ecf8_cl_decode_vector_lanes(&gpu), 0);
}

/* Every chunk count on an AVX2 host: 8-lane vectors and the word reader
 * (16 lanes and ulong8 windows would be emulated there); on AVX-512 the
 * 16-lane shape where the lanes pack as tightly. */
static void vector_width_follows_the_device(void **state)
{
    (void)state;
    bool saw16 = false;
    for (uint64_t chunks = 1; chunks <= 2000; chunks += chunks < 100 ? 1 : 97) {
        ecf8_stream s = stream_of(ECF8_DTYPE_F8_E4M3, chunks, 9);
        ecf8_cl_device_caps avx2 = cpu(256), avx512 = cpu(512);
        ecf8_cl_decode_plan p;
        assert_int_equal(ecf8_cl_decode_plan_make(&avx2, &s, 1, NULL, &p), 0);
        assert_int_equal(p.vw, 8);
        assert_int_equal(p.reader, 0);
        if (p.lanes) {
            assert_int_equal(option(&p, ECF8_CL_DECODE_LANES, "-DECF8_VW="), 8);
            assert_int_equal(option(&p, ECF8_CL_DECODE_LANES, "-DECF8_READER="), 0);
        }
        /* Each kernel's program: the portable one always, the others
         * where planned. */
        assert_true(p.options[ECF8_CL_DECODE_PORTABLE][0] != '\0');
        assert_int_equal(p.options[ECF8_CL_DECODE_PAIRS][0] != '\0', p.pairs);
        assert_int_equal(p.options[ECF8_CL_DECODE_LANES][0] != '\0', p.lanes);
        assert_int_equal(option(&p, ECF8_CL_DECODE_PORTABLE, "-DECF8_VW="), -1);
        assert_true(p.nsets >= 1 && p.nsets * p.vw <= 24);
        assert_int_equal(p.pairs, chunks < 16);
        assert_int_equal(p.lanes, chunks >= 16);
        assert_false(p.coop);
        assert_int_equal(ecf8_cl_decode_plan_make(&avx512, &s, 1, NULL, &p), 0);
        assert_true(p.vw == 8 || p.vw == 16);
        assert_true(p.nsets * p.vw <= 48);
        saw16 |= p.vw == 16;
    }
    assert_true(saw16);
}

/* A tuning asking for 16 lanes or qword windows cannot exceed the device. */
static void tuning_cannot_exceed_the_device(void **state)
{
    (void)state;
    ecf8_stream s = stream_of(ECF8_DTYPE_BF16, 64, 7);
    ecf8_cl_device_caps avx2 = cpu(256);
    ecf8_cl_tuning t = {.struct_size = sizeof t, .decode_vw = 16, .decode_reader = 2, .decode_nsets = 4};
    ecf8_cl_decode_plan p;
    assert_int_equal(ecf8_cl_decode_plan_make(&avx2, &s, 2, &t, &p), 0);
    assert_int_equal(p.vw, 8);
    assert_int_equal(p.reader, 0);
    assert_int_equal(p.nsets, 4);
    assert_true(p.lanes);
}

/* CPUs without 256-bit vectors and GPUs get no lanes kernel in the
 * program; GPUs the cooperative kernel, constant tensors the portable. */
static void narrow_cpus_and_gpus_have_no_lanes_kernel(void **state)
{
    (void)state;
    ecf8_stream s = stream_of(ECF8_DTYPE_F8_E5M2, 200, 11);
    ecf8_cl_device_caps sse = cpu(128);
    ecf8_cl_device_caps gpu = {.type = CL_DEVICE_TYPE_GPU, .compute_units = 132,
                               .vector_bits = 32};
    ecf8_cl_decode_plan p;
    assert_int_equal(ecf8_cl_decode_plan_make(&sse, &s, 1, NULL, &p), 0);
    assert_false(p.lanes);
    assert_int_equal(p.vw, 0);
    assert_string_equal(p.options[ECF8_CL_DECODE_LANES], "");
    assert_int_equal(ecf8_cl_decode_plan_make(&gpu, &s, 1, NULL, &p), 0);
    assert_true(p.coop);
    assert_false(p.lanes || p.pairs);
    assert_int_equal(p.vw, 0);
    assert_int_equal(option(&p, ECF8_CL_DECODE_COOP, "-DECF8_COOP_WG="), 64);
    assert_int_equal(p.wg, 64);
    s = stream_of(ECF8_DTYPE_F8_E5M2, 200, 0);
    s.split = ECF8_SPLIT_BYTE;
    assert_int_equal(ecf8_cl_decode_plan_make(&gpu, &s, 1, NULL, &p), 0);
    assert_false(p.coop);
}

/* Small tensors share the longest code class: one program per layout. */
static void small_tensors_share_a_program(void **state)
{
    (void)state;
    ecf8_cl_device_caps avx2 = cpu(256);
    ecf8_cl_decode_plan first;
    for (unsigned bits = 1; bits <= ECF8_MAX_CODE_BITS; bits++) {
        ecf8_stream s = stream_of(ECF8_DTYPE_F8_E4M3, 2, bits);
        ecf8_cl_decode_plan p;
        assert_int_equal(ecf8_cl_decode_plan_make(&avx2, &s, 1, NULL, &p), 0);
        if (bits == 1) first = p;
        for (int k = 0; k < ECF8_CL_DECODE_KERNELS; k++)
            assert_string_equal(p.options[k], first.options[k]);
    }
}

/* Stream layout 1: the streams kernel alone, whatever the tuning's
 * kernel; a chunk per work-item in the device's widest vectors on CPUs
 * (never 16 lanes without AVX-512), one lane per work-item on GPUs and
 * narrow CPUs; code length classes by the code bits alone (the raw bits
 * are in the plane). */
static void layout_1_plans_the_streams_kernel(void **state)
{
    (void)state;
    ecf8_cl_device_caps avx2 = cpu(256), avx512 = cpu(512), sse = cpu(128);
    ecf8_cl_device_caps gpu = {.type = CL_DEVICE_TYPE_GPU, .compute_units = 132, .vector_bits = 32};
    const ecf8_cl_tuning coop = {.struct_size = sizeof coop, .decode_kernel = "coop",
                                 .decode_vw = 16};
    const struct {
        const ecf8_cl_device_caps *caps;
        const ecf8_cl_tuning *tuning;
        unsigned vw, nsets, reader;
    } cases[] = {{&avx2, NULL, 8, 4, 1}, {&avx2, &coop, 8, 4, 1}, {&avx512, NULL, 16, 2, 1},
                 {&sse, NULL, 1, 1, 0},  {&gpu, NULL, 1, 1, 0},   {&gpu, &coop, 1, 1, 0}};
    for (uint64_t chunks = 1; chunks <= 1000; chunks += 37)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            ecf8_stream s = stream_of(ECF8_DTYPE_F8_E4M3, chunks, 9);
            s.stream_layout = ECF8_STREAM_LAYOUT_LANES;
            s.split = ECF8_SPLIT_EXPONENT;
            s.n_symbols = 16;
            ecf8_cl_decode_plan p;
            assert_int_equal(ecf8_cl_decode_plan_make(cases[i].caps, &s, 1, cases[i].tuning, &p), 0);
            assert_true(p.streams);
            assert_false(p.lanes || p.pairs || p.coop);
            for (int k = 0; k < ECF8_CL_DECODE_KERNELS; k++)
                assert_int_equal(p.options[k][0] != '\0', k == ECF8_CL_DECODE_STREAMS);
            assert_int_equal(p.streams_vw, cases[i].vw);
            assert_int_equal(p.streams_nsets, cases[i].nsets);
            assert_int_equal(option(&p, ECF8_CL_DECODE_STREAMS, "-DECF8_VW="), (int)cases[i].vw);
            assert_int_equal(option(&p, ECF8_CL_DECODE_STREAMS, "-DECF8_NSETS="), (int)cases[i].nsets);
            assert_int_equal(option(&p, ECF8_CL_DECODE_STREAMS, "-DECF8_READER="), (int)cases[i].reader);
            /* 9-bit codes (and 4 raw bits) share the class of 9 and 10 bits:
             * three symbols per 32-bit window. */
            if (chunks * 4096 > 16384)
                assert_int_equal(option(&p, ECF8_CL_DECODE_STREAMS, "-DECF8_CODE_BITS="), 10);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decode_vector_lanes_follow_the_device),
        cmocka_unit_test(vector_width_follows_the_device),
        cmocka_unit_test(tuning_cannot_exceed_the_device),
        cmocka_unit_test(narrow_cpus_and_gpus_have_no_lanes_kernel),
        cmocka_unit_test(small_tensors_share_a_program),
        cmocka_unit_test(layout_1_plans_the_streams_kernel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
