/* testutil_cl_decode.h - what the OpenCL decode suites (test_cl_decode*.c)
 * share: the kernels under test and the tuning that forces them, weights
 * with specials, in-memory encodings as tensor_info, the guarded device
 * decode (no byte written outside the output range) and the out-of-order
 * queue flag.  Includes testutil_cl.h (the group's device). */
#ifndef ECF8_TESTUTIL_CL_DECODE_H
#define ECF8_TESTUTIL_CL_DECODE_H

#include "testutil.h"

#include "ecf8_cl.h"
#include "internal.h"
#include "opencl/runtime.h"
#include "stream_decode.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "testutil_cl.h"

/* The kernels: "" (automatic: on CPUs the pairs kernel for FP8 tensors of
 * few chunks, the lanes kernel for the others), the pairs kernel forced
 * onto every FP8 stream it decodes, portable, and the cooperative GPU
 * kernel forced onto this device. */
static const char *const KERNELS[] = {"", "pairs", "portable", "coop"};

/* The tuning the tensors under test are created with (kernel and lane
 * shape forced through ecf8_cl_tensor_create_ex). */
static ecf8_cl_tuning g_tuning = {.struct_size = sizeof g_tuning};

static inline void use_kernel(const char *which)
{
    g_tuning.decode_kernel = which[0] ? which : NULL;
}

static const ecf8_dtype DTYPES[] = {ECF8_DTYPE_F8_E4M3, ECF8_DTYPE_F8_E5M2, ECF8_DTYPE_BF16,
                                    ECF8_DTYPE_F16};

/* Trained-weight-like data of any coded dtype (tu_make_weights), with a
 * sprinkling of specials (NaN, Inf, +-0, subnormals) when `specials` is
 * set. */
static inline uint8_t *make_weights(ecf8_dtype d, size_t n, uint64_t seed, bool specials)
{
    unsigned w = ecf8_dtype_size(d);
    uint8_t *p = tu_make_weights(d, n, seed);
    uint64_t s = seed * 2654435761u + 1;
    if (specials && n > 16) {
        static const uint8_t f8[] = {0x00, 0x80, 0x7F, 0xFF, 0x7C, 0xFC, 0x01, 0x81, 0x07, 0x03};
        static const uint16_t bf[] = {0x0000, 0x8000, 0x7FC0, 0xFFC0, 0x7F80, 0xFF80, 0x0001, 0x8001, 0x007F};
        static const uint16_t hf[] = {0x0000, 0x8000, 0x7E00, 0xFE00, 0x7C00, 0xFC00, 0x0001, 0x8001, 0x03FF};
        for (size_t k = 0; k < n / 16; k++) {
            size_t i = tu_rand(&s) % n;
            if (w == 1) {
                p[i] = f8[k % sizeof f8];
            } else {
                uint16_t v = d == ECF8_DTYPE_BF16 ? bf[k % 9] : hf[k % 9];
                p[2 * i] = (uint8_t)v, p[2 * i + 1] = (uint8_t)(v >> 8);
            }
        }
    }
    return p;
}

/* A tensor_info over an in-memory encoding (stream or stored). */
static inline ecf8_tensor_info info_of(const ecf8_encoded *enc, ecf8_dtype d, const void *data,
                                       uint64_t rows, uint64_t cols, const char *name)
{
    ecf8_tensor_info t;
    assert_int_equal(ecf8_encoded_tensor_info(enc, name, d, data, rows, cols, &t), ECF8_OK);
    return t;
}

/* The stream layout encode() writes (test_stream_layout_1 sets it). */
static unsigned g_stream_layout;

static inline ecf8_encoded *encode(ecf8_dtype d, const void *data, uint64_t rows, uint64_t cols,
                                   ecf8_split split, uint32_t chunk, unsigned max_bits)
{
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.split = split;
    o.stream_layout = g_stream_layout;
    if (chunk) o.chunk_elements = chunk;
    if (max_bits) o.max_code_bits = max_bits;
    ecf8_encoded *enc = NULL;
    int st = ecf8_tensor_encode(d, data, rows, cols, &o, &enc);
    if (st) fail_msg("encode: %s", ecf8_last_error());
    return enc;
}

#define GUARD 256
#define GUARD_BYTE 0xA5

/* A device buffer of `total` guard bytes, and *host (malloc'd, the same
 * bytes) to read it back into. */
static inline cl_mem guarded_buffer(size_t total, uint8_t **host)
{
    *host = malloc(total);
    assert_non_null(*host);
    memset(*host, GUARD_BYTE, total);
    cl_int err;
    cl_mem buf = clCreateBuffer(g_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, total, *host, &err);
    assert_int_equal(err, CL_SUCCESS);
    return buf;
}

/* Decodes `t` on the device into a guard-filled buffer at out_offset and
 * returns the status; *region gets the decoded bytes, and the guards are
 * checked to be untouched whatever the status. */
static inline int decode_guarded(ecf8_cl_tensor *ct, const ecf8_tensor_info *t, size_t misalign,
                                 uint8_t *region)
{
    size_t n = (size_t)t->source_bytes, total = GUARD + misalign + n + GUARD;
    uint8_t *host = NULL;
    cl_mem buf = guarded_buffer(total, &host);
    cl_event ev = NULL;
    int st = ecf8_cl_enqueue_decode(ct, g_queue, buf, GUARD + misalign, 0, NULL, &ev);
    if (st == ECF8_OK) {
        assert_int_equal(clWaitForEvents(1, &ev), CL_SUCCESS);
        clReleaseEvent(ev);
    }
    memset(host, 0, total);
    assert_int_equal(clEnqueueReadBuffer(g_queue, buf, CL_TRUE, 0, total, host, 0, NULL, NULL),
                     CL_SUCCESS);
    for (size_t i = 0; i < GUARD + misalign; i++)
        if (host[i] != GUARD_BYTE) fail_msg("'%s': byte %zu before the output written", t->name, i);
    for (size_t i = GUARD + misalign + n; i < total; i++)
        if (host[i] != GUARD_BYTE) fail_msg("'%s': byte %zu after the output written", t->name, i);
    memcpy(region, host + GUARD + misalign, n);
    clReleaseMemObject(buf);
    free(host);
    return st;
}

/* CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE where the device has it, else 0. */
static inline cl_command_queue_properties out_of_order_flag(void)
{
    cl_command_queue_properties p = 0;
    clGetDeviceInfo(g_dev, CL_DEVICE_QUEUE_PROPERTIES, sizeof p, &p, NULL);
    return p & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE;
}

#endif
