/* test_helpers.c - the helpers of ecf8.h's "helpers" section: every FP8,
 * BF16 and F16 code to float against an ldexp reference derived here, the
 * scale naming table on a real checkpoint slice and on synthetic files
 * (each FP8 checkpoint family's names and scale forms, two or three at
 * once, none), and ecf8_encoded_tensor_info
 * against what a container reports for the same tensor. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- element values ---------------------------------------------------------------- */
static uint32_t bits_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* The value of a binary float code with `ebits` exponent and `mbits`
 * mantissa bits (IEEE layout, bias 2^(ebits-1) - 1), from its fields. */
static double reference(unsigned code, unsigned ebits, unsigned mbits, int *is_nan)
{
    unsigned bias = (1u << (ebits - 1)) - 1, e = code >> mbits & ((1u << ebits) - 1);
    unsigned m = code & ((1u << mbits) - 1), top = (1u << ebits) - 1;
    double sign = code >> (ebits + mbits) & 1 ? -1.0 : 1.0;
    *is_nan = 0;
    if (ebits == 4 && e == top && m == 7) { /* E4M3 fn: only S.1111.111 is special */
        *is_nan = 1;
        return NAN;
    }
    if (ebits != 4 && e == top) {
        *is_nan = m != 0;
        return m ? NAN : sign * INFINITY;
    }
    if (e == 0) return sign * ldexp((double)m, 1 - (int)bias - (int)mbits);
    return sign * ldexp((double)(m | 1u << mbits), (int)e - (int)bias - (int)mbits);
}

/* Every code of `dtype` (width 1 or 2 bytes), through both calls, at an
 * odd address: the value, the sign of zeros and NaNs, and the NaN bits. */
static void check_all_codes(ecf8_dtype dtype, unsigned ebits, unsigned mbits)
{
    unsigned width = ecf8_dtype_size(dtype), codes = 1u << (8 * width);
    uint8_t *buf = malloc((size_t)codes * width + 1), *data = buf + 1;
    float *bulk = malloc((size_t)codes * sizeof *bulk);
    assert_non_null(buf);
    assert_non_null(bulk);
    for (unsigned c = 0; c < codes; c++) {
        data[c * width] = (uint8_t)c;
        if (width == 2) data[c * width + 1] = (uint8_t)(c >> 8);
    }
    assert_int_equal(ecf8_elements_to_float(dtype, data, codes, bulk), ECF8_OK);
    for (unsigned c = 0; c < codes; c++) {
        int is_nan;
        double want = reference(c, ebits, mbits, &is_nan);
        float got = ecf8_element_to_float(dtype, data, c);
        uint32_t sign = (uint32_t)(c >> (ebits + mbits) & 1) << 31;
        if (bits_of(got) != bits_of(bulk[c])) fail_msg("%s code 0x%x: bulk and single calls differ", ecf8_dtype_name(dtype), c);
        if (is_nan) {
            uint32_t m = c & ((1u << mbits) - 1);
            uint32_t expect = width == 1 ? sign | 0x7FC00000u                        /* FP8: the quiet NaN */
                              : dtype == ECF8_DTYPE_BF16 ? (uint32_t)c << 16       /* bit for bit */
                                                         : sign | 0x7F800000u | m << 13; /* F16: payload kept */
            if (!isnan(got) || bits_of(got) != expect)
                fail_msg("%s code 0x%x: got bits 0x%08x, want NaN 0x%08x", ecf8_dtype_name(dtype), c,
                         bits_of(got), expect);
            continue;
        }
        if ((double)got != want || (bits_of(got) & 0x80000000u) != sign)
            fail_msg("%s code 0x%x: got %.9g (bits 0x%08x), want %.17g", ecf8_dtype_name(dtype), c, (double)got,
                     bits_of(got), want);
    }
    free(buf);
    free(bulk);
}

