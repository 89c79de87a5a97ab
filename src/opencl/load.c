/* load.c - the loading API: a file's tensors onto a device without
 * blocking (ecf8_cl_load over ecf8_cl_tensor_create_async) and the full
 * content check a caller may add (ecf8_cl_tensor_verify). */
#include "runtime.h"

#include <stdlib.h>

int ecf8_cl_load(cl_context context, cl_device_id device, cl_command_queue queue,
                 const ecf8_file *file, const size_t *indices, size_t n,
                 const ecf8_cl_tuning *tuning, ecf8_cl_load_callback callback, void *user)
{
    if (!context || !device || !queue || !file || !callback)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "load: NULL argument");
    if (!indices) n = ecf8_file_tensor_count(file);
    for (size_t i = 0; i < n; i++) {
        size_t index = indices ? indices[i] : i;
        ecf8_tensor_info info;
        int st = ecf8_file_tensor(file, index, &info);
        ecf8_cl_tensor *t = NULL;
        cl_event ready = NULL;
        if (!st)
            st = ecf8_cl_tensor_create_async(context, device, queue, &info, tuning, 0, NULL, &t,
                                             &ready);
        if (!st) st = callback(user, index, t, ready);
        if (st) return st;
    }
    return ECF8_OK;
}

int ecf8_cl_tensor_verify(ecf8_cl_tensor *tensor, cl_command_queue queue)
{
    if (!tensor || !queue) return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor verify: NULL argument");
    size_t bytes = ecf8_cl_tensor_decoded_bytes(tensor);
    void *host = malloc(bytes ? bytes : 1);
    if (!host) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    int st = ecf8_cl_decode_to_host(tensor, queue, host, bytes);
    free(host);
    return st;
}
