/* test_gpu_static.c - GPU checks without a GPU (CTest label gpu-static).
 *
 * Every program the library builds for a GPU (the decode plans for a GPU's
 * capabilities, and the matmul programs, which take their one-lane path
 * without AVX-512) is compiled from the embedded sources with clang for
 * NVIDIA (nvptx64, linked with libclc) and AMD (amdgcn gfx90a) instruction
 * sets with -Wall -Werror: the source the vendor compilers build.  Where
 * the CUDA toolkit's ptxas is installed, the NVIDIA PTX is assembled for
 * sm_90 and every decode kernel must have no stack frame, no spill and at
 * most 64 registers (full occupancy headroom, GPU-DESIGN.md), and each
 * decode kernel's static SASS instruction count is printed (cubin .text
 * size / 16, read with readelf), so a change can be compared; the matmul
 * kernels' figures are printed (the serial-order GEMM keeps its
 * accumulator tile in a stack frame on GPUs today), except the lane-order
 * kernels (the GPU-shaped fused kernel on layout-1 weights and its
 * uncompressed twin), which are held to the decode kernels' limits.  Also the CPU programs for AVX2 and AVX-512 hosts alike, so a
 * warning only one kind of host would print is caught on either.  Skipped
 * where no clang with these targets is installed (scripts/install-deps.sh
 * installs clang-15 and libclc-15). */
#include "testutil.h"

#include "kernel_variants.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LIBCLC_NVPTX "/usr/lib/clc/nvptx64--nvidiacl.bc"
#define MAX_DECODE_REGISTERS 64

static const char *clang_binary(void)
{
    return system("command -v clang-15 >/dev/null 2>&1") == 0 ? "clang-15" : "clang";
}

/* Whether clang compiles OpenCL C for `target` (a -target triple). */
static bool clang_targets(const char *clang, const char *target)
{
    char probe[512];
    snprintf(probe, sizeof probe,
             "echo 'kernel void k(global int *p) { p[0] = 1; }' | %s -x cl -cl-std=CL1.2 "
             "-target %s -Xclang -finclude-default-header -fsyntax-only - >/dev/null 2>&1",
             clang, target);
    return system(probe) == 0;
}

/* A failure described by its log: into first, when it is the first. */
static void note_failure(const char *log_path, const char *what, char *first, size_t size)
{
    if (first[0]) return;
    size_t n = 0;
    uint8_t *log = tu_read_file(log_path, &n);
    snprintf(first, size, "%s: %.700s", what, log ? (const char *)log : "");
    free(log);
}

/* Runs cmd (stdout and stderr into log_path); on failure the first
 * failure's description goes to first (when empty). */
static bool run_logged(const char *cmd, const char *log_path, const char *what, char *first,
                       size_t size)
{
    if (system(cmd) == 0) return true;
    note_failure(log_path, what, first, size);
    return false;
}

typedef struct ptx_function {
    char name[128];
    unsigned stack, spill_stores, spill_loads, registers;
} ptx_function;

/* Static SASS instruction counts of each decode kernel over its variants,
 * so that a change can be compared: the size of its .text section in the
 * cubin (readelf; nvdisasm is not needed) over 16 bytes, the sm_90
 * instruction size (the count includes the padding after the last one). */
typedef struct sass_count {
    char program[32], kernel[64];
    unsigned least, most, variants;
} sass_count;

static size_t sass_add(const char *cubin, const char *program, sass_count *c, size_t n, size_t max)
{
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "readelf -S -W '%s' 2>/dev/null", cubin);
    FILE *p = popen(cmd, "r");
    if (!p) return n;
    char line[512];
    while (fgets(line, sizeof line, p)) {
        char *t = strstr(line, " .text.");
        char name[64];
        unsigned long addr, off, size;
        if (!t || sscanf(t, " .text.%63s PROGBITS %lx %lx %lx", name, &addr, &off, &size) != 4) continue;
        unsigned insns = (unsigned)(size / 16);
        size_t k = 0;
        while (k < n && (strcmp(c[k].program, program) || strcmp(c[k].kernel, name))) k++;
        if (k == n) {
            if (n == max) continue;
            snprintf(c[k].program, sizeof c[k].program, "%s", program);
            snprintf(c[k].kernel, sizeof c[k].kernel, "%s", name);
            c[k].least = c[k].most = insns, c[k].variants = 0;
            n++;
        }
        if (insns < c[k].least) c[k].least = insns;
        if (insns > c[k].most) c[k].most = insns;
        c[k].variants++;
    }
    pclose(p);
    return n;
}

/* The per-function lines of `ptxas -v`. */
static size_t parse_ptxas(const char *log, ptx_function *f, size_t max)
{
    size_t n = 0;
    for (const char *p = strstr(log, "Function properties for "); p && n < max;
         p = strstr(p + 1, "Function properties for ")) {
        ptx_function *x = &f[n++];
        memset(x, 0, sizeof *x);
        sscanf(p, "Function properties for %127s", x->name);
        const char *s = strstr(p, "bytes stack frame");
        const char *line = s ? s : p;
        while (line > p && line[-1] != '\n') line--;
        sscanf(line, " %u bytes stack frame, %u bytes spill stores, %u bytes spill loads", &x->stack,
               &x->spill_stores, &x->spill_loads);
        const char *r = strstr(p, "Used ");
        if (r) sscanf(r, "Used %u registers", &x->registers);
    }
    return n;
}