static void test_e4m3_codes(void **state)
{
    (void)state;
    check_all_codes(ECF8_DTYPE_F8_E4M3, 4, 3);
    /* hand-checked values: the largest, the smallest subnormal, NaN */
    const uint8_t v[] = {0x7E, 0x01, 0x38, 0xFF, 0x80};
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F8_E4M3, v, 0) == 448.0f);
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F8_E4M3, v, 1) == 0x1p-9f);
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F8_E4M3, v, 2) == 1.0f);
    assert_true(isnan(ecf8_element_to_float(ECF8_DTYPE_F8_E4M3, v, 3)));
    assert_true(signbit(ecf8_element_to_float(ECF8_DTYPE_F8_E4M3, v, 4)));
}

static void test_e5m2_codes(void **state)
{
    (void)state;
    check_all_codes(ECF8_DTYPE_F8_E5M2, 5, 2);
    const uint8_t v[] = {0x7B, 0x01, 0x3C, 0x7C, 0xFC, 0x7D};
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F8_E5M2, v, 0) == 57344.0f);
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F8_E5M2, v, 1) == 0x1p-16f);
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F8_E5M2, v, 2) == 1.0f);
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F8_E5M2, v, 3) == INFINITY);
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F8_E5M2, v, 4) == -INFINITY);
    assert_true(isnan(ecf8_element_to_float(ECF8_DTYPE_F8_E5M2, v, 5)));
}

static void test_bf16_codes(void **state)
{
    (void)state;
    check_all_codes(ECF8_DTYPE_BF16, 8, 7);
    const uint8_t v[] = {0x80, 0x3F, 0x01, 0x00}; /* 1.0, the smallest subnormal */
    assert_true(ecf8_element_to_float(ECF8_DTYPE_BF16, v, 0) == 1.0f);
    assert_true(ecf8_element_to_float(ECF8_DTYPE_BF16, v, 1) == 0x1p-133f);
}

static void test_f16_codes(void **state)
{
    (void)state;
    check_all_codes(ECF8_DTYPE_F16, 5, 10);
    const uint8_t v[] = {0x00, 0x3C, 0x01, 0x00, 0xFF, 0x7B}; /* 1.0, 2^-24, 65504 */
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F16, v, 0) == 1.0f);
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F16, v, 1) == 0x1p-24f);
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F16, v, 2) == 65504.0f);
}

/* FNUZ (bias 2^(ebits-1), 0x80 the one NaN, no infinities, no -0), E8M0
 * (2^(e-127), 0xFF NaN), U8 and I8: every code against its definition. */
static double reference_1_3(ecf8_dtype dtype, unsigned c, int *is_nan)
{
    *is_nan = 0;
    if (dtype == ECF8_DTYPE_U8) return c;
    if (dtype == ECF8_DTYPE_I8) return (double)(int8_t)c;
    if (dtype == ECF8_DTYPE_F8_E8M0) {
        *is_nan = c == 255;
        return ldexp(1.0, (int)c - 127);
    }
    unsigned ebits = dtype == ECF8_DTYPE_F8_E4M3FNUZ ? 4 : 5, mbits = 7 - ebits;
    int bias = 1 << (ebits - 1);
    *is_nan = c == 0x80;
    unsigned e = c >> mbits & ((1u << ebits) - 1), m = c & ((1u << mbits) - 1);
    double sign = c & 0x80 ? -1.0 : 1.0;
    if (e == 0) return sign * ldexp((double)m, 1 - bias - (int)mbits);
    return sign * ldexp((double)(m | 1u << mbits), (int)e - bias - (int)mbits);
}

