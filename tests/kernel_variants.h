/* kernel_variants.h - every OpenCL program the library can build for a
 * device (tests/test_cl_kernels.c builds them on the test device,
 * tests/test_gpu_static.c compiles them for GPU instruction sets): the
 * decode plans (decode_plan.c) of every dtype, split and code length over
 * chunk counts and column shapes that reach every lane shape, untuned and
 * with the cooperative kernel forced, in both stream layouts (each kernel
 * is a program of its own: decode_portable, decode_coop, decode_lanes,
 * decode_pairs, decode_streams for layout 1), and the matmul
 * programs of every dtype, split, code length group, X type and scale
 * block width (128 or 32 columns). */
#ifndef ECF8_TEST_KERNEL_VARIANTS_H
#define ECF8_TEST_KERNEL_VARIANTS_H

#include "opencl/decode_plan.h"
#include "opencl/runtime.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MAX_VARIANTS 1024

typedef struct variants {
    char opts[MAX_VARIANTS][400];
    const char *program[MAX_VARIANTS];
    size_t n;
} variants;

/* Adds (program, opts) unless v holds it; whether it was new. */
static bool add_variant(variants *v, const char *program, const char *opts)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->program[i] == program && !strcmp(v->opts[i], opts)) return false;
    assert_true(v->n < MAX_VARIANTS);
    snprintf(v->opts[v->n], sizeof v->opts[v->n], "%s", opts);
    v->program[v->n++] = program;
    return true;
}

static const ecf8_dtype dtypes[] = {ECF8_DTYPE_F8_E4M3, ECF8_DTYPE_F8_E5M2, ECF8_DTYPE_BF16,
                                    ECF8_DTYPE_F16};
static const ecf8_split splits[] = {ECF8_SPLIT_EXPONENT, ECF8_SPLIT_BYTE};

/* The decode plans of streams of every kind and shape on this device. */
static void decode_variants(const ecf8_cl_device_caps *caps, variants *v)
{
    /* Chunk counts around every lane-shape boundary (pairs below 16
     * chunks, 8/16-lane vectors, 1 to 8 sets, several work-items). */
    static const uint64_t chunk_counts[] = {1,  2,  3,  7,  8,  9,  15, 16, 17, 23, 24, 25,
                                            31, 32, 33, 40, 47, 48, 49, 64, 96, 97, 200, 1000};
    static uint64_t offsets[1001];
    const ecf8_cl_tuning coop = {.struct_size = sizeof coop, .decode_kernel = "coop"};
    for (size_t i = 0; i < 1001; i++) offsets[i] = i * 64; /* small chunks: lanes fit */
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++)
        for (size_t p = 0; p < sizeof splits / sizeof splits[0]; p++) {
            ecf8_split_layout l;
            if (ecf8_split_layout_get(dtypes[d], splits[p], &l)) continue;
            unsigned width = ecf8_dtype_size(dtypes[d]);
            for (unsigned code_bits = 0; code_bits <= ECF8_MAX_CODE_BITS; code_bits++)
                for (size_t c = 0; c < sizeof chunk_counts / sizeof chunk_counts[0]; c++)
                    for (uint64_t cols = 4095; cols <= 4096; cols++) /* lanes unusable, usable */
                    for (unsigned layout = 0; layout <= 1; layout++) {
                        uint64_t rows = chunk_counts[c];
                        ecf8_stream s = {.dtype = dtypes[d], .split = splits[p],
                                         .code_bits = code_bits, .n_symbols = 1u << l.symbol_bits,
                                         .n_elements = rows * cols, .rows = rows, .cols = cols,
                                         .chunk_rows = 1, .chunk_cols = cols, .n_chunks = rows,
                                         .coded_bytes = offsets[rows] + 8, .chunk_offsets = offsets,
                                         .stream_layout = layout};
                        for (size_t u = 0; u < 2; u++) {
                            ecf8_cl_decode_plan plan;
                            assert_int_equal(ecf8_cl_decode_plan_make(caps, &s, width,
                                                                      u ? &coop : NULL, &plan),
                                             0);
                            for (int k = 0; k < ECF8_CL_DECODE_KERNELS; k++)
                                if (plan.options[k][0])
                                    add_variant(v, ecf8_cl_decode_program(k), plan.options[k]);
                        }
                    }
        }
}