static void gpu_programs_compile_without_stack_or_spills(void **state)
{
    (void)state;
    const char *clang = clang_binary();
    if (!clang_targets(clang, "nvptx64-unknown-nvidiacl")) {
        print_message("no clang with the nvptx64 target: gpu-static checks skipped\n");
        skip();
    }
    bool have_libclc = access(LIBCLC_NVPTX, R_OK) == 0;
    bool have_ptxas = have_libclc && system("command -v ptxas >/dev/null 2>&1") == 0;
    if (!have_ptxas)
        print_message("no %s: PTX not assembled (register, stack and spill checks skipped)\n",
                      have_libclc ? "ptxas" : "libclc");

    ecf8_cl_device_caps gpu = {.type = CL_DEVICE_TYPE_GPU, .compute_units = 132,
                               .max_work_group = 1024, .vector_bits = 32};
    static variants all, built;
    decode_variants(&gpu, &all);
    matmul_variants(&all);
    matmul_lane_order_variants(&all);
    one_per_shape(&all, &built);

    const char *dir = tu_temp_dir();
    char src_path[4200], ptx_path[4200], log_path[4200], amd_log_path[4200], cubin_path[4200],
        cmd[16000], what[600];
    snprintf(src_path, sizeof src_path, "%s", tu_path(dir, "k.cl"));
    snprintf(ptx_path, sizeof ptx_path, "%s", tu_path(dir, "k.ptx"));
    snprintf(log_path, sizeof log_path, "%s", tu_path(dir, "log.txt"));
    snprintf(amd_log_path, sizeof amd_log_path, "%s", tu_path(dir, "amd-log.txt"));
    snprintf(cubin_path, sizeof cubin_path, "%s", tu_path(dir, "k.cubin"));
    sass_count sass[32];
    size_t n_sass = 0;
    size_t failed = 0, checked = 0;
    unsigned max_regs = 0;
    size_t mm_framed = 0;
    char first[1600] = "", mm_first[600] = "";
    for (size_t i = 0; i < built.n; i++) {
        const char *src = ecf8_cl_source(built.program[i]);
        assert_int_equal(tu_write_file(src_path, src, strlen(src)), 0);
        /* decode kernels, and the lane-order matmul (the GPU-shaped fused
         * kernel and its uncompressed twin), are held to the limits */
        bool lane_order = strstr(built.opts[i], "-DECF8_MM_LORDER=1") != NULL;
        bool decode = !strncmp(built.program[i], "decode_", 7) || lane_order;
        /* AMD: compile with warnings as errors, in the background while
         * the NVIDIA PTX compiles (with libclc's builtins where installed):
         * the two take about the same time. */
        snprintf(cmd, sizeof cmd,
                 "%s -x cl -cl-std=CL1.2 -target amdgcn-amd-amdhsa -mcpu=gfx90a -nogpulib -O2 "
                 "-Xclang -finclude-default-header -Wall -Werror %s -S -o /dev/null '%s' >'%s' 2>&1 & "
                 "amd=$!; "
                 "%s -x cl -cl-std=CL1.2 -target nvptx64-unknown-nvidiacl -O3 "
                 "-Xclang -finclude-default-header %s%s -Wall -Werror %s -S -o '%s' '%s' >'%s' 2>&1; "
                 "nv=$?; wait $amd || exit 1; exit $((nv ? 2 : 0))",
                 clang, built.opts[i], src_path, amd_log_path, clang,
                 have_libclc ? "-Xclang -mlink-bitcode-file -Xclang " : "",
                 have_libclc ? LIBCLC_NVPTX : "", built.opts[i], have_libclc ? ptx_path : "/dev/null",
                 src_path, log_path);
        int rc = system(cmd);
        rc = WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
        snprintf(what, sizeof what, "%s.cl %s (%s)", built.program[i], built.opts[i],
                 rc == 1 ? "amdgcn" : "nvptx64");
        if (rc) {
            note_failure(rc == 1 ? amd_log_path : log_path, what, first, sizeof first);
            failed++;
            continue;
        }
        if (!have_ptxas) continue;
        snprintf(cmd, sizeof cmd, "ptxas -v -arch=sm_90 '%s' -o '%s' >'%s' 2>&1", ptx_path,
                 cubin_path, log_path);
        snprintf(what, sizeof what, "%s.cl %s (ptxas sm_90)", built.program[i], built.opts[i]);
        if (!run_logged(cmd, log_path, what, first, sizeof first)) {
            failed++;
            continue;
        }
        if (decode)
            n_sass = sass_add(cubin_path, lane_order ? "matmul (lane order)" : built.program[i], sass,
                              n_sass, 32);
        size_t n = 0;
        uint8_t *log = tu_read_file(log_path, &n);
        assert_non_null(log);
        ptx_function f[16];
        size_t nf = parse_ptxas((const char *)log, f, 16);
        free(log);
        for (size_t k = 0; k < nf; k++) {
            if (!decode) {
                if ((f[k].stack || f[k].spill_stores || f[k].spill_loads) && !mm_framed++)
                    snprintf(mm_first, sizeof mm_first,
                             "%s (%s): %u bytes stack frame, %u/%u spill bytes, %u registers",
                             f[k].name, built.opts[i], f[k].stack, f[k].spill_stores,
                             f[k].spill_loads, f[k].registers);
                continue;
            }
            checked++;
            if (f[k].registers > max_regs) max_regs = f[k].registers;
            if (f[k].stack || f[k].spill_stores || f[k].spill_loads ||
                f[k].registers > MAX_DECODE_REGISTERS) {
                if (!failed++)
                    snprintf(first, sizeof first,
                             "%s (%s.cl %s): %u bytes stack frame, %u/%u spill bytes, %u registers",
                             f[k].name, built.program[i], built.opts[i], f[k].stack,
                             f[k].spill_stores, f[k].spill_loads, f[k].registers);
            }
        }
    }
    if (mm_framed)
        print_message("note: %zu matmul kernels keep a stack frame on sm_90, e.g. %s\n", mm_framed,
                      mm_first);
    print_message("%zu GPU programs compiled for amdgcn and nvptx64; %zu decode kernels assembled "
                  "for sm_90, at most %u registers\n", built.n, checked, max_regs);
    for (size_t k = 0; k < n_sass; k++)
        print_message("sm_90 SASS, static: %s %s %u-%u instructions over its %u variants\n",
                      sass[k].program, sass[k].kernel, sass[k].least, sass[k].most, sass[k].variants);
    if (failed) fail_msg("%zu GPU checks failed; first: %s", failed, first);
    if (have_ptxas) assert_true(checked > 0);
}

