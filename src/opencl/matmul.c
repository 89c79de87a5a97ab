/* matmul.c - fused decode + matmul (placeholder until implemented). */
#include "runtime.h"

int ecf8_cl_matmul_create(cl_context context, cl_device_id device, cl_command_queue queue,
                          const ecf8_tensor_info *weight, const ecf8_tensor_info *scale_inv,
                          ecf8_cl_engine engines_mask_unused, ecf8_cl_matmul **out)
{
    (void)context, (void)device, (void)queue, (void)weight, (void)scale_inv;
    (void)engines_mask_unused, (void)out;
    return ecf8_fail(ECF8_ERR_UNSUPPORTED, "matmul not implemented yet");
}

void ecf8_cl_matmul_free(ecf8_cl_matmul *mm) { (void)mm; }

int ecf8_cl_enqueue_matmul(ecf8_cl_matmul *mm, ecf8_cl_engine engine, cl_command_queue queue,
                           size_t m, cl_mem x, size_t x_offset, unsigned x_flags, cl_mem y,
                           size_t y_offset, cl_uint num_wait_events, const cl_event *wait_events,
                           cl_event *out_event)
{
    (void)mm, (void)engine, (void)queue, (void)m, (void)x, (void)x_offset, (void)x_flags;
    (void)y, (void)y_offset, (void)num_wait_events, (void)wait_events, (void)out_event;
    return ecf8_fail(ECF8_ERR_UNSUPPORTED, "matmul not implemented yet");
}
