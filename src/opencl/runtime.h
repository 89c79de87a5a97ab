/* runtime.h - the OpenCL glue shared by decode and matmul: error text,
 * program building with in-memory and on-disk caches, embedded kernels. */
#ifndef ECF8_CL_RUNTIME_H
#define ECF8_CL_RUNTIME_H

#include "ecf8_cl.h"
#include "internal.h"

/* Turns an OpenCL error into ecf8_last_error() text naming the call
 * ("clEnqueueNDRangeKernel(decode): CL_OUT_OF_RESOURCES") and returns err. */
int ecf8_cl_fail(cl_int err, const char *call);
#define ECF8_CL_CHECK(expr, call)                                        \
    do {                                                                 \
        cl_int ecf8_cl_err_ = (expr);                                    \
        if (ecf8_cl_err_ != CL_SUCCESS) return ecf8_cl_fail(ecf8_cl_err_, call); \
    } while (0)

/* Embedded kernel sources (cl/NAME.cl, generated at build time). */
const char *ecf8_cl_source(const char *name);

/* A program built from the embedded source `name` with `options` for
 * (context, device), built once and cached in memory (and on disk as a
 * binary where ecf8_cl_set_disk_cache says).  The program is retained for the caller:
 * release it with clReleaseProgram.  On a build failure the status is
 * ECF8_ERR_BUILD and ecf8_last_error() holds the build log. */
int ecf8_cl_program_get(cl_context context, cl_device_id device, const char *name,
                        const char *options, cl_program *out);

/* The compatibility defaults (compat_env.c, the one file of the library
 * that reads the environment): the disk cache policy of ECF8_CACHE, and
 * the default directory, $XDG_CACHE_HOME/ecf8/kernels else
 * $HOME/.cache/ecf8/kernels (false when neither is set or it does not
 * fit). */
ecf8_cl_disk_cache ecf8_cl_disk_cache_default(void);
bool ecf8_cl_disk_cache_default_dir(char *dir, size_t size);

/* The caller's tuning (NULL: none) as this library's struct: fields past
 * its struct_size zero.  ECF8_ERR_ARGUMENT for a struct_size that does not
 * even hold struct_size. */
int ecf8_cl_tuning_read(const ecf8_cl_tuning *tuning, ecf8_cl_tuning *out);

/* Programs in the in-memory cache built for `context` (all contexts for
 * NULL); for tests of ecf8_cl_release_context and ecf8_cl_cache_clear. */
size_t ecf8_cl_cache_entries(cl_context context);

/* Device facts the kernels are specialised on. */
typedef struct ecf8_cl_device_caps {
    char name[256];
    char vendor[128];
    char version[128];
    char driver[128];
    cl_device_type type;
    cl_ulong local_mem_bytes;
    cl_ulong global_mem_bytes;
    size_t max_work_group;
    cl_uint compute_units;
    int has_fp16;       /* cl_khr_fp16 */
    int has_subgroups;  /* cl_khr_subgroups or OpenCL C 2.0+ */
    int is_cpu;
    unsigned vector_bits; /* native int vector width x 32: 256 on AVX2, 512 on AVX-512 */
} ecf8_cl_device_caps;
int ecf8_cl_device_caps_get(cl_device_id device, ecf8_cl_device_caps *caps);

/* The build options of the matmul program (cl/matmul.cl) for weights of
 * `dtype` coded with `layout` and codes up to `code_bits` (fused), or raw
 * (fused 0; layout may be NULL); xbf16: X is BF16; scale_k: the scale
 * blocks' columns, 128 or 32 (FP8; cl/matmul.cl's contract); tuning's matmul_*
 * fields (NULL: none, else as ecf8_cl_tuning_read gives it).  Every program the
 * matmul engines build comes from here (tests/test_cl_kernels.c builds
 * them all). */
void ecf8_cl_matmul_program_options(ecf8_dtype dtype, const ecf8_split_layout *layout,
                                    unsigned code_bits, int fused, int xbf16, unsigned scale_k,
                                    const ecf8_cl_tuning *tuning, char *opts, size_t size);

/* The same for the layout-1 (lane streams) fused kernels, ecf8_mm_sgemv1..4
 * and ecf8_mm_sgemm, which only CPU devices build (the host runs them where
 * every chunk row piece is a multiple of 128 columns). */
void ecf8_cl_matmul_streams_options(ecf8_dtype dtype, const ecf8_split_layout *layout,
                                    unsigned code_bits, int xbf16, unsigned scale_k,
                                    const ecf8_cl_tuning *tuning, char *opts, size_t size);

/* The same for the lane-order kernels, ecf8_mm_lgemv and ecf8_mm_lgemm,
 * fused (lane streams) or raw: the GPU shape of a layout-1 W whose rows
 * are whole 128-column steps (matmul_lanes 1 builds them on any device). */
void ecf8_cl_matmul_lane_order_options(ecf8_dtype dtype, const ecf8_split_layout *layout,
                                       unsigned code_bits, int fused, int xbf16, unsigned scale_k,
                                       const ecf8_cl_tuning *tuning, char *opts, size_t size);

/* The kernel a decode of t to out_offset runs: "pairs", "lanes", "coop",
 * "portable", or "copy" for a stored tensor (for the tests). */
const char *ecf8_cl_tensor_kernel(const ecf8_cl_tensor *t, size_t out_offset);

#endif
