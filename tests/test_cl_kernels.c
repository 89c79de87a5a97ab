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
 * matmul programs of every dtype, split, code length group and X type (on
 * CPU devices also the layout-1 lane-stream ones, matmul_streams_variants).
 * Code lengths only change constants inside a shape, so each distinct
 * option string is built once, from source (no cache), its build log
 * read. */
#include "testutil_cl.h"

#include "kernel_variants.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

static void every_variant_builds_quietly(void **state)
{
    (void)state;
    NEED_DEVICE();
    ecf8_cl_device_caps caps;
    assert_int_equal(ecf8_cl_device_caps_get(g_dev, &caps), 0);
    static variants all, built;
    decode_variants(&caps, &all);
    matmul_variants(&all);
    if (caps.is_cpu) matmul_streams_variants(&all);
    matmul_lane_order_variants(&all); /* GPUs; CPUs with matmul_lanes 1 */
    one_per_shape(&all, &built);
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

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(every_variant_builds_quietly)};
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
