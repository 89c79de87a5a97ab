/* decode_plan.h - which decode kernels a tensor gets on a device, and how
 * they are specialised: a pure function of the device's capabilities, the
 * stream's geometry and the tuning, so it is unit-tested without a device
 * (tests/test_decode_plan.c) and every program it can ask for is built
 * once with its compiler warnings captured (tests/test_cl_kernels.c). */
#ifndef ECF8_CL_DECODE_PLAN_H
#define ECF8_CL_DECODE_PLAN_H

#include "runtime.h"

#include <stdbool.h>

/* Work-items per chunk of the cooperative GPU kernel (cl/decode.cl). */
#define ECF8_COOP_WG 64

/* Overrides for measurements; 0 / NULL fields mean "the plan decides".
 * kernel: "portable" (no CPU or cooperative kernel), "coop" (the
 * cooperative kernel on any device), "pairs" (the pairs kernel on CPUs for
 * every FP8 stream it can decode), "lanes" (the lanes kernel where the
 * pairs kernel would run).  vw/nsets shape the lanes kernel (vw is capped
 * by the device's vector registers), reader picks its stream reader
 * (1 words, 2 qwords), nl the pairs kernel's chunks per work-item, wg the
 * portable kernel's work-group size. */
typedef struct ecf8_cl_decode_tuning {
    const char *kernel;
    unsigned vw, nsets, reader, nl, wg;
} ecf8_cl_decode_tuning;

/* The ECF8_DECODE_* environment variables as a tuning (the one place the
 * decode side reads them). */
void ecf8_cl_decode_tuning_from_env(ecf8_cl_decode_tuning *tuning);

typedef struct ecf8_cl_decode_plan {
    bool pairs, lanes, coop;    /* kernels to create besides the portable one */
    unsigned vw, nsets, reader; /* lanes kernel shape (in the program either way) */
    unsigned nl;                /* pairs kernel: chunks per work-item */
    unsigned wg;                /* portable kernel: work-group size (before the device cap) */
    unsigned code_bits_class;   /* ECF8_CODE_BITS of the program */
    char options[320];          /* the program's build options */
} ecf8_cl_decode_plan;

/* Plans the decode of stream `s` (validated; chunk_offsets are read) with
 * elements of `width` bytes on a device with `caps`.  `tuning` may be NULL.
 * ECF8_ERR_CORRUPT for a split the dtype does not have. */
int ecf8_cl_decode_plan_make(const ecf8_cl_device_caps *caps, const ecf8_stream *s,
                             unsigned width, const ecf8_cl_decode_tuning *tuning,
                             ecf8_cl_decode_plan *plan);

#endif