/* The programs PoCL builds on either kind of x86 host this project meets,
 * whatever host the test runs on: the plans for 256-bit (AVX2, PoCL's
 * `pthread-haswell`) and 512-bit (`pthread-skylake-avx512`) devices,
 * compiled by clang for that CPU with its default warnings as errors (the
 * warnings PoCL's compiler prints; a 16-lane vector on AVX2 gives 112 of
 * them).  Only the programs whose code depends on the vector width: the
 * lanes and streams decode kernels and the matmul (its AVX-512 gather
 * path). */
static void cpu_programs_compile_quietly_for_avx2_and_avx512(void **state)
{
    (void)state;
    const char *clang = clang_binary();
    if (!clang_targets(clang, "x86_64-pc-linux-gnu")) {
        print_message("no clang for OpenCL C on x86-64: CPU target checks skipped\n");
        skip();
    }
    static const struct {
        unsigned vector_bits;
        const char *march;
    } hosts[] = {{256, "haswell"}, {512, "skylake-avx512"}};
    const char *dir = tu_temp_dir();
    char src_path[4200], log_path[4200], cmd[12000], what[600], first[1600] = "";
    snprintf(src_path, sizeof src_path, "%s", tu_path(dir, "k.cl"));
    snprintf(log_path, sizeof log_path, "%s", tu_path(dir, "log.txt"));
    size_t failed = 0, compiled = 0;
    for (size_t h = 0; h < sizeof hosts / sizeof hosts[0]; h++) {
        ecf8_cl_device_caps cpu = {.type = CL_DEVICE_TYPE_CPU, .compute_units = 2,
                                   .max_work_group = 4096, .vector_bits = hosts[h].vector_bits,
                                   .is_cpu = 1};
        static variants all, built;
        all.n = built.n = 0;
        decode_variants(&cpu, &all);
        matmul_variants(&all);
        matmul_streams_variants(&all);
        matmul_lane_order_variants(&all);
        one_per_shape(&all, &built);
        for (size_t i = 0; i < built.n; i++) {
            if (strcmp(built.program[i], "decode_lanes") && strcmp(built.program[i], "decode_streams") &&
                strcmp(built.program[i], "matmul"))
                continue;
            const char *src = ecf8_cl_source(built.program[i]);
            assert_int_equal(tu_write_file(src_path, src, strlen(src)), 0);
            snprintf(cmd, sizeof cmd,
                     "%s -x cl -cl-std=CL1.2 -target x86_64-pc-linux-gnu -march=%s -O2 "
                     "-Xclang -finclude-default-header -Werror %s -S -o /dev/null '%s' >'%s' 2>&1",
                     clang, hosts[h].march, built.opts[i], src_path, log_path);
            snprintf(what, sizeof what, "%s.cl %s (%s)", built.program[i], built.opts[i],
                     hosts[h].march);
            failed += !run_logged(cmd, log_path, what, first, sizeof first);
            compiled++;
        }
    }
    print_message("%zu CPU programs compiled for haswell and skylake-avx512\n", compiled);
    if (failed) fail_msg("%zu CPU target compiles warn or fail; first: %s", failed, first);
    assert_true(compiled > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gpu_programs_compile_without_stack_or_spills),
        cmocka_unit_test(cpu_programs_compile_quietly_for_avx2_and_avx512)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
