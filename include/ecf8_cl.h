/*
 * ecf8_cl.h - decode and fused matmul of ecf8 tensors on any OpenCL device.
 *
 * The library uses the caller's context and queue; nothing here creates
 * global state except an in-memory program cache (per context, device and
 * options) and an on-disk binary cache under $XDG_CACHE_HOME/ecf8
 * (ECF8_CACHE=0 disables it).  Enqueue functions take buffers with byte
 * offsets, a wait list and an optional output event, like clFFT.  Status:
 * ECF8_OK, an OpenCL error code passed through, or an ECF8_ERR_* code;
 * ecf8_status_string() names any of them and ecf8_last_error() names the
 * failing OpenCL call or carries the program build log.
 */
#ifndef ECF8_CL_H
#define ECF8_CL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "ecf8.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- device choice (for tools, tests and examples) --------------------- */
/* Picks a device: ECF8_PLATFORM and ECF8_DEVICE (an index or a name
 * substring) when set, else the first GPU, else the first device.
 * ECF8_ERR_NO_DEVICE when there is none. */
int ecf8_cl_select_device(cl_platform_id *platform, cl_device_id *device);
/* A context and an in-order queue with profiling on the selected device. */
int ecf8_cl_open_default(cl_context *context, cl_device_id *device, cl_command_queue *queue);

/* ---- tensors on a device ------------------------------------------------- */
typedef struct ecf8_cl_tensor ecf8_cl_tensor;

/* Validates a tensor of an open container on the host (every offset,
 * length and code) and uploads its payload and decode table.  Works for
 * coded and stored tensors.  Blocking. */
int ecf8_cl_tensor_create(cl_context context, cl_device_id device, cl_command_queue queue,
                          const ecf8_tensor_info *info, ecf8_cl_tensor **out);
void ecf8_cl_tensor_free(ecf8_cl_tensor *tensor);
/* Bytes the decoded tensor occupies (n_elements * element size). */
size_t ecf8_cl_tensor_decoded_bytes(const ecf8_cl_tensor *tensor);
/* Bytes held on the device for it (payload + table). */
size_t ecf8_cl_tensor_device_bytes(const ecf8_cl_tensor *tensor);

/* Decodes the whole tensor into out at out_offset (bytes).  ECF8_ERR_CORRUPT
 * is reported at the next blocking call if a chunk fails its check. */
int ecf8_cl_enqueue_decode(ecf8_cl_tensor *tensor, cl_command_queue queue, cl_mem out,
                           size_t out_offset, cl_uint num_wait_events,
                           const cl_event *wait_events, cl_event *out_event);
/* Decode into host memory and check the tensor's checksum.  Blocking. */
int ecf8_cl_decode_to_host(ecf8_cl_tensor *tensor, cl_command_queue queue, void *out,
                           size_t out_bytes);

/* ---- fused decode + matmul ----------------------------------------------- */
/* Y[m, n] = X[m, k] * W[n, k]^T for a Linear weight W (2-D, F8_E4M3 or
 * F8_E5M2 with its [ceil(n/128), ceil(k/128)] F32 block scales `scale_inv`,
 * or BF16 with scale_inv NULL).  X and Y are row-major fp32 (X may be BF16
 * with ECF8_CL_INPUT_BF16).  The fused engine decodes only the tiles it
 * multiplies; the uncompressed engine reads the same weights stored raw and
 * uses the same reduction order, so both give bit-identical Y. */
typedef enum ecf8_cl_engine {
    ECF8_CL_ENGINE_FUSED = 0,
    ECF8_CL_ENGINE_UNCOMPRESSED = 1
} ecf8_cl_engine;

#define ECF8_CL_INPUT_BF16 1u

typedef struct ecf8_cl_matmul ecf8_cl_matmul;

/* Prepares W for both engines: the fused engine keeps the compressed
 * payload; the uncompressed engine gets the raw weights (decoded once on
 * the host) as its baseline.  scale_inv may be NULL for BF16. */
int ecf8_cl_matmul_create(cl_context context, cl_device_id device, cl_command_queue queue,
                          const ecf8_tensor_info *weight, const ecf8_tensor_info *scale_inv,
                          ecf8_cl_engine engines_mask_unused, ecf8_cl_matmul **out);
void ecf8_cl_matmul_free(ecf8_cl_matmul *mm);
int ecf8_cl_enqueue_matmul(ecf8_cl_matmul *mm, ecf8_cl_engine engine, cl_command_queue queue,
                           size_t m, cl_mem x, size_t x_offset, unsigned x_flags, cl_mem y,
                           size_t y_offset, cl_uint num_wait_events, const cl_event *wait_events,
                           cl_event *out_event);

#ifdef __cplusplus
}
#endif
#endif /* ECF8_CL_H */