static void test_format_1_3_codes(void **state)
{
    (void)state;
    const ecf8_dtype dtypes[] = {ECF8_DTYPE_F8_E4M3FNUZ, ECF8_DTYPE_F8_E5M2FNUZ, ECF8_DTYPE_F8_E8M0,
                                 ECF8_DTYPE_U8, ECF8_DTYPE_I8};
    uint8_t data[256];
    float bulk[256];
    for (unsigned c = 0; c < 256; c++) data[c] = (uint8_t)c;
    for (size_t k = 0; k < sizeof dtypes / sizeof *dtypes; k++) {
        assert_int_equal(ecf8_dtype_size(dtypes[k]), 1);
        assert_int_equal(ecf8_dtype_from_name(ecf8_dtype_name(dtypes[k])), dtypes[k]);
        assert_int_equal(ecf8_elements_to_float(dtypes[k], data, 256, bulk), ECF8_OK);
        for (unsigned c = 0; c < 256; c++) {
            int is_nan;
            double want = reference_1_3(dtypes[k], c, &is_nan);
            float got = ecf8_element_to_float(dtypes[k], data, c);
            if (bits_of(got) != bits_of(bulk[c])) fail_msg("%s code 0x%x: bulk and single differ", ecf8_dtype_name(dtypes[k]), c);
            if (is_nan ? bits_of(got) != 0x7FC00000u : (double)got != want || !signbit(got) != !(want < 0))
                fail_msg("%s code 0x%x: got %.9g (bits 0x%08x), want %.17g", ecf8_dtype_name(dtypes[k]), c,
                         (double)got, bits_of(got), want);
        }
    }
    /* hand-checked: FNUZ largest and smallest subnormal, E8M0 1.0 and 2^-127 */
    const uint8_t v[] = {0x7F, 0x01, 0x80, 127, 0};
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F8_E4M3FNUZ, v, 0) == 240.0f);
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F8_E4M3FNUZ, v, 1) == 0x1p-10f);
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F8_E5M2FNUZ, v, 0) == 57344.0f);
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F8_E5M2FNUZ, v, 1) == 0x1p-17f);
    assert_true(isnan(ecf8_element_to_float(ECF8_DTYPE_F8_E5M2FNUZ, v, 2)));
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F8_E8M0, v, 3) == 1.0f);
    assert_true(ecf8_element_to_float(ECF8_DTYPE_F8_E8M0, v, 4) == 0x1p-127f);
    assert_true(ecf8_element_to_float(ECF8_DTYPE_I8, v, 2) == -128.0f);
    /* U8, I8 and F8_E8M0 have the byte split only. */
    ecf8_split_layout l;
    assert_int_equal(ecf8_split_layout_get(ECF8_DTYPE_U8, ECF8_SPLIT_EXPONENT, &l), ECF8_ERR_UNSUPPORTED);
    assert_int_equal(ecf8_split_layout_get(ECF8_DTYPE_F8_E8M0, ECF8_SPLIT_BYTE, &l), ECF8_OK);
    assert_int_equal(l.symbol_bits, 8);
    assert_int_equal(l.raw_bits, 0);
    assert_int_equal(ecf8_split_layout_get(ECF8_DTYPE_F8_E4M3FNUZ, ECF8_SPLIT_EXPONENT, &l), ECF8_OK);
    assert_int_equal(l.symbol_shift, 3);
    assert_int_equal(l.symbol_bits, 4);
}

