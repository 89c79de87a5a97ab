/* test_cl_kernels.c - every program the library can build on this device
 * compiles without a warning, and the build prints nothing on stderr.
 *
 * PoCL prints "N warnings generated." on the process's stderr when its
 * kernel compiler warns (a 16-lane uint vector on an AVX2 host warns that
 * it changes the ABI), so a kernel variant that warns would make every
 * ecf8 command that builds it noisy on a cold cache.  The variants are the
 * decode plans (decode_plan.c) of every dtype, split and code length over
 * chunk counts and column shapes that reach every lane shape, untuned and
 * with the cooperative kernel forced (each kernel is a program of its
 * own: decode_portable, decode_coop, decode_lanes, decode_pairs), and the
 * matmul programs of every dtype, split, code length group and X type.
 * Code lengths only change constants inside a shape, so each distinct
 * option string is built once, from source (no cache), its build log
 * read. */
#include "testutil_cl.h"

#include "opencl/decode_plan.h"
#include "opencl/runtime.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#define MAX_VARIANTS 512

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
                    for (uint64_t cols = 4095; cols <= 4096; cols++) { /* lanes unusable, usable */
                        uint64_t rows = chunk_counts[c];
                        ecf8_stream s = {.dtype = dtypes[d], .split = splits[p],
                                         .code_bits = code_bits, .n_symbols = 1u << l.symbol_bits,
                                         .n_elements = rows * cols, .rows = rows, .cols = cols,
                                         .chunk_rows = 1, .chunk_cols = cols, .n_chunks = rows,
                                         .coded_bytes = offsets[rows] + 8, .chunk_offsets = offsets};
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

static void matmul_variants(variants *v)
{
    static const ecf8_dtype mm_dtypes[] = {ECF8_DTYPE_F8_E4M3, ECF8_DTYPE_F8_E5M2, ECF8_DTYPE_BF16};
    char opts[400];
    for (size_t d = 0; d < sizeof mm_dtypes / sizeof mm_dtypes[0]; d++)
        for (int xbf16 = 0; xbf16 <= 1; xbf16++) {
            ecf8_cl_matmul_program_options(mm_dtypes[d], NULL, 0, 0, xbf16, NULL, opts, sizeof opts);
            add_variant(v, "matmul", opts);
            for (size_t p = 0; p < sizeof splits / sizeof splits[0]; p++) {
                ecf8_split_layout l;
                if (ecf8_split_layout_get(mm_dtypes[d], splits[p], &l)) continue;
                for (unsigned code_bits = 1; code_bits <= ECF8_MAX_CODE_BITS; code_bits++) {
                    ecf8_cl_matmul_program_options(mm_dtypes[d], &l, code_bits, 1, xbf16, NULL, opts,
                                                   sizeof opts);
                    add_variant(v, "matmul", opts);
                }
            }
        }
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

static void every_variant_builds_quietly(void **state)
{
    (void)state;
    NEED_DEVICE();
    ecf8_cl_device_caps caps;
    assert_int_equal(ecf8_cl_device_caps_get(g_dev, &caps), 0);
    static variants all, shapes, built;
    decode_variants(&caps, &all);
    matmul_variants(&all);
    /* One build per decode shape (code lengths change constants only). */
    for (size_t i = 0; i < all.n; i++) {
        char shape[400];
        if (!strncmp(all.program[i], "decode_", 7)) shape_of(all.opts[i], shape, sizeof shape);
        else snprintf(shape, sizeof shape, "%s", all.opts[i]);
        if (add_variant(&shapes, all.program[i], shape))
            add_variant(&built, all.program[i], all.opts[i]);
    }
    print_message("%zu option sets, %zu builds on %s\n", all.n, built.n, caps.name);

    /* Whatever the compiler prints on the process's stderr lands in a file. */
    char err_path[4200];
    snprintf(err_path, sizeof err_path, "%s", tu_path(tu_temp_dir(), "stderr.txt"));
    fflush(stderr);
    int saved = dup(2), fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    size_t warned = 0;
    char first[600] = "";
    for (size_t i = 0; i < built.n; i++) {
        const char *src = ecf8_cl_source(built.program[i]);
        cl_int err;
        cl_program prog = clCreateProgramWithSource(g_ctx, 1, &src, NULL, &err);
        if (err == CL_SUCCESS) err = clBuildProgram(prog, 1, &g_dev, built.opts[i], NULL, NULL);
        size_t n = 0;
        char *log = NULL;
        if (clGetProgramBuildInfo(prog, g_dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) == CL_SUCCESS &&
            (log = calloc(1, n + 1)) != NULL)
            clGetProgramBuildInfo(prog, g_dev, CL_PROGRAM_BUILD_LOG, n, log, NULL);
        if (err != CL_SUCCESS || (log && (strstr(log, "warning") || strstr(log, "error")))) {
            if (!warned++)
                snprintf(first, sizeof first, "%s.cl %s: %.300s", built.program[i], built.opts[i],
                         log ? log : "");
        }
        free(log);
        if (prog) clReleaseProgram(prog);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(err_path, "r");
    char printed[300] = "";
    if (f) {
        if (!fgets(printed, sizeof printed, f)) printed[0] = '\0';
        fclose(f);
    }
    if (warned) fail_msg("%zu of %zu builds warn or fail; first: %s", warned, built.n, first);
    if (printed[0]) fail_msg("kernel builds printed on stderr: %s", printed);
}

/* The programs a GPU gets (the plans for a GPU's capabilities, the matmul
 * programs, which pick their one-lane path without AVX-512) compile for
 * NVIDIA (nvptx64) and AMD (amdgcn gfx90a) instruction sets with clang and
 * -Werror: the same source the vendor compilers build.  Skipped where no
 * clang with those targets is installed (scripts/install-deps.sh installs
 * clang-15). */
static void gpu_targets_compile_quietly(void **state)
{
    (void)state;
    const char *clang = system("command -v clang-15 >/dev/null 2>&1") == 0 ? "clang-15" : "clang";
    char probe[256];
    snprintf(probe, sizeof probe,
             "echo 'kernel void k(global int *p) { p[0] = 1; }' | %s -x cl -cl-std=CL1.2 "
             "-target nvptx64-nvidia-nvcl -Xclang -finclude-default-header -fsyntax-only - "
             ">/dev/null 2>&1", clang);
    if (system(probe) != 0) {
        print_message("no clang with the nvptx64 target: GPU compile check skipped\n");
        skip();
    }
    ecf8_cl_device_caps gpu = {.type = CL_DEVICE_TYPE_GPU, .compute_units = 132,
                               .max_work_group = 1024, .vector_bits = 32};
    static variants all, shapes, built;
    decode_variants(&gpu, &all);
    matmul_variants(&all);
    for (size_t i = 0; i < all.n; i++) {
        char shape[400];
        if (!strncmp(all.program[i], "decode_", 7)) shape_of(all.opts[i], shape, sizeof shape);
        else snprintf(shape, sizeof shape, "%s", all.opts[i]);
        if (add_variant(&shapes, all.program[i], shape))
            add_variant(&built, all.program[i], all.opts[i]);
    }
    static const char *const targets[] = {"-target nvptx64-nvidia-nvcl",
                                          "-target amdgcn-amd-amdhsa -mcpu=gfx90a -nogpulib"};
    const char *dir = tu_temp_dir();
    size_t failed = 0;
    char first[1200] = "";
    for (size_t i = 0; i < built.n; i++) {
        char src_path[4200], log_path[4200], cmd[10000];
        snprintf(src_path, sizeof src_path, "%s", tu_path(dir, "k.cl"));
        snprintf(log_path, sizeof log_path, "%s", tu_path(dir, "log.txt"));
        const char *src = ecf8_cl_source(built.program[i]);
        assert_int_equal(tu_write_file(src_path, src, strlen(src)), 0);
        for (size_t t = 0; t < 2; t++) {
            snprintf(cmd, sizeof cmd,
                     "%s -x cl -cl-std=CL1.2 %s -O2 -Xclang -finclude-default-header -Wall "
                     "-Werror %s -S -o /dev/null '%s' >'%s' 2>&1",
                     clang, targets[t], built.opts[i], src_path, log_path);
            if (system(cmd) != 0 && !failed++) {
                size_t n = 0;
                uint8_t *log = tu_read_file(log_path, &n);
                snprintf(first, sizeof first, "%s.cl %s (%s): %.600s", built.program[i],
                         built.opts[i], targets[t], log ? (const char *)log : "");
                free(log);
            }
        }
    }
    print_message("%zu GPU programs compiled for nvptx64 and amdgcn\n", built.n);
    if (failed) fail_msg("%zu GPU compiles warn or fail; first: %s", failed, first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(every_variant_builds_quietly),
                                       cmocka_unit_test(gpu_targets_compile_quietly)};
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