/* The matmul programs of every dtype, split, code length, X type and scale
 * block width, as `options` gives them (the serial order's or the lane
 * order's). */
typedef void (*matmul_options_fn)(ecf8_dtype, const ecf8_split_layout *, unsigned, int, int,
                                  unsigned, const ecf8_cl_tuning *, char *, size_t);
static void matmul_variants_of(variants *v, matmul_options_fn options)
{
    static const ecf8_dtype mm_dtypes[] = {ECF8_DTYPE_F8_E4M3, ECF8_DTYPE_F8_E5M2, ECF8_DTYPE_BF16};
    char opts[400];
    for (size_t d = 0; d < sizeof mm_dtypes / sizeof mm_dtypes[0]; d++)
        for (int xbf16 = 0; xbf16 <= 1; xbf16++)
            for (unsigned sk = 128; sk >= 32; sk /= 4) { /* scale blocks of 128 or 32 columns */
                options(mm_dtypes[d], NULL, 0, 0, xbf16, sk, NULL, opts, sizeof opts);
                add_variant(v, "matmul", opts);
                for (size_t p = 0; p < sizeof splits / sizeof splits[0]; p++) {
                    ecf8_split_layout l;
                    if (ecf8_split_layout_get(mm_dtypes[d], splits[p], &l)) continue;
                    for (unsigned code_bits = 1; code_bits <= ECF8_MAX_CODE_BITS; code_bits++) {
                        options(mm_dtypes[d], &l, code_bits, 1, xbf16, sk, NULL, opts, sizeof opts);
                        add_variant(v, "matmul", opts);
                    }
                }
            }
}

static void matmul_variants(variants *v)
{
    matmul_variants_of(v, ecf8_cl_matmul_program_options);
}

/* The layout-1 (lane streams) fused matmul programs: CPU devices only. */
static void matmul_streams_variants(variants *v)
{
    static const ecf8_dtype mm_dtypes[] = {ECF8_DTYPE_F8_E4M3, ECF8_DTYPE_F8_E5M2, ECF8_DTYPE_BF16};
    char opts[400];
    for (size_t d = 0; d < sizeof mm_dtypes / sizeof mm_dtypes[0]; d++)
        for (int xbf16 = 0; xbf16 <= 1; xbf16++)
            for (size_t p = 0; p < sizeof splits / sizeof splits[0]; p++) {
                ecf8_split_layout l;
                if (ecf8_split_layout_get(mm_dtypes[d], splits[p], &l)) continue;
                for (unsigned code_bits = 1; code_bits <= ECF8_MAX_CODE_BITS; code_bits++)
                    for (unsigned sk = 128; sk >= 32; sk /= 4) {
                        ecf8_cl_matmul_streams_options(mm_dtypes[d], &l, code_bits, xbf16, sk, NULL,
                                                       opts, sizeof opts);
                        add_variant(v, "matmul", opts);
                    }
            }
}

/* The lane-order matmul programs (GPUs; CPUs with matmul_lanes 1): fused
 * on lane streams of every code length class, and raw. */
static void matmul_lane_order_variants(variants *v)
{
    matmul_variants_of(v, ecf8_cl_matmul_lane_order_options);
}

/* The decode options with the code length class cut out: the shape. */
static void shape_of(const char *opts, char *shape, size_t size)
{
    snprintf(shape, size, "%s", opts);
    char *c = strstr(shape, "-DECF8_CODE_BITS=");
    if (!c) return;
    char *end = strchr(c, ' ');
    memmove(c, end ? end + 1 : c + strlen(c), strlen(end ? end + 1 : c + strlen(c)) + 1);
}

/* One option set per shape of `all` into `built` (decode programs: code
 * lengths only change constants inside a shape). */
static void one_per_shape(const variants *all, variants *built)
{
    static variants shapes;
    shapes.n = 0;
    for (size_t i = 0; i < all->n; i++) {
        char shape[400];
        if (!strncmp(all->program[i], "decode_", 7)) shape_of(all->opts[i], shape, sizeof shape);
        else snprintf(shape, sizeof shape, "%s", all->opts[i]);
        if (add_variant(&shapes, all->program[i], shape))
            add_variant(built, all->program[i], all->opts[i]);
    }
}

#endif