static void test_element_errors(void **state)
{
    (void)state;
    const uint8_t b[2] = {0x38, 0x3C};
    float out[2];
    assert_true(isnan(ecf8_element_to_float(ECF8_DTYPE_OTHER, b, 0)));
    assert_true(isnan(ecf8_element_to_float(ECF8_DTYPE_F8_E4M3, NULL, 0)));
    assert_int_equal(ecf8_elements_to_float(ECF8_DTYPE_OTHER, b, 2, out), ECF8_ERR_UNSUPPORTED);
    assert_int_equal(ecf8_elements_to_float((ecf8_dtype)77, b, 2, out), ECF8_ERR_UNSUPPORTED);
    assert_int_equal(ecf8_elements_to_float(ECF8_DTYPE_F8_E4M3, NULL, 2, out), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_elements_to_float(ECF8_DTYPE_F8_E4M3, b, 2, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_elements_to_float(ECF8_DTYPE_F8_E4M3, NULL, 0, NULL), ECF8_OK);
}

/* ---- scale tensors ------------------------------------------------------------------- */
static void test_scale_name(void **state)
{
    (void)state;
    char out[64];
    static const struct {
        const char *weight;
        unsigned convention;
        const char *scale;
    } table[] = {
        {"model.layers.0.mlp.up_proj.weight", 0, "model.layers.0.mlp.up_proj.weight_scale_inv"},
        {"model.layers.0.mlp.up_proj.weight", 1, "model.layers.0.mlp.up_proj.weight_scale"},
        {"dense.kernel", 0, "dense.weight_scale_inv"},
        {"dense.kernel", 1, "dense.weight_scale"},
        {"lm_head", 0, "lm_head_scale_inv"},
        {"lm_head", 1, "lm_head_scale"},
        {"kernel", 0, "kernel_scale_inv"},
        {"layers.0.attention.wq.weight", 2, "layers.0.attention.wq.qscale_weight"},
        {"dense.kernel", 2, "dense.qscale_weight"},
        {"layers.0.attn.wq_a.weight", 3, "layers.0.attn.wq_a.scale"},
        {"dense.kernel", 3, "dense.scale"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        assert_int_equal(ecf8_scale_name(table[i].weight, table[i].convention, out, sizeof out), ECF8_OK);
        assert_string_equal(out, table[i].scale);
    }
    /* Conventions 2 and 3 need a ".weight"/".kernel" stem; 4 is past the table. */
    strcpy(out, "x");
    assert_int_equal(ecf8_scale_name("lm_head", 2, out, sizeof out), ECF8_ERR_NOT_FOUND);
    assert_string_equal(out, "");
    assert_int_equal(ecf8_scale_name("lm_head", 3, out, sizeof out), ECF8_ERR_NOT_FOUND);
    assert_int_equal(ecf8_scale_name("a.weight", ECF8_SCALE_CONVENTIONS, out, sizeof out), ECF8_ERR_NOT_FOUND);
    assert_int_equal(ecf8_scale_name("a.weight", 0, out, 18), ECF8_ERR_ARGUMENT); /* needs 19 */
    assert_string_equal(out, "");
    assert_int_equal(ecf8_scale_name("a.weight", 0, out, 19), ECF8_OK);
    assert_int_equal(ecf8_scale_name(NULL, 0, out, sizeof out), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_scale_name("a", 0, NULL, 8), ECF8_ERR_ARGUMENT);
}

static size_t find(const ecf8_file *f, const char *name)
{
    size_t i;
    if (ecf8_file_find(f, name, &i)) fail_msg("no tensor '%s'", name);
    return i;
}

/* Every FP8 Linear weight of the real E4M3 slice finds its
 * "_scale_inv"; the scales, biases and norms find none. */
static void test_find_scale_real(void **state)
{
    (void)state;
    const char *out = tu_path(tu_temp_dir(), "slice.ecf8");
    assert_int_equal(ecf8_compress_path(tu_data_path("minilm-slice-e4m3.safetensors"), out, NULL), ECF8_OK);
    ecf8_file *f;
    assert_int_equal(ecf8_file_open(out, &f), ECF8_OK);
    size_t with = 0, without = 0;
    for (size_t i = 0; i < ecf8_file_tensor_count(f); i++) {
        ecf8_tensor_info t;
        char want[512];
        size_t si = 12345, wi;
        assert_int_equal(ecf8_file_tensor(f, i, &t), ECF8_OK);
        snprintf(want, sizeof want, "%s_scale_inv", t.name);
        int st = ecf8_file_find_scale(f, i, &si);
        if (ecf8_file_find(f, want, &wi) == ECF8_OK) {
            assert_int_equal(st, ECF8_OK);
            assert_int_equal(si, wi);
            assert_int_equal(t.dtype, ECF8_DTYPE_F8_E4M3);
            with++;
        } else {
            assert_int_equal(st, ECF8_ERR_NOT_FOUND);
            assert_int_equal(si, 12345); /* untouched */
            assert_non_null(strstr(ecf8_last_error(), want));
            without++;
        }
    }
    assert_true(with >= 6);
    assert_true(without > 0);
    size_t si;
    assert_int_equal(ecf8_file_find_scale(f, ecf8_file_tensor_count(f), &si), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_file_find_scale(f, 0, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_file_find_scale(NULL, 0, &si), ECF8_ERR_ARGUMENT);
    ecf8_file_close(f);
}

/* Each checkpoint family's names and scale forms (ecf8.h's table), on a
 * synthetic file: found alone, ambiguous when two or three are present
 * (every one named), and not found (every candidate named). */
static void test_find_scale_conventions(void **state)
{
    (void)state;
    uint8_t w[64 * 64], e8m0[4] = {127, 126, 128, 127};
    float s[16] = {0.5f};
    uint16_t bf[1] = {0x3f00}; /* BF16 0.5 */
    tu_fill_weights_e4m3(w, sizeof w, 3);
    for (int i = 1; i < 16; i++) s[i] = 0.25f * (float)i;
#define W(n) {n, "F8_E4M3", 2, {16, 32}, w, 16 * 32}
    const tu_tensor t[] = {
        /* DeepSeek-V3: F32 128x128 blocks */
        W("model.layers.0.mlp.up_proj.weight"),
        {"model.layers.0.mlp.up_proj.weight_scale_inv", "F32", 2, {1, 1}, s, 4},
        /* Qwen3-FP8: BF16 blocks */
        W("qwen.weight"),
        {"qwen.weight_scale_inv", "BF16", 2, {1, 1}, bf, 2},
        /* compressed-tensors / AutoFP8: scalar [] */
        W("auto.weight"),
        {"auto.weight_scale", "F32", 0, {0}, s, 4},
        /* ModelOpt: [1] */
        W("modelopt.weight"),
        {"modelopt.weight_scale", "F32", 1, {1}, s, 4},
        /* fbgemm: per-channel [N, 1] */
        W("fbgemm.weight"),
        {"fbgemm.weight_scale", "F32", 2, {16, 1}, s, 64},
        /* MXFP8: U8 E8M0 [N, K/32] */
        W("mx.weight"),
        {"mx.weight_scale", "U8", 2, {16, 1}, w, 16},
        /* Mistral (HF): weight_scale_inv scalar; native: qscale_weight (qscale_act is the activations') */
        W("mistral.weight"),
        {"mistral.weight_scale_inv", "F32", 0, {0}, s, 4},
        W("layers.0.attention.wq.weight"),
        {"layers.0.attention.wq.qscale_act", "F32", 0, {0}, s, 4},
        {"layers.0.attention.wq.qscale_weight", "F32", 0, {0}, s, 4},
        /* DeepSeek-V4: A.scale in F8_E8M0, 128x128 and 32x32 blocks */
        W("layers.0.attn.wq_a.weight"),
        {"layers.0.attn.wq_a.scale", "F8_E8M0", 2, {1, 1}, e8m0, 1},
        {"layers.0.ffn.w1.weight", "F8_E4M3", 2, {64, 64}, w, sizeof w},
        {"layers.0.ffn.w1.scale", "F8_E8M0", 2, {2, 2}, e8m0, 4},
        /* "A.kernel" reads as "A.weight"; other names: N_scale_inv, N_scale */
        W("dense.kernel"),
        {"dense.weight_scale_inv", "F32", 2, {1, 1}, s, 4},
        W("lm_head"),
        {"lm_head_scale", "F32", 0, {0}, s, 4},
        /* ambiguous: two, and three conventions at once */
        W("both.weight"),
        {"both.weight_scale_inv", "F32", 2, {1, 1}, s, 4},
        {"both.weight_scale", "F32", 0, {0}, s, 4},
        W("three.weight"),
        {"three.weight_scale_inv", "F32", 2, {1, 1}, s, 4},
        {"three.qscale_weight", "F32", 0, {0}, s, 4},
        {"three.scale", "F8_E8M0", 2, {1, 1}, e8m0, 1},
        /* none */
        W("none.weight"),
        W("head"),
    };
#undef W
    size_t size;
    uint8_t *img = tu_make_safetensors(t, sizeof t / sizeof t[0], NULL, &size);
    const char *dir = tu_temp_dir(), *src = tu_path(dir, "w.safetensors"), *out = tu_path(dir, "w.ecf8");
    assert_int_equal(tu_write_file(src, img, size), 0);
    free(img);
    assert_int_equal(ecf8_compress_path(src, out, NULL), ECF8_OK);
    ecf8_file *f;
    assert_int_equal(ecf8_file_open(out, &f), ECF8_OK);
    size_t si;
    static const char *const pairs[][2] = {
        {"model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.up_proj.weight_scale_inv"},
        {"qwen.weight", "qwen.weight_scale_inv"},
        {"auto.weight", "auto.weight_scale"},
        {"modelopt.weight", "modelopt.weight_scale"},
        {"fbgemm.weight", "fbgemm.weight_scale"},
        {"mx.weight", "mx.weight_scale"},
        {"mistral.weight", "mistral.weight_scale_inv"},
        {"layers.0.attention.wq.weight", "layers.0.attention.wq.qscale_weight"},
        {"layers.0.attn.wq_a.weight", "layers.0.attn.wq_a.scale"},
        {"layers.0.ffn.w1.weight", "layers.0.ffn.w1.scale"},
        {"dense.kernel", "dense.weight_scale_inv"},
        {"lm_head", "lm_head_scale"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        si = 12345;
        if (ecf8_file_find_scale(f, find(f, pairs[i][0]), &si) != ECF8_OK)
            fail_msg("%s: %s", pairs[i][0], ecf8_last_error());
        assert_int_equal(si, find(f, pairs[i][1]));
    }
    si = 12345;
    assert_int_equal(ecf8_file_find_scale(f, find(f, "both.weight"), &si), ECF8_ERR_CORRUPT);
    assert_non_null(strstr(ecf8_last_error(), "2 scale tensors, 'both.weight_scale_inv' and 'both.weight_scale'"));
    assert_non_null(strstr(ecf8_last_error(), "ambiguous"));
    assert_int_equal(ecf8_file_find_scale(f, find(f, "three.weight"), &si), ECF8_ERR_CORRUPT);
    assert_non_null(strstr(ecf8_last_error(),
                           "3 scale tensors, 'three.weight_scale_inv', 'three.qscale_weight' and 'three.scale'"));
    assert_int_equal(ecf8_file_find_scale(f, find(f, "none.weight"), &si), ECF8_ERR_NOT_FOUND);
    assert_non_null(strstr(ecf8_last_error(), "no scale tensor 'none.weight_scale_inv', 'none.weight_scale', "
                                              "'none.qscale_weight' or 'none.scale'"));
    assert_int_equal(ecf8_file_find_scale(f, find(f, "head"), &si), ECF8_ERR_NOT_FOUND);
    assert_non_null(strstr(ecf8_last_error(), "no scale tensor 'head_scale_inv' or 'head_scale'"));
    assert_int_equal(si, 12345); /* untouched by failures */
    /* Scales are not weights with scales of their own. */
    assert_int_equal(ecf8_file_find_scale(f, find(f, "auto.weight_scale"), &si), ECF8_ERR_NOT_FOUND);
    ecf8_file_close(f);
}

/* ---- ecf8_encoded_tensor_info ---------------------------------------------------------- */
/* The info of an in-memory encoding against the container's for the same
 * bytes, and a decode through it. */
static void check_encoded_info(ecf8_dtype dtype, const void *data, uint64_t rows, uint64_t cols)
{
    size_t bytes = (size_t)(rows * cols * ecf8_dtype_size(dtype));
    const tu_tensor t = {"w", ecf8_dtype_name(dtype), 2, {rows, cols}, data, bytes};
    size_t size;
    uint8_t *img = tu_make_safetensors(&t, 1, NULL, &size);
    const char *dir = tu_temp_dir(), *src = tu_path(dir, "e.safetensors"), *out = tu_path(dir, "e.ecf8");
    assert_int_equal(tu_write_file(src, img, size), 0);
    free(img);
    assert_int_equal(ecf8_compress_path(src, out, NULL), ECF8_OK);
    ecf8_file *f;
    ecf8_tensor_info want, got;
    assert_int_equal(ecf8_file_open(out, &f), ECF8_OK);
    assert_int_equal(ecf8_file_tensor(f, 0, &want), ECF8_OK);

    ecf8_encoded *enc;
    assert_int_equal(ecf8_tensor_encode(dtype, data, rows, cols, NULL, &enc), ECF8_OK);
    memset(&got, 0xA5, sizeof got);
    assert_int_equal(ecf8_encoded_tensor_info(enc, "w", dtype, data, rows, cols, &got), ECF8_OK);
    assert_string_equal(got.name, "w");
    assert_string_equal(got.dtype_name, want.dtype_name);
    assert_int_equal(got.dtype, want.dtype);
    assert_int_equal(got.split, want.split);
    assert_int_equal(got.ndim, 2);
    assert_memory_equal(got.shape, want.shape, sizeof got.shape);
    assert_int_equal(got.n_elements, want.n_elements);
    assert_int_equal(got.source_bytes, want.source_bytes);
    assert_int_equal(got.checksum, want.checksum);
    assert_int_equal(got.source_file, 0);
    size_t pb;
    assert_ptr_equal(got.payload, ecf8_encoded_payload(enc, &pb));
    assert_int_equal(got.payload_bytes, pb);
    uint8_t *dec = malloc(bytes + 1);
    assert_non_null(dec);
    if (got.split == ECF8_SPLIT_STORED) {
        assert_ptr_equal(got.payload, data);
    } else {
        assert_int_equal(got.stream.n_chunks, want.stream.n_chunks);
        assert_memory_equal(got.stream.lengths, want.stream.lengths, sizeof got.stream.lengths);
        assert_int_equal(ecf8_stream_decode(&got.stream, dec, bytes, 1), ECF8_OK);
        assert_memory_equal(dec, data, bytes);
    }
    free(dec);

    /* an encoding that is not of that dtype and shape */
    ecf8_dtype other = dtype == ECF8_DTYPE_BF16 ? ECF8_DTYPE_F16 : ECF8_DTYPE_BF16;
    assert_int_equal(ecf8_encoded_tensor_info(enc, "w", dtype, data, rows + 1, cols, &got), ECF8_ERR_ARGUMENT);
    if (got.split != ECF8_SPLIT_STORED || ecf8_dtype_size(other) != ecf8_dtype_size(dtype))
        assert_int_equal(ecf8_encoded_tensor_info(enc, "w", other, data, rows, cols, &got), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_encoded_tensor_info(enc, "w", ECF8_DTYPE_OTHER, data, rows, cols, &got), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_encoded_tensor_info(enc, "w", dtype, NULL, rows, cols, &got), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_encoded_tensor_info(NULL, "w", dtype, data, rows, cols, &got), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_encoded_tensor_info(enc, "w", dtype, data, rows, cols, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_encoded_tensor_info(enc, NULL, dtype, data, rows, cols, &got), ECF8_OK);
    assert_string_equal(got.name, "");
    ecf8_encoded_free(enc);
    ecf8_file_close(f);
}

static void test_encoded_tensor_info(void **state)
{
    (void)state;
    const size_t rows = 37, cols = 300, n = rows * cols;
    uint8_t *w = malloc(2 * n);
    assert_non_null(w);
    tu_fill_weights_e4m3(w, n, 5);
    check_encoded_info(ECF8_DTYPE_F8_E4M3, w, rows, cols); /* coded */
    uint64_t s = 7;
    for (size_t i = 0; i < 2 * n; i++) w[i] = (uint8_t)tu_rand(&s);
    check_encoded_info(ECF8_DTYPE_F16, w, rows, cols); /* uniform bytes: stored */
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e4m3_codes),         cmocka_unit_test(test_e5m2_codes),
        cmocka_unit_test(test_bf16_codes),         cmocka_unit_test(test_f16_codes),
        cmocka_unit_test(test_format_1_3_codes),
        cmocka_unit_test(test_element_errors),     cmocka_unit_test(test_scale_name),
        cmocka_unit_test(test_find_scale_real),    cmocka_unit_test(test_find_scale_conventions),
        cmocka_unit_test(test_encoded_tensor_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
