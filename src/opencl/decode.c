/* decode.c - ecf8 tensors on an OpenCL device (work in progress). */
#include "runtime.h"

int ecf8_cl_tensor_create(cl_context context, cl_device_id device, cl_command_queue queue,
                          const ecf8_tensor_info *info, ecf8_cl_tensor **out)
{
    (void)context, (void)device, (void)queue, (void)info, (void)out;
    return ecf8_fail(ECF8_ERR_UNSUPPORTED, "OpenCL decode not implemented yet");
}
void ecf8_cl_tensor_free(ecf8_cl_tensor *tensor) { (void)tensor; }
size_t ecf8_cl_tensor_decoded_bytes(const ecf8_cl_tensor *tensor) { (void)tensor; return 0; }
size_t ecf8_cl_tensor_device_bytes(const ecf8_cl_tensor *tensor) { (void)tensor; return 0; }
int ecf8_cl_enqueue_decode(ecf8_cl_tensor *tensor, cl_command_queue queue, cl_mem out,
                           size_t out_offset, cl_uint num_wait_events,
                           const cl_event *wait_events, cl_event *out_event)
{
    (void)tensor, (void)queue, (void)out, (void)out_offset, (void)num_wait_events;
    (void)wait_events, (void)out_event;
    return ecf8_fail(ECF8_ERR_UNSUPPORTED, "OpenCL decode not implemented yet");
}
int ecf8_cl_decode_to_host(ecf8_cl_tensor *tensor, cl_command_queue queue, void *out,
                           size_t out_bytes)
{
    (void)tensor, (void)queue, (void)out, (void)out_bytes;
    return ecf8_fail(ECF8_ERR_UNSUPPORTED, "OpenCL decode not implemented yet");
}
