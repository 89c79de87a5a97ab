/* decode_plan.h - which decode kernels a tensor gets on a device, and how
 * they are specialised: a pure function of the device's capabilities, the
 * stream's geometry and the tuning, so it is unit-tested without a device
 * (tests/test_decode_plan.c) and every program it can ask for is built
 * once with its compiler warnings captured (tests/test_cl_kernels.c). */
#ifndef ECF8_CL_DECODE_PLAN_H
#define ECF8_CL_DECODE_PLAN_H

#include "runtime.h"

#include <stdbool.h>

/* Work-items per chunk of the cooperative GPU kernel (cl/decode_coop.cl). */
#define ECF8_COOP_WG 64
/* Zero bytes after a coded stream in a device buffer, so that 8-byte loads
 * near its end and a layout-1 lane table (up to 68 bytes from a chunk's
 * start) stay inside the buffer before any clamp. */
#define ECF8_CL_STREAM_PAD 64
/* The decode kernels' error record: first failing chunk + 1 (0: none),
 * its bits (low, high), its stored bytes (layout 1: the lane's length),
 * layout 1's failing lane + 1. */
#define ECF8_CL_ERROR_WORDS 5

/* ECF8_ERR_CORRUPT worded like the CPU decoders' messages, from an error
 * record naming chunk `chunk` of tensor `name` (`which`: a note after the
 * chunk number, or ""). */
int ecf8_cl_error_record_fail(const char *name, uint64_t chunk, const char *which,
                              const cl_uint word[ECF8_CL_ERROR_WORDS]);

/* Chunks per work-group of the streams kernel with one lane per work-item
 * (cl/decode_streams.cl on GPUs): 32 work-items each. */
#define ECF8_STREAMS_WG_CHUNKS 4

/* The decode kernels, each in a program of its own (cl/decode_common.cl +
 * cl/decode_KERNEL.cl), so a device compiles only the kernels it runs. */
typedef enum ecf8_cl_decode_kernel {
    ECF8_CL_DECODE_PORTABLE, /* ecf8_decode: any device, any alignment */
    ECF8_CL_DECODE_COOP,     /* ecf8_decode_coop: GPUs */
    ECF8_CL_DECODE_LANES,    /* ecf8_decode_lanes: CPUs with 256/512-bit vectors */
    ECF8_CL_DECODE_PAIRS,    /* ecf8_decode_pairs: FP8 on CPUs */
    ECF8_CL_DECODE_STREAMS,  /* ecf8_decode_streams: stream layout 1, any device */
    ECF8_CL_DECODE_KERNELS
} ecf8_cl_decode_kernel;

/* The embedded program ("decode_lanes") and kernel function
 * ("ecf8_decode_lanes") of kernel k; its short name ("lanes"). */
const char *ecf8_cl_decode_program(ecf8_cl_decode_kernel k);
const char *ecf8_cl_decode_function(ecf8_cl_decode_kernel k);
const char *ecf8_cl_decode_kernel_name(ecf8_cl_decode_kernel k);

typedef struct ecf8_cl_decode_plan {
    bool pairs, lanes, coop;    /* kernels to create besides the portable one */
    /* Stream layout 1: the streams kernel, the only one that decodes it
     * (every other field then says "none"), its lanes per vector (1: one
     * lane per work-item, GPUs) and vectors per work-item. */
    bool streams;
    unsigned streams_vw, streams_nsets, streams_reader; /* reader: 1 qwords (CPUs), 0 words */
    unsigned vw, nsets, reader; /* lanes kernel shape (0 where there is no lanes kernel) */
    unsigned nl;                /* pairs kernel: chunks per work-item */
    unsigned wg;                /* portable kernel: work-group size (before the device cap) */
    unsigned code_bits_class;   /* ECF8_CODE_BITS of the programs */
    /* Each kernel's build options: only the -D names its program uses, so
     * kernels that do not depend on a parameter share a program across its
     * values (the pairs kernel one per NL, whatever the code).  The
     * portable kernel's always for layout 0 (any decode to an unaligned
     * offset may need it), the others' where the plan uses the kernel,
     * else "". */
    char options[ECF8_CL_DECODE_KERNELS][192];
} ecf8_cl_decode_plan;

/* Lanes per vector of the CPU decode kernels on a device: 16 where its
 * native int vectors are 512 bits wide, 8 where 256, and 0 on GPUs and on
 * CPUs with narrower vectors (those get the one-lane shapes).  Never 16 on
 * a host without AVX-512: the width comes from what the driver reports. */
unsigned ecf8_cl_decode_vector_lanes(const ecf8_cl_device_caps *caps);

/* Plans the decode of stream `s` (validated; chunk_offsets are read) with
 * elements of `width` bytes on a device with `caps` and the decode_*
 * fields of `tuning` (NULL: none; else a full struct, as
 * ecf8_cl_tuning_read gives it).
 * ECF8_ERR_CORRUPT for a split the dtype does not have. */
int ecf8_cl_decode_plan_make(const ecf8_cl_device_caps *caps, const ecf8_stream *s,
                             unsigned width, const ecf8_cl_tuning *tuning,
                             ecf8_cl_decode_plan *plan);

#endif
