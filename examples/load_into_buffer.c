/* load_into_buffer.c - what an inference engine does at load time.
 *
 * Opens a compressed checkpoint (.ecf8) and loads its tensors onto the
 * default OpenCL device without blocking (ecf8_cl_load: each tensor's
 * structure is checked on the host, its upload enqueued, and a callback
 * receives it with the event that says it is ready).  The callback decodes
 * each tensor straight into the engine's own big weight buffer at its
 * offset, after that event, on an out-of-order queue: uploads and decodes
 * of different tensors overlap.  Then it waits for the decodes, checks
 * every tensor (the device's per-chunk check, then the XXH3 checksum of
 * the bytes in the buffer) and prints a summary.
 *
 *   ecf8 compress model.safetensors model.ecf8        # once, with the CLI
 *   ./load_into_buffer model.ecf8
 *
 * ECF8_PLATFORM / ECF8_DEVICE pick another device (index or name part).
 * Build against an installed ecf8 with examples/CMakeLists.txt, or:
 *   cc load_into_buffer.c $(pkg-config --cflags --libs ecf8)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ecf8.h>
#include <ecf8_cl.h> /* includes CL/cl.h */

#define CHECK(call)                                                                   \
    do {                                                                              \
        int st_ = (call);                                                             \
        if (st_ != ECF8_OK) {                                                         \
            fprintf(stderr, "%s failed: %s: %s\n", #call, ecf8_status_string(st_),   \
                    ecf8_last_error());                                               \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

/* The engine's side: one buffer for all weights, each at its offset. */
typedef struct engine {
    cl_command_queue queue; /* out of order */
    cl_mem weights;
    size_t *offset;         /* by tensor index; multiples of 64 keep the fast kernels */
    ecf8_cl_tensor **tensor;
    cl_event *decoded;
} engine;

/* ecf8_cl_load's callback: the tensor and its ready event are ours. */
static int on_tensor(void *user, size_t index, ecf8_cl_tensor *tensor, cl_event ready)
{
    engine *e = user;
    e->tensor[index] = tensor;
    /* After `ready` (the decode would also order itself after the upload);
     * the decode's event is what the engine's first use of the weight waits for. */
    int st = ecf8_cl_enqueue_decode(tensor, e->queue, e->weights, e->offset[index], 1, &ready,
                                    &e->decoded[index]);
    clReleaseEvent(ready);
    return st;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.ecf8\n", argv[0]);
        return 2;
    }
    /* 1. The file: header, index and every tensor's stream structure are
     *    validated here. */
    ecf8_file *file;
    CHECK(ecf8_file_open(argv[1], &file));
    size_t n = ecf8_file_tensor_count(file);

    /* 2. The device, and an out-of-order queue on it. */
    cl_context ctx;
    cl_device_id dev;
    cl_command_queue in_order;
    CHECK(ecf8_cl_open(getenv("ECF8_PLATFORM"), getenv("ECF8_DEVICE"), &ctx, &dev, &in_order));
    cl_int err;
    engine e = {0};
    e.queue = clCreateCommandQueue(ctx, dev, CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
    if (err != CL_SUCCESS) { /* a device without out-of-order queues: the in-order one */
        e.queue = in_order;
        clRetainCommandQueue(in_order);
    }

    /* 3. The engine's weight buffer: every tensor at a 64-byte aligned offset. */
    e.offset = calloc(n + 1, sizeof *e.offset);
    e.tensor = calloc(n + 1, sizeof *e.tensor);
    e.decoded = calloc(n + 1, sizeof *e.decoded);
    size_t total = 0, compressed = 0;
    for (size_t i = 0; i < n; i++) {
        ecf8_tensor_info t;
        CHECK(ecf8_file_tensor(file, i, &t));
        e.offset[i] = total;
        total += ((size_t)t.source_bytes + 63) / 64 * 64;
        compressed += (size_t)t.payload_bytes;
    }
    e.weights = clCreateBuffer(ctx, CL_MEM_READ_WRITE, total ? total : 64, NULL, &err);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "clCreateBuffer: %s\n", ecf8_status_string(err));
        return 1;
    }

    /* 4. Load: uploads enqueued without blocking, a decode per tensor. */
    double t0 = now();
    CHECK(ecf8_cl_load(ctx, dev, e.queue, file, NULL, 0, NULL, on_tensor, &e));
    if (n) clWaitForEvents((cl_uint)n, e.decoded);
    double t1 = now();

    /* 5. Check: the device's per-chunk length check of every decode, then
     *    the checksum of every tensor's bytes in the buffer (the full check;
     *    an engine that trusts the length check alone may skip it). */
    unsigned char *host = malloc(total ? total : 1);
    if (clEnqueueReadBuffer(e.queue, e.weights, CL_TRUE, 0, total, host, 0, NULL, NULL) != CL_SUCCESS) {
        fprintf(stderr, "clEnqueueReadBuffer failed\n");
        return 1;
    }
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        ecf8_tensor_info t;
        CHECK(ecf8_file_tensor(file, i, &t));
        int st = ecf8_cl_tensor_check(e.tensor[i], e.queue);
        if (!st && ecf8_checksum64(host + e.offset[i], (size_t)t.source_bytes) != t.checksum)
            st = ECF8_ERR_CHECKSUM;
        if (st) {
            fprintf(stderr, "%s: %s: %s\n", t.name, ecf8_status_string(st), ecf8_last_error());
            bad++;
        }
    }
    printf("loaded %zu tensors: %zu compressed bytes -> %zu bytes in one device buffer, "
           "%.1f ms; %zu bad\n",
           n, compressed, total, (t1 - t0) * 1e3, bad);

    /* 6. Every decode has ended (step 4 waited): tensors may be freed. */
    for (size_t i = 0; i < n; i++) {
        clReleaseEvent(e.decoded[i]);
        ecf8_cl_tensor_free(e.tensor[i]);
    }
    free(host);
    free(e.offset);
    free(e.tensor);
    free(e.decoded);
    clReleaseMemObject(e.weights);
    clReleaseCommandQueue(e.queue);
    clReleaseCommandQueue(in_order);
    ecf8_cl_release_context(ctx);
    clReleaseContext(ctx);
    ecf8_file_close(file);
    return bad ? 1 : 0;
}
